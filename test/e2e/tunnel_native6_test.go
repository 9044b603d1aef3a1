package e2e

import (
	"strings"
	"testing"
	"time"
)

// OVS's native tunnelling over an IPv6 underlay: as
// TestS4RemoteMirrorNativeUnderlay, but the only underlay addresses are
// IPv6 ones on each gvsd's bridge ul (no IPv4 there), so gvs routes the
// tunnel with the kernel's IPv6 routes of ul, resolves the next hop by
// neighbour discovery (its own solicitation, answered to ul) and
// decapsulates the IPv6 tunnel packets that bridge ul delivers to ul.
const (
	gvtnUnder6a, gvtnUnder6b = "2001:db8:12::8", "2001:db8:12::a3"
	gvtnUnder6Net            = "2001:db8:12::/64"
	gvtnRmonAddr             = "10.12.4.9"
)

// TestTunnelNativeIPv6Underlay: vm1 behind host1's bridge mtest pings
// 10.12.4.9 (rmon, behind host2's bridge mtest) over ip6gre, VXLAN and
// Geneve with IPv6 remote_ip, with both gvsd tunnelling natively; the
// neighbour caches are flushed before each type, so gvs has to solicit
// the next hop itself. The route and neighbour commands show and take
// IPv6 entries.
func TestTunnelNativeIPv6Underlay(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ping")
	for _, ns := range []string{gvtnH1, gvtnH2, gvtnVM1, gvtnRmon} {
		lab.netns(ns)
	}
	lab.vethIn(gvtnH1, "phy1", "phy2", gvtnH2)
	lab.vethIn(gvtnH1, "p1", "vm1eth", gvtnVM1, gvtnVMAddr1+"/24")
	g1, g2 := StartGvsdNetns(t, gvtnH1), StartGvsdNetns(t, gvtnH2)
	gvtnNativeUnderlay6(t, lab, g1, gvtnH1, "phy1", gvtnUnder6a)
	gvtnNativeUnderlay6(t, lab, g2, gvtnH2, "phy2", gvtnUnder6b)
	g1.MustVsctl("add-br", "mtest")
	g1.MustVsctl("add-port", "mtest", "p1")
	g2.MustVsctl("add-br", "mtest")
	g2.MustVsctl("add-port", "mtest", "ml", "--", "set", "interface", "ml", "type=internal")
	gvtnWaitLinkIn(t, lab, gvtnH2, "ml")
	lab.must("ip", "-n", gvtnH2, "link", "set", "ml", "netns", gvtnRmon)
	lab.configure(gvtnRmon, "ml", gvtnRmonAddr+"/24")

	gvtnNeighRouteCommands6(t, g1)
	for _, tn := range []gvtnTunnel{
		{"ip6gre", "ip6gre", nil, "ip6gre_sys"},
		{"vxlan", "vxlan", nil, "ip6vxlan_sys_4789"},
		{"geneve", "geneve", nil, "ip6genev_sys_6081"},
	} {
		t.Run(tn.name, func(t *testing.T) {
			for _, c := range []struct {
				g            *Gvsd
				port, remote string
			}{{g1, "lt6", gvtnUnder6b}, {g2, "rt6", gvtnUnder6a}} {
				c.g.MustVsctl(append([]string{"add-port", "mtest", c.port, "--", "set", "interface", c.port, "type=" + tn.typ,
					"options:remote_ip=" + c.remote, "options:key=0x0010"}, tn.extra...)...)
				appctl(t, c.g, "tnl/neigh/flush")
			}
			defer func() {
				g1.MustVsctl("del-port", "mtest", "lt6")
				g2.MustVsctl("del-port", "mtest", "rt6")
				_, _ = lab.exec(gvtnVM1, "ip", "neigh", "flush", "all")
				_, _ = lab.exec(gvtnRmon, "ip", "neigh", "flush", "all")
			}()
			solicit := gvtnCoverage(t, g1, "tunnel_nd_solicit")
			tx, rx := gvtnCoverage(t, g1, "tunnel_native_tx"), gvtnCoverage(t, g2, "tunnel_native_rx")
			if !lab.pingEventually(gvtnVM1, gvtnRmonAddr, 15*time.Second) {
				t.Fatalf("vm1 cannot ping %s over %s on the IPv6 native underlay\nhost1 tnl/neigh/show:\n%s\nhost1 tnl/ports/show:\n%s\nhost1 coverage:\n%s\nhost2 coverage:\n%s",
					gvtnRmonAddr, tn.name, appctl(t, g1, "tnl/neigh/show"), appctl(t, g1, "tnl/ports/show"),
					gvtnCoverageLines(t, g1), gvtnCoverageLines(t, g2))
			}
			for _, c := range []struct {
				g                   *Gvsd
				port, local, remote string
			}{{g1, "lt6", gvtnUnder6a, gvtnUnder6b}, {g2, "rt6", gvtnUnder6b, gvtnUnder6a}} {
				ports := appctl(t, c.g, "tnl/ports/show")
				for _, w := range []string{tn.listener + " (", c.port + ": type=" + tn.typ + " remote_ip=" + c.remote, "egress=native dev ul, source " + c.local} {
					if !strings.Contains(ports, w) {
						t.Errorf("tnl/ports/show lacks %q:\n%s", w, ports)
					}
				}
				if neigh := appctl(t, c.g, "tnl/neigh/show"); !gvtnHasNeighbour(neigh, c.remote, "ul") {
					t.Errorf("tnl/neigh/show does not have %s on ul:\n%s", c.remote, neigh)
				}
			}
			if got := gvtnCoverage(t, g1, "tunnel_nd_solicit"); got <= solicit {
				t.Errorf("host1 sent no neighbor solicitation after its cache was flushed (tunnel_nd_solicit stayed %d)", got)
			}
			if got := gvtnCoverage(t, g1, "tunnel_native_tx"); got <= tx {
				t.Errorf("host1 tunnel_native_tx stayed %d", got)
			}
			if got := gvtnCoverage(t, g2, "tunnel_native_rx"); got <= rx {
				t.Errorf("host2 tunnel_native_rx stayed %d", got)
			}
		})
	}
}

