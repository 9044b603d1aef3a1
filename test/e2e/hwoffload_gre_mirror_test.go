package e2e

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestHWOffloadGREMirror checks the kernel fast path (hw-offload=true)
// on a select_all mirror whose output port is a GRE port (remote
// mirroring, SCENARIOS S4/S5): host namespace gvhm-h1 with its own gvsd,
// a bridge with two VM ports (veths to gvhm-a and gvhm-b) and a GRE port
// (key 7) to a collector, namespace gvhm-c behind host1's underlay veth,
// where no switch runs and tcpdump captures the copies. Checked:
//   - 200 pings from a to b are all answered;
//   - the kernel forwards most of them (offload-stats-show), and
//     dpctl/dump-flows shows the a→b and b→a flows offloaded with
//     actions that include both the other VM's port and the GRE port:
//     the packet is cloned to its normal output and the original
//     encapsulated to the collector;
//   - the collector receives a GRE copy of every echo request and reply,
//     with the outer headers gvsd's own frames carry (TTL 64, DF, IP ID
//     0, key 7, protocol 0x6558) around the frame exactly as a sent it
//     and b received it (or the other way round), and the mirror's
//     statistics count them within a couple of seconds;
//   - once the bridge's mirrors are cleared, pings still work and the
//     collector gets no more GRE frames;
//   - the same checks but the mirror's statistics, with OpenFlow rules
//     that output to the GRE port first and then to the other VM.
//
// gvsd puts a mirror's copies after the flow's own outputs, so the
// mirror's flows (actions:gvhmpb,gvhmt) already end with the GRE output
// and the kernel carried them before it learned to move the
// encapsulation last: only "GRE output first" (actions:gvhmt,gvhmpb)
// failed before, the kernel forwarding 0 packets of the 400, the flows
// left without "offloaded:yes".
//
// Everything made here starts with "gvhm".
func TestHWOffloadGREMirror(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "tcpdump", "ping")
	for _, ns := range []string{gvhmH1, gvhmA, gvhmB, gvhmC} {
		lab.netns(ns)
	}
	lab.vethIn(gvhmH1, "gvhmu1", "gvhmu2", gvhmC, gvhmCollector+"/24")
	lab.configure(gvhmH1, "gvhmu1", gvhmUnder1+"/24")
	// A permanent neighbour entry for the collector keeps the checks
	// from depending on where host1 is in the neighbour layer's cycle
	// (as TestHWOffloadGRE's do).
	lab.mustExec(gvhmH1, "ip", "neigh", "replace", gvhmCollector, "lladdr", lab.mac(gvhmC, "gvhmu2"), "dev", "gvhmu1", "nud", "permanent")
	lab.vethIn(gvhmH1, "gvhmpa", "gvhma", gvhmA, gvhmAddrA+"/24")
	lab.vethIn(gvhmH1, "gvhmpb", "gvhmb", gvhmB, gvhmAddrB+"/24")
	g := StartGvsdNetns(t, gvhmH1)
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", "gvhmbr", "--", "add-port", "gvhmbr", "gvhmpa", "--", "add-port", "gvhmbr", "gvhmpb",
		"--", "add-port", "gvhmbr", "gvhmt", "--", "set", "interface", "gvhmt", "type=gre",
		"options:remote_ip="+gvhmCollector, "options:key=7")
	if e := strings.TrimSpace(g.MustVsctl("get", "interface", "gvhmt", "error")); e != "[]" {
		t.Fatalf("Interface.error of gvhmt = %s", e)
	}
	g.MustVsctl("--", "--id=@t", "get", "port", "gvhmt",
		"--", "--id=@m", "create", "mirror", "name=gvhmm", "select_all=true", "output_port=@t",
		"--", "set", "bridge", "gvhmbr", "mirrors=@m")
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:hw-offload=true")
	if out := appctl(t, g, "dpctl/offload-stats-show"); !strings.Contains(out, "hw-offload): on") {
		t.Fatalf("dpctl/offload-stats-show after hw-offload=true:\n%s", out)
	}
	h := &gvhgHost{name: "host1", g: g} // for its forwarded()
	lab.pingOK(gvhmA, gvhmAddrB)        // learns both MACs, caches the flows
	// The kernel's counters are pulled every second and written every
	// second: wait for those of the ping above before the baseline.
	time.Sleep(2 * time.Second)

	// copied runs n pings from a to b (all must be answered) and
	// checks that the kernel forwarded at least 3/4 of the echo requests
	// and replies, that the collector received a GRE copy of each one
	// (gvhgCheckGRE), and that dpctl/dump-flows shows both directions'
	// flows offloaded with outputs to the other VM's port and the GRE
	// port, in either order. Before the pings it calls before (once the
	// captures run), after them, after (with the capture stopped).
	const n = 200
	copied := func(t *testing.T, before, after func()) {
		lab := &netLab{t: t}
		dir := t.TempDir()
		col, pa, pb := filepath.Join(dir, "collector.pcap"), filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcap")
		caps := []*tcpdumpCapture{
			lab.tcpdump(gvhmC, "collector", "-U", "--immediate-mode", "-n", "-Q", "in", "-i", "gvhmu2", "-w", col, "ip proto 47"),
			lab.tcpdump(gvhmA, "a", "-U", "--immediate-mode", "-n", "-i", "gvhma", "-w", pa, "icmp"),
			lab.tcpdump(gvhmB, "b", "-U", "--immediate-mode", "-n", "-i", "gvhmb", "-w", pb, "icmp"),
		}
		before()
		h.forwarded(t)
		out, err := lab.exec(gvhmA, "ping", "-q", "-c", strconv.Itoa(n), "-i", "0.005", "-W", "2", gvhmAddrB)
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Errorf("ping: %v\n%s", err, out)
		}
		got := h.forwarded(t)
		t.Logf("the kernel forwarded %d packets during %d pings", got, n)
		time.Sleep(500 * time.Millisecond)
		for _, c := range caps {
			c.stop()
		}
		// Each echo request and reply crosses the bridge once: 2n
		// packets, less the first few that make the flows.
		if got < 2*n*3/4 {
			t.Errorf("the kernel forwarded %d packets of the %d echo requests and %d replies (dpctl/offload-stats-show \"packets forwarded\"), want at least %d: the flows with a copy into the GRE port stay in gvsd\n%s\n%s",
				got, n, n, 2*n*3/4, appctl(t, g, "dpctl/offload-stats-show"), appctl(t, g, "dpctl/dump-flows", "--names"))
		}
		mac1, macC := gvhgMAC(t, lab, gvhmH1, "gvhmu1"), gvhgMAC(t, lab, gvhmC, "gvhmu2")
		gvhgCheckGRE(t, gvhgWire{where: "the collector", key: 7,
			outer: func(bool) (net.HardwareAddr, net.HardwareAddr, string, string) {
				return mac1, macC, gvhmUnder1, gvhmCollector
			}}, n, gvhgReadPcap(t, col), gvhgReadPcap(t, pa), gvhgReadPcap(t, pb))
		after()

		ping := func() { _, _ = lab.exec(gvhmA, "ping", "-c", "3", "-i", "0.01", "-W", "1", gvhmAddrB) }
		run := func(args ...string) string { return appctl(t, g, args...) }
		for _, f := range [][2]string{{"gvhmpa", "gvhmpb"}, {"gvhmpb", "gvhmpa"}} {
			gvhoOffloaded(t, run, `in_port\(`+f[0]+`\)[^\n]*offloaded:yes, dp:tc, actions:([^\n]*,)?(`+f[1]+`,([^\n]*,)?gvhmt|gvhmt,([^\n]*,)?`+f[1]+`)\b`, ping)
		}
		t.Logf("dpctl/dump-flows:\n%s", run("dpctl/dump-flows", "--names"))
	}

	t.Run("mirrored to the collector by the kernel", func(t *testing.T) {
		var stats map[string]int64
		copied(t, func() {
			var err error
			if stats, err = gvmiMirrorStats(g, "gvhmm"); err != nil {
				t.Fatal(err)
			}
		}, func() {
			// The mirror's tx_packets count every copy within a
			// couple of seconds (pulled from the kernel and written
			// every second).
			var grew int64
			for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(250 * time.Millisecond) {
				now, err := gvmiMirrorStats(g, "gvhmm")
				if err != nil {
					t.Fatal(err)
				}
				if grew = now["tx_packets"] - stats["tx_packets"]; grew >= 2*n || time.Now().After(deadline) {
					break
				}
			}
			t.Logf("mirror gvhmm's tx_packets grew by %d", grew)
			if grew < 2*n {
				t.Errorf("mirror gvhmm's tx_packets grew by %d over the %d copies of echo requests and replies sent to the collector", grew, 2*n)
			}
		})
	})

	t.Run("mirror cleared", func(t *testing.T) {
		lab := &netLab{t: t}
		g.MustVsctl("clear", "bridge", "gvhmbr", "mirrors")
		col := lab.tcpdump(gvhmC, "collector", "-l", "-n", "--immediate-mode", "-Q", "in", "-i", "gvhmu2", "ip proto 47")
		const after = 20
		out, err := lab.exec(gvhmA, "ping", "-q", "-c", strconv.Itoa(after), "-i", "0.01", "-W", "2", gvhmAddrB)
		if err != nil || !strings.Contains(out, " 0% packet loss") {
			t.Errorf("ping after the mirror was cleared: %v\n%s", err, out)
		}
		time.Sleep(500 * time.Millisecond)
		if rest := col.stop(); len(rest) != 0 {
			t.Errorf("the collector received %d GRE frames after the mirror was cleared:\n%s\n%s",
				len(rest), strings.Join(rest, "\n"), appctl(t, g, "dpctl/dump-flows", "--names"))
		}
	})

	t.Run("GRE output first", func(t *testing.T) {
		// gvsd puts a mirror's copies after the flow's own outputs, so
		// the mirror above already has the GRE output last. OpenFlow
		// rules that output to the GRE port first and then to the
		// other VM make the order the kernel must change (the
		// encapsulation moved last, the other output cloned before it).
		for _, f := range []string{"priority=10,arp,actions=NORMAL",
			"priority=5,ip,in_port=gvhmpa,actions=output:gvhmt,output:gvhmpb",
			"priority=5,ip,in_port=gvhmpb,actions=output:gvhmt,output:gvhmpa"} {
			if _, errOut, err := g.Run("ovs-ofctl", "add-flow", "gvhmbr", f); err != nil {
				t.Fatalf("add-flow %s: %v %s", f, err, errOut)
			}
		}
		(&netLab{t: t}).pingOK(gvhmA, gvhmAddrB) // the flows, cached
		copied(t, func() {}, func() {})
	})
}

const (
	gvhmH1, gvhmA, gvhmB, gvhmC = "gvhm-h1", "gvhm-a", "gvhm-b", "gvhm-c"
	gvhmUnder1, gvhmCollector   = "172.23.88.1", "172.23.88.2"
	gvhmAddrA, gvhmAddrB        = "10.79.3.1", "10.79.3.2"
)
