package ovsdb

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServerBasicMethods(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, nil)
	c := dial(t, path)

	names := c.result("list_dbs").([]any)
	has := map[any]bool{}
	for _, n := range names {
		has[n] = true
	}
	if !has["Test"] || !has["_Server"] || len(names) != 2 {
		t.Fatalf("list_dbs = %v", names)
	}
	schema := c.result("get_schema", "Test").(map[string]any)
	if schema["name"] != "Test" || schema["version"] != "1.2.3" {
		t.Fatalf("get_schema: name %v version %v", schema["name"], schema["version"])
	}
	if _, ok := schema["tables"].(map[string]any)["Root"]; !ok {
		t.Fatal("get_schema lacks table Root")
	}
	jsonIs(t, "echo", c.result("echo", "hello", 1), `["hello",1]`)
	if id := c.result("get_server_id"); id != srv.serverID.String() {
		t.Fatalf("get_server_id = %v", id)
	}
	jsonIs(t, "set_db_change_aware", c.result("set_db_change_aware", true), `{}`)

	errCases := []struct {
		method string
		params []any
		tag    string
	}{
		{"no_such_method", []any{}, "unknown method"},
		{"get_schema", []any{"Nope"}, "unknown database"},
		{"get_schema", []any{}, "syntax error"},
		{"transact", []any{"Nope", map[string]any{"op": "comment", "comment": "x"}}, "unknown database"},
		{"transact", []any{"_Server", map[string]any{"op": "delete", "table": "Database", "where": []any{}}}, "not allowed"},
		{"lock", []any{}, "syntax error"},
		{"unlock", []any{7}, "syntax error"},
	}
	for _, ec := range errCases {
		r := c.call(ec.method, ec.params...)
		if r["result"] != nil || errTag(r["error"]) != ec.tag {
			t.Errorf("%s %v: %s, want error %q", ec.method, ec.params, mustJSONText(t, r), ec.tag)
		}
	}

	// _Server describes every database, and can be read.
	r := c.result("transact", "_Server", map[string]any{"op": "select", "table": "Database", "where": []any{},
		"columns": []any{"name", "model", "connected", "leader"}}).([]any)
	rows := r[0].(map[string]any)["rows"].([]any)
	if len(rows) != 2 {
		t.Fatalf("_Server Database rows: %s", mustJSONText(t, rows))
	}
	for _, row := range rows {
		m := row.(map[string]any)
		if m["model"] != "standalone" || m["connected"] != true || m["leader"] != true {
			t.Errorf("_Server row %v", m)
		}
	}
	// A database's schema in _Server is the same text get_schema returns.
	r = c.result("transact", "_Server", map[string]any{"op": "select", "table": "Database",
		"where": []any{[]any{"name", "==", "Test"}}, "columns": []any{"schema"}}).([]any)
	text := r[0].(map[string]any)["rows"].([]any)[0].(map[string]any)["schema"].(string)
	var fromServer map[string]any
	if err := json.Unmarshal([]byte(text), &fromServer); err != nil || fromServer["name"] != "Test" {
		t.Fatalf("_Server schema column %q: %v", text, err)
	}
	// A monitor on _Server, as ovs-vsctl does first.
	upd := c.result("monitor_cond", "_Server", "s", map[string]any{"Database": []any{map[string]any{"columns": []any{"name", "model"}}}})
	if len(rowUpdates(t, upd, "Database")) != 2 {
		t.Fatalf("_Server monitor: %s", mustJSONText(t, upd))
	}
}

func TestServerTransactResultShapes(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	res := c.mustTransact(`[{"op":"insert","table":"Root","row":{"name":"a"}},{"op":"comment","comment":"c"}]`)
	if len(res) != 2 {
		t.Fatalf("results %v", res)
	}
	// Op error: the error at its position, nothing after.
	r := c.reply(c.transact(`[{"op":"comment","comment":"c"},{"op":"abort"},{"op":"comment","comment":"d"}]`))
	if r["error"] != nil {
		t.Fatalf("JSON-RPC error for a failed transaction: %v", r)
	}
	txFails(t, r["result"].([]any), 1, "aborted")
	// Commit error: one extra element.
	r = c.reply(c.transact(`[{"op":"insert","table":"Root","row":{"name":"a"}}]`))
	txFails(t, r["result"].([]any), 1, "constraint violation")
	// Assert without the lock.
	r = c.reply(c.transact(`[{"op":"assert","lock":"L"}]`))
	txFails(t, r["result"].([]any), 0, "not owner")
}

