package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// Everything made here starts with "gvpm".

// gvpmLab is three namespaces on one bridge: gvpm-a (10.47.0.1, port
// gvpma, OpenFlow port 1), gvpm-b (.2, gvpmb, 2) and gvpm-c (.3, gvpmc,
// 3), switched by NORMAL, with hw-offload as asked.
func gvpmLab(t *testing.T, offload bool) (*netLab, *Gvsd) {
	t.Helper()
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl")
	for i, h := range []string{"a", "b", "c"} {
		lab.netns("gvpm-" + h)
		lab.veth("gvpm"+h, "gvpm-p"+h, "gvpm-"+h, "10.47.0."+string(rune('1'+i))+"/24")
	}
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvpmbr",
		"--", "add-port", "gvpmbr", "gvpma", "--", "set", "interface", "gvpma", "ofport_request=1",
		"--", "add-port", "gvpmbr", "gvpmb", "--", "set", "interface", "gvpmb", "ofport_request=2",
		"--", "add-port", "gvpmbr", "gvpmc", "--", "set", "interface", "gvpmc", "ofport_request=3")
	if offload {
		g.MustVsctl("set", "Open_vSwitch", ".", "other_config:hw-offload=true")
	}
	return lab, g
}

// gvpmBurst pings from a to b fast enough that, with hw-offload, the
// kernel forwards most of it by the cached flows: what a config change
// must then stop. With offload it checks that the kernel did forward.
func gvpmBurst(lab *netLab, g *Gvsd, offload bool) {
	lab.t.Helper()
	forwarded := func() int {
		out, errOut, err := g.Run("ovs-appctl", "dpctl/offload-stats-show")
		if err != nil {
			lab.t.Fatalf("dpctl/offload-stats-show: %v\n%s", err, errOut)
		}
		return gvhoCounter(lab.t, out, "packets forwarded")
	}
	before := 0
	if offload {
		before = forwarded()
	}
	if out, err := lab.exec("gvpm-a", "ping", "-q", "-c", "30", "-i", "0.01", "-W", "2", "10.47.0.2"); err != nil {
		lab.t.Fatalf("burst before the change: %v\n%s", err, out)
	}
	if !offload {
		return
	}
	if n := forwarded() - before; n < 30 {
		lab.t.Errorf("the kernel forwarded %d of the burst's 60 packets: the fast path is not what is tested", n)
	}
}

// gvpmFlushARP forgets the neighbours of a and b, so that the next ping
// starts with a broadcast ARP request.
func gvpmFlushARP(lab *netLab) {
	lab.t.Helper()
	lab.mustExec("gvpm-a", "ip", "neigh", "flush", "all")
	lab.mustExec("gvpm-b", "ip", "neigh", "flush", "all")
}

// TestPortModTraffic: each `ovs-ofctl mod-port` config bit has its
// effect on real traffic, also once the flows are cached (and, with
// hw-offload, forwarded by the kernel), and clearing it undoes it:
// no-receive drops what the port receives, no-forward what goes out of
// it, no-flood keeps broadcasts (an ARP request) from it but not
// unicast to it, 1.3's no-flood changes nothing, no-packet-in changes
// nothing here (as in OVS 3.1, see ofproto.PortConfig). A port deleted
// and added again has no bits. On main every one of these mod-ports
// failed with OFPBRC_EPERM.
func TestPortModTraffic(t *testing.T) {
	for _, offload := range []bool{false, true} {
		name := "userspace"
		if offload {
			name = "hw-offload"
		}
		t.Run(name, func(t *testing.T) {
			lab, g := gvpmLab(t, offload)
			mod := func(args ...string) {
				t.Helper()
				proto := []string(nil)
				if args[0] == "-O" {
					proto, args = args[:2], args[2:]
				}
				gvofMust(t, g, proto, append([]string{"mod-port", "gvpmbr"}, args...)...)
			}
			lab.pingOK("gvpm-a", "10.47.0.2")

			// Each bit set after the flows are cached (offloaded), its
			// pings that fail and that still pass, then cleared.
			for _, c := range []struct {
				port, set, clear string
				fails, passes    [][2]string // namespace, address
			}{
				{"gvpma", "no-receive", "receive", [][2]string{{"gvpm-a", "10.47.0.2"}, {"gvpm-b", "10.47.0.1"}}, [][2]string{{"gvpm-b", "10.47.0.3"}}},
				{"gvpmb", "no-forward", "forward", [][2]string{{"gvpm-a", "10.47.0.2"}}, [][2]string{{"gvpm-a", "10.47.0.3"}}},
			} {
				gvpmBurst(lab, g, offload)
				mod(c.port, c.set)
				for _, p := range c.fails {
					lab.pingFails(p[0], p[1])
				}
				for _, p := range c.passes {
					lab.pingOK(p[0], p[1])
				}
				mod(c.port, c.clear)
				lab.pingOK("gvpm-a", "10.47.0.2")
			}

			// no-flood: a learned unicast still goes, a broadcast does not.
			gvpmBurst(lab, g, offload)
			mod("gvpmb", "no-flood")
			lab.pingOK("gvpm-a", "10.47.0.2")
			gvpmFlushARP(lab)
			lab.pingFails("gvpm-a", "10.47.0.2")
			lab.pingOK("gvpm-a", "10.47.0.3")
			mod("gvpmb", "flood")
			gvpmFlushARP(lab)
			lab.pingOK("gvpm-a", "10.47.0.2")
			mod("-O", "OpenFlow13", "gvpmb", "no-flood") // no bit in 1.3
			gvpmFlushARP(lab)
			lab.pingOK("gvpm-a", "10.47.0.2")

			mod("gvpma", "no-packet-in")
			lab.pingOK("gvpm-a", "10.47.0.2")
			mod("gvpma", "packet-in")

			mod("gvpmb", "no-forward")
			show := gvofMust(t, g, nil, "show", "gvpmbr")
			if !regexp.MustCompile(`2\(gvpmb\):.*\n\s+config:\s+NO_FWD\n`).MatchString(show) {
				t.Errorf("show after no-forward:\n%s", show)
			}
			g.MustVsctl("del-port", "gvpmbr", "gvpmb")
			g.MustVsctl("add-port", "gvpmbr", "gvpmb", "--", "set", "interface", "gvpmb", "ofport_request=2")
			show = gvofMust(t, g, nil, "show", "gvpmbr")
			if !regexp.MustCompile(`2\(gvpmb\):.*\n\s+config:\s+0\n`).MatchString(show) {
				t.Errorf("show after the port is added again (OVS 3.1: no bits):\n%s", show)
			}
			if !lab.pingEventually("gvpm-a", "10.47.0.2", 10*time.Second) {
				t.Error("no ping across the port added again")
			}
		})
	}
}

