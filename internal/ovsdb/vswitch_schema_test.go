package ovsdb_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gvs/internal/ovsdb"
)

// These tests run the Open_vSwitch schema that gvsd serves through the
// public API, with transactions shaped like the ones ovs-vsctl sends.

// vsSchemaFile is the file that package vswitchd embeds as SchemaJSON. It
// is read from disk rather than imported, so that this package's tests do
// not depend on the packages built on top of it.
const vsSchemaFile = "../vswitchd/vswitch.ovsschema"

// vsDBName is the database name OVS clients ask for.
const vsDBName = "Open_vSwitch"

func vsSchemaJSON(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(vsSchemaFile)
	if err != nil {
		t.Fatalf("Open_vSwitch schema: %v", err)
	}
	return data
}

func vsSchema(t *testing.T) *ovsdb.Schema {
	t.Helper()
	s, err := ovsdb.ParseSchema(vsSchemaJSON(t))
	if err != nil {
		t.Fatalf("ParseSchema(Open_vSwitch): %v", err)
	}
	return s
}

func vsOps(t *testing.T, text string) []any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v []any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("bad ops %s: %v", text, err)
	}
	return v
}

func vsTag(v any) string {
	m, _ := v.(map[string]any)
	s, _ := m["error"].(string)
	return s
}

func vsMustTx(t *testing.T, db *ovsdb.DB, text string) []any {
	t.Helper()
	o := vsOps(t, text)
	res := db.Transact(o)
	if len(res) != len(o) {
		b, _ := json.Marshal(res)
		t.Fatalf("transaction failed: %s", b)
	}
	for _, r := range res {
		if vsTag(r) != "" {
			b, _ := json.Marshal(res)
			t.Fatalf("transaction failed: %s", b)
		}
	}
	return res
}

func vsFails(t *testing.T, db *ovsdb.DB, text, tag string) {
	t.Helper()
	res := db.Transact(vsOps(t, text))
	if len(res) == 0 || vsTag(res[len(res)-1]) != tag {
		b, _ := json.Marshal(res)
		t.Fatalf("want error %q, got %s", tag, b)
	}
}

func vsUUID(t *testing.T, res any) string {
	t.Helper()
	m, _ := res.(map[string]any)
	pair, _ := m["uuid"].([]any)
	if len(pair) != 2 {
		t.Fatalf("no uuid in %v", res)
	}
	return pair[1].(string)
}

