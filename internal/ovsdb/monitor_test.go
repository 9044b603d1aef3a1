package ovsdb

import (
	"fmt"
	"testing"
	"time"
)

// rowUpdates returns the row updates of one table from table-updates.
func rowUpdates(t *testing.T, updates any, table string) map[string]any {
	t.Helper()
	m, ok := updates.(map[string]any)
	if !ok {
		t.Fatalf("table-updates %s is not an object", mustJSONText(t, updates))
	}
	rows, _ := m[table].(map[string]any)
	return rows
}

func TestMonitorV1(t *testing.T) {
	db := newTestDB(t)
	a := insertRoot(t, db, "a", `,"n":1`)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	initial := c.result("monitor", "Test", "m1", map[string]any{"Root": map[string]any{"columns": []any{"name", "n", "nums"}}})
	jsonIs(t, "initial", initial, fmt.Sprintf(`{"Root":{%q:{"new":{"name":"a","n":1,"nums":["set",[]]}}}}`, a))

	b := insertRoot(t, db, "b", `,"n":7`)
	p := c.notification("update")
	jsonIs(t, "insert", p, fmt.Sprintf(`["m1",{"Root":{%q:{"new":{"name":"b","n":7,"nums":["set",[]]}}}}]`, b))

	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","a"]],"row":{"n":2,"nums":["set",[3,4]]}}]`))
	p = c.notification("update")
	jsonIs(t, "modify", p, fmt.Sprintf(`["m1",{"Root":{%q:{"old":{"n":1,"nums":["set",[]]},"new":{"name":"a","n":2,"nums":["set",[3,4]]}}}}]`, a))

	// A change to columns nobody monitors sends nothing.
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[],"row":{"flag":true}}]`))
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","b"]]}]`))
	p = c.notification("update")
	jsonIs(t, "delete", p, fmt.Sprintf(`["m1",{"Root":{%q:{"old":{"name":"b","n":7,"nums":["set",[]]}}}}]`, b))
}

func TestMonitorCondUpdate2(t *testing.T) {
	db := newTestDB(t)
	a := insertRoot(t, db, "a", `,"n":1,"nums":["set",[1,2]],"opts":["map",[["k","v"],["gone","x"]]],"color":"red"`)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	req := map[string]any{"Root": []any{map[string]any{"columns": []any{"name", "n", "nums", "opts", "color", "flag"}}}}
	initial := c.result("monitor_cond", "Test", "m2", req)
	// Initial rows leave out columns at their default value (flag).
	jsonIs(t, "initial", initial, fmt.Sprintf(
		`{"Root":{%q:{"initial":{"name":"a","n":1,"nums":["set",[1,2]],"opts":["map",[["gone","x"],["k","v"]]],"color":"red"}}}}`, a))

	b := insertRoot(t, db, "b", "")
	p := c.notification("update2")
	jsonIs(t, "insert", p, fmt.Sprintf(`["m2",{"Root":{%q:{"insert":{"name":"b"}}}}]`, b))

	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","a"]],
		"row":{"n":5,"nums":["set",[2,3]],"opts":["map",[["k","w"],["z","1"]]],"color":["set",[]]}}]`))
	p = c.notification("update2")
	// Columns of at most one value (optional ones too, as color) carry
	// the new value, as OVS's IDL applies them; sets and maps the
	// difference.
	jsonIs(t, "modify", p, fmt.Sprintf(
		`["m2",{"Root":{%q:{"modify":{"n":5,"nums":["set",[1,3]],"opts":["map",[["gone","x"],["k","w"],["z","1"]]],"color":["set",[]]}}}}]`, a))

	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","b"]]}]`))
	p = c.notification("update2")
	jsonIs(t, "delete", p, fmt.Sprintf(`["m2",{"Root":{%q:{"delete":null}}}]`, b))
}

