package ovsdb

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"
)

// refused checks that a JSON-RPC reply is an error naming the limit.
func refused(t *testing.T, what string, r map[string]any, limit string) {
	t.Helper()
	if r["result"] != nil || errTag(r["error"]) != "resources exhausted" || !strings.Contains(errDetails(r["error"]), limit) {
		t.Fatalf("%s: got %s, want a \"resources exhausted\" error naming %s", what, mustJSONText(t, r), limit)
	}
}

func TestServerLimitMonitors(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, func(s *Server) { s.MaxMonitors = 3 })
	c := dial(t, path)
	req := map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}}}}
	for i := 0; i < 3; i++ {
		c.result("monitor_cond", "Test", fmt.Sprintf("m%d", i), req)
	}
	refused(t, "fourth monitor", c.call("monitor_cond", "Test", "m3", req), "MaxMonitors")
	if u := srv.usage(); u.Monitors != 3 {
		t.Fatalf("%d monitors registered, want 3", u.Monitors)
	}
	// The connection is still usable, and a cancelled monitor frees a place.
	jsonIs(t, "cancel", c.result("monitor_cancel", "m0"), `{}`)
	c.result("monitor_cond", "Test", "m3", req)
	insertRoot(t, db, "x", "")
	for i := 1; i <= 3; i++ {
		c.notification("update2")
	}
}

func TestServerLimitLocks(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, func(s *Server) { s.MaxLocks = 2 })
	a, b := dial(t, path), dial(t, path)
	jsonIs(t, "L1", a.result("lock", "L1"), `{"locked":true}`)
	jsonIs(t, "L2", b.result("lock", "L2"), `{"locked":true}`)
	jsonIs(t, "L2 waited for", a.result("lock", "L2"), `{"locked":false}`)
	refused(t, "a third lock", a.call("lock", "L3"), "MaxLocks")
	refused(t, "a third steal", a.call("steal", "L3"), "MaxLocks")
	// Asking again for a lock it has is no new lock.
	jsonIs(t, "L1 again", a.result("lock", "L1"), `{"locked":true}`)
	jsonIs(t, "unlock L2", a.result("unlock", "L2"), `{}`)
	jsonIs(t, "L3 after an unlock", a.result("lock", "L3"), `{"locked":true}`)
}

func TestServerLimitParked(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, func(s *Server) { s.MaxParked = 2 })
	c := dial(t, path)
	const wait = `[{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[{"name":"never"}],"timeout":60000}]`
	c.transact(wait)
	c.transact(wait)
	r := c.reply(c.transact(wait))
	if res, _ := r["result"].([]any); len(res) != 1 || errTag(res[0]) != "resources exhausted" || !strings.Contains(errDetails(res[0]), "MaxParked") {
		t.Fatalf("third parked wait: got %s, want a \"resources exhausted\" error naming MaxParked", mustJSONText(t, r))
	}
	if u := srv.usage(); u.Parked != 2 {
		t.Fatalf("%d transactions parked, want 2", u.Parked)
	}
	// A wait that does not block is not refused, and the client goes on.
	c.mustTransact(`[{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[],"timeout":60000}]`)
	jsonIs(t, "echo", c.result("echo", "x"), `["x"]`)
}

func TestServerLimitSessions(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, func(s *Server) { s.MaxSessions = 2 })
	a := dial(t, path)
	a.result("echo")
	b := dial(t, path)
	b.result("echo")
	c := dial(t, path)
	m, ok := c.next(rpcWait)
	if !ok {
		t.Fatal("a client over the session limit was told nothing")
	}
	refused(t, "third session", m, "MaxSessions")
	c.waitClosed()
	a.conn.Close()
	waitFor(t, "the closed session to go", func() bool { return srv.usage().Sessions == 1 })
	dial(t, path).result("echo")
}

