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
)

// largeMessage is the size from which a request is read, decoded and run
// one at a time across the server: decoding takes many times a message's
// size, and many clients sending large messages at once must not add up.
const largeMessage = 64 << 10

// parkRefusal says why session s may not park one more transaction in db,
// or nil if it may (called with db.mu held, where a transaction is about to
// be parked). A dead session parks nothing: nobody would reply.
func (db *DB) parkRefusal(s *session) *Error {
	if s == nil {
		return nil
	}
	if s.dead.Load() {
		return errorf("canceled", "the client is disconnected")
	}
	n := 0
	for _, p := range db.waiting {
		if p.session == s {
			n++
		}
	}
	if n >= s.server.MaxParked {
		return errorf("resources exhausted", "too many parked wait transactions: the limit is %d per client (MaxParked)", s.server.MaxParked)
	}
	return nil
}
