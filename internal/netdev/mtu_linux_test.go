//go:build linux

package netdev

import (
	"strings"
	"testing"
)

// TestMTURequestOutOfRange: mtu_request is any positive 64-bit integer
// in the database; the kernel takes an int. 2^32+1400 was cut to 1400
// and set on the device without a word, and 2^31 came out negative. A
// value above MaxMTU now fails the open with an error naming it, and the
// device keeps its MTU.
func TestMTURequestOutOfRange(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	run(t, "ip", "-n", ns, "link", "add", "mtud", "type", "veth", "peer", "name", "mtudp")
	run(t, "ip", "-n", ns, "link", "set", "mtud", "mtu", "1500")
	for _, tc := range []struct {
		typ, name string
		mtu       int
	}{
		{"system", "mtud", 1<<32 + 1400},
		{"system", "mtud", MaxMTU + 1},
		{"internal", "mtutap", 1<<32 + 1400},
	} {
		dev, err := openIn(t, ns, Config{Name: tc.name, Type: tc.typ, MTU: tc.mtu})
		if err == nil {
			dev.Close()
			t.Errorf("%s %s with mtu_request %d opened", tc.typ, tc.name, tc.mtu)
		} else if !strings.Contains(err.Error(), "mtu_request") {
			t.Errorf("%s %s with mtu_request %d: %v, want an error about mtu_request", tc.typ, tc.name, tc.mtu, err)
		}
	}
	if ifi, err := interfaceIn(t, ns, "mtud"); err != nil || ifi.MTU != 1500 {
		t.Errorf("mtud after the refused opens: %v, %v; want MTU 1500", ifi, err)
	}
	if _, err := interfaceIn(t, ns, "mtutap"); err == nil {
		t.Errorf("the refused internal port's device was left behind")
	}
}
