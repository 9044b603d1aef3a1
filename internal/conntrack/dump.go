package conntrack

import (
	"strconv"
	"strings"

	"gvs/internal/packet"
)

// Entry is a snapshot of one connection, for dumps.
type Entry struct {
	Orig, Reply Tuple
	Zone        uint16
	Mark        uint32
	Label       [16]byte
	// TCPState is the kernel's state number (TCPSynSent...), for TCP.
	TCPState uint8
	// TCPFlags and TCPWscale are the per-direction window-tracking flags
	// and window scale (original, reply), for TCP.
	TCPFlags  [2]uint8
	TCPWscale [2]uint8
	// Status holds the kernel's IPS_* status bits (SEEN_REPLY, ASSURED,
	// CONFIRMED...), as the verbose dump prints them.
	Status uint32
	// Timeout is the time left, in seconds.
	Timeout uint32
	// ID identifies the entry while it lives.
	ID uint32
}

// Kernel status bits (IPS_*), in the order OVS prints them.
const (
	StatusExpected uint32 = 1 << iota
	StatusSeenReply
	StatusAssured
	StatusConfirmed
)

var statusNames = [...]string{"EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT",
	"DST_NAT", "SEQ_ADJUST", "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT",
	"TEMPLATE", "UNTRACKED"}

// Dump calls fn with each committed connection, of one zone or (zone nil)
// all, leaving out the expired ones (by Config.Clock). Without verbose
// the entries leave out what only a verbose dump prints (ID, Status,
// TCP flags and window scales). fn runs without any tracker lock held.
func (t *Tracker) Dump(zone *uint16, verbose bool, fn func(Entry)) {
	t.DumpAt(zone, verbose, t.clock(), fn)
}

// DumpAt is Dump at time now.
func (t *Tracker) DumpAt(zone *uint16, verbose bool, now int64, fn func(Entry)) {
	var buf []Entry
	for i := range t.shards {
		buf = t.snapshotShard(i, zone, now, buf[:0])
		for _, e := range buf {
			if !verbose {
				e.ID, e.Status, e.TCPFlags, e.TCPWscale = 0, 0, [2]uint8{}, [2]uint8{}
			}
			fn(e)
		}
	}
}

func (t *Tracker) snapshotShard(si int, zone *uint16, now int64, buf []Entry) []Entry {
	s := &t.shards[si]
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ch := range s.chunks {
		for j := range ch {
			c := &ch[j]
			if c.expires == 0 || c.expires <= now || (zone != nil && c.zone != *zone) {
				continue
			}
			e := Entry{
				Orig:    publicTuple(&c.tup[0], c.proto, c.isV6()),
				Reply:   publicTuple(&c.tup[1], c.proto, c.isV6()),
				Zone:    c.zone,
				Mark:    c.mark,
				Label:   c.label,
				Status:  StatusConfirmed,
				Timeout: uint32((c.expires - now + 999_999_999) / 1_000_000_000),
				ID:      uint32(si)<<24 ^ uint32(k)<<chunkBits ^ uint32(j),
			}
			if c.status&stSeenReply != 0 {
				e.Status |= StatusSeenReply
			}
			if c.status&stAssured != 0 {
				e.Status |= StatusAssured
			}
			if c.proto == packet.ProtoTCP {
				e.TCPState = c.tcp.state
				e.TCPFlags = [2]uint8{c.tcp.seen[0].flags & 0x3f, c.tcp.seen[1].flags & 0x3f}
				e.TCPWscale = [2]uint8{c.tcp.seen[0].scale, c.tcp.seen[1].scale}
			}
			buf = append(buf, e)
		}
	}
	return buf
}

// OVSTCPStateName returns the name OVS prints for a kernel TCP state
// (its ct-dpif names: the kernel's FIN_WAIT is FIN_WAIT_1, CLOSE is
// CLOSING, NONE is CLOSED). Without verbose, SYN_RECV prints as
// ESTABLISHED, as OVS coalesces it.
func OVSTCPStateName(s uint8, verbose bool) string {
	switch s {
	case TCPNone:
		return "CLOSED"
	case TCPSynSent, TCPSynSent2:
		return "SYN_SENT"
	case TCPSynRecv:
		if !verbose {
			return "ESTABLISHED"
		}
		return "SYN_RECV"
	case TCPEstablished:
		return "ESTABLISHED"
	case TCPFinWait:
		return "FIN_WAIT_1"
	case TCPCloseWait:
		return "CLOSE_WAIT"
	case TCPLastAck:
		return "LAST_ACK"
	case TCPTimeWait:
		return "TIME_WAIT"
	case TCPClose:
		return "CLOSING"
	}
	return "[" + strconv.Itoa(int(s)) + "]"
}

