package ovsdb

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
)

// insertRoot inserts one Root row with the given extra JSON members and
// returns its uuid.
func insertRoot(t *testing.T, db *DB, name string, extra string) UUID {
	t.Helper()
	row := fmt.Sprintf(`{"name":%q%s}`, name, extra)
	res := mustTx(t, db, ops(t, `[{"op":"insert","table":"Root","row":`+row+`}]`))
	return insertedUUID(t, res[0])
}

func TestInsertNamedUUIDForwardReference(t *testing.T) {
	db := newTestDB(t)
	// The Root refers to the Child before the insert that names it.
	res := mustTx(t, db, ops(t, `[
		{"op":"insert","table":"Root","row":{"name":"r","kids":["set",[["named-uuid","c1"]]],
		 "kidmap":["map",[["first",["named-uuid","c1"]]]]}},
		{"op":"insert","table":"Child","uuid-name":"c1","row":{"label":"one"}}]`))
	root, child := insertedUUID(t, res[0]), insertedUUID(t, res[1])
	jsonIs(t, "kids", column(t, db, "Root", root, "kids"), uuidJSON(child))
	jsonIs(t, "kidmap", column(t, db, "Root", root, "kidmap"), fmt.Sprintf(`["map",[["first",%s]]]`, uuidJSON(child)))
	jsonIs(t, "label", column(t, db, "Child", child, "label"), `"one"`)
	// _version is set and _uuid is the row's uuid.
	jsonIs(t, "_uuid", column(t, db, "Root", root, "_uuid"), uuidJSON(root))
	if v := column(t, db, "Root", root, "_version"); mustJSONText(t, v) == uuidJSON(UUID{}) {
		t.Fatalf("_version not set")
	}
	checkInvariants(t, db)
}

func TestInsertClientUUID(t *testing.T) {
	db := newTestDB(t)
	want := "5d6f9e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	res := mustTx(t, db, ops(t, `[{"op":"insert","table":"Root","uuid":"`+want+`","row":{"name":"a"}}]`))
	if got := insertedUUID(t, res[0]).String(); got != want {
		t.Fatalf("insert with uuid gave %s, want %s", got, want)
	}
	// With a uuid-name too, the name resolves to the chosen uuid.
	want2 := "6d6f9e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"
	res = mustTx(t, db, ops(t, `[{"op":"insert","table":"Root","uuid":"`+want2+`","uuid-name":"x","row":{"name":"b"}},
		{"op":"insert","table":"Root","row":{"name":"c","watch":["named-uuid","x"]}}]`))
	if got := insertedUUID(t, res[0]).String(); got != want2 {
		t.Fatalf("insert with uuid and uuid-name gave %s, want %s", got, want2)
	}
	jsonIs(t, "watch", column(t, db, "Root", insertedUUID(t, res[1]), "watch"), `["uuid","`+want2+`"]`)
	// The same uuid again, in any table, is refused.
	res = db.Transact(ops(t, `[{"op":"insert","table":"Child","uuid":"`+want+`","row":{}}]`))
	txFails(t, res, 0, "duplicate uuid")
	res = db.Transact(ops(t, `[{"op":"comment","comment":"c"},{"op":"insert","table":"Root","uuid":"not-a-uuid","row":{"name":"d"}}]`))
	txFails(t, res, 1, "syntax error")
	checkInvariants(t, db)
}

func TestInsertDuplicateUUIDName(t *testing.T) {
	db := newTestDB(t)
	before := dumpDB(t, db, true)
	res := db.Transact(ops(t, `[
		{"op":"insert","table":"Root","uuid-name":"a","row":{"name":"x"}},
		{"op":"insert","table":"Root","uuid-name":"a","row":{"name":"y"}}]`))
	// The error belongs to the second insert, the one that repeats the name.
	txFails(t, res, 1, "duplicate uuid-name")
	if dumpDB(t, db, true) != before {
		t.Fatal("failed transaction changed the database")
	}
	res = db.Transact(ops(t, `[{"op":"comment","comment":"x"},{"op":"insert","table":"Root","uuid-name":"9bad","row":{"name":"x"}}]`))
	txFails(t, res, 1, "syntax error")
}

