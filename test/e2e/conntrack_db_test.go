package e2e

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// This file checks the connection tracker's configuration from the
// database (GUIDE.md, "Connection tracking"): zone timeout policies
// written by the real ovs-vsctl's add-zone-tp / del-zone-tp /
// list-zone-tp. Its lab's names start with "gvcz".

// gvczLab is a bridge between two namespaces whose UDP is committed in
// zone 5 and in zone 6, everything else switched by NORMAL; gvsd gets
// args.
func gvczLab(t *testing.T, args ...string) (*netLab, *Gvsd) {
	t.Helper()
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "nc")
	lab := newNetLab(t)
	g := StartGvsdArgs(t, args...)
	lab.netns("gvczA")
	lab.netns("gvczB")
	lab.veth("gvcza0", "gvcza1", "gvczA", "10.41.0.1/24")
	lab.veth("gvczb0", "gvczb1", "gvczB", "10.41.0.2/24")
	g.MustVsctl("add-br", "gvczbr", "--", "add-port", "gvczbr", "gvcza0", "--", "add-port", "gvczbr", "gvczb0")
	gvofMust(t, g, nil, "add-flow", "gvczbr", "priority=10,udp,actions=ct(commit,zone=5),ct(commit,zone=6),NORMAL")
	return lab, g
}

// gvczSendUDP sends one UDP datagram from A to B's port.
func gvczSendUDP(t *testing.T, lab *netLab, port string) {
	t.Helper()
	lab.mustExec("gvczA", "sh", "-c", "printf x | nc -u -w 1 -q 0 10.41.0.2 "+port+" || true")
}

// TestZoneTimeoutPolicyVsctl: `ovs-vsctl add-zone-tp netdev zone=5
// udp_first=2` (after the Datapath row is made, as OVS's own tests do)
// makes a UDP connection of zone 5 leave dump-conntrack after about 2 s,
// while the same connection in zone 6 keeps the kernel's 30 s;
// list-zone-tp shows the policy, del-zone-tp removes it, and the
// commands' errors reach ovs-vsctl.
func TestZoneTimeoutPolicyVsctl(t *testing.T) {
	lab, g := gvczLab(t)
	g.MustVsctl("--", "--id=@d", "create", "Datapath", "datapath_version=0",
		"--", "set", "Open_vSwitch", ".", "datapaths:netdev=@d")
	g.MustVsctl("add-zone-tp", "netdev", "zone=5", "udp_first=2", "udp_single=2", "udp_multiple=2")
	if out := g.MustVsctl("list-zone-tp", "netdev"); !strings.Contains(out, "Zone:5") || !strings.Contains(out, "udp_first=2") {
		t.Fatalf("list-zone-tp netdev:\n%s", out)
	}
	if out := g.FailVsctl("add-zone-tp", "netdev", "zone=5", "udp_first=9"); !strings.Contains(out, "zone id 5 already exists") {
		t.Errorf("adding zone 5 twice: %s", out)
	}
	if out := g.FailVsctl("add-zone-tp", "netdev", "zone=5", "udp_fist=9"); out == "" {
		t.Error("a misspelt policy key was accepted")
	}
	if out := g.FailVsctl("--", "--id=@d", "create", "Datapath", "datapath_version=0",
		"--", "set", "Open_vSwitch", ".", "datapaths:dummy=@d"); !strings.Contains(out, "dummy") ||
		!strings.Contains(out, "gvs has the datapath types") {
		t.Errorf("a datapath type gvs does not have: %s", out)
	}

	sent := time.Now()
	gvczSendUDP(t, lab, "7001")
	in := func(zone string) bool {
		return len(gvctConntrack(t, g, "dport=7001", "zone="+zone)) == 1
	}
	if !in("5") || !in("6") {
		t.Fatalf("the UDP connection is not tracked in zones 5 and 6:\n%s", strings.Join(gvctConntrack(t, g, ""), "\n"))
	}
	for in("5") && time.Since(sent) < 10*time.Second {
		time.Sleep(100 * time.Millisecond)
	}
	// The datagram left after sent: the entry lives 2 s from then on
	// (nc takes about 1 s to return, so the entry may be younger than
	// the first check).
	lived := time.Since(sent)
	if in("5") || lived < 1900*time.Millisecond {
		t.Fatalf("zone 5's connection with udp_first=2 lived %v (want about 2 s)", lived)
	}
	if !in("6") {
		t.Fatal("zone 6's connection (default timeout 30 s) went with zone 5's")
	}

	g.MustVsctl("del-zone-tp", "netdev", "zone=5")
	if out := g.MustVsctl("list-zone-tp", "netdev"); strings.Contains(out, "Zone:5") {
		t.Errorf("after del-zone-tp: %s", out)
	}
	if out := g.FailVsctl("del-zone-tp", "netdev", "zone=5"); out == "" {
		t.Error("deleting a zone that is not there succeeded")
	}
	gvczSendUDP(t, lab, "7002")
	time.Sleep(3500 * time.Millisecond)
	if len(gvctConntrack(t, g, "dport=7002", "zone=5")) != 1 {
		t.Error("after del-zone-tp, zone 5 still expires UDP after 2 s")
	}
}

