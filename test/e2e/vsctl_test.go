package e2e

import (
	"regexp"
	"strings"
	"testing"
)

// s1Mirror is the S1 mirror command (docs/GUIDE.md, "SPAN").
var s1Mirror = []string{"--", "--id=@p2", "get", "port", "p2", "--", "--id=@p3", "get", "port", "p3",
	"--", "--id=@m", "create", "mirror", "name=m0", "select-dst-port=@p2", "output-port=@p3",
	"--", "set", "bridge", "mtest", "mirrors=@m"}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestVsctlAcceptance runs the ovs-vsctl sequence, once waiting for
// the switch to apply each change and once with --no-wait.
func TestVsctlAcceptance(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	for _, mode := range []string{"wait", "no-wait"} {
		t.Run(mode, func(t *testing.T) {
			g := StartGvsd(t)
			vsctl := func(args ...string) string {
				t.Helper()
				if mode == "no-wait" {
					args = append([]string{"--no-wait"}, args...)
				}
				return g.MustVsctl(args...)
			}
			runAcceptance(t, g, vsctl)
		})
	}
}

func runAcceptance(t *testing.T, g *Gvsd, vsctl func(...string) string) {
	vsctl("init")
	vsctl("add-br", "mtest")
	for _, p := range []string{"p1", "p2", "p3"} {
		vsctl("add-port", "mtest", p, "--", "set", "interface", p, "type=internal")
	}
	vsctl("set", "port", "p1", "tag=10")
	vsctl("set", "port", "p2", "tag=10")
	if got := strings.TrimSpace(vsctl("get", "port", "p1", "tag")); got != "10" {
		t.Fatalf("get port p1 tag = %q, want 10", got)
	}
	if got := strings.Fields(vsctl("list-ports", "mtest")); strings.Join(got, ",") != "p1,p2,p3" {
		t.Fatalf("list-ports = %v", got)
	}

	mirror := strings.TrimSpace(vsctl(s1Mirror...))
	if !uuidRE.MatchString(mirror) {
		t.Fatalf("create mirror printed %q, want a UUID", mirror)
	}
	list := vsctl("list", "mirror")
	p2 := strings.TrimSpace(vsctl("get", "port", "p2", "_uuid"))
	p3 := strings.TrimSpace(vsctl("get", "port", "p3", "_uuid"))
	for _, want := range []string{"name                : m0", "select_dst_port     : [" + p2 + "]", "output_port         : " + p3, "select_all          : false"} {
		if !strings.Contains(list, want) {
			t.Errorf("list mirror lacks %q:\n%s", want, list)
		}
	}
	if br := vsctl("list", "Bridge", "mtest"); !strings.Contains(br, "mirrors             : ["+mirror+"]") {
		t.Errorf("list Bridge mtest does not show the mirror:\n%s", br)
	}
	show := vsctl("show")
	for _, want := range []string{"Bridge mtest", "Port p1", "tag: 10", "Interface p3", "type: internal", "ovs_version"} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}
	cols := vsctl("--columns=name,select_all", "list", "mirror")
	if strings.Contains(cols, "output_port") || !strings.Contains(cols, "select_all          : false") {
		t.Errorf("--columns=name,select_all list mirror:\n%s", cols)
	}
	if found := vsctl("--bare", "--columns=name", "find", "port", "tag=10"); strings.Join(strings.Fields(found), ",") != "p1,p2" && strings.Join(strings.Fields(found), ",") != "p2,p1" {
		t.Errorf("find port tag=10 = %q", found)
	}
	vsctl("wait-until", "port", "p1", "tag=10")

	// Clearing the bridge's mirrors leaves the Mirror row unreferenced: it
	// is garbage collected.
	vsctl("clear", "bridge", "mtest", "mirrors")
	if out := vsctl("list", "mirror"); strings.TrimSpace(out) != "" {
		t.Errorf("mirror not collected after clear:\n%s", out)
	}

	// Remove a mirror by reference.
	vsctl(s1Mirror...)
	vsctl("--", "--id=@rec", "get", "Mirror", "m0", "--", "remove", "Bridge", "mtest", "mirrors", "@rec")
	if out := vsctl("list", "mirror"); strings.TrimSpace(out) != "" {
		t.Errorf("mirror still there after remove:\n%s", out)
	}

	// Deleting the output port empties the mirror's weak reference.
	vsctl(s1Mirror...)
	vsctl("del-port", "mtest", "p3")
	if out := strings.TrimSpace(vsctl("get", "mirror", "m0", "output_port")); out != "[]" {
		t.Errorf("output_port after del-port = %q, want []", out)
	}
	if out := strings.TrimSpace(vsctl("get", "mirror", "m0", "select_dst_port")); out != "["+p2+"]" {
		t.Errorf("select_dst_port changed: %q", out)
	}

	vsctl("del-br", "mtest")
	if out := strings.TrimSpace(vsctl("list-br")); out != "" {
		t.Errorf("list-br after del-br = %q", out)
	}
	for _, table := range []string{"Port", "Interface", "Mirror"} {
		if out := strings.TrimSpace(vsctl("list", table)); out != "" {
			t.Errorf("%s rows left after del-br:\n%s", table, out)
		}
	}
}

// TestVsctlFailures checks that errors are reported as the real
// ovsdb-server reports them, and that they change nothing.
func TestVsctlFailures(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "mtest")
	g.MustVsctl("add-port", "mtest", "p1", "--", "set", "interface", "p1", "type=internal")
	before := g.MustVsctl("show")

	if msg := g.FailVsctl("add-br", "mtest"); !strings.Contains(msg, "a bridge named mtest already exists") {
		t.Errorf("add-br of an existing bridge: %q", msg)
	}
	if msg := g.FailVsctl("set", "port", "p1", "tag=5000"); !strings.Contains(msg, "constraint violation") || !strings.Contains(msg, "5000") {
		t.Errorf("tag out of range: %q", msg)
	}
	missing := "6f3b1e8a-0000-4000-8000-000000000001"
	if msg := g.FailVsctl("set", "bridge", "mtest", "mirrors="+missing); !strings.Contains(msg, "referential integrity violation") && !strings.Contains(msg, "no row") {
		t.Errorf("reference to a missing row: %q", msg)
	}
	if msg := g.FailVsctl("set", "port", "p1", "nosuchcolumn=1"); msg == "" {
		t.Errorf("unknown column gave no message")
	}
	if after := g.MustVsctl("show"); after != before {
		t.Errorf("failed commands changed the database:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestVsctlSetsOfport checks that the switch acknowledges configurations:
// interfaces get OpenFlow port numbers (the bridge's own port is 65534).
func TestVsctlSetsOfport(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "mtest")
	g.MustVsctl("add-port", "mtest", "p1", "--", "set", "interface", "p1", "type=internal", "ofport_request=7")
	g.MustVsctl("add-port", "mtest", "p2", "--", "set", "interface", "p2", "type=internal")
	for iface, want := range map[string]string{"mtest": "65534", "p1": "7", "p2": "1"} {
		if got := strings.TrimSpace(g.MustVsctl("get", "interface", iface, "ofport")); got != want {
			t.Errorf("ofport of %s = %s, want %s", iface, got, want)
		}
	}
	cur := strings.TrimSpace(g.MustVsctl("get", "Open_vSwitch", ".", "cur_cfg"))
	next := strings.TrimSpace(g.MustVsctl("get", "Open_vSwitch", ".", "next_cfg"))
	if cur != next || cur == "0" {
		t.Errorf("cur_cfg %s, next_cfg %s: want equal and non-zero", cur, next)
	}
}
