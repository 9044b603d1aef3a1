package ofproto

import (
	"errors"
	"reflect"
	"testing"
)

// TestCommitAllOrNothing: a bundle whose last change fails leaves the
// tables, their counts and timeouts exactly as they were; one that
// succeeds applies every change in order and returns what it deleted.
func TestCommitAllOrNothing(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb, "table=0,priority=10,in_port=1,actions=output:2",
		"table=0,priority=20,ip,idle_timeout=30,actions=output:3",
		"table=1,priority=5,actions=drop")
	before := dumpText(tb, Selector{Table: TableAll})
	nflows, nactions, ntimed := tb.nflows, tb.nactions, len(tb.timed)

	// The last change overlaps the flow the one before it adds.
	overlap := mustFlow(t, "table=1,priority=7,check_overlap,tcp,actions=drop")
	ops := []Op{
		{Add: mustFlow(t, "table=0,priority=10,in_port=1,actions=output:3")}, // replaces
		{Add: mustFlow(t, "table=2,priority=1,actions=drop")},                // new
		{Modify: &Modify{Selector: Selector{Table: TableAll, Match: mustMatch(t, "ip")}, Actions: mustFlow(t, "actions=drop").Actions}},
		{Delete: &Selector{Table: 1}},
		{Add: mustFlow(t, "table=1,priority=7,idle_timeout=9,actions=drop")},
		{Add: overlap},
	}
	_, failed, err := tb.Commit(ops)
	if !errors.Is(err, ErrOverlap) || failed != 5 {
		t.Fatalf("commit: failed at %d with %v, want 5 and ErrOverlap", failed, err)
	}
	if got := dumpText(tb, Selector{Table: TableAll}); !reflect.DeepEqual(got, before) {
		t.Fatalf("after a failed commit:\n%q\nwant\n%q", got, before)
	}
	if tb.nflows != nflows || tb.nactions != nactions || len(tb.timed) != ntimed {
		t.Fatalf("counts after a failed commit: %d flows %d actions %d timed, want %d %d %d",
			tb.nflows, tb.nactions, len(tb.timed), nflows, nactions, ntimed)
	}

	removed, _, err := tb.Commit(ops[:5])
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0].Rule.Flow().Table != 1 {
		t.Fatalf("removed %+v, want the flow of table 1", removed)
	}
	checkDump(t, tb, Selector{Table: TableAll},
		"idle_timeout=30, priority=20,ip actions=drop",
		"priority=10,in_port=1 actions=output:3",
		"table=1, idle_timeout=9, priority=7 actions=drop",
		"table=2, priority=1 actions=drop")
}
