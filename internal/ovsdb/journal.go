package ovsdb

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// The journal file: a header line, then records. Each record is a line
// "<length> <crc32c in hex>\n" followed by <length> bytes of JSON and "\n".
// The first record holds the schema; the others each hold one committed
// transaction, as the full new contents of every row it changed (null for
// a deleted row). A crash can only tear the last record, which the length
// and checksum detect; it is then cut off.
//
// The records may be followed by zero bytes: space written ahead of time
// (see Journal.reserve) that the next records overwrite. A record header
// never starts with a zero byte, so the first one ends the records.
const journalHeader = "GVS-OVSDB-JOURNAL 1\n"

// preallocChunk is how much zeroed space the journal writes ahead of its
// records at a time. Overwriting blocks that are already allocated and
// written lets fdatasync skip the filesystem's metadata commit that an
// append (a new file size) needs: on ext4 on a virtual disk that made the
// sync each durable transaction waits for 1.5 to 2 times faster. Only the
// record that extends the file, once per preallocChunk bytes, pays it.
const preallocChunk = 1 << 20

// zeroBlock is written to preallocate journal space.
var zeroBlock [64 << 10]byte

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Journal is the durable log of a database.
type Journal struct {
	path string
	file *os.File

	// end is where the next record goes and allocated is the file's size,
	// zero bytes in between. Only append, compaction and loading change
	// them, with the database locked.
	end       int64
	allocated int64

	mu        sync.Mutex
	cond      *sync.Cond
	written   uint64 // records appended
	synced    uint64 // records known to be on disk (or given up as lost)
	syncedEnd int64  // where the records known to be on disk end
	syncing   bool
	appended  int64 // bytes appended since the last compaction
	base      int64 // size of the file right after the last compaction
	// compactRetryAt holds compaction back after a failed one until
	// appended reaches it, so a full disk is not retried on every commit.
	compactRetryAt int64

	// recovering is set while the database handles a failed fsync:
	// nobody syncs meanwhile. losses are the records that failed syncs
	// lost, so their waiters get the error. broken means the file may not
	// match the committed state: commits are refused until a rewrite of
	// the whole file works.
	recovering bool
	losses     []syncLoss
	broken     bool

	// sync makes the file's data durable; onSyncFailure is the database's
	// handling of a failed sync of the records up to target.
	sync          func(f *os.File) error
	onSyncFailure func(target uint64, err error)

	// CompactAfter is the number of appended bytes that triggers a
	// compaction, when they also exceed twice the compacted size.
	CompactAfter int64
}

type journalRecord struct {
	Schema json.RawMessage                       `json:"schema,omitempty"`
	Txn    string                                `json:"txn,omitempty"`
	Tables map[string]map[string]json.RawMessage `json:"tables,omitempty"`
}

// OpenDB opens the database file at path, creating it with schema s if it
// does not exist, and returns the database with its contents.
func OpenDB(path string, s *Schema) (*DB, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return createDB(path, s)
	}
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	j := newJournal(path, f)
	db := NewDB(s, j)
	if err := j.load(db); err != nil {
		f.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return db, nil
}

func newJournal(path string, f *os.File) *Journal {
	j := &Journal{path: path, file: f, CompactAfter: 16 << 20, sync: fdatasync}
	j.cond = sync.NewCond(&j.mu)
	return j
}

func createDB(path string, s *Schema) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	db := NewDB(s, nil)
	if err := writeSnapshot(path, db, fdatasync); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	j := newJournal(path, f)
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		err = j.startAt(size)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	db.attachJournal(j)
	return db, nil
}

// attachJournal makes j the database's journal.
func (db *DB) attachJournal(j *Journal) {
	db.journal = j
	j.onSyncFailure = db.syncFailed
}