func TestInsertErrors(t *testing.T) {
	db := newTestDB(t)
	cases := []struct {
		ops string
		at  int
		tag string
	}{
		{`[{"op":"insert","table":"Nope","row":{}}]`, 0, "unknown table"},
		{`[{"op":"insert","table":"Root","row":{"nope":1}}]`, 0, "unknown column"},
		{`[{"op":"insert","table":"Root","row":{"_uuid":["uuid","5d6f9e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"]}}]`, 0, "constraint violation"},
		{`[{"op":"insert","table":"Root","row":{"n":"x"}}]`, 0, "syntax error"},
		{`[{"op":"insert","table":"Root","row":{"color":"purple"}}]`, 0, "constraint violation"},
		{`[{"op":"insert","table":"Root","row":{"level":101}}]`, 0, "constraint violation"},
		{`[{"op":"insert","table":"Root","row":{"tags":["set",["a","b","c","d"]]}}]`, 0, "constraint violation"},
		{`[{"op":"insert","table":"Root","row":{"kids":["named-uuid","nobody"]}}]`, 0, "syntax error"},
		{`[{"op":"insert","table":"Root","row":[]}]`, 0, "syntax error"},
		{`[{"op":"insert","row":{}}]`, 0, "syntax error"},
		{`[{"op":"frobnicate"}]`, 0, "unknown operation"},
		{`[{"op":"comment","comment":"ok"}, 7]`, 1, "syntax error"},
	}
	for _, c := range cases {
		txFails(t, db.Transact(ops(t, c.ops)), c.at, c.tag)
	}
	if n := db.RowCount("Root"); n != 0 {
		t.Fatalf("failed inserts left %d rows", n)
	}
}

