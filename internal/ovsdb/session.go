package ovsdb

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/guard"
)

// session is one client connection.
//
// Its reading goroutine (run) executes the client's requests one at a
// time and is the only one that tears the session down: it unregisters
// the session's monitors, locks and parked transactions once it stops
// reading. Any other goroutine that gives up on the client (its send
// queue overflowed, a write failed, the server closes) only kills it:
// marks it dead and closes the connection, which wakes the reader. A dead
// session executes no further request, even one already buffered, so it
// registers nothing that its teardown would miss.
//
// Messages reach the client in the order they were sent, either through
// the send queue, which the writer goroutine drains, or, for a reply from
// the reading goroutine when nothing is queued, written directly (see
// replyDirect). Every write has a deadline, so a client that never reads
// cannot hold up its own teardown.
type session struct {
	server *Server
	conn   net.Conn
	dead   atomic.Bool
	large  bool // the reader holds server.largeMu

	wmu sync.Mutex // held while writing to conn

	qmu      sync.Mutex
	queue    []outMsg // grown on demand: an idle session holds none
	inflight int      // messages taken from queue and not yet written
	qbytes   int      // bytes of queue and inflight
	closing  bool     // the reader is leaving: queue nothing more
	wake     chan struct{}
	done     chan struct{} // closed when the writer returns

	mu       sync.Mutex
	monitors map[string]*monitor // by the JSON text of the monitor id
	monBytes int                 // the sizes of their requests
}

// outMsg is one message to send, in parts so that a monitor update body
// encoded once can be shared by every session that receives it.
type outMsg struct {
	head, body, tail []byte
}

func (m outMsg) size() int { return len(m.head) + len(m.body) + len(m.tail) }

func newSession(s *Server, c net.Conn) *session {
	return &session{server: s, conn: c, wake: make(chan struct{}, 1),
		done: make(chan struct{}), monitors: map[string]*monitor{}}
}

func (ss *session) run() {
	defer guard.Recover(serverLog, sessionPanics, "ovsdb session") // runs last: the session is torn down by then
	defer ss.server.readers.Done()
	go ss.writer()
	defer ss.teardown()
	mr := newMessageReader(ss.conn, ss.server.MaxMessage)
	mr.large = ss.takeLarge
	defer ss.releaseLarge()
	for !ss.dead.Load() {
		msg, err := mr.next()
		if err != nil {
			ss.readFailed(err)
			return
		}
		ss.handle(msg)
		ss.releaseLarge()
	}
}

// readFailed tells the client why its stream ends, when it is not simply
// gone.
func (ss *session) readFailed(err error) {
	switch {
	case ss.dead.Load(), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.Is(err, errTooLarge):
		ss.replyError(nil, errorf("resources exhausted", "request exceeds the message size limit of %d bytes (MaxMessage)", ss.server.MaxMessage))
	case errors.Is(err, os.ErrDeadlineExceeded):
		ss.replyError(nil, errorf("resources exhausted", "a request over %d bytes must arrive within %v (WriteTimeout)", largeMessage, ss.server.WriteTimeout))
	default:
		ss.replyError(nil, errorf("syntax error", "%v", err))
	}
}

// takeLarge is called when the request being read grows past
// largeMessage: large requests are read, decoded and run one at a time
// across the server, since decoding takes many times a message's size, and
// one must arrive in bounded time so it cannot hold the others up.
func (ss *session) takeLarge() {
	ss.server.largeMu.Lock()
	ss.large = true
	_ = ss.conn.SetReadDeadline(time.Now().Add(ss.server.WriteTimeout))
}

func (ss *session) releaseLarge() {
	if ss.large {
		ss.large = false
		_ = ss.conn.SetReadDeadline(time.Time{})
		ss.server.largeMu.Unlock()
	}
}

// teardown unregisters everything the session holds, lets queued replies
// go out (bounded by the write timeout) and closes the connection. Only
// the reading goroutine calls it, once it executes no more requests.
func (ss *session) teardown() {
	ss.mu.Lock()
	mons := ss.monitors
	ss.monitors = nil
	ss.mu.Unlock()
	for _, m := range mons {
		m.db.removeMonitor(m)
	}
	for _, db := range ss.server.dbs {
		db.dropSession(ss)
	}
	ss.server.locks.releaseAll(ss)
	ss.qmu.Lock()
	ss.closing = true
	ss.qmu.Unlock()
	ss.signal()
	timer := time.NewTimer(ss.server.WriteTimeout)
	select {
	case <-ss.done:
	case <-timer.C:
		ss.kill("cannot flush the replies to a client that does not read")
		<-ss.done
	}
	timer.Stop()
	ss.conn.Close()
	ss.server.forget(ss)
}

// kill gives up on the client: any goroutine may call it. The reader sees
// the closed connection (or the dead flag) and tears the session down.
func (ss *session) kill(reason string) {
	if !ss.dead.CompareAndSwap(false, true) {
		return
	}
	if reason != "" {
		clientDisconnected.Inc()
		serverLog.WarnRL(clientRL, "disconnecting client %v: %s", ss.conn.RemoteAddr(), reason)
	}
	ss.conn.Close()
	ss.signal()
}

