package ovsdb

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// testSchemaJSON exercises every schema feature the server implements:
// root and non-root tables, strong and weak references (in sets and in map
// values), a map column, an enum, an integer range, a set size limit, an
// immutable column, an ephemeral column, a unique index and maxRows.
const testSchemaJSON = `{
 "name": "Test", "version": "1.2.3",
 "tables": {
  "Root": {
   "isRoot": true,
   "indexes": [["name"]],
   "columns": {
    "name": {"type": "string"},
    "serial": {"type": "integer", "mutable": false},
    "n": {"type": "integer"},
    "ratio": {"type": "real"},
    "flag": {"type": "boolean"},
    "level": {"type": {"key": {"type": "integer", "minInteger": 0, "maxInteger": 100}}},
    "color": {"type": {"key": {"type": "string", "enum": ["set", ["red", "green", "blue"]]}, "min": 0, "max": 1}},
    "tags": {"type": {"key": "string", "min": 0, "max": 3}},
    "nums": {"type": {"key": "integer", "min": 0, "max": "unlimited"}},
    "reals": {"type": {"key": "real", "min": 0, "max": "unlimited"}},
    "opts": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}},
    "status": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}, "ephemeral": true},
    "kids": {"type": {"key": {"type": "uuid", "refTable": "Child"}, "min": 0, "max": "unlimited"}},
    "kidmap": {"type": {"key": "string", "value": {"type": "uuid", "refTable": "Child"}, "min": 0, "max": "unlimited"}},
    "watch": {"type": {"key": {"type": "uuid", "refTable": "Root", "refType": "weak"}, "min": 0, "max": "unlimited"}}
   }
  },
  "Child": {
   "isRoot": false,
   "columns": {
    "label": {"type": "string"},
    "leaves": {"type": {"key": {"type": "uuid", "refTable": "Leaf"}, "min": 0, "max": "unlimited"}},
    "buddy": {"type": {"key": {"type": "uuid", "refTable": "Child", "refType": "weak"}, "min": 0, "max": 1}}
   }
  },
  "Leaf": {"isRoot": false, "columns": {"v": {"type": "integer"}}},
  "Anchor": {
   "isRoot": true,
   "columns": {
    "target": {"type": {"key": {"type": "uuid", "refTable": "Root", "refType": "weak"}}},
    "pin": {"type": {"key": {"type": "uuid", "refTable": "Root"}, "min": 0, "max": 1}}
   }
  },
  "Config": {"isRoot": true, "maxRows": 1, "columns": {"k": {"type": "string"}}}
 }
}`

func testSchema(t testing.TB) *Schema {
	t.Helper()
	s, err := ParseSchema([]byte(testSchemaJSON))
	if err != nil {
		t.Fatalf("ParseSchema: %v", err)
	}
	return s
}

// newTestDB returns an in-memory database with the test schema.
func newTestDB(t testing.TB) *DB {
	return NewDB(testSchema(t), nil)
}

// openTestDB opens (creating) a journaled database in dir.
func openTestDB(t testing.TB, path string) *DB {
	t.Helper()
	db, err := OpenDB(path, testSchema(t))
	if err != nil {
		t.Fatalf("OpenDB(%s): %v", path, err)
	}
	t.Cleanup(func() { db.journal.Close() })
	return db
}

func tempDBPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "test.db")
}

// canon turns any result into plain decoded JSON (numbers as json.Number),
// so results can be compared with literals written as JSON text.
func canon(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("cannot encode %#v: %v", v, err)
	}
	out, err := decodeJSON(b)
	if err != nil {
		t.Fatalf("cannot decode %s: %v", b, err)
	}
	return out
}

func mustJSONText(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("cannot encode %#v: %v", v, err)
	}
	return string(b)
}

// jsonIs asserts that v encodes to the same JSON value as want.
func jsonIs(t testing.TB, what string, v any, want string) {
	t.Helper()
	w, err := decodeJSON([]byte(want))
	if err != nil {
		t.Fatalf("bad expected JSON %s: %v", want, err)
	}
	if got := canon(t, v); !reflect.DeepEqual(got, w) {
		t.Fatalf("%s = %s, want %s", what, mustJSONText(t, v), want)
	}
}

// ops parses a JSON array of operations, as a server would receive them.
func ops(t testing.TB, text string) []any {
	t.Helper()
	v, err := decodeJSON([]byte(text))
	if err != nil {
		t.Fatalf("bad ops JSON %s: %v", text, err)
	}
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("ops %s is not an array", text)
	}
	return arr
}

// errTag returns the error tag of a result element, or "".
func errTag(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	s, _ := m["error"].(string)
	return s
}

func errDetails(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["details"].(string)
	return s
}

