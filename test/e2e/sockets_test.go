package e2e

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An extra punix: remote that names a live ovsdb-server's socket must not
// take it over: gvsd refuses to start, says why, and the other server
// keeps serving on its socket.
func TestExtraPunixRemoteSparesLiveServer(t *testing.T) {
	requireTool(t, "ovsdb-tool", "ovsdb-server", "ovsdb-client")
	dir := t.TempDir()
	db, sock := filepath.Join(dir, "other.db"), filepath.Join(dir, "other.sock")
	if out, err := exec.Command("ovsdb-tool", "create", db, gvsyOVSSchema).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v\n%s", err, out)
	}
	other := exec.Command("ovsdb-server", db, "--remote=punix:"+sock,
		"--unixctl="+filepath.Join(dir, "other.ctl"), "--no-chdir")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	waitSocketListening(t, sock)

	rundir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	gvsd := exec.CommandContext(ctx, gvsdBin, "-rundir", rundir, "-db", filepath.Join(rundir, "conf.db"), "-remote", "punix:"+sock)
	var log bytes.Buffer
	gvsd.Stdout, gvsd.Stderr = &log, &log
	err := gvsd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gvsd kept running with another server's socket as a remote; log:\n%s", log.String())
	}
	if err == nil || !strings.Contains(log.String(), "another process is listening") {
		t.Fatalf("gvsd: %v, want a refusal naming the live socket; log:\n%s", err, log.String())
	}
	out, err := exec.Command("ovsdb-client", "--timeout=5", "list-dbs", "unix:"+sock).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Open_vSwitch") {
		t.Fatalf("the other server lost its socket: %v\n%s", err, out)
	}
	if _, err := os.Lstat(filepath.Join(rundir, "db.sock")); !os.IsNotExist(err) {
		t.Errorf("gvsd left its db.sock behind: %v", err)
	}
}

func waitSocketListening(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("%s did not open within 10s", path)
}
