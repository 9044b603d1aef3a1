package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The differential test of conjunctive matches: a Neutron-style allow
// list (ip_src in {A,B} x tcp_dst in {22,80} -> conj_id 1 -> NORMAL, and
// ip_src in {B} x ICMP echo -> conj_id 2 -> NORMAL, else drop) written
// with ovs-ofctl add-flows, then real TCP connections and pings from a
// client namespace with three addresses to a server namespace. OVS 3.1
// and gvsd must give every attempt the same verdict and print the same
// dump-flows, counters included: only the conj_id flows count allowed
// packets, the clause flows none.

const (
	gvcjBr     = "gvcjbr"
	gvcjClient = "gvcj-cli"
	gvcjServer = "gvcj-srv"
	gvcjA      = "10.77.0.1"
	gvcjB      = "10.77.0.2"
	gvcjC      = "10.77.0.3"
	gvcjS      = "10.77.0.10"
)

var gvcjFlows = []string{
	"priority=100,arp,actions=NORMAL",
	"priority=90,ip,nw_src=" + gvcjS + ",actions=NORMAL",
	"priority=50,ip,nw_src=" + gvcjA + ",actions=conjunction(1,1/2)",
	"priority=50,ip,nw_src=" + gvcjB + ",actions=conjunction(1,1/2),conjunction(2,1/2)",
	"priority=50,tcp,tp_dst=22,actions=conjunction(1,2/2)",
	"priority=50,tcp,tp_dst=80,actions=note:aa,conjunction(1,2/2)",
	"priority=50,icmp,icmp_type=8,actions=conjunction(2,2/2)",
	"priority=50,conj_id=1,tcp,actions=NORMAL",
	"conj_id=2,actions=output:NORMAL",
	"priority=0,actions=drop",
}

// gvcjTraces are ofproto/trace flows: allowed TCP, a source in no
// clause, a port in no clause, and the allowed echo request.
var gvcjTraces = []string{
	"in_port=1,tcp,nw_src=" + gvcjA + ",nw_dst=" + gvcjS + ",tp_dst=22",
	"in_port=1,tcp,nw_src=" + gvcjC + ",nw_dst=" + gvcjS + ",tp_dst=22",
	"in_port=1,tcp,nw_src=" + gvcjB + ",nw_dst=" + gvcjS + ",tp_dst=443",
	"in_port=1,icmp,nw_src=" + gvcjB + ",nw_dst=" + gvcjS + ",icmp_type=8",
}

// gvcjTraceRE picks the rule table 0 found out of a trace. (Its actions
// are not compared: gvs prints no "drop" line for a flow without
// actions.)
var gvcjTraceRE = regexp.MustCompile(`(?m)^ 0\. .*$`)

// gvcjAttempt is one connection or ping and whether the list allows it.
type gvcjAttempt struct {
	icmp    bool
	src     string
	port    int
	allowed bool
}

var gvcjAttempts = []gvcjAttempt{
	{false, gvcjA, 22, true}, {false, gvcjA, 80, true}, {false, gvcjB, 22, true}, {false, gvcjB, 80, true},
	{false, gvcjC, 22, false}, {false, gvcjC, 80, false}, {false, gvcjA, 443, false}, {false, gvcjB, 443, false},
	{true, gvcjB, 0, true}, {true, gvcjA, 0, false}, {true, gvcjC, 0, false},
}

// gvcjStatsRE masks what differs by nature in dump-flows: durations and
// ages.
var gvcjStatsRE = regexp.MustCompile(`duration=[0-9.]+s, |idle_age=[0-9]+, |hard_age=[0-9]+, `)

// gvcjTry makes one attempt: a TCP connection from src (SYN, ACK, then
// RST: three packets when it is allowed, one SYN when it is not: the
// timeout is shorter than the SYN retransmit) or one echo request.
func gvcjTry(l *netLab, a gvcjAttempt) (bool, error) {
	return gvcjTryWithin(l, a, 900*time.Millisecond)
}

func gvcjTryWithin(l *netLab, a gvcjAttempt, timeout time.Duration) (bool, error) {
	if a.icmp {
		_, err := l.exec(gvcjClient, "ping", "-n", "-c", "1", "-W", "1", "-I", a.src, gvcjS)
		return err == nil, nil
	}
	ok := false
	err := gvsyInNetns(gvcjClient, func() error {
		d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.src)}}
		c, err := d.Dial("tcp", net.JoinHostPort(gvcjS, fmt.Sprint(a.port)))
		if err != nil {
			return nil
		}
		ok = true
		_ = c.(*net.TCPConn).SetLinger(0)
		return c.Close()
	})
	return ok, err
}

