package netdev

import (
	"encoding/binary"

	"gvs/internal/packet"
)

// Passing GSO super-frames through.
//
// A system port that receives a TCP super-frame (up to 64 KiB, from a
// sender with TSO or a NIC with GRO) would otherwise cut it into about 44
// wire-size frames, each then switched, copied to mirrors and sent as its
// own packet. A caller that implements the OffloadPort side of the
// contract gets the super-frame whole instead, with an Offload saying what
// is left to do, and sends it with a Sender (tx.go), which hands it whole
// to outputs that take super-frames (the kernel or the NIC segments it, as
// it would for the Linux bridge) and cuts it for any other output.

// MaxSuperFrame is the largest frame ReadBatchOffload returns: a 64 KiB
// GSO packet plus link headers. Its buffers need that much room.
const MaxSuperFrame = superFrameMax

// Offload is the unfinished work of a GSO super-frame, as the kernel
// described it. The zero value means a complete wire-size frame.
type Offload struct {
	h   vnetHdr
	ecn bool // the sender set CWR: segments follow RFC 3168
}

// encode writes o as a virtio_net_hdr. hdr_len is left 0: the kernel
// works it out from the checksum offsets.
func (o Offload) encode(b []byte) {
	_ = b[vnetHdrLen-1]
	b[0], b[1] = o.h.flags, o.h.gsoType
	if o.ecn {
		b[1] |= vnetGSOECN
	}
	binary.NativeEndian.PutUint16(b[2:], 0)
	binary.NativeEndian.PutUint16(b[4:], o.h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], o.h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], o.h.csumOffset)
}

// IsSuper reports whether the frame is a super-frame to be segmented.
func (o Offload) IsSuper() bool { return o.h.isGSO() }

// OffloadPort is a Netdev that can pass super-frames through.
type OffloadPort interface {
	Netdev
	// ReadBatchOffload is ReadBatch, except that a super-frame that the
	// port could send out again as it is comes whole, with offs[i] set;
	// every other frame is complete, with a zero offs[i]. Each bufs[i]
	// has capacity >= MaxSuperFrame.
	ReadBatchOffload(bufs [][]byte, sizes []int, offs []Offload) (int, error)
}

// SuperFrameSource is an OffloadPort that may, by its configuration,
// never hand over a super-frame (a GRE or ERSPAN tunnel port, which
// delivers frames as they were sent): its reader then needs no buffers
// of MaxSuperFrame bytes.
type SuperFrameSource interface {
	OffloadPort
	PassesSuperFrames() bool
}

// Segmenter cuts super-frames into wire-size frames for outputs that
// cannot take them whole.
type Segmenter struct{ s segmenter }

// Start prepares frame, a super-frame described by o; false means it
// cannot be cut (it is then dropped).
func (g *Segmenter) Start(frame []byte, o Offload) bool { return g.s.start(frame, o.h, 0) }

// Left returns how many segments of the current super-frame Next has
// yet to write.
func (g *Segmenter) Left() int {
	s := &g.s
	if !s.active() || s.mss <= 0 {
		return 0
	}
	return (len(s.frame) - s.hlen - s.next + s.mss - 1) / s.mss
}

// Next writes the next segment into dst (capacity >= MaxFrame) and returns
// its length, or 0 once the super-frame is done.
func (g *Segmenter) Next(dst []byte) int {
	if !g.s.active() {
		return 0
	}
	return g.s.emit(dst)
}

// passThrough reports whether a super-frame received with header h can be
// sent out again as it is: plain TCP over IPv4 or IPv6 in an untagged
// Ethernet frame, with the checksum where the header says. Anything else
// (a tunnelled super-frame, whose virtio header can only describe the
// inner packet; a VLAN tag the kernel stripped; UDP GSO, which not every
// device takes) is segmented on receive as before.
//
// udp allows UDP GSO (USO) too, for a port whose kernel has it (6.2 and
// later: it takes such super-frames back, on packet sockets too).
func passThrough(frame []byte, h vnetHdr, tagged, udp bool) bool {
	proto := byte(ipProtoTCP)
	switch {
	case tagged || !h.needsCsum():
		return false
	case h.gsoType == vnetGSOUDPL4 && udp:
		proto = ipProtoUDP
	case h.gsoType != vnetGSOTCPv4 && h.gsoType != vnetGSOTCPv6:
		return false
	}
	l3, etherType, ok := l3Offset(frame)
	if !ok || l3 != ethHeaderLen {
		return false
	}
	ip, ok := parseIP(frame, l3, etherType)
	if !ok || ip.proto != proto || ip.l4 != int(h.csumStart) || !gsoMatchesIP(h.gsoType, ip.v4) {
		return false
	}
	// Outputs that cannot take it whole get it cut, so its segments must
	// fit in a frame.
	hdrs, ok := l4HeadersEnd(frame, ip.l4, proto)
	return ok && hdrs+int(h.gsoSize) <= MaxFrame
}

