package ovsdb

import (
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"
)

// Server serves databases over JSON-RPC (RFC 7047 and the extensions that
// Open vSwitch clients use) on any number of listeners.
//
// Every size and count a client controls has a limit, set to a Default
// constant by NewServer and adjustable before Listen; see the package
// documentation for what each limit does when it is reached.
type Server struct {
	// MaxMessage is the largest request accepted, in bytes.
	MaxMessage int
	// SendQueue and SendBudget bound what may wait to be sent to one
	// client, in messages and in bytes; a client that falls further
	// behind is disconnected, so a slow or vanished client never holds up
	// the others nor grows the heap.
	SendQueue  int
	SendBudget int
	// WriteTimeout bounds each write to a client.
	WriteTimeout time.Duration
	// MaxSessions bounds the clients connected at once.
	MaxSessions int
	// MaxMonitors, MaxLocks and MaxParked bound, per client, the
	// monitors, the locks (owned or waited for) and the transactions
	// parked in a "wait" operation; MaxMonitorBytes the requests that a
	// client's monitors hold, in bytes.
	MaxMonitors     int
	MaxLocks        int
	MaxParked       int
	MaxMonitorBytes int
	// MaxParkedBytes bounds the requests of the transactions parked on
	// one database, all clients together.
	MaxParkedBytes int
	// MaxReply bounds the results of one transaction, in bytes as
	// encoded (estimated as they are built).
	MaxReply int
	// MaxCompares bounds the condition checks of one transaction.
	MaxCompares int

	mu        sync.Mutex
	dbs       map[string]*DB
	serverDB  *DB
	serverID  UUID
	locks     *lockTable
	listeners []net.Listener
	sessions  map[*session]struct{}
	closed    bool
	readers   sync.WaitGroup // one per session's reading goroutine
	largeMu   sync.Mutex     // held while a large request is decoded and run
}

// NewServer returns a server for the given databases; it adds the _Server
// database that tells clients about them.
func NewServer(dbs ...*DB) (*Server, error) {
	s := &Server{MaxMessage: DefaultMaxMessage, SendQueue: DefaultSendQueue, SendBudget: DefaultSendBudget,
		WriteTimeout: DefaultWriteTimeout, MaxSessions: DefaultMaxSessions, MaxMonitors: DefaultMaxMonitors,
		MaxLocks: DefaultMaxLocks, MaxParked: DefaultMaxParked, MaxParkedBytes: DefaultMaxParkedBytes, MaxMonitorBytes: DefaultMaxMonitorBytes, MaxReply: DefaultMaxReply, MaxCompares: DefaultMaxCompares,
		dbs: map[string]*DB{}, serverID: NewUUID(), locks: newLockTable(), sessions: map[*session]struct{}{}}
	for _, db := range dbs {
		s.dbs[db.Name()] = db
	}
	sdb, err := newServerDB(dbs)
	if err != nil {
		return nil, err
	}
	s.serverDB = sdb
	s.dbs[sdb.Name()] = sdb
	return s, nil
}

// Listen starts accepting clients on a listener described as OVS does:
// "punix:PATH" (or a bare path) or "ptcp:PORT[:IP]".
func (s *Server) Listen(spec string) (net.Addr, error) {
	l, err := listen(spec)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return nil, errors.New("server closed")
	}
	s.listeners = append(s.listeners, l)
	s.mu.Unlock()
	go s.accept(l)
	return l.Addr(), nil
}

func (s *Server) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		ss := newSession(s, c)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		if len(s.sessions) >= s.MaxSessions {
			s.mu.Unlock()
			go s.refuse(c, errorf("resources exhausted", "too many clients: the limit is %d sessions (MaxSessions)", s.MaxSessions))
			continue
		}
		s.sessions[ss] = struct{}{}
		s.readers.Add(1)
		s.mu.Unlock()
		go ss.run()
	}
}

// refuse tells a client why it is not served, and hangs up.
func (s *Server) refuse(c net.Conn, e *Error) {
	clientRefused.Inc()
	serverLog.WarnRL(clientRL, "refusing client %v: %s", c.RemoteAddr(), e.Details)
	data, _ := json.Marshal(map[string]any{"id": nil, "result": nil, "error": e.JSON()})
	_ = c.SetWriteDeadline(time.Now().Add(s.WriteTimeout))
	_, _ = c.Write(data)
	c.Close()
}

