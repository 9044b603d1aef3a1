package ovsdb

import (
	"encoding/json"
	"fmt"
	"time"
)

// pendingTxn is a transaction blocked in a "wait" operation with a
// timeout, retried after each commit to a table it waits on until it can
// proceed or times out.
type pendingTxn struct {
	ops     []any
	session *session
	id      any // the request id, for "cancel"
	reply   func(results []any)
	timer   *time.Timer
	done    bool
	tables  map[string]bool // what its wait operations look at
	size    int             // of its request, in bytes
}

// Transact executes a transaction's operations (the "params" of a transact
// request without the database name) and returns the result array. It is
// the entry point for in-process clients too.
func (db *DB) Transact(ops []any) []any {
	results, _ := db.transact(ops, nil, nil, 0, nil)
	return results
}

// outcome is a transaction that ran: its results, and if it changed the
// database, its commit and journal record, which its reply waits for.
type outcome struct {
	results []any
	cm      *Commit
	seq     uint64
	reply   func([]any) // nil for the transaction that the caller replies to
}

// transact runs ops. If a wait operation blocks with a timeout, the
// transaction is parked and reply is called later; transact then returns
// parked == true and no results. size is that of the request, which a
// parked transaction holds.
func (db *DB) transact(ops []any, s *session, id any, size int, reply func([]any)) (results []any, parked bool) {
	db.mu.Lock()
	own, blocked := db.run(ops, s)
	if blocked != nil && reply != nil {
		if err := db.parkRefusal(s, size); err != nil {
			own.results[len(own.results)-1] = err.JSON() // the wait that would park
		} else {
			db.park(&pendingTxn{ops: ops, session: s, id: id, reply: reply, tables: waitTables(ops), size: size}, blocked)
			db.mu.Unlock()
			return nil, true
		}
	}
	retried := db.retryWaiting(own.cm)
	hooks := db.hooks
	db.mu.Unlock()
	return db.afterCommit(own, hooks, retried), false
}

// run executes ops and, if they all succeed, writes them to the journal
// and then commits them to memory and to the monitors. It returns the wait
// operation that blocked, if one did and may be retried.
func (db *DB) run(ops []any, s *session) (outcome, map[string]any) {
	tx := newTxn(db, s)
	results, ok := tx.execute(ops)
	if !ok {
		if last := results[len(results)-1]; isWouldBlock(last) {
			if op := ops[len(results)-1].(map[string]any); waitTimeout(op) != 0 {
				return outcome{results: results}, op
			}
		}
		return outcome{results: results}, nil
	}
	if err := tx.prepare(); err != nil {
		return outcome{results: append(results, err.JSON())}, nil
	}
	grow := tx.sizeDelta()
	if err := tx.sizeRefusal(grow); err != nil {
		return outcome{results: append(results, err.JSON())}, nil
	}
	cm := tx.commit()
	if len(cm.Changes) == 0 {
		return outcome{results: results}, nil
	}
	// The record is written before the change is visible, so a write
	// that fails leaves nothing to undo.
	seq, err := db.record(cm)
	if err != nil {
		return outcome{results: append(results, err.JSON())}, nil
	}
	tx.apply()
	db.size += grow
	db.lastTxn = cm.TxnID
	db.notifyMonitors(cm)
	return outcome{results: results, cm: cm, seq: seq}, nil
}

func isWouldBlock(v any) bool {
	m, ok := v.(map[string]any)
	return ok && m["error"] == errWouldBlock.Tag && m["details"] == errWouldBlock.Details
}

// maxWaitTimeout is the longest timeout a parked transaction gets a timer
// for; a longer one waits until a commit releases it or its client leaves,
// as one with no timeout does.
const maxWaitTimeout = 7 * 24 * time.Hour

// waitTimeout returns a wait operation's timeout in ms, -1 for none (or
// one beyond maxWaitTimeout).
func waitTimeout(op map[string]any) int64 {
	n, ok := nativeNumber(op["timeout"]).(json.Number)
	if !ok {
		return -1
	}
	ms, err := n.Float64()
	switch {
	case err != nil || ms > float64(maxWaitTimeout/time.Millisecond):
		return -1
	case ms > 0:
		return int64(ms)
	}
	return 0 // negative, or NaN
}

