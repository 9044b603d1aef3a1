package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gvbdActive returns the active member bond/show names for bond, "" for
// none, and the whole output.
func gvbdActive(t *testing.T, g *Gvsd, bond string) (string, string) {
	t.Helper()
	out, errOut, err := g.Run("ovs-appctl", "bond/show", bond)
	if err != nil {
		t.Fatalf("bond/show %s: %v\n%s%s", bond, err, out, errOut)
	}
	m := regexp.MustCompile(`active member mac: [0-9a-f:]+\(([^)]+)\)`).FindStringSubmatch(out)
	if m == nil || m[1] == "none" {
		return "", out
	}
	return m[1], out
}

// gvbdWaitShow polls bond/show until it holds every line of want, or
// fails the test after limit.
func gvbdWaitShow(t *testing.T, g *Gvsd, bond string, limit time.Duration, want ...string) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(limit); ; {
		_, out = gvbdActive(t, g, bond)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(out, w)
		}
		if ok {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("bond/show %s lacks %q after %v:\n%s", bond, want, limit, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestBondActiveBackupFailover: a gvsd bridge has port gvbdA toward host
// gvbd-a and an active-backup bond of gvbdM1 and gvbdM2, whose other
// ends are joined by a Linux bridge (STP off) holding 10.77.1.2 in
// gvbd-far. Pings cross the bond; when the active member's peer goes
// down the other member takes over (bond/show says so) and pings go on;
// a disabled member cannot be made active, an enabled one can. On main,
// gvsd used only the bond's first interface and bond/show answered "no
// such bond".
func TestBondActiveBackupFailover(t *testing.T) {
	lab := newNetLab(t)
	g := StartGvsd(t)
	lab.netns("gvbd-a")
	lab.netns("gvbd-far")
	lab.veth("gvbdA", "gvbdAp", "gvbd-a", "10.77.1.1/24")
	lab.veth("gvbdM1", "gvbdM1p", "gvbd-far")
	lab.veth("gvbdM2", "gvbdM2p", "gvbd-far")
	lab.mustExec("gvbd-far", "ip", "link", "add", "gvbdfbr", "type", "bridge", "stp_state", "0", "forward_delay", "0")
	for _, p := range []string{"gvbdM1p", "gvbdM2p"} {
		lab.mustExec("gvbd-far", "ip", "link", "set", p, "master", "gvbdfbr")
		lab.mustExec("gvbd-far", "ip", "link", "set", p, "up")
	}
	lab.configure("gvbd-far", "gvbdfbr", "10.77.1.2/24")

	g.MustVsctl("add-br", "gvbd0")
	g.MustVsctl("add-port", "gvbd0", "gvbdA")
	g.MustVsctl("add-bond", "gvbd0", "gvbdb", "gvbdM1", "gvbdM2", "bond_mode=active-backup")
	gvbdWaitShow(t, g, "gvbdb", 10*time.Second, "bond_mode: active-backup", "member gvbdM1: enabled", "member gvbdM2: enabled", "  active member")
	for _, n := range []string{"gvbdM1", "gvbdM2"} {
		if e := strings.TrimSpace(g.MustVsctl("get", "Interface", n, "error")); e != "[]" {
			t.Fatalf("Interface %s error %s", n, e)
		}
	}
	if !lab.pingEventually("gvbd-a", "10.77.1.2", 10*time.Second) {
		_, show := gvbdActive(t, g, "gvbdb")
		t.Fatalf("no ping across the bond:\n%s", show)
	}
	lab.pingOK("gvbd-a", "10.77.1.2")

	active, _ := gvbdActive(t, g, "gvbdb")
	other := map[string]string{"gvbdM1": "gvbdM2", "gvbdM2": "gvbdM1"}[active]
	if other == "" {
		t.Fatalf("active member %q", active)
	}
	lab.mustExec("gvbd-far", "ip", "link", "set", active+"p", "down")
	gvbdWaitShow(t, g, "gvbdb", 5*time.Second, "member "+active+": disabled", "("+other+")")
	if !lab.pingEventually("gvbd-a", "10.77.1.2", 5*time.Second) {
		_, show := gvbdActive(t, g, "gvbdb")
		t.Fatalf("no ping across the bond after failover to %s:\n%s", other, show)
	}
	lab.pingOK("gvbd-a", "10.77.1.2")

	if _, errOut, err := g.Run("ovs-appctl", "bond/set-active-member", "gvbdb", active); err == nil ||
		!strings.Contains(errOut+"", "cannot make disabled member active") {
		t.Fatalf("set-active-member of the disabled member: %v %q", err, errOut)
	}
	lab.mustExec("gvbd-far", "ip", "link", "set", active+"p", "up")
	gvbdWaitShow(t, g, "gvbdb", 5*time.Second, "member "+active+": enabled")
	if out, errOut, err := g.Run("ovs-appctl", "bond/set-active-member", "gvbdb", active); err != nil || strings.TrimSpace(out) != "done" {
		t.Fatalf("set-active-member %s: %v %q %q", active, err, out, errOut)
	}
	gvbdWaitShow(t, g, "gvbdb", time.Second, "("+active+")")
	if !lab.pingEventually("gvbd-a", "10.77.1.2", 5*time.Second) {
		t.Fatalf("no ping across the bond back on %s", active)
	}
	if out, _, _ := g.Run("ovs-appctl", "bond/list"); !strings.Contains(out, "gvbdb\tactive-backup\t0\t") {
		t.Fatalf("bond/list:\n%s", out)
	}
}

// gvblRxPackets reads a root-namespace device's kernel rx_packets.
func gvblRxPackets(t *testing.T, dev string) int {
	t.Helper()
	b, err := os.ReadFile("/sys/class/net/" + dev + "/statistics/rx_packets")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestBondLACPBalanceTCPAgainstOVS: a gvsd bond of gvblG1 and gvblG2
// and an OVS 3.1 bond of their veth peers gvblO1 and gvblO2, both
// lacp=active (fast) and balance-tcp: each side's lacp/show says
// negotiated with both members current and attached, and sixteen TCP
// connections from host gvbl-a (behind gvsd) to host gvbl-b (behind
// OVS) go over both members. On main, gvsd used only gvblG1 and
// lacp/show answered "no such lacp object".
func TestBondLACPBalanceTCPAgainstOVS(t *testing.T) {
	requireTool(t, "ovs-vsctl", "ovs-appctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip", "python3", "ethtool")
	lab := newNetLab(t)
	o := gvsyStartOVS(t)
	g := StartGvsd(t)
	lab.netns("gvbl-a")
	lab.netns("gvbl-b")
	lab.veth("gvblGH", "gvblGHp", "gvbl-a", "10.78.1.1/24")
	lab.veth("gvblOH", "gvblOHp", "gvbl-b", "10.78.1.2/24")
	lab.veth("gvblG1", "gvblO1", "")
	lab.veth("gvblG2", "gvblO2", "")
	o.MustVsctl("add-br", "gvblo", "--", "set", "bridge", "gvblo", "datapath_type=netdev")
	o.MustVsctl("add-port", "gvblo", "gvblOH")
	o.MustVsctl("add-bond", "gvblo", "gvblob", "gvblO1", "gvblO2", "bond_mode=balance-tcp", "lacp=active",
		"other_config:lacp-time=fast")
	g.MustVsctl("add-br", "gvblg")
	g.MustVsctl("add-port", "gvblg", "gvblGH")
	g.MustVsctl("add-bond", "gvblg", "gvblgb", "gvblG1", "gvblG2", "bond_mode=balance-tcp", "lacp=active",
		"other_config:lacp-time=fast")

	ovsCtl := filepath.Join(o.dir, "ovs-vswitchd.ctl")
	negotiated := func(show string, members ...string) bool {
		if !strings.Contains(show, "status: active negotiated") {
			return false
		}
		for _, m := range members {
			if !strings.Contains(show, "member: "+m+": current attached") {
				return false
			}
		}
		return true
	}
	var gShow, oShow string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		gShow, _, _ = g.Run("ovs-appctl", "lacp/show", "gvblgb")
		oShow, _, _ = o.run("ovs-appctl", "-t", ovsCtl, "lacp/show", "gvblob")
		if negotiated(gShow, "gvblG1", "gvblG2") && negotiated(oShow, "gvblO1", "gvblO2") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LACP not negotiated on both sides within 20 s\ngvsd:\n%s\nOVS:\n%s", gShow, oShow)
		}
	}
	bondShow := gvbdWaitShow(t, g, "gvblgb", 5*time.Second, "lacp_status: negotiated", "member gvblG1: enabled", "member gvblG2: enabled")
	oBond := o.must("ovs-appctl", "-t", ovsCtl, "bond/show", "gvblob")
	if !strings.Contains(oBond, "member gvblO1: enabled") || !strings.Contains(oBond, "member gvblO2: enabled") {
		t.Fatalf("OVS's bond members not both enabled:\n%s\ngvsd's:\n%s", oBond, bondShow)
	}
	if !lab.pingEventually("gvbl-a", "10.78.1.2", 10*time.Second) {
		t.Fatalf("no ping across the LACP bonds\ngvsd:\n%s\nOVS:\n%s", bondShow, oBond)
	}

	// Sixteen TCP connections, each sending 256 KiB, from gvbl-a to
	// gvbl-b. The hosts send frames of their MTU, checksummed: OVS's
	// userspace datapath (without userspace-tso-enable) takes no
	// offloaded super-frames from its veths.
	lab.mustExec("gvbl-a", "ethtool", "-K", "gvblGHp", "tx", "off", "tso", "off", "gso", "off")
	lab.mustExec("gvbl-b", "ethtool", "-K", "gvblOHp", "tx", "off", "tso", "off", "gso", "off")
	gvblTCPServer(t, "gvbl-b", "10.78.1.2", 5901)
	before1, before2 := gvblRxPackets(t, "gvblO1"), gvblRxPackets(t, "gvblO2")
	gvblTCPSend(t, lab, "gvbl-a", "10.78.1.2", 5901, 16, 262144)
	d1, d2 := gvblRxPackets(t, "gvblO1")-before1, gvblRxPackets(t, "gvblO2")-before2
	t.Logf("packets received by OVS's members: gvblO1 %d, gvblO2 %d", d1, d2)
	if d1 < 50 || d2 < 50 {
		t.Fatalf("16 connections did not spread over both members: gvblO1 got %d packets, gvblO2 %d", d1, d2)
	}
}

// gvblTCPServer runs, in namespace ns until the test ends, a TCP server
// on addr (IPv4 or IPv6) and port that reads each connection to its end.
func gvblTCPServer(t *testing.T, ns, addr string, port int) {
	t.Helper()
	server := exec.Command("ip", "netns", "exec", ns, "python3", "-c", `
import socket, sys, threading
addr, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port)); s.listen(32)
def drain(c):
    while c.recv(65536): pass
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=drain, args=(c,), daemon=True).start()
`, addr, strconv.Itoa(port))
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
}

// gvblTCPSend makes n TCP connections from namespace ns to addr and
// port (once the server answers), each sending size bytes, and fails
// the test if one fails.
func gvblTCPSend(t *testing.T, lab *netLab, ns, addr string, port, n, size int) {
	t.Helper()
	out, err := lab.exec(ns, "python3", "-c", `
import socket, sys, time
addr, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for attempt in range(50):
    try:
        socket.create_connection((addr, port), timeout=2).close(); break
    except OSError: time.sleep(0.1)
for i in range(n):
    c = socket.create_connection((addr, port), timeout=5)
    c.sendall(b"x" * size); c.close()
    print("connection", i, "sent", flush=True)
print("sent")
`, addr, strconv.Itoa(port), strconv.Itoa(n), strconv.Itoa(size))
	if err != nil || !strings.HasSuffix(out, "\nsent\n") {
		t.Fatalf("TCP connections from %s to %s: %v\n%s", ns, addr, err, out)
	}
}

// gvbsMask makes bond/show and bond/list of gvsd and OVS comparable: the
// member names' prefixes and the MAC addresses go, and "next rebalance"
// keeps its name only (a countdown).
var gvbsMask = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`gvbs[GO]`), "M"},
	{regexp.MustCompile(`[0-9a-f]{2}(:[0-9a-f]{2}){5}`), "MAC"},
	{regexp.MustCompile(`next rebalance: \d+ ms`), "next rebalance: N ms"},
	{regexp.MustCompile(`\tM2, M1\n`), "\tM1, M2\n"}, // OVS lists members in hash order
	// bond/list's recircID: OVS's, which gvs has none of (its bond/show
	// says "Recirc-ID : -1" for the same bond).
	{regexp.MustCompile(`(?m)^(gvbsb\t[a-z-]+\t)\d+\t`), "${1}ID\t"},
}

