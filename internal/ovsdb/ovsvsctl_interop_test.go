package ovsdb_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gvs/internal/ovsdb"
)

// TestOVSToolsInterop drives the server with the real ovs-vsctl and
// ovsdb-client, when they are installed.
func TestOVSToolsInterop(t *testing.T) {
	vsctl, err := exec.LookPath("ovs-vsctl")
	if err != nil {
		t.Skip("ovs-vsctl not installed")
	}
	s := vsSchema(t)
	db, err := ovsdb.OpenDB(filepath.Join(t.TempDir(), "conf.db"), s)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ovsdb.NewServer(db)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sock := filepath.Join(t.TempDir(), "db.sock")
	if _, err := srv.Listen("punix:" + sock); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		full := append([]string{"--db=unix:" + sock, "--no-wait", "--timeout=10"}, args...)
		out, err := exec.Command(vsctl, full...).CombinedOutput()
		if err != nil {
			t.Fatalf("ovs-vsctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	start := time.Now()
	run("init")
	run("add-br", "br0")
	run("add-port", "br0", "p1", "--", "set", "Interface", "p1", "type=internal")
	run("add-port", "br0", "p2")
	run("--", "--id=@p", "get", "Port", "p1", "--", "--id=@m", "create", "Mirror", "name=m0", "select-all=true", "output-port=@p",
		"--", "add", "Bridge", "br0", "mirrors", "@m")
	out := run("show")
	for _, want := range []string{"Bridge br0", "Port p1", "Port p2", "type: internal"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(run("list-ports", "br0")); got != "p1\np2" {
		t.Errorf("list-ports = %q", got)
	}
	run("set", "Bridge", "br0", "other_config:hwaddr=00:11:22:33:44:55")
	if got := strings.TrimSpace(run("get", "Bridge", "br0", "other_config:hwaddr")); got != `"00:11:22:33:44:55"` {
		t.Errorf("get other_config = %q", got)
	}
	run("del-port", "br0", "p1")
	if got := strings.TrimSpace(run("get", "Mirror", "m0", "output_port")); got != "[]" {
		t.Errorf("mirror output_port after del-port = %q", got)
	}
	run("del-br", "br0")
	for _, table := range []string{"Bridge", "Port", "Interface", "Mirror"} {
		if n := db.RowCount(table); n != 0 {
			t.Errorf("after del-br, %s has %d rows", table, n)
		}
	}
	cmd := exec.Command(vsctl, "--db=unix:"+sock, "--no-wait", "--timeout=10", "add-br", "br0", "--", "add-br", "br0")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Errorf("duplicate add-br succeeded: %s", out)
	}
	if client, err := exec.LookPath("ovsdb-client"); err == nil {
		out, err := exec.Command(client, "--timeout=10", "list-dbs", "unix:"+sock).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Open_vSwitch") || !strings.Contains(string(out), "_Server") {
			t.Errorf("ovsdb-client list-dbs: %v\n%s", err, out)
		}
		out, err = exec.Command(client, "--timeout=10", "dump", "unix:"+sock, "Open_vSwitch", "Open_vSwitch").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Open_vSwitch table") {
			t.Errorf("ovsdb-client dump: %v\n%s", err, out)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("ovs-vsctl commands took %v", d)
	}
}

// TestOVSVsctlLargeTransaction: one ovs-vsctl command that adds a bridge
// with thousands of ports sends a request far over the size from which
// requests are read one at a time; it must work with the default limits.
func TestOVSVsctlLargeTransaction(t *testing.T) {
	vsctl, err := exec.LookPath("ovs-vsctl")
	if err != nil {
		t.Skip("ovs-vsctl not installed")
	}
	db, err := ovsdb.OpenDB(filepath.Join(t.TempDir(), "conf.db"), vsSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ovsdb.NewServer(db)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sock := filepath.Join(t.TempDir(), "db.sock")
	if _, err := srv.Listen("punix:" + sock); err != nil {
		t.Fatal(err)
	}
	const ports = 2000
	args := []string{"--db=unix:" + sock, "--no-wait", "--timeout=60", "init", "--", "add-br", "br0"}
	for i := 0; i < ports; i++ {
		args = append(args, "--", "add-port", "br0", fmt.Sprintf("p%d", i),
			"--", "set", "Interface", fmt.Sprintf("p%d", i), "type=internal", fmt.Sprintf("external_ids:n=%d", i))
	}
	if out, err := exec.Command(vsctl, args...).CombinedOutput(); err != nil {
		t.Fatalf("ovs-vsctl with %d ports: %v\n%s", ports, err, out)
	}
	if n := db.RowCount("Port"); n != ports+1 {
		t.Fatalf("%d ports, want %d", n, ports+1)
	}
}
