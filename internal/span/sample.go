package span

import (
	"encoding/binary"
	"errors"
	"fmt"

	"gvs/internal/packet"
)

// sampleRec is the record the tc program puts before each packet it
// hands to gvsd (see the rec* offsets).
type sampleRec struct {
	Time        uint64 // CLOCK_MONOTONIC, ns
	Len         uint32 // the packet's length
	Ifindex     uint32
	VLANPresent bool // the tag is in VLANTCI and VLANTPID, not in the frame
	VLANTCI     uint16
	VLANTPID    uint16
	GSOSize     uint16 // a super-frame's segment size, 0 if it is not one
	Dir         Direction
	CapLen      uint32 // the bytes of the packet that follow
	// The kernel's checksum state: Summed is skb->ip_summed; if
	// checksumPartial, the L4 checksum at CsumStart+CsumOffset (from
	// the frame's first byte, its VLAN tag left out) is not finished.
	Summed                uint8
	CsumStart, CsumOffset uint16
}

var errSample = errors.New("malformed sample")

// decodeSample reads a perf sample: the record, then the packet's first
// CapLen bytes (then up to 7 bytes of padding, which it leaves). The
// frame it returns is part of raw.
func decodeSample(raw []byte, r *sampleRec) ([]byte, error) {
	if len(raw) < sampleRecLen {
		return nil, fmt.Errorf("%w: %d bytes, the record alone is %d", errSample, len(raw), sampleRecLen)
	}
	ne := binary.NativeEndian
	u32 := func(off int) uint32 { return ne.Uint32(raw[off:]) }
	var tpid [2]byte
	// skb->vlan_proto is in network order in the kernel's memory.
	ne.PutUint16(tpid[:], uint16(u32(recVLANProto)))
	*r = sampleRec{Time: ne.Uint64(raw[recTime:]), Len: u32(recLen), Ifindex: u32(recIfindex),
		VLANPresent: u32(recVLANPresent) != 0, VLANTCI: uint16(u32(recVLANTCI)), VLANTPID: binary.BigEndian.Uint16(tpid[:]),
		GSOSize: uint16(min(u32(recGSOSize), 0xffff)), Dir: Direction(u32(recDir)), CapLen: u32(recCapLen),
		Summed: uint8(u32(recSummed) & 3), CsumStart: ne.Uint16(raw[recCsumStart:]), CsumOffset: ne.Uint16(raw[recCsumOffset:])}
	switch {
	case r.Dir != In && r.Dir != Out:
		return nil, fmt.Errorf("%w: direction %d", errSample, r.Dir)
	case int64(r.CapLen) > int64(len(raw)-sampleRecLen):
		return nil, fmt.Errorf("%w: %d bytes of packet announced, %d there", errSample, r.CapLen, len(raw)-sampleRecLen)
	case r.CapLen > r.Len:
		return nil, fmt.Errorf("%w: %d bytes of a %d-byte packet", errSample, r.CapLen, r.Len)
	case r.CapLen < 14:
		return nil, fmt.Errorf("%w: %d bytes, not an Ethernet frame", errSample, r.CapLen)
	}
	if r.VLANPresent && r.VLANTPID == 0 {
		r.VLANTPID = 0x8100
	}
	return raw[sampleRecLen : sampleRecLen+int(r.CapLen)], nil
}

// withTag puts back into frame the VLAN tag the kernel keeps out of it,
// in buf (which must hold len(frame)+4 bytes).
func withTag(buf, frame []byte, tpid, tci uint16) []byte {
	n := copy(buf, frame[:12])
	binary.BigEndian.PutUint16(buf[n:], tpid)
	binary.BigEndian.PutUint16(buf[n+2:], tci)
	n += 4 + copy(buf[n+4:], frame[12:])
	return buf[:n]
}