// gvtnNativeUnderlay6 is gvtnNativeUnderlay with an IPv6 underlay
// address (and none of IPv4) on ul.
func gvtnNativeUnderlay6(t *testing.T, lab *netLab, g *Gvsd, ns, phy, addr string) {
	t.Helper()
	g.MustVsctl("add-br", "ul")
	g.MustVsctl("add-port", "ul", phy)
	gvtnWaitLinkIn(t, lab, ns, "ul")
	gvtnEnableIPv6(lab, ns, "ul")
	lab.mustExec(ns, "ip", "-6", "addr", "add", addr+"/64", "dev", "ul", "nodad")
	lab.mustExec(ns, "ip", "link", "set", "ul", "up")
	routes := appctl(t, g, "ovs/route/show")
	for _, want := range []string{"Cached: " + gvtnUnder6Net + " dev ul SRC " + addr + "\n", "Cached: " + addr + "/128 dev ul SRC " + addr + " local\n"} {
		if !strings.Contains(routes, want) {
			t.Fatalf("ovs/route/show lacks %q:\n%s", want, routes)
		}
	}
}

// gvtnEnableIPv6 turns IPv6 on for dev alone (netLab's namespaces have
// it off everywhere, so that they stay quiet).
func gvtnEnableIPv6(lab *netLab, ns, dev string) {
	lab.mustExec(ns, "sysctl", "-q", "-w", "net.ipv6.conf."+dev+".disable_ipv6=0")
}

// gvtnNeighRouteCommands6: tnl/neigh/set and ovs/route/add take IPv6
// addresses, and the show commands print them as OVS 3.1 does.
func gvtnNeighRouteCommands6(t *testing.T, g *Gvsd) {
	t.Helper()
	appctl(t, g, "tnl/neigh/set", "ul", "2001:db8:12::77", "00:11:22:33:44:55")
	if neigh := appctl(t, g, "tnl/neigh/show"); !strings.Contains(neigh, "2001:db8:12::77"+strings.Repeat(" ", 46-len("2001:db8:12::77"))+"00:11:22:33:44:55   ul\n") {
		t.Errorf("tnl/neigh/show lacks the entry set by hand:\n%s", neigh)
	}
	appctl(t, g, "tnl/neigh/flush")
	if out := appctl(t, g, "ovs/route/add", "2001:db8:99::/64", "ul", gvtnUnder6b); out != "OK\n" {
		t.Errorf("ovs/route/add: %q", out)
	}
	if routes := appctl(t, g, "ovs/route/show"); !strings.Contains(routes, "User: 2001:db8:99::/64 dev ul GW "+gvtnUnder6b+" SRC "+gvtnUnder6a+"\n") {
		t.Errorf("ovs/route/show lacks the user route:\n%s", routes)
	}
	if out := appctl(t, g, "ovs/route/lookup", "2001:db8:99::1"); out != "src "+gvtnUnder6a+"\ngateway "+gvtnUnder6b+"\ndev ul\n" {
		t.Errorf("ovs/route/lookup 2001:db8:99::1: %q", out)
	}
	if _, errOut, err := g.Run("ovs-appctl", "ovs/route/add", "2001:db8:98::/64", "ul", "172.21.12.1"); err == nil || !strings.Contains(errOut, "Invalid pkt_mark or IPv6 gateway") {
		t.Errorf("ovs/route/add with an IPv4 gateway for an IPv6 prefix: err=%v %q", err, errOut)
	}
	if out := appctl(t, g, "ovs/route/del", "2001:db8:99::/64"); out != "OK\n" {
		t.Errorf("ovs/route/del: %q", out)
	}
}

