package netdev

import "encoding/binary"

// vnetHdrLen is the size of struct virtio_net_hdr, the header the kernel
// puts in front of each frame on TAP devices opened with IFF_VNET_HDR and
// on packet sockets with PACKET_VNET_HDR. It tells which checksum the
// sender left unfinished and whether the frame is a GSO super-frame.
const vnetHdrLen = 10

// virtio_net_hdr flags and GSO types (linux/virtio_net.h).
const (
	vnetFlagNeedsCsum = 1

	vnetGSONone  = 0
	vnetGSOTCPv4 = 1
	vnetGSOUDP   = 3 // UFO: IP fragmentation, no longer produced by Linux
	vnetGSOTCPv6 = 4
	vnetGSOUDPL4 = 5
	vnetGSOECN   = 0x80
)

// vnetHdr is a decoded virtio_net_hdr. The kernel writes it in the host's
// byte order for packet sockets and for TAP devices without TUNSETVNETLE/BE.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8 // without the ECN bit
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVnetHdr(b []byte) vnetHdr {
	_ = b[vnetHdrLen-1]
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1] &^ vnetGSOECN,
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

func (h vnetHdr) needsCsum() bool { return h.flags&vnetFlagNeedsCsum != 0 }
func (h vnetHdr) isGSO() bool     { return h.gsoType != vnetGSONone }

// finish completes an offloaded checksum in place; false means the header
// points outside the frame.
func (h vnetHdr) finish(frame []byte) bool {
	if !h.needsCsum() {
		return true
	}
	return completeChecksum(frame, int(h.csumStart), int(h.csumOffset))
}
