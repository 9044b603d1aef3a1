package vswitchd

import (
	"net/netip"
	"strings"
	"testing"

	"gvs/internal/netdev"
)

// TestRouteAndNeighFormats compares the lines gvs prints with what the
// real OVS 3.1 printed for the same routes and neighbours (ovs-vswitchd
// with datapath_type=netdev, bridge ul holding 172.21.12.8/24).
func TestRouteAndNeighFormats(t *testing.T) {
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	for _, c := range []struct {
		r    netdev.Route
		want string
	}{
		{netdev.Route{Prefix: p("172.21.12.8/32"), Dev: "ul", Src: a("172.21.12.8"), Local: true}, "Cached: 172.21.12.8/32 dev ul SRC 172.21.12.8 local\n"},
		{netdev.Route{Prefix: p("172.21.12.0/24"), Dev: "ul", Src: a("172.21.12.8")}, "Cached: 172.21.12.0/24 dev ul SRC 172.21.12.8\n"},
		{netdev.Route{Prefix: p("10.99.0.0/16"), Dev: "ul", GW: a("172.21.12.9"), Src: a("172.21.12.8")}, "Cached: 10.99.0.0/16 dev ul GW 172.21.12.9 SRC 172.21.12.8\n"},
		{netdev.Route{Prefix: p("10.52.0.0/16"), Dev: "ul", GW: a("172.21.12.9"), Src: a("172.21.12.8"), Mark: 5, User: true}, "User: 10.52.0.0/16 MARK 5 dev ul GW 172.21.12.9 SRC 172.21.12.8\n"},
		{netdev.Route{Prefix: p("::1/128"), Dev: "lo", Src: a("::1"), Local: true}, "Cached: ::1/128 dev lo SRC ::1 local\n"},
	} {
		if got := formatRoute(c.r); got != c.want {
			t.Errorf("route line %q, OVS 3.1 printed %q", got, c.want)
		}
	}
	netdev.TunnelNeighbours().Flush()
	t.Cleanup(netdev.TunnelNeighbours().Flush)
	if _, err := tnlNeighSet([]string{"ul", "172.21.12.9", "ea:b7:3d:79:7a:f3"}); err != nil {
		t.Fatal(err)
	}
	out, _ := tnlNeighShow(nil)
	want := "IP                                            MAC                 Bridge\n" +
		"==========================================================================\n" +
		"172.21.12.9                                   ea:b7:3d:79:7a:f3   ul\n"
	if out != want {
		t.Errorf("tnl/neigh/show:\n%s\nOVS 3.1 printed:\n%s", out, want)
	}
	for args, msg := range map[[3]string]string{
		{"ul", "1.2.3", "aa:bb:cc:dd:ee:ff"}: "bad IP address",
		{"ul", "1.2.3.4", "zz"}:              "bad MAC address",
		// Up to 4096 entries each keep their bridge's name: a name as
		// long as appctl allows (1 MiB) would hold 4 GiB.
		{strings.Repeat("b", 1<<20), "1.2.3.4", "aa:bb:cc:dd:ee:ff"}: "bad bridge name: longer than 15 bytes",
		{"", "1.2.3.4", "aa:bb:cc:dd:ee:ff"}:                         "bad bridge name: empty",
	} {
		if _, err := tnlNeighSet(args[:]); err == nil || err.Error() != msg {
			t.Errorf("tnl/neigh/set %.40q (%d bytes) %v %v: %v, want %q", args[0], len(args[0]), args[1], args[2], err, msg)
		}
	}
	if _, err := ovsRouteAdd([]string{"10.53.0.0/16", "nosuch-gvs-port"}); err == nil || err.Error() != "Error while inserting route." {
		t.Errorf("ovs/route/add through a device gvs does not own: %v", err)
	}
	if _, err := ovsRouteAdd([]string{"10.54.0.0/16", "ul", "src=172.21.12.8"}); err == nil || !strings.Contains(err.Error(), "Invalid pkt_mark or gateway") {
		t.Errorf("ovs/route/add with a bad gateway: %v", err)
	}
	if _, err := ovsRouteDel([]string{"10.50.0.0/16"}); err == nil || err.Error() != "Not found" {
		t.Errorf("ovs/route/del of a route that is not there: %v", err)
	}
}

// TestRouteAndNeighFormatsIPv6: IPv6 routes and neighbours print as the
// real OVS 3.1 printed them (bridge ul holding 2001:db8:5::1/64).
func TestRouteAndNeighFormatsIPv6(t *testing.T) {
	a, p := netip.MustParseAddr, netip.MustParsePrefix
	for _, c := range []struct {
		r    netdev.Route
		want string
	}{
		{netdev.Route{Prefix: p("2001:db8:5::1/128"), Dev: "ul", Src: a("2001:db8:5::1"), Local: true}, "Cached: 2001:db8:5::1/128 dev ul SRC 2001:db8:5::1 local\n"},
		{netdev.Route{Prefix: p("2001:db8:5::/64"), Dev: "ul", Src: a("2001:db8:5::1")}, "Cached: 2001:db8:5::/64 dev ul SRC 2001:db8:5::1\n"},
		{netdev.Route{Prefix: p("2001:db8:9::/64"), Dev: "ul", GW: a("2001:db8:5::2"), Src: a("2001:db8:5::1"), User: true}, "User: 2001:db8:9::/64 dev ul GW 2001:db8:5::2 SRC 2001:db8:5::1\n"},
	} {
		if got := formatRoute(c.r); got != c.want {
			t.Errorf("route line %q, OVS 3.1 printed %q", got, c.want)
		}
	}
	netdev.TunnelNeighbours().Flush()
	t.Cleanup(netdev.TunnelNeighbours().Flush)
	for _, n := range [][]string{{"ul", "2001:db8:5::77", "00:11:22:33:44:55"}, {"ul", "fe80::1", "00:11:22:33:44:56"}} {
		if _, err := tnlNeighSet(n); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := tnlNeighShow(nil)
	want := "IP                                            MAC                 Bridge\n" +
		"==========================================================================\n" +
		"2001:db8:5::77                                00:11:22:33:44:55   ul\n" +
		"fe80::1                                       00:11:22:33:44:56   ul\n"
	if out != want {
		t.Errorf("tnl/neigh/show:\n%s\nOVS 3.1 printed:\n%s", out, want)
	}
	for _, args := range [][]string{{"2001:db8:8::/64", "ul", "10.0.0.1"}, {"2001:db8:8::/64", "ul", "pkt_mark=x"}} {
		if _, err := ovsRouteAdd(args); err == nil || err.Error() != "Invalid pkt_mark or IPv6 gateway" {
			t.Errorf("ovs/route/add %v: %v, OVS 3.1 says %q", args, err, "Invalid pkt_mark or IPv6 gateway")
		}
	}
	if _, err := tnlNeighSet([]string{"ul", "fe80::1%ul", "00:11:22:33:44:56"}); err == nil || err.Error() != "bad IP address" {
		t.Errorf("tnl/neigh/set with a zone: %v", err)
	}
}
