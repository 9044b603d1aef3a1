package ovsdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// namedUUIDs resolves ["named-uuid", name] references within a transaction.
type namedUUIDs map[string]UUID

// decodeJSON decodes one JSON value keeping numbers exact.
func decodeJSON(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// parseDatum converts the JSON form of a column value into a Datum of type
// t, checking every constraint of the type.
func parseDatum(v any, t *Type, names namedUUIDs) (Datum, error) {
	var keys, values []Atom
	if t.IsMap() {
		pairs, ok := taggedArray(v, "map")
		if !ok {
			return Datum{}, fmt.Errorf("expected a map, got %s", shortJSON(v))
		}
		for _, p := range pairs {
			kv, ok := p.([]any)
			if !ok || len(kv) != 2 {
				return Datum{}, fmt.Errorf("map element must be a [key, value] pair, got %s", shortJSON(p))
			}
			k, err := parseAtom(kv[0], &t.Key, names)
			if err != nil {
				return Datum{}, err
			}
			val, err := parseAtom(kv[1], t.Value, names)
			if err != nil {
				return Datum{}, err
			}
			keys, values = append(keys, k), append(values, val)
		}
		if values == nil {
			values = []Atom{}
		}
	} else if elems, ok := taggedArray(v, "set"); ok {
		for _, e := range elems {
			a, err := parseAtom(e, &t.Key, names)
			if err != nil {
				return Datum{}, err
			}
			keys = append(keys, a)
		}
	} else {
		a, err := parseAtom(v, &t.Key, names)
		if err != nil {
			return Datum{}, err
		}
		keys = []Atom{a}
	}
	if keys == nil {
		keys = []Atom{}
	}
	d, err := normalize(keys, values)
	if err != nil {
		return Datum{}, &Error{Tag: "constraint violation", Details: err.Error()}
	}
	if d.Len() < t.Min || (t.Max >= 0 && d.Len() > t.Max) {
		return Datum{}, &Error{Tag: "constraint violation", Details: fmt.Sprintf("%d values when type requires between %d and %s", d.Len(), t.Min, maxString(t.Max))}
	}
	return d, nil
}

func maxString(m int) string {
	if m < 0 {
		return "unlimited"
	}
	return strconv.Itoa(m)
}

// taggedArray matches ["tag", [elements...]].
func taggedArray(v any, tag string) ([]any, bool) {
	arr, ok := v.([]any)
	if !ok || len(arr) != 2 {
		return nil, false
	}
	if s, ok := arr[0].(string); !ok || s != tag {
		return nil, false
	}
	elems, ok := arr[1].([]any)
	return elems, ok
}

// parseAtom converts one JSON atom and checks it against b's constraints.
func parseAtom(v any, b *BaseType, names namedUUIDs) (Atom, error) {
	a, err := parseAtomType(v, b.Type, names)
	if err != nil {
		return nil, err
	}
	return a, b.check(a)
}

func parseAtomType(v any, t AtomicType, names namedUUIDs) (Atom, error) {
	v = nativeNumber(v)
	switch t {
	case TypeInteger:
		if n, ok := v.(json.Number); ok {
			if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
				return i, nil
			}
		}
	case TypeReal:
		if n, ok := v.(json.Number); ok {
			if f, err := strconv.ParseFloat(string(n), 64); err == nil && isFinite(f) {
				return f, nil
			}
		}
	case TypeBoolean:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case TypeString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case TypeUUID:
		return parseUUIDAtom(v, names)
	}
	return nil, &Error{Tag: "syntax error", Details: fmt.Sprintf("expected %s, got %s", t, shortJSON(v))}
}

// nativeNumber lets in-process callers pass Go numbers where JSON
// decoding would give a json.Number.
func nativeNumber(v any) any {
	switch x := v.(type) {
	case int:
		return json.Number(strconv.Itoa(x))
	case int64:
		return json.Number(strconv.FormatInt(x, 10))
	case float64:
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64))
	}
	return v
}

func parseUUIDAtom(v any, names namedUUIDs) (Atom, error) {
	arr, ok := v.([]any)
	if ok && len(arr) == 2 {
		tag, _ := arr[0].(string)
		s, sok := arr[1].(string)
		switch {
		case tag == "uuid" && sok:
			u, err := ParseUUID(s)
			if err != nil {
				return nil, &Error{Tag: "syntax error", Details: err.Error()}
			}
			return u, nil
		case tag == "named-uuid" && sok:
			if u, ok := names[s]; ok {
				return u, nil
			}
			return nil, &Error{Tag: "syntax error", Details: fmt.Sprintf("named-uuid %q is not defined by an insert in this transaction", s)}
		}
	}
	return nil, &Error{Tag: "syntax error", Details: fmt.Sprintf("expected uuid, got %s", shortJSON(v))}
}

