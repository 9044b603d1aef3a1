package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// This file checks connection tracking through the real clients: S7 of
// SCENARIOS.md verbatim (its names: bridge br0, namespaces left and
// right, veths veth_l0/veth_l1/veth_r0/veth_r1), with scapy sending the
// tutorial's TCP segments and `ovs-appctl dpctl/dump-conntrack` read
// after each; then real TCP connections through the same flows; zones,
// marks and limits on a lab of its own, whose names start with "gvct".

// gvctScapy is the python3 with scapy (Debian's python3-scapy installs
// it for the system python).
const gvctScapy = "/usr/bin/python3"

// requireScapy skips the test without scapy, as requireTool does.
func requireScapy(t *testing.T) {
	t.Helper()
	if err := exec.Command(gvctScapy, "-c", "import scapy.all").Run(); err != nil {
		t.Skip("python3-scapy not installed (scripts/test.sh installs it)")
	}
}

// gvctSegment is one TCP segment of a test: who sends it, its ports,
// flags (scapy's letters), sequence and acknowledgement numbers.
type gvctSegment struct {
	from           string // "left" or "right"
	sport, dport   int
	flags          string
	seq, ack       uint32
	payload        string
	srcIP, dstIP   string
	srcMAC, dstMAC string
	dev            string
}

// gvctTcpdumpFlags is how tcpdump prints scapy's flag letters.
var gvctTcpdumpFlags = map[string]string{"S": "[S]", "SA": "[S.]", "A": "[.]", "PA": "[P.]", "FA": "[F.]", "R": "[R]", "RA": "[R.]"}

// send sends s with scapy from its namespace.
func (s gvctSegment) send(t *testing.T, lab *netLab) {
	t.Helper()
	script := fmt.Sprintf(`from scapy.all import Ether, IP, TCP, Raw, sendp
p = Ether(src=%q, dst=%q)/IP(src=%q, dst=%q)/TCP(sport=%d, dport=%d, flags=%q, seq=%d, ack=%d, window=8192)
if %q:
    p = p/Raw(load=%q)
sendp(p, iface=%q, verbose=False)
`, s.srcMAC, s.dstMAC, s.srcIP, s.dstIP, s.sport, s.dport, s.flags, s.seq, s.ack, s.payload, s.payload, s.dev)
	lab.mustExec(s.from, gvctScapy, "-c", script)
}

// arrived reports whether the far capture saw s within limit.
func (s gvctSegment) arrived(c *tcpdumpCapture, limit time.Duration) bool {
	// tcpdump leaves out the sequence number of a bare ACK.
	num := fmt.Sprintf("seq %d", s.seq)
	if s.payload == "" && !strings.ContainsAny(s.flags, "SFR") {
		num = fmt.Sprintf("ack %d", s.ack)
	}
	return c.waitFor(limit, fmt.Sprintf("%s.%d > %s.%d: Flags %s, ", s.srcIP, s.sport, s.dstIP, s.dport, gvctTcpdumpFlags[s.flags]), num)
}

// gvctS7Line is the line S7 says dump-conntrack prints for its
// connection in state state.
func gvctS7Line(state string) string {
	return "tcp,orig=(src=192.168.0.2,dst=10.0.0.2,sport=1024,dport=2048),reply=(src=10.0.0.2,dst=192.168.0.2,sport=2048,dport=1024),protoinfo=(state=" + state + ")"
}

