package e2e

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFragModesSwitchFragments sends real IP fragments (a ping of 3000
// bytes over 1500-byte links: a request and a reply of 3 fragments each)
// through a gvs bridge in each fragment mode that ovs-ofctl(8) documents
// for set-frags, with flows that count by ICMP type and by ip_frag:
//   - normal (the default): a fragment's ICMP type reads as 0, the first
//     fragment's too, so only the ip_frag=yes flow sees them (6);
//   - nx-match: the first request fragment keeps its type 8;
//   - drop: fragments are dropped before the tables (the big ping fails,
//     no flow counts them) while a small ping still passes;
//   - back to normal, the big ping passes again (the cached decisions
//     were made again).
//
// Each ovs-ofctl is a connection of its own: the mode set by one is the
// bridge's, which get-frags over another reads. On the old code, which
// kept the mode per connection and applied none, normal counted the
// first fragment as type 8 (1 and 5, not 0 and 6) and get-frags read
// "normal" after set-frags nx-match.
func TestFragModesSwitchFragments(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ping")
	g := StartGvsd(t)
	const br = "gvfrbr"
	g.MustVsctl("add-br", br)
	addInternalPorts(lab, g, br,
		labPort{name: "gvfr1", ns: "gvfrns1", addrs: []string{"10.79.0.1/24"}},
		labPort{name: "gvfr2", ns: "gvfrns2", addrs: []string{"10.79.0.2/24"}})
	ofctl := func(args ...string) string { t.Helper(); return gvofMust(t, g, nil, args...) }
	// flows puts back the counting flows, with zero counters.
	flows := func() {
		ofctl("del-flows", br, "cookie=0x1f/-1")
		ofctl("add-flow", br, "cookie=0x1f,priority=300,icmp,icmp_type=8,actions=NORMAL")
		ofctl("add-flow", br, "cookie=0x1f,priority=200,ip,ip_frag=yes,actions=NORMAL")
	}
	countRE := regexp.MustCompile(`n_packets=(\d+)`)
	count := func(match string) int {
		t.Helper()
		out := ofctl("dump-flows", br, "cookie=0x1f/-1,"+match)
		m := countRE.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no flow %s:\n%s", match, out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// counts waits up to 3 s for the counters to reach type8 and frags.
	counts := func(mode string, type8, frags int) {
		t.Helper()
		var a, b int
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			a, b = count("icmp,icmp_type=8"), count("ip,ip_frag=yes")
			if a == type8 && b == frags || time.Now().After(deadline) {
				break
			}
		}
		if a != type8 || b != frags {
			t.Errorf("%s: the icmp_type=8 flow counted %d, the ip_frag=yes flow %d; want %d and %d", mode, a, b, type8, frags)
		}
	}
	ping := func(size string) error {
		_, err := lab.exec("gvfrns1", "ping", "-c", "1", "-W", "2", "-M", "dont", "-s", size, "10.79.0.2")
		return err
	}
	setFrags := func(mode string) {
		t.Helper()
		ofctl("set-frags", br, mode)
		if got := strings.TrimSpace(ofctl("get-frags", br)); got != mode {
			t.Fatalf("get-frags after set-frags %s on another connection: %q", mode, got)
		}
	}
	lab.pingOK("gvfrns1", "10.79.0.2") // ARP settled, addresses learned

	if got := strings.TrimSpace(ofctl("get-frags", br)); got != "normal" {
		t.Fatalf("get-frags of a new bridge: %q, want normal", got)
	}
	for i, step := range []struct {
		mode         string
		bigPasses    bool
		type8, frags int
	}{
		{"normal", true, 0, 6},
		{"nx-match", true, 1, 5},
		{"drop", false, 1, 0}, // the small ping's request counts
		{"normal", true, 0, 6},
	} {
		if i > 0 {
			setFrags(step.mode)
		}
		flows()
		if err := ping("3000"); (err == nil) != step.bigPasses {
			t.Errorf("%s: a fragmented ping: %v, want passing %v", step.mode, err, step.bigPasses)
		}
		if !step.bigPasses {
			if err := ping("100"); err != nil {
				t.Errorf("%s: a ping of whole packets failed: %v", step.mode, err)
			}
		}
		counts(step.mode, step.type8, step.frags)
	}
}