// check verifies a against the base type's constraints.
func (b *BaseType) check(a Atom) error {
	if b.Enum != nil && !b.Enum.Contains(a) {
		return &Error{Tag: "constraint violation", Details: fmt.Sprintf("%s is not one of the allowed values (%s)", atomString(a), enumString(b.Enum))}
	}
	switch x := a.(type) {
	case int64:
		if x < b.MinInteger || x > b.MaxInteger {
			return &Error{Tag: "constraint violation", Details: fmt.Sprintf("%d is not in the valid range %s", x, intRange(b))}
		}
	case float64:
		if x < b.MinReal || x > b.MaxReal {
			return &Error{Tag: "constraint violation", Details: fmt.Sprintf("%g is not in the valid range [%g, %g]", x, b.MinReal, b.MaxReal)}
		}
	case string:
		if !utf8.ValidString(x) {
			return &Error{Tag: "constraint violation", Details: "string is not valid UTF-8"}
		}
		if n := utf8.RuneCountInString(x); n < b.MinLength || n > b.MaxLength {
			return &Error{Tag: "constraint violation", Details: fmt.Sprintf("%s length %d is not in the valid range [%d, %d]", atomString(x), n, b.MinLength, b.MaxLength)}
		}
	}
	return nil
}

// maxQuoted is the longest string an error message quotes whole.
const maxQuoted = 64

func intRange(b *BaseType) string {
	switch {
	case b.MinInteger != math.MinInt64 && b.MaxInteger != math.MaxInt64:
		return fmt.Sprintf("%d to %d (inclusive)", b.MinInteger, b.MaxInteger)
	case b.MinInteger != math.MinInt64:
		return fmt.Sprintf("%d or greater", b.MinInteger)
	}
	return fmt.Sprintf("%d or less", b.MaxInteger)
}

func enumString(d *Datum) string {
	var buf bytes.Buffer
	for i, k := range d.Keys {
		if i > 0 {
			buf.WriteString(", ")
		}
		buf.WriteString(atomString(k))
	}
	return buf.String()
}

// atomString formats an atom for error messages; a long string is cut,
// so that an error never holds a refused value of megabytes.
func atomString(a Atom) string {
	switch x := a.(type) {
	case string:
		if len(x) > maxQuoted {
			return strconv.Quote(x[:maxQuoted]) + fmt.Sprintf("... (%d bytes)", len(x))
		}
		return strconv.Quote(x)
	case UUID:
		return x.String()
	}
	return fmt.Sprint(a)
}

func shortJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// atomJSON returns the JSON form of an atom.
func atomJSON(a Atom) any {
	switch x := a.(type) {
	case UUID:
		return []any{"uuid", x.String()}
	case float64:
		return realJSON(x)
	}
	return a
}

// datumSize is about the length of d's JSON form: exact for the text of
// strings that need no escapes, an upper bound for numbers.
func datumSize(d Datum) int {
	n := 12 // ["set",[...]] or ["map",[...]]
	for _, a := range d.Keys {
		n += atomSize(a) + 1
	}
	for _, a := range d.Values {
		n += atomSize(a) + 3
	}
	return n
}

func atomSize(a Atom) int {
	switch x := a.(type) {
	case string:
		return len(x) + 2
	case UUID:
		return 47 // ["uuid","..."]
	case bool:
		return 5
	}
	return 24 // int64 or float64
}

// realJSON keeps reals looking like reals on the wire, as OVSDB requires a
// real column value to be distinguishable from an integer.
type realJSON float64

func (r realJSON) MarshalJSON() ([]byte, error) {
	f := float64(r)
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return []byte(strconv.FormatFloat(f, 'f', 1, 64)), nil
	}
	return []byte(strconv.FormatFloat(f, 'g', -1, 64)), nil
}

// datumJSON returns the JSON form of a value of a column of type t: a bare
// atom for a single-element set, ["set", [...]] otherwise, ["map", [...]]
// for maps.
func datumJSON(d Datum, t *Type) any {
	if t.IsMap() {
		pairs := make([]any, len(d.Keys))
		for i := range d.Keys {
			pairs[i] = []any{atomJSON(d.Keys[i]), atomJSON(d.Values[i])}
		}
		return []any{"map", pairs}
	}
	if len(d.Keys) == 1 {
		return atomJSON(d.Keys[0])
	}
	elems := make([]any, len(d.Keys))
	for i, k := range d.Keys {
		elems[i] = atomJSON(k)
	}
	return []any{"set", elems}
}

// defaultAtom is the default value of an atomic type.
func defaultAtom(t AtomicType) Atom {
	switch t {
	case TypeInteger:
		return int64(0)
	case TypeReal:
		return float64(0)
	case TypeBoolean:
		return false
	case TypeString:
		return ""
	}
	return UUID{}
}

// defaultDatum is the value a column has when nothing set it.
func defaultDatum(t *Type) Datum {
	if t.Min == 0 {
		d := Datum{Keys: []Atom{}}
		if t.IsMap() {
			d.Values = []Atom{}
		}
		return d
	}
	d := Datum{Keys: []Atom{defaultAtom(t.Key.Type)}}
	if t.IsMap() {
		d.Values = []Atom{defaultAtom(t.Value.Type)}
	}
	return d
}

// Error is an OVSDB error object: {"error": Tag, "details": Details}.
type Error struct {
	Tag     string
	Details string
}

func (e *Error) Error() string {
	if e.Details == "" {
		return e.Tag
	}
	return e.Tag + ": " + e.Details
}

// JSON returns the error object's wire form.
func (e *Error) JSON() map[string]any {
	m := map[string]any{"error": e.Tag}
	if e.Details != "" {
		m["details"] = e.Details
	}
	return m
}

func errorf(tag, format string, args ...any) *Error {
	return &Error{Tag: tag, Details: fmt.Sprintf(format, args...)}
}