// gvctConntrack returns the lines of `ovs-appctl dpctl/dump-conntrack
// ARGS` that contain word (all lines for "").
func gvctConntrack(t *testing.T, g *Gvsd, word string, args ...string) []string {
	t.Helper()
	out, errOut, err := g.Run("ovs-appctl", append([]string{"dpctl/dump-conntrack"}, args...)...)
	if err != nil {
		t.Fatalf("ovs-appctl dpctl/dump-conntrack %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return linesWith(nonEmptyLines(out), word)
}

// gvctQuiet brings S7's links up and keeps the namespaces quiet (IPv6
// off), with no addresses, so that the kernels in left and right neither
// answer nor reset the segments scapy makes up.
func gvctQuiet(lab *netLab) {
	for _, ns := range []string{"left", "right"} {
		lab.mustExec(ns, "ip", "link", "set", "lo", "up")
		lab.mustExec(ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	for _, d := range [][2]string{{"left", "veth_l1"}, {"right", "veth_r1"}} {
		lab.configure(d[0], d[1])
	}
	for _, dev := range []string{"veth_l0", "veth_r0"} {
		lab.must("sysctl", "-q", "-w", "net/ipv6/conf/"+dev+"/disable_ipv6=1")
		lab.must("ip", "link", "set", "dev", dev, "up")
	}
}

// TestConntrackS7 runs S7 verbatim: its setup and five flows with the
// real ovs-vsctl and ovs-ofctl, scapy sending the tutorial's eight
// segments; after each, dump-conntrack shows the kernel tracker's state
// for the connection and the segment reached the other side (the flows
// let all of them through). A retransmitted SYN is still +new; an
// unsolicited SYN-ACK from the right is not +est and, once the default
// NORMAL flow is gone, reaches nobody.
func TestConntrackS7(t *testing.T) {
	requireTool(t, "ovs-appctl", "tcpdump")
	requireScapy(t)
	lab, g := gvofS7Setup(t)
	gvctQuiet(lab)
	for _, f := range gvofS7Flows {
		gvofMust(t, g, nil, "add-flow", "br0", f)
	}
	macL, macR := lab.mac("left", "veth_l1"), lab.mac("right", "veth_r1")
	capL := lab.capture("left", "veth_l1", "-S", "tcp")
	capR := lab.capture("right", "veth_r1", "-S", "tcp")
	seg := func(from, flags string, seq, ack uint32, payload string) gvctSegment {
		if from == "left" {
			return gvctSegment{from: "left", sport: 1024, dport: 2048, flags: flags, seq: seq, ack: ack, payload: payload,
				srcIP: "192.168.0.2", dstIP: "10.0.0.2", srcMAC: macL, dstMAC: macR, dev: "veth_l1"}
		}
		return gvctSegment{from: "right", sport: 2048, dport: 1024, flags: flags, seq: seq, ack: ack, payload: payload,
			srcIP: "10.0.0.2", dstIP: "192.168.0.2", srcMAC: macR, dstMAC: macL, dev: "veth_r1"}
	}
	far := map[string]*tcpdumpCapture{"left": capR, "right": capL}
	steps := []struct {
		name  string
		s     gvctSegment
		state string
	}{
		{"SYN", seg("left", "S", 100, 0, ""), "SYN_SENT"},
		{"SYN-ACK", seg("right", "SA", 200, 101, ""), "ESTABLISHED"},
		{"ACK", seg("left", "A", 101, 201, ""), "ESTABLISHED"},
		{"data", seg("left", "PA", 101, 201, "X"), "ESTABLISHED"},
		{"ACK of data", seg("right", "A", 201, 102, ""), "ESTABLISHED"},
		{"FIN", seg("left", "FA", 102, 201, ""), "FIN_WAIT_1"},
		{"FIN-ACK", seg("right", "FA", 201, 103, ""), "LAST_ACK"},
		{"last ACK", seg("left", "A", 103, 202, ""), "TIME_WAIT"},
	}
	for i, st := range steps {
		st.s.send(t, lab)
		if !st.s.arrived(far[st.s.from], 10*time.Second) {
			t.Fatalf("step %d (%s from %s) did not reach the other side; capture:\n%s", i+1, st.name, st.s.from,
				strings.Join(nonEmptyLines(far[st.s.from].out.String()), "\n"))
		}
		got := gvctConntrack(t, g, "192.168.0.2")
		if want := gvctS7Line(st.state); len(got) != 1 || got[0] != want {
			t.Fatalf("after step %d (%s): dump-conntrack | grep 192.168.0.2 printed\n%s\nwant\n%s", i+1, st.name, strings.Join(got, "\n"), want)
		}
		if i == 0 {
			// A retransmitted SYN is still +trk+new: committed again
			// and sent right.
			before := len(linesWith(nonEmptyLines(capR.out.String()), "seq 100"))
			st.s.send(t, lab)
			deadline := time.Now().Add(10 * time.Second)
			for len(linesWith(nonEmptyLines(capR.out.String()), "seq 100")) == before && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if len(linesWith(nonEmptyLines(capR.out.String()), "seq 100")) == before {
				t.Fatal("the retransmitted SYN did not reach the right")
			}
			if got := gvctConntrack(t, g, "192.168.0.2"); len(got) != 1 || got[0] != gvctS7Line("SYN_SENT") {
				t.Fatalf("after the retransmitted SYN: %q", got)
			}
		}
	}

	// An unsolicited SYN-ACK from the right: not +est, so only the
	// default NORMAL flow can forward it; without that flow it goes
	// nowhere.
	stray := seg("right", "SA", 5000, 777, "")
	stray.sport, stray.dport = 2049, 1025
	stray.send(t, lab)
	if !stray.arrived(capL, 10*time.Second) {
		t.Fatal("with priority=0 actions=NORMAL, the unsolicited SYN-ACK should be forwarded by NORMAL, as in OVS")
	}
	gvofMust(t, g, nil, "del-flows", "--strict", "br0", "priority=0")
	stray.seq = 6000
	stray.send(t, lab)
	if stray.arrived(capL, 2*time.Second) {
		t.Fatal("without the NORMAL flow, an unsolicited SYN-ACK from the right reached the left")
	}
	if got := gvctConntrack(t, g, "sport=2049"); len(got) != 0 {
		t.Errorf("the unsolicited SYN-ACK left a connection: %q", got)
	}

	gvctRealTCP(t, lab, g)
}

// gvctRealTCP: with addresses on S7's hosts (and ARP let through), a real
// TCP connection opened from the left crosses S7's flows, one opened from
// the right does not.
func gvctRealTCP(t *testing.T, lab *netLab, g *Gvsd) {
	requireTool(t, "nc")
	gvofMust(t, g, nil, "add-flow", "br0", "priority=10,arp,actions=NORMAL")
	lab.mustExec("left", "ip", "addr", "add", "192.168.0.2/24", "dev", "veth_l1")
	lab.mustExec("left", "ip", "route", "add", "10.0.0.0/24", "dev", "veth_l1")
	lab.mustExec("right", "ip", "addr", "add", "10.0.0.2/24", "dev", "veth_r1")
	lab.mustExec("right", "ip", "route", "add", "192.168.0.0/24", "dev", "veth_r1")
	if out, err := gvctNC("right", "10.0.0.2", "left", "10.0.0.2", 5001, "hello from the left"); err != nil || out != "hello from the left" {
		t.Fatalf("TCP from the left through S7's flows: got %q, %v", out, err)
	}
	if got := gvctConntrack(t, g, "dport=5001"); len(got) != 1 || !strings.Contains(got[0], "src=192.168.0.2") {
		t.Errorf("the left's connection is not tracked as opened from the left: %q", got)
	}
	if out, err := gvctNC("left", "192.168.0.2", "right", "192.168.0.2", 5002, "hello from the right"); err == nil && out != "" {
		t.Fatalf("TCP opened from the right crossed S7's flows: got %q", out)
	}
}

// gvctNC listens with nc in ns lns on laddr:port, connects from cns to
// caddr:port and sends msg; it returns what the listener received.
func gvctNC(lns, laddr, cns, caddr string, port int, msg string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", lns, "nc", "-l", "-w", "5", laddr, fmt.Sprint(port))
	var out lockedBuffer
	srv.Stdout = &out
	if err := srv.Start(); err != nil {
		return "", err
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	time.Sleep(300 * time.Millisecond) // nc is listening
	cli := exec.CommandContext(ctx, "ip", "netns", "exec", cns, "sh", "-c",
		fmt.Sprintf("printf %%s %q | nc -N -w 3 %s %d", msg, caddr, port))
	if b, err := cli.CombinedOutput(); err != nil {
		return "", fmt.Errorf("client: %v: %s", err, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != msg && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return out.String(), nil
}

// gvctEchoServer is a TCP echo server, one thread per connection.
const gvctEchoServer = `import socket, threading, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen()
def echo(c):
    while True:
        d = c.recv(100)
        if not d:
            break
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
`

// gvctLimitClient opens connection A and echoes on it, tries a second
// connection B, then echoes on A again.
const gvctLimitClient = `import socket, sys
addr = (sys.argv[1], int(sys.argv[2]))
a = socket.create_connection(addr, timeout=5)
a.sendall(b"one")
print("A1", a.recv(10).decode())
try:
    b = socket.create_connection(addr, timeout=3)
    b.sendall(b"bee")
    print("B", b.recv(10).decode())
except OSError as e:
    print("B failed", type(e).__name__)
a.sendall(b"two")
print("A2", a.recv(10).decode())
`

// TestConntrackZonesMarksLimits: connections from the left are tracked
// in zone 1 and committed there with ct_mark 42, and committed in zone 2
// as well (identical tuples, kept apart); only +est packets of zone 1
// whose mark is 42 cross. With a limit of one connection in zone 1, a
// second connection is refused (its packets dropped) while the first
// keeps working. A mirror
// whose filter is ct_state=+trk+new copies the SYNs only.
func TestConntrackZonesMarksLimits(t *testing.T) {
	requireTool(t, "ovs-appctl", "ovs-ofctl")
	requireScapy(t) // the system python3, for the TCP client and server
	lab := newNetLab(t)
	g := StartGvsd(t)
	lab.netns("gvctL")
	lab.netns("gvctR")
	lab.veth("gvctl0", "gvctl1", "gvctL", "10.9.0.1/24")
	lab.veth("gvctr0", "gvctr1", "gvctR", "10.9.0.2/24")
	lab.netns("gvctM")
	lab.veth("gvctm0", "gvctm1", "gvctM")
	g.MustVsctl("add-br", "gvctbr", "--", "add-port", "gvctbr", "gvctl0", "--", "add-port", "gvctbr", "gvctr0",
		"--", "add-port", "gvctbr", "gvctm0")
	// "Mirror only new connections": the filter sees the state of the
	// pass after ct().
	g.MustVsctl("--", "--id=@m", "get", "port", "gvctm0", "--", "--id=@mir", "create", "mirror", "name=gvctnew",
		"select_all=true", "output-port=@m", "--", "set", "bridge", "gvctbr", "mirrors=@mir")
	if out := setMirrorFilter(t, g, "gvctnew", "ct_state=+trk+new,tcp"); strings.Contains(out, "error") {
		t.Fatalf("the ct_state filter was refused: %s", out)
	}
	mirrored := lab.capture("gvctM", "gvctm1", "tcp")
	gvofMust(t, g, nil, "del-flows", "gvctbr")
	for _, f := range []string{
		"priority=10,arp,actions=NORMAL",
		"table=0,priority=50,ct_state=-trk,tcp,actions=ct(table=1,zone=1)",
		"table=1,priority=50,ct_state=+trk+new,tcp,in_port=gvctl0,actions=ct(commit,zone=1,exec(set_field:42->ct_mark)),ct(commit,zone=2),gvctr0",
		"table=1,priority=50,ct_state=+trk+est,ct_mark=42,ct_zone=1,tcp,actions=NORMAL",
	} {
		gvofMust(t, g, nil, "add-flow", "gvctbr", f)
	}
	appctl := func(args ...string) string {
		t.Helper()
		out, errOut, err := g.Run("ovs-appctl", args...)
		if err != nil {
			t.Fatalf("ovs-appctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	appctl("dpctl/ct-set-limits", "zone=1,limit=1")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, "ip", "netns", "exec", "gvctR", gvctScapy, "-c", gvctEchoServer, "10.9.0.2", "5001")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	time.Sleep(500 * time.Millisecond)
	out := lab.mustExec("gvctL", gvctScapy, "-c", gvctLimitClient, "10.9.0.2", "5001")
	if want := "A1 one\nB failed TimeoutError\nA2 two\n"; out != want {
		t.Fatalf("client through the zone limit printed\n%s\nwant\n%s", out, want)
	}
	if !mirrored.waitFor(5*time.Second, "Flags [S]") {
		t.Error("no SYN mirrored by the ct_state=+trk+new mirror")
	}
	for _, l := range mirrored.stop() {
		if !strings.Contains(l, "Flags [S], ") {
			t.Errorf("the ct_state=+trk+new mirror copied a packet of an established connection: %s", l)
		}
	}
	zone1 := gvctConntrack(t, g, "dport=5001", "zone=1")
	if len(zone1) != 1 || !strings.Contains(zone1[0], ",zone=1,mark=42,") {
		t.Errorf("zone 1 holds %q, want connection A only, with mark 42", zone1)
	}
	// B's packets were dropped at zone 1's limit, before ct(zone=2): zone
	// 2 holds A, the same tuple as zone 1's, kept apart.
	zone2 := gvctConntrack(t, g, "dport=5001", "zone=2")
	if len(zone1) != 1 || len(zone2) != 1 || strings.Split(zone2[0], ",zone=")[0] != strings.Split(zone1[0], ",zone=")[0] {
		t.Errorf("zone 2 holds %q, want connection A as in zone 1 (%q)", zone2, zone1)
	}
	if got := appctl("dpctl/ct-get-limits", "zone=1"); got != "default limit=0\nzone=1,limit=1,count=1\n" {
		t.Errorf("ct-get-limits zone=1:\n%s", got)
	}
	if got := appctl("dpctl/ct-stats-show"); !strings.Contains(got, "Commits refused by limits: ") || strings.Contains(got, "refused by limits: 0\n") {
		t.Errorf("ct-stats-show does not count the refused commits:\n%s", got)
	}
	// Errors reach ovs-appctl.
	if out, errOut, err := g.Run("ovs-appctl", "dpctl/ct-set-limits", "zone=1,limit=lots"); err == nil || !strings.Contains(errOut, "a limit is a number") {
		t.Errorf("a bad limit: err=%v\n%s%s", err, out, errOut)
	}
	appctl("dpctl/flush-conntrack", "zone=2")
	if zone2 := gvctConntrack(t, g, "dport=5001", "zone=2"); len(zone2) != 0 {
		t.Errorf("after flush-conntrack zone=2: %q", zone2)
	}
	if len(gvctConntrack(t, g, "dport=5001", "zone=1")) != 1 {
		t.Error("flushing zone 2 removed zone 1's connection")
	}
}
