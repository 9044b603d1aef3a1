package ovsdb

import (
	"encoding/json"
	"fmt"
	"math"
)

// change is a row touched by a transaction in progress.
type change struct {
	td  *tableData
	old *Row // committed row, nil if inserted here
	new *Row // current row, nil if deleted here
}

// txn executes the operations of one "transact" request against a private
// overlay of the committed data; nothing is visible to others until commit.
type txn struct {
	db      *DB
	changes map[UUID]*change
	order   []UUID // change order, so results and journal records are stable
	names   namedUUIDs
	session *session // the requesting session, for "assert"; may be nil
	durable bool
	// replyBytes counts the encoded size of the selected rows so far,
	// against maxReply (0: no limit, for in-process callers).
	replyBytes, maxReply int
	// compares counts condition checks against maxCompares (0: no
	// limit).
	compares, maxCompares int64
}

func newTxn(db *DB, s *session) *txn {
	tx := &txn{db: db, changes: map[UUID]*change{}, names: namedUUIDs{}, session: s}
	if s != nil {
		tx.maxReply = s.server.MaxReply
		tx.maxCompares = int64(s.server.MaxCompares)
	}
	return tx
}

// row returns the current version of a row, or nil.
func (tx *txn) row(td *tableData, u UUID) *Row {
	if c, ok := tx.changes[u]; ok {
		if c.td != td {
			return nil
		}
		return c.new
	}
	return td.rows[u]
}

// exists reports whether a row with uuid u is in table td in this txn.
func (tx *txn) exists(table string, u UUID) bool {
	td := tx.db.tables[table]
	return td != nil && tx.row(td, u) != nil
}

// scan calls fn for every current row of td until fn returns false.
func (tx *txn) scan(td *tableData, fn func(*Row) bool) {
	for u, r := range td.rows {
		if c, ok := tx.changes[u]; ok {
			if c.new == nil {
				continue
			}
			r = c.new
		}
		if !fn(r) {
			return
		}
	}
	for _, u := range tx.order {
		c := tx.changes[u]
		if c.td == td && c.old == nil && c.new != nil {
			if !fn(c.new) {
				return
			}
		}
	}
}

// put records r as the new version of row u (nil deletes it).
func (tx *txn) put(td *tableData, u UUID, r *Row) {
	if c, ok := tx.changes[u]; ok {
		c.new = r
		return
	}
	tx.changes[u] = &change{td: td, old: td.rows[u], new: r}
	tx.order = append(tx.order, u)
}

// execute runs the operations. It returns the per-operation results and
// whether the transaction must be committed (no operation failed).
func (tx *txn) execute(ops []any) ([]any, bool) {
	badName, nameErr := tx.declareNames(ops)
	results := make([]any, 0, len(ops))
	for i, raw := range ops {
		if i == badName {
			// The bad uuid-name is the error of the insert that carries it.
			return append(results, nameErr.JSON()), false
		}
		op, ok := raw.(map[string]any)
		if !ok {
			return append(results, errorf("syntax error", "operation %d is not a JSON object", i).JSON()), false
		}
		res, err := tx.executeOp(op)
		if err != nil {
			return append(results, err.JSON()), false
		}
		results = append(results, res)
	}
	return results, true
}

// declareNames assigns the UUIDs of all inserts first, so that a
// named-uuid may be used before the insert that defines it. It returns the
// index of the first insert with an invalid or repeated uuid-name (-1 if
// none) and its error.
func (tx *txn) declareNames(ops []any) (int, *Error) {
	for i, raw := range ops {
		op, ok := raw.(map[string]any)
		if !ok || op["op"] != "insert" {
			continue
		}
		name, hasName := op["uuid-name"].(string)
		if !hasName {
			continue
		}
		if !idPattern.MatchString(name) {
			return i, errorf("syntax error", "%q is not a valid uuid-name", name)
		}
		if _, dup := tx.names[name]; dup {
			return i, errorf("duplicate uuid-name", "This \"uuid-name\" appeared on an earlier \"insert\" operation: %s", name)
		}
		u := NewUUID()
		if s, ok := op["uuid"].(string); ok {
			if parsed, err := ParseUUID(s); err == nil {
				u = parsed
			}
		}
		tx.names[name] = u
	}
	return -1, nil
}

