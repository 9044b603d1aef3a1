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
