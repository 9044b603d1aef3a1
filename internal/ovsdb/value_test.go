package ovsdb

import (
	"math/rand"
	"testing"
)

func mustType(t *testing.T, text string) *Type {
	t.Helper()
	typ, err := parseType([]byte(text))
	if err != nil {
		t.Fatalf("parseType(%s): %v", text, err)
	}
	return &typ
}

func mustDatum(t *testing.T, typ *Type, text string) Datum {
	t.Helper()
	v, err := decodeJSON([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	d, err := parseDatum(v, typ, nil)
	if err != nil {
		t.Fatalf("parseDatum(%s): %v", text, err)
	}
	return d
}

func TestDatumJSONRoundTrip(t *testing.T) {
	cases := []struct {
		typ, in, out string
	}{
		{`"integer"`, `5`, `5`},
		{`"real"`, `5`, `5.0`},
		{`"real"`, `2.5`, `2.5`},
		{`"boolean"`, `true`, `true`},
		{`"string"`, `"héllo"`, `"héllo"`},
		{`"uuid"`, `["uuid","01234567-89ab-cdef-0123-456789abcdef"]`, `["uuid","01234567-89ab-cdef-0123-456789abcdef"]`},
		// A set of one is written as the bare atom; other sizes as ["set", ...],
		// sorted whatever the input order.
		{`{"key":"integer","min":0,"max":"unlimited"}`, `["set",[3,1,2]]`, `["set",[1,2,3]]`},
		{`{"key":"integer","min":0,"max":"unlimited"}`, `["set",[7]]`, `7`},
		{`{"key":"integer","min":0,"max":"unlimited"}`, `7`, `7`},
		{`{"key":"integer","min":0,"max":"unlimited"}`, `["set",[]]`, `["set",[]]`},
		{`{"key":"string","min":0,"max":1}`, `["set",[]]`, `["set",[]]`},
		{`{"key":"real","min":0,"max":"unlimited"}`, `["set",[1,0.5]]`, `["set",[0.5,1.0]]`},
		{`{"key":"string","value":"integer","min":0,"max":"unlimited"}`, `["map",[["b",2],["a",1]]]`, `["map",[["a",1],["b",2]]]`},
		{`{"key":"string","value":"integer","min":0,"max":"unlimited"}`, `["map",[]]`, `["map",[]]`},
	}
	for _, c := range cases {
		typ := mustType(t, c.typ)
		d := mustDatum(t, typ, c.in)
		jsonIs(t, c.in, datumJSON(d, typ), c.out)
		// The output parses back to an equal datum.
		again := mustDatum(t, typ, mustJSONText(t, datumJSON(d, typ)))
		if !again.Equal(d) {
			t.Errorf("%s: round trip gives %v, want %v", c.in, again, d)
		}
	}
}

func TestParseDatumRejects(t *testing.T) {
	cases := []struct {
		typ, in, tag string
	}{
		{`"integer"`, `1.5`, "syntax error"},
		{`"integer"`, `"1"`, "syntax error"},
		{`"integer"`, `99999999999999999999`, "syntax error"},
		{`"real"`, `true`, "syntax error"},
		{`"uuid"`, `["uuid","not-a-uuid"]`, "syntax error"},
		{`"uuid"`, `["named-uuid","nobody"]`, "syntax error"},
		{`{"key":"integer","min":0,"max":"unlimited"}`, `["set",[1,1]]`, "constraint violation"},
		{`{"key":"string","value":"integer","min":0,"max":"unlimited"}`, `["map",[["a",1],["a",2]]]`, "constraint violation"},
		{`{"key":"string","value":"integer","min":0,"max":"unlimited"}`, `["map",[["a"]]]`, ""},
		{`{"key":"string","value":"integer","min":0,"max":"unlimited"}`, `["set",["a"]]`, ""},
		{`{"key":"string","min":0,"max":2}`, `["set",["a","b","c"]]`, "constraint violation"},
		{`{"key":"string","min":1,"max":2}`, `["set",[]]`, "constraint violation"},
		{`{"key":{"type":"integer","minInteger":0,"maxInteger":10}}`, `11`, "constraint violation"},
		{`{"key":{"type":"integer","minInteger":0,"maxInteger":10}}`, `-1`, "constraint violation"},
		{`{"key":{"type":"real","minReal":0.5}}`, `0.25`, "constraint violation"},
		{`{"key":{"type":"string","minLength":2,"maxLength":3}}`, `"a"`, "constraint violation"},
		{`{"key":{"type":"string","minLength":2,"maxLength":3}}`, `"abcd"`, "constraint violation"},
		{`{"key":{"type":"string","enum":["set",["x","y"]]}}`, `"z"`, "constraint violation"},
		{`{"key":{"type":"integer","enum":7}}`, `8`, "constraint violation"},
	}
	for _, c := range cases {
		typ := mustType(t, c.typ)
		v, err := decodeJSON([]byte(c.in))
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseDatum(v, typ, nil)
		if err == nil {
			t.Errorf("%s as %s: accepted", c.in, c.typ)
			continue
		}
		if c.tag != "" && asError(err).Tag != c.tag {
			t.Errorf("%s as %s: error %v, want tag %q", c.in, c.typ, err, c.tag)
		}
	}
}

func TestEnumAndRangeAccept(t *testing.T) {
	typ := mustType(t, `{"key":{"type":"string","enum":["set",["x","y"]]},"min":0,"max":"unlimited"}`)
	d := mustDatum(t, typ, `["set",["y","x"]]`)
	jsonIs(t, "enum set", datumJSON(d, typ), `["set",["x","y"]]`)
	r := mustType(t, `{"key":{"type":"integer","minInteger":-3,"maxInteger":3}}`)
	mustDatum(t, r, `-3`)
	mustDatum(t, r, `3`)
}

func TestNormalizeSortsAndReportsDuplicates(t *testing.T) {
	d, err := normalize([]Atom{"c", "a", "b"}, []Atom{int64(3), int64(1), int64(2)})
	if err != nil {
		t.Fatal(err)
	}
	jsonIs(t, "keys", d.Keys, `["a","b","c"]`)
	jsonIs(t, "values", d.Values, `[1,2,3]`)
	if _, err := normalize([]Atom{int64(2), int64(1), int64(2)}, nil); err == nil {
		t.Fatal("duplicate set element accepted")
	}
	u1, u2 := UUID{1}, UUID{2}
	d, _ = normalize([]Atom{u2, u1}, nil)
	if d.Keys[0] != u1 {
		t.Fatalf("uuids not sorted: %v", d.Keys)
	}
	d, _ = normalize([]Atom{true, false}, nil)
	if d.Keys[0] != false {
		t.Fatalf("booleans not sorted: %v", d.Keys)
	}
}

func TestDiffAndApplyDiff(t *testing.T) {
	set := mustType(t, `{"key":"integer","min":0,"max":"unlimited"}`)
	m := mustType(t, `{"key":"string","value":"string","min":0,"max":"unlimited"}`)
	cases := []struct {
		typ            *Type
		old, new, diff string
	}{
		{set, `["set",[1,2,3]]`, `["set",[2,3,4]]`, `["set",[1,4]]`},
		{set, `["set",[]]`, `["set",[5,6]]`, `["set",[5,6]]`},
		{set, `["set",[5,6]]`, `["set",[]]`, `["set",[5,6]]`},
		{set, `["set",[1]]`, `["set",[1]]`, `["set",[]]`},
		// Maps: removed keys carry their old value, added and changed keys
		// their new value.
		{m, `["map",[["a","1"],["b","2"],["c","3"]]]`, `["map",[["b","2"],["c","30"],["d","4"]]]`,
			`["map",[["a","1"],["c","30"],["d","4"]]]`},
		{m, `["map",[]]`, `["map",[["k","v"]]]`, `["map",[["k","v"]]]`},
	}
	for _, c := range cases {
		o, n := mustDatum(t, c.typ, c.old), mustDatum(t, c.typ, c.new)
		delta := o.diff(n)
		jsonIs(t, c.old+" -> "+c.new, datumJSON(delta, c.typ), c.diff)
		if got := o.applyDiff(delta); !got.Equal(n) {
			t.Errorf("%s applyDiff(%s) = %v, want %v", c.old, c.diff, got, n)
		}
	}
}

func TestDiffApplyDiffRandom(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	randSet := func() Datum {
		var keys []Atom
		for i := 0; i < 6; i++ {
			if rng.Intn(2) == 0 {
				keys = append(keys, int64(i))
			}
		}
		d, _ := normalize(append([]Atom{}, keys...), nil)
		return d
	}
	randMap := func() Datum {
		var keys, vals []Atom
		for i := 0; i < 6; i++ {
			if rng.Intn(2) == 0 {
				keys = append(keys, int64(i))
				vals = append(vals, int64(rng.Intn(3)))
			}
		}
		d, _ := normalize(append([]Atom{}, keys...), append([]Atom{}, vals...))
		return d
	}
	for i := 0; i < 500; i++ {
		a, b := randSet(), randSet()
		if got := a.applyDiff(a.diff(b)); !got.Equal(b) {
			t.Fatalf("set %v -> %v: applyDiff gives %v", a.Keys, b.Keys, got.Keys)
		}
		x, y := randMap(), randMap()
		if got := x.applyDiff(x.diff(y)); !got.Equal(y) {
			t.Fatalf("map %v:%v -> %v:%v: applyDiff gives %v:%v", x.Keys, x.Values, y.Keys, y.Values, got.Keys, got.Values)
		}
	}
}

func TestIncludesExcludes(t *testing.T) {
	set := mustType(t, `{"key":"integer","min":0,"max":"unlimited"}`)
	m := mustType(t, `{"key":"string","value":"string","min":0,"max":"unlimited"}`)
	keys := mustType(t, `{"key":"string","min":0,"max":"unlimited"}`)
	s123 := mustDatum(t, set, `["set",[1,2,3]]`)
	mab := mustDatum(t, m, `["map",[["a","1"],["b","2"]]]`)
	cases := []struct {
		name               string
		d, o               Datum
		includes, excludes bool
	}{
		{"subset", s123, mustDatum(t, set, `["set",[1,3]]`), true, false},
		{"empty", s123, mustDatum(t, set, `["set",[]]`), true, true},
		{"partly", s123, mustDatum(t, set, `["set",[3,4]]`), false, false},
		{"disjoint", s123, mustDatum(t, set, `["set",[4,5]]`), false, true},
		{"map same pair", mab, mustDatum(t, m, `["map",[["a","1"]]]`), true, false},
		// A key with another value is neither included nor excluded.
		{"map other value", mab, mustDatum(t, m, `["map",[["a","9"]]]`), false, true},
		{"map absent key", mab, mustDatum(t, m, `["map",[["z","1"]]]`), false, true},
		{"map by keys", mab, mustDatum(t, keys, `["set",["b"]]`), true, false},
	}
	for _, c := range cases {
		if got := c.d.includes(c.o); got != c.includes {
			t.Errorf("%s: includes = %v, want %v", c.name, got, c.includes)
		}
		if got := c.d.excludes(c.o); got != c.excludes {
			t.Errorf("%s: excludes = %v, want %v", c.name, got, c.excludes)
		}
	}
}

func TestUnionSubtract(t *testing.T) {
	m := mustType(t, `{"key":"string","value":"string","min":0,"max":"unlimited"}`)
	keys := mustType(t, `{"key":"string","min":0,"max":"unlimited"}`)
	mab := mustDatum(t, m, `["map",[["a","1"],["b","2"]]]`)
	// Insert keeps the existing value of a key already present.
	jsonIs(t, "union", datumJSON(mab.union(mustDatum(t, m, `["map",[["a","X"],["c","3"]]]`)), m),
		`["map",[["a","1"],["b","2"],["c","3"]]]`)
	// Delete by pairs removes only exact pairs; by keys removes the key.
	jsonIs(t, "subtract pairs", datumJSON(mab.subtract(mustDatum(t, m, `["map",[["a","X"],["b","2"]]]`)), m),
		`["map",[["a","1"]]]`)
	jsonIs(t, "subtract keys", datumJSON(mab.subtract(mustDatum(t, keys, `["set",["a","zz"]]`)), m),
		`["map",[["b","2"]]]`)
	empty := mab.subtract(mab)
	if !empty.IsMap() || empty.Len() != 0 {
		t.Fatalf("map minus itself = %#v, want an empty map", empty)
	}
}

func TestUUIDParseFormat(t *testing.T) {
	for i := 0; i < 20; i++ {
		u := NewUUID()
		p, err := ParseUUID(u.String())
		if err != nil || p != u {
			t.Fatalf("ParseUUID(%s) = %v, %v", u, p, err)
		}
		if u[6]>>4 != 4 || u[8]>>6 != 2 {
			t.Fatalf("%s is not a version 4 UUID", u)
		}
	}
	for _, bad := range []string{"", "01234567-89ab-cdef-0123-456789abcde", "0123456789ab-cdef-0123-456789abcdef0",
		"0123456x-89ab-cdef-0123-456789abcdef", "01234567_89ab_cdef_0123_456789abcdef"} {
		if _, err := ParseUUID(bad); err == nil {
			t.Errorf("ParseUUID(%q) accepted", bad)
		}
	}
}

func TestRealJSONStaysReal(t *testing.T) {
	for f, want := range map[float64]string{1: "1.0", -2: "-2.0", 0.5: "0.5", 1e20: "1e+20", 123456.25: "123456.25"} {
		if got := mustJSONText(t, atomJSON(f)); got != want {
			t.Errorf("real %v encodes as %s, want %s", f, got, want)
		}
	}
}

func TestParseSchemaErrors(t *testing.T) {
	bad := []string{
		`{"name":"1bad","tables":{}}`,
		`{"name":"T","tables":{"t":{"columns":{"_x":{"type":"integer"}}}}}`,
		`{"name":"T","tables":{"t":{"columns":{"x":{"type":"nosuch"}}}}}`,
		`{"name":"T","tables":{"t":{"columns":{"x":{"type":{"key":{"type":"uuid","refTable":"Nope"}}}}}}}`,
		`{"name":"T","tables":{"t":{"columns":{"x":{"type":{"key":"integer","min":2,"max":3}}}}}}`,
		`{"name":"T","tables":{"t":{"maxRows":0,"columns":{"x":{"type":"integer"}}}}}`,
		`{"name":"T","tables":{"t":{"columns":{"x":{"type":"integer"}},"indexes":[["y"]]}}}`,
		`{"name":"T","tables":{"t":{"columns":{"x":{"type":"integer","ephemeral":true}},"indexes":[["x"]]}}}`,
		`{"name":"T","tables":{"t":{"columns":{"x":{"type":{"key":{"type":"string","enum":["set",[1]]}}}}}}}`,
		`{"name":"T","tables":{"t":{"columns":{"x":{"type":{"key":{"type":"uuid","refTable":"t","refType":"soft"}}}}}}}`,
	}
	for _, s := range bad {
		if _, err := ParseSchema([]byte(s)); err == nil {
			t.Errorf("ParseSchema accepted %s", s)
		}
	}
	s := testSchema(t)
	root := s.Tables["Root"]
	if !root.IsRoot || s.Tables["Child"].IsRoot || s.Tables["Config"].MaxRows != 1 {
		t.Fatalf("isRoot/maxRows misparsed")
	}
	if len(root.Indexes) != 1 || root.Indexes[0][0].Name != "name" {
		t.Fatalf("indexes misparsed: %v", root.Indexes)
	}
	if root.ByName["serial"].Mutable || !root.ByName["n"].Mutable || !root.ByName["status"].Ephemeral {
		t.Fatalf("mutable/ephemeral misparsed")
	}
	if root.ByName["watch"].Type.Key.Strong || !root.ByName["kids"].Type.Key.Strong {
		t.Fatalf("refType misparsed")
	}
	last := root.Columns[len(root.Columns)-2:]
	if last[0].Name != colUUID || last[1].Name != colVersion {
		t.Fatalf("_uuid and _version are not the last columns")
	}
	// A schema with no isRoot anywhere makes every table a root.
	old, err := ParseSchema([]byte(`{"name":"T","tables":{"a":{"columns":{"x":{"type":"integer"}}}}}`))
	if err != nil || !old.Tables["a"].IsRoot {
		t.Fatalf("old-style schema: %v, root %v", err, old != nil && old.Tables["a"].IsRoot)
	}
}
