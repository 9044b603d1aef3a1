package ovsdb

import (
	"slices"
	"sync/atomic"
)

// refusalReasons are the error tags a refused transaction is counted
// under (RFC 7047's and OVSDB's own); any other tag counts as "other", so
// the set of reasons, and a metrics label made of it, is fixed.
var refusalReasons = [...]string{
	"I/O error", "aborted", "canceled", "constraint violation", "domain error",
	"duplicate uuid", "duplicate uuid-name", "internal error", "not allowed",
	"not owner", "range error", "referential integrity violation",
	"resources exhausted", "syntax error", "timed out", "unknown column",
	"unknown database", "unknown operation", "unknown table", "other",
}

// TxnStats counts the transactions a database answered since it opened:
// those that changed it, those that succeeded without a change (reads,
// waits, no-op updates), and those refused, by reason (the error tag of
// the failed operation, one of RefusalReasons()).
type TxnStats struct {
	Committed uint64
	Unchanged uint64
	Refused   map[string]uint64 // every reason in RefusalReasons(), zero or not
}

// txnCounters are what TxnStats reads; each answered transaction adds one.
type txnCounters struct {
	committed, unchanged atomic.Uint64
	refused              [len(refusalReasons)]atomic.Uint64
}

// count tallies one transaction by its final results.
func (c *txnCounters) count(results []any, changed bool) {
	for _, r := range results {
		if m, ok := r.(map[string]any); ok && m["error"] != nil {
			tag, _ := m["error"].(string)
			c.refuse(tag)
			return
		}
	}
	if changed {
		c.committed.Add(1)
	} else {
		c.unchanged.Add(1)
	}
}

func (c *txnCounters) refuse(tag string) {
	c.refused[refusalIndex(tag)].Add(1)
}

// refusalIndex is tag's place in refusalReasons, or that of "other".
func refusalIndex(tag string) int {
	for i, r := range refusalReasons {
		if r == tag {
			return i
		}
	}
	return len(refusalReasons) - 1
}

// RefusalReasons lists every reason TxnStats counts refusals under.
func RefusalReasons() []string { return slices.Clone(refusalReasons[:]) }

// TxnStats returns the database's transaction counters; it takes no lock
// that a transaction holds, so a scrape never waits for a commit.
func (db *DB) TxnStats() TxnStats {
	s := TxnStats{Committed: db.txns.committed.Load(), Unchanged: db.txns.unchanged.Load(),
		Refused: make(map[string]uint64, len(refusalReasons))}
	for i, r := range refusalReasons {
		s.Refused[r] = db.txns.refused[i].Load()
	}
	return s
}

// ClientStats is what the server holds for its clients right now.
type ClientStats struct {
	Sessions int // connected clients
	Monitors int // monitors of all sessions
	Locks    int // lock names with an owner or a waiter
	Parked   int // transactions blocked in a "wait" with a timeout
}

// Clients counts the server's sessions, monitors, locks and parked
// transactions.
func (s *Server) Clients() ClientStats {
	return ClientStats(s.usage())
}