// TestTunnelInteropOVSNativeIPv6: the real Open vSwitch 3.1 on host1
// (userspace datapath, native tunnelling with the IPv6 underlay address
// on its bridge ul) and gvsd on host2 (native tunnelling over IPv6 too):
// vm1 behind OVS pings 10.12.4.9 behind gvs over ip6gre and VXLAN with
// IPv6 remote_ip, so each decapsulates what the other encapsulates, and
// each resolves the other by neighbour discovery.
func TestTunnelInteropOVSNativeIPv6(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ping")
	const ovsNS = "gvtn-ovs"
	for _, ns := range []string{ovsNS, gvtnH2, gvtnVM1, gvtnRmon} {
		lab.netns(ns)
	}
	lab.vethIn(ovsNS, "ulo", "ul2", gvtnH2)
	lab.vethIn(ovsNS, "p1", "vm1eth", gvtnVM1, gvtnVMAddr1+"/24")
	o := gvsyStartOVSNetns(t, ovsNS)
	o.MustVsctl("add-br", "ul", "--", "set", "bridge", "ul", "datapath_type=netdev")
	o.MustVsctl("add-port", "ul", "ulo")
	gvtnWaitLinkIn(t, lab, ovsNS, "ul")
	gvtnEnableIPv6(lab, ovsNS, "ul")
	lab.mustExec(ovsNS, "ip", "-6", "addr", "add", gvtnUnder6a+"/64", "dev", "ul", "nodad")
	lab.mustExec(ovsNS, "ip", "link", "set", "ul", "up")
	o.MustVsctl("add-br", "mtest", "--", "set", "bridge", "mtest", "datapath_type=netdev")
	o.MustVsctl("add-port", "mtest", "p1")

	g := StartGvsdNetns(t, gvtnH2)
	gvtnNativeUnderlay6(t, lab, g, gvtnH2, "ul2", gvtnUnder6b)
	g.MustVsctl("add-br", "mtest")
	g.MustVsctl("add-port", "mtest", "ml", "--", "set", "interface", "ml", "type=internal")
	gvtnWaitLinkIn(t, lab, gvtnH2, "ml")
	lab.must("ip", "-n", gvtnH2, "link", "set", "ml", "netns", gvtnRmon)
	lab.configure(gvtnRmon, "ml", gvtnRmonAddr+"/24")
	ovsctl := func(args ...string) string {
		out, _, _ := o.run(append([]string{"ovs-appctl", "-t", o.dir + "/ovs-vswitchd.ctl"}, args...)...)
		return out
	}
	for _, tn := range []gvtnTunnel{
		{"ip6gre", "ip6gre", nil, "ip6gre_sys"},
		{"vxlan", "vxlan", nil, "ip6vxlan_sys_4789"},
	} {
		t.Run(tn.name, func(t *testing.T) {
			set := func(port, remote string) []string {
				return append([]string{"add-port", "mtest", port, "--", "set", "interface", port, "type=" + tn.typ,
					"options:remote_ip=" + remote, "options:key=0x0010"}, tn.extra...)
			}
			o.MustVsctl(set("lt6", gvtnUnder6b)...)
			g.MustVsctl(set("rt6", gvtnUnder6a)...)
			appctl(t, g, "tnl/neigh/flush")
			defer func() {
				o.MustVsctl("del-port", "mtest", "lt6")
				g.MustVsctl("del-port", "mtest", "rt6")
				_, _ = lab.exec(gvtnVM1, "ip", "neigh", "flush", "all")
				_, _ = lab.exec(gvtnRmon, "ip", "neigh", "flush", "all")
			}()
			if !lab.pingEventually(gvtnVM1, gvtnRmonAddr, 20*time.Second) {
				t.Fatalf("vm1 behind OVS cannot ping %s behind gvs over %s\nOVS tnl/neigh/show:\n%s\nOVS ovs/route/show:\n%s\ngvs tnl/neigh/show:\n%s\ngvs tnl/ports/show:\n%s\ngvs coverage:\n%s",
					gvtnRmonAddr, tn.name, ovsctl("tnl/neigh/show"), ovsctl("ovs/route/show"),
					appctl(t, g, "tnl/neigh/show"), appctl(t, g, "tnl/ports/show"), gvtnCoverageLines(t, g))
			}
			if ports := appctl(t, g, "tnl/ports/show"); !strings.Contains(ports, "rt6: type="+tn.typ) || !strings.Contains(ports, "egress=native dev ul, source "+gvtnUnder6b) {
				t.Errorf("tnl/ports/show does not say rt6 leaves natively through ul:\n%s", ports)
			}
			if gvtnCoverage(t, g, "tunnel_native_tx") == 0 || gvtnCoverage(t, g, "tunnel_native_rx") == 0 {
				t.Errorf("gvs did not send and receive natively:\n%s", gvtnCoverageLines(t, g))
			}
			if neigh := ovsctl("tnl/neigh/show"); !gvtnHasNeighbour(neigh, gvtnUnder6b, "ul") {
				t.Errorf("OVS did not resolve gvs's underlay address:\n%s", neigh)
			}
			if neigh := appctl(t, g, "tnl/neigh/show"); !gvtnHasNeighbour(neigh, gvtnUnder6a, "ul") {
				t.Errorf("gvs did not resolve OVS's underlay address:\n%s", neigh)
			}
		})
	}
}
