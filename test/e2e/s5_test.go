package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// S5 (docs/GUIDE.md, "Mirror a VM's port") mirrors both directions of a
// VM's port on br-int to a remote collector through a GRE port. Its remote
// half waits for tunnel ports; this file checks the local half. Apart from
// the names S5 fixes (br-int, qvof7eae624-34, gre0), everything made here
// starts with "gvs5".

// gvs5Names are the interface names S5 fixes. They may belong to someone
// else (qvo... is how OpenStack names a VM's port), so the test refuses to
// run rather than delete them.
var gvs5Names = []string{"br-int", "qvof7eae624-34", "gre0"}

// gvs5Mirror is S5's first command, verbatim.
var gvs5Mirror = []string{"add-port", "br-int", "gre0",
	"--", "set", "interface", "gre0", "type=gre", "options:remote_ip=192.168.1.142",
	"--", "--id=@p", "get", "port", "gre0", "--", "--id=@target", "get", "Port", "qvof7eae624-34",
	"--", "--id=@m", "create", "mirror", "name=m0", "output-port=@p", "select-dst-port=@target", "select-src-port=@target",
	"--", "set", "bridge", "br-int", "mirrors=@m"}

// TestS5LocalHalf runs S5's commands verbatim on a bridge whose VM port is
// a veth from namespace gvs5-vm, with a peer in gvs5-peer.
//
//   - gvsd has no GRE ports yet: gre0 gets an Interface.error that
//     ovs-vsctl reports, the command still succeeds as with OVS, and
//     nothing is sent anywhere (in particular not to 192.168.1.142, which
//     the scenario names and this test must never reach: gvsd opens no
//     socket for gre0).
//   - The mirror row selects the VM's port in both directions, `list
//     Bridge br-int` shows it, and `clear` and `del-port` undo it all.
//   - With a local output port standing in for the tunnel (a veth to the
//     sink namespace gvs5-col), every frame the VM sends and every frame
//     it receives reaches the collector, untagged, and the mirror's
//     statistics count exactly those frames.
func TestS5LocalHalf(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "tcpdump", "ping")
	for _, dev := range gvs5Names {
		if labLinkExists(dev) {
			t.Fatalf("interface %s already exists: S5 needs the name for its own port; remove it and rerun", dev)
		}
	}
	const vmPort = "qvof7eae624-34"
	lab.netns("gvs5-vm")
	lab.netns("gvs5-peer")
	lab.netns("gvs5-col")
	lab.veth(vmPort, "gvs5vm", "gvs5-vm", "10.233.5.1/24")
	lab.veth("gvs5peer", "gvs5peerp", "gvs5-peer", "10.233.5.2/24")
	lab.veth("gvs5col", "gvs5colp", "gvs5-col")
	g := StartGvsd(t)
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", "br-int")
	g.MustVsctl("add-port", "br-int", vmPort)
	g.MustVsctl("add-port", "br-int", "gvs5peer")
	lab.pingOK("gvs5-vm", "10.233.5.2")

	out, errOut, err := g.Vsctl(gvs5Mirror...)
	t.Logf("S5 mirror command: err=%v\nstdout: %s\nstderr: %s", err, out, errOut)
	if err != nil {
		t.Fatalf("the S5 mirror command failed (%v); OVS reports a port it cannot set up and exits 0", err)
	}
	if want := "Error detected while setting up 'gre0'"; !strings.Contains(errOut, want) {
		t.Errorf("ovs-vsctl stderr lacks %q:\n%s", want, errOut)
	}
	if e := g.MustVsctl("get", "interface", "gre0", "error"); !strings.Contains(e, `unsupported interface type \"gre\"`) {
		t.Errorf("Interface gre0 error = %s, want it to say GRE is unsupported", e)
	}
	gvs5CheckMirrorRow(t, g, vmPort)
	lab.pingOK("gvs5-vm", "10.233.5.2")

	// The local half, with the collector's veth as the output port.
	g.MustVsctl("add-port", "br-int", "gvs5col")
	g.MustVsctl("--", "--id=@p", "get", "port", "gvs5col", "--", "set", "mirror", "m0", "output_port=@p")
	gvs5CheckBothDirections(t, lab, g)

	g.MustVsctl("clear", "bridge", "br-int", "mirrors")
	if m := strings.TrimSpace(g.MustVsctl("--columns=_uuid", "list", "mirror")); m != "" {
		t.Errorf("a Mirror row is left after clear bridge br-int mirrors:\n%s", m)
	}
	g.MustVsctl("del-port", "br-int", "gre0")
	if ports := g.MustVsctl("list-ports", "br-int"); strings.Contains(ports, "gre0") {
		t.Errorf("gre0 is still on br-int after del-port:\n%s", ports)
	}
	lab.pingOK("gvs5-vm", "10.233.5.2")
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

// gvs5CheckBothDirections pings the peer from the VM and checks that the
// collector received a copy of every frame the VM sent and received.
func gvs5CheckBothDirections(t *testing.T, lab *netLab, g *Gvsd) {
	t.Helper()
	col := gvmiCapture(t, "gvs5-col", "gvs5colp", "in")
	sent := gvmiCapture(t, "gvs5-vm", "gvs5vm", "out")
	received := gvmiCapture(t, "gvs5-vm", "gvs5vm", "in")
	both, copies := gvmiMirroredPing(t, lab, g, gvmiPingSpec{ns: "gvs5-vm", addr: "10.233.5.2", count: 5},
		[]*tcpdumpCapture{sent, received}, col)

	for _, what := range []string{"ICMP echo request", "ICMP echo reply"} {
		if n := len(gvmiOnly(copies, what)); n != 5 {
			t.Errorf("the collector received %d copies of %ss, want 5", n, what)
		}
	}
	// A frame that crossed the VM's port just after the VM captures
	// stopped may have a copy: tolerated if it is ARP.
	for _, f := range gvmiCopiesOf(t, "collector", both, copies, -1) {
		if !strings.Contains(f.line, "ARP") {
			t.Errorf("the collector received a frame that did not cross the VM's port: %q", f.line)
		}
	}
}
