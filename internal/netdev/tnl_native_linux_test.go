//go:build linux

package netdev

import (
	"bytes"
	"net/netip"
	"testing"

	"gvs/internal/packet"
)

// withNativeDevs replaces the registry of internal ports and the route
// table's kernel routes for one test.
func withNativeDevs(t *testing.T, devs map[string]*nativeDev, routes []Route) {
	t.Helper()
	nativeMu.Lock()
	old := nativeDevs.Load()
	nativeDevs.Store(&devs)
	nativeMu.Unlock()
	tunnelRouter.setCached(routes)
	t.Cleanup(func() {
		nativeMu.Lock()
		nativeDevs.Store(old)
		nativeMu.Unlock()
		tunnelRouter.setCached(nil)
	})
}

// TestTunnelUnderlayDecision: a tunnel leaves natively (kind 1) when the
// route to its remote leaves through a gvs internal port, and through
// the host's routing (kind 2) otherwise: a route through another
// device, no route, a local address, an IPv6 remote.
func TestTunnelUnderlayDecision(t *testing.T) {
	ul := &nativeDev{name: "ul"}
	ul.state.Store(&nativeState{ifindex: 7, mac: [6]byte{2, 0, 0, 0, 0, 8}, mtu: 1500,
		addrs: []netip.Prefix{mustPrefix("172.21.12.8/24")}})
	gone := &nativeDev{name: "ml"} // moved to another namespace: no state
	withNativeDevs(t, map[string]*nativeDev{"ul": ul, "ml": gone}, []Route{
		{Prefix: mustPrefix("172.21.12.0/24"), Dev: "ul", Src: mustAddr("172.21.12.8")},
		{Prefix: mustPrefix("172.21.12.8/32"), Dev: "ul", Src: mustAddr("172.21.12.8"), Local: true},
		{Prefix: mustPrefix("10.99.0.0/16"), Dev: "ul", GW: mustAddr("172.21.12.1"), Src: mustAddr("172.21.12.8")},
		{Prefix: mustPrefix("10.12.0.0/16"), Dev: "ml", Src: mustAddr("10.12.0.1")},
		{Prefix: mustPrefix("192.0.2.0/24"), Dev: "eth0", Src: mustAddr("192.0.2.10")},
	})
	for _, c := range []struct {
		remote string
		native bool
		gw     string
	}{
		{"172.21.12.163", true, ""},
		{"10.99.1.1", true, "172.21.12.1"},
		{"172.21.12.8", false, ""}, // our own address
		{"192.0.2.5", false, ""},   // a device gvs does not own
		{"10.12.4.9", false, ""},   // a gvs port outside gvsd's namespace
		{"198.51.100.1", false, ""},
		{"2001:db8::1", false, ""},
	} {
		w := &tunnelWriter{remote: mustAddr(c.remote), opts: &tunnelOptions{remote: mustAddr(c.remote)}}
		r, s, ok := w.nativeRoute()
		if ok != c.native {
			t.Errorf("remote %s: native=%v, want %v", c.remote, ok, c.native)
			continue
		}
		if ok && (s != ul.state.Load() || (c.gw != "" && r.GW != mustAddr(c.gw))) {
			t.Errorf("remote %s: route %+v", c.remote, r)
		}
	}
	w := &tunnelWriter{remote: mustAddr("172.21.12.163"), opts: &tunnelOptions{remote: mustAddr("172.21.12.163")}}
	if n := testing.AllocsPerRun(100, func() { w.nativeRoute() }); n != 0 {
		t.Errorf("the decision allocates %v times", n)
	}
}

// TestNativeInterceptKeepsOthers: ARP replies delivered to the port are
// learned and still reach the kernel; tunnel packets for the port's
// address with no tunnel port listening, and ordinary traffic, are the
// kernel's.
func TestNativeInterceptKeepsOthers(t *testing.T) {
	d := &nativeDev{name: "ul"}
	d.state.Store(&nativeState{ifindex: 7, addrs: []netip.Prefix{mustPrefix("172.21.12.8/24")}})
	tunnelNeighbours.Flush()
	t.Cleanup(tunnelNeighbours.Flush)
	reply := arpFrame(2, nbMAC, [4]byte{172, 21, 12, 9}, [4]byte{172, 21, 12, 8})
	other := make([]byte, 60)
	other[12], other[13] = 0x86, 0xdd
	var kept [][]byte
	var keptMeta []FrameMeta
	out, _ := d.intercept([][]byte{reply, other}, nil, &kept, &keptMeta)
	if len(out) != 2 {
		t.Fatalf("%d of 2 frames left for the kernel", len(out))
	}
	if m, ok := tunnelNeighbours.Lookup(mustAddr("172.21.12.9")); !ok || m != nbMAC {
		t.Error("the ARP reply was not learned")
	}
	frames := [][]byte{reply, other}
	if n := testing.AllocsPerRun(100, func() { d.intercept(frames, nil, &kept, &keptMeta) }); n != 0 {
		t.Errorf("intercept allocates %v times", n)
	}
}

// TestNativeInterceptDecapsulates: a GRE or VXLAN packet that the bridge
// delivers to an underlay port, for its address, is taken off before the
// kernel and its inner frame reaches the tunnel port; one with a key no
// port has is dropped and counted; one for another address is the
// kernel's.
func TestNativeInterceptDecapsulates(t *testing.T) {
	ns := newNetns(t)
	for _, typ := range []string{"gre", "vxlan"} {
		t.Run(typ, func(t *testing.T) {
			port, err := openIn(t, ns, Config{Name: "tnln", Type: typ, Options: map[string]string{"remote_ip": "172.21.12.9", "key": "16"}})
			if err != nil {
				t.Fatal(err)
			}
			defer port.Close()
			d := &nativeDev{name: "ul"}
			d.state.Store(&nativeState{ifindex: 7, addrs: []netip.Prefix{mustPrefix("172.21.12.8/24")}})
			outer := func(dst string, key uint32, inner []byte) []byte {
				tt := tunnelTypes[typ].typ
				e, err := packet.NewEncap(packet.TunnelConfig{Type: tt, Src: mustAddr("172.21.12.9"), Dst: mustAddr(dst), Key: key, HasKey: true, DF: true})
				if err != nil {
					t.Fatal(err)
				}
				f := make([]byte, packet.EthernetLen+packet.MaxTunnelHeader+len(inner))
				packet.Ethernet(f).SetType(packet.EtherTypeIPv4)
				n, err := e.Build(f[packet.EthernetLen:], inner, 0)
				if err != nil {
					t.Fatal(err)
				}
				copy(f[packet.EthernetLen+n:], inner)
				return f[:packet.EthernetLen+n+len(inner)]
			}
			inner := innerTestFrame(100)
			before := tunnelUnknown.Total()
			var kept [][]byte
			var keptMeta []FrameMeta
			frames := [][]byte{outer("172.21.12.8", 16, inner), outer("172.21.12.8", 99, inner), outer("172.21.12.50", 16, inner)}
			out, _ := d.intercept(frames, nil, &kept, &keptMeta)
			if len(out) != 1 || &out[0][0] != &frames[2][0] {
				t.Fatalf("%d frames left for the kernel, want only the one for another address", len(out))
			}
			if got := readOne(port); !bytes.Equal(got, inner) {
				t.Errorf("the tunnel port received %x, want the inner frame", got)
			}
			if tunnelUnknown.Total() != before+1 {
				t.Errorf("tunnel_unknown_remote went from %d to %d, want +1 (key 99)", before, tunnelUnknown.Total())
			}
		})
	}
}
