package ovsdb

import (
	"bytes"
	"encoding/json"
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

// recordBytes is the size of a journal file without its preallocated
// space (zero bytes at the end).
func recordBytes(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return int64(len(bytes.TrimRight(data, "\x00")))
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
		maxSize = max(maxSize, recordBytes(t, path))
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

// crashCopy copies the journal of a database that is still open, as a
// crash (kill -9) would leave it: with its preallocated space.
func crashCopy(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cp := tempDBPath(t)
	if err := os.WriteFile(cp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return cp
}

// TestJournalPreallocation checks that small commits overwrite zeroed
// space instead of growing the file, and that a journal left with that
// space by a crash reopens with every commit.
func TestJournalPreallocation(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	insertRoot(t, db, "a", "")
	before, _ := os.Stat(path)
	insertRoot(t, db, "b", "")
	insertRoot(t, db, "c", "")
	after, _ := os.Stat(path)
	if after.Size() != before.Size() || after.Size() < preallocChunk {
		t.Fatalf("file went from %d to %d bytes: not preallocated", before.Size(), after.Size())
	}
	cp := crashCopy(t, path)
	db2 := openTestDB(t, cp)
	if got := rootNames(t, db2); got != "a,b,c" {
		t.Fatalf("rows %q after a crash, want a,b,c", got)
	}
	insertRoot(t, db2, "d", "")
	db3 := reopen(t, db2, cp)
	if got := rootNames(t, db3); got != "a,b,c,d" {
		t.Fatalf("rows %q after insert and reopen, want a,b,c,d", got)
	}
	// A clean close leaves no preallocated space.
	db3.journal.Close()
	if fi, _ := os.Stat(cp); fi.Size() != recordBytes(t, cp) {
		t.Fatalf("closed journal is %d bytes, its records %d", fi.Size(), recordBytes(t, cp))
	}
}

// TestJournalTornInPreallocatedSpace writes what a crash may leave of a
// record in preallocated space: it must be cut off, and later commits kept.
func TestJournalTornInPreallocatedSpace(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	for _, n := range []string{"a", "b"} {
		insertRoot(t, db, n, "")
	}
	good := recordBytes(t, path)
	for _, torn := range []struct {
		at   int64
		data string
	}{
		{0, "1"},
		{0, "12 deadbeef\n{\"tab"},
		{1000, "\"rest of a record whose first page never reached the disk\"}\n"},
	} {
		cp := crashCopy(t, path)
		f, err := os.OpenFile(cp, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt([]byte(torn.data), good+torn.at)
		f.Close()
		db2 := openTestDB(t, cp)
		if got := rootNames(t, db2); got != "a,b" {
			t.Fatalf("torn %q: rows %q, want a,b", torn.data, got)
		}
		if got := recordBytes(t, cp); got != good {
			t.Fatalf("torn %q: %d bytes of records after open, want %d", torn.data, got, good)
		}
		insertRoot(t, db2, "c", "")
		cp2 := crashCopy(t, cp)
		if got := rootNames(t, openTestDB(t, cp2)); got != "a,b,c" {
			t.Fatalf("torn %q, then insert and crash: rows %q, want a,b,c", torn.data, got)
		}
	}
}

// TestCommitJSON compares the journal's direct encoding of commits with
// the map-based one it replaced (json.Marshal of the rows' non-default
// durable columns), on inserts, updates and deletes of every column kind.
func TestCommitJSON(t *testing.T) {
	db := newTestDB(t)
	var commits []*Commit
	db.OnCommit(func(cm *Commit) { commits = append(commits, cm) })
	mustTx(t, db, ops(t, `[
		{"op":"insert","table":"Root","uuid-name":"r","row":{"name":"r<&>\"","n":3,"ratio":1.5,"opts":["map",[["a","b"]]],
		 "status":["map",[["eph","emeral"]]],"kids":["named-uuid","c"],"watch":["named-uuid","r2"]}},
		{"op":"insert","table":"Root","uuid-name":"r2","row":{"name":"r2","serial":9,"nums":["set",[1,2,3]]}},
		{"op":"insert","table":"Child","uuid-name":"c","row":{"label":"c","leaves":["named-uuid","l"]}},
		{"op":"insert","table":"Leaf","uuid-name":"l","row":{"v":42}},
		{"op":"insert","table":"Anchor","row":{"target":["named-uuid","r"],"pin":["named-uuid","r2"]}}]`))
	mustTx(t, db, ops(t, `[{"op":"update","table":"Root","where":[["name","==","r<&>\""]],"row":{"ratio":0.0,"n":0}}]`))
	mustTx(t, db, ops(t, `[{"op":"insert","table":"Root","row":{"name":"gone"}}]`))
	mustTx(t, db, ops(t, `[{"op":"delete","table":"Root","where":[["name","==","gone"]]}]`))
	if len(commits) != 4 {
		t.Fatalf("%d commits, want 4", len(commits))
	}
	for i, cm := range commits {
		var got, want any
		if err := json.Unmarshal(commitJSON(cm), &got); err != nil {
			t.Fatalf("commit %d: invalid JSON %s: %v", i, commitJSON(cm), err)
		}
		if err := json.Unmarshal(referenceCommitJSON(cm), &want); err != nil {
			t.Fatal(err)
		}
		if g, w := mustJSON(got), mustJSON(want); string(g) != string(w) {
			t.Errorf("commit %d:\n got %s\nwant %s", i, g, w)
		}
	}
}

func referenceCommitJSON(cm *Commit) []byte {
	tables := map[string]map[string]any{}
	for _, c := range cm.Changes {
		rows := tables[c.Table.Name]
		if rows == nil {
			rows = map[string]any{}
			tables[c.Table.Name] = rows
		}
		if c.New == nil {
			rows[c.UUID.String()] = nil
			continue
		}
		m := map[string]any{}
		for _, col := range c.Table.Columns {
			d := c.New.Cols[col.index]
			if col.Ephemeral || col.Name == colUUID || (col.Name != colVersion && d.Equal(defaultDatum(&col.Type))) {
				continue
			}
			m[col.Name] = datumJSON(d, &col.Type)
		}
		rows[c.UUID.String()] = m
	}
	return mustJSON(map[string]any{"txn": cm.TxnID.String(), "tables": tables})
}

// Damage in the middle of the journal is not a torn write: the database
// is refused, with the reason, and the file is left exactly as it was,
// for whatever damage is done to a record (a flipped byte in its body, a
// wrong length, a broken header).
func TestJournalDamageInTheMiddleIsRefused(t *testing.T) {
	for _, damage := range []struct{ name, old, new string }{
		{"body", `"name":"b"`, `"name":"x"`},
		{"length", "", ""}, // the header of b's record gets a longer length
		{"header", "", "junk"},
	} {
		t.Run(damage.name, func(t *testing.T) {
			path := threeCommits(t)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b := bytes.Index(data, []byte(`"name":"b"`))
			lineStart := bytes.LastIndexByte(data[:b], '\n') + 1 // start of b's record body
			headerStart := bytes.LastIndexByte(data[:lineStart-1], '\n') + 1
			switch damage.name {
			case "body":
				data = bytes.Replace(data, []byte(damage.old), []byte(damage.new), 1)
			case "length":
				data[headerStart] = '9'
			case "header":
				data = append(data[:headerStart:headerStart], append([]byte("junk"), data[headerStart:]...)...)
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = OpenDB(path, testSchema(t))
			if err == nil || !strings.Contains(err.Error(), "followed by 1 intact records") {
				t.Fatalf("OpenDB with a damaged middle record: %v, want a refusal naming the intact record after it", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
				t.Fatalf("the damaged file was changed (%d bytes, was %d)", len(after), len(data))
			}
		})
	}
}

// A power failure during a group commit can leave an earlier record of
// the group unwritten (zeros, from the preallocated space) while a later
// one reached the disk. None of them was acknowledged: the database opens
// with both cut off, not refused as damaged.
func TestJournalTornGroupCommitIsCut(t *testing.T) {
	path := threeCommits(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b := bytes.Index(data, []byte(`"name":"b"`))
	headerStart := bytes.LastIndexByte(data[:bytes.LastIndexByte(data[:b], '\n')], '\n') + 1
	clear(data[headerStart : headerStart+20])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db := openTestDB(t, path)
	if got := rootNames(t, db); got != "a" {
		t.Fatalf("rows %q after a torn group commit, want a", got)
	}
	insertRoot(t, db, "d", "")
	db = reopen(t, db, path)
	if got := rootNames(t, db); got != "a,d" {
		t.Fatalf("rows %q after a new commit and reopen, want a,d", got)
	}
}

// The snapshot written at creation and at every compaction goes to
// <db>.tmp first. A symbolic link planted there (OVS_DBDIR in a directory
// others can write) must not make gvsd truncate and overwrite its target.
func TestJournalSnapshotIgnoresPlantedTmp(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "test.db")
	if err := os.Symlink(victim, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	db := openTestDB(t, path)
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Fatalf("creating the database wrote through the link: victim now %d bytes", len(got))
	}
	// Again at compaction, with the link planted while gvsd runs.
	os.Remove(path + ".tmp")
	if err := os.Symlink(victim, path+".tmp"); err != nil {
		t.Fatal(err)
	}
	db.journal.CompactAfter = 1024
	for i := range 50 {
		insertRoot(t, db, fmt.Sprintf("r%d-%s", i, strings.Repeat("x", 100)), "")
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Fatalf("compaction wrote through the link: victim now %d bytes", len(got))
	}
	if recordBytes(t, path) > 16*1024 {
		t.Error("the journal was never compacted")
	}
	want := dumpDB(t, db, false)
	if got := dumpDB(t, reopen(t, db, path), false); got != want {
		t.Fatal("contents differ after reopening")
	}
}
