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
package ovsdb
