package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The switching tests: NORMAL forwarding, VLANs, MAC learning, patch
// ports, restart and statistics, each checked on real frames between
// network namespaces. Apart from S0, whose names the scenario fixes, every
// namespace, bridge and interface is named with the prefix "gvsw".

// TestS0Verbatim runs the S0 commands of docs/GUIDE.md, "The test
// structure", as written and pings across the switch.
func TestS0Verbatim(t *testing.T) {
	lab := newNetLab(t)
	// The scenario's names are fixed, so they may belong to someone else:
	// refuse rather than delete what is not ours.
	for _, ns := range []string{"test1", "test2", "test3"} {
		if labNetnsExists(ns) {
			t.Fatalf("network namespace %s already exists: S0 needs test1, test2 and test3 for itself; remove them (ip netns del %s) and rerun", ns, ns)
		}
	}
	for _, dev := range []string{"mtest", "p1", "p2", "p3"} {
		if labLinkExists(dev) {
			t.Fatalf("interface %s already exists in the root namespace: S0 needs the name for its own ports; remove it and rerun", dev)
		}
	}
	g := StartGvsd(t)

	g.MustVsctl("add-br", "mtest")
	for _, ns := range []string{"test1", "test2", "test3"} {
		lab.must("ip", "netns", "add", ns)
		t.Cleanup(func() { _, _ = lab.run("ip", "netns", "del", ns) })
	}
	g.MustVsctl("add-port", "mtest", "p1", "--", "set", "interface", "p1", "type=internal")
	g.MustVsctl("add-port", "mtest", "p2", "--", "set", "interface", "p2", "type=internal")
	g.MustVsctl("add-port", "mtest", "p3", "--", "set", "interface", "p3", "type=internal")
	lab.must("ip", "link", "set", "dev", "p1", "netns", "test1")
	lab.must("ip", "link", "set", "dev", "p2", "netns", "test2")
	lab.must("ip", "link", "set", "dev", "p3", "netns", "test3")
	lab.mustExec("test1", "ip", "addr", "add", "192.168.10.11/24", "dev", "p1")
	lab.mustExec("test2", "ip", "addr", "add", "192.168.10.12/24", "dev", "p2")
	lab.mustExec("test1", "ip", "link", "set", "up", "p1")
	lab.mustExec("test2", "ip", "link", "set", "up", "p2")
	lab.mustExec("test3", "ip", "link", "set", "up", "p3")
	g.MustVsctl("set", "port", "p1", "tag=10")
	g.MustVsctl("set", "port", "p2", "tag=10")

	if out, err := lab.exec("test1", "ping", "-c", "3", "-W", "2", "192.168.10.12"); err != nil {
		t.Fatalf("ip netns exec test1 ping -c 3 -W 2 192.168.10.12: %v\n%s", err, out)
	}
}

// labPort is a switch port whose host lives in its own namespace.
type labPort struct {
	name  string   // port and interface name
	ns    string   // namespace of the host behind it
	vlan  []string // Port columns, e.g. "tag=10"
	addrs []string // the host's addresses, CIDR form
}

// addInternalPorts adds each port to bridge br as an internal port with its
// VLAN settings, and moves its device into a fresh namespace.
func addInternalPorts(lab *netLab, g *Gvsd, br string, ports ...labPort) {
	lab.t.Helper()
	for _, p := range ports {
		args := []string{"add-port", br, p.name, "--", "set", "interface", p.name, "type=internal"}
		if len(p.vlan) > 0 {
			args = append(append(args, "--", "set", "port", p.name), p.vlan...)
		}
		g.MustVsctl(args...)
		lab.netns(p.ns)
		lab.moveInto(p.name, p.ns, p.addrs...)
	}
}

// The source MACs of the tagged frames that the test writes itself with a
// packet socket: kernels without the 8021q module (this one) cannot make
// VLAN subinterfaces, and an access host's kernel would never tag.
const (
	trunkMAC10  = "02:00:00:0a:00:04"
	trunkMAC30  = "02:00:00:1e:00:04"
	nativeMAC20 = "02:00:00:14:00:05"
	accessMAC   = "02:00:00:0a:00:01"
)

