package ovsdb

import "sync"

// lockTable implements the lock, steal and unlock methods: named locks
// owned by at most one session, with waiters served in order.
type lockTable struct {
	mu    sync.Mutex
	locks map[string]*namedLock
}

type namedLock struct {
	owner   *session
	waiters []*session
}

func newLockTable() *lockTable { return &lockTable{locks: map[string]*namedLock{}} }

// acquire takes the lock for s (stealing it from its owner if steal) and
// reports whether s owns it now; otherwise s waits for a "locked"
// notification.
func (lt *lockTable) acquire(name string, s *session, steal bool) bool {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	l := lt.locks[name]
	if l == nil {
		l = &namedLock{}
		lt.locks[name] = l
	}
	switch {
	case l.owner == nil || l.owner == s:
		l.owner = s
		return true
	case steal:
		l.owner.notify("stolen", []any{name})
		l.waiters = append(l.waiters, l.owner)
		l.owner = s
		return true
	}
	for _, w := range l.waiters {
		if w == s {
			return false // already waiting; one unlock must end the wait
		}
	}
	l.waiters = append(l.waiters, s)
	return false
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

func (lt *lockTable) releaseAll(s *session) {
	lt.mu.Lock()
	var names []string
	for name := range lt.locks {
		names = append(names, name)
	}
	lt.mu.Unlock()
	for _, n := range names {
		lt.release(n, s)
	}
}
