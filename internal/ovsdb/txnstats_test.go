package ovsdb

import (
	"slices"
	"testing"
)

// TestTxnStatsCountsEveryOutcome: each answered transaction adds one to
// committed, unchanged or the reason it was refused for, including a
// commit refused by a failing disk.
func TestTxnStatsCountsEveryOutcome(t *testing.T) {
	db := openTestDB(t, tempDBPath(t))
	insertRoot(t, db, "a", "")
	mustTx(t, db, ops(t, `[{"op":"select","table":"Root","where":[]}]`))
	db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"level":101}}]`))
	db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"b"}},{"op":"abort"}]`))
	db.Transact(ops(t, `[{"op":"select","table":"Nowhere","where":[]}]`))
	setSync(db, failingSync)
	ioFailure(t, insertTx(t, db, "c", "x"))
	setSync(db, fdatasync)

	s := db.TxnStats()
	if s.Committed != 1 || s.Unchanged != 1 {
		t.Errorf("committed %d unchanged %d, want 1 and 1", s.Committed, s.Unchanged)
	}
	want := map[string]uint64{"constraint violation": 1, "aborted": 1, "unknown table": 1, "I/O error": 1}
	for _, r := range RefusalReasons() {
		if s.Refused[r] != want[r] {
			t.Errorf("refused for %q: %d, want %d", r, s.Refused[r], want[r])
		}
	}
	if len(s.Refused) != len(RefusalReasons()) {
		t.Errorf("%d reasons reported, want all %d", len(s.Refused), len(RefusalReasons()))
	}
}

// TestTxnStatsReasonsAreBounded: a tag that is not a known reason counts
// as "other", so no error text can add a reason.
func TestTxnStatsReasonsAreBounded(t *testing.T) {
	var c txnCounters
	c.count([]any{map[string]any{"error": "made up by a client"}}, false)
	c.count([]any{map[string]any{"error": 42}}, false)
	other := refusalIndex("other")
	if got := c.refused[other].Load(); got != 2 {
		t.Errorf("unknown tags counted %d times as other, want 2", got)
	}
	if last := RefusalReasons()[len(RefusalReasons())-1]; last != "other" {
		t.Errorf("last reason %q, want other", last)
	}
	r := RefusalReasons()
	r[0] = "changed"
	if slices.Contains(RefusalReasons(), "changed") {
		t.Error("RefusalReasons returns the package's own array")
	}
}

// TestClientsCountsSessionsAndMonitors: the exported client counts follow
// what the server holds.
func TestClientsCountsSessionsAndMonitors(t *testing.T) {
	db := newTestDB(t)
	srv, sock := testServer(t, db, nil)
	c := dial(t, sock)
	c.result("monitor", "Test", "m", map[string]any{"Root": map[string]any{"columns": []any{"name"}}})
	got := srv.Clients()
	if got.Sessions != 1 || got.Monitors != 1 || got.Locks != 0 || got.Parked != 0 {
		t.Errorf("Clients() = %+v, want one session with one monitor", got)
	}
}
