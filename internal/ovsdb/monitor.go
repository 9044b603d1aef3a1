package ovsdb

import (
	"encoding/json"
	"strconv"
)

// monitor is one client's subscription to changes in a database, created by
// monitor (version 1, "update" notifications), monitor_cond (version 2,
// "update2") or monitor_cond_since (version 3, "update3").
type monitor struct {
	session *session
	db      *DB
	id      any
	idJSON  []byte // id, encoded
	version int
	tables  map[string]*monTable
	// sig is the same for monitors that see every commit alike (same
	// version and requests), so a commit's update is encoded once for
	// all of them; "" for a monitor encoded alone.
	sig string
	// size is that of the request that set its conditions, counted
	// against the session's MaxMonitorBytes (guarded by session.mu).
	size int
	// conds is the weight of its conditions, counted in the database's
	// monConds while it is registered (guarded by db.mu).
	conds int
}

// condWeight is what checking a row against where costs: one per
// condition and per value in it.
func condWeight(where conditions) int {
	w := 0
	for i := range where {
		w += 1 + where[i].arg.Len()
	}
	return w
}

// tablesWeight is condWeight over the tables of a monitor.
func tablesWeight(tables map[string]*monTable) int {
	w := 0
	for _, mt := range tables {
		w += condWeight(mt.where)
	}
	return w
}

// newWeight is the weight of m's conditions once newWhere replaces
// those of its tables (called with db.mu held).
func (m *monitor) newWeight(newWhere map[string]conditions) int {
	w := m.conds
	for name, where := range newWhere {
		w += condWeight(where) - condWeight(m.tables[name].where)
	}
	return w
}

// conditionRoom says whether the database's monitors may hold conditions
// of weight w more, in place of old's (called with db.mu held).
func (db *DB) conditionRoom(w, old int) *Error {
	total := db.monConds - old + w
	if w > old && total > db.MaxMonitorConditions {
		return errorf("resources exhausted", "the monitors of database %s would hold conditions of weight %d, over the limit of %d for all clients (MaxMonitorConditions)",
			db.Name(), total, db.MaxMonitorConditions)
	}
	return nil
}

// monitorSignature identifies a monitor's view: its version and its
// requests, as canonical JSON (object keys sorted).
func monitorSignature(version int, db *DB, requests any) string {
	b, err := json.Marshal(requests)
	if err != nil {
		return ""
	}
	return strconv.Itoa(version) + " " + db.Name() + " " + string(b)
}

// monTable is what a monitor watches in one table. Several requests for a
// table are merged: the union of their columns and selections.
type monTable struct {
	t       *Table
	cols    []*Column
	initial bool
	insert  bool
	delete  bool
	modify  bool
	where   conditions // a disjunction
	all     bool       // a request without conditions: every row
}

// parseMonitorRequests parses {table: request-or-array-of-requests}.
func parseMonitorRequests(db *DB, raw any, version int) (map[string]*monTable, *Error) {
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, errorf("syntax error", "monitor requests must be a JSON object")
	}
	out := map[string]*monTable{}
	for name, v := range obj {
		td, err := db.table(name)
		if err != nil {
			return nil, err
		}
		reqs, isArray := v.([]any)
		if !isArray {
			reqs = []any{v}
		}
		mt := &monTable{t: td.schema}
		for _, r := range reqs {
			if err := mt.addRequest(r, version); err != nil {
				return nil, err.withContext("monitor request for table %s", name)
			}
		}
		if mt.cols == nil {
			mt.cols = userColumns(td.schema)
		}
		out[name] = mt
	}
	return out, nil
}

func userColumns(t *Table) []*Column {
	var cols []*Column
	for _, c := range t.Columns {
		if c.Name != colUUID && c.Name != colVersion {
			cols = append(cols, c)
		}
	}
	return cols
}

func (mt *monTable) addRequest(raw any, version int) *Error {
	req, ok := raw.(map[string]any)
	if !ok {
		return errorf("syntax error", "request must be a JSON object")
	}
	if raw, ok := req["columns"]; ok {
		cols, err := selectColumns(mt.t, raw)
		if err != nil {
			return err
		}
		mt.addColumns(cols)
	} else {
		mt.addColumns(userColumns(mt.t))
	}
	sel := map[string]bool{"initial": true, "insert": true, "delete": true, "modify": true}
	if s, ok := req["select"]; ok {
		obj, ok := s.(map[string]any)
		if !ok {
			return errorf("syntax error", "\"select\" must be an object")
		}
		for k, v := range obj {
			b, ok := v.(bool)
			if _, known := sel[k]; !known || !ok {
				return errorf("syntax error", "bad \"select\" member %q", k)
			}
			sel[k] = b
		}
	}
	mt.initial = mt.initial || sel["initial"]
	mt.insert = mt.insert || sel["insert"]
	mt.delete = mt.delete || sel["delete"]
	mt.modify = mt.modify || sel["modify"]
	if version < 2 {
		mt.all = true
		return nil
	}
	w, ok := req["where"]
	if !ok {
		mt.all = true
		return nil
	}
	return mt.orWhere(w)
}

