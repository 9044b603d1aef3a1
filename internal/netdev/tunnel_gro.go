package netdev

import (
	"bytes"
	"encoding/binary"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// Joining decapsulated TCP segments back into super-frames (a GRO in
// user space).
//
// A TCP stream through a VXLAN or Geneve tunnel arrives as wire-size
// segments (UDP GRO only joins the outer datagrams; tunnel_gro_linux.go
// cuts them apart again). Handed one by one to the VM's port, each would
// cost a trip through the datapath and a packet-socket send, where the
// kernel's own vxlan device hands the receiver one 64 KiB GRO packet. So
// a tunnel port's reader joins consecutive segments of one flow into one
// super-frame, with an Offload saying how to cut it again, as a system
// port hands over a TSO super-frame: outputs that take super-frames get
// it whole (the VM's TCP takes it as the kernel's GRO would give it),
// the others get it cut by the Sender.
//
// What joins follows the kernel's TCP GRO: the same Ethernet, IP and TCP
// headers (addresses, ports, TOS, TTL, ack, window, options byte for
// byte), a sequence number that continues the super-frame, an IPv4 ID one
// more than the previous (or the same, with DF), the flags of a plain
// data segment (ACK, ECE; PSH only on the last), payloads of the first
// one's size (a shorter one ends the super-frame), at most 64 KiB in all.
// Every segment's checksums are verified first: the super-frame carries
// a partial checksum, which the receiver trusts, so a damaged segment
// must not hide in it (it goes on alone, for the receiver to drop). IP
// options, IPv6 extension headers, VLAN tags, fragments and padding are
// left alone.

var (
	// tunnelGROFrames counts super-frames joined from tunnel segments;
	// tunnelGROSegments the segments in them.
	tunnelGROFrames   = coverage.New("tunnel_gro_frames")
	tunnelGROSegments = coverage.New("tunnel_gro_segments")
)

// TCP flags that gso.go does not name.
const (
	tcpFlagACK = 0x10
	tcpFlagECE = 0x40
)

// groMaxIP is the largest IP packet a super-frame may hold: the IPv4
// total length field's limit, and the kernel's default GRO size.
const groMaxIP = 0xffff

// groJoiner builds one frame at a time in a caller's buffer: a segment
// copied in (start), others of its flow appended (join), and the result
// finished into a super-frame when more than one was joined (finish).
type groJoiner struct {
	dst  []byte // the buffer being filled; nil when no frame is open
	n    int    // bytes in dst
	segs int    // segments in dst
	open bool   // more segments may join
	l3   int    // IP header offset (always the Ethernet header's length)
	l4   int    // TCP header offset
	hlen int    // headers' length: where the payload starts
	v4   bool
	mss  int    // the first segment's payload
	seq  uint32 // the sequence number the next segment must have
	id   uint16 // the last IPv4 ID joined
	psh  bool   // the last segment had PSH
}

// start copies frame into dst (whose capacity bounds the super-frame)
// and returns its length; with join, later segments of its flow may be
// appended.
func (j *groJoiner) start(dst, frame []byte) int {
	dst = dst[:cap(dst)]
	j.n = copy(dst, frame)
	j.dst, j.segs, j.open, j.psh = dst, 1, false, false
	if j.n != len(frame) {
		return j.n
	}
	seg, ok := parseGROSegment(frame)
	if !ok || seg.flags != tcpFlagACK|seg.flags&tcpFlagECE {
		return j.n // not a plain data segment: nothing joins it
	}
	j.open = true
	j.l3, j.l4, j.hlen, j.v4 = ethHeaderLen, seg.l4, seg.hlen, seg.v4
	j.mss = len(frame) - seg.hlen
	j.seq = seg.seq + uint32(j.mss)
	j.id = seg.id
	return j.n
}

// join appends frame's payload to the open frame if frame is the next
// segment of its flow; false leaves everything as it was.
func (j *groJoiner) join(frame []byte) bool {
	if !j.open || len(frame) <= j.hlen || len(frame)-j.hlen > j.mss {
		return false
	}
	payload := len(frame) - j.hlen
	if j.n+payload > len(j.dst) || j.n+payload-j.l3 > groMaxIP {
		j.open = false // full
		return false
	}
	first := j.dst[:j.hlen]
	if !bytes.Equal(frame[:j.l3], first[:j.l3]) {
		return false
	}
	seg, ok := parseGROSegment(frame)
	if !ok || seg.hlen != j.hlen || seg.seq != j.seq || !j.sameHeaders(frame, seg) ||
		seg.flags&^tcpFlagPSH != first[j.l4+13] {
		return false
	}
	if j.segs == 1 && !groChecksumsOK(first[:j.n], j.l3, j.l4, j.v4) {
		j.open = false // the first segment is damaged: it goes alone
		return false
	}
	if !groChecksumsOK(frame, j.l3, j.l4, j.v4) {
		return false
	}
	j.n += copy(j.dst[j.n:], frame[j.hlen:])
	j.segs++
	j.seq += uint32(payload)
	j.id = seg.id
	if seg.flags&tcpFlagPSH != 0 || payload < j.mss {
		j.psh = seg.flags&tcpFlagPSH != 0
		j.open = false // only the last segment may be short or push
	}
	return true
}

// sameHeaders compares what must not change between segments: every IP
// field but the lengths, ID and header checksum; the TCP ports, ack,
// window, urgent pointer and options. The IPv4 ID must count up by one,
// or stay, with DF.
func (j *groJoiner) sameHeaders(frame []byte, seg groSegment) bool {
	ip, ip0 := frame[j.l3:j.l4], j.dst[j.l3:j.l4]
	if j.v4 {
		df := ip0[6]&0x40 != 0
		if seg.id != j.id+1 && (!df || seg.id != j.id) {
			return false
		}
		if !bytes.Equal(ip[:2], ip0[:2]) || !bytes.Equal(ip[6:10], ip0[6:10]) || !bytes.Equal(ip[12:20], ip0[12:20]) {
			return false
		}
	} else if !bytes.Equal(ip[:4], ip0[:4]) || !bytes.Equal(ip[6:40], ip0[6:40]) {
		return false
	}
	tcp, tcp0 := frame[j.l4:j.hlen], j.dst[j.l4:j.hlen]
	return bytes.Equal(tcp[:4], tcp0[:4]) && bytes.Equal(tcp[8:13], tcp0[8:13]) &&
		bytes.Equal(tcp[14:16], tcp0[14:16]) && bytes.Equal(tcp[18:], tcp0[18:])
}

// finish closes the frame and returns its length and offload: zero for
// a lone segment, left as it came; for a super-frame, the IP lengths and
// IPv4 header checksum of the whole, PSH if the last segment had it, and
// a partial TCP checksum (the pseudo-header's sum) to be finished or cut
// as a system port's TSO super-frame is.
func (j *groJoiner) finish() (int, Offload) {
	n, segs, f := j.n, j.segs, j.dst[:j.n]
	j.open, j.dst = false, nil
	if segs < 2 {
		return n, Offload{}
	}
	ip, tcp := f[j.l3:j.l4], f[j.l4:]
	gso := uint8(vnetGSOTCPv6)
	if j.v4 {
		gso = vnetGSOTCPv4
		binary.BigEndian.PutUint16(ip[2:], uint16(n-j.l3))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip, 0))
	} else {
		binary.BigEndian.PutUint16(ip[4:], uint16(n-j.l4))
	}
	if j.psh {
		tcp[13] |= tcpFlagPSH
	}
	var sum uint16
	if j.v4 {
		sum = packet.PseudoHeaderChecksum(ipProtoTCP, ip[12:16], ip[16:20], uint32(n-j.l4))
	} else {
		sum = packet.PseudoHeaderChecksum(ipProtoTCP, ip[8:24], ip[24:40], uint32(n-j.l4))
	}
	binary.BigEndian.PutUint16(tcp[tcpChecksumOffset:], sum)
	tunnelGROFrames.Inc()
	tunnelGROSegments.Add(uint64(segs))
	return n, Offload{h: vnetHdr{flags: vnetFlagNeedsCsum, gsoType: gso, gsoSize: uint16(j.mss),
		csumStart: uint16(j.l4), csumOffset: tcpChecksumOffset}}
}