// TestVLANIsolation checks access, trunk and native-untagged ports on the
// wire: who reaches whom, and which frames leave which port tagged.
func TestVLANIsolation(t *testing.T) {
	lab := newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvswv")
	addInternalPorts(lab, g, "gvswv",
		labPort{"gvswa1", "gvsw-a1", []string{"tag=10"}, []string{"192.168.10.1/24"}},
		labPort{"gvswa2", "gvsw-a2", []string{"tag=10"}, []string{"192.168.10.2/24"}},
		// Same subnet as VLAN 10, other VLAN: only the switch separates it.
		labPort{"gvswb20", "gvsw-b20", []string{"tag=20"}, []string{"192.168.10.3/24", "192.168.20.3/24"}},
		labPort{"gvswtr", "gvsw-tr", []string{"trunks=10,20"}, nil},
		labPort{"gvswnu", "gvsw-nu", []string{"vlan_mode=native-untagged", "tag=10", "trunks=20"}, []string{"192.168.10.5/24"}},
		// No tag, no trunks: a trunk of every VLAN, the witness of what
		// the switch forwards at all.
		labPort{"gvswal", "gvsw-al", nil, nil},
	)

	t.Run("reachability", func(t *testing.T) {
		lab := &netLab{t: t}
		lab.pingOK("gvsw-a1", "192.168.10.2") // access 10 to access 10
		lab.pingOK("gvsw-nu", "192.168.10.2") // untagged on native VLAN 10
		lab.pingFails("gvsw-b20", "192.168.10.2")
		lab.pingFails("gvsw-b20", "192.168.10.5")
		lab.pingFails("gvsw-a1", "192.168.10.3")
	})

	t.Run("tagged requests get tagged replies", func(t *testing.T) {
		lab := &netLab{t: t}
		tr := lab.capture("gvsw-tr", "gvswtr", "arp")
		nu := lab.capture("gvsw-nu", "gvswnu", "arp")
		// The hosts answer ARP requests for their own address: the
		// replies come back through the switch to the sender's port.
		lab.inject("gvsw-tr", "gvswtr", lab.arpRequest(trunkMAC10, 10, "192.168.10.4", "192.168.10.1"))
		lab.inject("gvsw-nu", "gvswnu", lab.arpRequest(nativeMAC20, 20, "192.168.20.5", "192.168.20.3"))
		if !tr.waitFor(5*time.Second, "Reply 192.168.10.1 is-at") {
			t.Errorf("the trunk port got no ARP reply from 192.168.10.1 (VLAN 10); captured:\n%s", strings.Join(tr.stop(), "\n"))
		}
		if !nu.waitFor(5*time.Second, "Reply 192.168.20.3 is-at") {
			t.Errorf("the native-untagged port got no ARP reply from 192.168.20.3 (VLAN 20); captured:\n%s", strings.Join(nu.stop(), "\n"))
		}
		for _, c := range []struct {
			cap   *tcpdumpCapture
			reply string
			tag   string
		}{{tr, "Reply 192.168.10.1 is-at", "vlan 10"}, {nu, "Reply 192.168.20.3 is-at", "vlan 20"}} {
			for _, line := range linesWith(c.cap.stop(), c.reply) {
				if !strings.Contains(line, ": "+c.tag+",") {
					t.Errorf("%s: ARP reply without %q:\n%s", c.cap.what, c.tag, line)
				}
			}
		}
	})

	t.Run("broadcast tagging", func(t *testing.T) {
		lab := &netLab{t: t}
		caps := map[string]*tcpdumpCapture{}
		for _, p := range []struct{ ns, dev string }{
			{"gvsw-tr", "gvswtr"}, {"gvsw-nu", "gvswnu"}, {"gvsw-a2", "gvswa2"},
			{"gvsw-b20", "gvswb20"}, {"gvsw-al", "gvswal"},
		} {
			caps[p.dev] = lab.capture(p.ns, p.dev, "arp")
		}
		// Each request asks for an address nobody has: a broadcast whose
		// target tells it apart from the others.
		lab.inject("gvsw-tr", "gvswtr",
			lab.arpRequest(trunkMAC10, 10, "192.168.10.4", "192.168.10.97"), // VLAN 10, tagged in
			lab.arpRequest(trunkMAC10, 20, "192.168.10.4", "192.168.10.95"), // VLAN 20, tagged in
			lab.arpRequest(trunkMAC30, 30, "192.168.30.4", "192.168.30.99")) // VLAN 30: the trunk does not carry it
		// An access port takes only untagged frames.
		lab.inject("gvsw-a1", "gvswa1", lab.arpRequest(accessMAC, 10, "192.168.10.1", "192.168.10.94"))
		lab.exec("gvsw-a1", "ping", "-c", "1", "-W", "1", "192.168.10.99")  // VLAN 10, untagged in
		lab.exec("gvsw-b20", "ping", "-c", "1", "-W", "1", "192.168.10.98") // VLAN 20, untagged in

		// want: device → ARP target → "" (must not arrive), "untagged",
		// or the tag it must carry ("vlan N").
		want := map[string]map[string]string{
			"gvswtr":  {"192.168.10.99": "vlan 10", "192.168.10.98": "vlan 20", "192.168.10.94": ""},
			"gvswnu":  {"192.168.10.99": "untagged", "192.168.10.98": "vlan 20", "192.168.10.97": "untagged", "192.168.10.95": "vlan 20", "192.168.30.99": "", "192.168.10.94": ""},
			"gvswa2":  {"192.168.10.99": "untagged", "192.168.10.98": "", "192.168.10.97": "untagged", "192.168.10.95": "", "192.168.30.99": "", "192.168.10.94": ""},
			"gvswb20": {"192.168.10.99": "", "192.168.10.97": "", "192.168.10.95": "untagged", "192.168.30.99": "", "192.168.10.94": ""},
			"gvswal":  {"192.168.10.99": "vlan 10", "192.168.10.98": "vlan 20", "192.168.10.97": "vlan 10", "192.168.10.95": "vlan 20", "192.168.30.99": "", "192.168.10.94": ""},
		}
		// Wait for what must arrive; what must not would have come with it.
		for dev, targets := range want {
			for target, tag := range targets {
				if tag != "" {
					caps[dev].waitFor(5*time.Second, "who-has "+target+" ")
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
		for dev, targets := range want {
			lines := caps[dev].stop()
			for target, tag := range targets {
				checkARPDelivery(t, dev, lines, target, tag)
			}
		}
	})
}

// checkARPDelivery checks how the ARP requests for target reached dev:
// not at all (tag ""), without a tag ("untagged"), or with the given
// "vlan N" tag.
func checkARPDelivery(t *testing.T, dev string, lines []string, target, tag string) {
	t.Helper()
	seen := linesWith(lines, "who-has "+target+" ")
	switch {
	case tag == "" && len(seen) > 0:
		t.Errorf("%s received the ARP request for %s, which must not reach it:\n%s", dev, target, strings.Join(seen, "\n"))
	case tag == "":
	case len(seen) == 0:
		t.Errorf("%s did not receive the ARP request for %s; it captured:\n%s", dev, target, strings.Join(lines, "\n"))
	default:
		for _, line := range seen {
			tagged := strings.Contains(line, "802.1Q") || strings.Contains(line, "vlan ")
			switch {
			case tag == "untagged" && tagged:
				t.Errorf("%s received the ARP request for %s tagged, want untagged:\n%s", dev, target, line)
			case tag != "untagged" && !strings.Contains(line, ": "+tag+","):
				t.Errorf("%s received the ARP request for %s without %q:\n%s", dev, target, tag, line)
			}
		}
	}
}

// TestLearning checks that the bridge learns where each MAC is: known
// unicast is not flooded, and fdb/show and fdb/flush show and empty the
// table.
func TestLearning(t *testing.T) {
	lab := newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvswl")
	addInternalPorts(lab, g, "gvswl",
		labPort{"gvswl1", "gvsw-l1", []string{"tag=10"}, []string{"192.168.10.1/24"}},
		labPort{"gvswl2", "gvsw-l2", []string{"tag=10"}, []string{"192.168.10.2/24"}},
		labPort{"gvswl3", "gvsw-l3", []string{"tag=10"}, []string{"192.168.10.3/24"}},
	)
	// Both ends speak: each MAC is learned.
	lab.pingOK("gvsw-l1", "192.168.10.2")
	lab.pingOK("gvsw-l2", "192.168.10.1")
	hosts := []struct{ port, mac, ofport string }{
		{"gvswl1", lab.mac("gvsw-l1", "gvswl1"), strings.TrimSpace(g.MustVsctl("get", "interface", "gvswl1", "ofport"))},
		{"gvswl2", lab.mac("gvsw-l2", "gvswl2"), strings.TrimSpace(g.MustVsctl("get", "interface", "gvswl2", "ofport"))},
	}

	t.Run("fdb", func(t *testing.T) {
		show := appctl(t, g, "fdb/show", "gvswl")
		for _, h := range hosts {
			if !fdbHas(show, h.ofport, "10", h.mac) {
				t.Errorf("fdb/show gvswl lacks %s (port %s, ofport %s) on VLAN 10:\n%s", h.mac, h.port, h.ofport, show)
			}
		}
		appctl(t, g, "fdb/flush", "gvswl")
		show = appctl(t, g, "fdb/show", "gvswl")
		for _, h := range hosts {
			if strings.Contains(show, h.mac) {
				t.Errorf("fdb/show gvswl still lists %s after fdb/flush:\n%s", h.mac, show)
			}
		}
		// Talking again teaches the bridge again.
		lab := &netLab{t: t}
		lab.pingOK("gvsw-l1", "192.168.10.2")
		show = appctl(t, g, "fdb/show", "gvswl")
		for _, h := range hosts {
			if !fdbHas(show, h.ofport, "10", h.mac) {
				t.Errorf("fdb/show gvswl lacks %s (ofport %s) after new traffic:\n%s", h.mac, h.ofport, show)
			}
		}
	})

	t.Run("no flooding of known unicast", func(t *testing.T) {
		lab := &netLab{t: t}
		lab.pingOK("gvsw-l1", "192.168.10.2") // both MACs known again
		c := lab.capture("gvsw-l3", "gvswl3")
		if out, err := lab.exec("gvsw-l1", "ping", "-c", "10", "-i", "0.2", "-W", "2", "192.168.10.2"); err != nil {
			t.Fatalf("ping from gvsw-l1 to 192.168.10.2: %v\n%s", err, out)
		}
		// A broadcast at the end proves that the capture was listening.
		lab.exec("gvsw-l1", "ping", "-c", "1", "-W", "1", "192.168.10.99")
		time.Sleep(300 * time.Millisecond)
		lines := c.stop()
		if echo := linesWith(lines, "ICMP echo"); len(echo) > 0 {
			t.Errorf("gvswl3 received unicast echo between two learned hosts:\n%s", strings.Join(echo, "\n"))
		}
		if len(linesWith(lines, "who-has 192.168.10.99 ")) == 0 {
			t.Errorf("gvswl3 did not receive the control broadcast (ARP for 192.168.10.99); captured:\n%s", strings.Join(lines, "\n"))
		}
	})
}

// appctl runs ovs-appctl against the test's gvsd and fails on error.
func appctl(t *testing.T, g *Gvsd, args ...string) string {
	t.Helper()
	out, errOut, err := g.Run("ovs-appctl", args...)
	if err != nil {
		t.Fatalf("ovs-appctl %s: %v\nstderr: %s\nstdout: %s", strings.Join(args, " "), err, errOut, out)
	}
	return out
}

// fdbHas reports whether fdb/show output has a line for mac on vlan at
// OpenFlow port ofport (columns: port, VLAN, MAC, age).
func fdbHas(show, ofport, vlan, mac string) bool {
	for _, line := range strings.Split(show, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == ofport && f[1] == vlan && strings.EqualFold(f[2], mac) {
			return true
		}
	}
	return false
}

// TestPatchPorts joins two bridges with a pair of patch ports and pings
// from a host on one to a host on the other.
func TestPatchPorts(t *testing.T) {
	lab := newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvswp0")
	g.MustVsctl("add-br", "gvswp1")
	addInternalPorts(lab, g, "gvswp0", labPort{"gvswpp0", "gvsw-p0", nil, []string{"192.168.11.1/24"}})
	addInternalPorts(lab, g, "gvswp1", labPort{"gvswpp1", "gvsw-p1", nil, []string{"192.168.11.2/24"}})

	lab.pingFails("gvsw-p0", "192.168.11.2") // two separate bridges

	g.MustVsctl("--", "add-port", "gvswp0", "gvswpa", "--", "set", "interface", "gvswpa", "type=patch", "options:peer=gvswpb",
		"--", "add-port", "gvswp1", "gvswpb", "--", "set", "interface", "gvswpb", "type=patch", "options:peer=gvswpa")
	lab.pingOK("gvsw-p0", "192.168.11.2")
	lab.pingOK("gvsw-p1", "192.168.11.1")

	g.MustVsctl("del-port", "gvswp1", "gvswpb")
	lab.pingFails("gvsw-p0", "192.168.11.2") // the patch is cut
}

// TestRestartKeepsSystemPorts kills gvsd with SIGKILL and starts it again on the same
// database: system ports on veths, which outlive the process, carry
// traffic again without any ovs-vsctl command.
func TestRestartKeepsSystemPorts(t *testing.T) {
	lab := newNetLab(t)
	g := StartGvsd(t)
	lab.netns("gvsw-r0")
	lab.netns("gvsw-r1")
	lab.veth("gvswr0", "gvswr0p", "gvsw-r0", "192.168.12.1/24")
	lab.veth("gvswr1", "gvswr1p", "gvsw-r1", "192.168.12.2/24")
	g.MustVsctl("add-br", "gvswr")
	g.MustVsctl("add-port", "gvswr", "gvswr0")
	g.MustVsctl("add-port", "gvswr", "gvswr1")
	lab.pingOK("gvsw-r0", "192.168.12.2")

	g.Kill9()
	lab.pingFails("gvsw-r0", "192.168.12.2") // the switch is the only path

	g.Start()
	if !lab.pingEventually("gvsw-r0", "192.168.12.2", 15*time.Second) {
		t.Fatalf("no ping across gvswr within 15s of the restart; ovs-vsctl show:\n%s", g.MustVsctl("show"))
	}
	lab.pingOK("gvsw-r1", "192.168.12.1")
}

// TestStatisticsGrow checks that Interface.statistics counts the packets of a
// ping once the refresh interval has passed.
func TestStatisticsGrow(t *testing.T) {
	lab := newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", "gvsws")
	addInternalPorts(lab, g, "gvsws",
		labPort{"gvsws1", "gvsw-s1", nil, []string{"192.168.13.1/24"}},
		labPort{"gvsws2", "gvsw-s2", nil, []string{"192.168.13.2/24"}},
	)
	before := waitStats(t, g, "gvsws1", func(s map[string]int64) bool {
		_, rx := s["rx_packets"]
		_, tx := s["tx_packets"]
		return rx && tx
	})
	const n = 10
	if out, err := lab.exec("gvsw-s1", "ping", "-c", strconv.Itoa(n), "-i", "0.2", "-W", "2", "192.168.13.2"); err != nil {
		t.Fatalf("ping from gvsw-s1: %v\n%s", err, out)
	}
	// Each echo request enters the switch on gvsws1 and each reply leaves
	// through it, so both counters grow by at least n, whichever side's
	// point of view they take.
	waitStats(t, g, "gvsws1", func(s map[string]int64) bool {
		return s["rx_packets"] >= before["rx_packets"]+n && s["tx_packets"] >= before["tx_packets"]+n
	})
}

// waitStats polls Interface.statistics of iface until ok accepts it (10 s
// at most) and returns it.
func waitStats(t *testing.T, g *Gvsd, iface string, ok func(map[string]int64) bool) map[string]int64 {
	t.Helper()
	var last string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		last = strings.TrimSpace(g.MustVsctl("get", "interface", iface, "statistics"))
		if s := parseStats(last); ok(s) {
			return s
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("interface %s statistics did not reach the expected values within 10s; last: %s", iface, last)
	return nil
}

// parseStats reads an ovs-vsctl map such as {rx_packets=3, tx_packets=4}.
func parseStats(s string) map[string]int64 {
	out := map[string]int64{}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}
