package netdev

import (
	"encoding/binary"
	"net"
)

// Frame builders and an independent checksum checker for the tests. The
// checker sums 16-bit words one at a time, unlike the driver's code, so a
// shared mistake is unlikely.

func naiveSum(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return s
}

// l4ChecksumOK verifies the TCP or UDP checksum of an Ethernet frame
// (optionally VLAN-tagged) carrying IPv4 or IPv6 without extension
// headers. checked is false for frames it does not understand.
func l4ChecksumOK(frame []byte) (ok, checked bool) {
	l3, et, good := l3Offset(frame)
	if !good {
		return false, false
	}
	var pseudo []byte
	var proto byte
	var l4 []byte
	switch et {
	case etherTypeIPv4:
		ip := frame[l3:]
		if len(ip) < 20 || naiveSum(ip[:int(ip[0]&0xf)*4]) != 0xffff {
			return false, len(ip) >= 20
		}
		proto = ip[9]
		total := int(binary.BigEndian.Uint16(ip[2:]))
		if total > len(ip) {
			return false, true
		}
		l4 = ip[int(ip[0]&0xf)*4 : total]
		pseudo = append(pseudo, ip[12:20]...)
	case etherTypeIPv6:
		ip := frame[l3:]
		if len(ip) < 40 {
			return false, false
		}
		proto = ip[6]
		l4 = ip[40 : 40+int(binary.BigEndian.Uint16(ip[4:]))]
		pseudo = append(pseudo, ip[8:40]...)
	default:
		return false, false
	}
	if proto != ipProtoTCP && proto != ipProtoUDP {
		return false, false
	}
	pseudo = append(pseudo, 0, proto, byte(len(l4)>>8), byte(len(l4)))
	return naiveSum(append(pseudo, l4...)) == 0xffff, true
}

var (
	macA = net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 1}
	macB = net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 2}
)

func ethernet(dst, src net.HardwareAddr, etherType uint16) []byte {
	b := append(append([]byte{}, dst...), src...)
	return binary.BigEndian.AppendUint16(b, etherType)
}

// ipv4Packet returns an IPv4 header (valid checksum) followed by l4.
func ipv4Packet(src, dst net.IP, proto byte, id uint16, l4 []byte) []byte {
	h := make([]byte, 20)
	h[0], h[8], h[9] = 0x45, 64, proto
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(l4)))
	binary.BigEndian.PutUint16(h[4:], id)
	h[6] = 0x40 // DF
	copy(h[12:], src.To4())
	copy(h[16:], dst.To4())
	binary.BigEndian.PutUint16(h[10:], ^uint16(naiveSum(h)))
	return append(h, l4...)
}

func ipv6Packet(src, dst net.IP, proto byte, l4 []byte) []byte {
	h := make([]byte, 40)
	h[0], h[6], h[7] = 0x60, proto, 64
	binary.BigEndian.PutUint16(h[4:], uint16(len(l4)))
	copy(h[8:], src.To16())
	copy(h[24:], dst.To16())
	return append(h, l4...)
}

func tcpSegment(seq uint32, flags byte, payload []byte) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], 40000)
	binary.BigEndian.PutUint16(h[2:], 5001)
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], 7)
	h[12], h[13] = 5<<4, flags
	binary.BigEndian.PutUint16(h[14:], 65000)
	return append(h, payload...)
}

func udpDatagram(payload []byte) []byte {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], 40000)
	binary.BigEndian.PutUint16(h[2:], 5001)
	binary.BigEndian.PutUint16(h[4:], uint16(8+len(payload)))
	return append(h, payload...)
}

// pseudoSum is what a sender that offloads the checksum leaves in the
// field: the folded, uncomplemented pseudo-header sum.
func pseudoSum(src, dst net.IP, proto byte, l4len int) uint16 {
	var p []byte
	if v4 := src.To4(); v4 != nil {
		p = append(append(p, v4...), dst.To4()...)
	} else {
		p = append(append(p, src.To16()...), dst.To16()...)
	}
	p = append(p, 0, proto, byte(l4len>>8), byte(l4len))
	return uint16(naiveSum(p))
}

func patterned(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}