func TestSelectWhereFunctions(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "a", `,"n":1,"ratio":0.5,"nums":["set",[1,2]],"opts":["map",[["k","v"]]],"color":"red","flag":true`)
	insertRoot(t, db, "b", `,"n":2,"ratio":1.5,"nums":["set",[2,3]],"opts":["map",[["k","w"]]]`)
	insertRoot(t, db, "c", `,"n":3,"ratio":2.5,"nums":["set",[]]`)
	cases := []struct {
		where string
		names string
	}{
		{`[]`, "a,b,c"},
		{`[["name","==","b"]]`, "b"},
		{`[["name","!=","b"]]`, "a,c"},
		{`[["n","<",2]]`, "a"},
		{`[["n","<=",2]]`, "a,b"},
		{`[["n",">",2]]`, "c"},
		{`[["n",">=",2]]`, "b,c"},
		{`[["ratio","<",1.5]]`, "a"},
		{`[["ratio",">=",1]]`, "b,c"},
		{`[["n",">",1],["n","<",3]]`, "b"},
		{`[["nums","includes",2]]`, "a,b"},
		{`[["nums","includes",["set",[2,3]]]]`, "b"},
		{`[["nums","excludes",["set",[1,3]]]]`, "c"},
		{`[["nums","==",["set",[2,1]]]]`, "a"},
		{`[["nums","==",["set",[]]]]`, "c"},
		{`[["opts","includes",["map",[["k","v"]]]]]`, "a"},
		{`[["opts","excludes",["map",[["k","v"]]]]]`, "b,c"},
		{`[["color","==","red"]]`, "a"},
		{`[["color","==",["set",[]]]]`, "b,c"},
		{`[["flag","==",true]]`, "a"},
	}
	for _, c := range cases {
		rows := selectRows(t, db, "Root", c.where, `["name"]`)
		var names []string
		for _, r := range rows {
			if len(r) != 1 {
				t.Fatalf("select with columns [name] returned %v", r)
			}
			names = append(names, r["name"].(string))
		}
		sortStrings(names)
		if got := strings.Join(names, ","); got != c.names {
			t.Errorf("where %s: got %q, want %q", c.where, got, c.names)
		}
	}
	// _uuid lookups, and all columns when "columns" is absent.
	a := selectRows(t, db, "Root", `[["name","==","a"]]`, "")[0]
	u := a["_uuid"].([]any)[1].(string)
	if _, ok := a["_version"]; !ok || len(a) != len(db.schema.Tables["Root"].Columns) {
		t.Fatalf("select without columns returned %d columns", len(a))
	}
	rows := selectRows(t, db, "Root", `[["_uuid","==",["uuid","`+u+`"]]]`, `["name","n"]`)
	jsonIs(t, "select by _uuid", rows, `[{"name":"a","n":1}]`)
	rows = selectRows(t, db, "Root", `[["_uuid","==",["uuid","`+u+`"]],["n","==",2]]`, `["name"]`)
	if len(rows) != 0 {
		t.Fatalf("_uuid lookup ignored the other condition: %v", rows)
	}
	for _, bad := range []string{
		`[["n","<","x"]]`, `[["nums","<",1]]`, `[["nope","==",1]]`, `[["n","~",1]]`, `[["n","=="]]`, `{"x":1}`,
	} {
		res := db.Transact(ops(t, `[{"op":"select","table":"Root","where":`+bad+`}]`))
		if len(res) != 1 || errTag(res[0]) == "" {
			t.Errorf("where %s accepted: %s", bad, mustJSONText(t, res))
		}
	}
	res := db.Transact(ops(t, `[{"op":"select","table":"Root","where":[],"columns":["nope"]}]`))
	txFails(t, res, 0, "unknown column")
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestUpdate(t *testing.T) {
	db := newTestDB(t)
	a := insertRoot(t, db, "a", `,"serial":7`)
	insertRoot(t, db, "b", "")
	v1 := column(t, db, "Root", a, "_version")
	res := mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","a"]],"row":{"n":5,"opts":["map",[["x","y"]]]}}]`))
	jsonIs(t, "update result", res[0], `{"count":1}`)
	jsonIs(t, "n", column(t, db, "Root", a, "n"), `5`)
	jsonIs(t, "opts", column(t, db, "Root", a, "opts"), `["map",[["x","y"]]]`)
	if v2 := column(t, db, "Root", a, "_version"); mustJSONText(t, v2) == mustJSONText(t, v1) {
		t.Fatal("_version unchanged by an update")
	}
	res = mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[],"row":{"flag":true}}]`))
	jsonIs(t, "update all", res[0], `{"count":2}`)
	res = mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","zz"]],"row":{"flag":true}}]`))
	jsonIs(t, "update none", res[0], `{"count":0}`)

	before := dumpDB(t, db, true)
	d := txFails(t, db.Transact(ops(t, `[{"op":"update","table":"Root","where":[],"row":{"serial":8}}]`)), 0, "constraint violation")
	if !strings.Contains(d, "immutable") {
		t.Errorf("immutable column error says %q", d)
	}
	txFails(t, db.Transact(ops(t, `[{"op":"update","table":"Root","where":[],"row":{"_uuid":["uuid","`+a.String()+`"]}}]`)), 0, "constraint violation")
	txFails(t, db.Transact(ops(t, `[{"op":"update","table":"Root","where":[],"row":{"_version":["uuid","`+a.String()+`"]}}]`)), 0, "constraint violation")
	// A bad row is an error even when no row matches.
	txFails(t, db.Transact(ops(t, `[{"op":"update","table":"Root","where":[["name","==","zz"]],"row":{"nope":1}}]`)), 0, "unknown column")
	txFails(t, db.Transact(ops(t, `[{"op":"update","table":"Root","where":[]}]`)), 0, "syntax error")
	if dumpDB(t, db, true) != before {
		t.Fatal("failed updates changed the database")
	}
	// The immutable column could be set at insert time.
	jsonIs(t, "serial", column(t, db, "Root", a, "serial"), `7`)
}

// mutateRoot runs one mutation on the Root row named "m" and returns the
// result array.
func mutateRoot(db *DB, t *testing.T, mutations string) []any {
	return db.Transact(ops(t, `[{"op":"mutate","table":"Root","where":[["name","==","m"]],"mutations":`+mutations+`}]`))
}

