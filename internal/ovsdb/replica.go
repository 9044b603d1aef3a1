package ovsdb

import (
	"encoding/json"
	"fmt"
	"slices"
)

// A replica is a DB without a journal whose contents come from another
// OVSDB server's monitor notifications rather than from transactions: the
// remote server has already checked them, so they are applied as they
// come, without integrity checks or RowChecks. Commit hooks run as for a
// transaction, so a reader of the DB (the reconciler) cannot tell a
// replica from a database it serves.

// MaxReplicaUpdate bounds the rows one monitor notification may carry, so
// that a misbehaving server cannot make gvsd build an unbounded commit.
const MaxReplicaUpdate = 1 << 20

// ApplyUpdate applies one monitor notification's <table-updates> (version
// 1: "update", RFC 7047 4.1.6) or <table-updates2> (version 2: "update2",
// with its "modify" diffs). With reset, the update is a monitor's initial
// contents (the reply to monitor or monitor_cond): every row it does not
// name is deleted, so a replica resynchronized after a reconnection holds
// exactly the server's contents. Tables and columns the replica's schema
// lacks are ignored, as OVS's IDL ignores them; a malformed update changes
// nothing and returns an error naming the row.
func (db *DB) ApplyUpdate(version int, raw json.RawMessage, reset bool) error {
	v, err := decodeJSON(raw)
	if err != nil {
		return fmt.Errorf("monitor update: %w", err)
	}
	tables, ok := v.(map[string]any)
	if !ok && !(v == nil && reset) {
		return fmt.Errorf("monitor update: expected an object, got %s", shortJSON(v))
	}
	db.mu.Lock()
	cm, err := db.replicaChanges(version, tables, reset)
	if err != nil {
		db.mu.Unlock()
		return err
	}
	for _, c := range cm.Changes {
		td := db.tables[c.Table.Name]
		db.size += rowSize(c.New) - rowSize(td.rows[c.UUID])
		if c.New == nil {
			delete(td.rows, c.UUID)
		} else {
			td.rows[c.UUID] = c.New
		}
	}
	db.rebuildRefs()
	hooks := slices.Clone(db.hooks)
	db.mu.Unlock()
	if len(cm.Changes) > 0 {
		for _, h := range hooks {
			h(cm)
		}
	}
	return nil
}

// replicaChanges turns an update into a Commit, with the database locked.
func (db *DB) replicaChanges(version int, tables map[string]any, reset bool) (*Commit, error) {
	cm := &Commit{TxnID: NewUUID()}
	seen := map[UUID]bool{}
	n := 0
	for name, raw := range tables {
		td, ok := db.tables[name]
		if !ok {
			continue
		}
		rows, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("monitor update: table %s: expected an object, got %s", name, shortJSON(raw))
		}
		if n += len(rows); n > MaxReplicaUpdate {
			return nil, fmt.Errorf("monitor update: more than MaxReplicaUpdate (%d) rows", MaxReplicaUpdate)
		}
		for id, ru := range rows {
			u, err := ParseUUID(id)
			if err != nil {
				return nil, fmt.Errorf("monitor update: table %s: row %q: %w", name, id, err)
			}
			seen[u] = true
			old := td.rows[u]
			if reset {
				old = nil // initial contents are whole rows
			}
			newRow, err := replicaRow(version, td.schema, u, old, ru)
			if err != nil {
				return nil, fmt.Errorf("monitor update: table %s: row %s: %w", name, u, err)
			}
			if prev := td.rows[u]; prev != nil || newRow != nil {
				cm.Changes = append(cm.Changes, Change{Table: td.schema, UUID: u, Old: prev, New: newRow})
			}
		}
	}
	if reset {
		for _, td := range db.tables {
			for u, r := range td.rows {
				if !seen[u] {
					cm.Changes = append(cm.Changes, Change{Table: td.schema, UUID: u, Old: r})
				}
			}
		}
	}
	return cm, nil
}

// replicaRow is the row u of t after one <row-update> (version 1) or
// <row-update2> (version 2), nil when it deletes the row.
func replicaRow(version int, t *Table, u UUID, old *Row, raw any) (*Row, error) {
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("expected an object, got %s", shortJSON(raw))
	}
	if version == 1 {
		cols, ok := obj["new"]
		if !ok {
			return nil, nil // deleted
		}
		return replicaColumns(t, u, old, cols, false)
	}
	for kind, cols := range obj {
		switch kind {
		case "delete":
			return nil, nil
		case "initial", "insert":
			return replicaColumns(t, u, nil, cols, false)
		case "modify":
			if old == nil {
				return nil, fmt.Errorf("modify of a row the replica does not have")
			}
			return replicaColumns(t, u, old, cols, true)
		}
	}
	return nil, fmt.Errorf("no initial, insert, modify or delete in %s", shortJSON(raw))
}

// replicaColumns sets the columns in raw on a copy of base (a row at its
// defaults when base is nil); with diff, the values of columns that may
// hold several values are update2 differences to apply rather than new
// values.
func replicaColumns(t *Table, u UUID, base *Row, raw any, diff bool) (*Row, error) {
	obj, ok := raw.(map[string]any)
	if !ok && raw != nil {
		return nil, fmt.Errorf("expected columns, got %s", shortJSON(raw))
	}
	r := newRow(t, u)
	if base != nil {
		r = base.clone()
	}
	for name, val := range obj {
		c, ok := t.ByName[name]
		if !ok || name == colUUID {
			continue
		}
		// The server checked the value against its schema, which may be
		// newer than gvsd's: only the types must agree.
		typ := relaxed(c.Type)
		d, err := parseDatum(val, &typ, nil)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", name, err)
		}
		if diff && c.Type.isComposite() {
			d = r.Cols[c.index].applyDiff(d)
		}
		r.Cols[c.index] = d
	}
	return r, nil
}