func TestServerMalformedInput(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	// A request that is JSON but not a valid request: an error, and the
	// connection stays up.
	for _, msg := range []string{`{"method":"echo"}`, `{"params":[]}`, `[1,2]`, `{"method":"echo","params":[1,]}`} {
		c.wmu.Lock()
		c.conn.Write([]byte(msg))
		c.wmu.Unlock()
		m, ok := c.next(rpcWait)
		if !ok || errTag(m["error"]) != "syntax error" {
			t.Fatalf("%s: got %s, want a syntax error", msg, mustJSONText(t, m))
		}
	}
	// The error for a malformed request with an id goes to that id.
	c.send(map[string]any{"id": "q1", "method": "echo", "params": nil})
	if r := c.reply("q1"); errTag(r["error"]) != "syntax error" {
		t.Fatalf("malformed request with id: %s", mustJSONText(t, r))
	}
	jsonIs(t, "echo still works", c.result("echo", "x"), `["x"]`)
	// A reply from the client (to nothing) is ignored.
	c.send(map[string]any{"id": "zz", "result": []any{}, "error": nil})
	jsonIs(t, "echo after a reply", c.result("echo", "y"), `["y"]`)
	// Bytes that cannot start a JSON text break the framing: error, close.
	c.wmu.Lock()
	c.conn.Write([]byte(`hello`))
	c.wmu.Unlock()
	m, ok := c.next(rpcWait)
	if !ok || m["error"] == nil {
		t.Fatalf("garbage: got %s, want an error", mustJSONText(t, m))
	}
	c.waitClosed()
}

func TestServerMessageTooLarge(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, func(s *Server) { s.MaxMessage = 1000 })
	c := dial(t, path)
	jsonIs(t, "small echo", c.result("echo", strings.Repeat("x", 500)), fmt.Sprintf(`[%q]`, strings.Repeat("x", 500)))
	big := fmt.Sprintf(`{"id":1,"method":"echo","params":[%q]}`, strings.Repeat("x", 5000))
	go func() {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.conn.Write([]byte(big)) // may fail once the server closes
	}()
	m, ok := c.next(rpcWait)
	if !ok || errTag(m["error"]) == "" {
		t.Fatalf("oversized message: got %s, want an error", mustJSONText(t, m))
	}
	if !strings.Contains(mustJSONText(t, m["error"]), "1000") {
		t.Errorf("error does not give the limit: %s", mustJSONText(t, m))
	}
	c.waitClosed()
}

func TestServerLocks(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	a, b, w := dial(t, path), dial(t, path), dial(t, path)
	jsonIs(t, "a lock", a.result("lock", "L"), `{"locked":true}`)
	jsonIs(t, "b lock", b.result("lock", "L"), `{"locked":false}`)
	jsonIs(t, "a assert", a.mustTransact(`[{"op":"assert","lock":"L"}]`), `[{}]`)
	r := b.reply(b.transact(`[{"op":"assert","lock":"L"}]`))
	txFails(t, r["result"].([]any), 0, "not owner")

	// b steals: a is told, and b owns it.
	jsonIs(t, "b steal", b.result("steal", "L"), `{"locked":true}`)
	jsonIs(t, "stolen", a.notification("stolen"), `["L"]`)
	b.mustTransact(`[{"op":"assert","lock":"L"}]`)
	r = a.reply(a.transact(`[{"op":"assert","lock":"L"}]`))
	txFails(t, r["result"].([]any), 0, "not owner")

	// b unlocks: the waiting a gets the lock and a "locked" notification.
	jsonIs(t, "b unlock", b.result("unlock", "L"), `{}`)
	jsonIs(t, "locked", a.notification("locked"), `["L"]`)
	a.mustTransact(`[{"op":"assert","lock":"L"}]`)

	// A session that closes gives its lock to the next waiter.
	jsonIs(t, "w lock", w.result("lock", "L"), `{"locked":false}`)
	a.conn.Close()
	jsonIs(t, "locked after close", w.notification("locked"), `["L"]`)
	w.mustTransact(`[{"op":"assert","lock":"L"}]`)
	b.quiet(100 * time.Millisecond)
}

