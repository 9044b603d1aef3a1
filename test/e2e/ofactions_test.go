package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestOpenFlowActionsForward: flows added with the real ovs-ofctl decide
// where packets go (docs/GUIDE.md, "ovs-ofctl"): with the default NORMAL
// flow deleted nothing passes; output:PORT flows carry a ping; an ICMP
// drop rule of higher priority stops it while ARP still passes; a
// resubmit chain reaches NORMAL; mod_dl_dst rewrites what the other host
// receives.
func TestOpenFlowActionsForward(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ping", "tcpdump")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "ofab")
	addInternalPorts(lab, g, "ofab",
		labPort{name: "ofa1", ns: "ofans1", addrs: []string{"10.78.0.1/24"}},
		labPort{name: "ofa2", ns: "ofans2", addrs: []string{"10.78.0.2/24"}})
	p1 := strings.TrimSpace(g.MustVsctl("get", "interface", "ofa1", "ofport"))
	p2 := strings.TrimSpace(g.MustVsctl("get", "interface", "ofa2", "ofport"))
	ofctl := func(args ...string) {
		t.Helper()
		if out, errOut, err := g.Run("ovs-ofctl", args...); err != nil {
			t.Fatalf("ovs-ofctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
	}
	lab.pingOK("ofans1", "10.78.0.2") // the default priority=0 actions=NORMAL

	ofctl("del-flows", "ofab")
	lab.pingFails("ofans1", "10.78.0.2")

	ofctl("add-flow", "ofab", "in_port="+p1+",actions=output:"+p2)
	ofctl("add-flow", "ofab", "in_port="+p2+",actions=output:"+p1)
	lab.pingOK("ofans1", "10.78.0.2")

	// Above the output flows, which have add-flow's default priority 32768.
	ofctl("add-flow", "ofab", "priority=40000,icmp,actions=drop")
	lab.mustExec("ofans1", "ip", "neigh", "flush", "all")
	lab.pingFails("ofans1", "10.78.0.2")
	if neigh := lab.mustExec("ofans1", "ip", "neigh", "show", "10.78.0.2"); !strings.Contains(neigh, "lladdr") {
		t.Fatalf("ARP did not pass the ICMP drop rule: %q", neigh)
	}
	if out, _, _ := g.Run("ovs-ofctl", "dump-flows", "ofab", "icmp"); !strings.Contains(out, "n_packets=") || strings.Contains(out, "n_packets=0,") {
		t.Fatalf("the ICMP drop rule counted nothing:\n%s", out)
	}

	ofctl("del-flows", "ofab")
	ofctl("add-flow", "ofab", "table=0,actions=resubmit(,1)")
	ofctl("add-flow", "ofab", "table=1,actions=NORMAL")
	lab.pingOK("ofans1", "10.78.0.2")

	capture := lab.capture("ofans2", "ofa2", "icmp")
	ofctl("add-flow", "ofab", "priority=40000,icmp,in_port="+p1+",actions=mod_dl_dst:02:00:00:00:00:99,output:"+p2)
	_, _ = lab.exec("ofans1", "ping", "-c", "2", "-i", "0.3", "-W", "1", "10.78.0.2")
	if !capture.waitFor(5*time.Second, "02:00:00:00:00:99") {
		t.Fatalf("no frame to the rewritten address reached ofa2:\n%s", strings.Join(capture.stop(), "\n"))
	}
	capture.stop()
}
