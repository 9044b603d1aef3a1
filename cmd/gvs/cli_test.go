package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"gvs/internal/ovsdb"
	"gvs/internal/vswitchd"
)

// serveDB serves an in-memory Open_vSwitch database on a unix socket,
// filled by one transaction, and returns its remote.
func serveDB(t *testing.T, ops ...any) string {
	t.Helper()
	schema, err := ovsdb.ParseSchema(vswitchd.SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ovsdb.NewServer(ovsdb.NewDB(schema, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	remote := "unix:" + filepath.Join(t.TempDir(), "db.sock")
	if _, err := srv.Listen("p" + remote); err != nil {
		t.Fatal(err)
	}
	if len(ops) > 0 {
		c, err := ovsdb.Dial(remote)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := transact(c, ops); err != nil {
			t.Fatalf("filling the database: %v", err)
		}
	}
	return remote
}

func insert(table, name string, row map[string]any) any {
	return map[string]any{"op": "insert", "table": table, "uuid-name": name, "row": row}
}

// switchOps is a switch with one bridge: an access port, a trunk port
// whose interface has an error, a patch port, and two mirrors, one of
// which copies nowhere.
func switchOps(withProblems bool) []any {
	ifcErr := []any{"set", []any{}}
	if withProblems {
		ifcErr = ovsSet("could not open network device p2 (No such device)")
	}
	mirrors := ovsSet(namedRef("m1"))
	if withProblems {
		mirrors = ovsSet(namedRef("m1"), namedRef("m2"))
	}
	return []any{
		insert("Interface", "i1", map[string]any{"name": "p1", "type": "internal", "ofport": 1}),
		insert("Interface", "i2", map[string]any{"name": "p2", "ofport": -1, "error": ifcErr}),
		insert("Interface", "i3", map[string]any{"name": "patch0", "type": "patch", "ofport": 3,
			"options": ovsMap(ovsPair("peer", "patch1"))}),
		insert("Port", "p1", map[string]any{"name": "p1", "interfaces": namedRef("i1"), "tag": 10}),
		insert("Port", "p2", map[string]any{"name": "p2", "interfaces": namedRef("i2"), "trunks": ovsSet(20, 30)}),
		insert("Port", "p3", map[string]any{"name": "patch0", "interfaces": namedRef("i3"),
			"vlan_mode": "native-untagged", "tag": 5}),
		insert("Mirror", "m1", map[string]any{"name": "m1", "select_src_port": namedRef("p1"),
			"select_dst_port": namedRef("p1"), "select_vlan": ovsSet(10), "output_port": namedRef("p2"),
			"statistics": ovsMap([]any{"tx_packets", 7}, []any{"tx_bytes", 700})}),
		insert("Mirror", "m2", map[string]any{"name": "m2", "select_all": true}),
		insert("Bridge", "b", map[string]any{"name": "br0",
			"ports": ovsSet(namedRef("p1"), namedRef("p2"), namedRef("p3")), "mirrors": mirrors}),
		insert("Open_vSwitch", "o", map[string]any{"bridges": namedRef("b"), "ovs_version": "3.1.0"}),
	}
}

// gvsRun runs gvs in-process and returns its exit status and output.
func gvsRun(t *testing.T, env map[string]string, tty bool, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdout: &out, stderr: &errOut, stdoutTTY: tty, getenv: func(k string) string { return env[k] }}
	code := run(args, a)
	return code, out.String(), errOut.String()
}

func TestArgumentErrors(t *testing.T) {
	// Nothing listens here: a usage error must be found before gvs
	// connects, and give status 2, not 1.
	db := "--db=unix:" + filepath.Join(t.TempDir(), "none.sock")
	for _, c := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{}, "missing command"},
		{[]string{"junk"}, `unknown command "junk"`},
		{[]string{"show", "junk"}, `unexpected argument "junk"`},
		{[]string{"show", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"show", "--json=maybe"}, "--json"},
		{[]string{"--color=sometimes", "show"}, "want auto, always or never"},
		{[]string{"show", "--color"}, "needs an argument"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"capture", "br0"}, "--port PORT is required"},
		{[]string{"capture", "br0", "--port", "p1", "--color=pink"}, "want auto, always or never"},
		{[]string{"capture", "br0", "--port", "p1", "--db"}, "needs an argument"},
	} {
		code, out, errOut := gvsRun(t, nil, false, append([]string{db}, c.args...)...)
		if code != exitUsageErr || !strings.Contains(errOut, c.want) || !strings.Contains(strings.ToLower(errOut), "usage:") {
			t.Errorf("gvs %q: exit %d, stderr %q; want exit 2, %q and the usage", c.args, code, errOut, c.want)
		}
		if out != "" {
			t.Errorf("gvs %q printed on stdout: %q", c.args, out)
		}
	}
}