func (mt *monTable) addColumns(cols []*Column) {
	for _, c := range cols {
		dup := false
		for _, have := range mt.cols {
			dup = dup || have == c
		}
		if !dup {
			mt.cols = append(mt.cols, c)
		}
	}
}

func (mt *monTable) setWhere(raw any) *Error {
	mt.where, mt.all = nil, false
	return mt.orWhere(raw)
}

// orWhere widens the table's view by the clauses of one request: several
// requests, like the clauses of one, are OR'ed.
func (mt *monTable) orWhere(raw any) *Error {
	arr, ok := raw.([]any)
	if !ok {
		return errorf("syntax error", "\"where\" must be an array")
	}
	if len(arr) == 0 {
		mt.all = true
		return nil
	}
	conds, err := parseConditions(mt.t, arr, nil)
	if err != nil {
		return err
	}
	mt.where = append(mt.where, conds...)
	return nil
}

// visible reports whether r passes the table's conditions (any of them).
func (mt *monTable) visible(r *Row) bool {
	if r == nil {
		return false
	}
	if mt.all {
		return true
	}
	for i := range mt.where {
		if mt.where[i].match(r) {
			return true
		}
	}
	return false
}

// initialUpdates returns the current contents as table-updates (called
// with the database locked).
func (m *monitor) initialUpdates() map[string]any {
	out := map[string]any{}
	for name, mt := range m.tables {
		if !mt.initial {
			continue
		}
		rows := map[string]any{}
		for u, r := range m.db.tables[name].rows {
			if mt.visible(r) {
				rows[u.String()] = m.rowUpdate(mt, "initial", nil, r)
			}
		}
		if len(rows) > 0 {
			out[name] = rows
		}
	}
	return out
}

// commitUpdates returns what a commit changed for this monitor, or nil.
func (m *monitor) commitUpdates(cm *Commit) map[string]any {
	var out map[string]any
	for _, c := range cm.Changes {
		mt, ok := m.tables[c.Table.Name]
		if !ok {
			continue
		}
		u := m.changeUpdate(mt, c.Old, c.New)
		if u == nil {
			continue
		}
		if out == nil {
			out = map[string]any{}
		}
		rows, _ := out[c.Table.Name].(map[string]any)
		if rows == nil {
			rows = map[string]any{}
			out[c.Table.Name] = rows
		}
		rows[c.UUID.String()] = u
	}
	return out
}

// changeUpdate encodes one row's change as the monitor sees it: a row that
// starts or stops matching the conditions is an insert or a delete.
func (m *monitor) changeUpdate(mt *monTable, old, new *Row) any {
	before, after := mt.visible(old), mt.visible(new)
	switch {
	case !before && after && mt.insert:
		return m.rowUpdate(mt, "insert", nil, new)
	case before && !after && mt.delete:
		return m.rowUpdate(mt, "delete", old, nil)
	case before && after && mt.modify:
		return m.rowUpdate(mt, "modify", old, new)
	}
	return nil
}

// rowUpdate encodes a row update in the monitor's version.
func (m *monitor) rowUpdate(mt *monTable, kind string, old, new *Row) any {
	if m.version == 1 {
		return rowUpdate1(mt, kind, old, new)
	}
	switch kind {
	case "delete":
		return map[string]any{"delete": nil}
	case "modify":
		diff := map[string]any{}
		for _, c := range mt.cols {
			o, n := old.Cols[c.index], new.Cols[c.index]
			if o.Equal(n) {
				continue
			}
			if c.Type.isComposite() {
				diff[c.Name] = datumJSON(o.diff(n), &c.Type)
			} else {
				diff[c.Name] = datumJSON(n, &c.Type)
			}
		}
		if len(diff) == 0 {
			return nil
		}
		return map[string]any{"modify": diff}
	}
	row := map[string]any{}
	for _, c := range mt.cols {
		if d := new.Cols[c.index]; !d.Equal(defaultDatum(&c.Type)) {
			row[c.Name] = datumJSON(d, &c.Type)
		}
	}
	return map[string]any{kind: row}
}

