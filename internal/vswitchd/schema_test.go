package vswitchd

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// referenceSchemaPath is where Debian's openvswitch-common installs the
// schema of the OVS release we are a drop-in for.
const referenceSchemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// extraColumns lists the columns we add on top of the reference schema.
var extraColumns = map[string][]string{"Mirror": {"filter"}}

// extraTables lists the tables we add: gvs span sessions (issue 13). OVS
// clients ignore tables their own schema does not name.
var extraTables = []string{"Span"}

type schemaFile struct {
	Name    string                `json:"name"`
	Version string                `json:"version"`
	Tables  map[string]tableEntry `json:"tables"`
}

type tableEntry struct {
	Columns map[string]columnEntry `json:"columns"`
	IsRoot  bool                   `json:"isRoot"`
	MaxRows int                    `json:"maxRows"`
	Indexes [][]string             `json:"indexes"`
}

type columnEntry struct {
	Type      json.RawMessage `json:"type"`
	Ephemeral bool            `json:"ephemeral"`
	Mutable   *bool           `json:"mutable"`
}

func decodeSchema(t *testing.T, what string, data []byte) schemaFile {
	t.Helper()
	var s schemaFile
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return s
}

func TestSchemaHeader(t *testing.T) {
	s := decodeSchema(t, "embedded schema", SchemaJSON)
	if s.Name != SchemaName {
		t.Errorf("schema name = %q, want %q", s.Name, SchemaName)
	}
	if s.Version != "8.3.1" {
		t.Errorf("schema version = %q, want 8.3.1", s.Version)
	}
	if len(s.Tables) == 0 {
		t.Fatal("schema has no tables")
	}
}

func TestSchemaMirrorFilter(t *testing.T) {
	s := decodeSchema(t, "embedded schema", SchemaJSON)
	col, ok := s.Tables["Mirror"].Columns["filter"]
	if !ok {
		t.Fatal("Mirror.filter column missing")
	}
	got := normalizeType(t, "Mirror.filter", col.Type)
	want := normalizeType(t, "want", json.RawMessage(`{"key":{"type":"string"},"min":0,"max":1}`))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Mirror.filter type = %v, want %v", got, want)
	}
}

// TestSchemaMatchesInstalledOVS checks every table and column of the
// installed OVS schema against ours, since any difference would make
// ovs-vsctl refuse or warn that the database needs upgrade.
func TestSchemaMatchesInstalledOVS(t *testing.T) {
	refData, err := os.ReadFile(referenceSchemaPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s not installed", referenceSchemaPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	ref := decodeSchema(t, referenceSchemaPath, refData)
	ours := decodeSchema(t, "embedded schema", SchemaJSON)
	if ours.Name != ref.Name {
		t.Errorf("name = %q, reference has %q", ours.Name, ref.Name)
	}
	for name, refTable := range ref.Tables {
		ourTable, ok := ours.Tables[name]
		if !ok {
			t.Errorf("table %s missing", name)
			continue
		}
		compareTable(t, name, ourTable, refTable)
	}
	for name, ourTable := range ours.Tables {
		refTable, ok := ref.Tables[name]
		if !ok {
			if !slices.Contains(extraTables, name) {
				t.Errorf("table %s is not in the reference schema", name)
			}
			continue
		}
		for col := range ourTable.Columns {
			_, inRef := refTable.Columns[col]
			if !inRef && !slices.Contains(extraColumns[name], col) {
				t.Errorf("column %s.%s is not in the reference schema", name, col)
			}
			if inRef && slices.Contains(extraColumns[name], col) {
				t.Errorf("column %s.%s is listed as extra but the reference has it", name, col)
			}
		}
	}
	for table, cols := range extraColumns {
		for _, col := range cols {
			if _, ok := ours.Tables[table].Columns[col]; !ok {
				t.Errorf("extra column %s.%s missing", table, col)
			}
		}
	}
}

func compareTable(t *testing.T, name string, ours, ref tableEntry) {
	t.Helper()
	if ours.IsRoot != ref.IsRoot {
		t.Errorf("table %s: isRoot = %v, reference has %v", name, ours.IsRoot, ref.IsRoot)
	}
	if ours.MaxRows != ref.MaxRows {
		t.Errorf("table %s: maxRows = %d, reference has %d", name, ours.MaxRows, ref.MaxRows)
	}
	if got, want := normalizeIndexes(ours.Indexes), normalizeIndexes(ref.Indexes); !reflect.DeepEqual(got, want) {
		t.Errorf("table %s: indexes = %v, reference has %v", name, got, want)
	}
	for col, refCol := range ref.Columns {
		ourCol, ok := ours.Columns[col]
		if !ok {
			t.Errorf("column %s.%s missing", name, col)
			continue
		}
		compareColumn(t, name+"."+col, ourCol, refCol)
	}
}

func compareColumn(t *testing.T, what string, ours, ref columnEntry) {
	t.Helper()
	got, want := normalizeType(t, what, ours.Type), normalizeType(t, what+" (reference)", ref.Type)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("column %s: type = %v, reference has %v", what, got, want)
	}
	if ours.Ephemeral != ref.Ephemeral {
		t.Errorf("column %s: ephemeral = %v, reference has %v", what, ours.Ephemeral, ref.Ephemeral)
	}
	if isMutable(ours) != isMutable(ref) {
		t.Errorf("column %s: mutable = %v, reference has %v", what, isMutable(ours), isMutable(ref))
	}
}

// isMutable applies RFC 7047's default: columns are mutable unless marked.
func isMutable(c columnEntry) bool { return c.Mutable == nil || *c.Mutable }

// normalizeIndexes makes index comparison ignore column and index order,
// which carry no meaning.
func normalizeIndexes(indexes [][]string) [][]string {
	out := make([][]string, 0, len(indexes))
	for _, idx := range indexes {
		out = append(out, slices.Sorted(slices.Values(idx)))
	}
	sort.Slice(out, func(i, j int) bool { return slices.Compare(out[i], out[j]) < 0 })
	return out
}

// normalizeType turns any of RFC 7047's spellings of a column type into one
// map form: shorthand strings expanded, min/max defaults filled in and enum
// sets sorted, so equal types compare equal with reflect.DeepEqual.
func normalizeType(t *testing.T, what string, raw json.RawMessage) map[string]any {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("column %s: type: %v", what, err)
	}
	typ, ok := v.(map[string]any)
	if !ok {
		typ = map[string]any{"key": v}
	}
	out := map[string]any{"min": float64(1), "max": float64(1)}
	for k, val := range typ {
		out[k] = val
	}
	for _, k := range []string{"key", "value"} {
		if b, ok := out[k]; ok {
			out[k] = normalizeBase(b)
		}
	}
	return out
}

func normalizeBase(b any) any {
	base, ok := b.(map[string]any)
	if !ok {
		return map[string]any{"type": b}
	}
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	if enum, ok := out["enum"]; ok {
		out["enum"] = normalizeEnum(enum)
	}
	return out
}

// normalizeEnum sorts an enum's atoms; a lone atom is a one-element set.
func normalizeEnum(enum any) []string {
	var atoms []any
	if pair, ok := enum.([]any); ok && len(pair) == 2 && pair[0] == "set" {
		atoms, _ = pair[1].([]any)
	} else {
		atoms = []any{enum}
	}
	out := make([]string, 0, len(atoms))
	for _, a := range atoms {
		s, _ := json.Marshal(a)
		out = append(out, string(s))
	}
	sort.Strings(out)
	return out
}
