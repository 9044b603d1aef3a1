package ovsdb

import (
	"encoding/json"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// rpcWait bounds every wait for a message from the server.
const rpcWait = 5 * time.Second

// testServer serves db on a unix socket in a temporary directory.
func testServer(t *testing.T, db *DB, configure func(*Server)) (*Server, string) {
	t.Helper()
	srv, err := NewServer(db)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	if configure != nil {
		configure(srv)
	}
	path := filepath.Join(t.TempDir(), "db.sock")
	if _, err := srv.Listen("punix:" + path); err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv, path
}

// rpcClient is a minimal JSON-RPC client: it keeps every message from the
// server in arrival order, so tests can check the order of notifications
// and replies.
type rpcClient struct {
	t      *testing.T
	conn   net.Conn
	wmu    sync.Mutex
	msgs   chan map[string]any
	closed chan struct{}
	seen   []map[string]any // received but not consumed yet, in order
	nextID int
}

func dial(t *testing.T, path string) *rpcClient {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c := &rpcClient{t: t, conn: conn, msgs: make(chan map[string]any, 100000), closed: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(func() { conn.Close() })
	return c
}

func (c *rpcClient) readLoop() {
	defer close(c.closed)
	dec := json.NewDecoder(c.conn)
	dec.UseNumber()
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return
		}
		c.msgs <- m
	}
}

// send writes one message.
func (c *rpcClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// request sends a request and returns its id without waiting.
func (c *rpcClient) request(method string, params ...any) string {
	c.t.Helper()
	c.nextID++
	id := "r" + itoa(c.nextID)
	if params == nil {
		params = []any{}
	}
	c.send(map[string]any{"id": id, "method": method, "params": params})
	return id
}

func itoa(n int) string { return string(mustJSON(n)) }

// next returns the next message not consumed yet, waiting up to d.
func (c *rpcClient) next(d time.Duration) (map[string]any, bool) {
	if len(c.seen) > 0 {
		m := c.seen[0]
		c.seen = c.seen[1:]
		return m, true
	}
	return c.receive(d)
}

func (c *rpcClient) receive(d time.Duration) (map[string]any, bool) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case m := <-c.msgs:
		return m, true
	case <-timer.C:
		return nil, false
	}
}

// reply waits for the reply to id; messages before it stay queued, so
// notifications that came first can still be read, in order.
func (c *rpcClient) reply(id string) map[string]any {
	c.t.Helper()
	for i, m := range c.seen {
		if m["id"] == id {
			c.seen = append(c.seen[:i], c.seen[i+1:]...)
			return m
		}
	}
	deadline := time.Now().Add(rpcWait)
	for {
		m, ok := c.receive(time.Until(deadline))
		if !ok {
			c.t.Fatalf("no reply to %s within %v", id, rpcWait)
		}
		if m["id"] == id {
			return m
		}
		c.seen = append(c.seen, m)
	}
}

// call sends a request and waits for its reply.
func (c *rpcClient) call(method string, params ...any) map[string]any {
	c.t.Helper()
	return c.reply(c.request(method, params...))
}

// result calls and fails on a JSON-RPC error.
func (c *rpcClient) result(method string, params ...any) any {
	c.t.Helper()
	r := c.call(method, params...)
	if r["error"] != nil {
		c.t.Fatalf("%s %s: error %s", method, mustJSONText(c.t, params), mustJSONText(c.t, r["error"]))
	}
	return r["result"]
}

// notification waits for the next queued notification, which must have
// the given method; replies before it are an error.
func (c *rpcClient) notification(method string) []any {
	c.t.Helper()
	m, ok := c.next(rpcWait)
	if !ok {
		c.t.Fatalf("no %s notification within %v", method, rpcWait)
	}
	if m["method"] != method {
		c.t.Fatalf("got %s, want a %s notification", mustJSONText(c.t, m), method)
	}
	if id, present := m["id"]; !present || id != nil {
		c.t.Fatalf("notification %s lacks \"id\": null", mustJSONText(c.t, m))
	}
	params, _ := m["params"].([]any)
	return params
}

// quiet asserts that nothing arrives for a while.
func (c *rpcClient) quiet(d time.Duration) {
	c.t.Helper()
	if m, ok := c.next(d); ok {
		c.t.Fatalf("unexpected message %s", mustJSONText(c.t, m))
	}
}

// waitClosed asserts that the server closes the connection.
func (c *rpcClient) waitClosed() {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(rpcWait):
		c.t.Fatal("server did not close the connection")
	}
}

// transact sends a transact on database Test with ops written as JSON.
func (c *rpcClient) transact(opsJSON string) string {
	c.t.Helper()
	v, err := decodeJSON([]byte(opsJSON))
	if err != nil {
		c.t.Fatal(err)
	}
	return c.request("transact", append([]any{"Test"}, v.([]any)...)...)
}

// mustTransact runs a transaction and fails on any error in its results.
func (c *rpcClient) mustTransact(opsJSON string) []any {
	c.t.Helper()
	r := c.reply(c.transact(opsJSON))
	res, ok := r["result"].([]any)
	if !ok {
		c.t.Fatalf("transact %s: %s", opsJSON, mustJSONText(c.t, r))
	}
	for _, x := range res {
		if errTag(x) != "" {
			c.t.Fatalf("transact %s: %s", opsJSON, mustJSONText(c.t, res))
		}
	}
	return res
}