// finishChecksum finishes the L4 checksum of a whole packet that the
// kernel left partial (the record says checksumPartial: local traffic,
// or traffic from a veth, with checksum offload on), so that every
// destination gets a packet as a wire would carry it; tagged says a VLAN
// tag was put back into frame before the checksummed part. A super-frame
// is not finished here: its destinations cut it and finish each segment
// (superFrameVnet). False if the record's offsets do not fit the frame.
func finishChecksum(frame []byte, r *sampleRec, tagged bool) bool {
	if r.Summed != checksumPartial || r.GSOSize > 0 {
		return true
	}
	start := int(r.CsumStart)
	if tagged {
		start += 4
	}
	return packet.FinishChecksum(frame, start, int(r.CsumOffset)) == nil
}

// finishVnetChecksum finishes the checksum a virtio header marks
// NEEDS_CSUM (a partial checksum, of a super-frame or of a packet from
// the AF_PACKET path) in frame itself, for destinations that write the
// packet as it is (pcap): a super-frame's checksum then covers the whole
// super-frame, as its IP header's length does.
func finishVnetChecksum(frame []byte, h *[vnetHdrLen]byte) {
	if h[0]&vnetNeedsCsum == 0 {
		return
	}
	ne := binary.NativeEndian
	_ = packet.FinishChecksum(frame, int(ne.Uint16(h[6:])), int(ne.Uint16(h[8:])))
}

// virtio_net_hdr values (include/uapi/linux/virtio_net.h).
const (
	vnetNeedsCsum = 1
	vnetGSOTCPv4  = 1
	vnetGSOTCPv6  = 4
	vnetGSOUDPL4  = 5
)

// superFrameVnet describes a super-frame (a packet the kernel will cut
// into segments of gsoSize bytes) with a virtio header, as the AF_PACKET
// path's PACKET_VNET_HDR does, so that dev: and tunnel destinations cut
// it and finish its checksums: false if it is not TCP or UDP over IP.
// Unless its checksum is partial (the L4 field already holds the
// pseudo-header's sum: a super-frame a local socket or a veth made), the
// super-frame came from GRO and its field holds the first segment's
// checksum: it is replaced by the pseudo-header's sum, which NEEDS_CSUM
// asks for.
func superFrameVnet(frame []byte, gsoSize uint16, partial bool, key *packet.Key, off *packet.Offsets, h *[vnetHdrLen]byte) bool {
	if packet.Parse(frame, 0, key, off) != nil || off.L4 == 0 || off.Payload <= off.L4 {
		return false
	}
	var typ uint8
	var csumOff uint16
	switch {
	case key.NwProto == packet.ProtoTCP && key.DlType == packet.EtherTypeIPv4:
		typ, csumOff = vnetGSOTCPv4, 16
	case key.NwProto == packet.ProtoTCP && key.DlType == packet.EtherTypeIPv6:
		typ, csumOff = vnetGSOTCPv6, 16
	case key.NwProto == packet.ProtoUDP:
		typ, csumOff = vnetGSOUDPL4, 6
	default:
		return false
	}
	field := int(off.L4) + int(csumOff)
	if field+2 > len(frame) {
		return false
	}
	if !partial {
		var src, dst []byte
		if ip := frame[off.L3:]; key.DlType == packet.EtherTypeIPv4 && len(ip) >= 20 {
			src, dst = ip[12:16], ip[16:20]
		} else if len(ip) >= 40 {
			src, dst = ip[8:24], ip[24:40]
		} else {
			return false
		}
		sum := packet.PseudoHeaderChecksum(key.NwProto, src, dst, uint32(len(frame)-int(off.L4)))
		binary.BigEndian.PutUint16(frame[field:], sum)
	}
	ne := binary.NativeEndian
	h[0], h[1] = vnetNeedsCsum, typ
	ne.PutUint16(h[2:], off.Payload)
	ne.PutUint16(h[4:], gsoSize)
	ne.PutUint16(h[6:], off.L4)
	ne.PutUint16(h[8:], csumOff)
	return true
}