// gvcjListen opens the server's listeners until the test ends. Nothing
// accepts: the kernel completes each handshake into the backlog and the
// client's RST ends it, so the server sends no more than its SYN-ACK.
func gvcjListen(t *testing.T) {
	for _, port := range []int{22, 80, 443} {
		var ln net.Listener
		err := gvsyInNetns(gvcjServer, func() (err error) {
			ln, err = net.Listen("tcp", net.JoinHostPort(gvcjS, fmt.Sprint(port)))
			return err
		})
		if err != nil {
			t.Fatalf("listening on %s:%d: %v", gvcjS, port, err)
		}
		t.Cleanup(func() { ln.Close() })
	}
}

// gvsyNetdevBridge makes bridge br (datapath netdev) with the ports,
// OpenFlow numbers 1 up, and fails the test unless each is up.
func gvsyNetdevBridge(t *testing.T, vsctl func(...string) string, br string, ports ...string) {
	t.Helper()
	gvsyFreeBridgeName(br)
	vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
	for i, p := range ports {
		vsctl("add-port", br, p, "--", "set", "interface", p, fmt.Sprintf("ofport_request=%d", i+1))
	}
	for _, p := range ports {
		gvsyRequirePortUp(t, vsctl, p)
	}
}

func TestConjunctionOVSDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip", "sysctl", "ping", "ethtool")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	lab := newNetLab(t)
	lab.netns(gvcjClient)
	lab.netns(gvcjServer)
	lab.veth("gvcjc", "gvcjcx", gvcjClient, gvcjA+"/24", gvcjB+"/24", gvcjC+"/24")
	lab.veth("gvcjs", "gvcjsx", gvcjServer, gvcjS+"/24")
	// No ARP on the way (its counters would depend on the caches), and
	// full checksums in the frames the switches see.
	cmac, smac := lab.mac(gvcjClient, "gvcjcx"), lab.mac(gvcjServer, "gvcjsx")
	lab.mustExec(gvcjServer, "ip", "neigh", "replace", gvcjA, "lladdr", cmac, "dev", "gvcjsx", "nud", "permanent")
	lab.mustExec(gvcjServer, "ip", "neigh", "replace", gvcjB, "lladdr", cmac, "dev", "gvcjsx", "nud", "permanent")
	lab.mustExec(gvcjServer, "ip", "neigh", "replace", gvcjC, "lladdr", cmac, "dev", "gvcjsx", "nud", "permanent")
	lab.mustExec(gvcjClient, "ip", "neigh", "replace", gvcjS, "lladdr", smac, "dev", "gvcjcx", "nud", "permanent")
	lab.mustExec(gvcjClient, "ethtool", "-K", "gvcjcx", "tx", "off")
	lab.mustExec(gvcjServer, "ethtool", "-K", "gvcjsx", "tx", "off")
	gvcjListen(t)
	flowsFile := gvofWriteFile(t, "conjflows", gvcjFlows...)

	configure := func(vsctl func(...string) string) { gvsyNetdevBridge(t, vsctl, gvcjBr, "gvcjc", "gvcjs") }
	// scenario adds the flows, makes every attempt and returns the
	// verdicts and dump-flows once the counters have settled.
	scenario := func(run func(...string) (string, string, error), appctl []string) (verdicts []bool, dump string, traces []string) {
		must := func(args ...string) string {
			out, errOut, err := run(args...)
			if err != nil {
				t.Fatalf("%s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
			}
			return out
		}
		must("ovs-ofctl", "del-flows", gvcjBr)
		must("ovs-ofctl", "add-flows", gvcjBr, flowsFile)
		// The ports may take a moment: an allowed ping and connection,
		// retried, then the counters start again from zero by adding
		// the flows anew.
		deadline := time.Now().Add(15 * time.Second)
		for _, warm := range []gvcjAttempt{{icmp: true, src: gvcjB}, {src: gvcjA, port: 22}} {
			for {
				if ok, _ := gvcjTryWithin(lab, warm, 3*time.Second); ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the allowed %+v never went through", warm)
				}
			}
		}
		time.Sleep(time.Second)
		must("ovs-ofctl", "del-flows", gvcjBr)
		must("ovs-ofctl", "add-flows", gvcjBr, flowsFile)
		time.Sleep(1500 * time.Millisecond) // the switch revalidates its cached flows
		for _, a := range gvcjAttempts {
			ok, err := gvcjTry(lab, a)
			if err != nil {
				t.Fatal(err)
			}
			verdicts = append(verdicts, ok)
		}
		// 12 TCP packets and 1 echo request allowed, 4 SYNs and 2 echo
		// requests dropped, 4 SYN-ACKs and 1 reply back: 24 in all.
		const total = 24
		re := regexp.MustCompile(`n_packets=(\d+)`)
		for end := time.Now().Add(10 * time.Second); ; {
			dump = must("ovs-ofctl", "dump-flows", gvcjBr)
			sum := 0
			for _, m := range re.FindAllStringSubmatch(dump, -1) {
				var n int
				fmt.Sscan(m[1], &n)
				sum += n
			}
			if sum >= total || time.Now().After(end) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond) // nothing more may come
		dump = gvcjStatsRE.ReplaceAllString(must("ovs-ofctl", "dump-flows", gvcjBr), "")
		// ofproto/trace names the conj_id flow as the packet's flow.
		for _, f := range gvcjTraces {
			out := must(append(append([]string(nil), appctl...), "ofproto/trace", gvcjBr, f)...)
			traces = append(traces, f+"\n"+strings.Join(gvcjTraceRE.FindAllString(out, -1), "\n"))
		}
		return verdicts, dump, traces
	}

	var refVerdicts, gotVerdicts []bool
	var refDump, gotDump string
	var refTraces, gotTraces []string
	func() {
		o := gvsyStartOVS(t)
		defer o.Stop()
		configure(o.MustVsctl)
		refVerdicts, refDump, refTraces = scenario(o.run, []string{"ovs-appctl", "-t", filepath.Join(o.dir, "ovs-vswitchd.ctl")})
	}()
	func() {
		g := StartGvsd(t)
		defer g.Stop()
		configure(g.MustVsctl)
		run := func(args ...string) (string, string, error) { return g.Run(args[0], args[1:]...) }
		gotVerdicts, gotDump, gotTraces = scenario(run, []string{"ovs-appctl"})
	}()

	t.Logf("OVS 3.1 dump-flows:\n%s", refDump)
	for i, a := range gvcjAttempts {
		what := fmt.Sprintf("tcp %s -> %s:%d", a.src, gvcjS, a.port)
		if a.icmp {
			what = fmt.Sprintf("ping %s -> %s", a.src, gvcjS)
		}
		if refVerdicts[i] != a.allowed {
			t.Errorf("OVS 3.1: %s passed=%v, the allow list says %v", what, refVerdicts[i], a.allowed)
		}
		if gotVerdicts[i] != a.allowed {
			t.Errorf("gvsd: %s passed=%v, the allow list says %v", what, gotVerdicts[i], a.allowed)
		}
	}
	if refDump != gotDump {
		t.Errorf("dump-flows differ:\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", refDump, gotDump)
	}
	for i := range refTraces {
		t.Logf("OVS 3.1 trace: %s", refTraces[i])
		if refTraces[i] != gotTraces[i] {
			t.Errorf("ofproto/trace differs:\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", refTraces[i], gotTraces[i])
		}
	}
	if !strings.Contains(refDump, "n_packets=12,") {
		t.Errorf("the reference's conj_id=1 flow did not count the 12 allowed TCP packets: the scenario did not run as designed\n%s", refDump)
	}
}