func (tx *txn) executeOp(op map[string]any) (any, *Error) {
	name, _ := op["op"].(string)
	switch name {
	case "insert":
		return tx.opInsert(op)
	case "select":
		return tx.opSelect(op)
	case "update":
		return tx.opUpdate(op)
	case "mutate":
		return tx.opMutate(op)
	case "delete":
		return tx.opDelete(op)
	case "wait":
		return tx.opWait(op)
	case "commit":
		durable, ok := op["durable"].(bool)
		if !ok {
			return nil, errorf("syntax error", "commit operation requires boolean \"durable\"")
		}
		tx.durable = tx.durable || durable
		return map[string]any{}, nil
	case "abort":
		return nil, &Error{Tag: "aborted", Details: "Aborted by request."}
	case "comment":
		if _, ok := op["comment"].(string); !ok {
			return nil, errorf("syntax error", "comment operation requires string \"comment\"")
		}
		return map[string]any{}, nil
	case "assert":
		return tx.opAssert(op)
	}
	return nil, errorf("unknown operation", "No operation named %q.", name)
}

func (tx *txn) opTable(op map[string]any) (*tableData, *Error) {
	name, ok := op["table"].(string)
	if !ok {
		return nil, errorf("syntax error", "%v operation requires string \"table\"", op["op"])
	}
	return tx.db.table(name)
}

func (tx *txn) opInsert(op map[string]any) (any, *Error) {
	td, err := tx.opTable(op)
	if err != nil {
		return nil, err
	}
	u := NewUUID()
	if name, ok := op["uuid-name"].(string); ok {
		u = tx.names[name]
	} else if s, ok := op["uuid"].(string); ok {
		if u, err = parseOpUUID(s); err != nil {
			return nil, err
		}
	}
	if s, ok := op["uuid"].(string); ok {
		if _, perr := ParseUUID(s); perr != nil {
			return nil, errorf("syntax error", "%q is not a valid UUID", s)
		}
	}
	if tx.rowAnywhere(u) {
		return nil, errorf("duplicate uuid", "This UUID would duplicate a UUID already present within the database or within this transaction: %s", u)
	}
	r := newRow(td.schema, u)
	if raw, ok := op["row"]; ok {
		if err := tx.applyRow(td, r, raw, true); err != nil {
			return nil, err
		}
	}
	r.setVersion(td.schema, NewUUID())
	tx.put(td, u, r)
	return map[string]any{"uuid": []any{"uuid", u.String()}}, nil
}

func parseOpUUID(s string) (UUID, *Error) {
	u, err := ParseUUID(s)
	if err != nil {
		return u, errorf("syntax error", "%s", err)
	}
	return u, nil
}

// rowAnywhere reports whether any table has a row with uuid u.
func (tx *txn) rowAnywhere(u UUID) bool {
	if c, ok := tx.changes[u]; ok {
		return c.new != nil || c.old != nil
	}
	for _, td := range tx.db.tables {
		if _, ok := td.rows[u]; ok {
			return true
		}
	}
	return false
}

// applyRow sets the columns given in the JSON object raw on r.
func (tx *txn) applyRow(td *tableData, r *Row, raw any, inserting bool) *Error {
	obj, ok := raw.(map[string]any)
	if !ok {
		return errorf("syntax error", "row must be a JSON object")
	}
	for name, v := range obj {
		c, err := tx.writableColumn(td.schema, name, inserting)
		if err != nil {
			return err
		}
		d, perr := parseDatum(v, &c.Type, tx.names)
		if perr != nil {
			return asError(perr).withContext("column %q of table %s", name, td.schema.Name)
		}
		r.Cols[c.index] = d
	}
	return nil
}

func (tx *txn) writableColumn(t *Table, name string, inserting bool) (*Column, *Error) {
	c, ok := t.ByName[name]
	if !ok {
		return nil, errorf("unknown column", "No column %s in table %s.", name, t.Name)
	}
	if name == colUUID || name == colVersion {
		return nil, errorf("constraint violation", "Cannot set read-only column %s in table %s.", name, t.Name)
	}
	if !inserting && !c.Mutable {
		return nil, errorf("constraint violation", "Cannot update immutable column %s in table %s.", name, t.Name)
	}
	return c, nil
}

func asError(err error) *Error {
	if e, ok := err.(*Error); ok {
		return e
	}
	return &Error{Tag: "syntax error", Details: err.Error()}
}

