package ovsdb

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"sort"
	"strings"
)

// UUID is an OVSDB row identifier.
type UUID [16]byte

// NewUUID returns a random (version 4) UUID.
func NewUUID() UUID {
	var u UUID
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

// String formats u in the canonical 8-4-4-4-12 form.
func (u UUID) String() string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return string(b[:])
}

// ParseUUID parses the canonical form of a UUID.
func ParseUUID(s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, fmt.Errorf("%q is not a valid UUID", s)
	}
	h := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("%q is not a valid UUID", s)
	}
	return u, nil
}

// Atom is one scalar value. Its dynamic type is int64, float64, bool,
// string or UUID, as its column's atomic type says.
type Atom any

// Datum is the value of one column: a set of atoms, or a map from atoms to
// atoms. Keys are sorted and unique; Values is nil for a set and parallel to
// Keys for a map. A Datum is never modified once built, so rows can share
// them between snapshots.
type Datum struct {
	Keys   []Atom
	Values []Atom
}

// IsMap reports whether d is a map.
func (d Datum) IsMap() bool { return d.Values != nil }

// Len is the number of elements.
func (d Datum) Len() int { return len(d.Keys) }

// compareAtoms orders atoms of the same type as OVSDB does.
func compareAtoms(a, b Atom) int {
	switch x := a.(type) {
	case int64:
		y := b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case string:
		return strings.Compare(x, b.(string))
	case UUID:
		y := b.(UUID)
		return bytes.Compare(x[:], y[:])
	}
	return 0
}

// atomsEqual reports whether two atoms of the same type are equal.
func atomsEqual(a, b Atom) bool { return compareAtoms(a, b) == 0 }

// Equal reports whether two datums hold the same elements.
func (d Datum) Equal(o Datum) bool {
	if len(d.Keys) != len(o.Keys) || d.IsMap() != o.IsMap() {
		return false
	}
	for i := range d.Keys {
		if !atomsEqual(d.Keys[i], o.Keys[i]) {
			return false
		}
		if d.Values != nil && !atomsEqual(d.Values[i], o.Values[i]) {
			return false
		}
	}
	return true
}

// find returns the index of key in d, or -1.
func (d Datum) find(key Atom) int {
	i := sort.Search(len(d.Keys), func(i int) bool { return compareAtoms(d.Keys[i], key) >= 0 })
	if i < len(d.Keys) && atomsEqual(d.Keys[i], key) {
		return i
	}
	return -1
}

// Contains reports whether the set or map d has key.
func (d Datum) Contains(key Atom) bool { return d.find(key) >= 0 }

// normalize sorts d by key. It reports the first duplicated key, if any.
func normalize(keys, values []Atom) (Datum, error) {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return compareAtoms(keys[idx[a]], keys[idx[b]]) < 0 })
	d := Datum{Keys: make([]Atom, len(keys))}
	if values != nil {
		d.Values = make([]Atom, len(keys))
	}
	for i, j := range idx {
		d.Keys[i] = keys[j]
		if values != nil {
			d.Values[i] = values[j]
		}
		if i > 0 && atomsEqual(d.Keys[i-1], d.Keys[i]) {
			return d, fmt.Errorf("%s contains duplicate value", datumKind(values != nil))
		}
	}
	return d, nil
}

func datumKind(isMap bool) string {
	if isMap {
		return "map"
	}
	return "set"
}

// union returns d with the elements of o added (for maps, keys already in d
// keep their value, as the "insert" mutator requires).
func (d Datum) union(o Datum) Datum {
	keys := append([]Atom(nil), d.Keys...)
	var values []Atom
	if d.IsMap() {
		values = append([]Atom{}, d.Values...)
	}
	for i, k := range o.Keys {
		if d.find(k) >= 0 {
			continue
		}
		keys = append(keys, k)
		if values != nil {
			values = append(values, o.Values[i])
		}
	}
	r, _ := normalize(keys, values)
	return r
}

// subtract removes o's elements from d. For a map d, o may be a set of keys
// or a map whose key-value pairs are removed only where both match.
func (d Datum) subtract(o Datum) Datum {
	r := Datum{Keys: []Atom{}}
	if d.IsMap() {
		r.Values = []Atom{}
	}
	for i, k := range d.Keys {
		j := o.find(k)
		if j >= 0 && (!o.IsMap() || !d.IsMap() || atomsEqual(o.Values[j], d.Values[i])) {
			continue
		}
		r.Keys = append(r.Keys, k)
		if d.IsMap() {
			r.Values = append(r.Values, d.Values[i])
		}
	}
	return r
}

// includes reports whether every element of o is in d (for maps, with the
// same value).
func (d Datum) includes(o Datum) bool {
	for i, k := range o.Keys {
		j := d.find(k)
		if j < 0 {
			return false
		}
		if o.IsMap() && d.IsMap() && !atomsEqual(o.Values[i], d.Values[j]) {
			return false
		}
	}
	return true
}

// excludes reports whether no element of o is in d.
func (d Datum) excludes(o Datum) bool {
	for i, k := range o.Keys {
		j := d.find(k)
		if j < 0 {
			continue
		}
		if !o.IsMap() || !d.IsMap() || atomsEqual(o.Values[i], d.Values[j]) {
			return false
		}
	}
	return true
}

// diff returns the update2 "modify" encoding of a change from d to n: the
// elements in exactly one of them; for maps, changed keys carry the new
// value.
func (d Datum) diff(n Datum) Datum {
	var keys, values []Atom
	isMap := d.IsMap() || n.IsMap()
	for i, k := range d.Keys {
		j := n.find(k)
		if j < 0 {
			keys = append(keys, k)
			if isMap {
				values = append(values, d.Values[i])
			}
		}
	}
	for i, k := range n.Keys {
		j := d.find(k)
		if j >= 0 && (!isMap || atomsEqual(d.Values[j], n.Values[i])) {
			continue
		}
		keys = append(keys, k)
		if isMap {
			values = append(values, n.Values[i])
		}
	}
	if keys == nil {
		keys = []Atom{}
	}
	if isMap && values == nil {
		values = []Atom{}
	}
	r, _ := normalize(keys, values)
	return r
}

// applyDiff is the inverse of diff, used by tests and by clients.
func (d Datum) applyDiff(delta Datum) Datum {
	var keys, values []Atom
	for i, k := range d.Keys {
		if delta.find(k) < 0 {
			keys = append(keys, k)
			if d.IsMap() {
				values = append(values, d.Values[i])
			}
		}
	}
	for i, k := range delta.Keys {
		j := d.find(k)
		if j >= 0 && (!d.IsMap() || atomsEqual(d.Values[j], delta.Values[i])) {
			continue // removed
		}
		keys = append(keys, k)
		if delta.IsMap() {
			values = append(values, delta.Values[i])
		}
	}
	if keys == nil {
		keys = []Atom{}
	}
	if (d.IsMap() || delta.IsMap()) && values == nil {
		values = []Atom{}
	}
	r, _ := normalize(keys, values)
	return r
}

// isFinite guards reals from JSON, which cannot carry NaN or infinities.
func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