// load reads every record into db, cutting off a torn last record.
func (j *Journal) load(db *DB) error {
	r := bufio.NewReader(j.file)
	header := make([]byte, len(journalHeader))
	if _, err := io.ReadFull(r, header); err != nil || string(header) != journalHeader {
		return unknownFormat(header)
	}
	offset := int64(len(journalHeader))
	for n := 0; ; n++ {
		rec, size, err := readRecord(r)
		if err == io.EOF {
			break
		}
		if err != nil {
			n, unwritten, serr := j.intactRecordsAfter(offset)
			if serr != nil || (n > 0 && !unwritten) {
				return damagedJournal(offset, n, err, serr)
			}
			journalTornRecord.Inc()
			dbLog.Warn("database %s: dropping a torn or corrupt record at offset %d of the journal (%v), and the %d unacknowledged records after it",
				j.path, offset, err, n)
			if terr := j.file.Truncate(offset); terr != nil {
				return fmt.Errorf("cannot cut off torn record: %w", terr)
			}
			break
		}
		if n == 0 && rec.Schema == nil {
			return fmt.Errorf("first record holds no schema")
		}
		db.replay(rec)
		offset += size
	}
	db.rebuildRefs()
	return j.startAt(offset)
}

// damagedJournal is the error for a bad record at offset that intact
// records follow (n of them, or serr if the rest could not be read).
// That is no torn write of a crash, which only ever hits the last record,
// but damage to the file: cutting it off would silently drop committed
// transactions, so the database is not opened and the file is left alone.
func damagedJournal(offset int64, n int, err, serr error) error {
	if serr != nil {
		return fmt.Errorf("damaged record at offset %d (%v), and the rest of the file cannot be read to tell whether committed transactions follow it (%v); the file is left as it is", offset, err, serr)
	}
	return fmt.Errorf("damaged record at offset %d (%v), followed by %d intact records: this is damage to the file, not a torn write, and cutting it off would lose committed transactions; gvsd leaves the file as it is: restore it from a backup, or move it away to start with an empty database", offset, err, n)
}

// intactRecordsAfter counts the records with a valid checksum that start
// after the first line break following offset. Each record ends with a
// line break and JSON has no raw ones, so every record after a damaged
// one starts right after some line break.
//
// unwritten reports a zero byte between offset and the first intact
// record: a record never holds one, but space preallocated and never
// written does. That is a torn group commit, not damage: records written
// together and synced by one fdatasync can reach the disk out of order
// when the power fails, so a later one may be whole while an earlier one
// is still zeros; none of them was acknowledged, since the sync they were
// waiting for covered them all.
func (j *Journal) intactRecordsAfter(offset int64) (n int, unwritten bool, err error) {
	fi, err := j.file.Stat()
	if err != nil {
		return 0, false, err
	}
	rest := make([]byte, max(fi.Size()-offset, 0))
	if _, err := j.file.ReadAt(rest, offset); err != nil && err != io.EOF {
		return 0, false, err
	}
	firstIntact := -1
	for i := bytes.IndexByte(rest, '\n'); i >= 0 && i+1 < len(rest); {
		start := i + 1
		if size, ok := intactRecordAt(rest[start:]); ok {
			if n == 0 {
				firstIntact = start
			}
			n++
			i = start + size - 1
			continue
		}
		next := bytes.IndexByte(rest[start:], '\n')
		if next < 0 {
			break
		}
		i = start + next
	}
	if n > 0 {
		unwritten = bytes.IndexByte(rest[:firstIntact], 0) >= 0
	}
	return n, unwritten, nil
}

// intactRecordAt reports whether b starts with a whole record whose
// checksum matches, and its size.
func intactRecordAt(b []byte) (int, bool) {
	line, _, ok := bytes.Cut(b, []byte{'\n'})
	var length int
	var sum uint32
	if !ok || len(line) > 32 {
		return 0, false
	}
	if _, err := fmt.Sscanf(string(line), "%d %08x", &length, &sum); err != nil || length < 0 {
		return 0, false
	}
	body := b[len(line)+1:]
	if length >= len(body) || body[length] != '\n' || crc32.Checksum(body[:length], crcTable) != sum {
		return 0, false
	}
	return len(line) + 1 + length + 1, true
}

