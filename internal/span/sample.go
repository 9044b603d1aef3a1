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
		GSOSize: uint16(min(u32(recGSOSize), 0xffff)), Dir: Direction(u32(recDir)), CapLen: u32(recCapLen)}
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
func superFrameVnet(frame []byte, gsoSize uint16, key *packet.Key, off *packet.Offsets, h *[vnetHdrLen]byte) bool {
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
	ne := binary.NativeEndian
	h[0], h[1] = vnetNeedsCsum, typ
	ne.PutUint16(h[2:], off.Payload)
	ne.PutUint16(h[4:], gsoSize)
	ne.PutUint16(h[6:], off.L4)
	ne.PutUint16(h[8:], csumOff)
	return true
}
