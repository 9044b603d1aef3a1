package idl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/procinfo"
)

// MaxMessage bounds one JSON-RPC message from the server. A database's
// initial contents arrive in one message; 128 MiB holds hundreds of
// thousands of rows, and a server that sends more is cut off.
const MaxMessage = 128 << 20

// rpcMessage is any JSON-RPC 1.0 message: a request or notification
// (Method set) or a reply (Result or Error set).
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// reply is what a call gets back.
type reply struct {
	result json.RawMessage
	err    error
}

// pending is a call waiting for its reply. onReply, when set, runs in
// the reading goroutine before any later notification is handled: a
// monitor's initial contents must be in the replica before the first
// update that follows them.
type pending struct {
	done    chan reply
	onReply func(json.RawMessage) error
}

// conn is one JSON-RPC connection to an OVSDB server. Calls may come
// from any goroutine; one goroutine reads, and hands notifications to
// notify in the order they arrive.
type conn struct {
	c      net.Conn
	notify func(method string, params json.RawMessage)

	mu      sync.Mutex
	nextID  int
	pending map[string]*pending
	err     error         // why the connection ended
	closed  chan struct{} // closed when the reader stops
	wmu     sync.Mutex    // one write at a time

	lastRead atomic.Int64 // unix nanoseconds of the last message read
}

// writeTimeout bounds a write to a server that does not read.
const writeTimeout = 10 * time.Second

func dial(ctx context.Context, remote string) (net.Conn, error) {
	network, addr, err := parseRemote(remote)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		if err := checkServerUser(c, addr); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// checkServerUser accepts the server at the other end of the unix socket
// at path only if it runs as root, as gvsd's own user, or as the owner
// of the socket's directory (an ovsdb-server run as the openvswitch
// user, in its own run directory): whoever else binds the socket's name
// first in a directory they can write (OVS_RUNDIR=/tmp) would otherwise
// configure the switch that gvsd runs as root.
func checkServerUser(c net.Conn, path string) error {
	pid, uid, ok := procinfo.PeerCred(c)
	if !ok {
		return errors.New("cannot tell which user serves the socket")
	}
	if uid == 0 || uid == os.Geteuid() {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Dir(path), &st); err == nil && int(st.Uid) == uid {
		return nil
	}
	return fmt.Errorf("the socket is served by %s, running as uid %d: gvsd takes its configuration only from a server running as root, as gvsd's user (uid %d) or as the owner of the socket's directory", procinfo.Describe(pid), uid, os.Geteuid())
}

func newConn(c net.Conn, notify func(string, json.RawMessage)) *conn {
	cn := &conn{c: c, notify: notify, pending: map[string]*pending{}, closed: make(chan struct{})}
	cn.lastRead.Store(time.Now().UnixNano())
	go cn.read()
	return cn
}

// limitedReader fails once a single message has taken more than
// MaxMessage bytes; the count restarts at each message.
type limitedReader struct {
	r io.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n >= MaxMessage {
		return 0, fmt.Errorf("message from the server larger than MaxMessage (%d bytes)", MaxMessage)
	}
	n, err := l.r.Read(p)
	l.n += n
	return n, err
}

func (cn *conn) read() {
	lr := &limitedReader{r: bufio.NewReaderSize(cn.c, 64<<10)}
	dec := json.NewDecoder(lr)
	var err error
	for {
		lr.n = 0
		var m rpcMessage
		if err = dec.Decode(&m); err != nil {
			break
		}
		cn.lastRead.Store(time.Now().UnixNano())
		if err = cn.dispatch(&m); err != nil {
			break
		}
	}
	cn.finish(err)
}

// dispatch handles one message from the server.
func (cn *conn) dispatch(m *rpcMessage) error {
	if m.Method == "" {
		cn.mu.Lock()
		p := cn.pending[string(m.ID)]
		delete(cn.pending, string(m.ID))
		cn.mu.Unlock()
		if p == nil {
			return nil // the caller gave up
		}
		r := reply{result: m.Result}
		if len(m.Error) > 0 && string(m.Error) != "null" {
			r.err = &RPCError{Text: string(m.Error)}
		} else if p.onReply != nil {
			if err := p.onReply(m.Result); err != nil {
				p.done <- reply{err: err}
				return err
			}
		}
		p.done <- r
		return nil
	}
	if m.Method == "echo" && len(m.ID) > 0 && string(m.ID) != "null" {
		return cn.send(map[string]any{"id": m.ID, "result": m.Params, "error": nil})
	}
	cn.notify(m.Method, m.Params)
	return nil
}

// RPCError is an error reply from the server.
type RPCError struct{ Text string }

func (e *RPCError) Error() string { return e.Text }

func (cn *conn) finish(err error) {
	if err == nil || errors.Is(err, io.EOF) {
		err = errors.New("connection closed by the server")
	}
	cn.mu.Lock()
	if cn.err == nil {
		cn.err = err
	}
	for id, p := range cn.pending {
		p.done <- reply{err: cn.err}
		delete(cn.pending, id)
	}
	cn.mu.Unlock()
	cn.c.Close()
	close(cn.closed)
}

// close ends the connection; the reader fails its pending calls.
func (cn *conn) close(why error) {
	cn.mu.Lock()
	if cn.err == nil {
		cn.err = why
	}
	cn.mu.Unlock()
	cn.c.Close()
}

// Err is why the connection ended, once it has.
func (cn *conn) Err() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

func (cn *conn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	_ = cn.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = cn.c.Write(b)
	return err
}

// call sends a request and waits for its reply, for at most timeout.
func (cn *conn) call(method string, params []any, timeout time.Duration, onReply func(json.RawMessage) error) (json.RawMessage, error) {
	p := &pending{done: make(chan reply, 1), onReply: onReply}
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		return nil, err
	}
	cn.nextID++
	id := strconv.Itoa(cn.nextID)
	cn.pending[id] = p
	cn.mu.Unlock()
	if params == nil {
		params = []any{}
	}
	if err := cn.send(map[string]any{"id": cn.nextIDValue(id), "method": method, "params": params}); err != nil {
		cn.close(fmt.Errorf("sending %s: %w", method, err))
		return nil, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-p.done:
		return r.result, r.err
	case <-t.C:
		cn.mu.Lock()
		delete(cn.pending, id)
		cn.mu.Unlock()
		return nil, fmt.Errorf("%s: no reply within %v", method, timeout)
	}
}

// nextIDValue is the id as sent: a number, which the server echoes back
// in the same form, so the reply's raw id equals id.
func (cn *conn) nextIDValue(id string) json.RawMessage { return json.RawMessage(id) }