func TestMutateArithmetic(t *testing.T) {
	db := newTestDB(t)
	u := insertRoot(t, db, "m", `,"n":10,"ratio":1.5,"nums":["set",[1,2,3]],"reals":["set",[1.0,2.0]],"level":50`)
	steps := []struct {
		mutations, col, want string
	}{
		{`[["n","+=",5]]`, "n", `15`},
		{`[["n","-=",20]]`, "n", `-5`},
		{`[["n","*=",-3]]`, "n", `15`},
		{`[["n","/=",4]]`, "n", `3`},
		{`[["n","+=",14],["n","%=",5]]`, "n", `2`},
		{`[["n","%=",-1]]`, "n", `0`},
		{`[["ratio","+=",1]]`, "ratio", `2.5`},
		{`[["ratio","-=",0.5]]`, "ratio", `2.0`},
		{`[["ratio","*=",3]]`, "ratio", `6.0`},
		{`[["ratio","/=",4]]`, "ratio", `1.5`},
		{`[["nums","+=",10]]`, "nums", `["set",[11,12,13]]`},
		{`[["nums","*=",2]]`, "nums", `["set",[22,24,26]]`},
		{`[["nums","%=",5]]`, "nums", `["set",[1,2,4]]`},
		{`[["reals","*=",0.5]]`, "reals", `["set",[0.5,1.0]]`},
		{`[["level","+=",50]]`, "level", `100`},
	}
	for _, s := range steps {
		res := mutateRoot(db, t, s.mutations)
		if len(res) != 1 || errTag(res[0]) != "" {
			t.Fatalf("mutate %s: %s", s.mutations, mustJSONText(t, res))
		}
		jsonIs(t, "count", res[0], `{"count":1}`)
		jsonIs(t, s.mutations, column(t, db, "Root", u, s.col), s.want)
	}
	checkInvariants(t, db)
}

func TestMutateArithmeticErrors(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "m", fmt.Sprintf(`,"n":%d,"nums":["set",[1,2]],"level":90`, int64(math.MaxInt64)))
	before := dumpDB(t, db, true)
	cases := []struct {
		mutations, tag string
	}{
		{`[["n","+=",1]]`, "range error"},
		{`[["n","*=",2]]`, "range error"},
		{`[["n","-=",-1]]`, "range error"},
		{`[["n","/=",0]]`, "domain error"},
		{`[["n","%=",0]]`, "domain error"},
		{`[["ratio","/=",0]]`, "domain error"},
		{`[["ratio","%=",2]]`, "constraint violation"},
		{`[["name","+=",1]]`, "constraint violation"},
		{`[["opts","+=",1]]`, "constraint violation"},
		// Two set elements that become equal.
		{`[["nums","*=",0]]`, "constraint violation"},
		{`[["serial","+=",1]]`, "constraint violation"},
		{`[["_uuid","insert",["uuid","5d6f9e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"]]]`, "constraint violation"},
		{`[["n","^=",1]]`, "syntax error"},
		{`[["n","+="]]`, "syntax error"},
		{`[["nope","+=",1]]`, "unknown column"},
		{`[["n","+=","x"]]`, "syntax error"},
	}
	for _, c := range cases {
		txFails(t, mutateRoot(db, t, c.mutations), 0, c.tag)
	}
	// Leaving the column's range (0 to 100) violates its constraint; only
	// 64-bit overflow is a "range error".
	d := txFails(t, mutateRoot(db, t, `[["level","+=",20]]`), 0, "constraint violation")
	if !strings.Contains(d, "110") {
		t.Errorf("range details %q do not give the value", d)
	}
	txFails(t, mutateRoot(db, t, `[["level","-=",91]]`), 0, "constraint violation")
	if dumpDB(t, db, true) != before {
		t.Fatal("failed mutations changed the database")
	}
	// MinInt64 / -1 overflows too.
	mustTx(t, db, ops(t, fmt.Sprintf(`[{"op":"update","table":"Root","where":[],"row":{"n":%d}}]`, int64(math.MinInt64))))
	txFails(t, mutateRoot(db, t, `[["n","/=",-1]]`), 0, "range error")
	txFails(t, mutateRoot(db, t, `[["n","-=",1]]`), 0, "range error")
	txFails(t, mutateRoot(db, t, `[["n","*=",-1]]`), 0, "range error")
}

