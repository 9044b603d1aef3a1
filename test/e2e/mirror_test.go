package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// This file checks port mirroring on real packets: the SPAN, VLAN mirror
// and RSPAN walk-throughs of docs/GUIDE.md (sections 3 to 5, the scenarios
// S1 to S3) with their exact commands, a mirror changed under continuous
// traffic, and a mirror whose destination cannot keep up. Apart from the
// names the scenarios fix (bridges mtest and mspan, namespaces
// test1..test4, ports p1..p4, mpatch0/1), everything made here starts with
// "gvmi".

// gvmiScenarioNetns and gvmiScenarioLinks are the names S0-S3 fix
// (docs/GUIDE.md, sections 2 to 5). They may belong to someone else, so a
// test refuses to run rather than delete them.
var (
	gvmiScenarioNetns = []string{"test1", "test2", "test3", "test4"}
	gvmiScenarioLinks = []string{"mtest", "mspan", "p1", "p2", "p3", "p4", "mpatch0", "mpatch1"}
)

// gvmiScenarioSetup checks that the scenario's names are free, starts
// gvsd with statistics written every second, and runs S0 as written.
// What the scenario creates is removed when the test ends.
func gvmiScenarioSetup(t *testing.T) (*netLab, *Gvsd) {
	t.Helper()
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-appctl", "tcpdump", "ping")
	for _, ns := range gvmiScenarioNetns {
		if labNetnsExists(ns) {
			t.Fatalf("network namespace %s already exists: the mirror scenarios need test1..test4 for themselves; remove it (ip netns del %s) and rerun", ns, ns)
		}
	}
	for _, dev := range gvmiScenarioLinks {
		if labLinkExists(dev) {
			t.Fatalf("interface %s already exists in the root namespace: the mirror scenarios need the name for their own ports; remove it and rerun", dev)
		}
	}
	// Registered first, so it runs last: after gvsd stopped, its TAPs
	// must be gone; any left is ours (the names were free) and removed.
	t.Cleanup(func() {
		for _, dev := range gvmiScenarioLinks {
			if labLinkExists(dev) {
				t.Errorf("interface %s still exists after gvsd stopped; removing it", dev)
				_, _ = lab.run("ip", "link", "del", dev)
			}
		}
	})
	g := StartGvsd(t)
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	gvmiS0(t, lab, g)
	return lab, g
}

// gvmiAddScenarioNetns adds namespace ns as the scenario does, removed when
// the test ends, and turns IPv6 off in it so that its kernel sends only
// the frames the test causes (ARP and ICMP of the pings).
func gvmiAddScenarioNetns(t *testing.T, lab *netLab, ns string) {
	t.Helper()
	lab.must("ip", "netns", "add", ns)
	t.Cleanup(func() { _, _ = lab.run("ip", "netns", "del", ns) })
	lab.mustExec(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
}

// gvmiS0 runs S0's commands as docs/GUIDE.md, "The test structure", writes
// them, plus IPv6 off on each moved interface before it comes up.
func gvmiS0(t *testing.T, lab *netLab, g *Gvsd) {
	t.Helper()
	g.MustVsctl("add-br", "mtest")
	for _, ns := range []string{"test1", "test2", "test3"} {
		gvmiAddScenarioNetns(t, lab, ns)
	}
	for _, p := range []string{"p1", "p2", "p3"} {
		g.MustVsctl("add-port", "mtest", p, "--", "set", "interface", p, "type=internal")
	}
	for i, p := range []string{"p1", "p2", "p3"} {
		lab.must("ip", "link", "set", "dev", p, "netns", fmt.Sprintf("test%d", i+1))
	}
	for i, p := range []string{"p1", "p2", "p3"} {
		lab.mustExec(fmt.Sprintf("test%d", i+1), "sysctl", "-q", "-w", "net.ipv6.conf."+p+".disable_ipv6=1")
	}
	lab.mustExec("test1", "ip", "addr", "add", "192.168.10.11/24", "dev", "p1")
	lab.mustExec("test2", "ip", "addr", "add", "192.168.10.12/24", "dev", "p2")
	lab.mustExec("test1", "ip", "link", "set", "up", "p1")
	lab.mustExec("test2", "ip", "link", "set", "up", "p2")
	lab.mustExec("test3", "ip", "link", "set", "up", "p3")
	g.MustVsctl("set", "port", "p1", "tag=10")
	g.MustVsctl("set", "port", "p2", "tag=10")
}

// gvmiS1Mirror, gvmiS2 and gvmiS3 are the commands of S1, S2 and S3
// (docs/GUIDE.md, "SPAN", "Mirror a VLAN" and "RSPAN").
var (
	gvmiS1Mirror = []string{"--", "--id=@p2", "get", "port", "p2", "--", "--id=@p3", "get", "port", "p3",
		"--", "--id=@m", "create", "mirror", "name=m0", "select-dst-port=@p2", "output-port=@p3",
		"--", "set", "bridge", "mtest", "mirrors=@m"}
	gvmiS2Clear  = []string{"clear", "bridge", "mtest", "mirrors"}
	gvmiS2Mirror = []string{"--", "--id=@p3", "get", "port", "p3",
		"--", "--id=@m", "create", "mirror", "name=m0", "select-all=true", "select-vlan=10", "output-port=@p3",
		"--", "set", "bridge", "mtest", "mirrors=@m"}
	gvmiS3Patch = []string{"--", "add-port", "mtest", "mpatch0", "--", "set", "interface", "mpatch0", "type=patch", "options:peer=mpatch1",
		"--", "add-port", "mspan", "mpatch1", "--", "set", "interface", "mpatch1", "type=patch", "options:peer=mpatch0"}
	gvmiS3Mirror0 = []string{"--", "--id=@p1", "get", "port", "p1",
		"--", "--id=@m", "create", "mirror", "name=m0", "select-src-port=@p1", "output-vlan=200",
		"--", "set", "bridge", "mtest", "mirrors=@m"}
	gvmiS3Mirror1 = []string{"--", "--id=@p4", "get", "port", "p4",
		"--", "--id=@m", "create", "mirror", "name=m1", "select-all=true", "select-vlan=200", "output-port=@p4",
		"--", "set", "bridge", "mspan", "mirrors=@m"}
)

// gvmiCapture starts tcpdump -e on dev in ns for the frames of one
// direction: "in" (what the switch delivers to the host) or "out" (what
// the host sends into the switch). It returns once tcpdump listens.
func gvmiCapture(t *testing.T, ns, dev, dir string) *tcpdumpCapture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c := &tcpdumpCapture{what: ns + "/" + dev + " (" + dir + ")", cancel: cancel, errEOF: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, "ip", "netns", "exec", ns, "tcpdump", "-l", "-n", "-e", "--immediate-mode", "-Q", dir, "-i", dev)
	c.cmd.Stdout = &c.out
	stderr, err := c.cmd.StderrPipe()
	if err == nil {
		err = c.cmd.Start()
	}
	if err != nil {
		cancel()
		t.Fatalf("tcpdump on %s: %v", c.what, err)
	}
	t.Cleanup(func() { c.stop() })
	listening := make(chan struct{})
	go c.readStderr(stderr, listening)
	select {
	case <-listening:
	case <-c.errEOF:
		c.stop()
		t.Fatalf("tcpdump on %s exited before listening:\n%s", c.what, c.errOut.String())
	case <-time.After(10 * time.Second):
		c.stop()
		t.Fatalf("tcpdump on %s did not start listening within 10s:\n%s", c.what, c.errOut.String())
	}
	return c
}