// TestServerOversizedMessageNotAllocated streams a request far over the
// limit: the client gets an error and is disconnected, and the server
// never allocates the whole request.
func TestServerOversizedMessageNotAllocated(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	chunk := []byte(strings.Repeat("x", 64<<10))
	const total = 80 << 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	go func() {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		if _, err := c.conn.Write([]byte(`{"id":1,"method":"echo","params":["`)); err != nil {
			return
		}
		for n := 0; n < total; n += len(chunk) {
			if _, err := c.conn.Write(chunk); err != nil {
				return // the server hung up
			}
		}
	}()
	m, ok := c.next(rpcWait)
	if !ok {
		t.Fatal("no error for an oversized request")
	}
	refused(t, "oversized request", m, "MaxMessage")
	c.waitClosed()
	runtime.ReadMemStats(&after)
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB", grew>>20)
	if grew > 3*DefaultMaxMessage {
		t.Fatalf("the server allocated %d MiB for a request cut at %d MiB", grew>>20, DefaultMaxMessage>>20)
	}
}

// TestServerSlowMonitorsBoundedMemory: 100 monitors on one connection
// that never reads, and commits of large rows. The heap stays bounded
// (identical updates are encoded once, the send queue has a byte budget)
// and the slow client is dropped.
func TestServerSlowMonitorsBoundedMemory(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, nil)
	slow, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	var b strings.Builder
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, `{"id":%d,"method":"monitor_cond","params":["Test","m%d",{"Root":[{"columns":["name","opts"]}]}]}`, i, i)
	}
	if _, err := slow.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "100 monitors", func() bool { return srv.usage().Monitors == 100 })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fast := dial(t, path)
	payload := strings.Repeat("p", 256<<10)
	for i := 0; i < 10; i++ {
		fast.mustTransact(fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":"r%d","opts":["map",[["p",%q]]]}}]`, i, payload))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	const bound = 64 << 20
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap grew by %d KiB", grew>>10)
	if grew > bound {
		t.Fatalf("heap grew by %d MiB (bound %d MiB)", grew>>20, bound>>20)
	}
	waitFor(t, "the slow client to be dropped", func() bool {
		u := srv.usage()
		return u.Sessions == 1 && u.Monitors == 0
	})
}

// TestServerIdleSessionsAreSmall: an idle connection costs little memory
// (no send queue or large buffer allocated ahead of need).
func TestServerIdleSessionsAreSmall(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, nil)
	const n = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "every session", func() bool { return srv.usage().Sessions == n })
	time.Sleep(100 * time.Millisecond) // let the sessions start reading
	runtime.GC()
	runtime.ReadMemStats(&after)
	used := int64(after.HeapAlloc+after.StackInuse) - int64(before.HeapAlloc+before.StackInuse)
	const bound = 48 << 10
	per := used / n
	t.Logf("an idle session costs %d bytes", per)
	if per > bound {
		t.Fatalf("an idle session costs %d KiB (bound %d KiB)", per>>10, bound>>10)
	}
}

// TestServerSharedMonitorUpdates: monitors with the same requests, in
// different sessions, queue one shared encoding of a commit's update;
// a monitor with other requests gets its own.
func TestServerSharedMonitorUpdates(t *testing.T) {
	db := newTestDB(t)
	srv, err := NewServer(db)
	if err != nil {
		t.Fatal(err)
	}
	req := `{"Root":[{"columns":["name","n"]}]}`
	var sessions []*session
	for i, r := range []string{req, req, `{"Root":[{"columns":["name"]}]}`} {
		client, server := net.Pipe()
		defer client.Close()
		ss := newSession(srv, server) // no writer: messages stay queued
		sessions = append(sessions, ss)
		params := ops(t, fmt.Sprintf(`["Test","m%d",%s]`, i, r))
		ss.monitor(&request{Method: "monitor_cond", Params: params, ID: i}, 2)
	}
	insertRoot(t, db, "x", `,"n":1`)
	last := func(ss *session) outMsg {
		ss.qmu.Lock()
		defer ss.qmu.Unlock()
		if len(ss.queue) != 2 {
			t.Fatalf("%d messages queued, want the monitor reply and one update", len(ss.queue))
		}
		return ss.queue[1]
	}
	a, b, c := last(sessions[0]), last(sessions[1]), last(sessions[2])
	if &a.body[0] != &b.body[0] {
		t.Error("identical monitors encoded the update twice")
	}
	if &a.body[0] == &c.body[0] || string(a.body) == string(c.body) {
		t.Error("monitors with different columns share an update")
	}
	for i, m := range []outMsg{a, b, c} {
		msg := string(m.head) + string(m.body) + string(m.tail)
		if !strings.HasPrefix(msg, fmt.Sprintf(`{"id":null,"method":"update2","params":["m%d",{"Root":{`, i)) {
			t.Errorf("update %d: %s", i, msg)
		}
		if _, err := decodeJSON([]byte(msg)); err != nil {
			t.Errorf("update %d is not JSON: %v", i, err)
		}
	}
}

