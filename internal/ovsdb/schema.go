package ovsdb

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
)

// AtomicType names one of the five OVSDB atomic types.
type AtomicType string

// The atomic types of RFC 7047.
const (
	TypeInteger AtomicType = "integer"
	TypeReal    AtomicType = "real"
	TypeBoolean AtomicType = "boolean"
	TypeString  AtomicType = "string"
	TypeUUID    AtomicType = "uuid"
)

// BaseType is an atomic type with its constraints.
type BaseType struct {
	Type       AtomicType
	Enum       *Datum // allowed values, nil for any
	MinInteger int64
	MaxInteger int64
	MinReal    float64
	MaxReal    float64
	MinLength  int
	MaxLength  int
	RefTable   string // for uuid: the table referred to
	Strong     bool   // for uuid with RefTable: refType strong (the default)
}

// Type is a column's type: a set of keys, or a map from keys to values,
// with between Min and Max elements (Max < 0 means unlimited).
type Type struct {
	Key   BaseType
	Value *BaseType
	Min   int
	Max   int
}

// IsMap reports whether the type is a map.
func (t *Type) IsMap() bool { return t.Value != nil }

// IsScalar reports whether the column always holds exactly one atom.
func (t *Type) IsScalar() bool { return t.Min == 1 && t.Max == 1 }

// isComposite reports whether the column may hold more than one value.
// An update2 "modify" carries such a column's difference, and any other
// column's (optional ones included) new value, as OVS encodes and
// applies it.
func (t *Type) isComposite() bool { return t.Max < 0 || t.Max > 1 }

// Column describes one column of a table.
type Column struct {
	Name      string
	Type      Type
	Ephemeral bool
	Mutable   bool
	index     int // position in a Row's Cols
}

// Index returns the column's position in Row.Cols.
func (c *Column) Index() int { return c.index }

// Table describes one table.
type Table struct {
	Name    string
	Columns []*Column // user columns in schema order, then _uuid and _version
	ByName  map[string]*Column
	MaxRows int // 0 for unlimited
	IsRoot  bool
	Indexes [][]*Column
}

// Schema is a database schema.
type Schema struct {
	Name    string
	Version string
	Cksum   string
	Tables  map[string]*Table
	JSON    json.RawMessage // the schema as the server sends it in get_schema
}

// Row columns _uuid and _version are always the last two of Columns.
const (
	colUUID    = "_uuid"
	colVersion = "_version"
)

var idPattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

type schemaJSON struct {
	Name    string                     `json:"name"`
	Version string                     `json:"version"`
	Cksum   string                     `json:"cksum,omitempty"`
	Tables  map[string]json.RawMessage `json:"tables"`
}

type tableJSON struct {
	Columns map[string]json.RawMessage `json:"columns"`
	MaxRows *int                       `json:"maxRows"`
	IsRoot  *bool                      `json:"isRoot"`
	Indexes [][]string                 `json:"indexes"`
}

type columnJSON struct {
	Type      json.RawMessage `json:"type"`
	Ephemeral bool            `json:"ephemeral"`
	Mutable   *bool           `json:"mutable"`
}

// ParseSchema parses an OVSDB schema in the JSON form of RFC 7047.
func ParseSchema(data []byte) (*Schema, error) {
	var sj schemaJSON
	if err := json.Unmarshal(data, &sj); err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	if !idPattern.MatchString(sj.Name) {
		return nil, fmt.Errorf("schema: invalid database name %q", sj.Name)
	}
	s := &Schema{Name: sj.Name, Version: sj.Version, Cksum: sj.Cksum, Tables: map[string]*Table{}}
	// Tables that are not root tables exist only when referenced; a schema
	// without isRoot anywhere (version < 1.1 style) treats all as roots.
	anyRoot := false
	for _, raw := range sj.Tables {
		var tj tableJSON
		if json.Unmarshal(raw, &tj) == nil && tj.IsRoot != nil {
			anyRoot = true
		}
	}
	for name, raw := range sj.Tables {
		t, err := parseTable(name, raw, !anyRoot)
		if err != nil {
			return nil, fmt.Errorf("schema: table %q: %w", name, err)
		}
		s.Tables[name] = t
	}
	if err := s.checkRefs(); err != nil {
		return nil, err
	}
	s.JSON = append(json.RawMessage(nil), data...)
	return s, nil
}

