package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// S5 (docs/GUIDE.md, "Mirror a VM's port") mirrors both directions of a
// VM's port on br-int to a remote collector through a GRE port. The
// hypervisor is namespace gvs5-hv with its own gvsd, so S5's fixed names
// (br-int, qvof7eae624-34, gre0, and the collector 192.168.1.142) live
// there and never meet the machine's own; everything else made here
// starts with "gvs5".

// gvs5Mirror is S5's first command, verbatim.
var gvs5Mirror = []string{"add-port", "br-int", "gre0",
	"--", "set", "interface", "gre0", "type=gre", "options:remote_ip=192.168.1.142",
	"--", "--id=@p", "get", "port", "gre0", "--", "--id=@target", "get", "Port", "qvof7eae624-34",
	"--", "--id=@m", "create", "mirror", "name=m0", "output-port=@p", "select-dst-port=@target", "select-src-port=@target",
	"--", "set", "bridge", "br-int", "mirrors=@m"}

// TestS5RemoteCollector runs S5's commands verbatim on a hypervisor whose
// VM port is a veth from namespace gvs5-vm, with a peer in gvs5-peer, and
// whose underlay (192.168.1.1/24) leads to the collector gvs5-col at
// 192.168.1.142, which runs tcpdump and no gvs:
//
//   - the mirror row selects the VM's port in both directions, `list
//     Bridge br-int` shows it;
//   - every echo request the VM sends and every reply it receives reach
//     the collector GRE-encapsulated, from the hypervisor's address;
//   - after `clear bridge br-int mirrors` and `del-port br-int gre0`,
//     the collector gets nothing more, and the VM still reaches its peer.
func TestS5RemoteCollector(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "tcpdump", "ping")
	const vmPort = "qvof7eae624-34"
	for _, ns := range []string{"gvs5-hv", "gvs5-vm", "gvs5-peer", "gvs5-col"} {
		lab.netns(ns)
	}
	lab.vethIn("gvs5-hv", vmPort, "gvs5vm", "gvs5-vm", "10.233.5.1/24")
	lab.vethIn("gvs5-hv", "gvs5peer", "gvs5peerp", "gvs5-peer", "10.233.5.2/24")
	lab.vethIn("gvs5-hv", "gvs5ul", "gvs5colp", "gvs5-col", "192.168.1.142/24")
	lab.configure("gvs5-hv", "gvs5ul", "192.168.1.1/24")
	g := StartGvsdNetns(t, "gvs5-hv")
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", "br-int")
	g.MustVsctl("add-port", "br-int", vmPort)
	g.MustVsctl("add-port", "br-int", "gvs5peer")
	lab.pingOK("gvs5-vm", "10.233.5.2")

	g.MustVsctl(gvs5Mirror...)
	if e := strings.TrimSpace(g.MustVsctl("get", "interface", "gre0", "error")); e != "[]" {
		t.Fatalf("Interface gre0 error = %s", e)
	}
	gvs5CheckMirrorRow(t, g, vmPort)

	col := lab.tcpdump("gvs5-col", "collector", "-l", "-n", "--immediate-mode", "-Q", "in", "-i", "gvs5colp", "ip proto 47")
	gvmiPing(t, lab, "gvs5-vm", "10.233.5.2", 5)
	col.waitFor(5*time.Second, "ICMP echo reply", "seq 5")
	time.Sleep(300 * time.Millisecond)
	lines := col.stop()
	t.Logf("the collector received:\n%s", strings.Join(lines, "\n"))
	for _, what := range []string{"10.233.5.1 > 10.233.5.2: ICMP echo request", "10.233.5.2 > 10.233.5.1: ICMP echo reply"} {
		if n := len(linesWith(lines, "192.168.1.1 > 192.168.1.142: GREv0", what)); n != 5 {
			t.Errorf("the collector received %d GRE packets with %q, want 5", n, what)
		}
	}

	g.MustVsctl("clear", "bridge", "br-int", "mirrors")
	if m := strings.TrimSpace(g.MustVsctl("--columns=_uuid", "list", "mirror")); m != "" {
		t.Errorf("a Mirror row is left after clear bridge br-int mirrors:\n%s", m)
	}
	g.MustVsctl("del-port", "br-int", "gre0")
	if ports := g.MustVsctl("list-ports", "br-int"); strings.Contains(ports, "gre0") {
		t.Errorf("gre0 is still on br-int after del-port:\n%s", ports)
	}
	after := lab.tcpdump("gvs5-col", "collector", "-l", "-n", "--immediate-mode", "-Q", "in", "-i", "gvs5colp", "ip proto 47")
	gvmiPing(t, lab, "gvs5-vm", "10.233.5.2", 3)
	time.Sleep(300 * time.Millisecond)
	if rest := after.stop(); len(rest) != 0 {
		t.Errorf("the collector still received GRE after the mirror and gre0 were removed:\n%s", strings.Join(rest, "\n"))
	}
}

var gvs5MirrorsColumn = regexp.MustCompile(`(?m)^mirrors\s*:\s*\[[0-9a-f]{8}-[0-9a-f-]{27}\]$`)

// gvs5CheckMirrorRow checks what S5's command wrote: br-int lists one
// mirror, which selects the VM's port as source and destination.
func gvs5CheckMirrorRow(t *testing.T, g *Gvsd, vmPort string) {
	t.Helper()
	if out := g.MustVsctl("list", "Bridge", "br-int"); !gvs5MirrorsColumn.MatchString(out) {
		t.Errorf("list Bridge br-int shows no single mirror:\n%s", out)
	}
	port := strings.TrimSpace(g.MustVsctl("get", "port", vmPort, "_uuid"))
	for _, col := range []string{"select_src_port", "select_dst_port"} {
		if got := strings.TrimSpace(g.MustVsctl("get", "mirror", "m0", col)); got != "["+port+"]" {
			t.Errorf("mirror m0 %s = %s, want [%s] (port %s)", col, got, port, vmPort)
		}
	}
}
