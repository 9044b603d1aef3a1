package netdev

import (
	"encoding/binary"
	"net"
	"testing"
)

func TestCompleteChecksumTCPAndUDP(t *testing.T) {
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	for _, tc := range []struct {
		name   string
		proto  byte
		l4     []byte
		offset int
	}{
		{"tcp", ipProtoTCP, tcpSegment(1, 0x18, patterned(1001)), tcpChecksumOffset},
		{"udp", ipProtoUDP, udpDatagram(patterned(333)), udpChecksumOffset},
	} {
		l4 := tc.l4
		binary.BigEndian.PutUint16(l4[tc.offset:], pseudoSum(src, dst, tc.proto, len(l4)))
		frame := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, tc.proto, 1, l4)...)
		if ok, _ := l4ChecksumOK(frame); ok {
			t.Fatalf("%s: partial checksum already verifies; test is not testing", tc.name)
		}
		if !completeChecksum(frame, 34, tc.offset) {
			t.Fatalf("%s: completeChecksum refused a valid frame", tc.name)
		}
		if ok, checked := l4ChecksumOK(frame); !ok || !checked {
			t.Errorf("%s: checksum still invalid after completion", tc.name)
		}
	}
}

func TestCompleteChecksumRejectsBadOffsets(t *testing.T) {
	frame := make([]byte, 60)
	for _, c := range [][2]int{{59, 0}, {50, 16}, {-1, 6}, {0, -2}} {
		if completeChecksum(frame, c[0], c[1]) {
			t.Errorf("start %d offset %d outside a 60-byte frame accepted", c[0], c[1])
		}
	}
}

func TestUDPZeroChecksumBecomesFFFF(t *testing.T) {
	// Build a UDP datagram whose sum is 0xffff before complementing,
	// by solving for a payload word.
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	l4 := udpDatagram(make([]byte, 2))
	binary.BigEndian.PutUint16(l4[6:], pseudoSum(src, dst, ipProtoUDP, len(l4)))
	partial := uint16(naiveSum(l4))
	binary.BigEndian.PutUint16(l4[8:], 0xffff-partial)
	frame := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoUDP, 1, l4)...)
	completeChecksum(frame, 34, udpChecksumOffset)
	if got := binary.BigEndian.Uint16(frame[34+6:]); got != 0xffff {
		t.Errorf("UDP checksum = %#04x, want 0xffff for a zero result", got)
	}
}
