package ovsdb

import (
	"sync/atomic"
	"testing"
	"time"
)

// A bug hit while serving one client (here a commit hook that panics, run
// on that client's session) closes that session only: the panic is
// counted and other clients keep being served.
func TestSessionPanicClosesOnlyThatSession(t *testing.T) {
	db := newTestDB(t)
	var armed atomic.Bool
	db.OnCommit(func(*Commit) {
		if armed.CompareAndSwap(true, false) {
			panic("bug in a commit hook")
		}
	})
	_, path := testServer(t, db, nil)
	victim, other := dial(t, path), dial(t, path)
	other.result("echo")
	before := sessionPanics.Total()
	armed.Store(true)
	victim.transact(`[{"op":"insert","table":"Root","row":{"name":"a"}}]`)
	victim.waitClosed()
	// The session is torn down (its connection closed) before the
	// recovery counts the panic, so the count may lag the close a little.
	deadline := time.Now().Add(5 * time.Second)
	for sessionPanics.Total() == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := sessionPanics.Total() - before; got != 1 {
		t.Fatalf("ovsdb_session_panic rose by %d, want 1", got)
	}
	other.mustTransact(`[{"op":"insert","table":"Root","row":{"name":"b"}}]`)
	dial(t, path).result("echo")
}
