package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unitLine is the value of the first "key=" line of a unit file.
func unitLine(t *testing.T, unit, key string) string {
	t.Helper()
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, key+"="); ok {
			return v
		}
	}
	t.Fatalf("unit file has no %s=", key)
	return ""
}

// TestSystemdUnitAndLogrotate checks packaging/gvsd.service with
// systemd-analyze, runs its ExecStart command line as systemd would
// (NOTIFY_SOCKET, its Environment= moved into temporary directories) and
// waits for READY=1, then rotates the log with gvsd.logrotate's
// postrotate script.
func TestSystemdUnitAndLogrotate(t *testing.T) {
	requireTool(t, "systemd-analyze")
	unitBytes, err := os.ReadFile("../../packaging/gvsd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.ReplaceAll(string(unitBytes), "/usr/sbin/gvsd", gvsdBin)
	dir := t.TempDir()
	unitPath := filepath.Join(dir, "gvsd.service")
	if err := os.WriteFile(unitPath, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", unitPath).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	if unitLine(t, unit, "Type") != "notify" {
		t.Fatal("the unit is not Type=notify")
	}

	rundir, logdir := t.TempDir(), t.TempDir()
	notify := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	argv := strings.Fields(unitLine(t, unit, "ExecStart"))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify,
		"OVS_RUNDIR="+rundir, "OVS_DBDIR="+rundir, "OVS_LOGDIR="+logdir)
	var console bytes.Buffer
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
	}()
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 64)
	if n, err := conn.Read(buf); err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("readiness: %q, %v; console:\n%s", buf[:n], err, console.String())
	}
	logFile := filepath.Join(logdir, "ovs-vswitchd.log")
	if pid := daemonPid(t, filepath.Join(rundir, "ovs-vswitchd.pid")); pid != cmd.Process.Pid {
		t.Fatalf("pidfile holds %d, gvsd is %d", pid, cmd.Process.Pid)
	}

	// logrotate: move the file, run postrotate with the test's run
	// directory, and see gvsd write to a new file.
	rotate, err := os.ReadFile("../../packaging/gvsd.logrotate")
	if err != nil {
		t.Fatal(err)
	}
	_, script, _ := strings.Cut(string(rotate), "postrotate")
	script, _, _ = strings.Cut(script, "endscript")
	script = strings.ReplaceAll(script, "/run/openvswitch", rundir)
	if err := os.Rename(logFile, logFile+".1"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-ec", script).CombinedOutput(); err != nil {
		t.Fatalf("postrotate: %v\n%s", err, out)
	}
	g := &Gvsd{t: t, Rundir: rundir}
	if !waitFor(5*time.Second, func() bool {
		g.Run("ovs-appctl", "-t", "ovs-vswitchd", "vlog/set", "unixctl:file:dbg")
		_, err := os.Stat(logFile)
		return err == nil
	}) {
		t.Fatal("no new log file after postrotate")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Fatalf("SIGTERM: %v; console:\n%s", err, console.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM did not end gvsd")
	}
}
