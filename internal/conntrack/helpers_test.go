package conntrack

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"gvs/internal/packet"
)

// Frame builders for the tests: Ethernet + IPv4/IPv6 + TCP/UDP/ICMP with
// correct checksums (the kernel differential test sends them as they are).

var (
	macL = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	macR = [6]byte{0x02, 0, 0, 0, 0, 0x02}
)

type seg struct {
	src, dst  netip.Addr
	sport     uint16
	dport     uint16
	seq, ack  uint32
	flags     uint16
	win       uint16
	payload   []byte
	opts      []byte
	dstMAC    [6]byte
	srcMAC    [6]byte
	icmpType  uint8
	icmpCode  uint8
	icmpID    uint16
	icmpQuote []byte // IP datagram quoted by an ICMP error
	proto     uint8
}

func csum(b []byte, initial uint32) uint16 {
	s := initial
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func pseudo(src, dst netip.Addr, proto uint8, n int) uint32 {
	var s uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			s += uint32(binary.BigEndian.Uint16(b[i:]))
		}
	}
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		add(a[:])
		add(b[:])
	} else {
		a, b := src.As16(), dst.As16()
		add(a[:])
		add(b[:])
	}
	s += uint32(proto) + uint32(n)
	return s
}

// l4 builds the transport header and payload.
func (s *seg) l4() []byte {
	switch s.proto {
	case packet.ProtoUDP:
		b := make([]byte, 8+len(s.payload))
		binary.BigEndian.PutUint16(b[0:], s.sport)
		binary.BigEndian.PutUint16(b[2:], s.dport)
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
		copy(b[8:], s.payload)
		c := csum(b, pseudo(s.src, s.dst, s.proto, len(b)))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(b[6:], c)
		return b
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		b := make([]byte, 8+len(s.payload)+len(s.icmpQuote))
		b[0], b[1] = s.icmpType, s.icmpCode
		binary.BigEndian.PutUint16(b[4:], s.icmpID)
		binary.BigEndian.PutUint16(b[6:], 1)
		copy(b[8:], s.payload)
		copy(b[8+len(s.payload):], s.icmpQuote)
		var init uint32
		if s.proto == packet.ProtoICMPv6 {
			init = pseudo(s.src, s.dst, s.proto, len(b))
		}
		binary.BigEndian.PutUint16(b[2:], csum(b, init))
		return b
	}
	hl := 20 + (len(s.opts)+3)/4*4
	b := make([]byte, hl+len(s.payload))
	binary.BigEndian.PutUint16(b[0:], s.sport)
	binary.BigEndian.PutUint16(b[2:], s.dport)
	binary.BigEndian.PutUint32(b[4:], s.seq)
	binary.BigEndian.PutUint32(b[8:], s.ack)
	b[12] = byte(hl/4) << 4
	b[13] = byte(s.flags)
	win := s.win
	if win == 0 {
		win = 8192
	}
	binary.BigEndian.PutUint16(b[14:], win)
	copy(b[20:], s.opts)
	copy(b[hl:], s.payload)
	binary.BigEndian.PutUint16(b[16:], csum(b, pseudo(s.src, s.dst, packet.ProtoTCP, len(b))))
	return b
}

// ip builds the IP datagram.
func (s *seg) ip() []byte {
	if s.proto == 0 {
		s.proto = packet.ProtoTCP
	}
	l4 := s.l4()
	if s.src.Is4() {
		b := make([]byte, 20+len(l4))
		b[0] = 0x45
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		b[6] = 0x40 // DF
		b[8] = 64
		b[9] = s.proto
		a, d := s.src.As4(), s.dst.As4()
		copy(b[12:], a[:])
		copy(b[16:], d[:])
		binary.BigEndian.PutUint16(b[10:], csum(b[:20], 0))
		copy(b[20:], l4)
		return b
	}
	b := make([]byte, 40+len(l4))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(l4)))
	b[6] = s.proto
	b[7] = 64
	a, d := s.src.As16(), s.dst.As16()
	copy(b[8:], a[:])
	copy(b[24:], d[:])
	copy(b[40:], l4)
	return b
}