func TestMutateSetsAndMaps(t *testing.T) {
	db := newTestDB(t)
	u := insertRoot(t, db, "m", `,"tags":["set",["a"]],"opts":["map",[["a","1"],["b","2"],["c","3"]]]`)
	steps := []struct {
		mutations, col, want string
	}{
		{`[["tags","insert",["set",["c","b","a"]]]]`, "tags", `["set",["a","b","c"]]`},
		{`[["tags","delete",["set",["b","zz"]]]]`, "tags", `["set",["a","c"]]`},
		{`[["tags","delete","a"]]`, "tags", `"c"`},
		// Insert keeps existing keys' values.
		{`[["opts","insert",["map",[["a","X"],["d","4"]]]]]`, "opts", `["map",[["a","1"],["b","2"],["c","3"],["d","4"]]]`},
		// Delete by map removes only matching pairs.
		{`[["opts","delete",["map",[["a","X"],["b","2"]]]]]`, "opts", `["map",[["a","1"],["c","3"],["d","4"]]]`},
		// Delete by a set of keys.
		{`[["opts","delete",["set",["a","d","nope"]]]]`, "opts", `["map",[["c","3"]]]`},
		{`[["opts","delete","c"]]`, "opts", `["map",[]]`},
	}
	for _, s := range steps {
		res := mutateRoot(db, t, s.mutations)
		if len(res) != 1 || errTag(res[0]) != "" {
			t.Fatalf("mutate %s: %s", s.mutations, mustJSONText(t, res))
		}
		jsonIs(t, s.mutations, column(t, db, "Root", u, s.col), s.want)
	}
	mustTx(t, db, ops(t, `[{"op":"mutate","table":"Root","where":[],"mutations":[["tags","insert",["set",["x","y"]]]]}]`))
	// Over the set's maximum of 3.
	d := txFails(t, mutateRoot(db, t, `[["tags","insert",["set",["z"]]]]`), 0, "constraint violation")
	if !strings.Contains(d, "tags") {
		t.Errorf("size error does not name the column: %q", d)
	}
	txFails(t, mutateRoot(db, t, `[["color","insert","purple"]]`), 0, "constraint violation")
	txFails(t, mutateRoot(db, t, `[["color","insert",["set",["red","green"]]]]`), 0, "constraint violation")
	txFails(t, mutateRoot(db, t, `[["opts","insert",["set",["k"]]]]`), 0, "syntax error")
	txFails(t, mutateRoot(db, t, `[["kids","insert",["uuid","5d6f9e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"]]]`), 1, "referential integrity violation")
	checkInvariants(t, db)
}

func TestDelete(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "a", `,"n":1`)
	insertRoot(t, db, "b", `,"n":1`)
	insertRoot(t, db, "c", `,"n":2`)
	res := mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["n","==",1]]}]`))
	jsonIs(t, "delete", res[0], `{"count":2}`)
	if n := db.RowCount("Root"); n != 1 {
		t.Fatalf("%d rows left, want 1", n)
	}
	res = mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["n","==",1]]}]`))
	jsonIs(t, "delete none", res[0], `{"count":0}`)
	// Insert and delete in one transaction: nothing remains, and a select
	// in between sees the row.
	res = mustTx(t, db, ops(t, `[{"op":"insert","table":"Root","row":{"name":"t"}},
		{"op":"select","table":"Root","where":[["name","==","t"]],"columns":["name"]},
		{"op":"delete","table":"Root","where":[["name","==","t"]]},
		{"op":"select","table":"Root","where":[["name","==","t"]],"columns":["name"]}]`))
	jsonIs(t, "select after insert", res[1], `{"rows":[{"name":"t"}]}`)
	jsonIs(t, "delete inserted", res[2], `{"count":1}`)
	jsonIs(t, "select after delete", res[3], `{"rows":[]}`)
	if n := db.RowCount("Root"); n != 1 {
		t.Fatalf("%d rows left, want 1", n)
	}
	checkInvariants(t, db)
}

