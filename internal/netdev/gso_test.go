package netdev

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// segmentAll runs the segmenter over a super-frame and returns copies of
// the segments.
func segmentAll(t *testing.T, frame []byte, h vnetHdr, shift int) [][]byte {
	t.Helper()
	var s segmenter
	if !s.start(frame, h, shift) {
		t.Fatal("segmenter refused the super-frame")
	}
	var segs [][]byte
	buf := make([]byte, MaxFrame)
	for s.active() && len(segs) < 1000 {
		n := s.emit(buf)
		segs = append(segs, append([]byte(nil), buf[:n]...))
	}
	return segs
}

func TestSegmentTCPv4(t *testing.T) {
	const mss, size = 1448, 5000
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	payload := patterned(size)
	l4 := tcpSegment(1000, tcpFlagPSH|tcpFlagFIN|tcpFlagCWR|0x10, payload)
	binary.BigEndian.PutUint16(l4[16:], pseudoSum(src, dst, ipProtoTCP, len(l4)))
	frame := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoTCP, 500, l4)...)
	h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: mss, csumStart: 34, csumOffset: 16}

	segs := segmentAll(t, frame, h, 0)
	if len(segs) != 4 {
		t.Fatalf("%d segments, want 4", len(segs))
	}
	var joined []byte
	for i, seg := range segs {
		ip, tcp := seg[14:], seg[34:]
		if ok, checked := l4ChecksumOK(seg); !ok || !checked {
			t.Errorf("segment %d: bad checksum", i)
		}
		if got := binary.BigEndian.Uint16(ip[4:]); got != 500+uint16(i) {
			t.Errorf("segment %d: IP id %d, want %d", i, got, 500+i)
		}
		if got := binary.BigEndian.Uint32(tcp[4:]); got != 1000+uint32(i*mss) {
			t.Errorf("segment %d: seq %d, want %d", i, got, 1000+i*mss)
		}
		last, first := i == len(segs)-1, i == 0
		flags := tcp[13]
		if (flags&tcpFlagFIN != 0) != last || (flags&tcpFlagPSH != 0) != last || (flags&tcpFlagCWR != 0) != first || flags&0x10 == 0 {
			t.Errorf("segment %d: flags %#02x", i, flags)
		}
		if want := min(mss, size-i*mss); len(seg) != 54+want || int(binary.BigEndian.Uint16(ip[2:])) != 40+want {
			t.Errorf("segment %d: frame %d bytes, IP length %d", i, len(seg), binary.BigEndian.Uint16(ip[2:]))
		}
		joined = append(joined, tcp[20:]...)
	}
	if !bytes.Equal(joined, payload) {
		t.Error("segments do not reassemble into the payload")
	}
}

func TestSegmentTCPv6WithVLAN(t *testing.T) {
	src, dst := net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
	payload := patterned(3000)
	l4 := tcpSegment(1, 0x10, payload)
	pkt := ipv6Packet(src, dst, ipProtoTCP, l4)
	frame := append(ethernet(macA, macB, etherTypeVLAN), 0, 100, 0x86, 0xdd)
	frame = append(frame, pkt...)
	// The kernel's csum_start was taken before the tag was put back.
	h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv6, gsoSize: 1400, csumStart: 54, csumOffset: 16}
	segs := segmentAll(t, frame, h, vlanTagLen)
	if len(segs) != 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}
	for i, seg := range segs {
		if ok, checked := l4ChecksumOK(seg); !ok || !checked {
			t.Errorf("segment %d: bad checksum", i)
		}
		if binary.BigEndian.Uint16(seg[12:]) != etherTypeVLAN || binary.BigEndian.Uint16(seg[14:]) != 100 {
			t.Errorf("segment %d lost its VLAN tag", i)
		}
	}
}

func TestSegmentUDPL4(t *testing.T) {
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	l4 := udpDatagram(patterned(2500))
	frame := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoUDP, 9, l4)...)
	h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOUDPL4, gsoSize: 1000, csumStart: 34, csumOffset: 6}
	segs := segmentAll(t, frame, h, 0)
	if len(segs) != 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}
	for i, seg := range segs {
		if ok, checked := l4ChecksumOK(seg); !ok || !checked {
			t.Errorf("segment %d: bad checksum", i)
		}
		if got, want := int(binary.BigEndian.Uint16(seg[38:])), len(seg)-34; got != want {
			t.Errorf("segment %d: UDP length %d, want %d", i, got, want)
		}
	}
}

