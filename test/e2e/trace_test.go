package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// TestOfprotoTrace explains a packet through a resubmit chain and a
// mirror with the real ovs-ofctl, ovs-vsctl and ovs-appctl: table 0
// resubmits to table 1, whose rule is NORMAL, and a mirror of every
// port copies to port 4. The trace names both rules, the NORMAL flood,
// the mirror, and datapath actions that flood to ports 2 and 3 and copy
// to 4; bad requests get appctl errors.
func TestOfprotoTrace(t *testing.T) {
	g := gvofBridge(t, "gvtr", 4)
	gvofMust(t, g, nil, "del-flows", "gvtr")
	gvofMust(t, g, nil, "add-flow", "gvtr", "table=0,priority=10,in_port=1,icmp,actions=resubmit(,1)")
	gvofMust(t, g, nil, "add-flow", "gvtr", "table=1,priority=20,icmp,actions=NORMAL")
	g.MustVsctl("--", "--id=@p4", "get", "port", "gvtrp4",
		"--", "--id=@m", "create", "mirror", "name=gvtrm", "select_all=true", "output_port=@p4",
		"--", "set", "bridge", "gvtr", "mirrors=@m")

	flowText := "in_port=gvtrp1,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,icmp,nw_src=10.0.0.1,nw_dst=10.0.0.2"
	out := appctl(t, g, "ofproto/trace", "gvtr", flowText)
	for _, w := range []string{
		"Flow: icmp,in_port=1,dl_src=02:00:00:00:00:01",
		"bridge(\"gvtr\")\n",
		" 0. icmp,in_port=1, priority 10\n",
		"    resubmit(,1)\n",
		"     1. icmp, priority 20\n",
		"        NORMAL\n",
		"-> no learned MAC for destination, flooding\n",
		"    mirror gvtrm\n",
		"Final flow: unchanged\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("ofproto/trace lacks %q:\n%s", w, out)
		}
	}
	// Datapath port numbers: the flood (ports 1-3 and the bridge's own
	// port, less the input) and then the mirror's copy.
	dp := regexp.MustCompile(`(?m)^Datapath actions: ([0-9]+,){3}[0-9]+$`)
	if !dp.MatchString(out) {
		t.Errorf("ofproto/trace: no flood and mirror copy in the datapath actions:\n%s", out)
	}
	// The same by port number, and with -generate.
	if o := appctl(t, g, "ofproto/trace", "gvtr", strings.Replace(flowText, "gvtrp1", "1", 1), "-generate"); !strings.Contains(o, "mirror gvtrm") {
		t.Errorf("ofproto/trace with in_port=1 -generate:\n%s", o)
	}
	for _, args := range [][]string{
		{"gvtrnone", flowText},
		{"gvtr", "in_port=1,nosuchfield=1"},
		{"gvtr", "in_port=gvtrnope"},
	} {
		if _, errOut, err := g.Run("ovs-appctl", append([]string{"ofproto/trace"}, args...)...); err == nil || errOut == "" {
			t.Errorf("ofproto/trace %q: err=%v stderr=%q", args, err, errOut)
		}
	}
}
