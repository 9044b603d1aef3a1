package ovsdb

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Row is one row of a table: a value for every column of the table,
// _uuid and _version included, in the order of Table.Columns. Rows are
// immutable: a change makes a new Row.
type Row struct {
	UUID UUID
	Cols []Datum
}

// Get returns the value of the named column.
func (r *Row) Get(t *Table, column string) (Datum, bool) {
	c, ok := t.ByName[column]
	if !ok {
		return Datum{}, false
	}
	return r.Cols[c.index], true
}

// Change is what a transaction did to one row: Old is nil for an insert
// and New is nil for a delete.
type Change struct {
	Table *Table
	UUID  UUID
	Old   *Row
	New   *Row
}

// Commit describes a committed transaction.
type Commit struct {
	TxnID   UUID
	Changes []Change
}

// tableData holds the committed rows of a table.
type tableData struct {
	schema  *Table
	rows    map[UUID]*Row
	refs    map[UUID]int      // strong references held on each row
	indexes []map[string]UUID // one per schema index, keyed by indexKey
}

// DB is one database: its schema and committed contents. All access goes
// through its mutex; transactions run one at a time.
type DB struct {
	mu          sync.Mutex
	schema      *Schema
	tables      map[string]*tableData
	lastTxn     UUID
	journal     *Journal
	hooks       []func(*Commit)
	checks      map[string][]RowCheck // by table name
	tableChecks map[string][]TableCheck
	mons        map[*monitor]struct{}
	waiting     []*pendingTxn // transactions blocked in a "wait" operation
	reruns      uint64        // parked transactions run again, for tests
	txns        txnCounters   // answered transactions, for TxnStats
	// unsynced are the commits whose journal records may not be on disk
	// yet, oldest first, for a failed sync to roll back.
	unsynced []unsyncedCommit
	// MaxSize bounds the contents, in bytes as encoded, that clients'
	// transactions may grow the database to; size is the current
	// estimate (rowSize of every row).
	MaxSize int64
	size    int64
	// MaxMonitorConditions bounds monConds, the conditions of all
	// monitors (monitor.conds).
	MaxMonitorConditions int
	monConds             int
}

// NewDB makes an empty database with schema s. With a journal, every
// committed transaction is written to it before Transact returns.
func NewDB(s *Schema, j *Journal) *DB {
	db := &DB{schema: s, tables: map[string]*tableData{}, mons: map[*monitor]struct{}{}, MaxSize: DefaultMaxSize,
		MaxMonitorConditions: DefaultMaxMonitorConditions}
	if j != nil {
		db.attachJournal(j)
	}
	for name, t := range s.Tables {
		td := &tableData{schema: t, rows: map[UUID]*Row{}, refs: map[UUID]int{}}
		for range t.Indexes {
			td.indexes = append(td.indexes, map[string]UUID{})
		}
		db.tables[name] = td
	}
	return db
}

// Schema returns the database's schema.
func (db *DB) Schema() *Schema { return db.schema }

// Name returns the database's name.
func (db *DB) Name() string { return db.schema.Name }

// OnCommit registers fn to run after each committed transaction that
// changed something, with the database lock released. Hooks run in commit
// order from the committing goroutine.
func (db *DB) OnCommit(fn func(*Commit)) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.hooks = append(db.hooks, fn)
}

// RowCheck validates a row that a transaction inserts or modifies, beyond
// what the schema can say; an error fails the transaction with a
// "constraint violation" whose details are the error's text. It runs with
// the database locked and must not call back into it.
type RowCheck func(t *Table, old, new *Row) error

// AddCheck registers a RowCheck for the rows of table.
func (db *DB) AddCheck(table string, check RowCheck) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.checks == nil {
		db.checks = map[string][]RowCheck{}
	}
	db.checks[table] = append(db.checks[table], check)
}

