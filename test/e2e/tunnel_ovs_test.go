package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestTunnelInteropOVS puts the real Open vSwitch 3.1 on host1 (the
// userspace datapath with its native tunnelling, as OVS users run it
// without kernel tunnel modules: the underlay address 172.21.12.8 sits
// on the internal port of bridge ul, whose port ulo is the "physical"
// NIC) and gvsd on host2 (the host's own routing). For each tunnel type:
//
//   - ping across: vm1 behind OVS reaches 10.12.4.9 on host2's internal
//     port ml in rmon, so gvs decapsulates what OVS sends and OVS
//     decapsulates what gvs sends;
//   - remote mirror (S4 with OVS as host1): rmon sees every echo request
//     vm1 sends through p1, and no reply.
func TestTunnelInteropOVS(t *testing.T) {
	gvtnInteropOVS(t, false, []gvtnTunnel{
		{"gre", "gre", nil, "gre_sys"},
		{"vxlan", "vxlan", nil, "vxlan_sys_4789"},
		{"geneve", "geneve", nil, "genev_sys_6081"},
		{"erspan2", "erspan", []string{"options:erspan_ver=1", "options:erspan_idx=1f"}, "gre_sys"},
		{"erspan3", "erspan", []string{"options:erspan_ver=2", "options:erspan_dir=1", "options:erspan_hwid=2a"}, "gre_sys"},
	})
}

// TestTunnelInteropOVSNative is TestTunnelInteropOVS with gvs on host2
// in OVS's native tunnelling too (docs/GUIDE.md section 6): ul2 is a
// port of gvs's bridge ul and the underlay address sits on ul, so gvs
// routes, resolves and encapsulates through its own bridge and
// decapsulates what that bridge delivers, for GRE and VXLAN.
func TestTunnelInteropOVSNative(t *testing.T) {
	gvtnInteropOVS(t, true, []gvtnTunnel{
		{"gre", "gre", nil, "gre_sys"},
		{"vxlan", "vxlan", nil, "vxlan_sys_4789"},
	})
}

// gvtnInteropOVS runs the interoperability checks over tunnels, with gvs
// on host2 natively tunnelling (native) or through the host's routing.
func gvtnInteropOVS(t *testing.T, native bool, tunnels []gvtnTunnel) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "tcpdump", "ping")
	const ovsNS = "gvtn-ovs"
	for _, ns := range []string{ovsNS, gvtnH2, gvtnVM1, gvtnVM2, gvtnRmon} {
		lab.netns(ns)
	}
	if native {
		lab.vethIn(ovsNS, "ulo", "ul2", gvtnH2)
	} else {
		lab.vethIn(ovsNS, "ulo", "ul2", gvtnH2, gvtnUnder2+"/24")
	}
	lab.vethIn(ovsNS, "p1", "vm1eth", gvtnVM1, gvtnVMAddr1+"/24")
	lab.vethIn(ovsNS, "p2", "vm2eth", gvtnVM2, gvtnVMAddr2+"/24")

	o := gvsyStartOVSNetns(t, ovsNS)
	o.MustVsctl("add-br", "ul", "--", "set", "bridge", "ul", "datapath_type=netdev")
	o.MustVsctl("add-port", "ul", "ulo")
	lab.mustExec(ovsNS, "ip", "addr", "add", gvtnUnder1+"/24", "dev", "ul")
	lab.mustExec(ovsNS, "ip", "link", "set", "ul", "up")
	o.MustVsctl("add-br", "mtest", "--", "set", "bridge", "mtest", "datapath_type=netdev")
	o.MustVsctl("add-port", "mtest", "p1")
	o.MustVsctl("add-port", "mtest", "p2")

	g := StartGvsdNetns(t, gvtnH2)
	if native {
		gvtnNativeUnderlay(t, lab, g, gvtnH2, "ul2", gvtnUnder2)
		lab.pingOK(gvtnH2, gvtnUnder1) // both neighbour caches learn
	}
	g.MustVsctl("add-br", "mtest")
	g.MustVsctl("add-port", "mtest", "ml", "--", "set", "interface", "ml", "type=internal")
	gvtnWaitLinkIn(t, lab, gvtnH2, "ml")
	lab.must("ip", "-n", gvtnH2, "link", "set", "ml", "netns", gvtnRmon)
	lab.configure(gvtnRmon, "ml", "10.12.4.9/24")
	if !lab.pingEventually(gvtnVM1, gvtnVMAddr2, 10*time.Second) {
		t.Fatal("vm1 cannot reach vm2 through OVS's bridge")
	}

	for _, tn := range tunnels {
		t.Run(tn.name, func(t *testing.T) {
			set := func(port, remote string) []string {
				return append([]string{"add-port", "mtest", port, "--", "set", "interface", port, "type=" + tn.typ,
					"options:remote_ip=" + remote, "options:key=0x0010"}, tn.extra...)
			}
			o.MustVsctl(set("lgre0", gvtnUnder2)...)
			g.MustVsctl(set("rgre0", gvtnUnder1)...)
			defer func() {
				o.MustVsctl("del-port", "mtest", "lgre0")
				g.MustVsctl("del-port", "mtest", "rgre0")
				_, _ = lab.exec(gvtnVM1, "ip", "neigh", "flush", "all")
				_, _ = lab.exec(gvtnRmon, "ip", "neigh", "flush", "all")
			}()
			if !lab.pingEventually(gvtnVM1, "10.12.4.9", 15*time.Second) {
				out, _, _ := o.run("ovs-appctl", "-t", o.dir+"/ovs-vswitchd.ctl", "tnl/neigh/show")
				routes, _, _ := o.run("ovs-appctl", "-t", o.dir+"/ovs-vswitchd.ctl", "ovs/route/show")
				t.Fatalf("vm1 behind OVS cannot ping 10.12.4.9 behind gvs over %s\nOVS tnl/neigh/show:\n%s\novs/route/show:\n%s\nrgre0: %s\ngvs coverage:\n%s", tn.name, out, routes,
					g.MustVsctl("get", "interface", "rgre0", "statistics"), gvtnCoverageLines(t, g))
			}
			if native {
				if ports := appctl(t, g, "tnl/ports/show"); !strings.Contains(ports, "rgre0: type="+tn.typ) || !strings.Contains(ports, "egress=native dev ul, source "+gvtnUnder2) {
					t.Errorf("tnl/ports/show does not say rgre0 leaves natively through ul:\n%s", ports)
				}
				if gvtnCoverage(t, g, "tunnel_native_tx") == 0 || gvtnCoverage(t, g, "tunnel_native_rx") == 0 {
					t.Errorf("gvs did not send and receive natively:\n%s", gvtnCoverageLines(t, g))
				}
			}
			o.MustVsctl("--", "--id=@p1", "get", "port", "p1", "--", "--id=@lgre0", "get", "port", "lgre0",
				"--", "--id=@m", "create", "mirror", "name=m0", "select-src-port=@p1", "output-port=@lgre0",
				"--", "set", "bridge", "mtest", "mirrors=@m")
			// OVS 3.1 went on using the datapath flow that the first ping
			// cached before the mirror existed (seen in dpctl/dump-flows:
			// the echo requests' flow without the tunnel push); purging
			// makes it translate again with the mirror.
			o.must("ovs-appctl", "-t", o.dir+"/ovs-vswitchd.ctl", "revalidator/purge")
			rmon := gvmiCapture(t, gvtnRmon, "ml", "in")
			gvmiPing(t, lab, gvtnVM1, gvtnVMAddr2, gvtnMirrorPingSize)
			rmon.waitFor(5*time.Second, "10.12.4.1 > 10.12.4.2: ICMP echo request", "seq 5")
			time.Sleep(300 * time.Millisecond)
			lines := rmon.stop()
			if n := len(linesWith(lines, "10.12.4.1 > 10.12.4.2: ICMP echo request")); n != gvtnMirrorPingSize {
				t.Errorf("rmon saw %d of vm1's echo requests mirrored by OVS, want %d:\n%s", n, gvtnMirrorPingSize, strings.Join(lines, "\n"))
			}
			if n := len(linesWith(lines, "ICMP echo reply")); n != 0 {
				t.Errorf("rmon saw %d echo replies:\n%s", n, strings.Join(lines, "\n"))
			}

			// The other way: gvs mirrors what ml sends into rgre0; OVS
			// decapsulates the copies and delivers them, by their
			// destination MAC, to vm1. A mirror's output port carries
			// nothing else (with OVS as with gvs), so vm1 receives the
			// copies only, and rmon needs vm1's MAC without ARP.
			o.MustVsctl("clear", "bridge", "mtest", "mirrors")
			lab.mustExec(gvtnRmon, "ip", "neigh", "replace", gvtnVMAddr1, "lladdr", lab.mac(gvtnVM1, "vm1eth"), "dev", "ml")
			g.MustVsctl("--", "--id=@ml", "get", "port", "ml", "--", "--id=@t", "get", "port", "rgre0",
				"--", "--id=@m", "create", "mirror", "name=m1", "select-src-port=@ml", "output-port=@t",
				"--", "set", "bridge", "mtest", "mirrors=@m")
			defer g.MustVsctl("clear", "bridge", "mtest", "mirrors")
			vm1 := gvmiCapture(t, gvtnVM1, "vm1eth", "in")
			_, _ = lab.exec(gvtnRmon, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", gvtnVMAddr1)
			vm1.waitFor(3*time.Second, "10.12.4.9 > 10.12.4.1: ICMP echo request", "seq 3")
			time.Sleep(300 * time.Millisecond)
			lines = vm1.stop()
			if n := len(linesWith(lines, "10.12.4.9 > 10.12.4.1: ICMP echo request")); n != 3 {
				t.Errorf("vm1 received %d echo requests from rmon, want the 3 copies gvs mirrored through OVS:\n%s", n, strings.Join(lines, "\n"))
			}
		})
	}
}

// gvtnCoverageLines returns the tunnel lines of coverage/show.
func gvtnCoverageLines(t *testing.T, g *Gvsd) string {
	out, _, _ := g.Run("ovs-appctl", "coverage/show")
	return strings.Join(linesWith(nonEmptyLines(out), "tunnel"), "\n")
}
