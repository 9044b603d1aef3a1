package ovsdb

import "sync"

// lockTable implements the lock, steal and unlock methods: named locks
// owned by at most one session, with waiters served in order.
type lockTable struct {
	mu    sync.Mutex
	locks map[string]*namedLock
	// held is, for each session, the names it owns or waits for: for the
	// per-session limit, and so that a leaving session lets go of all.
	held map[*session]map[string]struct{}
}

type namedLock struct {
	owner   *session
	waiters []*session
}

func newLockTable() *lockTable {
	return &lockTable{locks: map[string]*namedLock{}, held: map[*session]map[string]struct{}{}}
}

// acquire takes the lock for s (stealing it from its owner if steal) and
// reports whether s owns it now; otherwise s waits for a "locked"
// notification. A session at its limit of locks, or dead, gets an error
// and is registered nowhere.
func (lt *lockTable) acquire(name string, s *session, steal bool) (bool, *Error) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if s.dead.Load() {
		return false, errorf("canceled", "the client is disconnected")
	}
	names := lt.held[s]
	if _, ok := names[name]; !ok && len(names) >= s.server.MaxLocks {
		return false, errorf("resources exhausted", "too many locks: the limit is %d per client (MaxLocks)", s.server.MaxLocks)
	}
	if names == nil {
		names = map[string]struct{}{}
		lt.held[s] = names
	}
	names[name] = struct{}{}
	l := lt.locks[name]
	if l == nil {
		l = &namedLock{}
		lt.locks[name] = l
	}
	switch {
	case l.owner == nil || l.owner == s:
		l.owner = s
		return true, nil
	case steal:
		l.owner.notify("stolen", []any{name})
		l.waiters = append(l.waiters, l.owner)
		l.owner = s
		return true, nil
	}
	for _, w := range l.waiters {
		if w == s {
			return false, nil // already waiting; one unlock must end the wait
		}
	}
	l.waiters = append(l.waiters, s)
	return false, nil
}

func (lt *lockTable) owns(name string, s *session) bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	l := lt.locks[name]
	return l != nil && l.owner == s
}

// release gives up s's ownership of, or place in line for, a lock.
func (lt *lockTable) release(name string, s *session) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.releaseLocked(name, s)
}

func (lt *lockTable) releaseLocked(name string, s *session) {
	if names := lt.held[s]; names != nil {
		delete(names, name)
		if len(names) == 0 {
			delete(lt.held, s)
		}
	}
	l := lt.locks[name]
	if l == nil {
		return
	}
	for i, w := range l.waiters {
		if w == s {
			l.waiters = append(l.waiters[:i], l.waiters[i+1:]...)
			break
		}
	}
	if l.owner == s {
		l.owner = nil
		if len(l.waiters) > 0 {
			l.owner, l.waiters = l.waiters[0], l.waiters[1:]
			l.owner.notify("locked", []any{name})
		}
	}
	if l.owner == nil && len(l.waiters) == 0 {
		delete(lt.locks, name)
	}
}

// releaseAll lets go of every lock s owns or waits for, in one step, so
// that no lock can be handed to s while it leaves.
func (lt *lockTable) releaseAll(s *session) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for name := range lt.held[s] {
		lt.releaseLocked(name, s)
	}
}