// gvpmPortLines keeps of `ovs-ofctl show` or `dump-ports-desc` the
// ports' names and config lines, the hardware address normalized.
func gvpmPortLines(out string) string {
	var keep []string
	addr := regexp.MustCompile(`addr:[0-9a-f:]{17}`)
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "): addr:") || strings.Contains(l, "config:") || strings.Contains(l, "OFPST_PORT_DESC") {
			keep = append(keep, addr.ReplaceAllString(strings.TrimSpace(l), "addr:MAC"))
		}
	}
	return strings.Join(keep, "\n")
}

// TestPortModShowDifferential: after mod-port sets every bit that
// ovs-ofctl offers (in 1.0, and in 1.3 where no-flood is no bit), `show`
// and `dump-ports-desc` of every version print the same config as OVS
// 3.1's; a port deleted and added again has none on both.
func TestPortModShowDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd")
	const br = "gvpmd0"
	mods := [][]string{
		{"gvpmd1", "no-receive"}, {"gvpmd1", "no-flood"}, {"gvpmd1", "no-forward"}, {"gvpmd1", "no-packet-in"},
		{"gvpmd1", "no-stp"}, {"gvpmd1", "no-receive-stp"},
		{"-O", "OpenFlow13", "gvpmd2", "no-flood"}, {"-O", "OpenFlow13", "gvpmd2", "no-receive"},
		{"-O", "OpenFlow15", "gvpmd2", "no-packet-in"},
		{"gvpmd3", "no-flood"}, {"gvpmd3", "no-receive"}, {"gvpmd3", "receive"}, {"gvpmd3", "no-stp"}, {"gvpmd3", "stp"},
	}
	views := [][]string{{"show", br}, {"-O", "OpenFlow13", "dump-ports-desc", br}, {"-O", "OpenFlow14", "dump-ports-desc", br}, {"-O", "OpenFlow15", "dump-ports-desc", br}}
	collect := func(vsctl func(...string), ofctl func(...string) string) []string {
		for i := 1; i <= 3; i++ {
			p := "gvpmd" + string(rune('0'+i))
			vsctl("add-port", br, p, "--", "set", "interface", p, "type=internal", "ofport_request="+string(rune('0'+i)))
		}
		for _, m := range mods {
			if m[0] == "-O" {
				ofctl(append(m[:2:2], append([]string{"mod-port", br}, m[2:]...)...)...)
			} else {
				ofctl(append([]string{"mod-port", br}, m...)...)
			}
		}
		var out []string
		for _, v := range views {
			out = append(out, gvpmPortLines(ofctl(v...)))
		}
		vsctl("del-port", br, "gvpmd1")
		vsctl("add-port", br, "gvpmd1", "--", "set", "interface", "gvpmd1", "type=internal", "ofport_request=1")
		return append(out, gvpmPortLines(ofctl(views[0]...)))
	}
	var ref []string
	func() {
		o := gvpsOVSBridge(t, br)
		defer o.Stop()
		ref = collect(func(a ...string) { o.MustVsctl(a...) }, func(a ...string) string { return o.must(append([]string{"ovs-ofctl"}, a...)...) })
	}()
	newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("add-br", br)
	got := collect(func(a ...string) { g.MustVsctl(a...) }, func(a ...string) string { return gvofMust(t, g, nil, a...) })
	what := append(views, []string{"show after re-adding gvpmd1"})
	for i := range ref {
		if got[i] != ref[i] {
			t.Errorf("%v:\n gvsd:\n%s\n OVS 3.1:\n%s", what[i], got[i], ref[i])
		} else {
			t.Logf("%v, same on both:\n%s", what[i], got[i])
		}
	}
}
