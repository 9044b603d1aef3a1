package vswitchd

import (
	"encoding/json"
	"strings"
	"testing"

	"gvs/internal/flow"
	"gvs/internal/ofproto"
)

// TestOfprotoTrace checks ofproto/trace on br0's default NORMAL rule, with
// in_port by name, and its error replies.
func TestOfprotoTrace(t *testing.T) {
	sw, _, _ := flowSwitch(t)
	out, err := sw.ofprotoTrace([]string{"br0", "in_port=fl1,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,icmp,nw_src=10.0.0.1,nw_dst=10.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Flow: icmp,in_port=", "bridge(\"br0\")\n", " 0. priority 0\n", "    NORMAL\n",
		"-> no learned MAC for destination, flooding\n", "Final flow: unchanged\n", "Datapath actions: "} {
		if !strings.Contains(out, w) {
			t.Errorf("trace lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "Datapath actions: drop") {
		t.Errorf("NORMAL flood traced as a drop:\n%s", out)
	}
	for _, args := range [][]string{
		{"nobr", "in_port=1"},
		{"br0", "in_port=1,nosuchfield=3"},
		{"br0", "in_port=nosuchport"},
		{"br0", "icmp"},
		{"br0", "in_port=1", "-bogus"},
	} {
		if _, err := sw.ofprotoTrace(args); err == nil {
			t.Errorf("ofproto/trace %q succeeded", args)
		}
	}
}

// TestGvsTraceJSON checks gvs/trace: the trace as JSON with ports by
// name, and errors that mark the offending word.
func TestGvsTraceJSON(t *testing.T) {
	sw, _, _ := flowSwitch(t)
	out, err := sw.gvsTrace([]string{"br0", "in_port=fl1,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,icmp"})
	if err != nil {
		t.Fatal(err)
	}
	var r ofproto.TraceReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.InPort != "fl1" || len(r.Steps) < 3 || r.Steps[1].Kind != "rule" || len(r.Outputs) == 0 || r.Changed != "" {
		t.Fatalf("trace %+v", r)
	}
	_, err = sw.gvsTrace([]string{"br0", "in_port=fl1,tp_dst=80"})
	if err == nil || !strings.Contains(err.Error(), "\n  in_port=fl1,tp_dst=80\n              ^^^^^^^^^") {
		t.Fatalf("a flow without its prerequisite: %v", err)
	}
}

// s7Switch is flowSwitch with S7's five flows (fl1 the left, fl2 the
// right) in place of the NORMAL rule.
func s7Switch(t *testing.T) *Switch {
	t.Helper()
	sw, _, _ := flowSwitch(t)
	b := sw.state.bridges["br0"]
	b.Tables.Delete(ofproto.Selector{Table: ofproto.TableAll})
	for _, line := range []string{
		"table=0,priority=50,ct_state=-trk,tcp,in_port=1,actions=ct(table=0)",
		"table=0,priority=50,ct_state=+trk+new,tcp,in_port=1,actions=ct(commit),2",
		"table=0,priority=50,ct_state=-trk,tcp,in_port=2,actions=ct(table=0)",
		"table=0,priority=50,ct_state=+trk+est,tcp,in_port=2,actions=1",
		"table=0,priority=50,ct_state=+trk+est,tcp,in_port=1,actions=2",
	} {
		f, err := flow.ParseFlow(line, flow.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tables.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	return sw
}

// TestOfprotoTraceFollowsCT: a flow that hits ct(table=0) is traced
// through its recirculated pass too, with ct_state=trk|new assumed (or
// what --ct-next says), each pass with its Megaflow and datapath
// actions.
func TestOfprotoTraceFollowsCT(t *testing.T) {
	sw := s7Switch(t)
	const pkt = "in_port=1,tcp,nw_src=192.168.0.2,nw_dst=10.0.0.2,tp_src=1024,tp_dst=2048"
	out, err := sw.ofprotoTrace([]string{"br0", pkt})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		" 0. ct_state=-trk,tcp,in_port=1, priority 50\n    ct(table=0)\n",
		"Datapath actions: ct,recirc(0x",
		"\nrecirc(0x", ") - resume conntrack with default ct_state=trk|new (use --ct-next to customize)\n",
		"Flow: recirc_id=0x",
		"thaw: resuming from table 0",
		" 0. ct_state=+new+trk,tcp,in_port=1, priority 50\n    ct(commit)\n",
		"    output:2\n",
		"Megaflow: recirc_id=0x",
		"Datapath actions: ct(commit),",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("trace lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "ct_zone=0") {
		t.Errorf("the resumed Flow line prints zone 0 (OVS leaves it out):\n%s", out)
	}
	if n := strings.Count(out, "Megaflow: "); n != 2 {
		t.Errorf("%d Megaflow lines, want one per pass:\n%s", n, out)
	}
	out, err = sw.ofprotoTrace([]string{"--ct-next", "trk,est", "br0", pkt})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "resume conntrack with ct_state=est|trk\n") ||
		!strings.Contains(out, " 0. ct_state=+est+trk,tcp,in_port=1, priority 50\n    output:2\n") {
		t.Errorf("--ct-next trk,est:\n%s", out)
	}
	for _, bad := range [][]string{{"--ct-next", "trk,bogus", "br0", pkt}, {"--ct-next"}, {"--frobnicate", "br0", pkt}} {
		if _, err := sw.ofprotoTrace(bad); err == nil {
			t.Errorf("%q succeeded", bad)
		}
	}
}

// TestGvsTraceFollowsCT: gvs/trace reports the recirculated pass of
// S7's first flow, with the ct_state assumed, and takes ct-next=.
func TestGvsTraceFollowsCT(t *testing.T) {
	sw := s7Switch(t)
	const pkt = "in_port=fl1,tcp,nw_src=192.168.0.2,nw_dst=10.0.0.2,tp_src=1024,tp_dst=2048"
	get := func(args ...string) ofproto.TraceReport {
		t.Helper()
		out, err := sw.gvsTrace(append([]string{"br0", pkt}, args...))
		if err != nil {
			t.Fatal(err)
		}
		var r ofproto.TraceReport
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r
	}
	r := get()
	if len(r.Outputs) != 0 || len(r.Resumed) != 1 {
		t.Fatalf("first pass %+v", r)
	}
	p := r.Resumed[0]
	if p.CtState != "new|trk" || p.Recirc == "" || len(p.Outputs) != 1 || p.Outputs[0] != "fl2" ||
		!strings.HasPrefix(p.DatapathActions, "ct(commit),") {
		t.Errorf("resumed pass %+v", p)
	}
	if p := get("ct-next=trk,est").Resumed[0]; p.CtState != "est|trk" || len(p.Outputs) != 1 || p.DatapathActions != "2" && !strings.HasSuffix(p.DatapathActions, "2") {
		t.Errorf("ct-next=trk,est: %+v", p)
	}
	if _, err := sw.gvsTrace([]string{"br0", pkt, "ct-next=bogus"}); err == nil {
		t.Error("ct-next=bogus accepted")
	}
}