// TableCheck validates the rows of a table as a transaction that writes
// one of them would leave them, for rules that relate rows to each other
// (a row check sees one row). rows are every row of the table, sorted by
// UUID; written are the UUIDs of those the transaction inserted or
// modified, so that a check can refuse only what the transaction brings.
// Like a RowCheck, an error fails the transaction with a "constraint
// violation", and it must not call back into the database.
type TableCheck func(t *Table, rows []*Row, written map[UUID]bool) error

// AddTableCheck registers a TableCheck for table.
func (db *DB) AddTableCheck(table string, check TableCheck) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.tableChecks == nil {
		db.tableChecks = map[string][]TableCheck{}
	}
	db.tableChecks[table] = append(db.tableChecks[table], check)
}

// Rows returns a snapshot of the rows of a table, sorted by UUID.
func (db *DB) Rows(table string) []*Row {
	db.mu.Lock()
	defer db.mu.Unlock()
	td, ok := db.tables[table]
	if !ok {
		return nil
	}
	out := make([]*Row, 0, len(td.rows))
	for _, r := range td.rows {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return compareAtoms(out[i].UUID, out[j].UUID) < 0 })
	return out
}

// RowCount returns the number of rows in a table.
func (db *DB) RowCount(table string) int {
	db.mu.Lock()
	defer db.mu.Unlock()
	if td, ok := db.tables[table]; ok {
		return len(td.rows)
	}
	return 0
}

// newRow makes a row of t with every column at its default value.
func newRow(t *Table, u UUID) *Row {
	r := &Row{UUID: u, Cols: make([]Datum, len(t.Columns))}
	for i, c := range t.Columns {
		r.Cols[i] = defaultDatum(&c.Type)
	}
	r.Cols[t.ByName[colUUID].index] = Datum{Keys: []Atom{u}}
	return r
}

func (r *Row) clone() *Row {
	return &Row{UUID: r.UUID, Cols: append([]Datum(nil), r.Cols...)}
}

func (r *Row) setVersion(t *Table, v UUID) {
	r.Cols[t.ByName[colVersion].index] = Datum{Keys: []Atom{v}}
}

// rowJSON encodes the selected columns of r (all when cols is nil).
func rowJSON(t *Table, r *Row, cols []*Column) map[string]any {
	if cols == nil {
		cols = t.Columns
	}
	m := make(map[string]any, len(cols))
	for _, c := range cols {
		m[c.Name] = datumJSON(r.Cols[c.index], &c.Type)
	}
	return m
}

// indexKey is the canonical text of the values of an index's columns.
func indexKey(r *Row, cols []*Column) string {
	var b strings.Builder
	for _, c := range cols {
		j, _ := json.Marshal(datumJSON(r.Cols[c.index], &c.Type))
		b.Write(j)
		b.WriteByte(0)
	}
	return b.String()
}

// strongRefs calls fn for every strong reference that r holds.
func strongRefs(t *Table, r *Row, fn func(target string, u UUID)) {
	for _, rc := range t.refs() {
		if !rc.base.Strong {
			continue
		}
		d := r.Cols[rc.col.index]
		atoms := d.Keys
		if rc.inValue {
			atoms = d.Values
		}
		for _, a := range atoms {
			fn(rc.base.RefTable, a.(UUID))
		}
	}
}

// checkRow verifies the constraints on a finished row: set sizes.
func checkRow(t *Table, r *Row) *Error {
	for _, c := range t.Columns {
		d := r.Cols[c.index]
		if d.Len() < c.Type.Min || (c.Type.Max >= 0 && d.Len() > c.Type.Max) {
			return errorf("constraint violation", "%s column %q in row %s holds %d values when its type requires between %d and %s",
				t.Name, c.Name, r.UUID, d.Len(), c.Type.Min, maxString(c.Type.Max))
		}
	}
	return nil
}

func (db *DB) table(name string) (*tableData, *Error) {
	td, ok := db.tables[name]
	if !ok {
		return nil, errorf("unknown table", "No table named %s.", name)
	}
	return td, nil
}

func (e *Error) withContext(format string, args ...any) *Error {
	return &Error{Tag: e.Tag, Details: fmt.Sprintf(format, args...) + ": " + e.Details}
}