// startAt sets where the next record goes, after loading or compaction;
// the file beyond it is preallocated space.
func (j *Journal) startAt(end int64) error {
	fi, err := j.file.Stat()
	if err != nil {
		return err
	}
	j.base, j.end, j.syncedEnd, j.allocated = end, end, end, fi.Size()
	return nil
}

func fdatasync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }

// atZeros reports whether the next byte of r is a zero byte, which starts
// preallocated space rather than a record.
func atZeros(r *bufio.Reader) bool {
	b, err := r.Peek(1)
	return err == nil && b[0] == 0
}

// checkZeroTail reads r to its end and fails on anything but zero bytes:
// after preallocated space partly written by a crash, what follows the
// last good record must be cut off, not taken for a clean end.
func checkZeroTail(r *bufio.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			if b != 0 {
				return fmt.Errorf("torn record in preallocated space")
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func unknownFormat(header []byte) error {
	if bytes.HasPrefix(header, []byte("OVSDB ")) || bytes.HasPrefix(header, []byte("CLUSTER")) {
		return fmt.Errorf("this is an Open vSwitch ovsdb-server database file, not a gvs database; gvs keeps its own format and will neither use nor overwrite it (move it away or pass another --db path)")
	}
	return fmt.Errorf("not a gvs database (unknown file format); refusing to use or overwrite it")
}

// readRecord reads one record; it returns io.EOF only at a clean end.
func readRecord(r *bufio.Reader) (*journalRecord, int64, error) {
	if atZeros(r) {
		if err := checkZeroTail(r); err != nil {
			return nil, 0, err
		}
		return nil, 0, io.EOF
	}
	line, err := r.ReadString('\n')
	if err == io.EOF && line == "" {
		return nil, 0, io.EOF
	}
	if err != nil {
		return nil, 0, fmt.Errorf("truncated record header")
	}
	var length int
	var sum uint32
	if _, err := fmt.Sscanf(line, "%d %08x\n", &length, &sum); err != nil || length < 0 || length > 1<<30 {
		return nil, 0, fmt.Errorf("bad record header %q", line)
	}
	body := make([]byte, length+1)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, 0, fmt.Errorf("truncated record")
	}
	if body[length] != '\n' || crc32.Checksum(body[:length], crcTable) != sum {
		return nil, 0, fmt.Errorf("record checksum mismatch")
	}
	var rec journalRecord
	if err := json.Unmarshal(body[:length], &rec); err != nil {
		return nil, 0, fmt.Errorf("record is not valid JSON: %w", err)
	}
	return &rec, int64(len(line) + length + 1), nil
}

func encodeRecord(rec *journalRecord) []byte {
	body, _ := json.Marshal(rec)
	return frameRecord(body)
}

// frameRecord puts a record's JSON body between its header and newline.
func frameRecord(body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(strconv.Itoa(len(body)))
	b.WriteByte(' ')
	fmt.Fprintf(&b, "%08x\n", crc32.Checksum(body, crcTable))
	b.Write(body)
	b.WriteByte('\n')
	return b.Bytes()
}

// replay applies one transaction record without integrity checks: the
// records were checked when they were committed. Columns that the current
// schema lacks are ignored; values that no longer fit their column's type
// fall back to the default.
func (db *DB) replay(rec *journalRecord) {
	for table, rows := range rec.Tables {
		td, ok := db.tables[table]
		if !ok {
			continue
		}
		for id, raw := range rows {
			u, err := ParseUUID(id)
			if err != nil {
				continue
			}
			db.size -= rowSize(td.rows[u])
			if string(raw) == "null" {
				delete(td.rows, u)
				continue
			}
			td.rows[u] = decodeStoredRow(td.schema, u, raw)
			db.size += rowSize(td.rows[u])
		}
	}
	if rec.Txn != "" {
		db.lastTxn, _ = ParseUUID(rec.Txn)
	}
}

func decodeStoredRow(t *Table, u UUID, raw json.RawMessage) *Row {
	r := newRow(t, u)
	v, err := decodeJSON(raw)
	obj, ok := v.(map[string]any)
	if err != nil || !ok {
		return r
	}
	for name, val := range obj {
		c, ok := t.ByName[name]
		if !ok || name == colUUID {
			continue
		}
		if d, err := parseDatum(val, &c.Type, nil); err == nil {
			r.Cols[c.index] = d
		}
	}
	return r
}

// rebuildRefs recomputes reference counts and indexes after loading.
func (db *DB) rebuildRefs() {
	for _, td := range db.tables {
		clear(td.refs)
		for i := range td.indexes {
			clear(td.indexes[i])
		}
	}
	for _, td := range db.tables {
		for u, r := range td.rows {
			strongRefs(td.schema, r, func(t string, target UUID) {
				if tt := db.tables[t]; tt != nil {
					tt.refs[target]++
				}
			})
			for i, cols := range td.schema.Indexes {
				td.indexes[i][indexKey(r, cols)] = u
			}
		}
	}
}

// commitJSON is the body of a commit's journal record, as json.Marshal of
// a journalRecord would write it, but encoded directly: no maps to build
// and sort on the path of every commit.
func commitJSON(cm *Commit) []byte {
	b := make([]byte, 0, 512)
	b = append(b, `{"txn":"`...)
	b = append(b, cm.TxnID.String()...)
	b = append(b, `","tables":{`...)
	for i, t := range changedTables(cm) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSON(b, t.Name)
		b = append(b, ':', '{')
		first := true
		for _, c := range cm.Changes {
			if c.Table != t {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, c.UUID.String()...)
			b = append(b, '"', ':')
			b = appendStoredRow(b, c.Table, c.New)
		}
		b = append(b, '}')
	}
	return append(b, '}', '}')
}