// gvmiTdFrame is one frame as tcpdump -e printed it.
type gvmiTdFrame struct {
	line   string
	vlan   int    // outer 802.1Q VID, -1 if untagged
	length int    // the frame's length on the wire
	key    string // addresses and everything from the inner EtherType on
}

var (
	gvmiTdOuter = regexp.MustCompile(`^\S+ (\S+) > (\S+), ethertype [^(]*\((0x[0-9a-f]{4})\), length (\d+): (.*)$`)
	gvmiTdVLAN  = regexp.MustCompile(`^vlan (\d+), p \d+, ethertype [^(]*\((0x[0-9a-f]{4})\), (.*)$`)
)

// gvmiParseFrames parses tcpdump -n -e lines; a line it cannot read
// fails the test, since a frame must not go uncounted.
func gvmiParseFrames(t *testing.T, lines []string) []gvmiTdFrame {
	t.Helper()
	var out []gvmiTdFrame
	for _, line := range lines {
		m := gvmiTdOuter.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("cannot parse tcpdump line %q", line)
		}
		f := gvmiTdFrame{line: line, vlan: -1}
		f.length, _ = strconv.Atoi(m[4])
		etype, rest := m[3], m[5]
		if etype == "0x8100" {
			v := gvmiTdVLAN.FindStringSubmatch(rest)
			if v == nil {
				t.Fatalf("cannot parse the VLAN header in tcpdump line %q", line)
			}
			f.vlan, _ = strconv.Atoi(v[1])
			etype, rest = v[2], v[3]
		}
		f.key = m[1] + " > " + m[2] + " " + etype + " " + rest
		out = append(out, f)
	}
	return out
}

// gvmiTotals counts frames and their bytes.
func gvmiTotals(frames []gvmiTdFrame) (packets, bytes int64) {
	for _, f := range frames {
		packets++
		bytes += int64(f.length)
	}
	return packets, bytes
}

// gvmiMirrorStats reads a mirror's statistics by name.
func gvmiMirrorStats(g *Gvsd, name string) (map[string]int64, error) {
	out, errOut, err := g.Vsctl("get", "mirror", name, "statistics")
	if err != nil {
		return nil, fmt.Errorf("ovs-vsctl get mirror %s statistics: %v: %s", name, err, errOut)
	}
	return parseStats(strings.TrimSpace(out)), nil
}