// vxlanSuperFrame wraps an inner TCP super-frame in Ethernet/IPv4/UDP/VXLAN.
func vxlanSuperFrame(payload []byte, outerChecksum bool) []byte {
	inSrc, inDst := net.IPv4(203, 0, 113, 1), net.IPv4(203, 0, 113, 2)
	inner := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(inSrc, inDst, ipProtoTCP, 77, tcpSegment(5, 0x18, payload))...)
	vxlan := append([]byte{0x08, 0, 0, 0, 0, 0, 42, 0}, inner...)
	udp := udpDatagram(vxlan)
	if outerChecksum {
		udp[6], udp[7] = 0x12, 0x34 // any non-zero value: "checksum in use"
	}
	outer := ipv4Packet(net.IPv4(198, 51, 100, 1), net.IPv4(198, 51, 100, 2), ipProtoUDP, 900, udp)
	return append(ethernet(macB, macA, etherTypeIPv4), outer...)
}

func TestSegmentVXLAN(t *testing.T) {
	const innerL4 = 14 + 20 + 8 + 8 + 14 + 20
	for _, outerChecksum := range []bool{false, true} {
		payload := patterned(4000)
		frame := vxlanSuperFrame(payload, outerChecksum)
		h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: 1400, csumStart: innerL4, csumOffset: 16}
		segs := segmentAll(t, frame, h, 0)
		if len(segs) != 3 {
			t.Fatalf("%d segments, want 3", len(segs))
		}
		var joined []byte
		for i, seg := range segs {
			outerUDP := seg[34:]
			if got, want := int(binary.BigEndian.Uint16(outerUDP[4:])), len(seg)-34; got != want {
				t.Errorf("segment %d: outer UDP length %d, want %d", i, got, want)
			}
			ok, _ := l4ChecksumOK(seg)
			if sum := binary.BigEndian.Uint16(outerUDP[6:]); outerChecksum && !ok || !outerChecksum && sum != 0 {
				t.Errorf("segment %d: outer UDP checksum %#04x (in use: %v)", i, sum, outerChecksum)
			}
			if binary.BigEndian.Uint16(seg[14+4:]) != 900+uint16(i) || naiveSum(seg[14:34]) != 0xffff {
				t.Errorf("segment %d: outer IPv4 id or checksum wrong", i)
			}
			inner := seg[14+20+8+8:]
			if ok, checked := l4ChecksumOK(inner); !ok || !checked {
				t.Errorf("segment %d: inner TCP checksum wrong", i)
			}
			if binary.BigEndian.Uint16(inner[14+4:]) != 77+uint16(i) {
				t.Errorf("segment %d: inner IPv4 id not incremented", i)
			}
			joined = append(joined, inner[14+20+20:]...)
		}
		if !bytes.Equal(joined, payload) {
			t.Error("segments do not reassemble into the payload")
		}
	}
}

func TestSegmentRefusesMalformed(t *testing.T) {
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	good := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoTCP, 1, tcpSegment(1, 0, patterned(3000)))...)
	h := vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 1000}
	cases := map[string]struct {
		frame []byte
		h     vnetHdr
	}{
		"zero gso_size": {good, vnetHdr{gsoType: vnetGSOTCPv4}},
		"ufo":           {good, vnetHdr{gsoType: vnetGSOUDP, gsoSize: 1000}},
		"v6 type on v4": {good, vnetHdr{gsoType: vnetGSOTCPv6, gsoSize: 1000}},
		"truncated":     {good[:40], h},
		"headers only":  {good[:54], h},
		"mss too large": {good, vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: MaxFrame}},
		"not ip":        {append(ethernet(macA, macB, 0x0806), make([]byte, 60)...), h},
		"tunnel without inner EtherType": {func() []byte {
			f := vxlanSuperFrame(patterned(3000), false)
			f[14+20+8+8+12] = 0x12 // corrupt the inner EtherType
			return f
		}(), vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: 1000, csumStart: 84}},
		"udp on tcp type": {append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoUDP, 1, udpDatagram(patterned(3000)))...), h},
	}
	for name, c := range cases {
		var s segmenter
		if s.start(c.frame, c.h, 0) {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzSegmenter(f *testing.F) {
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	f.Add(append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoTCP, 1, tcpSegment(1, 0, patterned(3000)))...), byte(vnetGSOTCPv4), uint16(1000), uint16(34))
	f.Add(vxlanSuperFrame(patterned(3000), true), byte(vnetGSOTCPv4), uint16(1000), uint16(84))
	f.Fuzz(func(t *testing.T, frame []byte, gsoType byte, gsoSize, csumStart uint16) {
		var s segmenter
		if !s.start(frame, vnetHdr{flags: vnetFlagNeedsCsum, gsoType: gsoType, gsoSize: gsoSize, csumStart: csumStart}, 0) {
			return
		}
		buf := make([]byte, MaxFrame)
		for i := 0; s.active(); i++ {
			if i > len(frame) {
				t.Fatal("segmenter does not terminate")
			}
			if n := s.emit(buf); n > MaxFrame {
				t.Fatalf("segment of %d bytes", n)
			}
		}
	})
}