// changedTables lists the tables of a commit's changes, each once.
func changedTables(cm *Commit) []*Table {
	var tables []*Table
	for _, c := range cm.Changes {
		if !slices.Contains(tables, c.Table) {
			tables = append(tables, c.Table)
		}
	}
	return tables
}

// appendStoredRow encodes the durable columns of a row that differ from
// their defaults, or null for a deleted row (nil).
func appendStoredRow(b []byte, t *Table, r *Row) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	first := true
	for _, c := range t.Columns {
		if c.Ephemeral || c.Name == colUUID {
			continue
		}
		d := r.Cols[c.index]
		if c.Name != colVersion && isDefault(d, &c.Type) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSON(b, c.Name)
		b = append(b, ':')
		b = appendJSON(b, datumJSON(d, &c.Type))
	}
	return append(b, '}')
}

// appendJSON appends the JSON encoding of v, which cannot fail for the
// names and datum encodings it is given.
func appendJSON(b []byte, v any) []byte {
	j, _ := json.Marshal(v)
	return append(b, j...)
}

// isDefault reports whether d is the default value of a column of type t,
// as d.Equal(defaultDatum(t)) does, without building that default.
func isDefault(d Datum, t *Type) bool {
	if d.IsMap() != t.IsMap() {
		return false
	}
	if t.Min == 0 {
		return len(d.Keys) == 0
	}
	if len(d.Keys) != 1 || !atomsEqual(d.Keys[0], defaultAtom(t.Key.Type)) {
		return false
	}
	return !t.IsMap() || atomsEqual(d.Values[0], defaultAtom(t.Value.Type))
}