// gvmiAwaitStats polls mirror name until its tx_packets and tx_bytes,
// less base, equal what want() reports, which the test computes from its
// captures at that moment (they may still grow: late ARP probes are
// counted on both sides). It fails after 15 s with the last values.
func gvmiAwaitStats(t *testing.T, g *Gvsd, name string, base map[string]int64, want func() (int64, int64)) map[string]int64 {
	t.Helper()
	var stats map[string]int64
	var wp, wb int64
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var err error
		if stats, err = gvmiMirrorStats(g, name); err != nil {
			t.Fatal(err)
		}
		wp, wb = want()
		if stats["tx_packets"]-base["tx_packets"] == wp && stats["tx_bytes"]-base["tx_bytes"] == wb {
			return stats
		}
		if time.Now().After(deadline) {
			break
		}
	}
	t.Errorf("mirror %s statistics: tx_packets grew by %d and tx_bytes by %d within 15s, want %d packets and %d bytes (the frames selected, as the switch received them); last statistics %v",
		name, stats["tx_packets"]-base["tx_packets"], stats["tx_bytes"]-base["tx_bytes"], wp, wb, stats)
	return stats
}

// gvmiPingSpec is a ping: count echo requests from namespace ns to addr.
type gvmiPingSpec struct {
	ns, addr string
	count    int
}

// gvmiMirroredPing runs ping while selected capture the frames mirror m0
// should copy and output captures its output port. It waits until m0's
// statistics count exactly the selected frames, then stops the captures
// and returns what they saw, logged.
func gvmiMirroredPing(t *testing.T, lab *netLab, g *Gvsd, ping gvmiPingSpec, selected []*tcpdumpCapture, output *tcpdumpCapture) (sel, copies []gvmiTdFrame) {
	t.Helper()
	base, err := gvmiMirrorStats(g, "m0")
	if err != nil {
		t.Fatal(err)
	}
	gvmiPing(t, lab, ping.ns, ping.addr, ping.count)
	soFar := func() (int64, int64) {
		var frames []gvmiTdFrame
		for _, c := range selected {
			frames = append(frames, gvmiParseFrames(t, nonEmptyLines(c.out.String()))...)
		}
		return gvmiTotals(frames)
	}
	gvmiAwaitStats(t, g, "m0", base, soFar)
	time.Sleep(300 * time.Millisecond) // the last copies reach the output
	for _, c := range selected {
		sel = append(sel, gvmiParseFrames(t, c.stop())...)
	}
	copies = gvmiParseFrames(t, output.stop())
	t.Logf("frames the mirror selects (%s):\n%s", capturesNamed(selected), gvmiLines(sel))
	t.Logf("frames %s received:\n%s", output.what, gvmiLines(copies))
	return sel, copies
}

func capturesNamed(cs []*tcpdumpCapture) string {
	var names []string
	for _, c := range cs {
		names = append(names, c.what)
	}
	return strings.Join(names, ", ")
}

// gvmiPing pings from ns as a host would, and requires every reply.
func gvmiPing(t *testing.T, lab *netLab, ns, addr string, count int) {
	t.Helper()
	out, err := lab.exec(ns, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "2", addr)
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ip netns exec %s ping %s: %v\n%s", ns, addr, err, out)
	}
}

// gvmiCopiesOf checks that every frame of sent appears in copies with the
// given VLAN (-1: untagged), as many times as it was sent, and returns
// the copies that match no sent frame.
func gvmiCopiesOf(t *testing.T, what string, sent, copies []gvmiTdFrame, vlan int) []gvmiTdFrame {
	t.Helper()
	left := map[string]int{}
	for _, c := range copies {
		left[c.key]++
	}
	for _, s := range sent {
		if left[s.key] == 0 {
			t.Errorf("%s: no copy of %q", what, s.line)
			continue
		}
		left[s.key]--
	}
	var extra []gvmiTdFrame
	for _, c := range copies {
		if c.vlan != vlan {
			t.Errorf("%s: copy with VLAN %d, want %d (-1: untagged): %q", what, c.vlan, vlan, c.line)
		}
		if left[c.key] > 0 {
			left[c.key]--
			extra = append(extra, c)
		}
	}
	return extra
}

// gvmiOnly returns the frames whose line contains every word.
func gvmiOnly(frames []gvmiTdFrame, words ...string) []gvmiTdFrame {
	var out []gvmiTdFrame
	for _, f := range frames {
		if len(linesWith([]string{f.line}, words...)) == 1 {
			out = append(out, f)
		}
	}
	return out
}

