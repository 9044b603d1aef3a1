// Package ovsdb is gvs's embedded configuration database: a generic,
// schema-driven OVSDB server (RFC 7047 with the extensions that Open
// vSwitch clients use: monitor_cond, monitor_cond_since, update2/update3,
// the _Server database) with transactions, referential integrity, garbage
// collection, unique indexes and a durable journal.
//
// It is written here rather than taken from a library because the Go OVSDB
// servers available fail with the real ovs-vsctl (array-form monitor
// requests, the comment operation, notifications that block replies,
// order-sensitive set comparison in wait, wrong deletion encoding).
//
// Data lives in memory as immutable rows; a transaction builds an overlay
// of changed rows, checks integrity, appends one record to the journal and
// only then swaps the rows in under one lock. The record's fsync is shared
// by concurrent transactions (group commit) before any of them is
// answered. A write that fails refuses the transaction; a sync that fails
// rolls back every commit not on disk yet, unless a rewrite of the whole
// file saves them (transact.go, syncFailed).
//
// # Limits
//
// Whatever a client sends or fails to read is bounded, by exported fields
// of Server set to the Default constants by NewServer:
//
//   - MaxMessage: a larger request gets a "resources exhausted" error and
//     the connection is closed; the server reads no further into it.
//     Requests over 64 KiB are read, decoded and run one at a time across
//     the server (decoding takes many times a message's size) and must
//     arrive within WriteTimeout.
//   - SendQueue, SendBudget: a client with that many messages or bytes
//     waiting to be sent is disconnected (logged), so a client that does
//     not read cannot grow the heap. Monitors with the same requests share
//     one encoding of each commit's update.
//   - WriteTimeout: a write to a client blocked that long disconnects it.
//   - MaxSessions: a client over it gets an error and is hung up on.
//   - MaxMonitors, MaxLocks: per client; a monitor, lock or steal request
//     over them gets a JSON-RPC error, and the connection stays usable.
//   - MaxMonitorBytes: the requests a client's monitors hold (each keeps
//     its conditions); a monitor or monitor_cond_change request over it
//     gets a JSON-RPC error, as over MaxMonitors.
//   - MaxParked: "wait" transactions parked per client; over it, the wait
//     fails with a "resources exhausted" error in the transaction's result.
//   - MaxParkedBytes: the requests of the transactions parked on one
//     database, all clients together (each is kept and rerun on commits);
//     over it, the wait fails as over MaxParked.
//   - MaxReply: a transaction whose "select" results pass it (counted as
//     they would be encoded, before they are built) fails with a
//     "resources exhausted" error; a small request cannot make a huge reply.
//   - MaxCompares: a transaction whose conditions, times the rows they
//     are checked against, pass it fails likewise, before it scans: the
//     checks run under the database's lock.
//
// And per database (fields of DB, set by NewDB): MaxSize, the contents a
// client's transaction may grow it to, and MaxMonitorConditions, the
// conditions of all its monitors together, which every commit checks the
// rows it changes against; over either, the transaction or monitor
// request gets a "resources exhausted" error.
//
// Every error text names the limit (as its Server field).
//
// A session is torn down only by the goroutine that reads its requests;
// other goroutines that give up on a client mark it dead and close its
// connection, and a dead session executes and registers nothing more.
package ovsdb
