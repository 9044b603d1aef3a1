package ovsdb

import (
	"fmt"
	"strings"
	"testing"
)

const missingUUID = "5d6f9e3a-1b2c-4d5e-8f90-a1b2c3d4e5f6"

func TestStrongRefToMissingRow(t *testing.T) {
	db := newTestDB(t)
	before := dumpDB(t, db, true)
	res := db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"a","kids":["uuid","`+missingUUID+`"]}}]`))
	// Commit-time errors come after every operation's result.
	d := txFails(t, res, 1, "referential integrity violation")
	if !strings.Contains(d, missingUUID) {
		t.Errorf("details do not name the missing row: %q", d)
	}
	// A reference to a row of another table is just as missing.
	a := insertRoot(t, db, "a", "")
	txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"b","kidmap":["map",[["k",["uuid","`+a.String()+`"]]]]}}]`)),
		1, "referential integrity violation")
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[]}]`))
	if dumpDB(t, db, true) != before {
		t.Fatal("database not back to empty")
	}
}

func TestDeleteReferencedRow(t *testing.T) {
	db := newTestDB(t)
	a := insertRoot(t, db, "a", "")
	mustTx(t, db, ops(t, `[{"op":"insert","table":"Anchor","row":{"target":["uuid","`+a.String()+`"],"pin":["uuid","`+a.String()+`"]}}]`))
	before := dumpDB(t, db, true)
	// A root row with a strong reference to it cannot go.
	txFails(t, db.Transact(ops(t, `[{"op":"delete","table":"Root","where":[]}]`)), 1, "referential integrity violation")
	if dumpDB(t, db, true) != before {
		t.Fatal("failed delete changed the database")
	}
	// Nor can a non-root row that is still referenced.
	res := mustTx(t, db, ops(t, `[{"op":"insert","table":"Child","uuid-name":"c","row":{}},
		{"op":"mutate","table":"Root","where":[],"mutations":[["kids","insert",["set",[["named-uuid","c"]]]]]}]`))
	c := insertedUUID(t, res[0])
	before = dumpDB(t, db, true)
	txFails(t, db.Transact(ops(t, `[{"op":"delete","table":"Child","where":[]}]`)), 1, "referential integrity violation")
	if dumpDB(t, db, true) != before {
		t.Fatal("failed delete changed the database")
	}
	// Dropping the reference and the row together is fine.
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[],"row":{"kids":["set",[]]}},
		{"op":"delete","table":"Child","where":[["_uuid","==",["uuid","`+c.String()+`"]]]}]`))
	if db.RowCount("Child") != 0 {
		t.Fatal("child not deleted")
	}
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Anchor","where":[]},{"op":"delete","table":"Root","where":[]}]`))
	checkInvariants(t, db)
}

func TestGarbageCollection(t *testing.T) {
	db := newTestDB(t)
	// A non-root row inserted and never referenced does not survive.
	mustTx(t, db, ops(t, `[{"op":"insert","table":"Child","row":{"label":"orphan"}}]`))
	if n := db.RowCount("Child"); n != 0 {
		t.Fatalf("unreferenced child kept: %d rows", n)
	}
	// A chain root -> child -> leaf, and a second child shared by two roots.
	res := mustTx(t, db, ops(t, `[
		{"op":"insert","table":"Root","uuid-name":"r1","row":{"name":"r1","kids":["set",[["named-uuid","c1"],["named-uuid","c2"]]]}},
		{"op":"insert","table":"Root","uuid-name":"r2","row":{"name":"r2","kidmap":["map",[["x",["named-uuid","c2"]]]]}},
		{"op":"insert","table":"Child","uuid-name":"c1","row":{"label":"c1","leaves":["set",[["named-uuid","l1"],["named-uuid","l2"]]]}},
		{"op":"insert","table":"Child","uuid-name":"c2","row":{"label":"c2"}},
		{"op":"insert","table":"Leaf","uuid-name":"l1","row":{"v":1}},
		{"op":"insert","table":"Leaf","uuid-name":"l2","row":{"v":2}}]`))
	c2 := insertedUUID(t, res[3])
	checkInvariants(t, db)
	if db.RowCount("Child") != 2 || db.RowCount("Leaf") != 2 {
		t.Fatalf("rows missing: %d children, %d leaves", db.RowCount("Child"), db.RowCount("Leaf"))
	}
	// Dropping r1's references collects c1 and, in cascade, its leaves; c2
	// stays because r2 still holds it.
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","r1"]],"row":{"kids":["set",[]]}}]`))
	if db.RowCount("Child") != 1 || db.RowCount("Leaf") != 0 {
		t.Fatalf("after unref: %d children, %d leaves; want 1, 0", db.RowCount("Child"), db.RowCount("Leaf"))
	}
	jsonIs(t, "survivor", column(t, db, "Child", c2, "label"), `"c2"`)
	checkInvariants(t, db)
	// Deleting the root that holds the last reference collects c2.
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","r2"]]}]`))
	if db.RowCount("Child") != 0 {
		t.Fatalf("child of deleted root kept")
	}
	// A row moved from one referrer to another in one transaction stays.
	res = mustTx(t, db, ops(t, `[{"op":"insert","table":"Child","uuid-name":"c","row":{"label":"moved"}},
		{"op":"update","table":"Root","where":[["name","==","r1"]],"row":{"kids":["named-uuid","c"]}}]`))
	c := insertedUUID(t, res[0])
	mustTx(t, db, ops(t, `[{"op":"insert","table":"Root","row":{"name":"r3","kids":["uuid","`+c.String()+`"]}},
		{"op":"update","table":"Root","where":[["name","==","r1"]],"row":{"kids":["set",[]]}}]`))
	jsonIs(t, "moved", column(t, db, "Child", c, "label"), `"moved"`)
	checkInvariants(t, db)
}