// l4HeadersEnd is where the payload of the TCP or UDP packet at l4 starts.
func l4HeadersEnd(frame []byte, l4 int, proto byte) (int, bool) {
	if proto == ipProtoUDP {
		return l4 + udpHeaderLen, l4+udpHeaderLen <= len(frame)
	}
	return tcpHeadersEnd(frame, l4)
}

// tcpHeadersEnd is where the payload of the TCP segment at l4 starts.
func tcpHeadersEnd(frame []byte, l4 int) (int, bool) {
	if l4+minTCPHeader > len(frame) {
		return 0, false
	}
	return l4 + int(frame[l4+12]>>4)*4, true
}

// NewTCPOffload describes frame, an untagged Ethernet frame holding one
// TCP packet over IPv4 or IPv6 with a partial checksum, as a super-frame
// to be cut into segments of mss payload bytes: what a port that builds
// super-frames itself (a test's) hands over. False if frame is not such
// a packet.
func NewTCPOffload(frame []byte, mss uint16) (Offload, bool) {
	l3, etherType, ok := l3Offset(frame)
	if !ok || mss == 0 {
		return Offload{}, false
	}
	ip, ok := parseIP(frame, l3, etherType)
	if !ok || ip.proto != ipProtoTCP || ip.l4 < 0 {
		return Offload{}, false
	}
	h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv6, gsoSize: mss,
		csumStart: uint16(ip.l4), csumOffset: 16} // TCP's checksum field
	if ip.v4 {
		h.gsoType = vnetGSOTCPv4
	}
	return Offload{h: h}, passThrough(frame, h, false, false)
}

// FirstSegmentLen is the length of the first segment that frame, a
// super-frame described by o, is cut into: its headers and gso_size bytes
// of payload (or all of it, if less).
func FirstSegmentLen(frame []byte, o Offload) int {
	proto := byte(ipProtoTCP)
	if o.h.gsoType == vnetGSOUDPL4 {
		proto = ipProtoUDP
	}
	hdrs, ok := l4HeadersEnd(frame, int(o.h.csumStart), proto)
	if !ok {
		return len(frame)
	}
	return min(len(frame), hdrs+int(o.h.gsoSize))
}

// Segments is how many frames frame, described by o, is on the wire: one,
// or for a super-frame the segments it is cut into.
func Segments(frame []byte, o Offload) int {
	if !o.IsSuper() || o.h.gsoSize == 0 {
		return 1
	}
	proto := byte(ipProtoTCP)
	if o.h.gsoType == vnetGSOUDPL4 {
		proto = ipProtoUDP
	}
	hdrs, ok := l4HeadersEnd(frame, int(o.h.csumStart), proto)
	if !ok || hdrs >= len(frame) {
		return 1
	}
	size := int(o.h.gsoSize)
	return (len(frame) - hdrs + size - 1) / size
}

// Rebase describes frame, a super-frame described by o whose headers the
// datapath changed (VLAN tags pushed or popped, fields set), as o did the
// original: the checksum start follows the transport header, and when
// fields changed (sets), the partial checksum is set again to the sum of
// the pseudo-header, which covers the addresses. False if frame is no
// longer a TCP packet that the offload can describe.
func (o Offload) Rebase(frame []byte, sets bool) (Offload, bool) {
	proto, field := byte(ipProtoTCP), tcpChecksumOffset
	if o.h.gsoType == vnetGSOUDPL4 {
		proto, field = ipProtoUDP, udpChecksumOffset
	}
	l3, etherType, ok := l3Offset(frame)
	if !ok {
		return Offload{}, false
	}
	ip, ok := parseIP(frame, l3, etherType)
	if !ok || ip.proto != proto || ip.l4 < 0 || !gsoMatchesIP(o.h.gsoType, ip.v4) {
		return Offload{}, false
	}
	if _, ok := l4HeadersEnd(frame, ip.l4, proto); !ok {
		return Offload{}, false
	}
	o.h.csumStart = uint16(ip.l4)
	if sets && o.h.needsCsum() {
		l4len := uint32(len(frame) - ip.l4)
		var sum uint16
		if ip.v4 {
			sum = packet.PseudoHeaderChecksum(proto, frame[l3+12:l3+16], frame[l3+16:l3+20], l4len)
		} else {
			sum = packet.PseudoHeaderChecksum(proto, frame[l3+8:l3+24], frame[l3+24:l3+40], l4len)
		}
		binary.BigEndian.PutUint16(frame[ip.l4+field:], sum)
	}
	return o, true
}

// OffloadFromVnetHdr reads the virtio_net_hdr a packet socket with
// PACKET_VNET_HDR puts before a frame (b holds at least its 10 bytes),
// for a reader outside netdev (a span session's source).
func OffloadFromVnetHdr(b []byte) Offload {
	return Offload{h: decodeVnetHdr(b), ecn: b[1]&vnetGSOECN != 0}
}
