package netdev

import (
	"net"
	"net/netip"
	"testing"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }

// TestRouterLongestPrefixMatch: the most specific route wins whatever
// the insertion order, local routes win over others of the same length,
// user routes over cached ones, and pkt_mark separates routes.
func TestRouterLongestPrefixMatch(t *testing.T) {
	r := NewRouter()
	r.setCached([]Route{
		{Prefix: mustPrefix("0.0.0.0/0"), Dev: "eth0", GW: mustAddr("192.0.2.1"), Src: mustAddr("192.0.2.10")},
		{Prefix: mustPrefix("172.21.12.0/24"), Dev: "ul", Src: mustAddr("172.21.12.8")},
		{Prefix: mustPrefix("172.21.12.8/32"), Dev: "ul", Src: mustAddr("172.21.12.8"), Local: true},
		{Prefix: mustPrefix("10.0.0.0/8"), Dev: "eth0", Src: mustAddr("192.0.2.10")},
		{Prefix: mustPrefix("2001:db8::/32"), Dev: "ul6", Src: mustAddr("2001:db8::1")},
	})
	addrs := []netip.Prefix{mustPrefix("172.21.12.8/24")}
	if err := r.AddUser(mustPrefix("10.1.0.0/16"), "ul", mustAddr("172.21.12.1"), 0, addrs); err != nil {
		t.Fatal(err)
	}
	if err := r.AddUser(mustPrefix("10.1.2.0/24"), "ul", mustAddr("172.21.12.2"), 7, addrs); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dst  string
		mark uint32
		dev  string
		gw   string
	}{
		{"172.21.12.163", 0, "ul", ""},
		{"172.21.12.8", 0, "ul", ""},
		{"10.1.2.3", 0, "ul", "172.21.12.1"},
		{"10.1.2.3", 7, "ul", "172.21.12.2"},
		{"10.9.9.9", 0, "eth0", ""},
		{"198.51.100.1", 0, "eth0", "192.0.2.1"},
		{"2001:db8::5", 0, "ul6", ""},
	} {
		got, ok := r.Lookup(mustAddr(c.dst), c.mark)
		if !ok || got.Dev != c.dev || (c.gw != "" && got.GW != mustAddr(c.gw)) || (c.gw == "" && got.GW.IsValid()) {
			t.Errorf("Lookup(%s, mark %d) = %+v %v, want dev %s gw %q", c.dst, c.mark, got, ok, c.dev, c.gw)
		}
	}
	if got, _ := r.Lookup(mustAddr("172.21.12.8"), 0); !got.Local {
		t.Errorf("the local /32 did not win: %+v", got)
	}
	if _, ok := r.Lookup(mustAddr("2001:dead::1"), 0); ok {
		t.Error("an IPv6 address with no IPv6 route found one (the IPv4 default must not match)")
	}
	if _, ok := r.Lookup(mustAddr("10.1.2.3"), 9); ok {
		t.Error("a mark without a route found one")
	}
}

// TestRouterUserRoutes: a user route needs an address of the device on
// the gateway's (or destination's) subnet, as OVS's; only user routes
// can be deleted.
func TestRouterUserRoutes(t *testing.T) {
	r := NewRouter()
	r.setCached([]Route{{Prefix: mustPrefix("172.21.12.0/24"), Dev: "ul", Src: mustAddr("172.21.12.8")}})
	addrs := []netip.Prefix{mustPrefix("172.21.12.8/24")}
	if err := r.AddUser(mustPrefix("10.51.0.1/32"), "ul", netip.Addr{}, 0, addrs); err == nil {
		t.Error("a route off every subnet of ul without a gateway was accepted")
	}
	if err := r.AddUser(mustPrefix("10.50.7.0/16"), "ul", mustAddr("172.21.12.9"), 0, addrs); err != nil {
		t.Fatal(err)
	}
	got, ok := r.Lookup(mustAddr("10.50.1.1"), 0)
	if !ok || !got.User || got.Src != mustAddr("172.21.12.8") || got.Prefix != mustPrefix("10.50.0.0/16") {
		t.Errorf("user route = %+v %v", got, ok)
	}
	if err := r.DelUser(mustPrefix("172.21.12.0/24"), 0); err != ErrRouteNotFound {
		t.Errorf("deleting a cached route: %v, want Not found", err)
	}
	if err := r.DelUser(mustPrefix("10.50.0.0/16"), 0); err != nil {
		t.Error(err)
	}
	if err := r.DelUser(mustPrefix("10.50.0.0/16"), 0); err != ErrRouteNotFound {
		t.Errorf("deleting twice: %v", err)
	}
	r.setCached(nil) // a kernel sync does not lose user routes
	if err := r.AddUser(mustPrefix("10.60.0.0/16"), "ul", mustAddr("172.21.12.9"), 0, addrs); err != nil {
		t.Fatal(err)
	}
	r.setCached([]Route{{Prefix: mustPrefix("172.21.12.0/24"), Dev: "ul", Src: mustAddr("172.21.12.8")}})
	if _, ok := r.Lookup(mustAddr("10.60.0.1"), 0); !ok {
		t.Error("a kernel sync dropped a user route")
	}
}

