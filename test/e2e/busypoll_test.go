package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemPortsBusyPoll sets Open_vSwitch other_config:gvs-busy-poll-us:
// a value out of range or not a number fails ovs-vsctl with the key and
// its range; an accepted one makes the system ports' readers spin (the
// coverage counter of frames taken while spinning rises), and ping and
// TCP still go through.
func TestSystemPortsBusyPoll(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-appctl", "ip", "sysctl", "ping", "ss", "iperf3")
	a := gvsyPort{NS: "gvsy-bp-a", Host: "gvsybpa0", Inner: "gvsybpa1", Addr: "10.231.9.1/24"}
	b := gvsyPort{NS: "gvsy-bp-b", Host: "gvsybpb0", Inner: "gvsybpb1", Addr: "10.231.9.2/24"}
	gvsyTopology(t, a, b)

	gvsyFreeBridgeName("gvsybp")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvsybp")
	g.MustVsctl("add-port", "gvsybp", a.Host)
	g.MustVsctl("add-port", "gvsybp", b.Host)
	gvsyRequirePortUp(t, g.MustVsctl, a.Host)
	gvsyRequirePortUp(t, g.MustVsctl, b.Host)

	for _, bad := range []string{"1001", "-5", "soon"} {
		errOut := g.FailVsctl("set", "Open_vSwitch", ".", "other_config:gvs-busy-poll-us="+bad)
		if !strings.Contains(errOut, "gvs-busy-poll-us") || !strings.Contains(errOut, "from 0 to 1000") {
			t.Errorf("gvs-busy-poll-us=%s: ovs-vsctl said %q, want the key and its range", bad, errOut)
		}
	}
	if out := g.MustVsctl("--if-exists", "get", "Open_vSwitch", ".", "other_config:gvs-busy-poll-us"); strings.TrimSpace(out) != "" {
		t.Fatalf("a refused value was stored: %q", out)
	}

	before := gvbpSpinHits(t, g)
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:gvs-busy-poll-us=200")
	gvsyWaitPing(t, a.NS, "10.231.9.2")
	// A flood ping sends each request as soon as the reply is in: one
	// reader spins, watching both rings, while the other waits its turn.
	out := gvsyMust(t, gvsyInNS(a.NS, "ping", "-n", "-f", "-c", "300", "-W", "2", "10.231.9.2")...)
	if !strings.Contains(out, "300 received") {
		t.Fatalf("flood ping lost packets:\n%s", out)
	}
	// (A frame already in the ring when its thread comes back is not
	// counted, so not every one of the 600 crossings is.)
	if got := gvbpSpinHits(t, g) - before; got < 50 {
		t.Fatalf("%d frames taken while spinning during a 300-request flood ping (600 crossings), want at least 50", got)
	}
	t.Run("iperf3", func(t *testing.T) { gvsyIperf(t, a.NS, b.NS, "10.231.9.2") })

	// 0 turns it off again: the count stays.
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:gvs-busy-poll-us=0")
	gvsyWaitPing(t, a.NS, "10.231.9.2")
	off := gvbpSpinHits(t, g)
	gvsyMust(t, gvsyInNS(a.NS, "ping", "-n", "-f", "-c", "100", "-W", "2", "10.231.9.2")...)
	if got := gvbpSpinHits(t, g); got != off {
		t.Fatalf("readers still spin with gvs-busy-poll-us=0: %d more frames taken spinning", got-off)
	}
}

var gvbpHitLine = regexp.MustCompile(`(?m)^netdev_afpacket_busy_poll_hit\s.*total: (\d+)$`)

// gvbpSpinHits reads coverage/show's count of frames that system ports
// took while spinning (0 before the first).
func gvbpSpinHits(t *testing.T, g *Gvsd) uint64 {
	t.Helper()
	m := gvbpHitLine.FindStringSubmatch(appctl(t, g, "coverage/show"))
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseUint(m[1], 10, 64)
	return n
}
