package vswitchd

import (
	"fmt"
	"strings"
	"testing"
)

// insertMany is the operations inserting n rows of table (row text made
// by row(i), named r0, r1, ...) and adding them to column of the rows of
// parent that where selects.
func insertMany(n int, table string, row func(i int) string, parent, where, column string) string {
	var ops, refs []string
	for i := range n {
		ops = append(ops, fmt.Sprintf(`{"op":"insert","table":%q,"uuid-name":"r%d","row":%s}`, table, i, row(i)))
		refs = append(refs, fmt.Sprintf(`["named-uuid","r%d"]`, i))
	}
	ops = append(ops, fmt.Sprintf(`{"op":"mutate","table":%q,"where":%s,"mutations":[[%q,"insert",["set",[%s]]]]}`,
		parent, where, column, strings.Join(refs, ",")))
	return "[" + strings.Join(ops, ",") + "]"
}

// TestSetsBoundedAtCommit: bridges, a bridge's controllers (each a
// connection or a listening socket) and its mirrors (each looked at for
// every new flow) are bounded; a transaction going past the limit fails
// with the column and the limit, one at the limit passes. A database
// that holds more (written by another program) is applied up to the
// limit.
func TestSetsBoundedAtCommit(t *testing.T) {
	br0 := `[["name","==","br0"]]`
	for _, tc := range []struct {
		column, table, parent, where string
		max                          int
		row                          func(i int) string
	}{
		{"bridges", "Bridge", "Open_vSwitch", `[]`, MaxBridges, func(i int) string { return fmt.Sprintf(`{"name":"lb%d"}`, i) }},
		{"controller", "Controller", "Bridge", br0, MaxControllers, func(i int) string { return fmt.Sprintf(`{"target":"tcp:127.0.0.1:%d"}`, 1+i) }},
		{"mirrors", "Mirror", "Bridge", br0, MaxMirrors, func(i int) string { return fmt.Sprintf(`{"name":"m%d"}`, i) }},
	} {
		t.Run(tc.column, func(t *testing.T) {
			sw := newSwitchWithBridge(t, `[]`)
			n := tc.max
			if tc.column == "bridges" {
				n-- // br0 is one
			}
			err := transact(t, sw.db, insertMany(n+1, tc.table, tc.row, tc.parent, tc.where, tc.column))
			want := fmt.Sprintf("%s: %d rows, at most %d", tc.column, tc.max+1, tc.max)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("one row too many: %v, want an error with %q", err, want)
			}
			if err := transact(t, sw.db, insertMany(n, tc.table, tc.row, tc.parent, tc.where, tc.column)); err != nil {
				t.Fatalf("up to the limit: %v", err)
			}
		})
	}
	t.Run("database written elsewhere", func(t *testing.T) {
		db := newMemDB(t)
		if err := transact(t, db, `[{"op":"insert","table":"Open_vSwitch","row":{}}]`); err != nil {
			t.Fatal(err)
		}
		if err := transact(t, db, insertMany(MaxBridges+5, "Bridge", func(i int) string { return fmt.Sprintf(`{"name":"lb%04d"}`, i) }, "Open_vSwitch", `[]`, "bridges")); err != nil {
			t.Fatal(err)
		}
		if got := len(desiredBridges(db.Snapshot(configTables...))); got != MaxBridges {
			t.Errorf("%d bridges applied, want %d", got, MaxBridges)
		}
	})
}