// TestBondShowDifferential: the same active-backup, then balance-slb,
// bond (two veths, updelay, downdelay, a primary) on OVS 3.1 and on gvsd
// prints the same bond/show and bond/list, member names and addresses
// aside, and the commands fail with the same errors.
func TestBondShowDifferential(t *testing.T) {
	requireTool(t, "ovs-vsctl", "ovs-appctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip")
	lab := newNetLab(t)
	o := gvsyStartOVS(t)
	g := StartGvsd(t)
	for _, d := range []string{"gvbsG1", "gvbsG2", "gvbsO1", "gvbsO2"} {
		lab.veth(d, d+"p", "")
	}
	ovsCtl := filepath.Join(o.dir, "ovs-vswitchd.ctl")
	mask := func(s string) string {
		for _, m := range gvbsMask {
			s = m.re.ReplaceAllString(s, m.with)
		}
		return s
	}
	gApp := func(args ...string) string {
		out, errOut, _ := g.Run("ovs-appctl", args...)
		return mask(out + strings.SplitN(errOut, "\n", 2)[0])
	}
	oApp := func(args ...string) string {
		args = append([]string(nil), args...)
		for i := range args {
			args[i] = strings.ReplaceAll(args[i], "gvbsG", "gvbsO")
		}
		out, errOut, _ := o.run(append([]string{"ovs-appctl", "-t", ovsCtl}, args...)...)
		return mask(out + strings.SplitN(errOut, "\n", 2)[0])
	}
	o.MustVsctl("add-br", "gvbso", "--", "set", "bridge", "gvbso", "datapath_type=netdev")
	o.MustVsctl("add-bond", "gvbso", "gvbsb", "gvbsO1", "gvbsO2", "bond_mode=active-backup", "bond_updelay=100",
		"bond_downdelay=200", "other_config:bond-primary=gvbsO1")
	g.MustVsctl("add-br", "gvbsg")
	g.MustVsctl("add-bond", "gvbsg", "gvbsb", "gvbsG1", "gvbsG2", "bond_mode=active-backup", "bond_updelay=100",
		"bond_downdelay=200", "other_config:bond-primary=gvbsG1")
	settled := func(mode string) {
		t.Helper()
		want := []string{"bond_mode: " + mode, "member M1: enabled\n  active member\n  may_enable: true", "member M2: enabled\n  may_enable: true\n"}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			gs, os := gApp("bond/show", "gvbsb"), oApp("bond/show", "gvbsb")
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(gs, w) && strings.Contains(os, w)
			}
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("bonds did not settle within 10 s\ngvsd:\n%s\nOVS:\n%s", gs, os)
			}
		}
	}
	compare := func(args ...string) {
		t.Helper()
		if gs, os := gApp(args...), oApp(args...); gs != os {
			t.Errorf("ovs-appctl %s differs\ngvsd:\n%s\nOVS:\n%s", strings.Join(args, " "), gs, os)
		}
	}
	settled("active-backup")
	compare("bond/show", "gvbsb")
	compare("bond/show")
	compare("bond/list")
	compare("bond/show", "nosuch")
	compare("bond/set-active-member", "nosuch", "gvbsG1")
	compare("bond/set-active-member", "gvbsb", "nosuch")
	compare("lacp/show", "gvbsb")

	o.MustVsctl("set", "port", "gvbsb", "bond_mode=balance-slb")
	g.MustVsctl("set", "port", "gvbsb", "bond_mode=balance-slb")
	settled("balance-slb")
	compare("bond/show", "gvbsb")
	compare("bond/list")
}
