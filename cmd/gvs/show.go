package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gvs/internal/ovsdb"
)

// dbView is the part of the database that show prints, indexed by UUID.
type dbView struct {
	ovs        []map[string]any
	bridges    map[string]map[string]any
	ports      map[string]map[string]any
	interfaces map[string]map[string]any
	mirrors    map[string]map[string]any
}

func loadView(remote string) (*dbView, error) {
	c, err := ovsdb.Dial(remote)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	v := &dbView{}
	if v.ovs, err = c.Select("Open_vSwitch", "Open_vSwitch"); err != nil {
		return nil, err
	}
	tables := map[string]*map[string]map[string]any{"Bridge": &v.bridges, "Port": &v.ports, "Interface": &v.interfaces, "Mirror": &v.mirrors}
	for name, dst := range tables {
		rows, err := c.Select("Open_vSwitch", name)
		if err != nil {
			return nil, err
		}
		*dst = map[string]map[string]any{}
		for _, r := range rows {
			(*dst)[uuidOf(r["_uuid"])] = r
		}
	}
	return v, nil
}

// show prints the switch in a form meant for people.
func show(w io.Writer, remote string, color bool) error {
	v, err := loadView(remote)
	if err != nil {
		return err
	}
	p := &printer{w: w, color: color}
	for _, o := range v.ovs {
		p.line(0, "gvs switch, Open vSwitch %s compatible", str(o["ovs_version"]))
		bridges := sortedByName(v.bridges, elems(o["bridges"]))
		if len(bridges) == 0 {
			p.line(1, "no bridges (add one with: ovs-vsctl add-br NAME)")
		}
		for _, b := range bridges {
			showBridge(p, v, b)
		}
	}
	return nil
}

func showBridge(p *printer, v *dbView, b map[string]any) {
	p.line(1, "bridge %s", str(b["name"]))
	portNames := map[string]string{}
	for _, port := range sortedByName(v.ports, elems(b["ports"])) {
		portNames[uuidOf(port["_uuid"])] = str(port["name"])
		showPort(p, v, port)
	}
	for _, m := range sortedByName(v.mirrors, elems(b["mirrors"])) {
		showMirror(p, m, portNames)
	}
}

func showPort(p *printer, v *dbView, port map[string]any) {
	desc := []string{vlanText(port)}
	for _, iu := range elems(port["interfaces"]) {
		ifc := v.interfaces[uuidOf(iu)]
		if ifc == nil {
			continue
		}
		typ := str(ifc["type"])
		if typ == "" {
			typ = "system"
		}
		desc = append(desc, typ)
		if ofp := str(ifc["ofport"]); ofp != "" {
			desc = append(desc, "ofport "+ofp)
		}
		if peer := mapGet(ifc["options"], "peer"); peer != "" {
			desc = append(desc, "peer "+peer)
		}
		if rip := mapGet(ifc["options"], "remote_ip"); rip != "" {
			desc = append(desc, "remote "+rip)
		}
		if e := str(ifc["error"]); e != "" {
			p.line(2, "port %-16s %s", str(port["name"]), strings.Join(nonEmpty(desc), ", "))
			p.errorLine(3, "error: %s", e)
			return
		}
	}
	p.line(2, "port %-16s %s", str(port["name"]), strings.Join(nonEmpty(desc), ", "))
}

func vlanText(port map[string]any) string {
	tag, mode, trunks := str(port["tag"]), str(port["vlan_mode"]), elems(port["trunks"])
	var t []string
	for _, x := range trunks {
		t = append(t, fmt.Sprint(x))
	}
	switch {
	case mode == "" && tag != "":
		return "access vlan " + tag
	case mode == "" || mode == "trunk":
		if len(t) == 0 {
			return "trunk (all vlans)"
		}
		return "trunk vlans " + strings.Join(t, ",")
	}
	s := mode
	if tag != "" {
		s += " native vlan " + tag
	}
	if len(t) > 0 {
		s += ", trunks " + strings.Join(t, ",")
	}
	return s
}

func showMirror(p *printer, m map[string]any, portNames map[string]string) {
	var sel []string
	if b, _ := m["select_all"].(bool); b {
		sel = append(sel, "all")
	}
	for _, col := range []string{"select_src_port", "select_dst_port"} {
		for _, u := range elems(m[col]) {
			sel = append(sel, strings.TrimPrefix(strings.TrimSuffix(col, "_port"), "select_")+" "+portNames[uuidOf(u)])
		}
	}
	if vl := elems(m["select_vlan"]); len(vl) > 0 {
		sel = append(sel, fmt.Sprintf("vlan %v", vl))
	}
	out := "nowhere"
	if o := elems(m["output_port"]); len(o) > 0 {
		out = "port " + portNames[uuidOf(o[0])]
	} else if ov := str(m["output_vlan"]); ov != "" {
		out = "vlan " + ov
	}
	p.line(2, "mirror %s: %s -> %s  (%s packets, %s bytes)", str(m["name"]), strings.Join(sel, ", "), out,
		orZero(mapGet(m["statistics"], "tx_packets")), orZero(mapGet(m["statistics"], "tx_bytes")))
	if out == "nowhere" {
		p.errorLine(3, "error: the mirror has no output_port or output_vlan, so it copies nothing")
	}
}

type printer struct {
	w     io.Writer
	color bool
}

// line prints one line. Its arguments come from the database, which
// anyone allowed to write it fills, so their control characters are
// escaped: a port name must not clear the screen or forge lines.
func (p *printer) line(indent int, format string, args ...any) {
	p.write(indent, fmt.Sprintf(format, escapeArgs(args)...))
}

func (p *printer) errorLine(indent int, format string, args ...any) {
	msg := fmt.Sprintf(format, escapeArgs(args)...)
	if p.color {
		msg = "\x1b[1;31m" + msg + "\x1b[0m"
	}
	p.write(indent, msg)
}

func (p *printer) write(indent int, text string) {
	fmt.Fprintf(p.w, "%s%s\n", strings.Repeat("  ", indent), text)
}

func escapeArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = escape(v)
		case fmt.Stringer, error, []any:
			out[i] = escape(fmt.Sprint(v))
		default:
			out[i] = a
		}
	}
	return out
}

// escape returns s with what a terminal would act on, or what would not
// show, written as Go escapes (\n, \x1b, \u202e): control characters,
// invisible formatting characters and bytes that are not UTF-8. A
// backslash is doubled, so an escape in the output is never ambiguous.
func escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == ' ' || strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || (r != ' ' && !strconv.IsPrint(r)) {
			return true
		}
	}
	return false
}

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

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}