// TestGvsConntrackCLI: gvs conntrack lists the connections that real
// UDP made, filtered by port, zone and state, as text and as JSON that
// python's json.tool reads; a bad filter is an error reaching the user.
func TestGvsConntrackCLI(t *testing.T) {
	lab, g := gvczLab(t)
	gvczSendUDP(t, lab, "7101")
	gvczSendUDP(t, lab, "7102")
	gvs := func(args ...string) string {
		t.Helper()
		out, errOut, err := g.Run(gvsBin, args...)
		if err != nil {
			t.Fatalf("gvs %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	out := gvs("conntrack", "--port", "7101")
	if !strings.Contains(out, "10.41.0.1:") || !strings.Contains(out, " -> 10.41.0.2:7101") ||
		strings.Contains(out, "7102") || !strings.Contains(out, "2 connections.") {
		t.Errorf("gvs conntrack --port 7101 (zones 5 and 6):\n%s", out)
	}
	out = gvs("conntrack", "--zone", "6", "--state", "unreplied", "--json")
	var rep struct {
		Matched     int
		Connections []struct {
			Zone  int
			State string
			Orig  struct{ Dport int }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("gvs conntrack --json: %v\n%s", err, out)
	}
	if rep.Matched != 2 || len(rep.Connections) != 2 || rep.Connections[0].Zone != 6 || rep.Connections[0].State != "UNREPLIED" {
		t.Errorf("gvs conntrack --zone 6 --json:\n%s", out)
	}
	if _, _, err := g.Run("bash", "-c", "set -o pipefail; "+gvsBin+" conntrack --json | python3 -m json.tool"); err != nil {
		t.Errorf("gvs conntrack --json | python3 -m json.tool: %v", err)
	}
	if out, errOut, err := g.Run(gvsBin, "conntrack", "--addr", "nowhere"); err == nil || !strings.Contains(errOut, "addr=nowhere") {
		t.Errorf("a bad address: %v\n%s%s", err, out, errOut)
	}
}

// TestConntrackSpanMetrics: with --metrics, after real UDP through ct
// flows and a zone limit, and a span session copying a host interface's
// ARP, /metrics reports the tracker's connections by protocol, commits,
// limit drops and the zone's count, and the session's seen, selected
// and sent packets; promtool check metrics accepts the exposition.
func TestConntrackSpanMetrics(t *testing.T) {
	requireTool(t, "promtool", "ping")
	addr := "127.0.0.1:" + gvmtFreePort(t)
	lab, g := gvczLab(t, "--metrics="+addr)
	gvmtAwaitListener(t, addr)
	appctl(t, g, "dpctl/ct-set-limits", "zone=6,limit=1")
	gvczSendUDP(t, lab, "7201")
	gvczSendUDP(t, lab, "7202") // refused in zone 6: at its limit

	// A span session on a host interface on no bridge.
	lab.netns("gvczS")
	lab.veth("gvczs0", "gvczs1", "gvczS", "10.42.0.2/24")
	lab.veth("gvczd0", "gvczd1", "gvczS")
	if out, errOut, err := g.Run(gvsBin, "span", "add", "gvczspan", "--source", "gvczs0", "--filter", "arp", "--to", "dev:gvczd0"); err != nil {
		t.Fatalf("gvs span add: %v\n%s%s", err, out, errOut)
	}
	_, _ = lab.exec("gvczS", "ping", "-c", "3", "-i", "0.3", "-W", "1", "10.42.0.1") // unanswered: ARP requests

	var body string
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body = gvmtGet(t, "http://"+addr+"/metrics")
		if strings.Contains(body, `gvs_span_sent_packets_total{destination="dev:gvczd0",span="gvczspan"}`) &&
			!strings.Contains(body, `gvs_span_sent_packets_total{destination="dev:gvczd0",span="gvczspan"} 0`) ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for series, min := range map[string]float64{
		`gvs_conntrack_connections{proto="udp"}`:                                3, // 7201 in zones 5 and 6, 7202 in zone 5
		`gvs_conntrack_connections{proto="tcp"}`:                                0,
		`gvs_conntrack_commits_total`:                                           3,
		`gvs_conntrack_limit_drops_total`:                                       1,
		`gvs_conntrack_zone_connections{zone="6"}`:                              1,
		`gvs_conntrack_zone_connections_limit{zone="6"}`:                        1,
		`gvs_span_seen_packets_total{span="gvczspan"}`:                          1,
		`gvs_span_selected_packets_total{span="gvczspan"}`:                      1,
		`gvs_span_sent_packets_total{destination="dev:gvczd0",span="gvczspan"}`: 1,
	} {
		if v := gvmtValue(t, body, series); v < min || (min == 0 && v != 0) {
			t.Errorf("%s = %v, want at least %v", series, v, min)
		}
	}
	if v := gvmtValue(t, body, `gvs_conntrack_zone_connections{zone="6"}`); v != 1 {
		t.Errorf("zone 6 holds %v connections at its limit of 1", v)
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(body)
	var out bytes.Buffer
	check.Stdout, check.Stderr = &out, &out
	if err := check.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}
