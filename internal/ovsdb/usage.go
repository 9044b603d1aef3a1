package ovsdb

// usage is what the server holds for its clients, counted for tests and
// for the limits: sessions, monitors, named locks (owned or waited for),
// and parked wait transactions.
type usage struct {
	Sessions int
	Monitors int
	Locks    int // lock names with an owner or a waiter
	Parked   int
}

// usage counts what the server holds right now.
func (s *Server) usage() usage {
	var u usage
	s.mu.Lock()
	u.Sessions = len(s.sessions)
	s.mu.Unlock()
	for _, db := range s.dbs {
		db.mu.Lock()
		u.Monitors += len(db.mons)
		u.Parked += len(db.waiting)
		db.mu.Unlock()
	}
	s.locks.mu.Lock()
	u.Locks = len(s.locks.locks)
	s.locks.mu.Unlock()
	return u
}
