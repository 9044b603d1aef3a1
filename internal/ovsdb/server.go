package ovsdb

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"gvs/internal/guard"
)

// Server serves databases over JSON-RPC (RFC 7047 and the extensions that
// Open vSwitch clients use) on any number of listeners.
type Server struct {
	// MaxMessage is the largest request accepted, in bytes.
	MaxMessage int
	// SendQueue is how many messages may wait to be sent to one client;
	// a client that falls further behind is disconnected, so a slow or
	// vanished client never holds up the others.
	SendQueue int

	mu        sync.Mutex
	dbs       map[string]*DB
	serverDB  *DB
	serverID  UUID
	locks     *lockTable
	listeners []net.Listener
	sessions  map[*session]struct{}
	closed    bool
}

// NewServer returns a server for the given databases; it adds the _Server
// database that tells clients about them.
func NewServer(dbs ...*DB) (*Server, error) {
	s := &Server{MaxMessage: 64 << 20, SendQueue: 10000, dbs: map[string]*DB{},
		serverID: NewUUID(), locks: newLockTable(), sessions: map[*session]struct{}{}}
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
		s.sessions[ss] = struct{}{}
		s.mu.Unlock()
		go ss.run()
	}
}

// Close stops the listeners and disconnects every client.
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
		ss.close()
	}
}

func (s *Server) forget(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

// session is one client connection. Messages reach the client in the
// order they were sent, either through the out queue, which the writer
// goroutine drains, or, for a reply from the session's own goroutine when
// nothing is queued, written directly (see replyDirect).
type session struct {
	server   *Server
	conn     net.Conn
	out      chan []byte
	queued   atomic.Int64 // messages put in out and not yet written
	wmu      sync.Mutex   // held while writing to conn
	done     chan struct{}
	once     sync.Once
	mu       sync.Mutex
	monitors map[string]*monitor // by the JSON text of the monitor id
}

func newSession(s *Server, c net.Conn) *session {
	return &session{server: s, conn: c, out: make(chan []byte, s.SendQueue),
		done: make(chan struct{}), monitors: map[string]*monitor{}}
}

func (ss *session) run() {
	defer guard.Recover(serverLog, sessionPanics, "ovsdb session") // runs last: the session is closed by then
	go ss.writer()
	defer ss.close()
	mr := newMessageReader(ss.conn, ss.server.MaxMessage)
	for {
		msg, err := mr.next()
		if err != nil {
			if errors.Is(err, errTooLarge) {
				ss.sendJSON(map[string]any{"id": nil, "result": nil,
					"error": errorf("resources exhausted", "request exceeds %d bytes", ss.server.MaxMessage).JSON()})
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				ss.sendJSON(map[string]any{"id": nil, "result": nil, "error": errorf("syntax error", "%v", err).JSON()})
			}
			ss.flushAndClose()
			return
		}
		ss.handle(msg)
	}
}

// flushAndClose lets queued replies go out before the connection closes.
func (ss *session) flushAndClose() {
	close(ss.out)
	<-ss.done
}

func (ss *session) writer() {
	defer close(ss.done)
	for msg := range ss.out {
		ss.wmu.Lock()
		_, err := ss.conn.Write(msg)
		ss.queued.Add(-1)
		ss.wmu.Unlock()
		if err != nil {
			ss.conn.Close()
			for range ss.out {
				ss.queued.Add(-1)
			}
			return
		}
	}
}

func (ss *session) close() {
	ss.once.Do(func() {
		ss.conn.Close()
		ss.mu.Lock()
		mons := ss.monitors
		ss.monitors = map[string]*monitor{}
		ss.mu.Unlock()
		for _, m := range mons {
			m.db.removeMonitor(m)
		}
		for _, db := range ss.server.dbs {
			db.dropSession(ss)
		}
		ss.server.locks.releaseAll(ss)
		ss.server.forget(ss)
	})
}

// sendJSON queues a message without blocking; a client whose queue is full
// is disconnected.
func (ss *session) sendJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		slog.Error("ovsdb: cannot encode message", "error", err)
		return
	}
	ss.enqueue(data)
}