// TestServerNonReadingClientTornDown: a client that holds a lock, sends
// requests whose replies it never reads and then closes its sending side
// is torn down within the write timeout, and its lock goes to another.
func TestServerNonReadingClientTornDown(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, func(s *Server) { s.WriteTimeout = 300 * time.Millisecond })
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	big := strings.Repeat("e", 64<<10)
	var b strings.Builder
	b.WriteString(`{"id":"l","method":"lock","params":["L"]}`)
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, `{"id":%d,"method":"echo","params":[%q]}`, i, big)
	}
	go func() {
		if _, err := conn.Write([]byte(b.String())); err == nil {
			conn.(*net.UnixConn).CloseWrite()
		}
	}()
	waitFor(t, "the non-reading client to be torn down", func() bool {
		u := srv.usage()
		return u.Sessions == 0 && u.Locks == 0
	})
	jsonIs(t, "lock after teardown", dial(t, path).result("lock", "L"), `{"locked":true}`)
}

// TestServerSelectRepliesBounded: a small request of many "select"
// operations over a large row would build a reply hundreds of times its
// own size; the transaction is refused once its results pass MaxReply,
// without building more.
func TestServerSelectRepliesBounded(t *testing.T) {
	db := newTestDB(t)
	const limit = 8 << 20
	_, path := testServer(t, db, func(s *Server) { s.MaxReply = limit })
	insertRoot(t, db, "big", fmt.Sprintf(`,"opts":["map",[["p",%q]]]`, strings.Repeat("p", 1<<20)))
	c := dial(t, path)
	sel := `{"op":"select","table":"Root","where":[]}`
	const n = 100 // 100 MiB of results
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := c.reply(c.transact("[" + strings.TrimSuffix(strings.Repeat(sel+",", n), ",") + "]"))
	runtime.ReadMemStats(&after)
	res, _ := r["result"].([]any)
	if len(res) == 0 || errTag(res[len(res)-1]) != "resources exhausted" || !strings.Contains(errDetails(res[len(res)-1]), "MaxReply") {
		t.Fatalf("%d selects of a 1 MiB row: got %d results, last %.200s; want a \"resources exhausted\" error naming MaxReply",
			n, len(res), mustJSONText(t, res[len(res)-1]))
	}
	grew := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB", grew>>20)
	// The reply holds the results up to the limit: encoded, sent and
	// decoded by the test's client, a few times the limit in all (the
	// 100 MiB of results, unbounded, made some 450 MiB).
	if grew > 12*limit {
		t.Fatalf("%d MiB allocated for a transaction refused at MaxReply %d MiB", grew>>20, limit>>20)
	}
	// A select within the limit still works, on the same connection.
	if got := c.mustTransact(`[{"op":"select","table":"Root","where":[],"columns":["name"]}]`); len(got) != 1 {
		t.Fatalf("select after the refusal: %s", mustJSONText(t, got))
	}
}