// TestS1SPAN runs S1 (docs/GUIDE.md, "SPAN"): a mirror of what leaves p2,
// copied to p3. While test1 pings test2, p3 receives every frame that
// leaves p2 (echo requests and ARP), tagged with VLAN 10, and no echo
// reply; the mirror's statistics count exactly those frames, with their
// bytes as the switch received them (untagged, as they left p2). p3, the
// output port, gets no normal traffic, and what it sends reaches nobody.
func TestS1SPAN(t *testing.T) {
	lab, g := gvmiScenarioSetup(t)
	g.MustVsctl(gvmiS1Mirror...)

	p3 := gvmiCapture(t, "test3", "p3", "in")
	p2 := gvmiCapture(t, "test2", "p2", "in")
	leftP2, copies := gvmiMirroredPing(t, lab, g, gvmiPingSpec{ns: "test1", addr: "192.168.10.12", count: 5},
		[]*tcpdumpCapture{p2}, p3)

	if n := len(gvmiOnly(leftP2, "ICMP echo request")); n != 5 {
		t.Errorf("%d echo requests left p2, want 5", n)
	}
	if len(gvmiOnly(leftP2, "ARP")) == 0 {
		t.Errorf("no ARP request left p2 (the first ping needs one)")
	}
	for _, f := range leftP2 {
		if f.vlan != -1 {
			t.Errorf("a frame left access port p2 tagged: %q", f.line)
		}
	}
	// A frame that left p2 just after its capture stopped may have a copy
	// on p3: tolerated only if it is ARP or an echo request.
	for _, f := range gvmiCopiesOf(t, "p3", leftP2, copies, 10) {
		if !strings.Contains(f.line, "ARP") && !strings.Contains(f.line, "ICMP echo request") {
			t.Errorf("p3 received a frame that did not leave p2: %q", f.line)
		}
	}
	if r := gvmiOnly(copies, "ICMP echo reply"); len(r) > 0 {
		t.Errorf("p3 received %d echo replies; they leave p1, not p2:\n%s", len(r), gvmiLines(r))
	}

	t.Run("output port drops what it receives", func(t *testing.T) { gvmiS1OutputDrops(t, g) })
}

// gvmiS1OutputDrops sends from p3 (the mirror output) a broadcast ARP
// request, the same tagged with VLAN 10, and a unicast frame to test2's
// MAC, and checks that none reaches test1 or test2 and that the switch
// did not learn p3's source address; broadcasts from test1 and test2
// afterwards prove the captures were listening.
func gvmiS1OutputDrops(t *testing.T, g *Gvsd) {
	const p3MAC = "02:67:76:6d:03:03"
	lab := &netLab{t: t}
	c1 := gvmiCapture(t, "test1", "p1", "in")
	c2 := gvmiCapture(t, "test2", "p2", "in")
	mac2 := lab.mac("test2", "p2")
	unicast := gvsyEther(mac2, p3MAC, nil, 0x0800, gvsyICMPEcho("192.168.10.13", "192.168.10.12", 8, 0x676d, 1, "gvmi from the mirror output"))
	lab.inject("test3", "p3",
		lab.arpRequest(p3MAC, 0, "192.168.10.13", "192.168.10.12"),
		lab.arpRequest(p3MAC, 10, "192.168.10.13", "192.168.10.11"),
		unicast)
	// Control: ARP broadcasts for absent addresses from each host.
	lab.exec("test1", "ping", "-c", "1", "-W", "1", "192.168.10.99")
	lab.exec("test2", "ping", "-c", "1", "-W", "1", "192.168.10.98")
	if !c2.waitFor(5*time.Second, "who-has 192.168.10.99") || !c1.waitFor(5*time.Second, "who-has 192.168.10.98") {
		t.Fatalf("the control broadcasts did not arrive: p1 saw:\n%s\np2 saw:\n%s", strings.Join(c1.stop(), "\n"), strings.Join(c2.stop(), "\n"))
	}
	for _, c := range []*tcpdumpCapture{c1, c2} {
		if leaked := linesWith(c.stop(), p3MAC); len(leaked) > 0 {
			t.Errorf("%s received frames sent on the mirror output p3:\n%s", c.what, strings.Join(leaked, "\n"))
		}
	}
	if fdb := appctl(t, g, "fdb/show", "mtest"); strings.Contains(fdb, p3MAC) {
		t.Errorf("mtest learned %s from the mirror output p3:\n%s", p3MAC, fdb)
	}
}

func gvmiLines(frames []gvmiTdFrame) string {
	if len(frames) == 0 {
		return "    (nothing)"
	}
	lines := make([]string, len(frames))
	for i, f := range frames {
		lines[i] = "    " + f.line
	}
	return strings.Join(lines, "\n")
}

// TestS2VLANMirror runs S2 (docs/GUIDE.md, "Mirror a VLAN") after S1's
// mirror: the S1 mirror is cleared and replaced by one of every packet in
// VLAN 10. While test1 pings test2, p3 receives every frame test1 and test2
// send (requests and replies), each tagged with VLAN 10, and the statistics
// count them with their bytes.
func TestS2VLANMirror(t *testing.T) {
	lab, g := gvmiScenarioSetup(t)
	g.MustVsctl(gvmiS1Mirror...)
	g.MustVsctl(gvmiS2Clear...)
	if m := strings.TrimSpace(g.MustVsctl("get", "bridge", "mtest", "mirrors")); m != "[]" {
		t.Fatalf("after ovs-vsctl clear bridge mtest mirrors, mirrors=%s", m)
	}
	g.MustVsctl(gvmiS2Mirror...)

	p3 := gvmiCapture(t, "test3", "p3", "in")
	out1 := gvmiCapture(t, "test1", "p1", "out")
	out2 := gvmiCapture(t, "test2", "p2", "out")
	all, copies := gvmiMirroredPing(t, lab, g, gvmiPingSpec{ns: "test1", addr: "192.168.10.12", count: 5},
		[]*tcpdumpCapture{out1, out2}, p3)

	for _, what := range []string{"ICMP echo request", "ICMP echo reply"} {
		if n := len(gvmiOnly(copies, what)); n != 5 {
			t.Errorf("p3 received %d copies of %s, want 5", n, what)
		}
	}
	for _, f := range gvmiCopiesOf(t, "p3", all, copies, 10) {
		if !strings.Contains(f.line, "ARP") {
			t.Errorf("p3 received a frame that test1 and test2 did not send: %q", f.line)
		}
	}
}