func TestWeakReferences(t *testing.T) {
	db := newTestDB(t)
	a := insertRoot(t, db, "a", "")
	b := insertRoot(t, db, "b", fmt.Sprintf(`,"watch":["set",[%s,["uuid",%q]]]`, uuidJSON(a), missingUUID))
	// A weak reference to a row that never existed is dropped at once.
	jsonIs(t, "watch", column(t, db, "Root", b, "watch"), uuidJSON(a))
	// Deleting the target removes the reference from the referrer.
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","a"]]}]`))
	jsonIs(t, "watch after delete", column(t, db, "Root", b, "watch"), `["set",[]]`)
	checkInvariants(t, db)

	// A weak column with min 1 that would become empty fails the commit.
	mustTx(t, db, ops(t, `[{"op":"insert","table":"Anchor","row":{"target":["uuid","`+b.String()+`"]}}]`))
	before := dumpDB(t, db, true)
	d := txFails(t, db.Transact(ops(t, `[{"op":"delete","table":"Root","where":[["name","==","b"]]}]`)), 1, "constraint violation")
	if !strings.Contains(d, "target") {
		t.Errorf("details do not name the column: %q", d)
	}
	if dumpDB(t, db, true) != before {
		t.Fatal("failed delete changed the database")
	}
	// An Anchor inserted without a target (the zero uuid) is refused too.
	txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Anchor","row":{}}]`)), 1, "constraint violation")
	// Weak references between non-root rows do not keep them alive.
	res := mustTx(t, db, ops(t, `[
		{"op":"insert","table":"Child","uuid-name":"x","row":{"label":"x","buddy":["named-uuid","y"]}},
		{"op":"insert","table":"Child","uuid-name":"y","row":{"label":"y","buddy":["named-uuid","x"]}},
		{"op":"update","table":"Root","where":[["name","==","b"]],"row":{"kids":["named-uuid","x"]}}]`))
	x := insertedUUID(t, res[0])
	if db.RowCount("Child") != 1 {
		t.Fatalf("weakly referenced child kept: %d children", db.RowCount("Child"))
	}
	jsonIs(t, "buddy", column(t, db, "Child", x, "buddy"), `["set",[]]`)
	checkInvariants(t, db)
}

func TestUniqueIndex(t *testing.T) {
	db := newTestDB(t)
	insertRoot(t, db, "a", "")
	insertRoot(t, db, "b", "")
	before := dumpDB(t, db, true)
	d := txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"a"}}]`)), 1, "constraint violation")
	if !strings.Contains(d, "index") || !strings.Contains(d, "name") {
		t.Errorf("details do not mention the index: %q", d)
	}
	txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"z"}},{"op":"insert","table":"Root","row":{"name":"z"}}]`)),
		2, "constraint violation")
	txFails(t, db.Transact(ops(t, `[{"op":"update","table":"Root","where":[["name","==","b"]],"row":{"name":"a"}}]`)),
		1, "constraint violation")
	if dumpDB(t, db, true) != before {
		t.Fatal("failed transactions changed the database")
	}
	// Swapping two rows' values in one transaction is allowed.
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","a"]],"row":{"name":"tmp"}},
		{"op":"update","table":"Root","where":[["name","==","b"]],"row":{"name":"a"}},
		{"op":"update","table":"Root","where":[["name","==","tmp"]],"row":{"name":"b"}}]`))
	checkInvariants(t, db)
	// Taking the value of a row deleted in the same transaction too.
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","a"]]},
		{"op":"update","table":"Root","where":[["name","==","b"]],"row":{"name":"a"}}]`))
	checkInvariants(t, db)
	// And the freed value can be used again.
	insertRoot(t, db, "b", "")
	checkInvariants(t, db)
}

