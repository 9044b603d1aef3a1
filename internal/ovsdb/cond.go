package ovsdb

// condition is one clause of a "where": [column, function, value], or a
// constant true/false (allowed in monitor_cond conditions).
type condition struct {
	col      *Column
	function string
	arg      Datum
	constant *bool
}

type conditions []condition

// parseConditions parses a "where" array against table t.
func parseConditions(t *Table, where []any, names namedUUIDs) (conditions, *Error) {
	out := make(conditions, 0, len(where))
	for _, v := range where {
		c, err := parseCondition(t, v, names)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func parseCondition(t *Table, v any, names namedUUIDs) (condition, *Error) {
	if b, ok := v.(bool); ok {
		return condition{constant: &b}, nil
	}
	triple, ok := v.([]any)
	if !ok || len(triple) != 3 {
		return condition{}, errorf("syntax error", "condition must be [column, function, value], got %s", shortJSON(v))
	}
	name, _ := triple[0].(string)
	fn, _ := triple[1].(string)
	col, ok := t.ByName[name]
	if !ok {
		return condition{}, errorf("syntax error", "No column %s in table %s.", name, t.Name)
	}
	switch fn {
	case "==", "!=", "includes", "excludes":
	case "<", "<=", ">", ">=":
		if !col.Type.IsScalar() || (col.Type.Key.Type != TypeInteger && col.Type.Key.Type != TypeReal) {
			return condition{}, errorf("syntax error", "Type mismatch: %q condition can only compare integer or real scalar columns, not column %s", fn, name)
		}
	default:
		return condition{}, errorf("syntax error", "unknown function %q in condition on column %s", fn, name)
	}
	// The argument may be any subset: constraints of the column (size,
	// enum, range) do not apply to a value being compared.
	argType := relaxed(col.Type)
	d, err := parseDatum(triple[2], &argType, names)
	if err != nil {
		return condition{}, asError(err).withContext("condition on column %s", name)
	}
	return condition{col: col, function: fn, arg: d}, nil
}

// relaxed returns t without the constraints that only stored values obey.
func relaxed(t Type) Type {
	r := Type{Key: BaseType{Type: t.Key.Type, RefTable: t.Key.RefTable, Strong: t.Key.Strong}, Min: 0, Max: -1}
	r.Key.MinInteger, r.Key.MaxInteger = minInt, maxInt
	r.Key.MinReal, r.Key.MaxReal = -maxReal, maxReal
	r.Key.MaxLength = maxLen
	if t.Value != nil {
		v := BaseType{Type: t.Value.Type, MinInteger: minInt, MaxInteger: maxInt, MinReal: -maxReal, MaxReal: maxReal, MaxLength: maxLen}
		r.Value = &v
	}
	return r
}

// uuidEquals returns U when the conditions include "_uuid == U".
func (cs conditions) uuidEquals() (UUID, bool) {
	for _, c := range cs {
		if c.col != nil && c.col.Name == colUUID && c.function == "==" && c.arg.Len() == 1 {
			return c.arg.Keys[0].(UUID), true
		}
	}
	return UUID{}, false
}

// match reports whether r satisfies every condition.
func (cs conditions) match(r *Row) bool {
	for i := range cs {
		if !cs[i].match(r) {
			return false
		}
	}
	return true
}

func (c *condition) match(r *Row) bool {
	if c.constant != nil {
		return *c.constant
	}
	v := r.Cols[c.col.index]
	switch c.function {
	case "==":
		return v.Equal(c.arg)
	case "!=":
		return !v.Equal(c.arg)
	case "includes":
		return v.includes(c.arg)
	case "excludes":
		return v.excludes(c.arg)
	}
	if v.Len() != 1 || c.arg.Len() != 1 {
		return false
	}
	cmp := compareAtoms(v.Keys[0], c.arg.Keys[0])
	switch c.function {
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	}
	return cmp >= 0
}
