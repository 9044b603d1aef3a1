package netdev

import (
	"encoding/binary"

	"gvs/internal/packet"
)

// segmenter cuts a GSO super-frame, one TCP or UDP packet far larger than
// the MTU as the kernel hands them out when TSO or GRO is on, back into the
// frames that would have been on the wire: the same headers in front of
// gso_size pieces of payload, with lengths, IPv4 IDs, TCP sequence numbers,
// flags and checksums fixed per piece. A super-frame may also be tunnelled
// in UDP (VXLAN, Geneve: the kernel reports those with the inner GSO type
// and the inner checksum offset); then the outer IP and UDP headers are
// fixed too. Segments are written into the caller's buffers, so one
// super-frame may be emitted across several ReadBatch calls.
type segmenter struct {
	frame    []byte // the whole super-frame; nil when idle
	inner    ipLayer
	outer    ipLayer // the tunnel's IP header, if tunnel
	tunnel   bool
	outerSum bool // the tunnel's UDP header carries a checksum
	tcp      bool
	l4       int // offset of the segmented L4 header
	hlen     int // bytes of headers copied in front of each piece
	mss      int
	seq      uint32
	next     int // offset in the payload of the next piece
	segIndex int
}

// ipLayer is one IP header of a super-frame.
type ipLayer struct {
	off   int  // offset of the IP header
	l4    int  // offset of what follows it; -1 for IPv6 extension headers
	proto byte // what follows it
	v4    bool
	id    uint16 // IPv4 identification of the super-frame
}

const (
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	etherTypeVLAN  = 0x8100
	etherTypeQinQ  = 0x88a8
	ipProtoTCP     = 6
	ipProtoUDP     = 17
	tcpFlagFIN     = 0x01
	tcpFlagPSH     = 0x08
	tcpFlagCWR     = 0x80
	ipv4HeaderLen  = 20
	ipv6HeaderLen  = 40
	udpHeaderLen   = 8
	minTCPHeader   = 20
	etherAddrsLen  = 12 // destination and source MAC
	ethHeaderLen   = 14
	vlanTagLen     = 4
	maxVLANHeaders = 2
)

// active reports whether segments remain to be emitted.
func (s *segmenter) active() bool { return s.frame != nil }

// start prepares frame for segmentation; h is its virtio header and
// csumShift how many bytes were inserted in front of h.csumStart (a VLAN
// tag put back after the kernel had stripped it). It returns false for a
// super-frame it cannot cut (unknown GSO type, unsupported encapsulation,
// malformed headers).
func (s *segmenter) start(frame []byte, h vnetHdr, csumShift int) bool {
	*s = segmenter{}
	switch h.gsoType {
	case vnetGSOTCPv4, vnetGSOTCPv6:
		s.tcp = true
	case vnetGSOUDPL4:
	default:
		return false
	}
	l3, etherType, ok := l3Offset(frame)
	if !ok || h.gsoSize == 0 {
		return false
	}
	ip, ok := parseIP(frame, l3, etherType)
	if !ok {
		return false
	}
	csumStart := -1
	if h.needsCsum() {
		csumStart = int(h.csumStart) + csumShift
	}
	switch {
	case ip.l4 >= 0 && csumStart > ip.l4 && ip.proto == ipProtoUDP:
		// The checksum starts past the outer UDP header: a UDP tunnel.
		if ip, ok = s.enterTunnel(frame, ip, csumStart); !ok {
			return false
		}
	case ip.l4 < 0 && csumStart >= l3+ipv6HeaderLen:
		// IPv6 extension headers: trust the kernel's L4 offset.
		ip.l4, ip.proto = csumStart, s.proto()
	}
	if ip.l4 < 0 || ip.proto != s.proto() || !gsoMatchesIP(h.gsoType, ip.v4) {
		return false
	}
	s.inner, s.l4, s.mss = ip, ip.l4, int(h.gsoSize)
	if !s.findPayload(frame) {
		return false
	}
	s.frame = frame
	return true
}

func (s *segmenter) proto() byte {
	if s.tcp {
		return ipProtoTCP
	}
	return ipProtoUDP
}

func gsoMatchesIP(gsoType uint8, v4 bool) bool {
	switch gsoType {
	case vnetGSOTCPv4:
		return v4
	case vnetGSOTCPv6:
		return !v4
	}
	return true
}

// l3Offset skips the Ethernet header and up to two VLAN tags.
func l3Offset(frame []byte) (offset int, etherType uint16, ok bool) {
	off := etherAddrsLen
	for range maxVLANHeaders + 1 {
		if off+2 > len(frame) {
			return 0, 0, false
		}
		etherType = binary.BigEndian.Uint16(frame[off:])
		if etherType != etherTypeVLAN && etherType != etherTypeQinQ {
			return off + 2, etherType, true
		}
		off += vlanTagLen
	}
	return 0, 0, false
}

// parseIP reads the IP header at off. For IPv6 whose next header is not
// TCP or UDP, l4 is -1: extension headers are not walked.
func parseIP(frame []byte, off int, etherType uint16) (ipLayer, bool) {
	switch etherType {
	case etherTypeIPv4:
		if off+ipv4HeaderLen > len(frame) || frame[off]>>4 != 4 {
			return ipLayer{}, false
		}
		l4 := off + int(frame[off]&0x0f)*4
		ip := ipLayer{off: off, l4: l4, proto: frame[off+9], v4: true, id: binary.BigEndian.Uint16(frame[off+4:])}
		return ip, l4 >= off+ipv4HeaderLen && l4 <= len(frame)
	case etherTypeIPv6:
		if off+ipv6HeaderLen > len(frame) || frame[off]>>4 != 6 {
			return ipLayer{}, false
		}
		ip := ipLayer{off: off, l4: -1}
		if next := frame[off+6]; next == ipProtoTCP || next == ipProtoUDP {
			ip.l4, ip.proto = off+ipv6HeaderLen, next
		}
		return ip, true
	}
	return ipLayer{}, false
}

