package ofproto

import (
	"bytes"
	"testing"

	"gvs/internal/datapath"
)

// pinRecorder is a PacketInSink that keeps what it gets.
type pinRecorder struct {
	pis    []PacketIn
	frames [][]byte
}

func (r *pinRecorder) PacketIn(pi *PacketIn, frame []byte) {
	r.pis = append(r.pis, *pi)
	r.frames = append(r.frames, append([]byte(nil), frame...))
}

// upcalls runs the ActUserspace actions of x on frame, as the datapath
// does, and returns how many there were.
func upcalls(x *datapath.Xlate, frame []byte) int {
	n := 0
	for _, a := range x.Actions {
		if a.Kind == datapath.ActUserspace {
			a.Upcall.Upcall(frame)
			n++
		}
	}
	return n
}

// TestPacketInFromControllerAction checks that a controller action
// becomes a datapath upcall that hands the sink the packet with the
// rule's table and cookie, the OpenFlow in_port, the action's max_len,
// and reason action, or an explicit miss for a table-miss rule.
func TestPacketInFromControllerAction(t *testing.T) {
	b := ofBridge(t)
	rec := &pinRecorder{}
	b.SetPacketInSink(rec)
	addFlow(t, b, "cookie=0x42,actions=resubmit(,3)")
	addFlow(t, b, "table=3,priority=7,actions=controller:99")
	s := frameSpec{in: 2, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}
	_, x := translateSpec(b, s)
	frame := s.bytes()
	if n := upcalls(x, frame); n != 1 {
		t.Fatalf("%d upcalls in %s, want 1", n, datapath.FormatActions(x.Actions, nil))
	}
	got := rec.pis[0]
	want := PacketIn{Reason: ReasonAction, MaxLen: 99, Table: 3, InPort: 2}
	if got != want {
		t.Fatalf("packet-in %+v, want %+v", got, want)
	}
	if !bytes.Equal(rec.frames[0], frame) {
		t.Fatal("the packet-in does not carry the frame")
	}

	// A table-miss rule (priority 0, matching everything) is an
	// explicit miss, which OpenFlow 1.3 reports as no_match.
	b2 := ofBridge(t)
	b2.SetPacketInSink(rec)
	addFlow(t, b2, "priority=0,cookie=0x9,actions=CONTROLLER:128")
	_, x = translateSpec(b2, s)
	upcalls(x, frame)
	if got := rec.pis[1]; !got.ExplicitMiss || got.Reason != ReasonAction || got.Cookie != 9 {
		t.Fatalf("table-miss rule's packet-in %+v", got)
	}
}

// TestPacketInOnTableMiss checks OVS's implicit table miss: nothing when
// no connection wants misses (a plain drop, cached as such), a packet-in
// with reason no_match from table 0 and after goto_table when one does,
// and none after a resubmit, which continues with the next action.
func TestPacketInOnTableMiss(t *testing.T) {
	b := ofBridge(t)
	rec := &pinRecorder{}
	b.SetPacketInSink(rec)
	s := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}
	if _, x := translateSpec(b, s); datapath.FormatActions(x.Actions, nil) != "drop" {
		t.Fatalf("a miss nobody wants: %s, want drop", datapath.FormatActions(x.Actions, nil))
	}
	gen := datapath.Generation()
	b.SetMissPacketIn(true)
	if datapath.Generation() == gen {
		t.Fatal("wanting misses did not make cached flows stale")
	}
	_, x := translateSpec(b, s)
	if n := upcalls(x, s.bytes()); n != 1 || !rec.pis[0].Miss || rec.pis[0].Reason != ReasonNoMatch || rec.pis[0].Table != 0 {
		t.Fatalf("table 0 miss: %d upcalls, %+v", n, rec.pis)
	}
	addFlow(t, b, "actions=resubmit(,1),goto_table:2")
	_, x = translateSpec(b, s)
	if n := upcalls(x, s.bytes()); n != 1 || rec.pis[1].Table != 2 {
		t.Fatalf("resubmit and goto_table misses: %d upcalls (want the goto_table's only), %+v", n, rec.pis)
	}
}

// TestFailOpenSwitchesNormally checks that fail-open switches with NORMAL
// whatever the tables say.
func TestFailOpenSwitchesNormally(t *testing.T) {
	b := ofBridge(t)
	s := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}
	b.SetFailOpen(true)
	if _, x := translateSpec(b, s); datapath.FormatActions(x.Actions, nil) != "2,3,4,5" {
		t.Fatalf("fail-open: %s, want NORMAL's flood", datapath.FormatActions(x.Actions, nil))
	}
	b.SetFailOpen(false)
	if _, x := translateSpec(b, s); datapath.FormatActions(x.Actions, nil) != "drop" {
		t.Fatalf("after fail-open: %s, want drop (no flows)", datapath.FormatActions(x.Actions, nil))
	}
}
