package ovsdb

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// setSync replaces the journal's sync function, as a failing disk would.
func setSync(db *DB, fn func(*os.File) error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.journal.mu.Lock()
	defer db.journal.mu.Unlock()
	db.journal.sync = fn
}

func failingSync(*os.File) error { return syscall.EIO }

// insertTx inserts a Root row and returns the raw results, which may end
// in an error.
func insertTx(t *testing.T, db *DB, name, payload string) []any {
	t.Helper()
	return db.Transact(ops(t, fmt.Sprintf(`[{"op":"insert","table":"Root","row":{"name":%q,"opts":["map",[["p",%q]]]}}]`, name, payload)))
}

// ioFailure returns the details of the I/O error that ends res, failing
// the test if it holds none.
func ioFailure(t *testing.T, res []any) string {
	t.Helper()
	if len(res) == 0 || errTag(res[len(res)-1]) != "I/O error" {
		t.Fatalf("want an I/O error, got %s", mustJSONText(t, res))
	}
	return errDetails(res[len(res)-1])
}

func succeeded(res []any) bool {
	for _, r := range res {
		if errTag(r) != "" {
			return false
		}
	}
	return true
}

// TestJournalSyncFailureRollsBack: when the fsync of a commit fails and
// the whole database cannot be rewritten either, the commit is undone in
// memory and for monitors, its client gets an I/O error, later commits
// fail cleanly, and once the disk works again commits succeed and the
// file holds exactly the acknowledged ones.
func TestJournalSyncFailureRollsBack(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	_, sock := testServer(t, db, nil)
	c := dial(t, sock)
	c.result("monitor", "Test", "m", map[string]any{"Root": map[string]any{"columns": []any{"name"}}})
	insertRoot(t, db, "a", "")
	c.notification("update")

	setSync(db, failingSync)
	done := make(chan []any, 1)
	go func() { done <- insertTx(t, db, "b", "x") }()
	var res []any
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a commit whose sync fails hangs")
	}
	if d := ioFailure(t, res); !strings.Contains(d, "input/output error") || !strings.Contains(d, "rolled back") {
		t.Fatalf("error details %q do not give the cause and the rollback", d)
	}
	if got := rootNames(t, db); got != "a" {
		t.Fatalf("rows after the failed commit: %q, want only a", got)
	}
	checkInvariants(t, db)
	// The monitor saw the insert, then its undoing.
	ins := rowUpdates(t, c.notification("update")[1], "Root")
	del := rowUpdates(t, c.notification("update")[1], "Root")
	for u, upd := range ins {
		if _, ok := del[u]; !ok || upd.(map[string]any)["new"] == nil || del[u].(map[string]any)["new"] != nil {
			t.Fatalf("monitor saw %v then %v, want the insert of b undone", ins, del)
		}
	}

	// While the disk still fails, commits keep failing, quickly.
	ioFailure(t, insertTx(t, db, "c", "x"))
	if got := rootNames(t, db); got != "a" {
		t.Fatalf("rows: %q, want only a", got)
	}

	setSync(db, fdatasync)
	if res := insertTx(t, db, "d", "x"); !succeeded(res) {
		t.Fatalf("commit after the disk recovered: %s", mustJSONText(t, res))
	}
	db2 := reopen(t, db, path)
	if got := rootNames(t, db2); got != "a,d" {
		t.Fatalf("after reopen: %q, want the acknowledged rows a d", got)
	}
	checkInvariants(t, db2)
}

// TestJournalSyncFailureKeptByRewrite: a failed fsync whose commits a
// rewrite of the whole file saves costs nothing: the commit succeeds and
// survives a reopen.
func TestJournalSyncFailureKeptByRewrite(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	var calls atomic.Int32
	setSync(db, func(f *os.File) error {
		if calls.Add(1) == 1 {
			return syscall.EIO
		}
		return fdatasync(f)
	})
	if res := insertTx(t, db, "a", "x"); !succeeded(res) {
		t.Fatalf("commit saved by the rewrite failed: %s", mustJSONText(t, res))
	}
	if got := rootNames(t, reopen(t, db, path)); got != "a" {
		t.Fatalf("after reopen: %q", got)
	}
}

// TestJournalCompactionFailure: a compaction that cannot be written
// leaves no temporary file behind and is not retried on every commit.
func TestJournalCompactionFailure(t *testing.T) {
	path := tempDBPath(t)
	db := openTestDB(t, path)
	db.journal.CompactAfter = 4096
	var snapshots atomic.Int32
	setSync(db, func(f *os.File) error {
		if strings.HasSuffix(f.Name(), ".tmp") {
			snapshots.Add(1)
			return syscall.ENOSPC
		}
		return fdatasync(f)
	})
	payload := strings.Repeat("z", 300)
	for i := range 100 {
		if res := insertTx(t, db, fmt.Sprint("r", i), payload); !succeeded(res) {
			t.Fatalf("commit %d: %s", i, mustJSONText(t, res))
		}
	}
	// 100 records of about 400 bytes: with a retry only after the journal
	// doubles, a few attempts, not one per commit past the threshold.
	if n := snapshots.Load(); n == 0 || n > 5 {
		t.Fatalf("%d compaction attempts for 100 commits", n)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temporary file left behind: %v", err)
	}
	setSync(db, fdatasync)
	if got := len(strings.Split(rootNames(t, reopen(t, db, path)), ",")); got != 100 {
		t.Fatalf("%d rows after reopen, want 100", got)
	}
}

// TestJournalFullDisk fills a small tmpfs: commits that do not fit get an
// I/O error with the cause, change nothing and never hang; once space is
// back commits succeed, and a reopen finds exactly the acknowledged ones.
func TestJournalFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256k", "gvstestfull", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "conf.db")
	db := openTestDB(t, path)
	payload := strings.Repeat("y", 16<<10)
	var acked []string
	failures := 0
	countedBefore := journalWriteError.Total()
	for i := 0; i < 40 && failures < 3; i++ {
		name := fmt.Sprint("r", i)
		res := insertTx(t, db, name, payload)
		if succeeded(res) {
			acked = append(acked, name)
			continue
		}
		failures++
		if d := ioFailure(t, res); !strings.Contains(d, "no space left on device") {
			t.Fatalf("error details %q do not name the cause", d)
		}
	}
	if failures == 0 {
		t.Fatal("the file system never filled up")
	}
	// coverage/show counts what the log says.
	if n := journalWriteError.Total() - countedBefore; n != uint64(failures) {
		t.Errorf("ovsdb_journal_write_error counted %d refused commits, want %d", n, failures)
	}
	if got := rootNames(t, db); got != sortedJoin(acked) {
		t.Fatalf("rows in memory %q, want the acknowledged %q", got, acked)
	}
	checkInvariants(t, db)
	if out, err := exec.Command("mount", "-o", "remount,size=8m", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	if res := insertTx(t, db, "after", payload); !succeeded(res) {
		t.Fatalf("commit once space is back: %s", mustJSONText(t, res))
	}
	acked = append(acked, "after")
	if got := rootNames(t, reopen(t, db, path)); got != sortedJoin(acked) {
		t.Fatalf("after reopen %q, want %q", got, acked)
	}
}

func sortedJoin(s []string) string {
	c := append([]string(nil), s...)
	sortStrings(c)
	return strings.Join(c, ",")
}