// mustTx runs ops and fails the test if any result is an error.
func mustTx(t testing.TB, db *DB, ops []any) []any {
	t.Helper()
	res := db.Transact(ops)
	if len(res) != len(ops) {
		t.Fatalf("transaction %s: %d results for %d ops: %s", mustJSONText(t, ops), len(res), len(ops), mustJSONText(t, res))
	}
	for i, r := range res {
		if tag := errTag(r); tag != "" {
			t.Fatalf("transaction %s: op %d failed: %s", mustJSONText(t, ops), i, mustJSONText(t, r))
		}
	}
	return res
}

// txFails asserts the shape of a failed transaction: the error with tag at
// index at, no results after it, and every result before it a success.
func txFails(t testing.TB, res []any, at int, tag string) string {
	t.Helper()
	if len(res) != at+1 {
		t.Fatalf("want %d results with the error %q last, got %s", at+1, tag, mustJSONText(t, res))
	}
	for i := 0; i < at; i++ {
		if errTag(res[i]) != "" {
			t.Fatalf("result %d is an error, want success before the failing op: %s", i, mustJSONText(t, res))
		}
	}
	if got := errTag(res[at]); got != tag {
		t.Fatalf("result %d: error %q, want %q (all: %s)", at, got, tag, mustJSONText(t, res))
	}
	return errDetails(res[at])
}

