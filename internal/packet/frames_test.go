package packet

import (
	"encoding/binary"
)

// Frame builders for the tests. They write headers byte by byte from the
// RFC layouts, independently of the views under test, and fill checksums
// with refChecksum, a plain 16-bit-at-a-time sum.

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0x02}
	ip4A = [4]byte{10, 0, 0, 1}
	ip4B = [4]byte{10, 0, 0, 2}
	ip6A = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	ip6B = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
)

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// refChecksum is the textbook RFC 1071 sum, folded, not complemented.
func refChecksum(b []byte, initial uint16) uint16 {
	s := uint32(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func ethHdr(dst, src [6]byte, typ uint16) []byte {
	return cat(dst[:], src[:], be16(typ))
}

type ip4Opts struct {
	tos, ttl  uint8
	flagsFrag uint16 // flags and fragment offset word
	options   []byte
	totalLen  int // 0: computed
	ihl       int // 0: computed
}

func ipv4(proto uint8, o ip4Opts, payload []byte) []byte {
	hl := IPv4MinLen + len(o.options)
	ihl := o.ihl
	if ihl == 0 {
		ihl = hl / 4
	}
	tl := o.totalLen
	if tl == 0 {
		tl = hl + len(payload)
	}
	ttl := o.ttl
	if ttl == 0 {
		ttl = 64
	}
	h := make([]byte, IPv4MinLen, hl)
	h[0] = 0x40 | byte(ihl)
	h[1] = o.tos
	binary.BigEndian.PutUint16(h[2:], uint16(tl))
	binary.BigEndian.PutUint16(h[4:], 0x1234)
	binary.BigEndian.PutUint16(h[6:], o.flagsFrag)
	h[8], h[9] = ttl, proto
	copy(h[12:], ip4A[:])
	copy(h[16:], ip4B[:])
	h = append(h, o.options...)
	binary.BigEndian.PutUint16(h[10:], ^refChecksum(h, 0))
	return cat(h, payload)
}

func ipv6(nh uint8, tc uint8, label uint32, payload []byte) []byte {
	h := make([]byte, IPv6Len)
	binary.BigEndian.PutUint32(h[0:], 6<<28|uint32(tc)<<20|label)
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = nh, 64
	copy(h[8:], ip6A[:])
	copy(h[24:], ip6B[:])
	return cat(h, payload)
}

func tcpSeg(sport, dport uint16, flags uint16, payload []byte) []byte {
	h := make([]byte, TCPMinLen)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], 1000)
	binary.BigEndian.PutUint16(h[12:], 5<<12|flags)
	binary.BigEndian.PutUint16(h[14:], 65535)
	return cat(h, payload)
}

func udpDgram(sport, dport uint16, payload []byte) []byte {
	h := make([]byte, UDPLen)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(UDPLen+len(payload)))
	return cat(h, payload)
}

func sctpPkt(sport, dport uint16) []byte {
	h := make([]byte, SCTPLen+4)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	return h
}

func icmpMsg(typ, code uint8, body []byte) []byte {
	return cat([]byte{typ, code, 0, 0, 0, 1, 0, 1}, body)
}

func ndMsg(typ uint8, target [16]byte, opts ...[]byte) []byte {
	b := []byte{typ, 0, 0, 0, 0, 0, 0, 0}
	if typ == ICMPv6NeighborAdvert {
		b[4] = 0x60 // solicited, override
	}
	return cat(b, target[:], cat(opts...))
}

func ndLLOpt(typ uint8, mac [6]byte) []byte { return cat([]byte{typ, 1}, mac[:]) }

func arpPkt(hrd uint16, op uint16, sha [6]byte, spa [4]byte, tha [6]byte, tpa [4]byte) []byte {
	return cat(be16(hrd), be16(EtherTypeIPv4), []byte{6, 4}, be16(op), sha[:], spa[:], tha[:], tpa[:])
}

// Frames used by several tests and by the benchmarks.
var (
	frameTCP4 = cat(ethHdr(macB, macA, EtherTypeIPv4),
		ipv4(ProtoTCP, ip4Opts{tos: 0xb9}, tcpSeg(1234, 80, TCPFlagSYN|TCPFlagACK, []byte("hello"))))
	frameVLANUDP4 = cat(ethHdr(macB, macA, EtherTypeVLAN), be16(0xa005), be16(EtherTypeIPv4),
		ipv4(ProtoUDP, ip4Opts{}, udpDgram(53, 5353, []byte("query"))))
	frameTCP6 = cat(ethHdr(macB, macA, EtherTypeIPv6),
		ipv6(ProtoTCP, 0xa8, 0xcdef1, tcpSeg(40000, 443, TCPFlagACK|TCPFlagPSH, []byte("data"))))
)