func parseTable(name string, raw json.RawMessage, rootByDefault bool) (*Table, error) {
	if !idPattern.MatchString(name) || name[0] == '_' && name != "_Server" {
		return nil, fmt.Errorf("invalid table name")
	}
	var tj tableJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return nil, err
	}
	t := &Table{Name: name, ByName: map[string]*Column{}, IsRoot: rootByDefault}
	if tj.IsRoot != nil {
		t.IsRoot = *tj.IsRoot
	}
	if tj.MaxRows != nil {
		if *tj.MaxRows < 1 {
			return nil, fmt.Errorf("maxRows must be at least 1")
		}
		t.MaxRows = *tj.MaxRows
	}
	names := make([]string, 0, len(tj.Columns))
	for cn := range tj.Columns {
		names = append(names, cn)
	}
	sort.Strings(names)
	for _, cn := range names {
		if !idPattern.MatchString(cn) || cn[0] == '_' {
			return nil, fmt.Errorf("invalid column name %q", cn)
		}
		c, err := parseColumn(cn, tj.Columns[cn])
		if err != nil {
			return nil, fmt.Errorf("column %q: %w", cn, err)
		}
		t.addColumn(c)
	}
	t.addColumn(&Column{Name: colUUID, Type: Type{Key: BaseType{Type: TypeUUID}, Min: 1, Max: 1}})
	t.addColumn(&Column{Name: colVersion, Type: Type{Key: BaseType{Type: TypeUUID}, Min: 1, Max: 1}})
	for _, idx := range tj.Indexes {
		cols, err := t.parseIndex(idx)
		if err != nil {
			return nil, err
		}
		t.Indexes = append(t.Indexes, cols)
	}
	return t, nil
}

func (t *Table) addColumn(c *Column) {
	c.index = len(t.Columns)
	t.Columns = append(t.Columns, c)
	t.ByName[c.Name] = c
}

func (t *Table) parseIndex(names []string) ([]*Column, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("index must have at least one column")
	}
	var cols []*Column
	for _, n := range names {
		c, ok := t.ByName[n]
		if !ok || n == colUUID || n == colVersion {
			return nil, fmt.Errorf("index: unknown column %q", n)
		}
		if c.Ephemeral {
			return nil, fmt.Errorf("index: ephemeral column %q cannot be indexed", n)
		}
		cols = append(cols, c)
	}
	return cols, nil
}

func parseColumn(name string, raw json.RawMessage) (*Column, error) {
	var cj columnJSON
	if err := json.Unmarshal(raw, &cj); err != nil {
		return nil, err
	}
	if cj.Type == nil {
		return nil, fmt.Errorf("missing type")
	}
	t, err := parseType(cj.Type)
	if err != nil {
		return nil, err
	}
	c := &Column{Name: name, Type: t, Ephemeral: cj.Ephemeral, Mutable: true}
	if cj.Mutable != nil {
		c.Mutable = *cj.Mutable
	}
	return c, nil
}

type typeJSON struct {
	Key   json.RawMessage `json:"key"`
	Value json.RawMessage `json:"value"`
	Min   *int            `json:"min"`
	Max   json.RawMessage `json:"max"`
}

func parseType(raw json.RawMessage) (Type, error) {
	var t Type
	var simple string
	if json.Unmarshal(raw, &simple) == nil {
		b, err := parseBaseType(raw)
		return Type{Key: b, Min: 1, Max: 1}, err
	}
	var tj typeJSON
	if err := json.Unmarshal(raw, &tj); err != nil {
		return t, fmt.Errorf("invalid type: %w", err)
	}
	if tj.Key == nil {
		return t, fmt.Errorf("type lacks key")
	}
	var err error
	if t.Key, err = parseBaseType(tj.Key); err != nil {
		return t, err
	}
	if tj.Value != nil {
		v, err := parseBaseType(tj.Value)
		if err != nil {
			return t, err
		}
		t.Value = &v
	}
	t.Min, t.Max = 1, 1
	if tj.Min != nil {
		t.Min = *tj.Min
	}
	if tj.Max != nil {
		var s string
		var n int
		switch {
		case json.Unmarshal(tj.Max, &s) == nil && s == "unlimited":
			t.Max = -1
		case json.Unmarshal(tj.Max, &n) == nil && n >= 1:
			t.Max = n
		default:
			return t, fmt.Errorf("invalid max %s", tj.Max)
		}
	}
	if t.Min < 0 || t.Min > 1 || (t.Max >= 0 && t.Max < t.Min) {
		return t, fmt.Errorf("invalid min/max %d/%d", t.Min, t.Max)
	}
	return t, nil
}

