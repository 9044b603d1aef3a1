package ovsdb

import (
	"fmt"
	"math"
	"math/rand"
	"testing"
)

// txnGen makes random transactions against the test schema, mixing valid
// operations with ones that break a rule on purpose.
type txnGen struct {
	rng   *rand.Rand
	snap  *Snapshot
	names int // uuid-names made so far in this transaction
}

func (g *txnGen) pick(table string) (UUID, bool) {
	rows := g.snap.Tables[table]
	if len(rows) == 0 {
		return UUID{}, false
	}
	i := g.rng.Intn(len(rows))
	for u := range rows {
		if i == 0 {
			return u, true
		}
		i--
	}
	return UUID{}, false
}

// ref returns a reference to an existing row of table, or now and then to
// a row that does not exist.
func (g *txnGen) ref(table string) any {
	if u, ok := g.pick(table); ok && g.rng.Intn(8) != 0 {
		return []any{"uuid", u.String()}
	}
	return []any{"uuid", NewUUID().String()}
}

func (g *txnGen) rootName() string { return fmt.Sprintf("n%d", g.rng.Intn(10)) }

func (g *txnGen) rootWhere() []any {
	switch g.rng.Intn(4) {
	case 0:
		return []any{}
	case 1:
		if u, ok := g.pick("Root"); ok {
			return []any{[]any{"_uuid", "==", []any{"uuid", u.String()}}}
		}
	case 2:
		return []any{[]any{"n", "<", g.rng.Intn(20)}}
	}
	return []any{[]any{"name", "==", g.rootName()}}
}

func (g *txnGen) newName() string {
	g.names++
	return fmt.Sprintf("u%d", g.names)
}

// newChildren returns inserts of up to two children (with leaves) and the
// named references to them.
func (g *txnGen) newChildren() (inserts []any, refs []any) {
	for i := g.rng.Intn(3); i > 0; i-- {
		name := g.newName()
		var leaves []any
		for j := g.rng.Intn(3); j > 0; j-- {
			leaf := g.newName()
			inserts = append(inserts, map[string]any{"op": "insert", "table": "Leaf", "uuid-name": leaf, "row": map[string]any{"v": g.rng.Intn(5)}})
			leaves = append(leaves, []any{"named-uuid", leaf})
		}
		row := map[string]any{"label": fmt.Sprintf("l%d", g.rng.Intn(4)), "leaves": []any{"set", leaves}}
		if g.rng.Intn(3) == 0 {
			row["buddy"] = g.ref("Child")
		}
		inserts = append(inserts, map[string]any{"op": "insert", "table": "Child", "uuid-name": name, "row": row})
		refs = append(refs, []any{"named-uuid", name})
	}
	if g.rng.Intn(3) == 0 {
		refs = append(refs, g.ref("Child"))
	}
	return inserts, refs
}

func (g *txnGen) insertRoot() []any {
	inserts, kids := g.newChildren()
	row := map[string]any{
		"name":  g.rootName(),
		"n":     g.rng.Intn(20),
		"level": g.rng.Intn(130), // sometimes over the maximum of 100
		"nums":  []any{"set", []any{g.rng.Intn(4), 4 + g.rng.Intn(4)}},
		"kids":  []any{"set", kids},
	}
	if g.rng.Intn(2) == 0 {
		row["watch"] = []any{"set", []any{g.ref("Root")}}
	}
	if g.rng.Intn(3) == 0 {
		row["color"] = []string{"red", "green", "blue", "mauve"}[g.rng.Intn(4)]
	}
	if g.rng.Intn(3) == 0 {
		var tags []any
		for i := g.rng.Intn(5); i > 0; i-- {
			tags = append(tags, fmt.Sprintf("t%d", i))
		}
		row["tags"] = []any{"set", tags}
	}
	if g.rng.Intn(3) == 0 {
		_, more := g.newChildren()
		if len(more) > 0 {
			row["kidmap"] = []any{"map", []any{[]any{"k", more[0]}}}
		}
	}
	if g.rng.Intn(4) == 0 {
		row["status"] = []any{"map", []any{[]any{"s", "up"}}}
	}
	return append(inserts, map[string]any{"op": "insert", "table": "Root", "row": row})
}

func (g *txnGen) mutateRoot() []any {
	var muts []any
	switch g.rng.Intn(7) {
	case 0:
		muts = append(muts, []any{"n", []string{"+=", "-=", "*=", "/=", "%="}[g.rng.Intn(5)], g.rng.Intn(5) - 1})
	case 1:
		muts = append(muts, []any{"n", "+=", int64(math.MaxInt64)})
	case 2:
		muts = append(muts, []any{"level", "+=", g.rng.Intn(60)})
	case 3:
		muts = append(muts, []any{"nums", []string{"insert", "delete"}[g.rng.Intn(2)], []any{"set", []any{g.rng.Intn(8)}}})
	case 4:
		muts = append(muts, []any{"tags", "insert", fmt.Sprintf("x%d", g.rng.Intn(6))})
	case 5:
		muts = append(muts, []any{"kids", []string{"insert", "delete"}[g.rng.Intn(2)], g.ref("Child")})
	default:
		muts = append(muts, []any{"opts", "insert", []any{"map", []any{[]any{fmt.Sprint(g.rng.Intn(3)), "v"}}}},
			[]any{"opts", "delete", []any{"set", []any{fmt.Sprint(g.rng.Intn(3))}}})
	}
	return []any{map[string]any{"op": "mutate", "table": "Root", "where": g.rootWhere(), "mutations": muts}}
}

