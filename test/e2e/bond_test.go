package e2e

import (
	"regexp"
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