type baseTypeJSON struct {
	Type       AtomicType      `json:"type"`
	Enum       json.RawMessage `json:"enum"`
	MinInteger *int64          `json:"minInteger"`
	MaxInteger *int64          `json:"maxInteger"`
	MinReal    *float64        `json:"minReal"`
	MaxReal    *float64        `json:"maxReal"`
	MinLength  *int            `json:"minLength"`
	MaxLength  *int            `json:"maxLength"`
	RefTable   string          `json:"refTable"`
	RefType    string          `json:"refType"`
}

func parseBaseType(raw json.RawMessage) (BaseType, error) {
	b := BaseType{MinInteger: math.MinInt64, MaxInteger: math.MaxInt64,
		MinReal: -math.MaxFloat64, MaxReal: math.MaxFloat64, MaxLength: math.MaxInt32, Strong: true}
	var simple string
	if json.Unmarshal(raw, &simple) == nil {
		b.Type = AtomicType(simple)
		return b, checkAtomicType(b.Type)
	}
	var bj baseTypeJSON
	if err := json.Unmarshal(raw, &bj); err != nil {
		return b, fmt.Errorf("invalid base type: %w", err)
	}
	b.Type = bj.Type
	if err := checkAtomicType(b.Type); err != nil {
		return b, err
	}
	if bj.MinInteger != nil {
		b.MinInteger = *bj.MinInteger
	}
	if bj.MaxInteger != nil {
		b.MaxInteger = *bj.MaxInteger
	}
	if bj.MinReal != nil {
		b.MinReal = *bj.MinReal
	}
	if bj.MaxReal != nil {
		b.MaxReal = *bj.MaxReal
	}
	if bj.MinLength != nil {
		b.MinLength = *bj.MinLength
	}
	if bj.MaxLength != nil {
		b.MaxLength = *bj.MaxLength
	}
	b.RefTable = bj.RefTable
	switch bj.RefType {
	case "", "strong":
	case "weak":
		b.Strong = false
	default:
		return b, fmt.Errorf("invalid refType %q", bj.RefType)
	}
	if bj.Enum != nil {
		plain := b
		plain.Enum = nil
		enumType := Type{Key: plain, Min: 0, Max: -1}
		v, err := decodeJSON(bj.Enum)
		if err != nil {
			return b, fmt.Errorf("enum: %w", err)
		}
		d, err := parseDatum(v, &enumType, nil)
		if err != nil {
			return b, fmt.Errorf("enum: %w", err)
		}
		b.Enum = &d
	}
	return b, nil
}

func checkAtomicType(t AtomicType) error {
	switch t {
	case TypeInteger, TypeReal, TypeBoolean, TypeString, TypeUUID:
		return nil
	}
	return fmt.Errorf("unknown atomic type %q", t)
}

func (s *Schema) checkRefs() error {
	for _, t := range s.Tables {
		for _, c := range t.Columns {
			for _, b := range []*BaseType{&c.Type.Key, c.Type.Value} {
				if b == nil || b.RefTable == "" {
					continue
				}
				if _, ok := s.Tables[b.RefTable]; !ok {
					return fmt.Errorf("schema: table %q column %q refers to undefined table %q", t.Name, c.Name, b.RefTable)
				}
			}
		}
	}
	return nil
}

// refs lists the columns of t that refer to other rows, with the base type
// (key or value) that carries the reference.
func (t *Table) refs() []refColumn {
	var out []refColumn
	for _, c := range t.Columns {
		if c.Type.Key.RefTable != "" {
			out = append(out, refColumn{c, &c.Type.Key, false})
		}
		if c.Type.Value != nil && c.Type.Value.RefTable != "" {
			out = append(out, refColumn{c, c.Type.Value, true})
		}
	}
	return out
}

type refColumn struct {
	col     *Column
	base    *BaseType
	inValue bool
}

// Unconstrained limits, used for values that are only compared.
const (
	minInt  = math.MinInt64
	maxInt  = math.MaxInt64
	maxReal = math.MaxFloat64
	maxLen  = math.MaxInt32
)
