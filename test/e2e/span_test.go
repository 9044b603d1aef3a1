package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Span sessions (gvs span, docs/GUIDE.md "Mirroring an interface on no
// bridge"): gvsd runs in namespace L, where veth l0 leads to namespace R
// (10.77.x.1 and .2) and veth d0 leads to namespace M, whose end d1 is
// where tcpdump looks at the copies gvsd sends out of d0 (a second pair
// e0/e1 for a second destination). l0 is on no bridge; its traffic never
// passes through gvsd.

// spanLab is one test's namespaces and gvsd.
type spanLab struct {
	t            *testing.T
	lab          *netLab
	g            *Gvsd
	l, r, m      string // namespaces
	srcIP, dstIP string
}

func newSpanLab(t *testing.T) *spanLab {
	t.Helper()
	lab := newNetLab(t)
	requireTool(t, "tcpdump")
	var b [3]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])[:4]
	s := &spanLab{t: t, lab: lab, l: "gvspL" + id, r: "gvspR" + id, m: "gvspM" + id,
		srcIP: "10.77.0.1", dstIP: "10.77.0.2"}
	for _, ns := range []string{s.l, s.r, s.m} {
		lab.netns(ns)
	}
	// Pairs made inside the namespaces, so that nothing of the test
	// shows in the root namespace.
	pair := func(a, aNS, b, bNS string) {
		lab.mustExec(aNS, "ip", "link", "add", a, "type", "veth", "peer", "name", b, "netns", bNS)
	}
	pair("l0", s.l, "r0", s.r)
	pair("d0", s.l, "d1", s.m)
	pair("e0", s.l, "e1", s.m)
	lab.configure(s.l, "l0", s.srcIP+"/24")
	lab.configure(s.r, "r0", s.dstIP+"/24")
	for _, d := range []struct{ ns, dev string }{{s.l, "d0"}, {s.l, "e0"}, {s.m, "d1"}, {s.m, "e1"}} {
		lab.configure(d.ns, d.dev)
	}
	// The destinations' far ends take every frame, whatever its MAC.
	lab.mustExec(s.m, "ip", "link", "set", "d1", "promisc", "on")
	s.g = StartGvsdNetns(t, s.l)
	// Statistics every second, so that the tests read them soon.
	s.g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	lab.pingOK(s.l, s.dstIP)
	return s
}

// gvs runs the gvs CLI against this lab's gvsd.
func (s *spanLab) gvs(args ...string) (string, string, error) {
	return s.g.Run(gvsBin, args...)
}