func TestSubcommandHelp(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-h"}, "Available Commands"},
		{[]string{"show", "-h"}, "--json"},
		{[]string{"show", "--help"}, "exits with status 1"},
		{[]string{"version", "-h"}, "--json"},
		{[]string{"capture", "-h"}, "usage: gvs capture BRIDGE --port PORT"},
		{[]string{"help", "capture"}, "usage: gvs capture BRIDGE --port PORT"},
		{[]string{"completion", "-h"}, "bash"},
	} {
		code, out, errOut := gvsRun(t, nil, false, c.args...)
		if code != exitOK || !strings.Contains(out, c.want) || errOut != "" {
			t.Errorf("gvs %q: exit %d, stdout %q, stderr %q; want exit 0 and %q on stdout", c.args, code, out, errOut, c.want)
		}
	}
}

func TestShowExitStatus(t *testing.T) {
	ok := serveDB(t, switchOps(false)...)
	code, out, errOut := gvsRun(t, nil, false, "--db", ok, "show")
	if code != exitOK || errOut != "" || strings.Contains(out, "error") {
		t.Errorf("show without problems: exit %d, stderr %q:\n%s", code, errOut, out)
	}
	bad := serveDB(t, switchOps(true)...)
	for _, args := range [][]string{{"show"}, {"show", "--json"}} {
		code, out, errOut = gvsRun(t, nil, false, append([]string{"--db", bad}, args...)...)
		if code != exitFailure || !strings.Contains(errOut, "2 problems") || !strings.Contains(out, "could not open network device p2") {
			t.Errorf("gvs %q with an interface error and a mirror to nowhere: exit %d, stderr %q:\n%s", args, code, errOut, out)
		}
	}
	code, _, errOut = gvsRun(t, nil, false, "--db", "unix:"+filepath.Join(t.TempDir(), "none.sock"), "show")
	if code != exitFailure || !strings.Contains(errOut, "cannot connect") || strings.Contains(errOut, "Usage") {
		t.Errorf("show with no gvsd: exit %d, stderr %q; want 1 and why, without usage", code, errOut)
	}
}

func TestShowText(t *testing.T) {
	code, out, _ := gvsRun(t, nil, false, "--db", serveDB(t, switchOps(true)...), "show")
	want := `gvs switch, Open vSwitch 3.1.0 compatible
  bridge br0
    port p1               access vlan 10, internal, ofport 1
    port p2               trunk vlans 20,30, system, ofport -1
      error: could not open network device p2 (No such device)
    port patch0           native-untagged native vlan 5, patch, ofport 3, peer patch1
    mirror m1: src p1, dst p1, vlan [10] -> port p2  (7 packets, 700 bytes)
    mirror m2: all -> nowhere  (0 packets, 0 bytes)
      error: the mirror has no output_port or output_vlan, so it copies nothing
`
	if code != exitFailure || out != want {
		t.Errorf("exit %d, output:\n%s\nwant:\n%s", code, out, want)
	}
}