// append writes a commit's record (called with the database locked, so
// records are in commit order) and returns its sequence number for
// waitSynced. On an error nothing was added: the record's space is zeroed
// again where it can be, and the next record goes to the same place.
func (j *Journal) append(cm *Commit) (uint64, error) {
	data := frameRecord(commitJSON(cm))
	if err := j.reserve(int64(len(data))); err != nil {
		return 0, err
	}
	if n, err := j.file.WriteAt(data, j.end); err != nil {
		if n > 0 {
			_, _ = j.file.WriteAt(zeroBlock[:min(n, len(zeroBlock))], j.end)
		}
		return 0, err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.end += int64(len(data))
	j.written++
	j.appended += int64(len(data))
	return j.written, nil
}

// reserve makes sure n bytes after the records are allocated, extending
// the file with zeros when they are not: what the record needs first, then
// up to preallocChunk more if the file system has room. The zeros reach the
// disk with the next sync, as the record written over them does.
func (j *Journal) reserve(n int64) error {
	if j.end+n <= j.allocated {
		return nil
	}
	if err := j.extendTo(j.end + n); err != nil {
		return err
	}
	_ = j.extendTo(j.end + n + preallocChunk) // room to spare is optional
	return nil
}

func (j *Journal) extendTo(target int64) error {
	for j.allocated < target {
		chunk := zeroBlock[:min(int64(len(zeroBlock)), target-j.allocated)]
		if _, err := j.file.WriteAt(chunk, j.allocated); err != nil {
			return err
		}
		j.allocated += int64(len(chunk))
	}
	return nil
}

// syncLoss is a run of records that a failed sync lost.
type syncLoss struct {
	from, to uint64 // records (from, to] were rolled back
	err      error
}

// waitSynced returns once record seq is on disk, or an error when it never
// will be: its sync failed and the commit was rolled back. Concurrent
// callers share fsync calls (group commit).
func (j *Journal) waitSynced(seq uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for {
		if err := j.lostErr(seq); err != nil {
			return err
		}
		if j.synced >= seq {
			return nil
		}
		if j.syncing || j.recovering {
			j.cond.Wait()
			continue
		}
		j.syncing = true
		target, targetEnd := j.written, j.end
		f := j.file // compaction swaps the file, but not while syncing
		sync := j.sync
		j.mu.Unlock()
		// fdatasync: the file's data and size are what a reopen needs;
		// its timestamps are not worth a second disk write.
		err := sync(f)
		j.mu.Lock()
		j.syncing = false
		if err == nil {
			j.synced = max(j.synced, target)
			j.syncedEnd = max(j.syncedEnd, targetEnd)
			j.cond.Broadcast()
			continue
		}
		// A failed fsync may have dropped the dirty pages, and a second
		// one would then report success: nobody syncs again until the
		// database has dealt with the failure.
		j.recovering = true
		j.mu.Unlock()
		journalSyncError.Inc()
		dbLog.ErrRL(journalRL, "database %s: journal fsync failed: %v", j.path, err)
		if j.onSyncFailure != nil {
			j.onSyncFailure(target, err)
		}
		j.mu.Lock()
		j.recovering = false
		j.cond.Broadcast()
	}
}

// syncedSeq returns the last record known to be on disk.
func (j *Journal) syncedSeq() uint64 {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.synced
}

// cutBack truncates the file to the synced records, with j.mu held and no
// sync running, and syncs that.
func (j *Journal) cutBack() error {
	if err := j.file.Truncate(j.end); err != nil {
		return err
	}
	j.allocated = j.end
	return j.sync(j.file)
}

// lostErr returns the error of the failed sync that lost record seq, if
// one did.
func (j *Journal) lostErr(seq uint64) error {
	for _, l := range j.losses {
		if seq > l.from && seq <= l.to {
			return l.err
		}
	}
	return nil
}

// recordLoss notes that records (synced, written] are gone, with j.mu
// held. Only the last few losses are kept: their waiters are woken at once.
func (j *Journal) recordLoss(err error) {
	if j.written > j.synced {
		j.losses = append(j.losses, syncLoss{from: j.synced, to: j.written, err: err})
		if len(j.losses) > 16 {
			j.losses = j.losses[1:]
		}
	}
	j.synced = j.written
}

func (j *Journal) wantsCompaction() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.appended > j.CompactAfter && j.appended > 2*j.base && j.appended >= j.compactRetryAt
}