// matching returns the current rows of td that satisfy op's "where".
func (tx *txn) matching(td *tableData, op map[string]any) ([]*Row, *Error) {
	where, ok := op["where"].([]any)
	if !ok {
		return nil, errorf("syntax error", "%v operation requires array \"where\"", op["op"])
	}
	// Each condition costs at least one check a row: too many are
	// refused before they are parsed, under the database's lock.
	if tx.maxCompares > 0 && tx.compares+int64(len(where))*int64(len(td.rows)+len(tx.order)) > tx.maxCompares {
		return nil, tx.chargeCompares(make(conditions, len(where)), len(td.rows)+len(tx.order))
	}
	conds, err := parseConditions(td.schema, where, tx.names)
	if err != nil {
		return nil, err
	}
	// A condition on _uuid == X is the common case: look the row up.
	if u, ok := conds.uuidEquals(); ok {
		if r := tx.row(td, u); r != nil && conds.match(r) {
			return []*Row{r}, nil
		}
		return nil, nil
	}
	if err := tx.chargeCompares(conds, len(td.rows)+len(tx.order)); err != nil {
		return nil, err
	}
	var rows []*Row
	tx.scan(td, func(r *Row) bool {
		if conds.match(r) {
			rows = append(rows, r)
		}
		return true
	})
	return rows, nil
}

func (tx *txn) opSelect(op map[string]any) (any, *Error) {
	td, err := tx.opTable(op)
	if err != nil {
		return nil, err
	}
	cols, err := selectColumns(td.schema, op["columns"])
	if err != nil {
		return nil, err
	}
	rows, err := tx.matching(td, op)
	if err != nil {
		return nil, err
	}
	if err := tx.chargeReply(td.schema, rows, cols); err != nil {
		return nil, err
	}
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = rowJSON(td.schema, r, cols)
	}
	return map[string]any{"rows": out}, nil
}

// chargeReply counts the selected rows against the transaction's reply
// limit before they are built: a select costs a few dozen bytes of
// request and may return a whole table, as often as a request repeats it.
func (tx *txn) chargeReply(t *Table, rows []*Row, cols []*Column) *Error {
	if tx.maxReply <= 0 {
		return nil
	}
	if cols == nil {
		cols = t.Columns
	}
	for _, r := range rows {
		for _, c := range cols {
			tx.replyBytes += len(c.Name) + 4 + datumSize(r.Cols[c.index])
		}
		if tx.replyBytes > tx.maxReply {
			return errorf("resources exhausted", "the results of this transaction exceed %d bytes (MaxReply): select fewer rows or columns", tx.maxReply)
		}
	}
	return nil
}