// insertedUUID returns the uuid an insert result reports.
func insertedUUID(t testing.TB, res any) UUID {
	t.Helper()
	m, ok := res.(map[string]any)
	if !ok {
		t.Fatalf("insert result %v is not an object", res)
	}
	pair, ok := m["uuid"].([]any)
	if !ok || len(pair) != 2 || pair[0] != "uuid" {
		t.Fatalf("insert result %s has no uuid", mustJSONText(t, res))
	}
	u, err := ParseUUID(pair[1].(string))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// selectRows runs a select and returns its rows decoded as plain JSON.
func selectRows(t testing.TB, db *DB, table string, where string, columns string) []map[string]any {
	t.Helper()
	op := fmt.Sprintf(`[{"op":"select","table":%q,"where":%s`, table, where)
	if columns != "" {
		op += `,"columns":` + columns
	}
	op += `}]`
	res := mustTx(t, db, ops(t, op))
	m := canon(t, res[0]).(map[string]any)
	var out []map[string]any
	for _, r := range m["rows"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// rowByUUID fetches a row's column as plain JSON.
func column(t testing.TB, db *DB, table string, u UUID, col string) any {
	t.Helper()
	rows := selectRows(t, db, table, fmt.Sprintf(`[["_uuid","==",["uuid",%q]]]`, u), fmt.Sprintf(`[%q]`, col))
	if len(rows) != 1 {
		t.Fatalf("%s row %s: %d rows", table, u, len(rows))
	}
	return rows[0][col]
}

func uuidJSON(u UUID) string { return fmt.Sprintf(`["uuid",%q]`, u) }

// checkInvariants verifies everything that must hold between transactions:
// every strong reference leads to an existing row, every non-root row is
// referenced, no weak reference dangles, reference counts and unique
// indexes match a recount, and every value obeys its column's type.
func checkInvariants(t testing.TB, db *DB) {
	t.Helper()
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := invariantError(db); err != nil {
		t.Fatal(err)
	}
}

func invariantError(db *DB) error {
	counts := map[refKey]int{}
	var size int64
	for name, td := range db.tables {
		for u, r := range td.rows {
			size += rowSize(r)
			if err := checkStoredRow(db, td, u, r, counts); err != nil {
				return fmt.Errorf("%s row %s: %w", name, u, err)
			}
		}
	}
	for name, td := range db.tables {
		if err := checkCounts(name, td, counts); err != nil {
			return err
		}
		if err := checkIndexMaps(name, td); err != nil {
			return err
		}
		if td.schema.MaxRows > 0 && len(td.rows) > td.schema.MaxRows {
			return fmt.Errorf("%s has %d rows, over maxRows %d", name, len(td.rows), td.schema.MaxRows)
		}
	}
	if size != db.size {
		return fmt.Errorf("the database's size is %d, its rows sum to %d", db.size, size)
	}
	conds := 0
	for m := range db.mons {
		if m.conds != tablesWeight(m.tables) {
			return fmt.Errorf("monitor %s counts conditions of weight %d, has %d", m.idJSON, m.conds, tablesWeight(m.tables))
		}
		conds += m.conds
	}
	if conds != db.monConds {
		return fmt.Errorf("the database counts monitor conditions of weight %d, its monitors have %d", db.monConds, conds)
	}
	return nil
}

func checkStoredRow(db *DB, td *tableData, u UUID, r *Row, counts map[refKey]int) error {
	t := td.schema
	if r.UUID != u || len(r.Cols) != len(t.Columns) {
		return fmt.Errorf("row is malformed (uuid %s, %d columns)", r.UUID, len(r.Cols))
	}
	if got := r.Cols[t.ByName[colUUID].index]; got.Len() != 1 || got.Keys[0] != u {
		return fmt.Errorf("_uuid column holds %v", got.Keys)
	}
	for _, c := range t.Columns {
		if err := checkDatum(r.Cols[c.index], &c.Type); err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
	}
	for _, rc := range t.refs() {
		d := r.Cols[rc.col.index]
		atoms := d.Keys
		if rc.inValue {
			atoms = d.Values
		}
		for _, a := range atoms {
			target := a.(UUID)
			if _, ok := db.tables[rc.base.RefTable].rows[target]; !ok {
				kind := "weak"
				if rc.base.Strong {
					kind = "strong"
				}
				return fmt.Errorf("column %s: %s reference to missing %s row %s", rc.col.Name, kind, rc.base.RefTable, target)
			}
			if rc.base.Strong {
				counts[refKey{rc.base.RefTable, target}]++
			}
		}
	}
	return nil
}

// checkDatum verifies that d is normalized and obeys type t.
func checkDatum(d Datum, t *Type) error {
	if t.IsMap() != d.IsMap() {
		return fmt.Errorf("map-ness %v, type says %v", d.IsMap(), t.IsMap())
	}
	if d.IsMap() && len(d.Values) != len(d.Keys) {
		return fmt.Errorf("%d keys, %d values", len(d.Keys), len(d.Values))
	}
	if d.Len() < t.Min || (t.Max >= 0 && d.Len() > t.Max) {
		return fmt.Errorf("%d elements, type allows %d..%d", d.Len(), t.Min, t.Max)
	}
	for i, k := range d.Keys {
		if err := checkAtom(k, &t.Key); err != nil {
			return err
		}
		if i > 0 && compareAtoms(d.Keys[i-1], k) >= 0 {
			return fmt.Errorf("keys not sorted and unique: %v", d.Keys)
		}
		if d.IsMap() {
			if err := checkAtom(d.Values[i], t.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkAtom(a Atom, b *BaseType) error {
	ok := false
	switch a.(type) {
	case int64:
		ok = b.Type == TypeInteger
	case float64:
		ok = b.Type == TypeReal
	case bool:
		ok = b.Type == TypeBoolean
	case string:
		ok = b.Type == TypeString
	case UUID:
		ok = b.Type == TypeUUID
	}
	if !ok {
		return fmt.Errorf("atom %#v is not of type %s", a, b.Type)
	}
	if err := b.check(a); err != nil {
		return err
	}
	return nil
}

func checkCounts(name string, td *tableData, counts map[refKey]int) error {
	for u, n := range td.refs {
		if want := counts[refKey{name, u}]; n != want {
			return fmt.Errorf("%s row %s: refs says %d strong references, recount %d", name, u, n, want)
		}
	}
	for u := range td.rows {
		want := counts[refKey{name, u}]
		if td.refs[u] != want {
			return fmt.Errorf("%s row %s: refs says %d strong references, recount %d", name, u, td.refs[u], want)
		}
		if !td.schema.IsRoot && want == 0 {
			return fmt.Errorf("%s row %s is in a non-root table and nothing references it", name, u)
		}
	}
	return nil
}

func checkIndexMaps(name string, td *tableData) error {
	for i, cols := range td.schema.Indexes {
		seen := map[string]UUID{}
		for u, r := range td.rows {
			k := indexKey(r, cols)
			if other, dup := seen[k]; dup {
				return fmt.Errorf("%s rows %s and %s share index %s values %q", name, u, other, columnNames(cols), k)
			}
			seen[k] = u
		}
		if !reflect.DeepEqual(seen, td.indexes[i]) && !(len(seen) == 0 && len(td.indexes[i]) == 0) {
			return fmt.Errorf("%s index %s: map %v, recount %v", name, columnNames(cols), td.indexes[i], seen)
		}
	}
	return nil
}

// dumpDB renders the durable contents (no ephemeral columns) as sorted
// text, to compare two databases or one database before and after.
func dumpDB(t testing.TB, db *DB, withEphemeral bool) string {
	t.Helper()
	snap := db.Snapshot()
	var lines []string
	for name, rows := range snap.Tables {
		tbl := snap.Schema.Tables[name]
		for u, r := range rows {
			m := map[string]any{}
			for _, c := range tbl.Columns {
				if c.Ephemeral && !withEphemeral {
					continue
				}
				m[c.Name] = datumJSON(r.Cols[c.index], &c.Type)
			}
			lines = append(lines, name+" "+u.String()+" "+mustJSONText(t, m))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
