package ovsdb

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// reopen closes db's journal and opens the file again.
func reopen(t *testing.T, db *DB, path string) *DB {
	t.Helper()
	if err := db.journal.Close(); err != nil {
		t.Fatalf("close journal: %v", err)
	}
	return openTestDB(t, path)
}

func TestJournalCreateAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "dir", "test.db")
	db := openTestDB(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	if !bytes.HasPrefix(data, []byte(journalHeader)) {
		t.Fatalf("file starts %q", data[:min(len(data), 40)])
	}
	res := mustTx(t, db, ops(t, `[
		{"op":"insert","table":"Root","uuid-name":"r","row":{"name":"r","n":3,"ratio":1.5,"opts":["map",[["a","b"]]],
		 "status":["map",[["eph","emeral"]]],"kids":["named-uuid","c"],"watch":["named-uuid","r2"]}},
		{"op":"insert","table":"Root","uuid-name":"r2","row":{"name":"r2","serial":9}},
		{"op":"insert","table":"Child","uuid-name":"c","row":{"label":"c","leaves":["named-uuid","l"]}},
		{"op":"insert","table":"Leaf","uuid-name":"l","row":{"v":42}},
		{"op":"insert","table":"Anchor","row":{"target":["named-uuid","r"],"pin":["named-uuid","r2"]}}]`))
	r := insertedUUID(t, res[0])
	mustTx(t, db, ops(t, `[{"op":"mutate","table":"Root","where":[["name","==","r"]],"mutations":[["n","+=",1]]}]`))
	mustTx(t, db, ops(t, `[{"op":"insert","table":"Root","row":{"name":"gone"}}]`))
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","gone"]]}]`))
	want := dumpDB(t, db, false)
	lastTxn := db.lastTxn

	db2 := reopen(t, db, path)
	if got := dumpDB(t, db2, false); got != want {
		t.Fatalf("reopened contents differ:\n got %s\nwant %s", got, want)
	}
	if db2.lastTxn != lastTxn {
		t.Fatalf("last txn id %s after reopen, want %s", db2.lastTxn, lastTxn)
	}
	// Ephemeral columns are not kept.
	jsonIs(t, "ephemeral", column(t, db2, "Root", r, "status"), `["map",[]]`)
	checkInvariants(t, db2)

	// Reference counts and indexes were rebuilt: garbage collection and
	// the unique index work on the reloaded data.
	txFails(t, db2.Transact(ops(t, `[{"op":"insert","table":"Root","row":{"name":"r"}}]`)), 1, "constraint violation")
	txFails(t, db2.Transact(ops(t, `[{"op":"delete","table":"Root","where":[["name","==","r2"]]}]`)), 1, "referential integrity violation")
	mustTx(t, db2, ops(t, `[{"op":"update","table":"Root","where":[["name","==","r"]],"row":{"kids":["set",[]]}}]`))
	if db2.RowCount("Child") != 0 || db2.RowCount("Leaf") != 0 {
		t.Fatalf("no garbage collection after reopen: %d children, %d leaves", db2.RowCount("Child"), db2.RowCount("Leaf"))
	}
	checkInvariants(t, db2)
	want = dumpDB(t, db2, false)
	db3 := reopen(t, db2, path)
	if got := dumpDB(t, db3, false); got != want {
		t.Fatalf("second reopen differs:\n got %s\nwant %s", got, want)
	}
}

// threeCommits makes a database file holding rows a, b and c, each in its
// own transaction, and returns its path.
func threeCommits(t *testing.T) string {
	t.Helper()
	path := tempDBPath(t)
	db := openTestDB(t, path)
	for _, n := range []string{"a", "b", "c"} {
		insertRoot(t, db, n, "")
	}
	db.journal.Close()
	return path
}

func rootNames(t *testing.T, db *DB) string {
	t.Helper()
	var names []string
	for _, r := range selectRows(t, db, "Root", `[]`, `["name"]`) {
		names = append(names, r["name"].(string))
	}
	sortStrings(names)
	return strings.Join(names, ",")
}

func TestJournalTornLastRecord(t *testing.T) {
	for _, cut := range []int64{1, 5, 30} {
		path := threeCommits(t)
		fi, _ := os.Stat(path)
		if err := os.Truncate(path, fi.Size()-cut); err != nil {
			t.Fatal(err)
		}
		db := openTestDB(t, path)
		if got := rootNames(t, db); got != "a,b" {
			t.Fatalf("cut %d bytes: rows %q, want a,b", cut, got)
		}
		// New commits go after the last good record and survive a reopen.
		insertRoot(t, db, "d", "")
		db = reopen(t, db, path)
		if got := rootNames(t, db); got != "a,b,d" {
			t.Fatalf("cut %d bytes, then insert: rows %q, want a,b,d", cut, got)
		}
		checkInvariants(t, db)
	}
}