// waitTables lists the tables that the wait operations of ops look at:
// only a commit to one of them can release the transaction.
func waitTables(ops []any) map[string]bool {
	tables := map[string]bool{}
	for _, raw := range ops {
		if op, ok := raw.(map[string]any); ok && op["op"] == "wait" {
			if t, ok := op["table"].(string); ok {
				tables[t] = true
			}
		}
	}
	return tables
}

// park keeps p until a later commit lets it proceed or its timeout passes.
func (db *DB) park(p *pendingTxn, op map[string]any) {
	db.waiting = append(db.waiting, p)
	if ms := waitTimeout(op); ms > 0 {
		p.timer = time.AfterFunc(time.Duration(ms)*time.Millisecond, func() { db.expire(p) })
	}
}

// expire runs a parked transaction a last time with its timeouts at zero.
func (db *DB) expire(p *pendingTxn) {
	db.mu.Lock()
	if p.done {
		db.mu.Unlock()
		return
	}
	db.unpark(p)
	own, _ := db.run(zeroTimeouts(p.ops), p.session)
	retried := db.retryWaiting(own.cm)
	hooks := db.hooks
	db.mu.Unlock()
	p.reply(db.afterCommit(own, hooks, retried))
}

func zeroTimeouts(ops []any) []any {
	out := make([]any, len(ops))
	for i, raw := range ops {
		op, ok := raw.(map[string]any)
		if ok && op["op"] == "wait" {
			c := make(map[string]any, len(op))
			for k, v := range op {
				c[k] = v
			}
			c["timeout"] = json.Number("0")
			raw = c
		}
		out[i] = raw
	}
	return out
}

func (db *DB) unpark(p *pendingTxn) {
	p.done = true
	if p.timer != nil {
		p.timer.Stop()
	}
	for i, q := range db.waiting {
		if q == p {
			db.waiting = append(db.waiting[:i], db.waiting[i+1:]...)
			return
		}
	}
}

// retryWaiting reruns the parked transactions that a commit may release:
// those waiting on a table it changed, and then on the tables that the
// released ones changed. Their replies are sent once the lock is released.
func (db *DB) retryWaiting(cm *Commit) []outcome {
	var released []outcome
	for changed := changedTableNames(cm); len(changed) > 0 && len(db.waiting) > 0; {
		next := map[string]bool{}
		for _, p := range append([]*pendingTxn(nil), db.waiting...) {
			if !p.waitsOn(changed) {
				continue
			}
			db.reruns++
			o, blocked := db.run(p.ops, p.session)
			if blocked != nil {
				continue
			}
			db.unpark(p)
			o.reply = p.reply
			released = append(released, o)
			for t := range changedTableNames(o.cm) {
				next[t] = true
			}
		}
		changed = next
	}
	return released
}

func changedTableNames(cm *Commit) map[string]bool {
	if cm == nil {
		return nil
	}
	names := map[string]bool{}
	for _, c := range cm.Changes {
		names[c.Table.Name] = true
	}
	return names
}

func (p *pendingTxn) waitsOn(changed map[string]bool) bool {
	for t := range p.tables {
		if changed[t] {
			return true
		}
	}
	return false
}

// cancel abandons a parked transaction of session s with request id.
func (db *DB) cancel(s *session, id any) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, p := range db.waiting {
		if p.session == s && jsonEqual(p.id, id) {
			db.unpark(p)
			db.txns.refuse("canceled")
			// RFC 7047 4.1.4: the request gets an error reply, not results.
			s.sendJSON(map[string]any{"id": p.id, "result": nil, "error": "canceled"})
			return true
		}
	}
	return false
}

