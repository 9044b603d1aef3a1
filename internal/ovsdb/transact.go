package ovsdb

import (
	"encoding/json"
	"time"
)

// pendingTxn is a transaction blocked in a "wait" operation with a
// timeout, retried after every commit until it can proceed or times out.
type pendingTxn struct {
	ops     []any
	session *session
	id      any // the request id, for "cancel"
	reply   func(results []any)
	timer   *time.Timer
	done    bool
}

// Transact executes a transaction's operations (the "params" of a transact
// request without the database name) and returns the result array. It is
// the entry point for in-process clients too.
func (db *DB) Transact(ops []any) []any {
	results, _ := db.transact(ops, nil, nil, nil)
	return results
}

// transact runs ops. If a wait operation blocks with a timeout, the
// transaction is parked and reply is called later; transact then returns
// parked == true and no results.
func (db *DB) transact(ops []any, s *session, id any, reply func([]any)) (results []any, parked bool) {
	db.mu.Lock()
	results, cm, blocked := db.run(ops, s)
	if blocked != nil && reply != nil {
		if err := db.parkRefusal(s); err != nil {
			results[len(results)-1] = err.JSON() // the wait that would park
		} else {
			db.park(&pendingTxn{ops: ops, session: s, id: id, reply: reply}, blocked)
			db.mu.Unlock()
			return nil, true
		}
	}
	seq := db.record(cm)
	var retried []func()
	if cm != nil {
		retried = db.retryWaiting()
	}
	hooks := db.hooks
	db.mu.Unlock()
	db.afterCommit(seq, cm, hooks, retried)
	return results, false
}

// run executes ops and, if they all succeed, commits them to memory. It
// returns the wait operation that blocked, if one did and may be retried.
func (db *DB) run(ops []any, s *session) ([]any, *Commit, map[string]any) {
	tx := newTxn(db, s)
	results, ok := tx.execute(ops)
	if !ok {
		if last := results[len(results)-1]; isWouldBlock(last) {
			if op := ops[len(results)-1].(map[string]any); waitTimeout(op) != 0 {
				return results, nil, op
			}
		}
		return results, nil, nil
	}
	if err := tx.prepare(); err != nil {
		return append(results, err.JSON()), nil, nil
	}
	if len(tx.changes) == 0 {
		return results, nil, nil
	}
	cm := tx.apply()
	if len(cm.Changes) == 0 {
		return results, nil, nil
	}
	db.lastTxn = cm.TxnID
	db.notifyMonitors(cm)
	return results, cm, nil
}

func isWouldBlock(v any) bool {
	m, ok := v.(map[string]any)
	return ok && m["error"] == errWouldBlock.Tag && m["details"] == errWouldBlock.Details
}

// waitTimeout returns a wait operation's timeout in ms, -1 for none.
func waitTimeout(op map[string]any) int64 {
	n, ok := nativeNumber(op["timeout"]).(json.Number)
	if !ok {
		return -1
	}
	ms, err := n.Int64()
	if err != nil {
		f, _ := n.Float64()
		ms = int64(f)
	}
	if ms < 0 {
		return 0
	}
	return ms
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
	results, cm, _ := db.run(zeroTimeouts(p.ops), p.session)
	seq := db.record(cm)
	var retried []func()
	if cm != nil {
		retried = db.retryWaiting()
	}
	hooks := db.hooks
	db.mu.Unlock()
	db.afterCommit(seq, cm, hooks, retried)
	p.reply(results)
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

// retryWaiting reruns parked transactions after a commit. It returns the
// replies to send once the lock is released.
func (db *DB) retryWaiting() []func() {
	var replies []func()
	for changed := true; changed; {
		changed = false
		for _, p := range append([]*pendingTxn(nil), db.waiting...) {
			results, cm, blocked := db.run(p.ops, p.session)
			if blocked != nil {
				continue
			}
			db.unpark(p)
			seq := db.record(cm)
			reply := p.reply
			replies = append(replies, func() { db.waitDurable(seq); reply(results) })
			changed = changed || cm != nil
		}
	}
	return replies
}

// cancel abandons a parked transaction of session s with request id.
func (db *DB) cancel(s *session, id any) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, p := range db.waiting {
		if p.session == s && jsonEqual(p.id, id) {
			db.unpark(p)
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
func (db *DB) record(cm *Commit) uint64 {
	if cm == nil || db.journal == nil {
		return 0
	}
	return db.journal.append(db.schema, cm)
}

// waitDurable blocks until the journal holds record seq on disk.
func (db *DB) waitDurable(seq uint64) {
	if seq != 0 && db.journal != nil {
		db.journal.waitSynced(seq)
	}
}

func (db *DB) afterCommit(seq uint64, cm *Commit, hooks []func(*Commit), replies []func()) {
	db.waitDurable(seq)
	for _, r := range replies {
		r()
	}
	if cm == nil {
		return
	}
	for _, h := range hooks {
		h(cm)
	}
	if db.journal != nil && db.journal.wantsCompaction() {
		db.compact()
	}
}
