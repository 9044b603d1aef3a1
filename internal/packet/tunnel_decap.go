package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Taking tunnel headers off. Each parser reads one header from the start
// of b, fills a TunnelInfo and reports where the inner Ethernet frame
// starts; it never panics and never allocates, whatever b holds. Anything
// gvs cannot deliver as an Ethernet frame (a GRE packet carrying IP, a
// Geneve packet with an option it must understand, a frame shorter than
// an Ethernet header) is an error: the caller drops and counts it.

// TunnelInfo is what a tunnel header said.
type TunnelInfo struct {
	Type    TunnelType
	Key     uint32 // GRE key, VNI, or ERSPAN session ID
	HasKey  bool   // GRE: the key field is present
	HasCsum bool   // GRE: the checksum is present (and was right)
	OAM     bool   // Geneve's O bit: an OAM frame
	Seq     uint32 // GRE sequence number
	HasSeq  bool
	// ERSPAN fields.
	ERSPANVer  uint8
	ERSPANIdx  uint32 // type II
	ERSPANDir  uint8  // type III
	ERSPANHWID uint8  // type III
	Timestamp  uint32 // type III
	// Inner is where the inner Ethernet frame starts in the parsed slice.
	Inner int
}

// Errors of the tunnel parsers; all of them wrap ErrMalformedTunnel.
var (
	ErrMalformedTunnel = errors.New("tunnel: malformed packet")
	ErrTunnelTruncated = wrapMalformed("truncated header")
	ErrTunnelChecksum  = wrapMalformed("bad checksum")
	ErrTunnelVersion   = wrapMalformed("unsupported version or flags")
	ErrTunnelPayload   = wrapMalformed("payload is not an Ethernet frame")
)

type malformed string

func (m malformed) Error() string { return "tunnel: malformed packet: " + string(m) }
func (m malformed) Unwrap() error { return ErrMalformedTunnel }

func wrapMalformed(s string) error { return malformed(s) }

// OuterIP is what ParseOuterIPv4 or ParseOuterIPv6 read.
type OuterIP struct {
	Src, Dst netip.Addr
	Meta     OuterMeta // TOS, TTL
	Proto    uint8
	Payload  int // where the IP payload starts
	End      int // where it ends (the IP total length; padding after it is ignored)
}

// ParseOuterIPv4 reads the IPv4 header that a raw socket delivers in
// front of a tunnel packet. Fragments are refused: the kernel reassembles
// before it hands packets to raw sockets, so one means a confused sender.
func ParseOuterIPv4(b []byte, out *OuterIP) error {
	if len(b) < IPv4MinLen {
		return ErrTunnelTruncated
	}
	ip := IPv4(b)
	hl := ip.HeaderLen()
	total := int(ip.TotalLen())
	if ip.Version() != 4 || hl < IPv4MinLen || total < hl {
		return ErrTunnelVersion
	}
	if total > len(b) {
		return ErrTunnelTruncated
	}
	if ip.IsFragment() {
		return ErrTunnelVersion
	}
	out.Src, out.Dst = netip.AddrFrom4(ip.Src()), netip.AddrFrom4(ip.Dst())
	out.Proto, out.Payload, out.End = ip.Protocol(), hl, total
	out.Meta = OuterMeta{TOS: b[1], TTL: b[8]}
	return nil
}

// ParseOuterIPv6 reads the fixed IPv6 header of a tunnel packet that
// gvs's native underlay takes off a bridge (raw IPv6 sockets deliver the
// payload only). Extension headers are not walked: Proto is then the
// first one's number, which no tunnel matches, so such packets (fragments
// included) stay the kernel's. A jumbogram (payload length 0) is refused.
func ParseOuterIPv6(b []byte, out *OuterIP) error {
	if len(b) < IPv6Len {
		return ErrTunnelTruncated
	}
	ip := IPv6(b)
	n := int(ip.PayloadLen())
	if ip.Version() != 6 || n == 0 {
		return ErrTunnelVersion
	}
	if IPv6Len+n > len(b) {
		return ErrTunnelTruncated
	}
	out.Src, out.Dst = netip.AddrFrom16(ip.Src()), netip.AddrFrom16(ip.Dst())
	out.Proto, out.Payload, out.End = ip.NextHeader(), IPv6Len, IPv6Len+n
	out.Meta = OuterMeta{TOS: uint8(binary.BigEndian.Uint16(b[0:]) >> 4), TTL: b[7]}
	return nil
}

