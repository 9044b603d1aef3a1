//go:build linux

package netdev

import (
	"encoding/binary"

	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// recvOuterMeta asks the kernel for the outer TOS and TTL of each
// tunnel packet as control messages (tun_tos, tun_ttl), where the
// socket does not deliver the IP header itself: UDP sockets and raw
// IPv6 sockets. Raw IPv4 sockets give the whole header, DF included.
func recvOuterMeta(fd int, k underlayKey) error {
	if k.v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1); err != nil {
			return err
		}
		return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1)
	}
	if k.udpPort == 0 {
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTOS, 1); err != nil {
		return err
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
}

// cmsgOuter reads the TOS and TTL control messages recvOuterMeta asked
// for. A socket does not tell DF or whether the UDP checksum was zero,
// so those stay unset.
func cmsgOuter(c []byte) packet.OuterMeta {
	var m packet.OuterMeta
	for len(c) >= unix.SizeofCmsghdr {
		// Read by bytes: c need not be aligned (see groSize).
		n := binary.NativeEndian.Uint64(c[0:8])
		level := int32(binary.NativeEndian.Uint32(c[8:12]))
		typ := int32(binary.NativeEndian.Uint32(c[12:16]))
		if n < unix.SizeofCmsghdr || n > uint64(len(c)) {
			return m
		}
		data := c[unix.SizeofCmsghdr:n]
		switch {
		case level == unix.IPPROTO_IP && typ == unix.IP_TOS && len(data) >= 1:
			m.TOS = data[0]
		case level == unix.IPPROTO_IP && typ == unix.IP_TTL && len(data) >= 4:
			m.TTL = uint8(binary.NativeEndian.Uint32(data))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_TCLASS && len(data) >= 4:
			m.TOS = uint8(binary.NativeEndian.Uint32(data))
		case level == unix.IPPROTO_IPV6 && typ == unix.IPV6_HOPLIMIT && len(data) >= 4:
			m.TTL = uint8(binary.NativeEndian.Uint32(data))
		}
		c = c[min(uint64(len(c)), (n+7)&^7):]
	}
	return m
}