func TestMonitorCondSinceUpdate3(t *testing.T) {
	db := newTestDB(t)
	a := insertRoot(t, db, "a", "")
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	req := map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}}}}
	res := c.result("monitor_cond_since", "Test", "m3", req, UUID{}.String()).([]any)
	if len(res) != 3 || res[0] != false {
		t.Fatalf("monitor_cond_since reply %s, want [false, txn, updates]", mustJSONText(t, res))
	}
	first, err := ParseUUID(res[1].(string))
	if err != nil || first == (UUID{}) {
		t.Fatalf("last txn id %v: %v", res[1], err)
	}
	jsonIs(t, "initial", res[2], fmt.Sprintf(`{"Root":{%q:{"initial":{"name":"a"}}}}`, a))

	b := insertRoot(t, db, "b", "")
	p := c.notification("update3")
	if len(p) != 3 {
		t.Fatalf("update3 params %s", mustJSONText(t, p))
	}
	txn, err := ParseUUID(p[1].(string))
	if err != nil || txn == first {
		t.Fatalf("update3 txn id %v (first %s): %v", p[1], first, err)
	}
	jsonIs(t, "update3", p[2], fmt.Sprintf(`{"Root":{%q:{"insert":{"name":"b"}}}}`, b))

	// A client that saw the latest transaction gets nothing to catch up.
	c2 := dial(t, path)
	res = c2.result("monitor_cond_since", "Test", "again", req, txn.String()).([]any)
	jsonIs(t, "up to date", res, fmt.Sprintf(`[true,%q,{}]`, txn))
	// One that saw an older one gets everything.
	c3 := dial(t, path)
	res = c3.result("monitor_cond_since", "Test", "old", req, first.String()).([]any)
	if res[0] != false || res[1] != txn.String() || len(rowUpdates(t, res[2], "Root")) != 2 {
		t.Fatalf("stale monitor_cond_since reply %s", mustJSONText(t, res))
	}
	// Both keep receiving update3.
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","a"]]}]`))
	for _, cl := range []*rpcClient{c, c2, c3} {
		p := cl.notification("update3")
		jsonIs(t, "delete", p[2], fmt.Sprintf(`{"Root":{%q:{"delete":null}}}`, a))
	}
}

func TestMonitorConditions(t *testing.T) {
	db := newTestDB(t)
	lo := insertRoot(t, db, "lo", `,"n":3`)
	hi := insertRoot(t, db, "hi", `,"n":9`)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	cond := func(where any) map[string]any {
		return map[string]any{"Root": []any{map[string]any{"columns": []any{"n"}, "where": where}}}
	}
	jsonIs(t, "n > 5", c.result("monitor_cond", "Test", "gt", cond([]any{[]any{"n", ">", 5}})),
		fmt.Sprintf(`{"Root":{%q:{"initial":{"n":9}}}}`, hi))
	cAll := dial(t, path)
	if got := rowUpdates(t, cAll.result("monitor_cond", "Test", "all", cond([]any{true})), "Root"); len(got) != 2 {
		t.Fatalf("[true] condition gave %d rows", len(got))
	}
	cNone := dial(t, path)
	jsonIs(t, "[false]", cNone.result("monitor_cond", "Test", "none", cond([]any{false})), `{}`)
	// Clauses of a monitor condition are alternatives: a row matching any
	// of them is in view.
	cOr := dial(t, path)
	or := cOr.result("monitor_cond", "Test", "or", cond([]any{[]any{"name", "==", "lo"}, []any{"name", "==", "hi"}, false}))
	if got := rowUpdates(t, or, "Root"); len(got) != 2 {
		t.Fatalf("two alternative clauses gave %d rows: %s", len(got), mustJSONText(t, or))
	}

	// A row that starts matching is an insert, one that stops a delete.
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","lo"]],"row":{"n":7}}]`))
	jsonIs(t, "enters", c.notification("update2"), fmt.Sprintf(`["gt",{"Root":{%q:{"insert":{"n":7}}}}]`, lo))
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","hi"]],"row":{"n":1}}]`))
	jsonIs(t, "leaves", c.notification("update2"), fmt.Sprintf(`["gt",{"Root":{%q:{"delete":null}}}]`, hi))
	// A row outside the condition changing stays invisible.
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","hi"]],"row":{"n":2}}]`))
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","lo"]],"row":{"n":8}}]`))
	jsonIs(t, "inside", c.notification("update2"), fmt.Sprintf(`["gt",{"Root":{%q:{"modify":{"n":8}}}}]`, lo))

	for i := 0; i < 4; i++ {
		cAll.notification("update2")
	}
	cNone.quiet(200 * time.Millisecond)
}