// vsDump renders the durable contents of every table as sorted text.
func vsDump(t *testing.T, db *ovsdb.DB) string {
	t.Helper()
	s := db.Schema()
	var lines []string
	for name, tbl := range s.Tables {
		var cols []any
		for _, c := range tbl.Columns {
			if !c.Ephemeral {
				cols = append(cols, c.Name)
			}
		}
		res := db.Transact([]any{map[string]any{"op": "select", "table": name, "where": []any{}, "columns": cols}})
		rows := res[0].(map[string]any)["rows"].([]any)
		for _, r := range rows {
			b, _ := json.Marshal(r)
			lines = append(lines, name+" "+string(b))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestVswitchdSchemaBridgeLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conf.db")
	s := vsSchema(t)
	db, err := ovsdb.OpenDB(path, s)
	if err != nil {
		t.Fatal(err)
	}
	// ovs-vsctl init
	ovs := vsUUID(t, vsMustTx(t, db, `[{"op":"insert","table":"Open_vSwitch","row":{}}]`)[0])
	vsFails(t, db, `[{"op":"insert","table":"Open_vSwitch","row":{}}]`, "constraint violation")

	// ovs-vsctl add-br br0
	vsMustTx(t, db, fmt.Sprintf(`[
		{"op":"wait","table":"Open_vSwitch","where":[["_uuid","==",["uuid",%q]]],"columns":["bridges"],"until":"==","rows":[{"bridges":["set",[]]}],"timeout":0},
		{"op":"insert","table":"Interface","uuid-name":"i0","row":{"name":"br0","type":"internal"}},
		{"op":"insert","table":"Port","uuid-name":"p0","row":{"name":"br0","interfaces":["named-uuid","i0"]}},
		{"op":"insert","table":"Bridge","uuid-name":"b0","row":{"name":"br0","ports":["named-uuid","p0"]}},
		{"op":"mutate","table":"Open_vSwitch","where":[["_uuid","==",["uuid",%q]]],"mutations":[["bridges","insert",["set",[["named-uuid","b0"]]]]]},
		{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["next_cfg","+=",1]]},
		{"op":"comment","comment":"ovs-vsctl: ovs-vsctl add-br br0"}]`, ovs, ovs))
	// A second bridge with the same name breaks the Bridge name index.
	vsFails(t, db, fmt.Sprintf(`[
		{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"br0"}},
		{"op":"mutate","table":"Open_vSwitch","where":[["_uuid","==",["uuid",%q]]],"mutations":[["bridges","insert",["named-uuid","b"]]]}]`, ovs),
		"constraint violation")
	// A Port needs at least one Interface.
	vsFails(t, db, `[{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"p","interfaces":["set",[]]}},
		{"op":"mutate","table":"Bridge","where":[],"mutations":[["ports","insert",["named-uuid","p"]]]}]`, "constraint violation")

	// add-port br0 p1, and a mirror that selects and outputs to it.
	vsMustTx(t, db, `[
		{"op":"insert","table":"Interface","uuid-name":"i1","row":{"name":"p1"}},
		{"op":"insert","table":"Port","uuid-name":"p1","row":{"name":"p1","interfaces":["named-uuid","i1"]}},
		{"op":"insert","table":"Mirror","uuid-name":"m","row":{"name":"m0","select_src_port":["named-uuid","p1"],"output_port":["named-uuid","p1"]}},
		{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["named-uuid","p1"]],["mirrors","insert",["named-uuid","m"]]]}]`)
	for table, n := range map[string]int{"Bridge": 1, "Port": 2, "Interface": 2, "Mirror": 1} {
		if got := db.RowCount(table); got != n {
			t.Fatalf("%s has %d rows, want %d", table, got, n)
		}
	}
	// del-port p1: the port and its interface are collected, and the
	// mirror's weak references to the port are dropped.
	port := db.Transact(vsOps(t, `[{"op":"select","table":"Port","where":[["name","==","p1"]],"columns":["_uuid"]}]`))
	pu := port[0].(map[string]any)["rows"].([]any)[0].(map[string]any)["_uuid"].([]any)[1].(string)
	vsMustTx(t, db, fmt.Sprintf(`[{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","delete",["uuid",%q]]]}]`, pu))
	if db.RowCount("Port") != 1 || db.RowCount("Interface") != 1 {
		t.Fatalf("after del-port: %d ports, %d interfaces", db.RowCount("Port"), db.RowCount("Interface"))
	}
	snap := db.Snapshot()
	for _, m := range db.Rows("Mirror") {
		for _, col := range []string{"select_src_port", "output_port"} {
			if d, _ := snap.Get("Mirror", m.UUID, col); d.Len() != 0 {
				t.Fatalf("mirror %s still holds %d references to the deleted port", col, d.Len())
			}
		}
	}

	// Reopening gives the same contents; then del-br collects everything
	// below Open_vSwitch.
	want := vsDump(t, db)
	db2, err := ovsdb.OpenDB(path, s)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got := vsDump(t, db2); got != want {
		t.Fatalf("reopened database differs:\n got %s\nwant %s", got, want)
	}
	vsMustTx(t, db2, `[{"op":"update","table":"Open_vSwitch","where":[],"row":{"bridges":["set",[]]}}]`)
	for _, table := range []string{"Bridge", "Port", "Interface", "Mirror"} {
		if n := db2.RowCount(table); n != 0 {
			t.Errorf("after del-br, %s has %d rows", table, n)
		}
	}
	if db2.RowCount("Open_vSwitch") != 1 {
		t.Fatal("root row Open_vSwitch collected")
	}
}

func TestVswitchdSchemaOverRPC(t *testing.T) {
	db := ovsdb.NewDB(vsSchema(t), nil)
	srv, err := ovsdb.NewServer(db)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sock := filepath.Join(t.TempDir(), "db.sock")
	if _, err := srv.Listen("punix:" + sock); err != nil {
		t.Fatal(err)
	}
	c, err := ovsdb.Dial("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	schema, err := c.Call("get_schema", vsDBName)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	dec := json.NewDecoder(strings.NewReader(string(vsSchemaJSON(t))))
	dec.UseNumber()
	if err := dec.Decode(&want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(schema, want) {
		t.Fatal("get_schema does not return the schema as written")
	}
	if _, err := c.Call("transact", vsDBName, map[string]any{"op": "insert", "table": "Open_vSwitch", "row": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	// ovs-vsctl's first monitor, on every column of Open_vSwitch.
	upd, err := c.Call("monitor_cond_since", vsDBName, []any{"monid", vsDBName},
		map[string]any{"Open_vSwitch": []any{map[string]any{"columns": []any{"bridges", "cur_cfg", "next_cfg"}}}},
		"00000000-0000-0000-0000-000000000000")
	if err != nil {
		t.Fatal(err)
	}
	arr, _ := upd.([]any)
	if len(arr) != 3 || arr[0] != false {
		t.Fatalf("monitor_cond_since reply %v", upd)
	}
	rows, _ := arr[2].(map[string]any)["Open_vSwitch"].(map[string]any)
	if len(rows) != 1 {
		t.Fatalf("initial Open_vSwitch rows: %v", arr[2])
	}
	sel, err := c.Select(vsDBName, "Open_vSwitch")
	if err != nil || len(sel) != 1 {
		t.Fatalf("Select: %v, %v", sel, err)
	}
	if _, err := c.Call("no_such_method"); err == nil || !strings.Contains(err.Error(), "is not a method") {
		t.Fatalf("Call of an unknown method: %v", err)
	}
}
