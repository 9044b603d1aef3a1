package vswitchd

import (
	"encoding/json"
	"strings"
	"testing"

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