func TestJournalTrailingGarbage(t *testing.T) {
	for _, garbage := range []string{"x", "12 deadbeef\n{\"tables\":", "\n\n", "5 00000000\nhello\n", "99999999999999 0\n"} {
		path := threeCommits(t)
		clean, _ := os.Stat(path)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(garbage)
		f.Close()
		db := openTestDB(t, path)
		// The garbage is cut off the file, not just skipped.
		if fi, _ := os.Stat(path); fi.Size() != clean.Size() {
			t.Fatalf("garbage %q: file is %d bytes after open, want %d", garbage, fi.Size(), clean.Size())
		}
		if got := rootNames(t, db); got != "a,b,c" {
			t.Fatalf("garbage %q: rows %q, want a,b,c", garbage, got)
		}
		insertRoot(t, db, "d", "")
		db = reopen(t, db, path)
		if got := rootNames(t, db); got != "a,b,c,d" {
			t.Fatalf("garbage %q then insert: rows %q", garbage, got)
		}
	}
}

func TestJournalRefusesOtherFormats(t *testing.T) {
	for _, content := range []string{
		"OVSDB JSON 1234 0123456789abcdef\n{\"name\":\"Open_vSwitch\"}\n",
		"OVSDB CLUSTER 12 abc\n{}\n",
		"something else entirely, long enough to fill a header\n",
		"short",
		"",
	} {
		path := tempDBPath(t)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := OpenDB(path, testSchema(t))
		if err == nil {
			t.Fatalf("file starting %q accepted", content)
		}
		if strings.HasPrefix(content, "OVSDB") && !strings.Contains(err.Error(), "Open vSwitch") {
			t.Errorf("error for an OVS file does not say so: %v", err)
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("error does not name the file: %v", err)
		}
		after, _ := os.ReadFile(path)
		if string(after) != content {
			t.Fatalf("refused file was changed: %q -> %q", content, after)
		}
		if _, err := os.Stat(path + ".tmp"); err == nil {
			t.Fatal("refused file left a .tmp beside it")
		}
	}
}

func TestJournalCompaction(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	db.journal.CompactAfter = 4096
	u := insertRoot(t, db, "big", "")
	insertRoot(t, db, "other", `,"nums":["set",[1,2,3]]`)
	payload := strings.Repeat("z", 300)
	var written int64
	maxSize := int64(0)
	for i := 0; i < 200; i++ {
		mustTx(t, db, ops(t, fmt.Sprintf(`[{"op":"update","table":"Root","where":[["name","==","big"]],"row":{"n":%d,"opts":["map",[["p",%q]]]}}]`, i, payload)))
		written += 400 // at least this much per record
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		maxSize = max(maxSize, fi.Size())
	}
	if maxSize > 16*1024 {
		t.Fatalf("journal grew to %d bytes with CompactAfter 4096; never compacted?", maxSize)
	}
	if maxSize >= written {
		t.Fatalf("journal size %d not smaller than %d bytes written", maxSize, written)
	}
	want := dumpDB(t, db, false)
	jsonIs(t, "n", column(t, db, "Root", u, "n"), `199`)
	db2 := reopen(t, db, path)
	if got := dumpDB(t, db2, false); got != want {
		t.Fatalf("contents after compaction differ:\n got %s\nwant %s", got, want)
	}
	checkInvariants(t, db2)
	// The compacted file still takes appends.
	insertRoot(t, db2, "after", "")
	want = dumpDB(t, db2, false)
	db3 := reopen(t, db2, path)
	if got := dumpDB(t, db3, false); got != want {
		t.Fatal("append after compaction lost")
	}
}

// TestJournalConcurrentCommitsAndCompaction commits from several
// goroutines while compactions replace the file under them; every commit
// must survive a reopen.
func TestJournalConcurrentCommitsAndCompaction(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	db.journal.CompactAfter = 2048
	const workers, each = 4, 60
	done := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func(w int) {
			for i := 0; i < each; i++ {
				res := db.Transact(ops(t, fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":"w%d-%d","opts":["map",[["p",%q]]]}}]`,
					w, i, strings.Repeat("q", 100))))
				if errTag(res[len(res)-1]) != "" {
					done <- fmt.Errorf("worker %d: %s", w, mustJSONText(t, res))
					return
				}
			}
			done <- nil
		}(w)
	}
	for w := 0; w < workers; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := dumpDB(t, db, false)
	db2 := reopen(t, db, path)
	if got := dumpDB(t, db2, false); got != want {
		t.Fatal("contents differ after concurrent commits and compactions")
	}
	if n := db2.RowCount("Root"); n != workers*each {
		t.Fatalf("%d rows after reopen, want %d", n, workers*each)
	}
}