// rowUpdate1 is the "old"/"new" encoding of RFC 7047 monitors.
func rowUpdate1(mt *monTable, kind string, old, new *Row) any {
	switch kind {
	case "delete":
		return map[string]any{"old": rowJSON(mt.t, old, mt.cols)}
	case "modify":
		changed := map[string]any{}
		for _, c := range mt.cols {
			if !old.Cols[c.index].Equal(new.Cols[c.index]) {
				changed[c.Name] = datumJSON(old.Cols[c.index], &c.Type)
			}
		}
		if len(changed) == 0 {
			return nil
		}
		return map[string]any{"old": changed, "new": rowJSON(mt.t, new, mt.cols)}
	}
	return map[string]any{"new": rowJSON(mt.t, new, mt.cols)}
}

// notifyMonitors queues every monitor's notification for a commit (called
// with the database locked, so notifications go out in commit order).
// Monitors with the same view share one encoded update: a hundred
// identical monitors cost one copy of it, not a hundred.
func (db *DB) notifyMonitors(cm *Commit) {
	var shared map[string][]byte
	for m := range db.mons {
		body, ok := shared[m.sig]
		if !ok || m.sig == "" {
			body = m.encodeUpdates(cm)
			if m.sig != "" {
				if shared == nil {
					shared = map[string][]byte{}
				}
				shared[m.sig] = body
			}
		}
		if body != nil {
			m.sendEncoded(body, cm.TxnID)
		}
	}
}

// encodeUpdates is the JSON of what a commit changed for m, or nil.
func (m *monitor) encodeUpdates(cm *Commit) []byte {
	updates := m.commitUpdates(cm)
	if updates == nil {
		return nil
	}
	body, err := json.Marshal(updates)
	if err != nil {
		encodeError.Inc()
		serverLog.ErrRL(encodeRL, "monitor %s: cannot encode an update: %v", m.idJSON, err)
		return nil
	}
	return body
}

// sendEncoded queues the notification carrying an encoded table-updates
// body, which it shares and does not modify.
func (m *monitor) sendEncoded(body []byte, txn UUID) {
	method := [...]string{1: "update", 2: "update2", 3: "update3"}[m.version]
	head := make([]byte, 0, 64+len(m.idJSON))
	head = append(head, `{"id":null,"method":"`...)
	head = append(head, method...)
	head = append(head, `","params":[`...)
	head = append(head, m.idJSON...)
	head = append(head, ',')
	if m.version == 3 {
		head = append(head, '"')
		head = append(head, txn.String()...)
		head = append(head, `",`...)
	}
	m.session.enqueue(outMsg{head: head, body: body, tail: notifyTail})
}

var notifyTail = []byte("]}")

// send queues a notification for updates of this monitor alone.
func (m *monitor) send(updates map[string]any, txn UUID) {
	body, err := json.Marshal(updates)
	if err != nil {
		encodeError.Inc()
		serverLog.ErrRL(encodeRL, "monitor %s: cannot encode an update: %v", m.idJSON, err)
		return
	}
	m.sendEncoded(body, txn)
}

func (db *DB) removeMonitor(m *monitor) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.mons[m]; ok {
		delete(db.mons, m)
		db.monConds -= m.conds
	}
}

// changeConditions replaces the conditions of some of m's tables and sends
// the rows that enter or leave the monitor's view.
func (db *DB) changeConditions(m *monitor, newWhere map[string]conditions) {
	db.mu.Lock()
	defer db.mu.Unlock()
	w := m.newWeight(newWhere)
	if _, ok := db.mons[m]; ok {
		db.monConds += w - m.conds
	}
	m.conds = w
	updates := map[string]any{}
	for name, where := range newWhere {
		mt := m.tables[name]
		next := *mt
		next.where, next.all = where, where == nil
		rows := map[string]any{}
		for u, r := range db.tables[name].rows {
			was, is := mt.visible(r), next.visible(r)
			switch {
			case !was && is && mt.insert:
				rows[u.String()] = m.rowUpdate(mt, "insert", nil, r)
			case was && !is && mt.delete:
				rows[u.String()] = m.rowUpdate(mt, "delete", r, nil)
			}
		}
		mt.where, mt.all = where, where == nil
		if len(rows) > 0 {
			updates[name] = rows
		}
	}
	if len(updates) > 0 {
		m.send(updates, db.lastTxn)
	}
}