func TestRouterLookupDoesNotAllocate(t *testing.T) {
	r := NewRouter()
	var rs []Route
	for i := range 200 {
		rs = append(rs, Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), Dev: "ul", Src: mustAddr("172.21.12.8")})
	}
	r.setCached(rs)
	dst := mustAddr("10.150.3.4")
	if n := testing.AllocsPerRun(100, func() { r.Lookup(dst, 0) }); n != 0 {
		t.Errorf("Lookup allocates %v times", n)
	}
}

func BenchmarkRouterLookup(b *testing.B) {
	r := NewRouter()
	r.setCached([]Route{
		{Prefix: mustPrefix("0.0.0.0/0"), Dev: "eth0", GW: mustAddr("192.0.2.1"), Src: mustAddr("192.0.2.10")},
		{Prefix: mustPrefix("172.21.12.0/24"), Dev: "ul", Src: mustAddr("172.21.12.8")},
		{Prefix: mustPrefix("172.21.12.8/32"), Dev: "ul", Src: mustAddr("172.21.12.8"), Local: true},
	})
	dst := mustAddr("172.21.12.163")
	b.ReportAllocs()
	for b.Loop() {
		r.Lookup(dst, 0)
	}
}

// TestRouterUserRoutesIPv6: IPv6 user routes pick their source among
// the device's IPv6 addresses, a gateway of the other family is refused,
// and the longest IPv6 prefix wins next to IPv4 routes.
func TestRouterUserRoutesIPv6(t *testing.T) {
	r := NewRouter()
	r.setCached([]Route{
		{Prefix: mustPrefix("2001:db8:5::/64"), Dev: "ul", Src: mustAddr("2001:db8:5::1")},
		{Prefix: mustPrefix("0.0.0.0/0"), Dev: "eth0", GW: mustAddr("192.0.2.1"), Src: mustAddr("192.0.2.10")},
	})
	addrs := []netip.Prefix{mustPrefix("172.21.12.8/24"), mustPrefix("fe80::8/64"), mustPrefix("2001:db8:5::1/64")}
	if err := r.AddUser(mustPrefix("2001:db8:99::/48"), "ul", mustAddr("2001:db8:5::2"), 0, addrs); err != nil {
		t.Fatal(err)
	}
	if err := r.AddUser(mustPrefix("2001:db8:98::/48"), "ul", mustAddr("172.21.12.9"), 0, addrs); err == nil {
		t.Error("an IPv6 route with an IPv4 gateway was accepted")
	}
	if err := r.AddUser(mustPrefix("2001:db8:97::/48"), "ul", netip.Addr{}, 0, addrs); err == nil {
		t.Error("an IPv6 route off every subnet of ul without a gateway was accepted")
	}
	got, ok := r.Lookup(mustAddr("2001:db8:99::7"), 0)
	if !ok || !got.User || got.Src != mustAddr("2001:db8:5::1") || got.GW != mustAddr("2001:db8:5::2") {
		t.Errorf("user route = %+v %v", got, ok)
	}
	if got, ok := r.Lookup(mustAddr("2001:db8:5::2"), 0); !ok || got.Dev != "ul" || got.GW.IsValid() {
		t.Errorf("on-link IPv6 route = %+v %v", got, ok)
	}
	if err := r.DelUser(mustPrefix("2001:db8:99::/48"), 0); err != nil {
		t.Error(err)
	}
}

// TestKernelRoutesIPv6: the route table copies the kernel's IPv6 routes
// of a device with an IPv6 address: the on-link prefix with the
// device's address as source, and the local address.
func TestKernelRoutesIPv6(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	dev := uniqueName(t, "u")
	run(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", uniqueName(t, "f")) // this kernel has no dummy
	run(t, "ip", "-n", ns, "-6", "addr", "add", "2001:db8:5::1/64", "dev", dev, "nodad")
	run(t, "ip", "-n", ns, "link", "set", dev, "up")
	var routes []Route
	var err error
	inNetns(t, ns, func() {
		ifc, e := net.InterfaceByName(dev)
		if e != nil {
			err = e
			return
		}
		addrs, e := kernelAddrs()
		if e != nil {
			err = e
			return
		}
		routes, err = kernelRoutes(map[int]string{ifc.Index: dev}, map[string][]netip.Prefix{dev: addrs[ifc.Index]})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[Route]bool{
		{Prefix: mustPrefix("2001:db8:5::/64"), Dev: dev, Src: mustAddr("2001:db8:5::1")}:                false,
		{Prefix: mustPrefix("2001:db8:5::1/128"), Dev: dev, Src: mustAddr("2001:db8:5::1"), Local: true}: false,
	}
	for _, r := range routes {
		if _, ok := want[r]; ok {
			want[r] = true
		}
	}
	for r, seen := range want {
		if !seen {
			t.Errorf("kernel routes lack %+v: %+v", r, routes)
		}
	}
}
