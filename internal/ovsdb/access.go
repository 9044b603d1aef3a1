package ovsdb

// Accessors for in-process readers of rows (the reconciler), which know
// their schema and want plain Go values.

// Int returns the only integer of d, if it has exactly one.
func (d Datum) Int() (int64, bool) {
	if len(d.Keys) == 1 {
		v, ok := d.Keys[0].(int64)
		return v, ok
	}
	return 0, false
}

// Str returns the only string of d, if it has exactly one.
func (d Datum) Str() (string, bool) {
	if len(d.Keys) == 1 {
		v, ok := d.Keys[0].(string)
		return v, ok
	}
	return "", false
}

// Bool returns the only boolean of d, if it has exactly one.
func (d Datum) Bool() (bool, bool) {
	if len(d.Keys) == 1 {
		v, ok := d.Keys[0].(bool)
		return v, ok
	}
	return false, false
}

// UUIDs returns the UUIDs of a set of references.
func (d Datum) UUIDs() []UUID {
	out := make([]UUID, 0, len(d.Keys))
	for _, k := range d.Keys {
		if u, ok := k.(UUID); ok {
			out = append(out, u)
		}
	}
	return out
}

// Ints returns the integers of a set.
func (d Datum) Ints() []int64 {
	out := make([]int64, 0, len(d.Keys))
	for _, k := range d.Keys {
		if v, ok := k.(int64); ok {
			out = append(out, v)
		}
	}
	return out
}

// StringMap returns a string-to-string map column as a Go map.
func (d Datum) StringMap() map[string]string {
	out := make(map[string]string, len(d.Keys))
	for i, k := range d.Keys {
		ks, ok1 := k.(string)
		if !d.IsMap() {
			continue
		}
		vs, ok2 := d.Values[i].(string)
		if ok1 && ok2 {
			out[ks] = vs
		}
	}
	return out
}

// Column returns the value of a column of r, or an empty datum.
func (r *Row) Column(t *Table, name string) Datum {
	d, _ := r.Get(t, name)
	return d
}

// Snapshot is a consistent view of a whole database at one commit.
type Snapshot struct {
	Schema *Schema
	Tables map[string]map[UUID]*Row
}

// Snapshot returns the current contents of the named tables (all tables
// if none are named). Rows are immutable, so the view stays consistent
// while later transactions commit.
func (db *DB) Snapshot(tables ...string) *Snapshot {
	db.mu.Lock()
	defer db.mu.Unlock()
	if len(tables) == 0 {
		for name := range db.tables {
			tables = append(tables, name)
		}
	}
	s := &Snapshot{Schema: db.schema, Tables: make(map[string]map[UUID]*Row, len(tables))}
	for _, name := range tables {
		td, ok := db.tables[name]
		if !ok {
			continue
		}
		rows := make(map[UUID]*Row, len(td.rows))
		for u, r := range td.rows {
			rows[u] = r
		}
		s.Tables[name] = rows
	}
	return s
}

// Get returns the value of column in the row u of table, if it exists.
func (s *Snapshot) Get(table string, u UUID, column string) (Datum, bool) {
	r, ok := s.Tables[table][u]
	if !ok {
		return Datum{}, false
	}
	return r.Get(s.Schema.Tables[table], column)
}
