package idl

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvs/internal/ovsdb"
)

const testSchema = `{"name":"Test","version":"1.0.0","tables":{
 "Root":{"isRoot":true,"columns":{"name":{"type":"string"},"n":{"type":"integer"},
   "opts":{"type":{"key":"string","value":"string","min":0,"max":"unlimited"}}}}}}`

// serve starts the embedded server for db on a socket in dir.
func serve(t *testing.T, db *ovsdb.DB, sock string) *ovsdb.Server {
	t.Helper()
	srv, err := ovsdb.NewServer(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Listen("punix:" + sock); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv
}

func mustTx(t *testing.T, db interface{ Transact([]any) []any }, ops ...any) {
	t.Helper()
	for _, r := range db.Transact(ops) {
		if m, ok := r.(map[string]any); ok && m["error"] != nil {
			t.Fatalf("transaction %v: %v", ops, r)
		}
	}
}

func insert(name string, n int) any {
	return map[string]any{"op": "insert", "table": "Root", "row": map[string]any{"name": name, "n": n}}
}

// names lists the replica's Root rows as name=n.
func names(db interface{ Rows(string) []*ovsdb.Row }, s *ovsdb.Schema) string {
	var out []string
	for _, r := range db.Rows("Root") {
		name, _ := r.Column(s.Tables["Root"], "name").Str()
		out = append(out, name)
	}
	return strings.Join(out, ",")
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func startReplica(t *testing.T, cfg Config) *Replica {
	t.Helper()
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

// The replica loads the database, follows its changes, writes through
// the server, and after the server restarts loads it again, with what
// changed while it was away.
func TestReplicaFollowsAndResyncs(t *testing.T) {
	schema, err := ovsdb.ParseSchema([]byte(testSchema))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "db.sock")
	db, err := ovsdb.OpenDB(filepath.Join(dir, "conf.db"), schema)
	if err != nil {
		t.Fatal(err)
	}
	mustTx(t, db, insert("a", 1))
	srv := serve(t, db, sock)
	syncs := make(chan struct{}, 10)
	r := startReplica(t, Config{Remotes: []string{"unix:" + sock}, Schema: schema, Lock: "test_lock",
		OnSync: func() { syncs <- struct{}{} }, MinBackoff: 20 * time.Millisecond})
	waitFor(t, "the first sync", func() bool { return r.Writable() && names(r, schema) == "a" })
	<-syncs
	mustTx(t, db, insert("b", 2))
	waitFor(t, "b replicated", func() bool { return len(r.Rows("Root")) == 2 })
	mustTx(t, r, insert("c", 3)) // through the server, with the lock asserted
	waitFor(t, "c in the server and the replica", func() bool { return db.RowCount("Root") == 3 && len(r.Rows("Root")) == 3 })

	srv.Close()
	waitFor(t, "the replica to notice", func() bool { return !r.Writable() })
	if res := r.Transact([]any{insert("x", 0)}); !strings.Contains(errText(res), "not connected") {
		t.Errorf("transaction while disconnected: %v", res)
	}
	mustTx(t, db, map[string]any{"op": "delete", "table": "Root", "where": []any{[]any{"name", "==", "a"}}}, insert("d", 4))
	serve(t, db, sock)
	waitFor(t, "the resync", func() bool { return r.Writable() && len(r.Rows("Root")) == 3 })
	<-syncs
	for _, row := range r.Rows("Root") {
		if name, _ := row.Column(schema.Tables["Root"], "name").Str(); name == "a" {
			t.Errorf("row a, deleted while disconnected, is still in the replica")
		}
	}
}

func errText(res []any) string {
	for _, r := range res {
		if m, ok := r.(map[string]any); ok && m["error"] != nil {
			return m["error"].(string) + ": " + m["details"].(string)
		}
	}
	return ""
}

// A second replica that wants the same lock waits, and does not write,
// until the first lets go.
func TestReplicaWaitsForLock(t *testing.T) {
	schema, _ := ovsdb.ParseSchema([]byte(testSchema))
	sock := filepath.Join(t.TempDir(), "db.sock")
	db := ovsdb.NewDB(schema, nil)
	serve(t, db, sock)
	cfg := Config{Remotes: []string{"unix:" + sock}, Schema: schema, Lock: "ovs_vswitchd", MinBackoff: 20 * time.Millisecond}
	first, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stopFirst := context.WithCancel(context.Background())
	firstDone := make(chan struct{})
	go func() { first.Run(ctx); close(firstDone) }()
	defer func() { stopFirst(); <-firstDone }()
	waitFor(t, "the first replica's lock", first.Writable)
	second := startReplica(t, cfg)
	time.Sleep(200 * time.Millisecond)
	if second.Writable() {
		t.Fatal("two replicas hold the same lock")
	}
	if res := second.Transact([]any{insert("x", 1)}); errText(res) == "" {
		t.Errorf("a write without the lock succeeded: %v", res)
	}
	stopFirst()
	<-firstDone
	waitFor(t, "the lock to pass to the second replica", second.Writable)
	mustTx(t, second, insert("y", 2))
}

func TestParseRemotes(t *testing.T) {
	good, err := ParseRemotes("tcp:127.0.0.1:6641,tcp:[::1]:6642,unix:/run/db.sock,tcp:10.0.0.1")
	if err != nil || len(good) != 4 {
		t.Fatalf("ParseRemotes: %v %v", good, err)
	}
	for _, bad := range []string{"", "unix:", "tcp:host.example:6640", "ssl:1.2.3.4:6640", "punix:/x", "/run/db.sock"} {
		if _, err := ParseRemotes(bad); err == nil {
			t.Errorf("ParseRemotes(%q) accepted", bad)
		}
	}
}