// Close stops the listeners, disconnects every client and waits until
// their sessions are torn down, or for WriteTimeout and a second at most:
// a request stuck elsewhere (a commit hook, say) must not hang the exit.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	ls, sessions := s.listeners, s.sessions
	s.listeners, s.sessions = nil, map[*session]struct{}{}
	s.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for ss := range sessions {
		ss.kill("")
	}
	done := make(chan struct{})
	go func() {
		s.readers.Wait()
		close(done)
	}()
	timer := time.NewTimer(s.WriteTimeout + time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		serverLog.Warn("sessions still busy after close")
	}
}

func (s *Server) forget(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

// request is a decoded JSON-RPC message.
type request struct {
	Method string
	Params []any
	ID     any
	IsResp bool
	Size   int // of the message, in bytes
}

func decodeRequest(msg []byte) (*request, *Error) {
	v, err := decodeJSON(msg)
	if err != nil {
		return nil, errorf("syntax error", "invalid JSON: %v", err)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errorf("syntax error", "JSON-RPC message must be an object")
	}
	if _, ok := obj["result"]; ok {
		return &request{IsResp: true, ID: obj["id"]}, nil
	}
	// A malformed request still returns its id, so that the error reply
	// reaches the caller waiting for it.
	method, ok := obj["method"].(string)
	if !ok {
		return &request{ID: obj["id"]}, errorf("syntax error", "JSON-RPC request lacks a \"method\" string")
	}
	params, ok := obj["params"].([]any)
	if !ok {
		return &request{ID: obj["id"]}, errorf("syntax error", "JSON-RPC request %q lacks a \"params\" array", method)
	}
	return &request{Method: method, Params: params, ID: obj["id"], Size: len(msg)}, nil
}

func (ss *session) handle(msg []byte) {
	req, err := decodeRequest(msg)
	if err != nil {
		var id any
		if req != nil {
			id = req.ID
		}
		ss.replyError(id, err)
		return
	}
	if req.IsResp {
		return // a reply to our echo, or to nothing: nothing to do
	}
	h, ok := methods[req.Method]
	if !ok {
		ss.replyError(req.ID, errorf("unknown method", "%q is not a method of this server", req.Method))
		return
	}
	h(ss, req)
}

var methods map[string]func(*session, *request)

func init() {
	methods = map[string]func(*session, *request){
		"list_dbs":            (*session).listDBs,
		"get_schema":          (*session).getSchema,
		"transact":            (*session).transact,
		"cancel":              (*session).cancelTxn,
		"monitor":             func(ss *session, r *request) { ss.monitor(r, 1) },
		"monitor_cond":        func(ss *session, r *request) { ss.monitor(r, 2) },
		"monitor_cond_since":  func(ss *session, r *request) { ss.monitor(r, 3) },
		"monitor_cond_change": (*session).monitorCondChange,
		"monitor_cancel":      (*session).monitorCancel,
		"echo":                func(ss *session, r *request) { ss.reply(r.ID, r.Params) },
		"lock":                func(ss *session, r *request) { ss.lock(r, false) },
		"steal":               func(ss *session, r *request) { ss.lock(r, true) },
		"unlock":              (*session).unlock,
		"set_db_change_aware": func(ss *session, r *request) { ss.reply(r.ID, map[string]any{}) },
		"get_server_id":       func(ss *session, r *request) { ss.reply(r.ID, ss.server.serverID.String()) },
	}
}

func (ss *session) listDBs(r *request) {
	names := make([]any, 0, len(ss.server.dbs))
	for name := range ss.server.dbs {
		names = append(names, name)
	}
	ss.reply(r.ID, names)
}

// dbParam resolves params[0] as a database name.
func (ss *session) dbParam(r *request) (*DB, *Error) {
	if len(r.Params) == 0 {
		return nil, errorf("syntax error", "%s: missing database name", r.Method)
	}
	name, ok := r.Params[0].(string)
	if !ok {
		return nil, errorf("syntax error", "%s: database name must be a string", r.Method)
	}
	db, ok := ss.server.dbs[name]
	if !ok {
		return nil, errorf("unknown database", "%s is not a valid database name", name)
	}
	return db, nil
}

func (ss *session) getSchema(r *request) {
	db, err := ss.dbParam(r)
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	ss.reply(r.ID, db.schema.JSON)
}

func (ss *session) transact(r *request) {
	db, err := ss.dbParam(r)
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	ops := r.Params[1:]
	if db == ss.server.serverDB && !readOnly(ops) {
		ss.replyError(r.ID, errorf("not allowed", "the _Server database is read-only"))
		return
	}
	id := r.ID
	results, parked := db.transact(ops, ss, id, r.Size, func(res []any) { ss.reply(id, res) })
	if !parked {
		ss.replyDirect(id, results)
	}
}

func readOnly(ops []any) bool {
	for _, raw := range ops {
		op, _ := raw.(map[string]any)
		switch op["op"] {
		case "select", "wait", "comment", "abort", "assert", "commit":
		default:
			return false
		}
	}
	return true
}

func (ss *session) cancelTxn(r *request) {
	if len(r.Params) != 1 {
		return
	}
	for _, db := range ss.server.dbs {
		if db.cancel(ss, r.Params[0]) {
			return
		}
	}
}

func (ss *session) monitor(r *request, version int) {
	db, err := ss.dbParam(r)
	if err == nil && (len(r.Params) < 3 || (version == 3 && len(r.Params) < 4)) {
		err = errorf("syntax error", "%s: wrong number of parameters", r.Method)
	}
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	key := string(mustJSON(r.Params[1]))
	ss.mu.Lock()
	err = ss.monitorRoom(nil, r.Size)
	ss.mu.Unlock()
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	tables, err := parseMonitorRequests(db, r.Params[2], version)
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	m := &monitor{session: ss, db: db, id: r.Params[1], idJSON: []byte(key), version: version, tables: tables,
		sig: monitorSignature(version, db, r.Params[2]), size: r.Size}
	ss.mu.Lock()
	err = ss.addMonitor(key, m)
	ss.mu.Unlock()
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	ss.startMonitor(r, m, db)
}

// addMonitor registers m under key in the session (called with ss.mu
// held), unless the session is leaving or at its limit of monitors.
func (ss *session) addMonitor(key string, m *monitor) *Error {
	switch _, dup := ss.monitors[key]; {
	case ss.dead.Load() || ss.monitors == nil:
		return errorf("canceled", "the client is disconnected")
	case dup:
		return errorf("duplicate monitor ID", "monitor %s already exists", key)
	case len(ss.monitors) >= ss.server.MaxMonitors:
		return errorf("resources exhausted", "too many monitors: the limit is %d per client (MaxMonitors)", ss.server.MaxMonitors)
	}
	if err := ss.monitorRoom(nil, m.size); err != nil {
		return err
	}
	ss.monitors[key] = m
	ss.monBytes += m.size
	return nil
}

// monitorRoom says whether the session's monitors may hold a request of
// size bytes more, in place of old's if old is not nil (called with ss.mu
// held): each keeps its request, parsed, so MaxMonitors alone would let
// one client hold hundreds of the largest messages.
func (ss *session) monitorRoom(old *monitor, size int) *Error {
	total := ss.monBytes + size
	if old != nil {
		total -= old.size
	}
	if total > ss.server.MaxMonitorBytes && size > 0 {
		return errorf("resources exhausted", "the monitors of this client would hold %d bytes of requests: the limit is %d per client (MaxMonitorBytes)",
			total, ss.server.MaxMonitorBytes)
	}
	return nil
}

// startMonitor registers m and replies with the initial contents. The
// reply is queued with the database locked, so no update for a later
// commit can overtake it.
func (ss *session) startMonitor(r *request, m *monitor, db *DB) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if ss.dead.Load() {
		return // the reader tears the session down next: register nothing
	}
	m.conds = tablesWeight(m.tables)
	if err := db.conditionRoom(m.conds, 0); err != nil {
		ss.mu.Lock()
		if ss.monitors[string(m.idJSON)] == m {
			delete(ss.monitors, string(m.idJSON))
			ss.monBytes -= m.size
		}
		ss.mu.Unlock()
		ss.replyError(r.ID, err)
		return
	}
	db.mons[m] = struct{}{}
	db.monConds += m.conds
	initial := m.initialUpdates()
	if m.version < 3 {
		ss.reply(r.ID, initial)
		return
	}
	last, _ := r.Params[3].(string)
	if u, err := ParseUUID(last); err == nil && u == db.lastTxn && u != (UUID{}) {
		ss.reply(r.ID, []any{true, last, map[string]any{}})
		return
	}
	ss.reply(r.ID, []any{false, db.lastTxn.String(), initial})
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func (ss *session) monitorCondChange(r *request) {
	if len(r.Params) != 3 {
		ss.replyError(r.ID, errorf("syntax error", "monitor_cond_change: wrong number of parameters"))
		return
	}
	key := string(mustJSON(r.Params[0]))
	ss.mu.Lock()
	m, ok := ss.monitors[key]
	ss.mu.Unlock()
	if !ok || m.version < 2 {
		ss.replyError(r.ID, errorf("unknown monitor session", "no monitor_cond session %s", key))
		return
	}
	reqs, ok := r.Params[2].(map[string]any)
	if !ok {
		ss.replyError(r.ID, errorf("syntax error", "monitor_cond_change: requests must be an object"))
		return
	}
	newWhere, err := parseWhereChanges(m, reqs)
	if err == nil {
		m.db.mu.Lock()
		err = m.db.conditionRoom(m.newWeight(newWhere), m.conds)
		m.db.mu.Unlock()
	}
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	newKey := string(mustJSON(r.Params[1]))
	ss.mu.Lock()
	if _, dup := ss.monitors[newKey]; dup && newKey != key {
		// Replacing it would leave it registered with nothing to
		// cancel it, even when the session ends.
		ss.mu.Unlock()
		ss.replyError(r.ID, errorf("duplicate monitor ID", "monitor %s already exists", newKey))
		return
	}
	if ss.monitors[key] != m {
		ss.mu.Unlock()
		ss.replyError(r.ID, errorf("unknown monitor session", "no monitor_cond session %s", key))
		return
	}
	if err := ss.monitorRoom(m, r.Size); err != nil {
		ss.mu.Unlock()
		ss.replyError(r.ID, err)
		return
	}
	ss.monBytes += r.Size - m.size
	m.size = r.Size
	delete(ss.monitors, key)
	ss.monitors[newKey] = m
	ss.mu.Unlock()
	// Commits read m.id with the database locked, to send updates.
	m.db.mu.Lock()
	m.id, m.idJSON = r.Params[1], []byte(newKey)
	m.sig = "" // its conditions are its own now: encoded for it alone
	m.db.mu.Unlock()
	m.db.changeConditions(m, newWhere)
	ss.reply(r.ID, map[string]any{})
}

func parseWhereChanges(m *monitor, reqs map[string]any) (map[string]conditions, *Error) {
	out := map[string]conditions{}
	for name, v := range reqs {
		mt, ok := m.tables[name]
		if !ok {
			return nil, errorf("syntax error", "monitor_cond_change: table %s is not monitored", name)
		}
		arr, isArr := v.([]any)
		if !isArr {
			arr = []any{v}
		}
		var where conditions
		for _, req := range arr {
			obj, ok := req.(map[string]any)
			if !ok {
				return nil, errorf("syntax error", "monitor_cond_change: request must be an object")
			}
			tmp := &monTable{t: mt.t, all: true}
			if w, ok := obj["where"]; ok {
				if err := tmp.setWhere(w); err != nil {
					return nil, err
				}
			}
			if tmp.all {
				where = nil // every row
				break
			}
			if where == nil {
				where = conditions{}
			}
			where = append(where, tmp.where...)
		}
		out[name] = where
	}
	return out, nil
}

func (ss *session) monitorCancel(r *request) {
	if len(r.Params) != 1 {
		ss.replyError(r.ID, errorf("syntax error", "monitor_cancel takes one parameter"))
		return
	}
	key := string(mustJSON(r.Params[0]))
	ss.mu.Lock()
	m, ok := ss.monitors[key]
	delete(ss.monitors, key)
	if ok {
		ss.monBytes -= m.size
	}
	ss.mu.Unlock()
	if !ok {
		ss.replyError(r.ID, errorf("unknown monitor", "no monitor %s", key))
		return
	}
	m.db.removeMonitor(m)
	ss.reply(r.ID, map[string]any{})
}

func (ss *session) lock(r *request, steal bool) {
	name, ok := lockName(r)
	if !ok {
		ss.replyError(r.ID, errorf("syntax error", "%s takes one lock name", r.Method))
		return
	}
	locked, err := ss.server.locks.acquire(name, ss, steal)
	if err != nil {
		ss.replyError(r.ID, err.withContext("%s %q", r.Method, name))
		return
	}
	ss.reply(r.ID, map[string]any{"locked": locked})
}

func (ss *session) unlock(r *request) {
	name, ok := lockName(r)
	if !ok {
		ss.replyError(r.ID, errorf("syntax error", "unlock takes one lock name"))
		return
	}
	ss.server.locks.release(name, ss)
	ss.reply(r.ID, map[string]any{})
}

func lockName(r *request) (string, bool) {
	if len(r.Params) != 1 {
		return "", false
	}
	name, ok := r.Params[0].(string)
	return name, ok && name != ""
}