func (g *txnGen) updateRoot() []any {
	row := map[string]any{}
	switch g.rng.Intn(4) {
	case 0:
		row["name"] = g.rootName()
	case 1:
		inserts, kids := g.newChildren()
		row["kids"] = []any{"set", kids}
		return append(inserts, map[string]any{"op": "update", "table": "Root", "where": g.rootWhere(), "row": row})
	case 2:
		row["watch"] = g.ref("Root")
	default:
		row["n"] = g.rng.Intn(20)
		row["kidmap"] = []any{"map", []any{}}
	}
	return []any{map[string]any{"op": "update", "table": "Root", "where": g.rootWhere(), "row": row}}
}

func (g *txnGen) op() []any {
	switch g.rng.Intn(14) {
	case 0, 1, 2:
		return g.insertRoot()
	case 3, 4:
		return g.mutateRoot()
	case 5, 6:
		return g.updateRoot()
	case 7:
		return []any{map[string]any{"op": "delete", "table": "Root", "where": g.rootWhere()}}
	case 8:
		return []any{map[string]any{"op": "delete", "table": "Child", "where": []any{[]any{"label", "==", fmt.Sprintf("l%d", g.rng.Intn(4))}}}}
	case 9:
		row := map[string]any{"target": g.ref("Root")}
		if g.rng.Intn(2) == 0 {
			row["pin"] = g.ref("Root")
		}
		return []any{map[string]any{"op": "insert", "table": "Anchor", "row": row}}
	case 10:
		return []any{map[string]any{"op": "delete", "table": "Anchor", "where": []any{}}}
	case 11:
		if g.rng.Intn(2) == 0 {
			return []any{map[string]any{"op": "insert", "table": "Config", "row": map[string]any{"k": "x"}}}
		}
		return []any{map[string]any{"op": "delete", "table": "Config", "where": []any{}}}
	case 12:
		return []any{map[string]any{"op": "update", "table": "Child", "where": []any{}, "row": map[string]any{"buddy": g.ref("Child")}}}
	}
	if g.rng.Intn(2) == 0 {
		return []any{map[string]any{"op": "abort"}}
	}
	return []any{map[string]any{"op": "wait", "table": "Root", "where": []any{}, "columns": []any{"name"},
		"until": []string{"==", "!="}[g.rng.Intn(2)], "rows": []any{}, "timeout": 0}}
}

func (g *txnGen) txn() []any {
	g.names = 0
	var out []any
	for i := 1 + g.rng.Intn(3); i > 0; i-- {
		out = append(out, g.op()...)
	}
	return out
}

// TestPropertyRandomTransactions runs random transactions (300 for each
// of a few seeds) and checks,
// after each one, the database invariants, the shape of the results, that
// a failed transaction changed nothing, and, now and then, that the
// journal reloads to the same contents.
func TestPropertyRandomTransactions(t *testing.T) {
	for _, seed := range []int64{1, 2, 3, 20261122} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { propertyRun(t, seed) })
	}
}

func propertyRun(t *testing.T, seed int64) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	db.journal.CompactAfter = 16 << 10 // compact now and then, too
	g := &txnGen{rng: rand.New(rand.NewSource(seed))}
	const txns = 300
	succeeded, maxRoots, maxChildren := 0, 0, 0
	for i := 1; i <= txns; i++ {
		g.snap = db.Snapshot()
		opList := g.txn()
		before := dumpDB(t, db, true)
		res := db.Transact(opList)
		if err := checkResultShape(res, len(opList)); err != nil {
			t.Fatalf("txn %d %s: %v: %s", i, mustJSONText(t, opList), err, mustJSONText(t, res))
		}
		checkInvariants(t, db)
		failed := len(res) > 0 && errTag(res[len(res)-1]) != ""
		if failed && dumpDB(t, db, true) != before {
			t.Fatalf("txn %d %s failed (%s) but changed the database", i, mustJSONText(t, opList), mustJSONText(t, res[len(res)-1]))
		}
		if !failed {
			succeeded++
		}
		maxRoots, maxChildren = max(maxRoots, db.RowCount("Root")), max(maxChildren, db.RowCount("Child"))
		if i%100 == 0 || i == txns {
			want := dumpDB(t, db, false)
			db = reopen(t, db, path)
			db.journal.CompactAfter = 16 << 10
			if got := dumpDB(t, db, false); got != want {
				t.Fatalf("after txn %d, reopened journal differs:\n got %s\nwant %s", i, got, want)
			}
			checkInvariants(t, db)
		}
	}
	// The generator must reach interesting states, not fail every time.
	if succeeded < txns/4 {
		t.Fatalf("only %d of %d random transactions succeeded", succeeded, txns)
	}
	if maxRoots < 3 || maxChildren < 2 {
		t.Fatalf("random run reached at most %d roots and %d children", maxRoots, maxChildren)
	}
	t.Logf("seed %d: %d of %d transactions committed; at most %d roots and %d children", seed, succeeded, txns,
		maxRoots, maxChildren)
}
