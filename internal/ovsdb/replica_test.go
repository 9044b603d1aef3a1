package ovsdb

import (
	"encoding/json"
	"regexp"
	"testing"
)

// replicaDump is dumpDB without _version, which monitors do not carry.
func replicaDump(t *testing.T, db *DB) string {
	return versionJSON.ReplaceAllString(dumpDB(t, db, true), "")
}

var versionJSON = regexp.MustCompile(`"_version":\["uuid","[0-9a-f-]+"\],`)

// replicaOf follows src through a monitor of the given version, as a
// client would: initial contents, then one update per commit.
func replicaOf(t *testing.T, src *DB, version int) (*DB, func(*Commit)) {
	t.Helper()
	req := map[string]any{}
	for name := range src.schema.Tables {
		req[name] = map[string]any{}
	}
	tables, err := parseMonitorRequests(src, req, version)
	if err != nil {
		t.Fatalf("monitor request: %v", err)
	}
	m := &monitor{db: src, version: version, tables: tables}
	rep := NewDB(src.schema, nil)
	apply := func(updates map[string]any, reset bool) {
		t.Helper()
		b, err := json.Marshal(updates)
		if err != nil {
			t.Fatal(err)
		}
		if err := rep.ApplyUpdate(version, b, reset); err != nil {
			t.Fatalf("ApplyUpdate(%s): %v", b, err)
		}
	}
	src.mu.Lock()
	initial := m.initialUpdates()
	src.mu.Unlock()
	apply(initial, true)
	return rep, func(cm *Commit) {
		if u := m.commitUpdates(cm); u != nil {
			apply(u, false)
		}
	}
}

func TestReplicaFollowsMonitor(t *testing.T) {
	for _, version := range []int{1, 2} {
		src := newTestDB(t)
		mustTx(t, src, ops(t, `[{"op":"insert","table":"Root","row":{"name":"before","n":1,"opts":["map",[["a","1"]]]}}]`))
		rep, follow := replicaOf(t, src, version)
		src.OnCommit(follow)
		var hooked int
		rep.OnCommit(func(*Commit) { hooked++ })
		mustTx(t, src, ops(t, `[{"op":"insert","table":"Root","row":{"name":"r","n":2,"tags":["set",["x","y"]],
			"opts":["map",[["k","v"],["j","w"]]],"kids":["named-uuid","c"]},"uuid-name":"r"},
			{"op":"insert","table":"Child","row":{"label":"kid"},"uuid-name":"c"}]`))
		mustTx(t, src, ops(t, `[{"op":"update","table":"Root","where":[["name","==","r"]],"row":{"n":3,"tags":["set",["y","z"]],
			"opts":["map",[["k","v2"],["new","1"]]],"color":"red"}},
			{"op":"update","table":"Root","where":[["name","==","before"]],"row":{"opts":["map",[]]}}]`))
		mustTx(t, src, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","r"]]}]`))
		if got, want := replicaDump(t, rep), replicaDump(t, src); got != want {
			t.Fatalf("monitor version %d: replica\n%s\nwant\n%s", version, got, want)
		}
		if hooked != 3 {
			t.Errorf("monitor version %d: %d commit hooks ran on the replica, want 3", version, hooked)
		}
		checkInvariants(t, rep)
	}
}

// A reset replaces the replica's contents: rows the server deleted while
// the client was away are deleted, and the hooks are told.
func TestReplicaResetDeletesMissingRows(t *testing.T) {
	src := newTestDB(t)
	mustTx(t, src, ops(t, `[{"op":"insert","table":"Root","row":{"name":"gone"}}]`))
	rep, _ := replicaOf(t, src, 2) // not following: disconnected
	mustTx(t, src, ops(t, `[{"op":"delete","table":"Root","where":[]},{"op":"insert","table":"Root","row":{"name":"new"}}]`))
	var deleted int
	rep.OnCommit(func(cm *Commit) {
		for _, c := range cm.Changes {
			if c.New == nil {
				deleted++
			}
		}
	})
	m := &monitor{db: src, version: 2}
	m.tables, _ = parseMonitorRequests(src, map[string]any{"Root": map[string]any{}}, 2)
	b, _ := json.Marshal(m.initialUpdates())
	if err := rep.ApplyUpdate(2, b, true); err != nil {
		t.Fatal(err)
	}
	if got, want := replicaDump(t, rep), replicaDump(t, src); got != want {
		t.Fatalf("after reset: replica\n%s\nwant\n%s", got, want)
	}
	if deleted != 1 {
		t.Errorf("reset reported %d deleted rows, want 1", deleted)
	}
}

// An optional column's update2 "modify" is its new value, as OVS's
// ovsdb-server sends it: tag 5 to none arrives as ["set",[]].
func TestReplicaOptionalColumnNewValue(t *testing.T) {
	rep := newTestDB(t)
	const u = "6f1c8b4e-1111-4222-8333-944445555666"
	for _, c := range []struct{ update, want string }{
		{`{"Root":{"` + u + `":{"insert":{"name":"x","color":"red"}}}}`, "red"},
		{`{"Root":{"` + u + `":{"modify":{"color":"green"}}}}`, "green"},
		{`{"Root":{"` + u + `":{"modify":{"color":["set",[]]}}}}`, ""},
	} {
		if err := rep.ApplyUpdate(2, json.RawMessage(c.update), false); err != nil {
			t.Fatal(err)
		}
		got, _ := rep.Rows("Root")[0].Column(rep.schema.Tables["Root"], "color").Str()
		if got != c.want {
			t.Errorf("after %s: color %q, want %q", c.update, got, c.want)
		}
	}
}

func TestReplicaRefusesMalformedUpdates(t *testing.T) {
	rep := newTestDB(t)
	for _, bad := range []string{
		`[]`,
		`{"Root":[]}`,
		`{"Root":{"not-a-uuid":{"insert":{}}}}`,
		`{"Root":{"6f1c8b4e-1111-4222-8333-944445555666":{"modify":{"n":1}}}}`,
		`{"Root":{"6f1c8b4e-1111-4222-8333-944445555666":{"insert":{"n":"text"}}}}`,
		`{"Root":{"6f1c8b4e-1111-4222-8333-944445555666":{"bogus":{}}}}`,
		`{"Root":{"6f1c8b4e-1111-4222-8333-944445555666":{"insert":{"n":1}}}`,
	} {
		if err := rep.ApplyUpdate(2, json.RawMessage(bad), false); err == nil {
			t.Errorf("ApplyUpdate(%s) succeeded", bad)
		}
	}
	if n := rep.RowCount("Root"); n != 0 {
		t.Errorf("malformed updates left %d rows", n)
	}
	// Unknown tables and columns are ignored (a newer server schema).
	ok := `{"Nope":{"6f1c8b4e-1111-4222-8333-944445555666":{"insert":{}}},
		"Root":{"6f1c8b4e-1111-4222-8333-944445555666":{"insert":{"name":"x","extra":7}}}}`
	if err := rep.ApplyUpdate(2, json.RawMessage(ok), false); err != nil {
		t.Fatalf("update with unknown table and column: %v", err)
	}
	if n := rep.RowCount("Root"); n != 1 {
		t.Errorf("Root has %d rows, want 1", n)
	}
}