// ParseGRE reads a GRE header (RFC 2784, keys and sequence numbers of
// RFC 2890) and, for ERSPAN, the ERSPAN header after it. A checksum that
// is present is verified.
func ParseGRE(b []byte, info *TunnelInfo) error {
	*info = TunnelInfo{Type: TunnelGRE}
	if len(b) < greMinLen {
		return ErrTunnelTruncated
	}
	flags := binary.BigEndian.Uint16(b[0:])
	if flags&(greVersionMask|greRoutingFlag) != 0 {
		return ErrTunnelVersion
	}
	pos := greMinLen
	if flags&GREFlagChecksum != 0 {
		if len(b) < pos+4 {
			return ErrTunnelTruncated
		}
		if Checksum(b, 0) != 0xffff {
			return ErrTunnelChecksum
		}
		info.HasCsum = true
		pos += 4
	}
	if flags&GREFlagKey != 0 {
		if len(b) < pos+4 {
			return ErrTunnelTruncated
		}
		info.Key, info.HasKey = binary.BigEndian.Uint32(b[pos:]), true
		pos += 4
	}
	if flags&GREFlagSeq != 0 {
		if len(b) < pos+4 {
			return ErrTunnelTruncated
		}
		info.Seq, info.HasSeq = binary.BigEndian.Uint32(b[pos:]), true
		pos += 4
	}
	switch binary.BigEndian.Uint16(b[2:]) {
	case EtherTypeTEB:
		info.Inner = pos
	case EtherTypeERSPAN2, EtherTypeERSPAN3:
		n, err := ParseERSPAN(b[pos:], info)
		if err != nil {
			return err
		}
		info.Inner = pos + n
	default:
		return ErrTunnelPayload
	}
	return innerFits(b, info.Inner)
}

// ParseERSPAN reads an ERSPAN type II or III header (the version field
// says which) and returns its length. The session ID goes to info.Key.
func ParseERSPAN(b []byte, info *TunnelInfo) (int, error) {
	if len(b) < 4 {
		return 0, ErrTunnelTruncated
	}
	info.Type = TunnelERSPAN
	info.ERSPANVer = b[0] >> 4
	info.Key = uint32(binary.BigEndian.Uint16(b[2:]) & ERSPANMaxSession)
	switch info.ERSPANVer {
	case 1:
		if len(b) < erspan2Len {
			return 0, ErrTunnelTruncated
		}
		info.ERSPANIdx = binary.BigEndian.Uint32(b[4:]) & ERSPANMaxIndex
		return erspan2Len, nil
	case 2:
		if len(b) < erspan3Len {
			return 0, ErrTunnelTruncated
		}
		info.Timestamp = binary.BigEndian.Uint32(b[4:])
		f := binary.BigEndian.Uint16(b[10:])
		info.ERSPANHWID = uint8(f>>4) & ERSPANMaxHWID
		info.ERSPANDir = uint8(f>>3) & 1
		n := erspan3Len
		if f&1 != 0 { // O: a platform-specific subheader follows
			n += erspan3SubLen
		}
		if len(b) < n {
			return 0, ErrTunnelTruncated
		}
		return n, nil
	}
	return 0, ErrTunnelVersion
}

// ParseVXLAN reads a VXLAN header (RFC 7348): the I flag must be set.
func ParseVXLAN(b []byte, info *TunnelInfo) error {
	*info = TunnelInfo{Type: TunnelVXLAN}
	if len(b) < VXLANLen {
		return ErrTunnelTruncated
	}
	if b[0]&vxlanFlagVNI == 0 {
		return ErrTunnelVersion
	}
	info.Key = binary.BigEndian.Uint32(b[4:]) >> 8
	info.Inner = VXLANLen
	return innerFits(b, info.Inner)
}

// ParseGeneve reads a Geneve header (RFC 8926). gvs understands no
// options, so a packet with the critical-options flag set is refused,
// as the RFC asks; other options are skipped.
func ParseGeneve(b []byte, info *TunnelInfo) error {
	*info = TunnelInfo{Type: TunnelGeneve}
	if len(b) < GeneveMinLen {
		return ErrTunnelTruncated
	}
	if b[0]>>6 != 0 || b[1]&0x40 != 0 {
		return ErrTunnelVersion
	}
	if binary.BigEndian.Uint16(b[2:]) != genevePortEth {
		return ErrTunnelPayload
	}
	info.Key = binary.BigEndian.Uint32(b[4:]) >> 8
	info.OAM = b[1]&geneveFlagOAM != 0
	info.Inner = GeneveMinLen + int(b[0]&0x3f)*4
	return innerFits(b, info.Inner)
}

// innerFits checks that an Ethernet header follows at inner.
func innerFits(b []byte, inner int) error {
	if inner > len(b) || len(b)-inner < EthernetLen {
		return ErrTunnelTruncated
	}
	return nil
}