func TestServerWaitBlocksUntilCommit(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "x", `,"n":1`)
	_, path := testServer(t, db, nil)
	a, b := dial(t, path), dial(t, path)
	id := a.transact(`[{"op":"wait","table":"Root","where":[["name","==","x"]],"columns":["n"],"until":"==",
		"rows":[{"n":5}],"timeout":10000},{"op":"insert","table":"Root","row":{"name":"after-wait"}}]`)
	a.quiet(300 * time.Millisecond)
	if db.RowCount("Root") != 1 {
		t.Fatal("transaction behind a blocked wait committed")
	}
	start := time.Now()
	b.mustTransact(`[{"op":"update","table":"Root","where":[["name","==","x"]],"row":{"n":5}}]`)
	r := a.reply(id)
	if time.Since(start) > 3*time.Second {
		t.Fatalf("wait answered %v after the commit that satisfied it", time.Since(start))
	}
	res, _ := r["result"].([]any)
	if len(res) != 2 || errTag(res[0]) != "" || errTag(res[1]) != "" {
		t.Fatalf("wait reply %s", mustJSONText(t, r))
	}
	if db.RowCount("Root") != 2 {
		t.Fatal("insert after the satisfied wait missing")
	}
	checkInvariants(t, db)
}

func TestServerWaitTimesOut(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "x", `,"n":1`)
	_, path := testServer(t, db, nil)
	a := dial(t, path)
	start := time.Now()
	r := a.reply(a.transact(`[{"op":"comment","comment":"c"},{"op":"wait","table":"Root","where":[],"columns":["n"],"until":"==",
		"rows":[{"n":5}],"timeout":300}]`))
	elapsed := time.Since(start)
	txFails(t, r["result"].([]any), 1, "timed out")
	if elapsed < 250*time.Millisecond || elapsed > 3*time.Second {
		t.Fatalf("wait with timeout 300ms answered after %v", elapsed)
	}
	// A commit that does not satisfy the wait does not end it early.
	id := a.transact(`[{"op":"wait","table":"Root","where":[],"columns":["n"],"until":"==","rows":[{"n":5}],"timeout":400}]`)
	insertRoot(t, db, "y", `,"n":2`)
	a.quiet(200 * time.Millisecond)
	txFails(t, a.reply(id)["result"].([]any), 0, "timed out")
}

func TestServerCancel(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	a := dial(t, path)
	id := a.transact(`[{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[{"name":"never"}]}]`)
	a.quiet(200 * time.Millisecond)
	a.send(map[string]any{"id": nil, "method": "cancel", "params": []any{id}})
	// RFC 7047 4.1.4: an error reply with "error": "canceled".
	jsonIs(t, "canceled reply", a.reply(id), fmt.Sprintf(`{"id":%q,"result":null,"error":"canceled"}`, id))
	// The canceled transaction is gone: a later commit sends nothing more.
	insertRoot(t, db, "never", "")
	a.quiet(200 * time.Millisecond)
	db.mu.Lock()
	n := len(db.waiting)
	db.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d transactions still waiting", n)
	}
}

func TestServerClosedSessionDropsWaits(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, nil)
	a := dial(t, path)
	a.result("monitor_cond", "Test", "m", map[string]any{"Root": []any{map[string]any{}}})
	a.transact(`[{"op":"wait","table":"Root","where":[],"until":"==","rows":[{"name":"never"}]}]`)
	a.quiet(100 * time.Millisecond)
	a.conn.Close()
	waitFor(t, "the closed session's wait, monitor and session to go", func() bool {
		srv.mu.Lock()
		sessions := len(srv.sessions)
		srv.mu.Unlock()
		db.mu.Lock()
		defer db.mu.Unlock()
		return len(db.waiting) == 0 && len(db.mons) == 0 && sessions == 0
	})
	insertRoot(t, db, "never", "")
}