func (ss *session) signal() {
	select {
	case ss.wake <- struct{}{}:
	default:
	}
}

func (ss *session) writer() {
	defer close(ss.done)
	for {
		m, ok := ss.pop()
		if !ok {
			return
		}
		ss.wmu.Lock()
		err := ss.write(m)
		ss.qmu.Lock()
		ss.inflight--
		ss.qbytes -= m.size()
		ss.qmu.Unlock()
		ss.wmu.Unlock()
		if err != nil {
			ss.kill(fmt.Sprintf("write: %v", err))
			ss.dropQueue()
			return
		}
	}
}

// pop waits for the next message to write; false when the session is dead
// or closing with nothing left to send.
func (ss *session) pop() (outMsg, bool) {
	for {
		ss.qmu.Lock()
		if ss.dead.Load() {
			ss.queue, ss.qbytes = nil, ss.qbytes-queueBytes(ss.queue)
			ss.qmu.Unlock()
			return outMsg{}, false
		}
		if len(ss.queue) > 0 {
			m := ss.queue[0]
			ss.queue[0] = outMsg{}
			ss.queue = ss.queue[1:]
			if len(ss.queue) == 0 {
				ss.queue = nil // give the array back
			}
			ss.inflight++
			ss.qmu.Unlock()
			return m, true
		}
		closing := ss.closing
		ss.qmu.Unlock()
		if closing {
			return outMsg{}, false
		}
		<-ss.wake
	}
}

func queueBytes(q []outMsg) int {
	n := 0
	for _, m := range q {
		n += m.size()
	}
	return n
}

func (ss *session) dropQueue() {
	ss.qmu.Lock()
	ss.qbytes -= queueBytes(ss.queue)
	ss.queue = nil
	ss.qmu.Unlock()
}

// write sends one message with the write deadline (called with wmu held).
func (ss *session) write(m outMsg) error {
	_ = ss.conn.SetWriteDeadline(time.Now().Add(ss.server.WriteTimeout))
	bufs := net.Buffers{m.head, m.body, m.tail}
	_, err := bufs.WriteTo(ss.conn)
	return err
}

// enqueue queues a message without blocking. A client that already has
// SendQueue messages or SendBudget bytes waiting is disconnected, so a
// slow or vanished client never holds up the others nor grows the heap
// past its budget and one more message; a message larger than the budget
// (the initial contents of a big database) still goes to a client that
// keeps up.
func (ss *session) enqueue(m outMsg) {
	if ss.dead.Load() {
		return
	}
	srv := ss.server
	ss.qmu.Lock()
	if ss.closing {
		ss.qmu.Unlock()
		return
	}
	n, bytes := len(ss.queue)+ss.inflight, ss.qbytes
	if n >= srv.SendQueue || bytes >= srv.SendBudget {
		ss.qmu.Unlock()
		ss.kill(fmt.Sprintf("client too slow: %d messages (%d bytes) not read, limits SendQueue %d messages, SendBudget %d bytes",
			n, bytes, srv.SendQueue, srv.SendBudget))
		return
	}
	ss.queue = append(ss.queue, m)
	ss.qbytes += m.size()
	ss.qmu.Unlock()
	ss.signal()
}

// sendJSON queues a message.
func (ss *session) sendJSON(v any) {
	data, err := json.Marshal(v)
	if err != nil {
		encodeError.Inc()
		serverLog.ErrRL(encodeRL, "cannot encode a message: %v", err)
		return
	}
	ss.enqueue(outMsg{body: data})
}

// replyDirect sends a reply from the session's own goroutine, holding no
// lock of a database. When nothing is queued before it, it writes the
// reply itself rather than waking the writer goroutine: one goroutine
// hand-off less on every transaction. It may block, up to the write
// timeout, while the client does not read, which only holds up this
// client's own requests.
func (ss *session) replyDirect(id, result any) {
	data, ok := ss.encodeReply(id, result)
	if !ok {
		return
	}
	ss.wmu.Lock()
	defer ss.wmu.Unlock()
	ss.qmu.Lock()
	busy := len(ss.queue)+ss.inflight > 0
	ss.qmu.Unlock()
	if busy {
		// Earlier messages (this transaction's own monitor updates,
		// say) are still queued: the reply must follow them.
		ss.enqueue(outMsg{body: data})
		return
	}
	if ss.dead.Load() {
		return
	}
	if err := ss.write(outMsg{body: data}); err != nil {
		ss.kill(fmt.Sprintf("write: %v", err))
	}
}

func (ss *session) notify(method string, params any) {
	ss.sendJSON(map[string]any{"id": nil, "method": method, "params": params})
}

func (ss *session) reply(id, result any) {
	if data, ok := ss.encodeReply(id, result); ok {
		ss.enqueue(outMsg{body: data})
	}
}

// encodeReply encodes a reply; when that fails, the client gets an error
// reply saying so instead of waiting for an answer that never comes.
func (ss *session) encodeReply(id, result any) ([]byte, bool) {
	data, err := encodeReply(id, result)
	if err != nil {
		encodeError.Inc()
		serverLog.ErrRL(encodeRL, "cannot encode a reply: %v", err)
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
