package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// Helpers over OVSDB's JSON encoding of values.

// elems returns the elements of a set value (a bare atom is a set of one).
func elems(v any) []any {
	if a, ok := v.([]any); ok && len(a) == 2 {
		if a[0] == "set" {
			s, _ := a[1].([]any)
			return s
		}
		if a[0] == "map" {
			return nil
		}
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// str formats a scalar or optional value; empty for an empty set.
func str(v any) string {
	e := elems(v)
	if len(e) != 1 {
		return ""
	}
	switch x := e[0].(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case []any:
		return uuidOf(x)
	}
	return fmt.Sprint(e[0])
}

func uuidOf(v any) string {
	if a, ok := v.([]any); ok && len(a) == 2 && a[0] == "uuid" {
		s, _ := a[1].(string)
		return s
	}
	return ""
}

func mapGet(v any, key string) string {
	a, ok := v.([]any)
	if !ok || len(a) != 2 || a[0] != "map" {
		return ""
	}
	pairs, _ := a[1].([]any)
	for _, p := range pairs {
		kv, _ := p.([]any)
		if len(kv) == 2 && kv[0] == key {
			return str(kv[1])
		}
	}
	return ""
}

func sortedByName(rows map[string]map[string]any, refs []any) []map[string]any {
	var out []map[string]any
	for _, r := range refs {
		if row := rows[uuidOf(r)]; row != nil {
			out = append(out, row)
		}
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i]["name"]) < str(out[j]["name"]) })
	return out
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// num returns an integer value, or nil for an empty optional value or
// anything that is not an integer.
func num(v any) *int64 {
	s := str(v)
	if s == "" {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return nil
	}
	return &n
}

// nums returns the integer elements of a set; others are left out.
func nums(v any) []int64 {
	out := []int64{}
	for _, e := range elems(v) {
		if n := num(e); n != nil {
			out = append(out, *n)
		}
	}
	return out
}

// strMap returns a map value with its keys and values formatted by str.
func strMap(v any) map[string]string {
	out := map[string]string{}
	a, ok := v.([]any)
	if !ok || len(a) != 2 || a[0] != "map" {
		return out
	}
	pairs, _ := a[1].([]any)
	for _, p := range pairs {
		if kv, _ := p.([]any); len(kv) == 2 {
			out[str(kv[0])] = str(kv[1])
		}
	}
	return out
}

// optString is nil for an empty string, so JSON says null.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