// TestServerSlowClientDoesNotBlock floods a monitoring client that never
// reads; the other client's transactions must go on at full speed, and the
// slow one is disconnected.
func TestServerSlowClientDoesNotBlock(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, func(s *Server) { s.SendQueue = 8 })
	slow, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	req := `{"id":1,"method":"monitor_cond","params":["Test","m",{"Root":[{"columns":["name","opts"]}]}]}`
	if _, err := slow.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	fast := dial(t, path)
	waitFor(t, "the slow client's monitor", func() bool {
		db.mu.Lock()
		defer db.mu.Unlock()
		return len(db.mons) == 1
	})
	payload := strings.Repeat("p", 8000)
	start := time.Now()
	for i := 0; i < 300; i++ {
		t0 := time.Now()
		fast.mustTransact(fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":"r%d","opts":["map",[["p",%q]]]}}]`, i, payload))
		if d := time.Since(t0); d > 2*time.Second {
			t.Fatalf("transaction %d took %v behind a client that does not read", i, d)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("300 transactions took %v", d)
	}
	// The slow client was dropped: its session and monitor are gone.
	waitFor(t, "the slow client to be dropped", func() bool {
		srv.mu.Lock()
		n := len(srv.sessions)
		srv.mu.Unlock()
		db.mu.Lock()
		defer db.mu.Unlock()
		return n == 1 && len(db.mons) == 0
	})
}

// waitFor polls cond until it holds, failing after rpcWait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(rpcWait); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestServerConcurrentClients(t *testing.T) {
	db := openTestDB(t, tempDBPath(t))
	_, path := testServer(t, db, nil)
	watcher := dial(t, path)
	watcher.result("monitor_cond", "Test", "m", map[string]any{"Root": []any{map[string]any{"columns": []any{"n"}}}})
	const clients, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan string, clients*each)
	for i := 0; i < clients; i++ {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		wg.Add(1)
		go func(i int, conn net.Conn) {
			defer wg.Done()
			dec := json.NewDecoder(conn)
			for j := 0; j < each; j++ {
				msg := fmt.Sprintf(`{"id":%d,"method":"transact","params":["Test",{"op":"insert","table":"Root","row":{"name":"c%d-%d","n":%d}}]}`, j, i, j, j)
				if _, err := conn.Write([]byte(msg)); err != nil {
					errs <- err.Error()
					return
				}
				var reply map[string]any
				if err := dec.Decode(&reply); err != nil {
					errs <- err.Error()
					return
				}
				if res, _ := reply["result"].([]any); len(res) != 1 || errTag(res[0]) != "" {
					errs <- mustJSONText(t, reply)
				}
			}
		}(i, conn)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	seen := 0
	for seen < clients*each {
		seen += len(rowUpdates(t, watcher.notification("update2")[1], "Root"))
	}
	if db.RowCount("Root") != clients*each {
		t.Fatalf("%d rows, want %d", db.RowCount("Root"), clients*each)
	}
	checkInvariants(t, db)
}

func TestServerClose(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, nil)
	c := dial(t, path)
	c.result("echo")
	srv.Close()
	c.waitClosed()
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("listener still accepting after Close")
	}
	if _, err := srv.Listen("punix:" + path); err == nil {
		t.Fatal("Listen after Close succeeded")
	}
}

func TestListenSpecs(t *testing.T) {
	db := newTestDB(t)
	srv, err := NewServer(db)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.Listen("ssl:1.2.3.4:6640"); err == nil {
		t.Error("ssl listener accepted")
	}
	addr, err := srv.Listen("ptcp:0:127.0.0.1")
	if err != nil {
		t.Fatalf("ptcp: %v", err)
	}
	conn, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`{"id":0,"method":"echo","params":[]}`))
	var m map[string]any
	conn.SetReadDeadline(time.Now().Add(rpcWait))
	if err := json.NewDecoder(conn).Decode(&m); err != nil || m["error"] != nil {
		t.Fatalf("echo over tcp: %v %v", m, err)
	}
	// A bare path is a unix socket; a stale socket file is replaced.
	path := t.TempDir() + "/bare.sock"
	staleSocket(t, path)
	if _, err := srv.Listen(path); err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
}

