//go:build linux

package netdev

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A tunnel's receiving UDP socket learns the outer TOS and TTL of each
// datagram (tun_tos, tun_ttl) from the kernel's control messages, over
// IPv4 and IPv6 (loopback: nothing leaves the host).
func TestUnderlayOuterTOSTTL(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		name := map[bool]string{false: "IPv4", true: "IPv6"}[v6]
		t.Run(name, func(t *testing.T) {
			port := uint16(40000 + time.Now().UnixNano()%20000)
			fd, err := underlaySocket(underlayKey{v6: v6, udpPort: port})
			if err != nil {
				t.Skipf("no UDP socket on port %d: %v", port, err)
			}
			defer unix.Close(fd)
			family, level, tosOpt, ttlOpt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_TOS, unix.IP_TTL
			var to unix.Sockaddr = &unix.SockaddrInet4{Port: int(port), Addr: [4]byte{127, 0, 0, 1}}
			if v6 {
				family, level, tosOpt, ttlOpt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, unix.IPV6_UNICAST_HOPS
				to = &unix.SockaddrInet6{Port: int(port), Addr: [16]byte{15: 1}}
			}
			s, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(s)
			if err := unix.SetsockoptInt(s, level, tosOpt, 0x28); err != nil {
				t.Fatal(err)
			}
			if err := unix.SetsockoptInt(s, level, ttlOpt, 9); err != nil {
				t.Fatal(err)
			}
			if err := unix.Sendto(s, []byte("tunnel"), 0, to); err != nil {
				t.Fatal(err)
			}
			if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2}); err != nil {
				t.Fatal(err)
			}
			if err := unix.SetNonblock(fd, false); err != nil {
				t.Fatal(err)
			}
			buf, oob := make([]byte, 64), make([]byte, underlayCtrlLen)
			_, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
			if err != nil {
				t.Fatal(err)
			}
			if m := cmsgOuter(oob[:oobn]); m.TOS != 0x28 || m.TTL != 9 {
				t.Errorf("outer %+v, want TOS 0x28 TTL 9", m)
			}
		})
	}
}

// Malformed control messages give zeros, never a panic.
func TestCmsgOuterMalformed(t *testing.T) {
	c := make([]byte, unix.CmsgSpace(4))
	binary.NativeEndian.PutUint64(c[0:], uint64(unix.CmsgLen(4)))
	binary.NativeEndian.PutUint32(c[8:], unix.IPPROTO_IP)
	binary.NativeEndian.PutUint32(c[12:], unix.IP_TTL)
	c[unix.SizeofCmsghdr] = 7
	if m := cmsgOuter(c); m.TTL != 7 {
		t.Errorf("TTL %d, want 7", m.TTL)
	}
	for _, b := range [][]byte{nil, c[:10], c[:unix.SizeofCmsghdr+2], make([]byte, 32)} {
		if m := cmsgOuter(b); m.TTL != 0 || m.TOS != 0 {
			t.Errorf("%x: %+v", b, m)
		}
	}
}

func FuzzCmsgOuter(f *testing.F) {
	c := make([]byte, unix.CmsgSpace(1))
	binary.NativeEndian.PutUint64(c[0:], uint64(unix.CmsgLen(1)))
	binary.NativeEndian.PutUint32(c[8:], unix.IPPROTO_IP)
	binary.NativeEndian.PutUint32(c[12:], unix.IP_TOS)
	f.Add(c)
	f.Fuzz(func(t *testing.T, b []byte) { _ = cmsgOuter(b) })
}