// selectColumns parses an optional "columns" array (nil: all columns).
func selectColumns(t *Table, raw any) ([]*Column, *Error) {
	if raw == nil {
		return nil, nil
	}
	arr, ok := raw.([]any)
	if !ok {
		return nil, errorf("syntax error", "\"columns\" must be an array of column names")
	}
	cols := make([]*Column, 0, len(arr))
	for _, v := range arr {
		name, _ := v.(string)
		c, ok := t.ByName[name]
		if !ok {
			return nil, errorf("unknown column", "No column %v in table %s.", v, t.Name)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

func (tx *txn) opUpdate(op map[string]any) (any, *Error) {
	td, err := tx.opTable(op)
	if err != nil {
		return nil, err
	}
	rows, err := tx.matching(td, op)
	if err != nil {
		return nil, err
	}
	// Parse the new values once, even when no row matches, so that a bad
	// request is an error whatever the data.
	template := newRow(td.schema, UUID{})
	if err := tx.applyRow(td, template, op["row"], false); err != nil {
		return nil, err
	}
	obj := op["row"].(map[string]any)
	for _, r := range rows {
		n := r.clone()
		for name := range obj {
			c := td.schema.ByName[name]
			n.Cols[c.index] = template.Cols[c.index]
		}
		tx.update(td, r, n)
	}
	return map[string]any{"count": len(rows)}, nil
}

// update records n as the new version of r if anything changed.
func (tx *txn) update(td *tableData, r, n *Row) {
	for i := range n.Cols {
		if !n.Cols[i].Equal(r.Cols[i]) {
			n.setVersion(td.schema, NewUUID())
			tx.put(td, r.UUID, n)
			return
		}
	}
}

func (tx *txn) opDelete(op map[string]any) (any, *Error) {
	td, err := tx.opTable(op)
	if err != nil {
		return nil, err
	}
	rows, err := tx.matching(td, op)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		tx.put(td, r.UUID, nil)
	}
	return map[string]any{"count": len(rows)}, nil
}

func (tx *txn) opAssert(op map[string]any) (any, *Error) {
	lock, ok := op["lock"].(string)
	if !ok {
		return nil, errorf("syntax error", "assert operation requires string \"lock\"")
	}
	if tx.session == nil || !tx.session.server.locks.owns(lock, tx.session) {
		return nil, errorf("not owner", "Asserted lock %s not held.", lock)
	}
	return map[string]any{}, nil
}

// errWouldBlock marks a "wait" whose condition is not met yet.
var errWouldBlock = &Error{Tag: "timed out", Details: "\"wait\" timed out"}

func (tx *txn) opWait(op map[string]any) (any, *Error) {
	td, err := tx.opTable(op)
	if err != nil {
		return nil, err
	}
	if t, ok := op["timeout"]; ok {
		if n, ok := nativeNumber(t).(json.Number); !ok || n.String() == "" {
			return nil, errorf("syntax error", "\"timeout\" must be a number")
		}
	}
	until, _ := op["until"].(string)
	if until != "==" && until != "!=" {
		return nil, errorf("syntax error", "\"until\" must be \"==\" or \"!=\"")
	}
	cols, err := selectColumns(td.schema, op["columns"])
	if err != nil {
		return nil, err
	}
	if cols == nil {
		cols = td.schema.Columns
	}
	want, err := tx.waitRows(td.schema, cols, op["rows"])
	if err != nil {
		return nil, err
	}
	rows, err := tx.matching(td, op)
	if err != nil {
		return nil, err
	}
	if rowsEqual(rows, want, cols) == (until == "==") {
		return map[string]any{}, nil
	}
	return nil, errWouldBlock
}

// waitRows parses the "rows" of a wait operation, each restricted to cols.
func (tx *txn) waitRows(t *Table, cols []*Column, raw any) ([][]Datum, *Error) {
	arr, ok := raw.([]any)
	if !ok {
		return nil, errorf("syntax error", "wait operation requires array \"rows\"")
	}
	out := make([][]Datum, len(arr))
	for i, v := range arr {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, errorf("syntax error", "wait: rows must be objects")
		}
		vals := make([]Datum, len(cols))
		for j, c := range cols {
			cv, ok := obj[c.Name]
			if !ok {
				vals[j] = defaultDatum(&c.Type)
				continue
			}
			d, err := parseDatum(cv, &c.Type, tx.names)
			if err != nil {
				return nil, asError(err).withContext("wait: column %q", c.Name)
			}
			vals[j] = d
		}
		for name := range obj {
			if _, ok := t.ByName[name]; !ok {
				return nil, errorf("unknown column", "No column %s in table %s.", name, t.Name)
			}
		}
		out[i] = vals
	}
	return out, nil
}

// rowsEqual compares a query result with expected rows as multisets of
// projected rows; sets and maps compare by content, not order.
func rowsEqual(rows []*Row, want [][]Datum, cols []*Column) bool {
	if len(rows) != len(want) {
		return false
	}
	used := make([]bool, len(want))
	for _, r := range rows {
		found := false
		for i, w := range want {
			if used[i] || !projectedEqual(r, w, cols) {
				continue
			}
			used[i], found = true, true
			break
		}
		if !found {
			return false
		}
	}
	return true
}

func projectedEqual(r *Row, w []Datum, cols []*Column) bool {
	for j, c := range cols {
		if !r.Cols[c.index].Equal(w[j]) {
			return false
		}
	}
	return true
}

func (tx *txn) opMutate(op map[string]any) (any, *Error) {
	td, err := tx.opTable(op)
	if err != nil {
		return nil, err
	}
	muts, err := tx.parseMutations(td.schema, op["mutations"])
	if err != nil {
		return nil, err
	}
	rows, err := tx.matching(td, op)
	if err != nil {
		return nil, err
	}
	for _, r := range rows {
		n := r.clone()
		for _, m := range muts {
			d, err := m.apply(n.Cols[m.col.index])
			if err != nil {
				return nil, err
			}
			n.Cols[m.col.index] = d
		}
		tx.update(td, r, n)
	}
	return map[string]any{"count": len(rows)}, nil
}

type mutation struct {
	col     *Column
	mutator string
	arg     Datum // for insert/delete
	scalar  Atom  // for arithmetic
}

func (tx *txn) parseMutations(t *Table, raw any) ([]mutation, *Error) {
	arr, ok := raw.([]any)
	if !ok {
		return nil, errorf("syntax error", "mutate operation requires array \"mutations\"")
	}
	out := make([]mutation, 0, len(arr))
	for _, v := range arr {
		m, err := tx.parseMutation(t, v)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (tx *txn) parseMutation(t *Table, v any) (mutation, *Error) {
	triple, ok := v.([]any)
	if !ok || len(triple) != 3 {
		return mutation{}, errorf("syntax error", "mutation must be [column, mutator, value], got %s", shortJSON(v))
	}
	name, _ := triple[0].(string)
	mutator, _ := triple[1].(string)
	c, err := tx.writableColumn(t, name, false)
	if err != nil {
		return mutation{}, err
	}
	m := mutation{col: c, mutator: mutator}
	switch mutator {
	case "+=", "-=", "*=", "/=", "%=":
		return m, m.parseArithmetic(triple[2])
	case "insert", "delete":
		argType := c.Type
		argType.Min, argType.Max = 0, -1
		if mutator == "delete" && c.Type.IsMap() {
			// A map delete takes either a map or a set of keys.
			if _, isMap := taggedArray(triple[2], "map"); !isMap {
				argType.Value = nil
			}
		}
		d, perr := parseDatum(triple[2], &argType, tx.names)
		if perr != nil {
			return m, asError(perr).withContext("mutation of column %q", name)
		}
		m.arg = d
		return m, nil
	}
	return m, errorf("syntax error", "unknown mutator %q", mutator)
}

func (m *mutation) parseArithmetic(v any) *Error {
	t := m.col.Type
	if t.IsMap() || (t.Key.Type != TypeInteger && t.Key.Type != TypeReal) || (m.mutator == "%=" && t.Key.Type != TypeInteger) {
		return errorf("constraint violation", "Type mismatch: mutator %s cannot be applied to column %s", m.mutator, m.col.Name)
	}
	a, err := parseAtomType(v, t.Key.Type, nil)
	if err != nil {
		return asError(err)
	}
	if (m.mutator == "/=" || m.mutator == "%=") && isZero(a) {
		return errorf("domain error", "Division by zero.")
	}
	m.scalar = a
	return nil
}

func isZero(a Atom) bool {
	switch x := a.(type) {
	case int64:
		return x == 0
	case float64:
		return x == 0
	}
	return false
}

// apply returns d mutated, or an error if the result breaks a constraint.
func (m *mutation) apply(d Datum) (Datum, *Error) {
	t := &m.col.Type
	var r Datum
	switch m.mutator {
	case "insert":
		r = d.union(m.arg)
	case "delete":
		r = d.subtract(m.arg)
	default:
		keys := make([]Atom, len(d.Keys))
		for i, k := range d.Keys {
			v, err := arith(m.mutator, k, m.scalar)
			if err != nil {
				return d, err
			}
			if err := t.Key.check(v); err != nil {
				// Outside the column's range is a constraint violation;
				// "range error" is only for 64-bit overflow (RFC 7047 5.2.4).
				return d, asError(err)
			}
			keys[i] = v
		}
		var err error
		if r, err = normalize(keys, nil); err != nil {
			return d, errorf("constraint violation", "mutation of column %s produced duplicate set elements", m.col.Name)
		}
	}
	if m.mutator == "insert" {
		for i, k := range m.arg.Keys {
			if err := t.Key.check(k); err != nil {
				return d, asError(err)
			}
			if t.IsMap() {
				if err := t.Value.check(m.arg.Values[i]); err != nil {
					return d, asError(err)
				}
			}
		}
	}
	if r.Len() < t.Min || (t.Max >= 0 && r.Len() > t.Max) {
		return d, errorf("constraint violation", "mutation of column %s leaves %d values when its type requires between %d and %s", m.col.Name, r.Len(), t.Min, maxString(t.Max))
	}
	return r, nil
}

// arith applies an arithmetic mutator, reporting integer overflow.
func arith(op string, a, b Atom) (Atom, *Error) {
	if x, ok := a.(int64); ok {
		y := b.(int64)
		var r int64
		switch op {
		case "+=":
			r = x + y
			if (y > 0 && r < x) || (y < 0 && r > x) {
				return nil, errorf("range error", "Result of \"+=\" operation is out of range.")
			}
		case "-=":
			r = x - y
			if (y < 0 && r < x) || (y > 0 && r > x) {
				return nil, errorf("range error", "Result of \"-=\" operation is out of range.")
			}
		case "*=":
			r = x * y
			if x != 0 && (r/x != y || (x == -1 && y == math.MinInt64) || (y == -1 && x == math.MinInt64)) {
				return nil, errorf("range error", "Result of \"*=\" operation is out of range.")
			}
		case "/=":
			if x == math.MinInt64 && y == -1 {
				return nil, errorf("range error", "Result of \"/=\" operation is out of range.")
			}
			r = x / y
		case "%=":
			if y == -1 {
				return int64(0), nil
			}
			r = x % y
		}
		return r, nil
	}
	x, y := a.(float64), b.(float64)
	var r float64
	switch op {
	case "+=":
		r = x + y
	case "-=":
		r = x - y
	case "*=":
		r = x * y
	case "/=":
		r = x / y
	}
	if !isFinite(r) {
		return nil, errorf("range error", "Result of %q operation is out of range.", op)
	}
	return r, nil
}

func (e *Error) String() string { return fmt.Sprintf("%s (%s)", e.Tag, e.Details) }