// TestS3RSPAN runs S3 (docs/GUIDE.md, "RSPAN"): mirror m0 copies what
// enters mtest on p1 into VLAN 200; the copies cross the patch into mspan,
// where mirror m1 sends VLAN 200 to p4, an access port of VLAN 200. test4
// receives each frame test1 sends, once and untagged, and no echo reply;
// both mirrors count those frames with the bytes test1 sent.
func TestS3RSPAN(t *testing.T) {
	lab, g := gvmiScenarioSetup(t)
	g.MustVsctl("add-br", "mspan")
	gvmiAddScenarioNetns(t, lab, "test4")
	g.MustVsctl("add-port", "mspan", "p4", "--", "set", "interface", "p4", "type=internal", "--", "set", "port", "p4", "tag=200")
	lab.must("ip", "link", "set", "dev", "p4", "netns", "test4")
	lab.mustExec("test4", "sysctl", "-q", "-w", "net.ipv6.conf.p4.disable_ipv6=1")
	lab.mustExec("test4", "ip", "link", "set", "up", "p4")
	g.MustVsctl(gvmiS3Patch...)
	g.MustVsctl(gvmiS3Mirror0...)
	g.MustVsctl(gvmiS3Mirror1...)

	p4 := gvmiCapture(t, "test4", "p4", "in")
	out1 := gvmiCapture(t, "test1", "p1", "out")
	base0, err := gvmiMirrorStats(g, "m0")
	if err != nil {
		t.Fatal(err)
	}
	base1, err := gvmiMirrorStats(g, "m1")
	if err != nil {
		t.Fatal(err)
	}
	gvmiPing(t, lab, "test1", "192.168.10.12", 5)

	sent := func() []gvmiTdFrame { return gvmiParseFrames(t, nonEmptyLines(out1.out.String())) }
	gvmiAwaitStats(t, g, "m0", base0, func() (int64, int64) { return gvmiTotals(sent()) })
	gvmiAwaitStats(t, g, "m1", base1, func() (int64, int64) { return gvmiTotals(sent()) })
	time.Sleep(300 * time.Millisecond)
	fromP1 := gvmiParseFrames(t, out1.stop())
	copies := gvmiParseFrames(t, p4.stop())
	t.Logf("frames test1 sent:\n%s", gvmiLines(fromP1))
	t.Logf("frames test4 received:\n%s", gvmiLines(copies))

	if n := len(gvmiOnly(copies, "ICMP echo request")); n != 5 {
		t.Errorf("test4 received %d echo requests, want the 5 test1 sent", n)
	}
	for _, f := range gvmiCopiesOf(t, "p4", fromP1, copies, -1) {
		if !strings.Contains(f.line, "ARP") {
			t.Errorf("test4 received a frame that test1 did not send: %q", f.line)
		}
	}
	if r := gvmiOnly(copies, "ICMP echo reply"); len(r) > 0 {
		t.Errorf("test4 received %d echo replies; m0 selects only what p1 sends:\n%s", len(r), gvmiLines(r))
	}
	list := g.MustVsctl("list", "mirror")
	for _, name := range []string{"m0", "m1"} {
		if !strings.Contains(list, `name                : `+name) {
			t.Errorf("ovs-vsctl list mirror lacks mirror %s:\n%s", name, list)
		}
	}
	if n := strings.Count(list, "tx_packets="); n != 2 {
		t.Errorf("ovs-vsctl list mirror shows tx_packets for %d mirrors, want 2:\n%s", n, list)
	}
}

// gvmiStreamSender sends a numbered UDP stream: 8-byte payloads "GVMI",
// the sender's id, and a 24-bit sequence number, at a fixed rate.
const gvmiStreamSender = `
import socket, sys, time
dst, sid, rate, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n, t0 = 0, time.monotonic()
while True:
    now = time.monotonic()
    if now - t0 >= dur:
        break
    while n < int((now - t0) * rate):
        s.sendto(b"GVMI" + bytes([sid]) + n.to_bytes(3, "big"), (dst, 9999))
        n += 1
    time.sleep(0.0005)
print(n)
`

// gvmiStreamCopy is one copy of a stream datagram seen on the monitor,
// with the kernel's receive time.
type gvmiStreamCopy struct {
	at  time.Time
	sid byte
	seq int
}

// gvmiStreamMonitor collects, with kernel timestamps, the stream copies
// that arrive on a mirror output.
type gvmiStreamMonitor struct {
	fd     int
	mu     sync.Mutex
	copies []gvmiStreamCopy
	stop   chan struct{}
	done   chan error
}