// TestServerParkedBytesBounded: parked "wait" transactions are kept,
// decoded, until a commit or their timeout releases them, and rerun on
// every commit to the tables they wait on. The requests they hold are
// bounded across the server, not only in number per client: over the
// bound, the wait fails instead of parking.
func TestServerParkedBytesBounded(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, nil)
	c := dial(t, path)
	pad := strings.Repeat("w", 1<<20)
	wait := fmt.Sprintf(`[{"op":"wait","table":"Root","where":[],"columns":["name"],"until":"==","rows":[{"name":"never"}],"timeout":600000},{"op":"comment","comment":%q}]`, pad)
	const n = 24 // 24 MiB of requests, each under MaxMessage and MaxParked
	for i := 0; i < n; i++ {
		c.transact(wait)
	}
	var refusals int
	for {
		m, ok := c.next(2 * time.Second)
		if !ok {
			break
		}
		res, _ := m["result"].([]any)
		if len(res) != 1 || errTag(res[0]) != "resources exhausted" || !strings.Contains(errDetails(res[0]), "MaxParkedBytes") {
			t.Fatalf("reply %.300s, want a \"resources exhausted\" error naming MaxParkedBytes", mustJSONText(t, m))
		}
		refusals++
	}
	parked := srv.usage().Parked
	t.Logf("%d parked, %d refused", parked, refusals)
	if parked+refusals != n || int64(parked)*int64(len(wait)) > DefaultMaxParkedBytes {
		t.Fatalf("%d transactions of %d KiB parked and %d refused, of %d: the parked ones hold more than %d MiB",
			parked, len(wait)>>10, refusals, n, DefaultMaxParkedBytes>>20)
	}
	// Once the parked ones go, a wait parks again.
	c.conn.Close()
	waitFor(t, "the parked transactions to go", func() bool { return srv.usage().Parked == 0 })
	d := dial(t, path)
	d.transact(wait)
	waitFor(t, "a new wait to park", func() bool { return srv.usage().Parked == 1 })
}

// TestMonitorCondChangeOntoAnotherID: monitor_cond_change to the id of
// another monitor of the session is refused, as ovsdb-server does.
// Before, the other monitor was dropped from the session but stayed
// registered, getting every commit for good, session closed or not, and
// outside MaxMonitors: a client could pile up monitors without bound.
func TestMonitorCondChangeOntoAnotherID(t *testing.T) {
	db := newTestDB(t)
	srv, path := testServer(t, db, nil)
	c := dial(t, path)
	req := map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}}}}
	c.result("monitor_cond", "Test", "a", req)
	c.result("monitor_cond", "Test", "b", req)
	r := c.call("monitor_cond_change", "a", "b", map[string]any{"Root": []any{map[string]any{"where": []any{true}}}})
	if errTag(r["error"]) != "duplicate monitor ID" {
		t.Fatalf("monitor_cond_change onto another monitor's id: %s, want a \"duplicate monitor ID\" error", mustJSONText(t, r))
	}
	// Both monitors are still there, and both go with the session.
	jsonIs(t, "cancel a", c.result("monitor_cancel", "a"), `{}`)
	jsonIs(t, "cancel b", c.result("monitor_cancel", "b"), `{}`)
	for i := 0; i < 10; i++ {
		c.result("monitor_cond", "Test", "a", req)
		c.result("monitor_cond", "Test", "b", req)
		c.call("monitor_cond_change", "a", "b", map[string]any{"Root": []any{map[string]any{"where": []any{true}}}})
		c.call("monitor_cancel", "a")
		c.call("monitor_cancel", "b")
	}
	c.conn.Close()
	waitFor(t, "every monitor to go with the session", func() bool {
		u := srv.usage()
		return u.Sessions == 0 && u.Monitors == 0
	})
}

