package ovsdb

import "time"

// Default limits of a Server (see the package documentation).
const (
	// DefaultMaxMessage is far above the largest transaction ovs-vsctl
	// sends (a few hundred bytes per port) while bounding what one
	// request can cost to decode.
	DefaultMaxMessage   = 16 << 20
	DefaultSendQueue    = 10000
	DefaultSendBudget   = 16 << 20
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxSessions  = 1024
	DefaultMaxMonitors  = 256
	DefaultMaxLocks     = 256
	// DefaultMaxParked is the number of "wait" transactions one client
	// may have parked at once.
	DefaultMaxParked = 64
	// DefaultMaxReply bounds the results of one transaction: a "select"
	// of a few dozen bytes can return a whole table, so a request far
	// below MaxMessage could otherwise make a reply of gigabytes.
	DefaultMaxReply = 64 << 20
	// DefaultMaxParkedBytes bounds the requests that the transactions
	// parked on one database hold, all clients together: each is kept
	// decoded and rerun on every commit to a table it waits on.
	DefaultMaxParkedBytes = 16 << 20
	// DefaultMaxMonitorBytes bounds the requests that one client's
	// monitors hold (their conditions): as much as one message.
	DefaultMaxMonitorBytes = DefaultMaxMessage
	// DefaultMaxSize bounds a database's contents, as encoded: far above
	// an Open_vSwitch database of thousands of ports (a few MiB), while a
	// client that grows it by MaxMessage per transaction is stopped.
	DefaultMaxSize = 256 << 20
	// DefaultMaxCompares bounds the condition checks of one transaction
	// (conditions, weighted by their values' sizes, times rows scanned):
	// they run under the database's lock, a few tenths of a second at most.
	DefaultMaxCompares = 10_000_000
	// DefaultMaxMonitorConditions bounds the conditions of all the
	// monitors of a database together: every commit checks each row it
	// changes against them, under the database's lock.
	DefaultMaxMonitorConditions = 100_000
)

// largeMessage is the size from which a request is read, decoded and run
// one at a time across the server: decoding takes many times a message's
// size, and many clients sending large messages at once must not add up.
const largeMessage = 64 << 10

// parkRefusal says why session s may not park one more transaction, of a
// request of size bytes, in db, or nil if it may (called with db.mu held,
// where a transaction is about to be parked). A dead session parks
// nothing: nobody would reply.
func (db *DB) parkRefusal(s *session, size int) *Error {
	if s == nil {
		return nil
	}
	if s.dead.Load() {
		return errorf("canceled", "the client is disconnected")
	}
	n, bytes := 0, size
	for _, p := range db.waiting {
		if p.session == s {
			n++
		}
		bytes += p.size
	}
	if n >= s.server.MaxParked {
		return errorf("resources exhausted", "too many parked wait transactions: the limit is %d per client (MaxParked)", s.server.MaxParked)
	}
	if bytes > s.server.MaxParkedBytes {
		return errorf("resources exhausted", "parked wait transactions would hold %d bytes of requests: the limit is %d for all clients of database %s (MaxParkedBytes)",
			bytes, s.server.MaxParkedBytes, db.Name())
	}
	return nil
}

// rowSize is about the length of r's JSON form (see datumSize).
func rowSize(r *Row) int64 {
	if r == nil {
		return 0
	}
	n := 64 // _uuid, _version and braces
	for _, d := range r.Cols {
		n += 8 + datumSize(d)
	}
	return int64(n)
}

// sizeDelta is how much the transaction's changes grow the database.
func (tx *txn) sizeDelta() int64 {
	var d int64
	for _, u := range tx.order {
		c := tx.changes[u]
		d += rowSize(c.new) - rowSize(c.old)
	}
	return d
}

// sizeRefusal says why a client's transaction that grows the database by
// grow bytes may not commit, or nil. Only clients are refused: gvsd's own
// writes (status, statistics) follow the switch's state.
func (tx *txn) sizeRefusal(grow int64) *Error {
	db := tx.db
	if tx.session == nil || grow <= 0 || db.size+grow <= db.MaxSize {
		return nil
	}
	return errorf("resources exhausted", "the database would hold about %d bytes, over its limit of %d (MaxSize): delete rows or values first",
		db.size+grow, db.MaxSize)
}

// chargeCompares counts the checks of conds over n rows against the
// transaction's limit (none for in-process callers).
func (tx *txn) chargeCompares(conds conditions, n int) *Error {
	if tx.maxCompares <= 0 || len(conds) == 0 {
		return nil
	}
	w := 0
	for i := range conds {
		w += 1 + conds[i].arg.Len()
	}
	tx.compares += int64(w) * int64(n)
	if tx.compares > tx.maxCompares {
		return errorf("resources exhausted", "the conditions of this transaction would take %d comparisons, over the limit of %d (MaxCompares): use fewer conditions, or _uuid",
			tx.compares, tx.maxCompares)
	}
	return nil
}