// gvcjTraceCases are flow sets whose corner cases ovs-fields(7) leaves
// open, each traced with one TCP packet from 10.0.0.1 to port 22 on OVS
// 3.1 and on gvsd: the flow table 0 finds must be the same.
var gvcjTraceCases = []struct {
	name  string
	flows []string
}{
	{"no conj_id flow, a catch-all", []string{
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(2,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(2,2/2)",
		"priority=5,ip,nw_src=10.0.0.1,actions=conjunction(3,1/2)",
		"priority=5,tcp,tp_dst=22,actions=conjunction(3,2/2)",
		"conj_id=3,actions=output:1",
		"priority=0,actions=output:2"}},
	{"no conj_id flow, no catch-all", []string{
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(2,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(2,2/2)",
		"priority=5,ip,nw_src=10.0.0.1,actions=conjunction(3,1/2)",
		"priority=5,tcp,tp_dst=22,actions=conjunction(3,2/2)",
		"conj_id=3,actions=output:1"}},
	{"higher ordinary flow", []string{
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(1,2/2)",
		"conj_id=1,actions=output:2",
		"priority=15,tcp,tp_dst=22,nw_dst=10.0.0.9,actions=output:1"}},
	{"incomplete, lower ordinary flow", []string{
		"priority=10,ip,nw_src=10.0.0.2,actions=conjunction(1,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(1,2/2)",
		"conj_id=1,actions=output:2",
		"priority=5,tcp,actions=output:1"}},
	{"different n", []string{
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(7,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(7,2/3)",
		"conj_id=7,actions=output:2",
		"priority=1,actions=output:1"}},
	{"lone flow with both clauses", []string{
		"priority=10,ip,actions=conjunction(8,1/2),conjunction(8,2/2)",
		"conj_id=8,actions=output:2",
		"priority=1,actions=output:1"}},
	{"lone flow with both clauses and another", []string{
		"priority=10,ip,actions=conjunction(8,1/2),conjunction(8,2/2)",
		"priority=10,tcp,actions=conjunction(9,1/2)",
		"conj_id=8,actions=output:2"}},
	{"conj_id flow that is a clause", []string{
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(5,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(5,2/2)",
		"priority=50,conj_id=5,actions=conjunction(6,1/2)",
		"priority=1,tcp,actions=output:1"}},
	{"conj_id flow with more fields", []string{
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(5,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(5,2/2)",
		"conj_id=5,tcp,nw_dst=10.0.0.8,actions=output:1",
		"priority=2,conj_id=5,actions=output:2",
		"priority=1,actions=drop"}},
}

func TestConjunctionTraceOVSDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	const br = "gvcjt"
	const packet = "in_port=1,tcp,nw_src=10.0.0.1,nw_dst=10.0.0.9,tp_dst=22"
	files := make([]string, len(gvcjTraceCases))
	for i, c := range gvcjTraceCases {
		files[i] = gvofWriteFile(t, fmt.Sprintf("conjtrace%d", i), c.flows...)
	}
	scenario := func(run func(...string) (string, string, error), appctl []string) (out []string) {
		for i, c := range gvcjTraceCases {
			// Every other case goes through OpenFlow 1.3 (conj_id in an
			// OXM match, conjunction in apply_actions), and its flows are
			// dumped in 1.3 too.
			of := []string{"ovs-ofctl"}
			if i%2 == 1 {
				of = append(of, "-O", "OpenFlow13")
			}
			for _, args := range [][]string{{"del-flows", br}, {"add-flows", br, files[i]}} {
				if o, e, err := run(append(of, args...)...); err != nil {
					t.Fatalf("%s: %s: %v\n%s%s", c.name, strings.Join(args, " "), err, o, e)
				}
			}
			dump, e, err := run(append(of, "--no-stats", "dump-flows", br)...)
			if err != nil {
				t.Fatalf("%s: dump-flows: %v\n%s", c.name, err, e)
			}
			out = append(out, c.name+": dump-flows\n"+dump)
			o, e, err := run(append(append([]string(nil), appctl...), "ofproto/trace", br, packet)...)
			if err != nil {
				t.Fatalf("%s: ofproto/trace: %v\n%s%s", c.name, err, o, e)
			}
			out = append(out, c.name+": "+strings.Join(gvcjTraceRE.FindAllString(o, -1), "; "))
		}
		return out
	}
	var ref, got []string
	func() {
		o := gvsyStartOVS(t)
		defer o.Stop()
		gvsyFreeBridgeName(br)
		o.MustVsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
		for i := 1; i <= 2; i++ {
			p := fmt.Sprintf("%sp%d", br, i)
			o.MustVsctl("add-port", br, p, "--", "set", "interface", p, "type=internal", fmt.Sprintf("ofport_request=%d", i))
		}
		ref = scenario(o.run, []string{"ovs-appctl", "-t", filepath.Join(o.dir, "ovs-vswitchd.ctl")})
	}()
	func() {
		g := gvofBridge(t, br, 2)
		defer g.Stop()
		got = scenario(func(args ...string) (string, string, error) { return g.Run(args[0], args[1:]...) }, []string{"ovs-appctl"})
	}()
	for i := range ref {
		t.Logf("OVS 3.1: %s", ref[i])
		if !strings.Contains(ref[i], " 0. ") && !strings.Contains(ref[i], "dump-flows") {
			t.Errorf("OVS 3.1 traced no table 0 step: %s", ref[i])
		}
		if ref[i] != got[i] {
			t.Errorf("ofproto/trace differs:\n OVS 3.1: %s\n    gvsd: %s", ref[i], got[i])
		}
	}
}
