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

// TestOfprotoTraceS7Recirc traces S7's first packet with the real
// ovs-appctl: the ct(table=0) pass, then the recirculated pass with
// ct_state=trk|new assumed (commit and output to veth_r0), each with its
// Megaflow; --ct-next trk,est takes the established rule instead. gvs
// trace tells the same in words.
func TestOfprotoTraceS7Recirc(t *testing.T) {
	_, g := gvofS7Setup(t)
	for _, f := range gvofS7Flows {
		gvofMust(t, g, nil, "add-flow", "br0", f)
	}
	const pkt = "in_port=veth_l0,tcp,nw_src=192.168.0.2,nw_dst=10.0.0.2,tp_src=1024,tp_dst=2048"
	out := appctl(t, g, "ofproto/trace", "br0", pkt)
	for _, re := range []string{
		`(?m)^ 0\. ct_state=-trk,tcp,in_port=1, priority 50\n    ct\(table=0\)\n`,
		`(?m)^Datapath actions: ct,recirc\(0x[0-9a-f]+\)$`,
		`(?m)^recirc\(0x[0-9a-f]+\) - resume conntrack with default ct_state=trk\|new \(use --ct-next to customize\)$`,
		`(?m)^Flow: recirc_id=0x[0-9a-f]+,ct_state=new\|trk,`,
		`(?m)^ 0\. ct_state=\+new\+trk,tcp,in_port=1, priority 50\n    ct\(commit\)\n`,
		`(?m)^Megaflow: recirc_id=0x[0-9a-f]+,ct_state=\+new\+trk,`,
		`(?m)^Datapath actions: ct\(commit\),[0-9]+$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("ofproto/trace lacks /%s/:\n%s", re, out)
		}
	}
	if n := strings.Count(out, "\nMegaflow: "); n != 2 {
		t.Errorf("%d Megaflow lines, want 2:\n%s", n, out)
	}
	out = appctl(t, g, "ofproto/trace", "--ct-next", "trk,est", "br0", pkt)
	if !strings.Contains(out, "resume conntrack with ct_state=est|trk\n") ||
		!regexp.MustCompile(`(?m)^ 0\. ct_state=\+est\+trk,tcp,in_port=1, priority 50\n    output:2\n`).MatchString(out) {
		t.Errorf("--ct-next trk,est:\n%s", out)
	}
	if o, e, err := g.Run("ovs-appctl", "ofproto/trace", "--ct-next", "trk,bogus", "br0", pkt); err == nil || !strings.Contains(e, "bogus") {
		t.Errorf("--ct-next trk,bogus: %v\n%s%s", err, o, e)
	}
	o, e, err := g.Run(gvsBin, "trace", "br0", pkt)
	if err != nil || !strings.Contains(o, "assumed to be ct_state new|trk") || !strings.Contains(o, "It leaves by veth_r0.") {
		t.Errorf("gvs trace: %v\n%s%s", err, o, e)
	}
}