// TestServerLockTwiceThenUnlock: a waiter that asks twice and unlocks once
// is no longer waiting, and must not be handed the lock later.
func TestServerLockTwiceThenUnlock(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	a, b := dial(t, path), dial(t, path)
	jsonIs(t, "a lock", a.result("lock", "L"), `{"locked":true}`)
	jsonIs(t, "b lock", b.result("lock", "L"), `{"locked":false}`)
	jsonIs(t, "b lock again", b.result("lock", "L"), `{"locked":false}`)
	jsonIs(t, "b unlock", b.result("unlock", "L"), `{}`)
	jsonIs(t, "a unlock", a.result("unlock", "L"), `{}`)
	b.quiet(200 * time.Millisecond)
	r := b.reply(b.transact(`[{"op":"assert","lock":"L"}]`))
	txFails(t, r["result"].([]any), 0, "not owner")
	// The lock is free again for anyone.
	jsonIs(t, "a relock", a.result("lock", "L"), `{"locked":true}`)
}

// TestServerWaitReleasedCommitRunsHooks: a parked transaction that a later
// commit releases commits too, and the commit hooks (the switch applying
// the change) run for it, not only for the commit that released it.
func TestServerWaitReleasedCommitRunsHooks(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "x", `,"n":1`)
	hooked := make(chan string, 10)
	db.OnCommit(func(cm *Commit) {
		for _, c := range cm.Changes {
			if c.Old == nil && c.New != nil {
				name, _ := c.New.Get(c.Table, "name")
				hooked <- name.Keys[0].(string)
			}
		}
	})
	_, path := testServer(t, db, nil)
	a, b := dial(t, path), dial(t, path)
	id := a.transact(`[{"op":"wait","table":"Root","where":[["name","==","x"]],"columns":["n"],"until":"==",
		"rows":[{"n":5}],"timeout":10000},{"op":"insert","table":"Root","row":{"name":"released"}}]`)
	a.quiet(200 * time.Millisecond)
	b.mustTransact(`[{"op":"update","table":"Root","where":[["name","==","x"]],"row":{"n":5}}]`)
	if res := a.reply(id)["result"].([]any); errTag(res[1]) != "" {
		t.Fatalf("released transaction: %s", mustJSONText(t, res))
	}
	select {
	case name := <-hooked:
		if name != "released" {
			t.Fatalf("hook saw an insert of %q", name)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no commit hook ran for the released transaction")
	}
}

// TestServerWaitRerunsOnlyOnItsTables: a parked transaction is run again
// only after commits to a table it waits on.
func TestServerWaitRerunsOnlyOnItsTables(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	a := dial(t, path)
	a.transact(`[{"op":"wait","table":"Child","where":[],"columns":["label"],"until":"==","rows":[{"label":"never"}],"timeout":10000}]`)
	a.quiet(200 * time.Millisecond)
	for i := range 20 {
		insertRoot(t, db, fmt.Sprint("r", i), "")
	}
	db.mu.Lock()
	n := db.reruns
	db.mu.Unlock()
	if n != 0 {
		t.Fatalf("a transaction waiting on Child ran again %d times for commits to Root", n)
	}
}

// TestServerWaitHugeTimeout: a timeout too large for a timer waits (as no
// timeout does) instead of overflowing and expiring at once.
func TestServerWaitHugeTimeout(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	a := dial(t, path)
	for _, timeout := range []string{"9223372036854775807", "1e300", "99999999999999"} {
		a.transact(`[{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[{"name":"never"}],"timeout":` + timeout + `}]`)
	}
	if m, ok := a.next(300 * time.Millisecond); ok {
		t.Fatalf("a wait with a huge timeout was answered at once: %s", mustJSONText(t, m))
	}
}