// TestServerMonitorBytesBounded: each monitor keeps its request (its
// conditions, parsed, and its text), so MaxMonitors alone let one client
// hold 256 requests of up to MaxMessage each: gigabytes. The requests a
// client's monitors hold are bounded together; over the bound, the
// monitor request gets a "resources exhausted" error.
func TestServerMonitorBytesBounded(t *testing.T) {
	db := newTestDB(t)
	db.MaxMonitorConditions = 1 << 30 // the bound on bytes is the one under test
	srv, path := testServer(t, db, nil)
	c := dial(t, path)
	conds := make([]any, 40000)
	for i := range conds {
		conds[i] = []any{"name", "==", fmt.Sprintf("r%07d", i)}
	}
	req := map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}, "where": conds}}}
	size := len(mustJSON(req))
	const n = 24
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var refusals int
	for i := 0; i < n; i++ {
		r := c.call("monitor_cond", "Test", fmt.Sprintf("m%d", i), req)
		if r["error"] != nil {
			refused(t, fmt.Sprintf("monitor %d", i), r, "MaxMonitorBytes")
			refusals++
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := srv.usage().Monitors
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d monitors of %d KiB held, %d refused; heap grew by %d MiB", held, size>>10, refusals, grew>>20)
	if held*size > DefaultMaxMonitorBytes || held+refusals != n {
		t.Fatalf("%d monitors of %d KiB held (bound %d MiB), %d refused, of %d", held, size>>10, DefaultMaxMonitorBytes>>20, refusals, n)
	}
	// A cancelled monitor makes room.
	jsonIs(t, "cancel", c.result("monitor_cancel", "m0"), `{}`)
	c.result("monitor_cond", "Test", "again", req)
}

// TestServerDatabaseSizeBounded: every request is bounded, but a client
// could grow the database by MaxMessage per transaction without end,
// in memory and in the journal. A transaction that would take the
// database past MaxSize is refused with "resources exhausted"; one that
// shrinks it still commits, and the refused rows never appear.
func TestServerDatabaseSizeBounded(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	db.MaxSize = 8 << 20
	_, sock := testServer(t, db, nil)
	c := dial(t, sock)
	pad := strings.Repeat("x", 1<<20)
	var committed, refusedAt int
	for i := 0; i < 16 && refusedAt == 0; i++ {
		res, _ := c.reply(c.transact(fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":"r%d","opts":["map",[["pad",%q]]]}}]`, i, pad)))["result"].([]any)
		switch {
		case len(res) == 1 && errTag(res[0]) == "":
			committed++
		case len(res) == 2 && errTag(res[1]) == "resources exhausted" && strings.Contains(errDetails(res[1]), "MaxSize"):
			refusedAt = i
		default:
			t.Fatalf("insert %d: %.300s", i, mustJSONText(t, res))
		}
	}
	t.Logf("%d rows of 1 MiB committed, then refused", committed)
	if refusedAt == 0 || committed > 8 {
		t.Fatalf("%d rows of 1 MiB committed into a database of at most 8 MiB", committed)
	}
	// Making room works, and then the insert does.
	c.mustTransact(`[{"op":"delete","table":"Root","where":[["name","==","r0"]]}]`)
	c.mustTransact(fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":"again","opts":["map",[["pad",%q]]]}}]`, pad))
	if n := len(selectRows(t, db, "Root", `[]`, `["name"]`)); n != committed {
		t.Fatalf("%d rows, want %d", n, committed)
	}
}

// TestDatabaseSizeFollowsCommits: the size estimate that MaxSize is
// checked against is the sum over the rows, after commits, failed
// syncs' undos and a reopen alike.
func TestDatabaseSizeFollowsCommits(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	sum := func(db *DB) (int64, int64) {
		db.mu.Lock()
		defer db.mu.Unlock()
		var n int64
		for _, td := range db.tables {
			for _, r := range td.rows {
				n += rowSize(r)
			}
		}
		return n, db.size
	}
	a := insertRoot(t, db, "a", `,"opts":["map",[["k","v"]]]`)
	insertRoot(t, db, "b", `,"nums":["set",[1,2,3]]`)
	mustTx(t, db, ops(t, fmt.Sprintf(`[{"op":"update","table":"Root","where":[["_uuid","==",%s]],"row":{"opts":["map",[["k","a longer value"]]]}}]`, uuidJSON(a))))
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","b"]]}]`))
	if want, got := sum(db); got != want || got == 0 {
		t.Fatalf("size %d after commits, rows sum to %d", got, want)
	}
	db.journal.Close()
	re, err := OpenDB(path, testSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer re.journal.Close()
	if want, got := sum(re); got != want || got == 0 {
		t.Fatalf("size %d after a reopen, rows sum to %d", got, want)
	}
}

// TestServerConditionWorkBounded: a "where" of many conditions is checked
// against every row, under the database's lock: 100,000 conditions (2 MB
// of request) over 2000 rows held every client and gvsd's own writes for
// seconds, and a request may be 16 MiB. A transaction whose conditions
// would take more than MaxCompares comparisons is refused before it
// scans; an in-process transaction (gvsd's own) is not limited.
func TestServerConditionWorkBounded(t *testing.T) {
	db := newTestDB(t)
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 2000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"op":"insert","table":"Root","row":{"name":"r%d"}}`, i)
	}
	b.WriteString("]")
	mustTx(t, db, ops(t, b.String()))
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	conds := strings.TrimSuffix(strings.Repeat(`["name","!=","zzz"],`, 100000), ",")
	for _, op := range []string{
		`{"op":"select","table":"Root","where":[` + conds + `],"columns":["name"]}`,
		`{"op":"update","table":"Root","where":[` + conds + `],"row":{"n":1}}`,
		`{"op":"wait","table":"Root","where":[` + conds + `],"columns":["name"],"until":"==","rows":[],"timeout":0}`,
	} {
		start := time.Now()
		res, _ := c.reply(c.transact("[" + op + "]"))["result"].([]any)
		took := time.Since(start)
		if len(res) != 1 || errTag(res[0]) != "resources exhausted" || !strings.Contains(errDetails(res[0]), "MaxCompares") {
			t.Fatalf("%.40s with 100,000 conditions over 2000 rows: %.200s after %v, want a \"resources exhausted\" error naming MaxCompares", op, mustJSONText(t, res), took)
		}
		t.Logf("%.40s: refused after %v (the request's encoding and decoding included)", op, took)
	}
	// A few conditions over the rows, and _uuid lookups, still work.
	if got := c.mustTransact(`[{"op":"select","table":"Root","where":[["name","!=","zzz"],["n","==",0]],"columns":["name"]}]`); len(got) != 1 {
		t.Fatal(mustJSONText(t, got))
	}
}

// TestMonitorConditionsBounded: every commit checks each changed row
// against the conditions of every monitor, under the database's lock, so
// the conditions of all monitors of a database are bounded together
// (MaxMonitorConditions); a monitor or monitor_cond_change beyond is
// refused, and a cancelled monitor makes room.
func TestMonitorConditionsBounded(t *testing.T) {
	db := newTestDB(t)
	db.MaxMonitorConditions = 1000
	srv, path := testServer(t, db, nil)
	c := dial(t, path)
	where := func(n int) []any {
		conds := make([]any, n)
		for i := range conds {
			conds[i] = []any{"name", "==", fmt.Sprintf("r%d", i)}
		}
		return conds
	}
	req := func(n int) map[string]any {
		return map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}, "where": where(n)}}}
	}
	c.result("monitor_cond", "Test", "a", req(300)) // each condition weighs 2: itself and its value
	refused(t, "a second monitor of 300 conditions", c.call("monitor_cond", "Test", "b", req(300)), "MaxMonitorConditions")
	c.result("monitor_cond", "Test", "b", req(200))
	refused(t, "a change to 350 conditions", c.call("monitor_cond_change", "b", "b", map[string]any{"Root": []any{map[string]any{"where": where(350)}}}), "MaxMonitorConditions")
	jsonIs(t, "change to 150", c.result("monitor_cond_change", "b", "b", map[string]any{"Root": []any{map[string]any{"where": where(150)}}}), `{}`)
	jsonIs(t, "cancel a", c.result("monitor_cancel", "a"), `{}`)
	c.result("monitor_cond", "Test", "c", req(350))
	if u := srv.usage(); u.Monitors != 2 {
		t.Fatalf("%d monitors, want 2", u.Monitors)
	}
	// Monitors without conditions are not limited.
	for i := 0; i < 5; i++ {
		c.result("monitor_cond", "Test", fmt.Sprintf("all%d", i), map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}}}})
	}
	c.conn.Close()
	waitFor(t, "the monitors to go", func() bool { return srv.usage().Monitors == 0 })
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.monConds != 0 {
		t.Fatalf("%d monitor conditions counted with no monitor", db.monConds)
	}
}

// TestErrorsQuoteValuesShort: a refused value is quoted in the error in
// short: a 2 MiB string of control bytes made an error of 8 MiB and a
// reply of 10 MiB.
func TestErrorsQuoteValuesShort(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	bad := mustJSON(strings.Repeat("\x01", 2<<20)) // 12 MiB of JSON
	r := c.reply(c.transact(fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":"x","color":%s}}]`, bad)))
	res, _ := r["result"].([]any)
	if len(res) != 1 || errTag(res[0]) != "constraint violation" {
		t.Fatalf("insert of a color not in the enum: %.300s", mustJSONText(t, r))
	}
	if d := errDetails(res[0]); len(d) > 1024 || !strings.Contains(d, "not one of the allowed values") {
		t.Fatalf("error details of %d bytes: %.300s", len(d), d)
	}
}