func TestMonitorCondChange(t *testing.T) {
	db := newTestDB(t)
	a := insertRoot(t, db, "a", "")
	insertRoot(t, db, "b", "")
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	req := map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}, "where": []any{false}}}}
	jsonIs(t, "initial", c.result("monitor_cond", "Test", "m", req), `{}`)

	id := c.request("monitor_cond_change", "m", "m2",
		map[string]any{"Root": []any{map[string]any{"where": []any{[]any{"name", "==", "a"}}}}})
	// The rows entering the view come before the reply.
	jsonIs(t, "entering", c.notification("update2"), fmt.Sprintf(`["m2",{"Root":{%q:{"insert":{"name":"a"}}}}]`, a))
	jsonIs(t, "change reply", c.reply(id), fmt.Sprintf(`{"id":%q,"result":{},"error":null}`, id))

	// Updates now go out under the new monitor id.
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","a"]],"row":{"n":1}}]`))
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","a"]],"row":{"name":"a2"}}]`))
	jsonIs(t, "modify", c.notification("update2"), fmt.Sprintf(`["m2",{"Root":{%q:{"delete":null}}}]`, a))

	id = c.request("monitor_cond_change", "m2", "m3", map[string]any{"Root": []any{map[string]any{"where": []any{true}}}})
	if got := rowUpdates(t, c.notification("update2")[1], "Root"); len(got) != 2 {
		t.Fatalf("[true] brought %d rows", len(got))
	}
	if r := c.reply(id); r["error"] != nil {
		t.Fatalf("monitor_cond_change: %s", mustJSONText(t, r))
	}
	for _, bad := range [][]any{
		{"nope", "x", map[string]any{}},
		{"m3", "x", map[string]any{"Nope": []any{map[string]any{}}}},
		{"m3", "x", map[string]any{"Root": []any{map[string]any{"where": []any{[]any{"nope", "==", 1}}}}}},
		{"m3", "x"},
	} {
		if r := c.call("monitor_cond_change", bad...); r["error"] == nil {
			t.Errorf("monitor_cond_change %s accepted", mustJSONText(t, bad))
		}
	}
	// A v1 monitor has no conditions to change.
	c.result("monitor", "Test", "v1", map[string]any{"Root": map[string]any{}})
	if r := c.call("monitor_cond_change", "v1", "v1b", map[string]any{}); r["error"] == nil {
		t.Error("monitor_cond_change on a v1 monitor accepted")
	}
}

func TestMonitorCancelAndErrors(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	c.result("monitor_cond", "Test", "m", map[string]any{"Root": []any{map[string]any{}}})
	if r := c.call("monitor_cond", "Test", "m", map[string]any{"Root": []any{map[string]any{}}}); r["error"] == nil {
		t.Fatal("duplicate monitor id accepted")
	}
	jsonIs(t, "cancel", c.result("monitor_cancel", "m"), `{}`)
	insertRoot(t, db, "a", "")
	c.quiet(200 * time.Millisecond)
	if r := c.call("monitor_cancel", "m"); r["error"] == nil {
		t.Fatal("cancel of an unknown monitor accepted")
	}
	for _, bad := range [][]any{
		{"Test", "x"},
		{"Nope", "x", map[string]any{}},
		{"Test", "x", map[string]any{"Nope": map[string]any{}}},
		{"Test", "x", map[string]any{"Root": map[string]any{"columns": []any{"nope"}}}},
		{"Test", "x", map[string]any{"Root": map[string]any{"select": map[string]any{"bogus": true}}}},
		{"Test", "x", []any{}},
	} {
		if r := c.call("monitor_cond", bad...); r["error"] == nil {
			t.Errorf("monitor_cond %s accepted", mustJSONText(t, bad))
		}
	}
	// monitor_cond_since needs its last-txn parameter.
	if r := c.call("monitor_cond_since", "Test", "y", map[string]any{"Root": []any{map[string]any{}}}); r["error"] == nil {
		t.Error("monitor_cond_since without last txn id accepted")
	}
}

