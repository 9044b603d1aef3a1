//go:build linux

package netdev

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestParseKernelRouteLocalSrc: a local route keeps its preferred source,
// as OVS 3.1's ovs/route/show prints it ("Cached: 127.0.0.0/8 dev lo SRC
// 127.0.0.1 local"), and takes its own address without one.
func TestParseKernelRouteLocalSrc(t *testing.T) {
	msg := func(dst []byte, plen uint8, prefsrc []byte) *syscall.NetlinkMessage {
		attr := func(typ uint16, v []byte) []byte {
			b := make([]byte, 4, 8+len(v))
			binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
			binary.NativeEndian.PutUint16(b[2:], typ)
			b = append(b, v...)
			for len(b)%4 != 0 {
				b = append(b, 0)
			}
			return b
		}
		data := []byte{unix.AF_INET, plen, 0, 0, unix.RT_TABLE_LOCAL, unix.RTPROT_KERNEL, unix.RT_SCOPE_HOST, unix.RTN_LOCAL, 0, 0, 0, 0}
		data = append(data, attr(unix.RTA_DST, dst)...)
		if prefsrc != nil {
			data = append(data, attr(unix.RTA_PREFSRC, prefsrc)...)
		}
		oif := make([]byte, 4)
		binary.NativeEndian.PutUint32(oif, 1)
		data = append(data, attr(unix.RTA_OIF, oif)...)
		return &syscall.NetlinkMessage{Header: syscall.NlMsghdr{Type: unix.RTM_NEWROUTE, Len: uint32(unix.SizeofNlMsghdr + len(data))}, Data: data}
	}
	names := map[int]string{1: "lo"}
	r, ok := parseKernelRoute(msg([]byte{127, 0, 0, 0}, 8, []byte{127, 0, 0, 1}), names, nil)
	if !ok || r.Src != netip.MustParseAddr("127.0.0.1") || r.Prefix.String() != "127.0.0.0/8" || !r.Local {
		t.Errorf("local 127.0.0.0/8 src 127.0.0.1: %+v %v", r, ok)
	}
	r, ok = parseKernelRoute(msg([]byte{127, 0, 0, 1}, 32, nil), names, nil)
	if !ok || r.Src != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("local 127.0.0.1 without a preferred source: %+v %v", r, ok)
	}
}
