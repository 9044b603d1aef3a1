//go:build linux

package netdev

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"gvs/internal/coverage"
)

// tunnelGROReads counts received buffers that held more than one
// datagram.
var tunnelGROReads = coverage.New("tunnel_udp_gro")

// UDP GRO on the VXLAN and Geneve receiving sockets: the kernel hands
// over datagrams of one flow joined into one buffer (a sender's UDP GSO
// send arrives whole over a veth; a device with GRO joins them too), and
// a UDP_GRO control message says the size of each; the last may be
// shorter. The reader cuts the buffer back into datagrams and
// decapsulates each, so one recvmmsg slot carries up to 64 tunnel packets.

const (
	// groRecvBuf holds the largest joined buffer: a whole UDP payload. A
	// smaller buffer would cut it and lose every datagram in it.
	groRecvBuf = 0xffff
	// underlayCtrlLen holds the packet-info and UDP_GRO control messages
	// with room to spare (IPv6: 40 + 24 bytes).
	underlayCtrlLen = 128
)

// enableGRO asks for joined datagrams on a UDP receiving socket. A kernel
// without UDP_GRO delivers them one by one, which works too.
func enableGRO(fd int) {
	_ = unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1)
}

// groSize finds the datagram size in a UDP_GRO control message; 0 if
// there is none (the buffer is one datagram).
func groSize(c []byte) int {
	for len(c) >= unix.SizeofCmsghdr {
		// struct cmsghdr on 64-bit Linux: length (8 bytes), level, type;
		// read by bytes, as c need not be aligned.
		n := binary.NativeEndian.Uint64(c[0:8])
		level := int32(binary.NativeEndian.Uint32(c[8:12]))
		typ := int32(binary.NativeEndian.Uint32(c[12:16]))
		if n < unix.SizeofCmsghdr || n > uint64(len(c)) {
			return 0
		}
		data := c[unix.SizeofCmsghdr:n]
		if level == unix.SOL_UDP && typ == unix.UDP_GRO && len(data) >= 4 {
			return int(binary.NativeEndian.Uint32(data))
		}
		c = c[min(uint64(len(c)), (n+7)&^7):]
	}
	return 0
}

// nextDatagram cuts the first datagram off a received buffer b whose
// datagrams are size bytes (the last may be shorter; size 0: b is one).
func nextDatagram(b []byte, size int) (first, rest []byte) {
	if size <= 0 || size >= len(b) {
		return b, nil
	}
	return b[:size], b[size:]
}