func TestMonitorSelect(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "a", "")
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	// No initial contents and no deletes: only inserts and modifies.
	sel := map[string]any{"initial": false, "delete": false}
	jsonIs(t, "initial", c.result("monitor_cond", "Test", "m", map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}, "select": sel}}}), `{}`)
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[]}]`))
	b := insertRoot(t, db, "b", "")
	jsonIs(t, "insert", c.notification("update2"), fmt.Sprintf(`["m",{"Root":{%q:{"insert":{"name":"b"}}}}]`, b))
}

func TestUpdateBeforeTransactReply(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	c.result("monitor_cond", "Test", "m", map[string]any{"Root": []any{map[string]any{"columns": []any{"name"}}}})
	for i := 0; i < 20; i++ {
		id := c.transact(fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":"r%d"}}]`, i))
		first, ok := c.next(rpcWait)
		if !ok || first["method"] != "update2" {
			t.Fatalf("first message after transact %d is %s, want the update2", i, mustJSONText(t, first))
		}
		second, ok := c.next(rpcWait)
		if !ok || second["id"] != id {
			t.Fatalf("second message after transact %d is %s, want its reply", i, mustJSONText(t, second))
		}
	}
}

// TestMonitorCondChangeDuringCommits changes a monitor's id and conditions
// while other transactions commit, for the race detector.
func TestMonitorCondChangeDuringCommits(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	c := dial(t, path)
	c.result("monitor_cond", "Test", "m0", map[string]any{"Root": []any{map[string]any{"columns": []any{"n"}}}})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			db.Transact([]any{map[string]any{"op": "insert", "table": "Root", "row": map[string]any{"name": fmt.Sprint(i)}}})
		}
	}()
	for i := 1; i <= 50; i++ {
		where := []any{true}
		if i%2 == 0 {
			where = []any{[]any{"n", "==", 0}}
		}
		r := c.call("monitor_cond_change", fmt.Sprintf("m%d", i-1), fmt.Sprintf("m%d", i),
			map[string]any{"Root": []any{map[string]any{"where": where}}})
		if r["error"] != nil {
			t.Fatalf("monitor_cond_change %d: %s", i, mustJSONText(t, r))
		}
	}
	close(stop)
	<-done
	// After the last change, updates carry the last id.
	final := insertRoot(t, db, "final", "")
	for {
		p := c.notification("update2")
		if _, ok := rowUpdates(t, p[1], "Root")[final.String()]; ok {
			if p[0] != "m50" {
				t.Fatalf("update after the last change has monitor id %v", p[0])
			}
			break
		}
	}
}

// Several requests for one table widen the view: each request's rows are
// in it, and a request without conditions shows every row.
func TestMonitorSeveralRequestsPerTable(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "lo", `,"n":3`)
	insertRoot(t, db, "hi", `,"n":9`)
	insertRoot(t, db, "mid", `,"n":5`)
	_, path := testServer(t, db, nil)
	req := func(reqs ...any) map[string]any { return map[string]any{"Root": reqs} }
	byName := func(name string) map[string]any {
		return map[string]any{"columns": []any{"n"}, "where": []any{[]any{"name", "==", name}}}
	}
	c := dial(t, path)
	if got := rowUpdates(t, c.result("monitor_cond", "Test", "two", req(byName("lo"), byName("hi"))), "Root"); len(got) != 2 {
		t.Fatalf("two requests gave %d rows, want 2", len(got))
	}
	c2 := dial(t, path)
	all := map[string]any{"columns": []any{"n"}}
	if got := rowUpdates(t, c2.result("monitor_cond", "Test", "wide", req(byName("lo"), all)), "Root"); len(got) != 3 {
		t.Fatalf("a request without where gave %d rows, want 3", len(got))
	}
}