func (s *seg) frame() []byte {
	ipb := s.ip()
	f := make([]byte, 14+len(ipb))
	copy(f[0:], s.dstMAC[:])
	copy(f[6:], s.srcMAC[:])
	if s.src.Is4() {
		binary.BigEndian.PutUint16(f[12:], packet.EtherTypeIPv4)
	} else {
		binary.BigEndian.PutUint16(f[12:], packet.EtherTypeIPv6)
	}
	copy(f[14:], ipb)
	return f
}

// exec runs one ct() on frame with a fresh (never tracked) key.
func exec(t testing.TB, tr *Tracker, frame []byte, a Action, now int64) Result {
	t.Helper()
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(frame, 1, &key, &off); err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tr.Execute(frame, &key, &off, &a, now)
}

// s7 runs a packet through the S7 flows: ct(table=0); a +new packet from
// the left is then committed by ct(commit) on the recirculated packet.
func s7(t testing.TB, tr *Tracker, frame []byte, fromLeft bool, now int64) Result {
	t.Helper()
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(frame, 1, &key, &off); err != nil {
		t.Fatalf("parse: %v", err)
	}
	r := tr.Execute(frame, &key, &off, &Action{}, now)
	if fromLeft && r.State&(StateTrk|StateNew) == StateTrk|StateNew && r.State&StateInv == 0 {
		key.CtState, key.CtZone = r.State, r.Zone
		r = tr.Execute(frame, &key, &off, &Action{Commit: true}, now)
	}
	return r
}

func stateString(s uint8) string {
	names := []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}
	out := ""
	for i, n := range names {
		if s&(1<<i) != 0 {
			out += "+" + n
		}
	}
	return out
}

// dumpLines returns the non-verbose dump.
func dumpLines(tr *Tracker, now int64) []string {
	var out []string
	tr.DumpAt(nil, false, now, func(e Entry) { out = append(out, FormatEntry(e, false)) })
	return out
}

// tcpConv is a TCP conversation between L and R with sequence numbers
// that follow the bytes sent.
type tcpConv struct {
	l, r       netip.Addr
	lp, rp     uint16
	lseq, rseq uint32
}

func newConv() *tcpConv {
	return &tcpConv{
		l: netip.MustParseAddr("192.168.0.2"), r: netip.MustParseAddr("10.0.0.2"),
		lp: 1024, rp: 2048, lseq: 1000, rseq: 5000,
	}
}

// fromL builds a segment from the left with the given flags and payload,
// acking what the right sent; advance moves the sequence numbers on.
func (c *tcpConv) fromL(flags uint16, payload []byte, advance bool) []byte {
	s := seg{src: c.l, dst: c.r, sport: c.lp, dport: c.rp, seq: c.lseq, flags: flags, payload: payload, srcMAC: macL, dstMAC: macR}
	if flags&packet.TCPFlagACK != 0 {
		s.ack = c.rseq
	}
	if advance {
		c.lseq += uint32(len(payload))
		if flags&(packet.TCPFlagSYN|packet.TCPFlagFIN) != 0 {
			c.lseq++
		}
	}
	return s.frame()
}

func (c *tcpConv) fromR(flags uint16, payload []byte, advance bool) []byte {
	s := seg{src: c.r, dst: c.l, sport: c.rp, dport: c.lp, seq: c.rseq, flags: flags, payload: payload, srcMAC: macR, dstMAC: macL}
	if flags&packet.TCPFlagACK != 0 {
		s.ack = c.lseq
	}
	if advance {
		c.rseq += uint32(len(payload))
		if flags&(packet.TCPFlagSYN|packet.TCPFlagFIN) != 0 {
			c.rseq++
		}
	}
	return s.frame()
}

const (
	fFIN = packet.TCPFlagFIN
	fSYN = packet.TCPFlagSYN
	fRST = packet.TCPFlagRST
	fPSH = packet.TCPFlagPSH
	fACK = packet.TCPFlagACK
)