func TestMaxRows(t *testing.T) {
	db := newTestDB(t)
	txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Config","row":{"k":"1"}},{"op":"insert","table":"Config","row":{"k":"2"}}]`)),
		2, "constraint violation")
	mustTx(t, db, ops(t, `[{"op":"insert","table":"Config","row":{"k":"1"}}]`))
	d := txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Config","row":{"k":"2"}}]`)), 1, "constraint violation")
	if !strings.Contains(d, "Config") {
		t.Errorf("details do not name the table: %q", d)
	}
	// Replacing the only row in one transaction is fine.
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Config","where":[]},{"op":"insert","table":"Config","row":{"k":"2"}}]`))
	checkInvariants(t, db)
}

func TestCommitHookAndSnapshot(t *testing.T) {
	db := newTestDB(t)
	var got []*Commit
	db.OnCommit(func(c *Commit) { got = append(got, c) })
	a := insertRoot(t, db, "a", `,"n":4,"opts":["map",[["k","v"]]]`)
	mustTx(t, db, ops(t, `[{"op":"select","table":"Root","where":[]}]`))
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[],"row":{"n":4}}]`))
	if len(got) != 1 {
		t.Fatalf("%d commit hooks for one change", len(got))
	}
	if c := got[0].Changes; len(c) != 1 || c[0].Old != nil || c[0].New == nil || c[0].UUID != a {
		t.Fatalf("commit changes %+v", c)
	}
	snap := db.Snapshot()
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[],"row":{"n":5}}]`))
	n, _ := snap.Get("Root", a, "n")
	if v, _ := n.Int(); v != 4 {
		t.Fatalf("snapshot changed by a later commit: n = %d", v)
	}
	opts, _ := snap.Get("Root", a, "opts")
	if m := opts.StringMap(); m["k"] != "v" {
		t.Fatalf("StringMap = %v", m)
	}
	if len(got) != 2 || got[1].Changes[0].Old == nil {
		t.Fatalf("update commit %+v", got)
	}
	if rows := db.Rows("Root"); len(rows) != 1 || rows[0].UUID != a {
		t.Fatalf("Rows = %v", rows)
	}
}

// A table check sees the table as the transaction leaves it (rows written
// by earlier commits and by this one, deletions gone), once per
// transaction, with the rows this one wrote; its error fails the
// transaction.
func TestTableCheckSeesWholeTable(t *testing.T) {
	db := newTestDB(t)
	calls := 0
	// No two Root rows may have the same n.
	db.AddTableCheck("Root", func(tb *Table, rows []*Row, written map[UUID]bool) error {
		calls++
		seen := map[int64]UUID{}
		byUUID := map[UUID]*Row{}
		for _, r := range rows {
			n, _ := r.Column(tb, "n").Int()
			if u, dup := seen[n]; dup && (written[r.UUID] || written[u]) {
				// Name the row the transaction wrote: rows come in no
				// particular order.
				culprit := r
				if !written[r.UUID] {
					culprit = byUUID[u]
				}
				name, _ := culprit.Column(tb, "name").Str()
				return fmt.Errorf("%s: n=%d taken", name, n)
			}
			byUUID[r.UUID] = r
			seen[n] = r.UUID
		}
		return nil
	})
	mustOK := func(text string) {
		t.Helper()
		for i, r := range db.Transact(ops(t, text)) {
			if errTag(r) != "" {
				t.Fatalf("op %d of %s: %s", i, text, mustJSONText(t, r))
			}
		}
	}
	mustOK(`[{"op":"insert","table":"Root","row":{"name":"a","n":1}}]`)
	d := txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"b","n":1}}]`)), 1, "constraint violation")
	if !strings.Contains(d, "b: n=1 taken") {
		t.Errorf("details %q", d)
	}
	// Two rows of one transaction see each other.
	txFails(t, db.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"c","n":2}},{"op":"insert","table":"Root","row":{"name":"d","n":2}}]`)), 2, "constraint violation")
	// A deletion in the same transaction frees the value.
	mustOK(`[{"op":"delete","table":"Root","where":[["name","==","a"]]},{"op":"insert","table":"Root","row":{"name":"e","n":1}}]`)
	// A modification is checked with the new value.
	mustOK(`[{"op":"insert","table":"Root","row":{"name":"f","n":3}}]`)
	txFails(t, db.Transact(ops(t, `[{"op":"update","table":"Root","where":[["name","==","f"]],"row":{"n":1}}]`)), 1, "constraint violation")
	before := calls
	mustOK(`[{"op":"insert","table":"Config","row":{"k":"x"}}]`)
	if calls != before {
		t.Error("a transaction that wrote no Root row ran Root's table check")
	}
}