// dropSession abandons the parked transactions of a closed session.
func (db *DB) dropSession(s *session) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, p := range append([]*pendingTxn(nil), db.waiting...) {
		if p.session == s {
			db.unpark(p)
		}
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// record writes a commit to the journal and returns its sequence number.
// A journal that a failed sync left unsure is rewritten first; when that
// or the write fails, the commit is refused with an I/O error.
func (db *DB) record(cm *Commit) (uint64, *Error) {
	j := db.journal
	if j == nil {
		return 0, nil
	}
	if j.broken {
		if err := db.rewriteJournal(); err != nil {
			return 0, ioError(err)
		}
		dbLog.Info("database %s: journal rewritten, commits accepted again", j.path)
	}
	seq, err := j.append(cm)
	if err != nil {
		journalWriteError.Inc()
		dbLog.ErrRL(journalRL, "database %s: journal write failed, transaction refused: %v", j.path, err)
		return 0, ioError(fmt.Errorf("database %s: writing the journal: %w", j.path, err))
	}
	db.trackUnsynced(seq, cm)
	return seq, nil
}

func ioError(err error) *Error {
	return errorf("I/O error", "%v", err)
}

// unsyncedCommit is a commit whose record may not be on disk yet, kept so
// that a failed sync can roll it back.
type unsyncedCommit struct {
	seq     uint64
	cm      *Commit
	prevTxn UUID
}

// trackUnsynced remembers cm until its record is synced, forgetting the
// commits that are now known to be on disk.
func (db *DB) trackUnsynced(seq uint64, cm *Commit) {
	synced := db.journal.syncedSeq()
	i := 0
	for i < len(db.unsynced) && db.unsynced[i].seq <= synced {
		i++
	}
	db.unsynced = append(db.unsynced[:0], db.unsynced[i:]...)
	db.unsynced = append(db.unsynced, unsyncedCommit{seq: seq, cm: cm, prevTxn: db.lastTxn})
}

// syncFailed handles a failed fsync of the records up to target. The
// commits are kept if a fresh copy of the whole database reaches the disk;
// otherwise every commit not yet on disk is rolled back, in memory and for
// the monitors, and the file is cut back to what was synced.
func (db *DB) syncFailed(target uint64, cause error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	j := db.journal
	if j.syncedSeq() >= target {
		return // a rewrite made them durable meanwhile
	}
	if err := db.rewriteJournal(); err == nil {
		dbLog.Warn("database %s: journal rewritten after a failed fsync (%v), no commit lost", j.path, cause)
		return
	}
	lossErr := fmt.Errorf("database %s: syncing the journal: %w (the transaction was rolled back)", j.path, cause)
	for i := len(db.unsynced) - 1; i >= 0 && db.unsynced[i].seq > j.syncedSeq(); i-- {
		u := db.unsynced[i]
		db.undo(u.cm)
		db.lastTxn = u.prevTxn
		db.notifyMonitors(inverse(u.cm, u.prevTxn))
	}
	db.unsynced = db.unsynced[:0]
	j.mu.Lock()
	defer j.mu.Unlock()
	j.recordLoss(lossErr)
	j.end = j.syncedEnd
	if err := j.cutBack(); err != nil {
		dbLog.Err("database %s: cannot cut the journal back to its synced records, commits refused until it can be rewritten: %v", j.path, err)
		j.broken = true
	}
}

// inverse is the commit that undoes cm, leaving prevTxn the last one.
func inverse(cm *Commit, prevTxn UUID) *Commit {
	inv := &Commit{TxnID: prevTxn, Changes: make([]Change, len(cm.Changes))}
	for i, c := range cm.Changes {
		inv.Changes[len(cm.Changes)-1-i] = Change{Table: c.Table, UUID: c.UUID, Old: c.New, New: c.Old}
	}
	return inv
}

// waitDurable blocks until the journal holds record seq on disk.
func (db *DB) waitDurable(seq uint64) error {
	if seq == 0 || db.journal == nil {
		return nil
	}
	return db.journal.waitSynced(seq)
}

// afterCommit waits until the commits of own and of the transactions it
// released are on disk, runs the commit hooks for each, in commit order,
// sends the released ones' replies and returns own's results. A commit
// that a failed sync rolled back gets an I/O error and no hooks.
func (db *DB) afterCommit(own outcome, hooks []func(*Commit), released []outcome) []any {
	results := db.finish(own, hooks)
	for _, o := range released {
		o.reply(db.finish(o, hooks))
	}
	if db.journal != nil && db.journal.wantsCompaction() {
		db.compact()
	}
	return results
}

// finish waits until o is on disk, runs the commit hooks, and returns the
// results its client gets; every answered transaction is counted here.
func (db *DB) finish(o outcome, hooks []func(*Commit)) []any {
	if err := db.waitDurable(o.seq); err != nil {
		results := append(o.results, ioError(err).JSON())
		db.txns.count(results, false)
		return results
	}
	if o.cm != nil {
		for _, h := range hooks {
			h(o.cm)
		}
	}
	db.txns.count(o.results, o.cm != nil)
	return o.results
}
