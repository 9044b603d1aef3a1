//go:build linux

package netdev

import (
	"errors"
	"testing"
)

// A TCP transfer inside a VXLAN tunnel between two namespaces whose
// underlay crosses two system ports: the sender's veth hands the port
// UDP-tunnel GSO super-frames, which must be segmented with both the
// outer and the inner headers fixed. Over an IPv6 underlay the outer UDP
// checksum is in use too.
func TestSystemTCPInsideVXLAN(t *testing.T) {
	for _, underlay := range []struct{ name, addr1, addr2 string }{
		{"ipv4", "198.51.100.1", "198.51.100.2"},
		{"ipv6", "2001:db8::1", "2001:db8::2"},
	} {
		t.Run(underlay.name, func(t *testing.T) {
			needRoot(t)
			sw, ns1, ns2 := newSwitchNetns(t), newNetns(t), newNetns(t)
			h1, peer1 := newVeth(t, sw, ns1, "198.51.100.1/24")
			h2, peer2 := newVeth(t, sw, ns2, "198.51.100.2/24")
			if underlay.name == "ipv6" {
				run(t, "ip", "-n", ns1, "addr", "add", underlay.addr1+"/64", "dev", peer1, "nodad")
				run(t, "ip", "-n", ns2, "addr", "add", underlay.addr2+"/64", "dev", peer2, "nodad")
			}
			for _, side := range []struct{ ns, remote, inner string }{
				{ns1, underlay.addr2, "203.0.113.1/24"},
				{ns2, underlay.addr1, "203.0.113.2/24"},
			} {
				if out, err := runErr("ip", "-n", side.ns, "link", "add", "gvndvx", "type", "vxlan", "id", "42",
					"dstport", "4789", "remote", side.remote); err != nil {
					t.Skipf("no vxlan support: %s", out)
				}
				run(t, "ip", "-n", side.ns, "addr", "add", side.inner, "dev", "gvndvx")
				run(t, "ip", "-n", side.ns, "link", "set", "gvndvx", "up")
			}
			d1, err1 := openIn(t, sw, Config{Name: h1})
			d2, err2 := openIn(t, sw, Config{Name: h2})
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			p1, p2 := d1.(*afpacketPort), d2.(*afpacketPort)
			done1, done2 := make(chan struct{}), make(chan struct{})
			go forward(p1, p2, done1)
			go forward(p2, p1, done2)
			t.Cleanup(func() { p1.Close(); p2.Close(); <-done1; <-done2 })
			pingFrom(t, ns1, "203.0.113.2", 2)
			elapsed := transferTCP(t, ns1, ns2, "203.0.113.2", 8<<20)
			t.Logf("8 MiB through VXLAN in %v; p1 %+v; super-frames %d", elapsed, p1.Stats(), p1.rd.superFrames.Load())
			if p1.rd.superFrames.Load() == 0 {
				t.Error("no tunnel super-frame was received: segmentation went untested")
			}
			if st := p1.Stats(); st.RxDropped+st.RxErrors != 0 {
				t.Errorf("p1 dropped frames: %+v", st)
			}
		})
	}
}
