package e2e

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHWOffload checks the kernel fast path (Open_vSwitch
// other_config:hw-offload=true) on system ports: traffic between two
// namespaces is forwarded by the kernel (gvsd's flows say offloaded, its
// programs count the packets), yet everything gvsd shows stays true:
// Interface statistics, OpenFlow rule counters, a select_all mirror's
// copies, VLAN tags pushed and popped; turning it off again leaves a
// working switch; a bad value is refused. Everything made here starts
// with "gvho".
func TestHWOffload(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "tcpdump")
	for _, ns := range []string{"gvho-a", "gvho-b", "gvho-m", "gvho-t"} {
		lab.netns(ns)
	}
	lab.veth("gvhoa", "gvho-pa", "gvho-a", "10.77.1.1/24")
	lab.veth("gvhob", "gvho-pb", "gvho-b", "10.77.1.2/24")
	lab.veth("gvhom", "gvho-pm", "gvho-m")
	lab.veth("gvhot", "gvho-pt", "gvho-t")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvhobr",
		"--", "add-port", "gvhobr", "gvhoa", "tag=10",
		"--", "add-port", "gvhobr", "gvhob", "tag=10",
		"--", "add-port", "gvhobr", "gvhom",
		"--", "add-port", "gvhobr", "gvhot", "trunks=10")
	appctl := func(args ...string) string {
		t.Helper()
		out, errOut, err := g.Run("ovs-appctl", args...)
		if err != nil {
			t.Fatalf("ovs-appctl %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		return out
	}

	t.Run("bad value refused", func(t *testing.T) {
		msg := g.FailVsctl("set", "Open_vSwitch", ".", "other_config:hw-offload=maybe")
		if !strings.Contains(msg, "hw-offload") || !strings.Contains(msg, "must be true or false") {
			t.Errorf("ovs-vsctl said %q, want the reason", msg)
		}
	})

	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:hw-offload=true")
	if out := appctl("dpctl/offload-stats-show"); !strings.Contains(out, "hw-offload): on") {
		t.Fatalf("dpctl/offload-stats-show after hw-offload=true:\n%s", out)
	}

	t.Run("forwarded by the kernel, counted by gvsd", func(t *testing.T) {
		lab := &netLab{t: t}
		lab.pingOK("gvho-a", "10.77.1.2") // learns both MACs, caches the flows
		before := gvhoCounter(t, appctl("dpctl/offload-stats-show"), "packets forwarded")
		rxBefore := gvhoStat(t, g, "gvhob", "rx_packets")
		txBefore := gvhoStat(t, g, "gvhoa", "tx_packets")
		const n = 200
		if out, err := lab.exec("gvho-a", "ping", "-q", "-c", strconv.Itoa(n), "-i", "0.005", "-W", "2", "10.77.1.2"); err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		forwarded := gvhoCounter(t, appctl("dpctl/offload-stats-show"), "packets forwarded") - before
		if forwarded < 2*n*9/10 {
			t.Errorf("the kernel forwarded %d packets of %d requests and replies", forwarded, 2*n)
		}
		gvhoOffloaded(t, appctl, `offloaded:yes`, func() { lab.pingOK("gvho-a", "10.77.1.2") })
		// Interface statistics count what the kernel forwarded: the
		// replies came in on gvhob and went out of gvhoa. They are
		// written every 5 s.
		deadline := time.Now().Add(12 * time.Second)
		for gvhoStat(t, g, "gvhob", "rx_packets")-rxBefore < n && time.Now().Before(deadline) {
			time.Sleep(500 * time.Millisecond)
		}
		if got := gvhoStat(t, g, "gvhob", "rx_packets") - rxBefore; got < n {
			t.Errorf("gvhob's rx_packets grew by %d over %d replies", got, n)
		}
		if got := gvhoStat(t, g, "gvhoa", "tx_packets") - txBefore; got < n {
			t.Errorf("gvhoa's tx_packets grew by %d over %d replies", got, n)
		}
	})

	t.Run("rule counters", func(t *testing.T) {
		lab := &netLab{t: t}
		// Explicit rules in place of NORMAL, each counted.
		for _, f := range []string{"priority=10,arp,actions=NORMAL",
			"priority=5,ip,in_port=gvhoa,actions=output:gvhob", "priority=5,ip,in_port=gvhob,actions=output:gvhoa"} {
			if _, errOut, err := g.Run("ovs-ofctl", "add-flow", "gvhobr", f); err != nil {
				t.Fatalf("add-flow %s: %v %s", f, err, errOut)
			}
		}
		const n = 100
		if out, err := lab.exec("gvho-a", "ping", "-q", "-c", strconv.Itoa(n), "-i", "0.005", "-W", "2", "10.77.1.2"); err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		time.Sleep(1500 * time.Millisecond) // the kernel's counters are pulled every second
		out, errOut, err := g.Run("ovs-ofctl", "--names", "dump-flows", "gvhobr", "ip")
		if err != nil {
			t.Fatalf("dump-flows: %v %s", err, errOut)
		}
		for _, port := range []string{"gvhoa", "gvhob"} {
			m := regexp.MustCompile(`n_packets=(\d+),.*in_port=` + port).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no rule for in_port=%s in:\n%s", port, out)
			}
			if got, _ := strconv.Atoi(m[1]); got < n {
				t.Errorf("rule in_port=%s counted %d packets of %d", port, got, n)
			}
		}
		if _, errOut, err := g.Run("ovs-ofctl", "del-flows", "gvhobr", "ip"); err != nil {
			t.Fatalf("del-flows: %v %s", err, errOut)
		}
		if _, errOut, err := g.Run("ovs-ofctl", "add-flow", "gvhobr", "priority=0,actions=NORMAL"); err != nil {
			t.Fatalf("add-flow NORMAL: %v %s", err, errOut)
		}
	})

	t.Run("mirror copies", func(t *testing.T) {
		lab := &netLab{t: t}
		g.MustVsctl("--", "--id=@m", "get", "port", "gvhom",
			"--", "--id=@mir", "create", "mirror", "name=gvhomir", "select_all=true", "output_port=@m",
			"--", "set", "bridge", "gvhobr", "mirrors=@mir")
		lab.pingOK("gvho-a", "10.77.1.2") // the flows, with their copy, cached
		c := lab.capture("gvho-m", "gvho-pm", "icmp")
		const n = 50
		if out, err := lab.exec("gvho-a", "ping", "-q", "-c", strconv.Itoa(n), "-i", "0.01", "-W", "2", "10.77.1.2"); err != nil {
			t.Fatalf("ping: %v\n%s", err, out)
		}
		c.waitFor(3*time.Second, "echo reply")
		time.Sleep(300 * time.Millisecond)
		lines := c.stop()
		req, rep := len(linesWith(lines, "echo request")), len(linesWith(lines, "echo reply"))
		if req < n || rep < n {
			t.Errorf("the mirror port got %d requests and %d replies of %d each", req, rep, n)
		}
		gvhoOffloaded(t, appctl, `offloaded:yes, dp:tc, actions:.*gvhom`, func() {
			lab.pingOK("gvho-a", "10.77.1.2")
		})
		g.MustVsctl("clear", "bridge", "gvhobr", "mirrors")
	})

	t.Run("vlan push and pop", func(t *testing.T) {
		lab := &netLab{t: t}
		// A host on the trunk, VLAN 10, MAC 02:67:76:68:00:74: its
		// frames come in tagged, and frames to it must leave tagged.
		trunkMAC := "02:67:76:68:00:74"
		lab.mustExec("gvho-a", "ip", "neigh", "replace", "10.77.1.9", "lladdr", trunkMAC, "dev", "gvho-pa")
		// Learn the trunk host on VLAN 10.
		lab.inject("gvho-t", "gvho-pt", lab.arpRequest(trunkMAC, 10, "10.77.1.9", "10.77.1.1"))
		tc := lab.capture("gvho-t", "gvho-pt", "vlan and icmp")
		_, _ = lab.exec("gvho-a", "ping", "-c", "20", "-i", "0.01", "-W", "1", "10.77.1.9")
		tc.waitFor(3*time.Second, "echo request")
		time.Sleep(300 * time.Millisecond)
		lines := linesWith(tc.stop(), "echo request")
		if len(lines) < 20 {
			t.Fatalf("the trunk got %d of 20 echo requests:\n%s", len(lines), strings.Join(lines, "\n"))
		}
		for _, l := range lines {
			if !strings.Contains(l, "vlan 10,") {
				t.Errorf("an echo request left the trunk without its VLAN 10 tag:\n%s", l)
				break
			}
		}
		gvhoOffloaded(t, appctl, `offloaded:yes, dp:tc, actions:push_vlan\(vid=10`, func() {
			_, _ = lab.exec("gvho-a", "ping", "-c", "2", "-i", "0.01", "-W", "1", "10.77.1.9")
		})

		// Tagged frames from the trunk to a reach it untagged, the
		// later ones through the kernel's pop_vlan. (Broadcasts are not
		// offloaded: NORMAL floods them to the bridge's internal port
		// too, a TAP.)
		ac := lab.capture("gvho-a", "gvho-pa", "arp")
		req := lab.arpRequest(trunkMAC, 10, "10.77.1.9", "10.77.1.99")
		mac, err := net.ParseMAC(lab.mac("gvho-a", "gvho-pa"))
		if err != nil {
			t.Fatal(err)
		}
		copy(req, mac) // unicast to a
		for range 5 {
			lab.inject("gvho-t", "gvho-pt", req)
		}
		ac.waitFor(3*time.Second, "who-has 10.77.1.99")
		time.Sleep(300 * time.Millisecond)
		got := linesWith(ac.stop(), "who-has 10.77.1.99")
		if len(got) != 5 {
			t.Errorf("the access port got %d of 5 frames from the trunk:\n%s", len(got), strings.Join(got, "\n"))
		}
		for _, l := range got {
			if strings.Contains(l, "vlan") {
				t.Errorf("a frame from the trunk reached the access port tagged:\n%s", l)
			}
		}
		gvhoOffloaded(t, appctl, `offloaded:yes, dp:tc, actions:clone\(pop_vlan,gvhoa\)`, func() {
			lab.inject("gvho-t", "gvho-pt", req)
		})
	})

	t.Run("off again", func(t *testing.T) {
		lab := &netLab{t: t}
		g.MustVsctl("set", "Open_vSwitch", ".", "other_config:hw-offload=false")
		lab.pingOK("gvho-a", "10.77.1.2")
		if dump := appctl("dpctl/dump-flows"); strings.Contains(dump, "offloaded:yes") {
			t.Errorf("offloaded flows after hw-offload=false:\n%s", dump)
		}
		if out := appctl("dpctl/offload-stats-show"); !strings.Contains(out, "hw-offload): off") {
			t.Errorf("dpctl/offload-stats-show after hw-offload=false:\n%s", out)
		}
	})
}