// compact rewrites the journal as one snapshot record. When that fails
// (a full disk), the journal stays as it is and the next attempt waits
// until as much again has been appended.
func (db *DB) compact() {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.rewriteJournal(); err != nil {
		journalCompactError.Inc()
		dbLog.WarnRL(journalRL, "database: compaction failed, keeping the journal as it is: %v", err)
		j := db.journal
		j.mu.Lock()
		j.compactRetryAt = 2 * j.appended
		j.mu.Unlock()
	}
}

// rewriteJournal replaces the journal file with a snapshot of the
// database's contents, synced, and appends to it from then on. Every
// record appended so far is then on disk. Called with db.mu held.
func (db *DB) rewriteJournal() error {
	j := db.journal
	if err := writeSnapshot(j.path, db, j.sync); err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_RDWR, 0)
	if err != nil {
		// The snapshot is on disk but appends would go to the old,
		// unlinked file: refuse commits until a rewrite works.
		j.broken = true
		return fmt.Errorf("database %s: cannot reopen after rewriting: %w", j.path, err)
	}
	old := j.file
	j.mu.Lock()
	for j.syncing {
		// An fsync of the old file is in flight: let it finish before
		// closing that file under it.
		j.cond.Wait()
	}
	j.file = f
	size, err := f.Seek(0, io.SeekEnd)
	if err == nil {
		err = j.startAt(size)
	}
	if err != nil {
		j.broken = true
		j.mu.Unlock()
		old.Close()
		return fmt.Errorf("database %s: cannot size after rewriting: %w", j.path, err)
	}
	j.appended, j.compactRetryAt = 0, 0
	j.synced, j.syncedEnd = j.written, j.end // the snapshot holds every record, synced
	j.broken = false
	j.cond.Broadcast()
	j.mu.Unlock()
	old.Close()
	return nil
}

// writeSnapshot writes the whole database to a new file that replaces path
// atomically, synced to disk.
func writeSnapshot(path string, db *DB, sync func(*os.File) error) error {
	tmp := path + ".tmp"
	f, err := createSnapshotFile(tmp)
	if err != nil {
		return fmt.Errorf("database %s: %w", path, err)
	}
	if err := writeSnapshotTo(f, db, sync); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("database %s: %w", path, err)
	}
	f.Close()
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("database %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// createSnapshotFile creates tmp afresh. Whatever a crash (or anyone who
// can write the database's directory) left at that name is removed, not
// opened: a symbolic link or hard link there would have gvsd truncate and
// write another file as root. O_EXCL|O_NOFOLLOW refuses one put back in
// between; the compaction is then retried later.
func createSnapshotFile(tmp string) (*os.File, error) {
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
}

// writeSnapshotTo writes the journal header, the schema and one record
// with every row to f, and syncs it.
func writeSnapshotTo(f *os.File, db *DB, sync func(*os.File) error) error {
	w := bufio.NewWriter(f)
	w.WriteString(journalHeader)
	w.Write(encodeRecord(&journalRecord{Schema: db.schema.JSON}))
	cm := &Commit{TxnID: db.lastTxn}
	for _, td := range db.tables {
		for u, r := range td.rows {
			cm.Changes = append(cm.Changes, Change{Table: td.schema, UUID: u, New: r})
		}
	}
	if len(cm.Changes) > 0 {
		w.Write(frameRecord(commitJSON(cm)))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return sync(f)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close closes the journal file, without its preallocated space: a file
// closed cleanly ends with its last record.
func (j *Journal) Close() error {
	terr := j.file.Truncate(j.end)
	if err := j.file.Close(); err != nil {
		return err
	}
	return terr
}