// gvmiMonitor opens a timestamping packet socket on dev in ns and reads
// from it until the test ends.
func gvmiMonitor(t *testing.T, ns, dev string) *gvmiStreamMonitor {
	t.Helper()
	m := &gvmiStreamMonitor{fd: -1, stop: make(chan struct{}), done: make(chan error, 1)}
	err := gvsyInNetns(ns, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(gvsyHtons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		m.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20); err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: gvsyHtons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if m.fd >= 0 {
		t.Cleanup(func() { m.finish(); unix.Close(m.fd) })
	}
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", dev, ns, err)
	}
	go func() { m.done <- m.read() }()
	return m
}

func (m *gvmiStreamMonitor) read() error {
	buf := make([]byte, 2048)
	oob := make([]byte, 256)
	for {
		select {
		case <-m.stop:
			return nil
		default:
		}
		n, oobn, _, _, err := unix.Recvmsg(m.fd, buf, oob, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if c, ok := gvmiParseStreamCopy(buf[:n], oob[:oobn]); ok {
			m.mu.Lock()
			m.copies = append(m.copies, c)
			m.mu.Unlock()
		}
	}
}

// finish stops the reader; safe to call more than once.
func (m *gvmiStreamMonitor) finish() error {
	select {
	case <-m.stop:
		return nil
	default:
		close(m.stop)
	}
	return <-m.done
}

func (m *gvmiStreamMonitor) snapshot() []gvmiStreamCopy {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]gvmiStreamCopy(nil), m.copies...)
}

// gvmiParseStreamCopy reads an untagged IPv4/UDP frame carrying a stream
// datagram, and its receive time from the control messages.
func gvmiParseStreamCopy(f, oob []byte) (gvmiStreamCopy, bool) {
	if len(f) < 14+20+8+8 || binary.BigEndian.Uint16(f[12:14]) != 0x0800 {
		return gvmiStreamCopy{}, false
	}
	ip := f[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[9] != 17 || len(ip) < ihl+8+8 {
		return gvmiStreamCopy{}, false
	}
	p := ip[ihl+8:]
	if string(p[:4]) != "GVMI" {
		return gvmiStreamCopy{}, false
	}
	c := gvmiStreamCopy{sid: p[4], seq: int(p[5])<<16 | int(p[6])<<8 | int(p[7])}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return gvmiStreamCopy{}, false
	}
	for _, cm := range msgs {
		if cm.Header.Level == unix.SOL_SOCKET && cm.Header.Type == unix.SCM_TIMESTAMPNS && len(cm.Data) >= 16 {
			sec := int64(binary.NativeEndian.Uint64(cm.Data[0:8]))
			nsec := int64(binary.NativeEndian.Uint64(cm.Data[8:16]))
			c.at = time.Unix(sec, nsec)
			return c, true
		}
	}
	return gvmiStreamCopy{}, false
}

// TestMirrorChangeUnderTraffic changes a mirror's selection while two
// senders each stream ~2000 numbered UDP datagrams a second to a third
// host. ovs-vsctl waits until gvsd has applied each change; from 50 ms
// after it returns (time for copies already queued to drain), the monitor
// must see no copy of the old selection's stream, and it must see the new
// one's.
func TestMirrorChangeUnderTraffic(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "python3")
	const br = "gvmict"
	hosts := []struct{ ns, root, peer, addr string }{
		{"gvmi-cs1", "gvmics1", "gvmics1p", "10.233.1.1/24"},
		{"gvmi-cs2", "gvmics2", "gvmics2p", "10.233.1.2/24"},
		{"gvmi-cr", "gvmicr", "gvmicrp", "10.233.1.3/24"},
		{"gvmi-cm", "gvmicm", "gvmicmp", ""},
	}
	for _, h := range hosts {
		lab.netns(h.ns)
		if h.addr == "" {
			lab.veth(h.root, h.peer, h.ns)
		} else {
			lab.veth(h.root, h.peer, h.ns, h.addr)
		}
	}
	gvsyFreeBridgeName(br)
	g := StartGvsd(t)
	g.MustVsctl("add-br", br)
	for _, h := range hosts {
		g.MustVsctl("add-port", br, h.root)
	}
	lab.pingOK("gvmi-cs1", "10.233.1.3")
	lab.pingOK("gvmi-cs2", "10.233.1.3")
	g.MustVsctl(gvmiCreateMirror(br, "gvmim", true, "select_src_port=@gvmics1", "output_port=@gvmicm")...)

	mon := gvmiMonitor(t, "gvmi-cm", "gvmicmp")
	// The receiver swallows the datagrams, so that no ICMP error comes
	// back.
	gvsyStart(t, nil, gvsyInNS("gvmi-cr", "python3", "-c",
		"import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('10.233.1.3',9999))\ns.settimeout(15)\ntry:\n  while True: s.recv(64)\nexcept Exception: pass")...)
	time.Sleep(200 * time.Millisecond)
	const duration = 9.0
	senders := []*gvsyBackground{
		gvsyStart(t, nil, gvsyInNS("gvmi-cs1", "python3", "-c", gvmiStreamSender, "10.233.1.3", "1", "2000", fmt.Sprint(duration))...),
		gvsyStart(t, nil, gvsyInNS("gvmi-cs2", "python3", "-c", gvmiStreamSender, "10.233.1.3", "2", "2000", fmt.Sprint(duration))...),
	}
	time.Sleep(1500 * time.Millisecond)

	// Alternate the selection between the two senders.
	var changes []gvmiChange
	cur := byte(1)
	for range 5 {
		next := 3 - cur
		start := time.Now()
		g.MustVsctl("--", "--id=@s", "get", "port", fmt.Sprintf("gvmics%d", next), "--", "set", "mirror", "gvmim", "select_src_port=@s")
		changes = append(changes, gvmiChange{oldSID: cur, newSID: next, start: start, done: time.Now()})
		cur = next
		time.Sleep(1200 * time.Millisecond)
	}
	for i, s := range senders {
		if err := s.Wait(15 * time.Second); err != nil {
			t.Fatalf("sender %d: %v\n%s", i+1, err, s.out.String())
		}
		t.Logf("sender %d sent %s datagrams", i+1, strings.TrimSpace(s.out.String()))
	}
	time.Sleep(200 * time.Millisecond)
	if err := mon.finish(); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	gvmiCheckChanges(t, mon.snapshot(), changes)
}