// enterTunnel finds the inner IP header of a UDP-tunnelled super-frame,
// which ends where the inner L4 header (the checksum start) begins and is
// preceded by its EtherType, as in VXLAN and Geneve's inner Ethernet frame.
func (s *segmenter) enterTunnel(frame []byte, outer ipLayer, innerL4 int) (ipLayer, bool) {
	if innerL4+minTCPHeader > len(frame) || outer.l4+udpHeaderLen > len(frame) {
		return ipLayer{}, false
	}
	s.tunnel, s.outer = true, outer
	s.outerSum = binary.BigEndian.Uint16(frame[outer.l4+6:]) != 0
	first := outer.l4 + udpHeaderLen + 2 // room for an EtherType
	etherTypeAt := func(off int) uint16 { return binary.BigEndian.Uint16(frame[off-2:]) }
	if off := innerL4 - ipv6HeaderLen; off >= first && etherTypeAt(off) == etherTypeIPv6 {
		if ip, ok := parseIP(frame, off, etherTypeIPv6); ok && ip.l4 == innerL4 {
			return ip, true
		}
	}
	for ihl := 5; ihl <= 15; ihl++ {
		off := innerL4 - ihl*4
		if off < first {
			break
		}
		if frame[off] == 0x40|byte(ihl) && etherTypeAt(off) == etherTypeIPv4 {
			return parseIP(frame, off, etherTypeIPv4)
		}
	}
	return ipLayer{}, false
}

// findPayload sizes the L4 header and checks that a segment fits a frame.
func (s *segmenter) findPayload(frame []byte) bool {
	s.hlen = s.l4 + udpHeaderLen
	if s.tcp {
		if s.l4+minTCPHeader > len(frame) {
			return false
		}
		s.hlen = s.l4 + int(frame[s.l4+12]>>4)*4
		s.seq = binary.BigEndian.Uint32(frame[s.l4+4:])
		if s.hlen < s.l4+minTCPHeader {
			return false
		}
	}
	return s.hlen < len(frame) && s.hlen+s.mss <= MaxFrame
}

// emit writes the next segment into dst (capacity >= MaxFrame) and returns
// its length. The segmenter goes idle after the last one.
func (s *segmenter) emit(dst []byte) int {
	payload := s.frame[s.hlen:]
	end := min(s.next+s.mss, len(payload))
	seg := dst[:s.hlen+end-s.next]
	copy(seg, s.frame[:s.hlen])
	copy(seg[s.hlen:], payload[s.next:end])
	last := end == len(payload)
	// Inside out: each checksum covers the fields fixed before it.
	s.fixL4(seg, s.next, last)
	s.fixIP(seg, s.inner)
	if s.tunnel {
		s.fixIP(seg, s.outer)
		s.fixTunnelUDP(seg)
	}
	s.next = end
	s.segIndex++
	if last {
		*s = segmenter{}
	}
	return len(seg)
}

// fixIP sets the length, and for IPv4 the per-segment ID and checksum.
func (s *segmenter) fixIP(seg []byte, l ipLayer) {
	ip := seg[l.off:]
	if !l.v4 {
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-ipv6HeaderLen))
		return
	}
	ihl := int(ip[0]&0x0f) * 4
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	binary.BigEndian.PutUint16(ip[4:], l.id+uint16(s.segIndex))
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip[:ihl], 0))
}

// fixL4 sets the per-segment TCP sequence number and flags (FIN and PSH
// only on the last piece, CWR only on the first) or UDP length, then the
// full checksum.
func (s *segmenter) fixL4(seg []byte, payloadOffset int, last bool) {
	l4 := seg[s.l4:]
	field := udpChecksumOffset
	if s.tcp {
		field = tcpChecksumOffset
		binary.BigEndian.PutUint32(l4[4:], s.seq+uint32(payloadOffset))
		if !last {
			l4[13] &^= tcpFlagFIN | tcpFlagPSH
		}
		if s.segIndex > 0 {
			l4[13] &^= tcpFlagCWR
		}
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(len(l4)))
	}
	putL4Checksum(seg, s.inner, l4, field, s.proto())
}

// fixTunnelUDP sets the outer UDP length, and its checksum if the tunnel
// uses one (a zero checksum means none over IPv4).
func (s *segmenter) fixTunnelUDP(seg []byte) {
	udp := seg[s.outer.l4:]
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	if s.outerSum {
		putL4Checksum(seg, s.outer, udp, udpChecksumOffset, ipProtoUDP)
	}
}

// putL4Checksum computes the checksum of l4 (from its header to the end of
// the segment) over the pseudo-header of ip, and stores it at field.
func putL4Checksum(seg []byte, ip ipLayer, l4 []byte, field int, proto byte) {
	l4[field], l4[field+1] = 0, 0
	var pseudo uint16
	if ip.v4 {
		pseudo = packet.PseudoHeaderChecksum(proto, seg[ip.off+12:ip.off+16], seg[ip.off+16:ip.off+20], uint32(len(l4)))
	} else {
		pseudo = packet.PseudoHeaderChecksum(proto, seg[ip.off+8:ip.off+24], seg[ip.off+24:ip.off+40], uint32(len(l4)))
	}
	csum := ^packet.Checksum(l4, pseudo)
	if csum == 0 && proto == ipProtoUDP {
		csum = 0xffff
	}
	binary.BigEndian.PutUint16(l4[field:], csum)
}
