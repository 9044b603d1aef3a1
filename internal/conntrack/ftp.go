package conntrack

import (
	"net/netip"
	"strconv"
)

// The FTP ALG reads the address announcements of an FTP control
// connection: the client's PORT (RFC 959) and EPRT (RFC 2428) commands
// for an active-mode data connection, the server's 227 (PASV) and 229
// (EPSV) replies for a passive one. Like the kernel's nf_conntrack_ftp it
// looks only at a line that starts the segment's payload and ends inside
// it, and only at an address equal to the announcer's own.

// ftpKind is the kind of an announcement.
type ftpKind uint8

const (
	ftpNone ftpKind = iota
	ftpPORT         // PORT h1,h2,h3,h4,p1,p2 (client, IPv4)
	ftpEPRT         // EPRT |1|addr|port| or |2|addr|port| (client)
	ftpPASV         // 227 ... h1,h2,h3,h4,p1,p2 (server, IPv4)
	ftpEPSV         // 229 ... (|||port|) (server, no address)
)

// ftpMaxLine bounds the line the parser reads: an announcement is short,
// and a longer line is not one.
const ftpMaxLine = 256

// ftpCmd is one announcement: its kind, the address (invalid for EPSV,
// which names only a port) and port announced, and the span of the
// payload [start, end) that a rewrite replaces.
type ftpCmd struct {
	kind       ftpKind
	addr       netip.Addr
	port       uint16
	start, end int
	delim      byte // EPRT's and EPSV's delimiter
}

// parseFTP reads the announcement at the start of payload, from the
// client (the control connection's original direction) or the server.
func parseFTP(payload []byte, fromClient bool) (ftpCmd, bool) {
	line := payload
	nl := -1
	for i := 0; i < len(line) && i < ftpMaxLine; i++ {
		if line[i] == '\n' {
			nl = i
			break
		}
	}
	if nl < 0 {
		return ftpCmd{}, false // no complete line: not looked at
	}
	line = line[:nl]
	if fromClient {
		switch {
		case hasPrefixFold(line, "PORT "):
			return parsePORT(line, 5, ftpPORT)
		case hasPrefixFold(line, "EPRT "):
			return parseEPRT(line, 5)
		}
		return ftpCmd{}, false
	}
	switch {
	case hasPrefix(line, "227 "):
		for i := 4; i < len(line); i++ {
			if isDigit(line[i]) {
				return parsePORT(line, i, ftpPASV)
			}
		}
	case hasPrefix(line, "229 "):
		return parseEPSV(line)
	}
	return ftpCmd{}, false
}

// parsePORT reads h1,h2,h3,h4,p1,p2 at line[at:].
func parsePORT(line []byte, at int, kind ftpKind) (ftpCmd, bool) {
	var v [6]int
	i := at
	for k := range v {
		n, j, ok := readNum(line, i, 255)
		if !ok {
			return ftpCmd{}, false
		}
		v[k], i = n, j
		if k < 5 {
			if i >= len(line) || line[i] != ',' {
				return ftpCmd{}, false
			}
			i++
		}
	}
	return ftpCmd{
		kind:  kind,
		addr:  netip.AddrFrom4([4]byte{byte(v[0]), byte(v[1]), byte(v[2]), byte(v[3])}),
		port:  uint16(v[4]<<8 | v[5]),
		start: at,
		end:   i,
	}, true
}

// parseEPRT reads d<af>d<addr>d<port>d at line[at:].
func parseEPRT(line []byte, at int) (ftpCmd, bool) {
	if at+3 > len(line) {
		return ftpCmd{}, false
	}
	d := line[at]
	if d < 33 || d > 126 || isDigit(d) || line[at+2] != d {
		return ftpCmd{}, false
	}
	af := line[at+1]
	if af != '1' && af != '2' {
		return ftpCmd{}, false
	}
	i := at + 3
	j := i
	for j < len(line) && line[j] != d {
		j++
	}
	if j >= len(line) || j-i > 45 {
		return ftpCmd{}, false
	}
	addr, err := netip.ParseAddr(string(line[i:j]))
	if err != nil || addr.Zone() != "" || addr.Is4() != (af == '1') {
		return ftpCmd{}, false
	}
	port, k, ok := readNum(line, j+1, 65535)
	if !ok || k >= len(line) || line[k] != d {
		return ftpCmd{}, false
	}
	return ftpCmd{kind: ftpEPRT, addr: addr, port: uint16(port), start: at, end: k + 1, delim: d}, true
}

// parseEPSV reads "229 text (dddportd)".
func parseEPSV(line []byte) (ftpCmd, bool) {
	i := 4
	for i < len(line) && line[i] != '(' {
		i++
	}
	if i+4 >= len(line) {
		return ftpCmd{}, false
	}
	d := line[i+1]
	if d < 33 || d > 126 || isDigit(d) || line[i+2] != d || line[i+3] != d {
		return ftpCmd{}, false
	}
	port, k, ok := readNum(line, i+4, 65535)
	if !ok || k+1 >= len(line) || line[k] != d || line[k+1] != ')' {
		return ftpCmd{}, false
	}
	return ftpCmd{kind: ftpEPSV, port: uint16(port), start: i + 4, end: k, delim: d}, true
}

// readNum reads a decimal number no larger than max, with at most as
// many digits as max has.
func readNum(b []byte, i, max int) (n, end int, ok bool) {
	digits := 5
	if max <= 255 {
		digits = 3
	}
	j := i
	for j < len(b) && isDigit(b[j]) && j-i < digits {
		n = n*10 + int(b[j]-'0')
		j++
	}
	if j == i || (j < len(b) && isDigit(b[j])) || n > max {
		return 0, i, false
	}
	return n, j, true
}

// formatFTP writes into dst the text that replaces cmd's span to
// announce addr and port instead, and returns it.
func formatFTP(dst []byte, cmd *ftpCmd, addr netip.Addr, port uint16) []byte {
	b := dst[:0]
	switch cmd.kind {
	case ftpPORT, ftpPASV:
		a := addr.As4()
		for _, x := range a {
			b = strconv.AppendUint(b, uint64(x), 10)
			b = append(b, ',')
		}
		b = strconv.AppendUint(b, uint64(port>>8), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(port&0xff), 10)
	case ftpEPRT:
		af := byte('1')
		if !addr.Is4() {
			af = '2'
		}
		b = append(b, cmd.delim, af, cmd.delim)
		b = addr.AppendTo(b)
		b = append(b, cmd.delim)
		b = strconv.AppendUint(b, uint64(port), 10)
		b = append(b, cmd.delim)
	case ftpEPSV:
		b = strconv.AppendUint(b, uint64(port), 10)
	}
	return b
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func hasPrefix(b []byte, p string) bool { return len(b) >= len(p) && string(b[:len(p)]) == p }

// hasPrefixFold: FTP commands are case-insensitive (RFC 959 5.3).
func hasPrefixFold(b []byte, p string) bool {
	if len(b) < len(p) {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := b[i]
		if c >= 'a' && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != p[i] {
			return false
		}
	}
	return true
}