func (ss *session) enqueue(data []byte) {
	ss.queued.Add(1)
	defer func() {
		// Sending on the queue after the session closed it: drop.
		if recover() != nil {
			ss.queued.Add(-1)
		}
	}()
	select {
	case ss.out <- data:
	default:
		ss.queued.Add(-1)
		slog.Warn("ovsdb: client too slow, disconnecting", "remote", ss.conn.RemoteAddr())
		go ss.close()
		ss.conn.Close()
	}
}

// replyDirect sends a reply from the session's own goroutine, holding no
// lock of a database. When nothing is queued before it, it writes the
// reply itself rather than waking the writer goroutine: one goroutine
// hand-off less on every transaction. It may block while the client does
// not read, which only holds up this client's own requests.
func (ss *session) replyDirect(id, result any) {
	data, ok := ss.encodeReply(id, result)
	if !ok {
		return
	}
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	if ss.queued.Load() > 0 {
		// Earlier messages (this transaction's own monitor updates,
		// say) are still queued: the reply must follow them.
		ss.enqueue(data)
		return
	}
	if _, err := ss.conn.Write(data); err != nil {
		ss.conn.Close()
	}
}

func (ss *session) notify(method string, params any) {
	ss.sendJSON(map[string]any{"id": nil, "method": method, "params": params})
}

func (ss *session) reply(id, result any) {
	if data, ok := ss.encodeReply(id, result); ok {
		ss.enqueue(data)
	}
}

// encodeReply encodes a reply; when that fails, the client gets an error
// reply saying so instead of waiting for an answer that never comes.
func (ss *session) encodeReply(id, result any) ([]byte, bool) {
	data, err := encodeReply(id, result)
	if err != nil {
		slog.Error("ovsdb: cannot encode reply", "error", err)
		ss.replyError(id, errorf("internal error", "cannot encode the reply: %v", err))
		return nil, false
	}
	return data, true
}

// encodeReply is the JSON-RPC reply {"id":id,"result":result,"error":null},
// written without building and sorting a map for it.
func encodeReply(id, result any) ([]byte, error) {
	idJSON, err := json.Marshal(id)
	if err != nil {
		return nil, err
	}
	resJSON, err := json.Marshal(result)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(idJSON)+len(resJSON)+32)
	b = append(b, `{"id":`...)
	b = append(b, idJSON...)
	b = append(b, `,"result":`...)
	b = append(b, resJSON...)
	return append(b, `,"error":null}`...), nil
}

func (ss *session) replyError(id any, err *Error) {
	ss.sendJSON(map[string]any{"id": id, "result": nil, "error": err.JSON()})
}

// request is a decoded JSON-RPC message.
type request struct {
	Method string
	Params []any
	ID     any
	IsResp bool
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
	return &request{Method: method, Params: params, ID: obj["id"]}, nil
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
	results, parked := db.transact(ops, ss, id, func(res []any) { ss.reply(id, res) })
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
	tables, err := parseMonitorRequests(db, r.Params[2], version)
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	m := &monitor{session: ss, db: db, id: r.Params[1], version: version, tables: tables}
	ss.mu.Lock()
	if _, dup := ss.monitors[key]; dup {
		ss.mu.Unlock()
		ss.replyError(r.ID, errorf("duplicate monitor ID", "monitor %s already exists", key))
		return
	}
	ss.monitors[key] = m
	ss.mu.Unlock()
	ss.startMonitor(r, m, db)
}

// startMonitor registers m and replies with the initial contents. The
// reply is queued with the database locked, so no update for a later
// commit can overtake it.
func (ss *session) startMonitor(r *request, m *monitor, db *DB) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.mons[m] = struct{}{}
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
	if err != nil {
		ss.replyError(r.ID, err)
		return
	}
	newKey := string(mustJSON(r.Params[1]))
	ss.mu.Lock()
	delete(ss.monitors, key)
	ss.monitors[newKey] = m
	ss.mu.Unlock()
	// Commits read m.id with the database locked, to send updates.
	m.db.mu.Lock()
	m.id = r.Params[1]
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
	locked := ss.server.locks.acquire(name, ss, steal)
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
