package ofproto

import (
	"strings"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/flow"
)

// TestTraceResubmitChainAndMirror traces an ICMP packet through
// table 0 -> resubmit(,1) -> NORMAL on a bridge with a mirror to port 4,
// and checks that the trace names each rule, its actions, NORMAL's
// decision and the mirror, and that its datapath actions are those the
// packet path would execute.
func TestTraceResubmitChainAndMirror(t *testing.T) {
	b := ofBridge(t)
	cfg := *b.Config()
	cfg.Ports[4].MirrorOut = true
	cfg.Mirrors = []*Mirror{{Name: "m0", All: true, OutPort: cfg.Ports[4], OutVLAN: -1, Stats: &MirrorStats{}}}
	b.SetConfig(&cfg)
	addFlow(t, b, "table=0,priority=10,in_port=1,icmp,actions=resubmit(,1)")
	addFlow(t, b, "table=1,priority=20,icmp,actions=NORMAL")

	m, err := flow.ParseMatch("in_port=1,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,icmp,nw_src=10.0.0.1,nw_dst=10.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	var tr TextTracer
	x, _, err := b.Trace(m.Value(), &tr)
	if err != nil {
		t.Fatal(err)
	}
	got := tr.String()
	want := []string{
		"bridge(\"br\")\n",
		" 0. icmp,in_port=1, priority 10\n",
		"    resubmit(,1)\n",
		"     1. icmp, priority 20\n",
		"        NORMAL\n",
		"         -> no learned MAC for destination, flooding\n",
		"    mirror m0\n",
	}
	pos := 0
	for _, w := range want {
		i := strings.Index(got[pos:], w)
		if i < 0 {
			t.Fatalf("trace lacks %q (in order):\n%s", w, got)
		}
		pos += i + len(w)
	}
	// Flood to 2, 3 and LOCAL (5); port 4 is the mirror's, which gets one copy.
	if acts := datapath.FormatActions(x.Actions, nil); acts != "2,3,5,4" {
		t.Errorf("datapath actions %s, want 2,3,5,4\n%s", acts, got)
	}
	if n := len(b.MACs.Entries()); n != 0 {
		t.Errorf("tracing learned %d MACs", n)
	}

	// Once the destination is learned, NORMAL says where it goes.
	b.MACs.Learn([6]byte{2, 0, 0, 0, 0, 2}, 0, 3)
	tr = TextTracer{}
	if x, _, err = b.Trace(m.Value(), &tr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tr.String(), "-> forwarding to learned port p3\n") {
		t.Errorf("no learned port in the trace:\n%s", tr.String())
	}
	if acts := datapath.FormatActions(x.Actions, nil); acts != "3,4" {
		t.Errorf("datapath actions %s, want 3,4", acts)
	}

	k := m.Value()
	k.InPort = 99
	if _, _, err := b.Trace(k, &tr); err == nil {
		t.Error("tracing from a port the bridge lacks gave no error")
	}
}