// gvhoOffloaded fails the test unless dpctl/dump-flows, after traffic
// from send, has an offloaded flow that matches pattern. gvsd's own
// statistics writes (every 5 s) make every flow stale, as any commit
// does: it sends again, up to three times, if one just did.
func gvhoOffloaded(t *testing.T, appctl func(...string) string, pattern string, send func()) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	var dump string
	for range 3 {
		send()
		if dump = appctl("dpctl/dump-flows", "--names"); re.MatchString(dump) {
			return
		}
	}
	t.Errorf("no offloaded flow like %q in dpctl/dump-flows:\n%s", pattern, dump)
}

// gvhoCounter reads one counter of dpctl/offload-stats-show.
func gvhoCounter(t *testing.T, out, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `: (\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in dpctl/offload-stats-show:\n%s", name, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// gvhoStat reads one key of an Interface's statistics, 0 before gvsd
// first writes them.
func gvhoStat(t *testing.T, g *Gvsd, iface, key string) int {
	t.Helper()
	out, errOut, err := g.Vsctl("get", "interface", iface, "statistics:"+key)
	if err != nil && strings.Contains(errOut, "no key") {
		return 0
	}
	if err != nil {
		t.Fatalf("get interface %s statistics:%s: %v %s", iface, key, err, errOut)
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(out), `"`))
	if err != nil {
		t.Fatalf("statistics:%s of %s: %q", key, iface, out)
	}
	return n
}