// gvmiChange is one change of the mirror's selection, from sender oldSID
// to sender newSID: when ovs-vsctl started, and when it returned.
type gvmiChange struct {
	oldSID, newSID byte
	start, done    time.Time
}

// gvmiChangeGrace is how long after ovs-vsctl returns copies already
// queued under the old selection may still arrive.
const gvmiChangeGrace = 50 * time.Millisecond

// gvmiCheckChanges checks the window of each change, from its return to
// the start of the next: no copy of the old sender after the grace, and
// copies of the new one. Before the first change only sender 1 is
// mirrored.
func gvmiCheckChanges(t *testing.T, copies []gvmiStreamCopy, changes []gvmiChange) {
	t.Helper()
	counts := map[byte]int{}
	for _, c := range copies {
		if c.at.Before(changes[0].start) {
			counts[c.sid]++
		}
	}
	if counts[1] == 0 || counts[2] != 0 {
		t.Errorf("before the first change the monitor saw %d copies of sender 1 (want some) and %d of sender 2 (want none)", counts[1], counts[2])
	}
	for i, ch := range changes {
		until := time.Now().Add(time.Hour)
		if i+1 < len(changes) {
			until = changes[i+1].start
		}
		var late []gvmiStreamCopy
		newCopies, inGrace := 0, 0
		for _, c := range copies {
			if c.at.Before(ch.done) || !c.at.Before(until) {
				continue
			}
			switch {
			case c.sid == ch.oldSID && c.at.After(ch.done.Add(gvmiChangeGrace)):
				late = append(late, c)
			case c.sid == ch.oldSID:
				inGrace++
			case c.sid == ch.newSID:
				newCopies++
			}
		}
		t.Logf("change %d (sender %d -> %d): %d copies of the new selection, %d of the old within the grace, %d of the old after it",
			i+1, ch.oldSID, ch.newSID, newCopies, inGrace, len(late))
		if len(late) > 0 {
			t.Errorf("change %d: %d copies of sender %d's stream reached the old output more than %s after ovs-vsctl returned; the first %s after (seq %d), the last %s after",
				i+1, len(late), ch.oldSID, gvmiChangeGrace, late[0].at.Sub(ch.done), late[0].seq, late[len(late)-1].at.Sub(ch.done))
		}
		if newCopies == 0 {
			t.Errorf("change %d: no copy of sender %d's stream after the mirror selected it", i+1, ch.newSID)
		}
	}
}

// gvmiIperfResult is the part of iperf3's JSON report the test reads.
type gvmiIperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

// gvmiIperf runs a 3 s iperf3 TCP test from client to server and returns
// the receiver's throughput in bit/s.
func gvmiIperf(t *testing.T, clientNS, serverNS, serverAddr string) float64 {
	t.Helper()
	server := gvsyStart(t, nil, gvsyInNS(serverNS, "iperf3", "-s", "-1", "-B", serverAddr, "-p", "5211")...)
	gvsyWaitListening(t, serverNS, 5211)
	ctx, cancel := context.WithTimeout(context.Background(), gvsyCmdTimeout)
	defer cancel()
	args := gvsyInNS(clientNS, "iperf3", "-c", serverAddr, "-p", "5211", "-t", "3", "-J", "--connect-timeout", "3000")
	out, runErr := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	var res gvmiIperfResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("iperf3 client (%v) printed no JSON report: %v\n%s", runErr, err, out)
	}
	if res.Error != "" || runErr != nil {
		t.Fatalf("iperf3 client failed (exit status: %v): %s", runErr, res.Error)
	}
	if err := server.Wait(10 * time.Second); err != nil {
		t.Errorf("iperf3 server: %v\n%s", err, server.out.String())
	}
	return res.End.SumReceived.BitsPerSecond
}