// TestShowJSONShape decodes gvs show --json and checks the documented
// shape: every key of every object, and the values.
func TestShowJSONShape(t *testing.T) {
	code, out, _ := gvsRun(t, nil, true, "--color=always", "--db", serveDB(t, switchOps(true)...), "show", "--json")
	if code != exitFailure {
		t.Errorf("exit %d, want 1 (problems)", code)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("colour in JSON: %q", out)
	}
	var doc map[string]any
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		t.Fatalf("not one JSON document (%v):\n%s", err, out)
	}
	keys := func(where string, v any, want ...string) map[string]any {
		t.Helper()
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: %T, want an object", where, v)
		}
		var got []string
		for k := range m {
			got = append(got, k)
		}
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s keys %v, want %v", where, got, want)
		}
		return m
	}
	list := func(v any) []any { l, _ := v.([]any); return l }
	keys("document", doc, "ovs_version", "bridges", "spans", "problems")
	br := keys("bridge", list(doc["bridges"])[0], "name", "ports", "mirrors")
	ports := list(br["ports"])
	if len(ports) != 3 {
		t.Fatalf("%d ports, want 3", len(ports))
	}
	portKeys := []string{"name", "vlan_mode", "tag", "trunks", "interfaces"}
	ifcKeys := []string{"name", "type", "ofport", "options", "error"}
	p1, p2, p3 := keys("port", ports[0], portKeys...), keys("port", ports[1], portKeys...), keys("port", ports[2], portKeys...)
	i1 := keys("interface", list(p1["interfaces"])[0], ifcKeys...)
	i2 := keys("interface", list(p2["interfaces"])[0], ifcKeys...)
	i3 := keys("interface", list(p3["interfaces"])[0], ifcKeys...)
	mirrorKeys := []string{"name", "select", "output_port", "output_vlan", "statistics", "error"}
	selectKeys := []string{"all", "src_ports", "dst_ports", "vlans", "filter"}
	m1 := keys("mirror", list(br["mirrors"])[0], mirrorKeys...)
	m2 := keys("mirror", list(br["mirrors"])[1], mirrorKeys...)
	s1 := keys("select", m1["select"], selectKeys...)
	for _, p := range list(doc["problems"]) {
		keys("problem", p, "bridge", "kind", "name", "error")
	}
	n := json.Number.String
	checks := []struct {
		what      string
		got, want any
	}{
		{"ovs_version", doc["ovs_version"], "3.1.0"},
		{"p1 vlan", []any{p1["name"], p1["vlan_mode"], n(p1["tag"].(json.Number)), p1["trunks"]}, []any{"p1", "access", "10", []any{}}},
		{"p2 vlan", []any{p2["vlan_mode"], p2["tag"], len(list(p2["trunks"]))}, []any{"trunk", nil, 2}},
		{"p3 vlan", []any{p3["vlan_mode"], n(p3["tag"].(json.Number))}, []any{"native-untagged", "5"}},
		{"i1", []any{i1["name"], i1["type"], n(i1["ofport"].(json.Number)), i1["error"], i1["options"]},
			[]any{"p1", "internal", "1", nil, map[string]any{}}},
		{"i2", []any{i2["type"], n(i2["ofport"].(json.Number)), i2["error"]},
			[]any{"system", "-1", "could not open network device p2 (No such device)"}},
		{"i3 options", i3["options"], map[string]any{"peer": "patch1"}},
		{"m1", []any{m1["name"], m1["output_port"], m1["output_vlan"], m1["error"]}, []any{"m1", "p2", nil, nil}},
		{"m1 select", []any{s1["all"], s1["src_ports"], s1["dst_ports"], n(list(s1["vlans"])[0].(json.Number)), s1["filter"]},
			[]any{false, []any{"p1"}, []any{"p1"}, "10", nil}},
		{"m1 statistics", m1["statistics"], map[string]any{"tx_packets": json.Number("7"), "tx_bytes": json.Number("700")}},
		{"m2", []any{m2["output_port"], m2["error"], m2["statistics"]}, []any{nil,
			"the mirror has no output_port or output_vlan, so it copies nothing",
			map[string]any{"tx_packets": json.Number("0"), "tx_bytes": json.Number("0")}}},
		{"problems", doc["problems"], []any{
			map[string]any{"bridge": "br0", "kind": "interface", "name": "p2", "error": "could not open network device p2 (No such device)"},
			map[string]any{"bridge": "br0", "kind": "mirror", "name": "m2", "error": "the mirror has no output_port or output_vlan, so it copies nothing"},
		}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %#v, want %#v", c.what, c.got, c.want)
		}
	}
}

func TestShowJSONEmpty(t *testing.T) {
	code, out, _ := gvsRun(t, nil, false, "--db", serveDB(t, insert("Open_vSwitch", "o", map[string]any{})), "show", "--json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitOK {
		t.Fatalf("exit %d, %v:\n%s", code, err, out)
	}
	if !reflect.DeepEqual(doc["bridges"], []any{}) || !reflect.DeepEqual(doc["problems"], []any{}) {
		t.Errorf("empty switch: %s; want [] (not null) for bridges and problems", out)
	}
}

