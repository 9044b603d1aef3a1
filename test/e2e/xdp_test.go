package e2e

import (
	"strings"
	"testing"
	"time"
)

// gvsyXDPAttached says whether the host-side device carries an XDP
// program.
func gvsyXDPAttached(t *testing.T, dev string) bool {
	t.Helper()
	return strings.Contains(gvsyMust(t, "ip", "-d", "link", "show", "dev", dev), "prog/xdp")
}

// TestSystemPortsXDP forwards ping and an 8 MiB TCP transfer between two
// namespaces through system ports with options:gvs-xdp=true: the switch
// attaches its XDP program to both veths (no Interface.error: native
// mode), receives through XDP sockets, and detaches the program when the
// port is deleted and when gvsd dies (SIGKILL). A port whose MTU XDP cannot
// carry keeps working through its packet ring with the reason in
// Interface.error.
func TestSystemPortsXDP(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ip", "sysctl", "ping", "ss", "nc", "ethtool")
	a := gvsyPort{NS: "gvsy-xdp-a", Host: "gvsyxa0", Inner: "gvsyxa1", Addr: "10.231.9.1/24"}
	b := gvsyPort{NS: "gvsy-xdp-b", Host: "gvsyxb0", Inner: "gvsyxb1", Addr: "10.231.9.2/24"}
	c := gvsyPort{NS: "gvsy-xdp-c", Host: "gvsyxc0", Inner: "gvsyxc1", Addr: "10.231.9.3/24"}
	gvsyTopology(t, a, b, c)
	// XDP hands frames over as the peer sent them: no partial checksums.
	for _, p := range []gvsyPort{a, b, c} {
		gvsyMust(t, gvsyInNS(p.NS, "ethtool", "-K", p.Inner, "tx", "off")...)
	}
	gvsyMust(t, "ip", "link", "set", c.Host, "mtu", "9000")

	gvsyFreeBridgeName("gvsyxdp")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvsyxdp")
	for _, p := range []gvsyPort{a, b} {
		g.MustVsctl("add-port", "gvsyxdp", p.Host, "--", "set", "interface", p.Host, "options:gvs-xdp=true")
		gvsyRequirePortUp(t, g.MustVsctl, p.Host)
		if !gvsyXDPAttached(t, p.Host) {
			t.Fatalf("no XDP program on %s", p.Host)
		}
	}
	gvsyWaitPing(t, a.NS, "10.231.9.2")
	t.Run("nc-sha256", func(t *testing.T) { gvsyNetcatTransfer(t, a.NS, b.NS, "10.231.9.2") })

	t.Run("refused-keeps-ring", func(t *testing.T) {
		g.MustVsctl("add-port", "gvsyxdp", c.Host, "--", "set", "interface", c.Host, "options:gvs-xdp=true")
		errText := g.MustVsctl("get", "interface", c.Host, "error")
		if !strings.Contains(errText, "options:gvs-xdp: MTU 9000 too large") {
			t.Errorf("%s error = %s, want the MTU refused", c.Host, errText)
		}
		if gvsyXDPAttached(t, c.Host) {
			t.Errorf("XDP program on %s though refused", c.Host)
		}
		gvsyWaitPing(t, a.NS, "10.231.9.3")
	})

	g.MustVsctl("del-port", "gvsyxdp", a.Host)
	if !waitNoXDP(t, a.Host) {
		t.Errorf("XDP program still on %s after del-port", a.Host)
	}
	// The program hangs on a BPF link that gvsd holds: even a crash
	// takes it away.
	g.Kill9()
	if !waitNoXDP(t, b.Host) {
		t.Errorf("XDP program still on %s after gvsd was killed", b.Host)
	}
}

// waitNoXDP waits up to 5 s for dev to lose its XDP program.
func waitNoXDP(t *testing.T, dev string) bool {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !gvsyXDPAttached(t, dev) {
			return true
		}
	}
	return false
}