// groSegment is what parseGROSegment found.
type groSegment struct {
	l4, hlen int
	v4       bool
	id       uint16
	seq      uint32
	flags    byte
}

// parseGROSegment reads frame as an untagged Ethernet frame holding
// exactly one TCP segment with a payload, over IPv4 without options or
// fragmentation, or over IPv6 without extension headers.
func parseGROSegment(frame []byte) (groSegment, bool) {
	var s groSegment
	if len(frame) < ethHeaderLen+ipv4HeaderLen+minTCPHeader {
		return s, false
	}
	ip := frame[ethHeaderLen:]
	switch binary.BigEndian.Uint16(frame[etherAddrsLen:]) {
	case etherTypeIPv4:
		if ip[0] != 0x45 || ip[9] != ipProtoTCP || int(binary.BigEndian.Uint16(ip[2:])) != len(ip) ||
			binary.BigEndian.Uint16(ip[6:])&0x3fff != 0 { // MF or an offset: a fragment
			return s, false
		}
		s.l4, s.v4, s.id = ethHeaderLen+ipv4HeaderLen, true, binary.BigEndian.Uint16(ip[4:])
	case etherTypeIPv6:
		if len(ip) < ipv6HeaderLen+minTCPHeader || ip[0]>>4 != 6 || ip[6] != ipProtoTCP ||
			int(binary.BigEndian.Uint16(ip[4:])) != len(ip)-ipv6HeaderLen {
			return s, false
		}
		s.l4 = ethHeaderLen + ipv6HeaderLen
	default:
		return s, false
	}
	tcp := frame[s.l4:]
	s.hlen = s.l4 + int(tcp[12]>>4)*4
	if s.hlen < s.l4+minTCPHeader || s.hlen >= len(frame) {
		return s, false
	}
	s.seq, s.flags = binary.BigEndian.Uint32(tcp[4:]), tcp[13]
	return s, true
}

// groChecksumsOK verifies a segment's IPv4 header checksum and its TCP
// checksum.
func groChecksumsOK(frame []byte, l3, l4 int, v4 bool) bool {
	ip := frame[l3:l4]
	var pseudo uint16
	if v4 {
		if packet.Checksum(ip, 0) != 0xffff {
			return false
		}
		pseudo = packet.PseudoHeaderChecksum(ipProtoTCP, ip[12:16], ip[16:20], uint32(len(frame)-l4))
	} else {
		pseudo = packet.PseudoHeaderChecksum(ipProtoTCP, ip[8:24], ip[24:40], uint32(len(frame)-l4))
	}
	return packet.Checksum(frame[l4:], pseudo) == 0xffff
}