// FormatEntry formats e as ovs-appctl dpctl/dump-conntrack prints a
// kernel datapath's entry (verbose: with -m).
func FormatEntry(e Entry, verbose bool) string {
	return FormatEntryStats(e, verbose, false)
}

// FormatEntryStats is FormatEntry with -s: the timeout too.
func FormatEntryStats(e Entry, verbose, stats bool) string {
	var b strings.Builder
	b.WriteString(ProtoString(e.Orig.Proto))
	b.WriteString(",orig=(")
	formatTuple(&b, &e.Orig)
	b.WriteString("),reply=(")
	formatTuple(&b, &e.Reply)
	b.WriteString(")")
	if verbose {
		b.WriteString(",id=" + strconv.FormatUint(uint64(e.ID), 10))
	}
	if e.Zone != 0 {
		b.WriteString(",zone=" + strconv.Itoa(int(e.Zone)))
	}
	if verbose {
		b.WriteString(",status=")
		formatFlags(&b, e.Status, statusNames[:])
	}
	if stats {
		b.WriteString(",timeout=" + strconv.FormatUint(uint64(e.Timeout), 10))
	}
	if e.Mark != 0 {
		b.WriteString(",mark=" + strconv.FormatUint(uint64(e.Mark), 10))
	}
	if e.Label != [16]byte{} {
		b.WriteString(",labels=")
		b.WriteString(labelHex(e.Label))
	}
	if e.Orig.Proto == packet.ProtoTCP {
		b.WriteString(",protoinfo=(")
		if verbose {
			name := OVSTCPStateName(e.TCPState, true)
			b.WriteString("state_orig=" + name + ",state_reply=" + name)
			if e.TCPWscale != [2]uint8{} {
				b.WriteString(",wscale_orig=" + strconv.Itoa(int(e.TCPWscale[0])) +
					",wscale_reply=" + strconv.Itoa(int(e.TCPWscale[1])))
			}
			b.WriteString(",flags_orig=")
			formatFlags(&b, uint32(e.TCPFlags[0]), tcpFlagNames[:])
			b.WriteString(",flags_reply=")
			formatFlags(&b, uint32(e.TCPFlags[1]), tcpFlagNames[:])
		} else {
			b.WriteString("state=" + OVSTCPStateName(e.TCPState, false))
		}
		b.WriteString(")")
	}
	return b.String()
}

// ProtoString is the protocol's name in a dump: icmp, icmpv6, tcp, udp,
// sctp, or the number.
func ProtoString(p uint8) string {
	switch p {
	case packet.ProtoICMPv4:
		return "icmp"
	case packet.ProtoICMPv6:
		return "icmpv6"
	case packet.ProtoTCP:
		return "tcp"
	case packet.ProtoUDP:
		return "udp"
	case packet.ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

func formatTuple(b *strings.Builder, t *Tuple) {
	b.WriteString("src=" + t.Src.String() + ",dst=" + t.Dst.String())
	if isICMP(t.Proto) {
		// OVS 3.1 prints type and code with or without -m.
		b.WriteString(",id=" + strconv.Itoa(int(t.ICMPID)))
		b.WriteString(",type=" + strconv.Itoa(int(t.ICMPType)) + ",code=" + strconv.Itoa(int(t.ICMPCode)))
		return
	}
	b.WriteString(",sport=" + strconv.Itoa(int(t.SrcPort)) + ",dport=" + strconv.Itoa(int(t.DstPort)))
}

func formatFlags(b *strings.Builder, flags uint32, names []string) {
	first := true
	for i, n := range names {
		if flags&(1<<i) != 0 {
			if !first {
				b.WriteByte('|')
			}
			b.WriteString(n)
			first = false
		}
	}
}

// labelHex prints a label as OVS does: 0x and the hex digits without
// leading zeros.
func labelHex(l [16]byte) string {
	const hexd = "0123456789abcdef"
	var b []byte
	for _, v := range l {
		if len(b) == 0 {
			if v == 0 {
				continue
			}
			b = append(b, '0', 'x')
			if v >= 16 {
				b = append(b, hexd[v>>4])
			}
			b = append(b, hexd[v&15])
			continue
		}
		b = append(b, hexd[v>>4], hexd[v&15])
	}
	if len(b) == 0 {
		return "0"
	}
	return string(b)
}