// gvmiQdiscDrops reads the "dropped" count of dev's root qdisc.
func gvmiQdiscDrops(t *testing.T, lab *netLab, dev string) (int64, string) {
	t.Helper()
	out := lab.must("tc", "-s", "qdisc", "show", "dev", dev)
	m := regexp.MustCompile(`dropped (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no drop count in tc -s qdisc show dev %s:\n%s", dev, out)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n, out
}

// TestMirrorSlowDestination mirrors every packet of an iperf3 TCP transfer
// to a port whose device drains at 1 Mbit/s: a token bucket on the
// root-namespace end of its veth, the device gvsd writes the copies to.
// Runs with the mirror selecting everything alternate with runs where it
// selects nothing (7 runs of 3 s, on this shared 2-core machine the noise
// between runs is large); the median mirrored run must keep at least 70% of
// the median unmirrored one. The qdisc must have dropped copies (else the
// destination was not slow), and the mirror must count the copies it lost
// in tx_dropped, including those the kernel refused because the
// destination's queue was full: a destination that cannot keep up loses
// copies, counted, and never slows the original traffic (docs/GUIDE.md,
// "Mirror statistics").
func TestMirrorSlowDestination(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "iperf3", "tc", "ss")
	const br, slow = "gvmisd", "gvmism"
	lab.netns("gvmi-sa")
	lab.netns("gvmi-sb")
	lab.netns("gvmi-sm")
	lab.veth("gvmisa", "gvmisap", "gvmi-sa", "10.233.2.1/24")
	lab.veth("gvmisb", "gvmisbp", "gvmi-sb", "10.233.2.2/24")
	lab.veth(slow, "gvmismp", "gvmi-sm")
	gvsyFreeBridgeName(br)
	g := StartGvsd(t)
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", br)
	for _, p := range []string{"gvmisa", "gvmisb", slow} {
		g.MustVsctl("add-port", br, p)
	}
	lab.pingOK("gvmi-sa", "10.233.2.2")
	// From here on the slow port carries nothing but mirror copies.
	g.MustVsctl(gvmiCreateMirror(br, "gvmislow", true, "select_all=false", "output_port=@"+slow)...)
	lab.must("tc", "qdisc", "add", "dev", slow, "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "400ms")

	var plain, mirrored []float64
	for i := range 7 {
		on := i%2 == 1
		g.MustVsctl("set", "mirror", "gvmislow", "select_all="+strconv.FormatBool(on))
		bps := gvmiIperf(t, "gvmi-sa", "gvmi-sb", "10.233.2.2")
		t.Logf("run %d, mirror selecting everything: %v: %.0f Mbit/s", i+1, on, bps/1e6)
		if on {
			mirrored = append(mirrored, bps)
		} else {
			plain = append(plain, bps)
		}
	}
	g.MustVsctl("set", "mirror", "gvmislow", "select_all=false")
	time.Sleep(2500 * time.Millisecond) // the next statistics write
	stats, err := gvmiMirrorStats(g, "gvmislow")
	if err != nil {
		t.Fatal(err)
	}
	qdrops, qdisc := gvmiQdiscDrops(t, lab, slow)
	ifStats := parseStats(strings.TrimSpace(g.MustVsctl("get", "interface", slow, "statistics")))
	t.Logf("mirror statistics: %v", stats)
	t.Logf("interface %s statistics: %v", slow, ifStats)
	t.Logf("qdisc:\n%s", qdisc)

	base, withMirror := gvmiMedian(plain), gvmiMedian(mirrored)
	t.Logf("median throughput: %.0f Mbit/s without copies, %.0f Mbit/s mirrored to the slow port (%.0f%%)", base/1e6, withMirror/1e6, 100*withMirror/base)
	if withMirror < 0.7*base {
		t.Errorf("the mirrored transfers ran at %.0f Mbit/s (median), below 70%% of the %.0f Mbit/s without copies: the slow mirror destination slowed the original traffic",
			withMirror/1e6, base/1e6)
	}
	if qdrops == 0 {
		t.Errorf("the 1 Mbit/s qdisc on %s dropped nothing: the copies did not outrun the destination, so the test proves nothing", slow)
	}
	if stats["tx_packets"] == 0 {
		t.Errorf("the mirror counted no packets: %v", stats)
	}
	if stats["tx_dropped"] == 0 {
		t.Errorf("the mirror's tx_dropped is 0 although the destination's qdisc dropped %d copies", qdrops)
	}
	// The slow port carries only this mirror's copies, so every frame
	// gvsd itself counts as dropped on it is a lost copy. When the qdisc
	// is full the kernel refuses the write (ENOBUFS) rather than blocking
	// it: gvsd sees those losses and must report them as the mirror's.
	if stats["tx_dropped"] < ifStats["tx_dropped"] {
		t.Errorf("the mirror's tx_dropped is %d, but gvsd counted %d frames dropped on its output port %s (the kernel refused them: the qdisc was full, %d drops): copies lost because the destination is slow are missing from the mirror's statistics",
			stats["tx_dropped"], ifStats["tx_dropped"], slow, qdrops)
	}
}

// gvmiMedian is the median of xs (the upper one of an even count).
func gvmiMedian(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