func TestUseColor(t *testing.T) {
	for _, c := range []struct {
		mode string
		env  map[string]string
		tty  bool
		want bool
	}{
		{"auto", nil, true, true},
		{"auto", nil, false, false},
		{"auto", map[string]string{"NO_COLOR": "1"}, true, false},
		{"auto", map[string]string{"NO_COLOR": ""}, true, true},
		{"auto", map[string]string{"TERM": "dumb"}, true, false},
		{"always", map[string]string{"NO_COLOR": "1"}, false, true},
		{"never", nil, true, false},
	} {
		if got := useColor(c.mode, func(k string) string { return c.env[k] }, c.tty); got != c.want {
			t.Errorf("useColor(%s, %v, tty=%v) = %v, want %v", c.mode, c.env, c.tty, got, c.want)
		}
	}
}

// TestShowColor runs show with each colour setting and checks whether the
// error line is coloured.
func TestShowColor(t *testing.T) {
	remote := serveDB(t, switchOps(true)...)
	noColor := map[string]string{"NO_COLOR": "1"}
	for _, c := range []struct {
		env  map[string]string
		tty  bool
		args []string
		want bool
	}{
		{nil, true, nil, true},
		{nil, false, nil, false},
		{noColor, true, nil, false},
		{noColor, true, []string{"--color=always"}, true},
		{nil, false, []string{"--color", "always"}, true},
		{nil, true, []string{"--color=never"}, false},
		{nil, true, []string{"--color=auto"}, true},
	} {
		code, out, _ := gvsRun(t, c.env, c.tty, append([]string{"--db", remote, "show"}, c.args...)...)
		if got := strings.Contains(out, "\x1b[1;31merror: could not open"); got != c.want || code != exitFailure {
			t.Errorf("env %v tty %v %q: coloured %v, want %v (exit %d):\n%q", c.env, c.tty, c.args, got, c.want, code, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "__start_gvs", "zsh": "#compdef gvs", "fish": "complete -c gvs"} {
		code, out, errOut := gvsRun(t, nil, false, "completion", shell)
		if code != exitOK || !strings.Contains(out, want) || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, stderr %q, script lacks %q or __complete:\n%.300s", shell, code, errOut, want, out)
		}
	}
	// The scripts ask gvs itself (gvs __complete ARGS...) for the words.
	remote := serveDB(t, switchOps(false)...)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{""}, []string{"show", "capture", "version", "completion"}},
		{[]string{"show", "--"}, []string{"--json"}},
		{[]string{"--color", ""}, []string{"auto", "always", "never"}},
		{[]string{"--db", remote, "capture", ""}, []string{"br0"}},
		{[]string{"--db", remote, "capture", "br0", "--port", ""}, []string{"p1", "p2", "patch0"}},
		{[]string{"capture", "--db", remote, "br0", "--direction", ""}, []string{"in", "out", "both"}},
		{[]string{"capture", "br0", "--"}, []string{"--port", "--filter", "-w"}},
	} {
		code, out, errOut := gvsRun(t, nil, false, append([]string{"__complete"}, c.args...)...)
		words := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			word, _, _ := strings.Cut(line, "\t")
			words[word] = true
		}
		for _, w := range c.want {
			if code != exitOK || !words[w] {
				t.Errorf("gvs __complete %q: exit %d, stderr %q, no %q in:\n%s", c.args, code, errOut, w, out)
			}
		}
	}
}

func TestTakeGlobalFlags(t *testing.T) {
	a := &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	root := newRoot(a)
	capture, _, err := root.Find([]string{"capture"})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := takeGlobalFlags(capture, []string{"br0", "--db", "unix:/x", "--filter", "--db", "--color=never", "-port", "p1", "--", "--db"})
	want := []string{"br0", "--filter", "--db", "-port", "p1", "--", "--db"}
	if err != nil || !slices.Equal(rest, want) || a.remote != "unix:/x" || a.colorFlag != "never" {
		t.Errorf("rest %q, %v, remote %q, color %q; want %q, unix:/x, never", rest, err, a.remote, a.colorFlag, want)
	}
}