func TestWait(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "a", `,"nums":["set",[1,2,3]],"opts":["map",[["a","1"],["b","2"]]]`)
	insertRoot(t, db, "b", `,"nums":["set",[4]]`)
	// Sets and maps compare by content, in any order; rows in any order.
	eq := `{"op":"wait","table":"Root","where":[],"columns":["nums","opts"],"until":"%s","timeout":0,
		"rows":[{"nums":4},{"nums":["set",[3,1,2]],"opts":["map",[["b","2"],["a","1"]]]}]}`
	mustTx(t, db, ops(t, `[`+fmt.Sprintf(eq, "==")+`]`))
	txFails(t, db.Transact(ops(t, `[`+fmt.Sprintf(eq, "!=")+`]`)), 0, "timed out")
	ne := `{"op":"wait","table":"Root","where":[["name","==","a"]],"columns":["nums"],"until":"%s","timeout":0,"rows":[{"nums":["set",[1,2]]}]}`
	mustTx(t, db, ops(t, `[`+fmt.Sprintf(ne, "!=")+`]`))
	txFails(t, db.Transact(ops(t, `[{"op":"comment","comment":"x"},`+fmt.Sprintf(ne, "==")+`]`)), 1, "timed out")
	// A wait that blocks stops the transaction: the insert before it is
	// not committed.
	txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"c"}},`+fmt.Sprintf(ne, "==")+`]`)), 1, "timed out")
	if n := db.RowCount("Root"); n != 2 {
		t.Fatalf("insert before a failed wait committed: %d rows", n)
	}
	// In-process callers may pass Go numbers.
	res := db.Transact([]any{map[string]any{"op": "wait", "table": "Root", "where": []any{}, "columns": []any{"name"},
		"until": "==", "timeout": 0, "rows": []any{map[string]any{"name": "a"}}}})
	txFails(t, res, 0, "timed out")
	res = db.Transact([]any{map[string]any{"op": "wait", "table": "Root", "where": []any{}, "columns": []any{"name"},
		"until": "!=", "timeout": 0, "rows": []any{map[string]any{"name": "a"}}}})
	if len(res) != 1 || errTag(res[0]) != "" {
		t.Fatalf("wait with a Go int timeout: %s", mustJSONText(t, res))
	}
	// In process there is no one to answer later: a wait with a timeout
	// that is not met fails at once instead of blocking the caller.
	start := time.Now()
	txFails(t, db.Transact(ops(t, `[`+strings.Replace(fmt.Sprintf(ne, "=="), `"timeout":0`, `"timeout":60000`, 1)+`]`)), 0, "timed out")
	txFails(t, db.Transact(ops(t, `[`+strings.Replace(fmt.Sprintf(ne, "=="), `"timeout":0,`, ``, 1)+`]`)), 0, "timed out")
	if d := time.Since(start); d > time.Second {
		t.Fatalf("in-process waits blocked for %v", d)
	}
	for _, bad := range []string{
		`{"op":"wait","table":"Root","where":[],"until":"<","rows":[]}`,
		`{"op":"wait","table":"Root","where":[],"until":"==","rows":{}}`,
		`{"op":"wait","table":"Root","where":[],"until":"==","rows":[{"nope":1}],"timeout":0}`,
		`{"op":"wait","table":"Root","where":[],"until":"==","rows":[],"timeout":"x"}`,
	} {
		res := db.Transact(ops(t, `[`+bad+`]`))
		if len(res) != 1 || errTag(res[0]) == "" || errTag(res[0]) == "timed out" {
			t.Errorf("%s: %s", bad, mustJSONText(t, res))
		}
	}
}

func TestCommitAbortCommentAssert(t *testing.T) {
	db := newTestDB(t)
	res := mustTx(t, db, ops(t, `[{"op":"comment","comment":"hello"},{"op":"commit","durable":true},{"op":"commit","durable":false}]`))
	jsonIs(t, "results", res, `[{},{},{}]`)
	txFails(t, db.Transact(ops(t, `[{"op":"commit"}]`)), 0, "syntax error")
	txFails(t, db.Transact(ops(t, `[{"op":"comment"}]`)), 0, "syntax error")
	res = db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"x"}},{"op":"abort"},{"op":"comment","comment":"never"}]`))
	txFails(t, res, 1, "aborted")
	if db.RowCount("Root") != 0 {
		t.Fatal("aborted insert committed")
	}
	txFails(t, db.Transact(ops(t, `[{"op":"assert","lock":"L"}]`)), 0, "not owner")
	txFails(t, db.Transact(ops(t, `[{"op":"assert"}]`)), 0, "syntax error")
	// An empty transaction succeeds with no results.
	if res := db.Transact([]any{}); len(res) != 0 {
		t.Fatalf("empty transaction: %v", res)
	}
}

func TestGoValuesInOps(t *testing.T) {
	db := newTestDB(t)
	res := mustTx(t, db, []any{map[string]any{"op": "insert", "table": "Root", "row": map[string]any{
		"name": "go", "n": 3, "ratio": 2.5, "nums": []any{"set", []any{int64(1), 2}}, "flag": true}}})
	u := insertedUUID(t, res[0])
	mustTx(t, db, []any{map[string]any{"op": "mutate", "table": "Root", "where": []any{},
		"mutations": []any{[]any{"n", "+=", 4}, []any{"ratio", "*=", 2}}}})
	jsonIs(t, "n", column(t, db, "Root", u, "n"), `7`)
	jsonIs(t, "ratio", column(t, db, "Root", u, "ratio"), `5.0`)
	jsonIs(t, "nums", column(t, db, "Root", u, "nums"), `["set",[1,2]]`)
}