func (s *spanLab) mustGvs(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.gvs(args...)
	if err != nil {
		s.t.Fatalf("gvs %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// waitStats reads a session's statistics until ok accepts them (or 5 s
// passed: statistics are written back every second) and returns them.
func (s *spanLab) waitStats(name string, ok func(map[string]int64) bool) map[string]int64 {
	s.t.Helper()
	st := s.spanStats(name)
	for i := 0; i < 25 && !ok(st); i++ {
		time.Sleep(200 * time.Millisecond)
		st = s.spanStats(name)
	}
	return st
}

// spanStats reads a session's statistics with gvs span list --json.
func (s *spanLab) spanStats(name string) map[string]int64 {
	s.t.Helper()
	var spans []struct {
		Name       string           `json:"name"`
		Statistics map[string]int64 `json:"statistics"`
		Error      *string          `json:"error"`
	}
	if err := json.Unmarshal([]byte(s.mustGvs("span", "list", "--json")), &spans); err != nil {
		s.t.Fatal(err)
	}
	for _, sp := range spans {
		if sp.Name == name {
			return sp.Statistics
		}
	}
	s.t.Fatalf("no span %s in gvs span list --json", name)
	return nil
}

// dump captures what dev in ns receives, frames as hex (link level
// included) one a line, keyed without timestamps.
type spanDump struct {
	c *tcpdumpCapture
}

func (s *spanLab) dump(ns, dev string, filter ...string) *spanDump {
	return &spanDump{s.lab.capture(ns, dev, append([]string{"-xx", "-t"}, filter...)...)}
}

// frames stops the capture and returns each frame as its header line and
// its bytes in hex.
func (d *spanDump) frames() []string {
	var out []string
	for _, l := range d.c.stop() {
		if strings.HasPrefix(strings.TrimSpace(l), "0x") {
			if len(out) > 0 {
				f := strings.Fields(l)
				out[len(out)-1] += " " + strings.Join(f[1:], "")
			}
			continue
		}
		out = append(out, l)
	}
	return out
}

func hexOnly(frames []string) []string {
	out := make([]string, 0, len(frames))
	for _, f := range frames {
		fields := strings.Fields(f)
		out = append(out, fields[len(fields)-1])
	}
	sort.Strings(out)
	return out
}

func countWith(frames []string, words ...string) int {
	return len(linesWith(frames, words...))
}

// TestSpanDevBothDirections copies l0's ICMP to d0: tcpdump on d1 sees
// byte for byte what l0 sent and received (as tcpdump on l0 and r0 see
// it), both directions, and nothing else.
func TestSpanDevBothDirections(t *testing.T) {
	s := newSpanLab(t)
	s.mustGvs("span", "add", "s1", "--source", "l0", "--filter", "icmp", "--to", "dev:d0")
	copies := s.dump(s.m, "d1")
	in := s.dump(s.l, "l0", "icmp")
	out := s.dump(s.r, "r0", "icmp")
	s.lab.mustExec(s.l, "ping", "-c", "5", "-i", "0.2", s.dstIP)
	time.Sleep(500 * time.Millisecond)
	got, sentIn, sentOut := copies.frames(), in.frames(), out.frames()
	want := append(append([]string{}, sentIn...), sentOut...)
	if len(want) != 10 {
		t.Fatalf("l0 had %d ICMP frames, want 10 (5 requests, 5 replies):\n%s", len(want), strings.Join(want, "\n"))
	}
	if g, w := hexOnly(got), hexOnly(want); strings.Join(g, "\n") != strings.Join(w, "\n") {
		t.Fatalf("d1 received %d frames, not the %d ICMP frames of l0 byte for byte:\ngot:\n%s\nwant:\n%s",
			len(got), len(want), strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := countWith(got, "echo request"); n != 5 {
		t.Errorf("%d echo requests copied, want 5", n)
	}
	okStats := func(st map[string]int64) bool {
		return st["selected"] == 10 && st["sent:dev:d0"] == 10 && st["seen"] >= 10
	}
	if st := s.waitStats("s1", okStats); !okStats(st) {
		t.Errorf("statistics %v: want selected 10, sent:dev:d0 10, seen >= 10", st)
	}
	show := s.mustGvs("span", "show", "s1", "--bpf")
	for _, w := range []string{"source l0 (both): eBPF at tc (TCX)", "rule 0: accept icmp", "to dev:d0: sent 10",
		"eBPF program at tc (TCX) of 1 source", "FnCloneRedirect"} {
		if !strings.Contains(show, w) {
			t.Errorf("gvs span show --bpf lacks %q:\n%s", w, show)
		}
	}
	if gshow, _, _ := s.gvs("show"); !strings.Contains(gshow, "span s1: l0:both -> dev:d0") {
		t.Errorf("gvs show does not list the span:\n%s", gshow)
	}
}

// TestSpanDirection: :in copies only what l0 receives (echo replies of a
// ping from L), :out only what it sends (the requests).
func TestSpanDirection(t *testing.T) {
	s := newSpanLab(t)
	for _, c := range []struct {
		dir, want, not string
	}{{"in", "echo reply", "echo request"}, {"out", "echo request", "echo reply"}} {
		s.mustGvs("span", "add", "d", "--source", "l0:"+c.dir, "--filter", "icmp", "--to", "dev:d0")
		copies := s.dump(s.m, "d1")
		s.lab.mustExec(s.l, "ping", "-c", "3", "-i", "0.2", s.dstIP)
		time.Sleep(500 * time.Millisecond)
		got := copies.frames()
		if countWith(got, c.want) != 3 || countWith(got, c.not) != 0 {
			t.Errorf(":%s copied %d %q and %d %q, want 3 and 0:\n%s", c.dir, countWith(got, c.want), c.want,
				countWith(got, c.not), c.not, strings.Join(got, "\n"))
		}
		s.mustGvs("span", "del", "d")
	}
}

// TestSpanVLANAndTwoDestinations sends each copy to d0 with an 802.1Q tag
// and to e0 as it was, and a pcapng file read back by tshark.
func TestSpanVLANAndTwoDestinations(t *testing.T) {
	requireTool(t, "tshark")
	s := newSpanLab(t)
	s.mustGvs("span", "add", "v", "--source", "l0", "--filter", "icmp",
		"--to", "dev:d0,vlan=42", "--to", "dev:e0", "--to", "pcap:v.pcapng")
	// dev:e0 cloned by the kernel, the others written by gvsd.
	s.waitShow("v", "source l0 (both): eBPF at tc (TCX), copies cloned in the kernel to plain dev: destinations, handed to gvsd through a perf event array for the others")
	tagged, plain := s.dump(s.m, "d1"), s.dump(s.m, "e1")
	s.lab.mustExec(s.l, "ping", "-c", "3", "-i", "0.2", s.dstIP)
	time.Sleep(500 * time.Millisecond)
	tf, pf := tagged.frames(), plain.frames()
	if n := countWith(tf, "vlan 42", "ICMP"); n != 6 || len(tf) != 6 {
		t.Errorf("d1: %d frames, %d ICMP in vlan 42, want 6 and 6:\n%s", len(tf), n, strings.Join(tf, "\n"))
	}
	if n := countWith(pf, "ICMP"); n != 6 || countWith(pf, "vlan") != 0 {
		t.Errorf("e1: %d untagged ICMP frames, want 6:\n%s", n, strings.Join(pf, "\n"))
	}
	file := filepath.Join(s.g.Rundir, "capture", "v.pcapng")
	var out string
	for range 50 {
		out, _, _ = s.g.Run("tshark", "-r", file, "-Y", "icmp", "-T", "fields", "-e", "icmp.type")
		if len(nonEmptyLines(out)) == 6 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if types := nonEmptyLines(out); len(types) != 6 || len(linesWith(types, "8")) != 3 {
		t.Errorf("tshark read %d ICMP frames from %s, want 3 requests and 3 replies:\n%s", len(types), file, out)
	}
}

// TestSpanMetadataJSON writes one JSON record per packet, no payload.
func TestSpanMetadataJSON(t *testing.T) {
	s := newSpanLab(t)
	s.mustGvs("span", "add", "j", "--source", "l0", "--filter", "icmp", "--metadata", "--to", "json:j.json")
	s.waitShow("j", "source l0 (both): "+spanSampled)
	s.lab.mustExec(s.l, "ping", "-c", "2", "-i", "0.2", s.dstIP)
	file := filepath.Join(s.g.Rundir, "capture", "j.json")
	var lines []string
	for range 50 {
		b, _ := os.ReadFile(file)
		if lines = nonEmptyLines(string(b)); len(lines) == 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(lines) != 4 {
		t.Fatalf("%s has %d records, want 4:\n%s", file, len(lines), strings.Join(lines, "\n"))
	}
	dirs := map[string]int{}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not JSON: %s: %v", l, err)
		}
		for _, k := range []string{"time", "interface", "direction", "eth_src", "eth_dst", "ip_src", "ip_dst", "proto", "icmp_type", "len"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("record lacks %s: %s", k, l)
			}
		}
		if rec["interface"] != "l0" || rec["proto"] != float64(1) || rec["len"] != float64(98) {
			t.Errorf("record %s: want interface l0, proto 1, len 98", l)
		}
		dirs[rec["direction"].(string)]++
	}
	if dirs["in"] != 2 || dirs["out"] != 2 {
		t.Errorf("directions %v, want 2 in and 2 out", dirs)
	}
}

// TestSpanRules: the first rule that matches decides, CIDRs select, and
// --filter 'tcp,tp_dst=5201' copies only the iperf3 data direction.
func TestSpanRules(t *testing.T) {
	requireTool(t, "iperf3")
	s := newSpanLab(t)
	// Requests come from .1 (rejected first), replies from .2 (accepted
	// by the CIDR).
	s.mustGvs("span", "add", "r", "--source", "l0", "--rule", "reject icmp,nw_src=10.77.0.1",
		"--rule", "accept ip,nw_src=10.77.0.0/24", "--to", "dev:d0")
	copies := s.dump(s.m, "d1")
	s.lab.mustExec(s.l, "ping", "-c", "3", "-i", "0.2", s.dstIP)
	time.Sleep(500 * time.Millisecond)
	got := copies.frames()
	if countWith(got, "echo reply") != 3 || countWith(got, "echo request") != 0 || countWith(got, "ARP") != 0 {
		t.Errorf("reject-then-accept copied:\n%s\nwant the 3 echo replies only", strings.Join(got, "\n"))
	}
	s.mustGvs("span", "del", "r")

	s.mustGvs("span", "add", "f", "--source", "l0", "--filter", "tcp,tp_dst=5201", "--to", "dev:d0")
	copies = s.dump(s.m, "d1")
	server := gvsyStart(t, nil, gvsyInNS(s.r, "iperf3", "-s", "-1", "-B", s.dstIP, "-p", "5201")...)
	gvsyWaitListening(t, s.r, 5201)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", s.l, "iperf3", "-c", s.dstIP, "-p", "5201", "-t", "1", "-b", "20M").CombinedOutput(); err != nil {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	_ = server.Wait(10 * time.Second)
	s.lab.mustExec(s.l, "ping", "-c", "2", "-i", "0.2", s.dstIP)
	time.Sleep(500 * time.Millisecond)
	got = copies.frames()
	toServer := countWith(got, s.dstIP+".5201:")
	if toServer < 10 || toServer != len(got) {
		t.Errorf("--filter tcp,tp_dst=5201: %d frames copied, %d of them to port 5201; want only those (at least 10)", len(got), toServer)
		for _, l := range got {
			if !strings.Contains(l, s.dstIP+".5201:") {
				t.Logf("not selected but copied: %s", l)
				break
			}
		}
	}
	okStats := func(st map[string]int64) bool { return st["seen"] > st["selected"] && st["selected"] > 0 }
	if st := s.waitStats("f", okStats); !okStats(st) {
		t.Errorf("statistics %v: the filter should see more than it selects", st)
	}
}

// TestSpanRestartAndKill: a session survives a restart of gvsd; killing
// gvsd leaves l0's traffic alone (it never passed through gvsd).
func TestSpanRestartAndKill(t *testing.T) {
	s := newSpanLab(t)
	s.mustGvs("span", "add", "k", "--source", "l0", "--filter", "icmp", "--to", "dev:d0")
	s.g.Stop()
	s.g.Start()
	if out := s.mustGvs("span", "list"); !strings.Contains(out, "k: l0:both -> dev:d0") {
		t.Fatalf("after a restart, gvs span list:\n%s", out)
	}
	copies := s.dump(s.m, "d1")
	time.Sleep(300 * time.Millisecond) // the session opens its sockets as gvsd starts
	s.lab.mustExec(s.l, "ping", "-c", "2", "-i", "0.2", s.dstIP)
	time.Sleep(300 * time.Millisecond)
	if got := copies.frames(); countWith(got, "ICMP") != 4 {
		t.Errorf("after a restart, %d ICMP frames copied, want 4:\n%s", countWith(got, "ICMP"), strings.Join(got, "\n"))
	}
	s.g.Kill9()
	s.lab.pingOK(s.l, s.dstIP)
	s.g.Start()
}

// TestSpanEBPFPathAndKill: a session whose destinations are all dev:
// runs as an eBPF program at l0's tc ingress and egress (Span.status and
// gvs span show say so), one with a pcap: destination too, its program
// handing the packets to gvsd, at e0's ingress only; gvsd killed with
// SIGKILL leaves no program on l0, and deleting a session detaches its
// program.
func TestSpanEBPFPathAndKill(t *testing.T) {
	s := newSpanLab(t)
	s.mustGvs("span", "add", "e", "--source", "l0", "--filter", "icmp", "--to", "dev:d0")
	s.mustGvs("span", "add", "p", "--source", "e0:in", "--to", "pcap:p.pcapng")
	s.waitShow("e", "source l0 (both): eBPF at tc (TCX)")
	s.waitShow("p", "source e0 (in): eBPF at tc (TCX), selected packets handed to gvsd through a perf event array")
	if show := s.mustGvs("span", "show", "p", "--bpf"); !strings.Contains(show, "FnPerfEventOutput") || strings.Contains(show, "classic BPF") {
		t.Errorf("gvs span show p --bpf does not print the eBPF program that samples:\n%s", show)
	}
	if in, out := s.tcxPrograms("l0"); in != 1 || out != 1 {
		t.Fatalf("l0 has %d TCX programs at ingress and %d at egress, want 1 and 1", in, out)
	}
	if in, out := s.tcxPrograms("e0"); in != 1 || out != 0 {
		t.Fatalf("e0 (source e0:in) has %d TCX programs at ingress and %d at egress, want 1 and 0", in, out)
	}
	s.g.Kill9()
	s.waitNoTCX("l0", "after gvsd was killed")
	s.lab.pingOK(s.l, s.dstIP)
	s.g.Start()
	// The session is back, on the same path; deleting it detaches it.
	s.waitShow("e", "source l0 (both): eBPF at tc (TCX)")
	if in, out := s.tcxPrograms("l0"); in != 1 || out != 1 {
		t.Fatalf("after a restart, l0 has %d TCX programs at ingress and %d at egress, want 1 and 1", in, out)
	}
	s.mustGvs("span", "del", "e")
	s.waitNoTCX("l0", "after gvs span del")
}

// waitShow waits (5 s at most) until gvs span show NAME says want, and
// returns what it says.
func (s *spanLab) waitShow(name, want string) string {
	s.t.Helper()
	var show string
	for range 25 {
		show = s.mustGvs("span", "show", name)
		if strings.Contains(show, want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(show, want) {
		s.t.Fatalf("gvs span show %s lacks %q:\n%s", name, want, show)
	}
	return show
}

// spanSampled is what gvs span show says of a source whose program
// hands the selected packets to gvsd (pcap, json, tunnels, vlan=).
const spanSampled = "eBPF at tc (TCX), selected packets handed to gvsd through a perf event array"

// tcxPrograms counts the eBPF programs attached at dev's tc ingress and
// egress (TCX) in namespace L.
func (s *spanLab) tcxPrograms(dev string) (in, out int) {
	s.t.Helper()
	err := gvsyInNetns(s.l, func() error {
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		for _, c := range []struct {
			at ebpf.AttachType
			n  *int
		}{{ebpf.AttachTCXIngress, &in}, {ebpf.AttachTCXEgress, &out}} {
			r, err := link.QueryPrograms(link.QueryOptions{Target: ifi.Index, Attach: c.at})
			if err != nil {
				return fmt.Errorf("querying %s's TCX programs: %w", dev, err)
			}
			*c.n = len(r.Programs)
		}
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return in, out
}

// waitNoTCX waits (2 s at most) until dev has no TCX program.
func (s *spanLab) waitNoTCX(dev, when string) {
	s.t.Helper()
	in, out := s.tcxPrograms(dev)
	for i := 0; i < 20 && in+out > 0; i++ {
		time.Sleep(100 * time.Millisecond)
		in, out = s.tcxPrograms(dev)
	}
	if in+out > 0 {
		s.t.Fatalf("%s, %s still has %d TCX programs at ingress and %d at egress", when, dev, in, out)
	}
}

// TestSpanSourceComesBack: a source that disappears and comes back is
// picked up again, and meanwhile Span.error says what is missing.
func TestSpanSourceComesBack(t *testing.T) {
	s := newSpanLab(t)
	s.mustGvs("span", "add", "b", "--source", "l0", "--filter", "icmp", "--to", "dev:d0")
	s.lab.mustExec(s.l, "ip", "link", "del", "l0")
	waitErr := func(want string) string {
		var text string
		for range 50 {
			text, _, _ = s.gvs("span", "list")
			if (want != "" && strings.Contains(text, want)) || (want == "" && !strings.Contains(text, "error")) {
				return text
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatalf("gvs span list never said %q:\n%s", want, text)
		return ""
	}
	waitErr("source l0: no such interface")
	s.lab.mustExec(s.l, "ip", "link", "add", "l0", "type", "veth", "peer", "name", "r0", "netns", s.r)
	s.lab.configure(s.l, "l0", s.srcIP+"/24")
	s.lab.configure(s.r, "r0", s.dstIP+"/24")
	waitErr("")
	copies := s.dump(s.m, "d1")
	s.lab.mustExec(s.l, "ping", "-c", "2", "-i", "0.2", s.dstIP)
	time.Sleep(300 * time.Millisecond)
	if got := copies.frames(); countWith(got, "ICMP") != 4 {
		t.Errorf("after l0 came back, %d ICMP frames copied, want 4:\n%s", countWith(got, "ICMP"), strings.Join(got, "\n"))
	}
}

// TestSpanBadInput: each mistake is refused with a message that says
// what is wrong, with gvs's exit status, and leaves no session behind.
func TestSpanBadInput(t *testing.T) {
	s := newSpanLab(t)
	for _, c := range []struct {
		args   []string
		status int
		want   []string
	}{
		{[]string{"--source", "nosuch0", "--to", "dev:d0"}, 1, []string{"source nosuch0: no such interface", "--allow-missing"}},
		{[]string{"--source", "l0", "--to", "dev:l0"}, 2, []string{"also a source", "loop"}},
		{[]string{"--source", "l0", "--rule", "accept tcp,tp_dst=http", "--to", "dev:d0"}, 2, []string{"tp_dst=http", "^^^^^^^^^^^"}},
		{[]string{"--source", "l0", "--rule", "allow tcp", "--to", "dev:d0"}, 2, []string{"accept or reject"}},
		{[]string{"--source", "l0", "--filter", "ct_state=+est,tcp", "--to", "dev:d0"}, 2, []string{"ct_state", "conntrack"}},
		{[]string{"--source", "l0", "--to", "eth:d0"}, 2, []string{`unknown kind "eth"`}},
		{[]string{"--source", "l0", "--to", "gre:collector"}, 2, []string{`"collector" is not an IP address`}},
		{[]string{"--source", "l0", "--metadata", "--to", "pcap:m.pcapng"}, 2, []string{"only json: destinations"}},
		{[]string{"--source", "l0", "--to", "json:m.json"}, 2, []string{"--metadata"}},
		{[]string{"--source", "l0", "--to", "pcap:/etc/passwd"}, 1, []string{"outside gvsd's capture directory"}},
	} {
		out, errOut, err := s.gvs(append([]string{"span", "add", "bad"}, c.args...)...)
		status := 0
		if ee, ok := err.(*exec.ExitError); ok {
			status = ee.ExitCode()
		}
		if status != c.status {
			t.Errorf("gvs span add %v: exit status %d, want %d\n%s%s", c.args, status, c.status, out, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("gvs span add %v: message lacks %q:\n%s", c.args, w, errOut)
			}
		}
	}
	if out := s.mustGvs("span", "list", "--json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("refused sessions left rows behind:\n%s", out)
	}
	// The same check guards the database itself, whatever the client.
	_, errOut, err := s.g.Run("ovsdb-client", "transact", "unix:"+s.g.Socket(),
		`["Open_vSwitch",{"op":"insert","table":"Span","row":{"name":"x","sources":["map",[["l0","in"]]],"rules":["map",[[0,"accept udp,tp_dst=dns"]]],"destinations":"dev:d0"}}]`)
	if out, _, _ := s.g.Run("ovsdb-client", "transact", "unix:"+s.g.Socket(),
		`["Open_vSwitch",{"op":"select","table":"Span","where":[]}]`); !strings.Contains(out, `"rows":[]`) {
		t.Errorf("ovsdb-client's refused insert left a row: %s (%v %s)", out, err, errOut)
	}
}

// spanIperf runs iperf3 from L to R for 3 s at rate (0: as fast as it
// goes) and returns the receiver's throughput in bit/s.
func (s *spanLab) iperf(rate string) float64 {
	s.t.Helper()
	server := gvsyStart(s.t, nil, gvsyInNS(s.r, "iperf3", "-s", "-1", "-B", s.dstIP, "-p", "5212")...)
	gvsyWaitListening(s.t, s.r, 5212)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := []string{"netns", "exec", s.l, "iperf3", "-c", s.dstIP, "-p", "5212", "-t", "3", "-J", "--connect-timeout", "3000"}
	if rate != "" {
		args = append(args, "-b", rate)
	}
	out, runErr := exec.CommandContext(ctx, "ip", args...).Output()
	var res gvmiIperfResult
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" || runErr != nil {
		s.t.Fatalf("iperf3 client: %v %v %s\n%s", runErr, err, res.Error, out)
	}
	_ = server.Wait(10 * time.Second)
	return res.End.SumReceived.BitsPerSecond
}

// TestSpanSlowDestination: a destination drained at 1% of the traffic (a
// token bucket on d0) loses copies, counted, and the original iperf3
// (TCP at 1 Gbit/s, a rate this shared 2-core machine sustains, so that
// the test measures whether the copies slow the traffic rather than
// whether gvsd takes CPU from an iperf3 that needs all of it) keeps at
// least 95% of its rate.
func TestSpanSlowDestination(t *testing.T) {
	requireTool(t, "iperf3", "tc")
	s := newSpanLab(t)
	const rate = "1G"
	base := s.iperf(rate)
	s.lab.mustExec(s.l, "tc", "qdisc", "add", "dev", "d0", "root", "tbf", "rate", "10mbit", "burst", "32kb", "latency", "50ms")
	s.mustGvs("span", "add", "slow", "--source", "l0", "--to", "dev:d0")
	with := s.iperf(rate)
	t.Logf("iperf3 at %s: %.0f Mbit/s without a span, %.0f Mbit/s with a span to a 10 Mbit/s destination (shared machine: noisy)", rate, base/1e6, with/1e6)
	if with < 0.95*base {
		t.Errorf("the span cost the original traffic %.1f%%: %.0f -> %.0f Mbit/s", 100*(1-with/base), base/1e6, with/1e6)
	}
	okStats := func(st map[string]int64) bool { return st["dropped:dev:d0"] > 0 && st["sent:dev:d0"] > 0 }
	if st := s.waitStats("slow", okStats); !okStats(st) {
		t.Errorf("statistics %v: want copies both sent and dropped at dev:d0", st)
	}
}
