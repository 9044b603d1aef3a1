package e2e

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startGvsdStderr starts gvsd with stdout and stderr on w (gvsd's
// console log), waits until db.sock answers, and stops it when the test
// ends.
func startGvsdStderr(t *testing.T, w *os.File, args ...string) *Gvsd {
	t.Helper()
	g := &Gvsd{t: t, Rundir: t.TempDir(), DBPath: filepath.Join(t.TempDir(), "conf.db")}
	argv := append([]string{"-rundir", g.Rundir, "-db", g.DBPath}, args...)
	g.cmd = exec.Command(gvsdBin, argv...)
	g.cmd.Stdout, g.cmd.Stderr = w, w
	g.cmd.Env = append(os.Environ(), "OVS_RUNDIR="+g.Rundir)
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Stop)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", g.Socket()); err == nil {
			c.Close()
			return g
		}
	}
	t.Fatal("gvsd did not open db.sock within 10 s")
	return nil
}

// TestGvsdSurvivesClosedStderr: gvsd started in a pipeline (gvsd 2>&1 |
// head) whose reader goes away must go on (as ovs-vswitchd, which
// ignores SIGPIPE), not die on its next console log line and leave its
// devices, sockets and pidfile behind.
func TestGvsdSurvivesClosedStderr(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	g := startGvsdStderr(t, pw)
	pw.Close()
	pr.Close()
	// Console lines: debug logging on for every module, then a few
	// requests.
	if out, errOut, err := g.Run("ovs-appctl", "vlog/set", "dbg"); err != nil {
		t.Fatalf("ovs-appctl vlog/set dbg: %v %s %s", err, out, errOut)
	}
	for range 3 {
		g.Vsctl("show")
		g.Run("ovs-appctl", "vlog/list")
	}
	out, errOut, err := g.Run("ovs-appctl", "version")
	if err != nil || !strings.Contains(out, "ovs-vswitchd") {
		state := "running"
		if g.cmd.ProcessState != nil {
			state = g.cmd.ProcessState.String()
		} else if werr := waitExit(g.cmd, time.Second); werr != "" {
			state = werr
		}
		t.Fatalf("gvsd stopped answering once its stderr's reader left (%s): %v %s", state, err, errOut)
	}
}

// waitExit says how cmd ended if it ends within limit, "" otherwise.
func waitExit(cmd *exec.Cmd, limit time.Duration) string {
	done := make(chan string, 1)
	go func() { cmd.Wait(); done <- cmd.ProcessState.String() }()
	select {
	case s := <-done:
		return s
	case <-time.After(limit):
		return ""
	}
}

// TestBridgeNameCannotPlaceSocketsElsewhere: a bridge's OpenFlow socket
// is <rundir>/<bridge>.mgmt. A bridge name with a "/" (any database
// writer's to choose) must not make gvsd, as root, create a socket file
// outside its run directory, or remove one there when the bridge goes.
func TestBridgeNameCannotPlaceSocketsElsewhere(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	name := "../" + filepath.Base(g.Rundir) + "-bnx"
	outside := filepath.Join(filepath.Dir(g.Rundir), filepath.Base(g.Rundir)+"-bnx.mgmt")
	defer os.Remove(outside)
	g.Vsctl("--no-wait", "add-br", name)
	g.MustVsctl("add-br", "bnxok") // waits for a reconfiguration after it
	if _, err := os.Stat(filepath.Join(g.Rundir, "bnxok.mgmt")); err != nil {
		t.Fatalf("the good bridge has no management socket: %v", err)
	}
	if _, err := os.Lstat(outside); err == nil {
		t.Fatalf("bridge %q made gvsd create %s", name, outside)
	}
	g.MustVsctl("del-br", "bnxok")
	g.Vsctl("--no-wait", "del-br", name)
}

// TestDetachKeepsNoInheritedFiles: a detached gvsd outlives whoever
// started it, so it must not keep what that starter left open: a lock a
// script holds with flock(1) (a reference ovs-vswitchd --detach once held
// the e2e lock for 25 minutes), or the write end of a pipe someone reads
// to its end.
func TestDetachKeepsNoInheritedFiles(t *testing.T) {
	requireTool(t, "ovs-appctl")
	dir := t.TempDir()
	g := &Gvsd{t: t, Rundir: dir, DBPath: filepath.Join(dir, "conf.db")}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(gvsdBin, "-rundir", dir, "-db", g.DBPath, "--detach", "-vconsole:off")
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir)
	// Descriptors 3 and 4 in gvsd, without close-on-exec. (gvsd's own
	// readiness pipe becomes 3 in the daemon.)
	cmd.ExtraFiles = []*os.File{pw, pw}
	out, err := cmd.CombinedOutput()
	pw.Close()
	if err != nil {
		t.Fatalf("gvsd --detach: %v\n%s", err, out)
	}
	pid := daemonPid(t, filepath.Join(dir, "ovs-vswitchd.pid"))
	t.Cleanup(func() {
		g.Run("ovs-appctl", "exit", "--cleanup")
		if !waitFor(5*time.Second, func() bool { return !procAlive(pid) }) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	pr.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := pr.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the pipe the starter passed gvsd did not close once --detach returned (%v): the daemon (pid %d) holds it", err, pid)
	}
}
