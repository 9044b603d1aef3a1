// Package e2e runs gvs's acceptance scenarios end to end: a real gvsd
// process, the real Open vSwitch clients, and (where a test needs them)
// real packets in network namespaces that the test creates itself.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gvsdBin and gvsBin are the daemon and the CLI, built once for the
// whole package.
var gvsdBin, gvsBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gvs-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gvsdBin, gvsBin = filepath.Join(dir, "gvsd"), filepath.Join(dir, "gvs")
	build := exec.Command("go", "build", "-o", dir, "gvs/cmd/gvsd", "gvs/cmd/gvs")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building gvsd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireTool skips a test whose external tool is not installed; the CI
// script installs them all, so there a skip would show as a missing tool.
func requireTool(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed (scripts/test.sh installs it)", n)
		}
	}
}

// Gvsd is a gvsd process with its own run directory and database.
type Gvsd struct {
	t      *testing.T
	Rundir string
	DBPath string
	// Args are extra command-line options, given at every (re)start.
	Args []string
	// Netns, if set, is the network namespace gvsd runs in (ip netns
	// exec); its sockets and files are on the shared filesystem as usual.
	Netns string
	cmd   *exec.Cmd
	log   *bytes.Buffer
	// cleanedUp is set when the daemon last ended with exit --cleanup,
	// which deletes its internal ports; any other end leaves them.
	cleanedUp bool
}

// StartGvsd runs gvsd in a fresh directory and waits until its database
// socket answers. It is killed when the test ends.
func StartGvsd(t *testing.T) *Gvsd {
	t.Helper()
	dir := t.TempDir()
	return StartGvsdDB(t, filepath.Join(dir, "conf.db"))
}

// StartGvsdArgs is StartGvsd with extra command-line options.
func StartGvsdArgs(t *testing.T, args ...string) *Gvsd {
	t.Helper()
	return startGvsd(t, filepath.Join(t.TempDir(), "conf.db"), args)
}

// StartGvsdNetns is StartGvsd with gvsd running in network namespace ns.
func StartGvsdNetns(t *testing.T, ns string) *Gvsd {
	t.Helper()
	g := &Gvsd{t: t, Rundir: t.TempDir(), DBPath: filepath.Join(t.TempDir(), "conf.db"), Netns: ns}
	return startGvsdWith(t, g)
}

// StartGvsdDB is StartGvsd with the database file at dbPath.
func StartGvsdDB(t *testing.T, dbPath string) *Gvsd {
	t.Helper()
	return startGvsd(t, dbPath, nil)
}

func startGvsd(t *testing.T, dbPath string, args []string) *Gvsd {
	t.Helper()
	return startGvsdWith(t, &Gvsd{t: t, Rundir: t.TempDir(), DBPath: dbPath, Args: args})
}

func startGvsdWith(t *testing.T, g *Gvsd) *Gvsd {
	t.Helper()
	g.Start()
	t.Cleanup(func() {
		g.Stop()
		log := g.log.String()
		if !g.cleanedUp {
			// The test ended the daemon itself (kill -9, exit,
			// SIGTERM), which leaves its internal ports: persistent
			// TAP devices. One more start re-attaches them, and a
			// cleanup exit deletes them.
			g.Start()
			g.Stop()
		}
		if t.Failed() {
			t.Logf("gvsd log:\n%s", log)
		}
	})
	return g
}

// Start starts (or restarts) the daemon on the same database.
func (g *Gvsd) Start() {
	g.t.Helper()
	g.cleanedUp = false
	g.log = &bytes.Buffer{}
	args := append([]string{"-rundir", g.Rundir, "-db", g.DBPath}, g.Args...)
	if g.Netns != "" {
		// ip netns exec execs gvsd in place: the process is gvsd's.
		args = append([]string{"netns", "exec", g.Netns, gvsdBin}, args...)
		g.cmd = exec.Command("ip", args...)
	} else {
		g.cmd = exec.Command(gvsdBin, args...)
	}
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	g.cmd.Env = append(os.Environ(), "OVS_RUNDIR="+g.Rundir)
	if err := g.cmd.Start(); err != nil {
		g.t.Fatalf("starting gvsd: %v", err)
	}
	sock := filepath.Join(g.Rundir, "db.sock")
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("gvsd did not open %s within 10s; log:\n%s", sock, g.log.String())
}

// Kill9 kills the daemon abruptly, as a crash would.
func (g *Gvsd) Kill9() {
	if g.cmd != nil && g.cmd.Process != nil {
		_ = g.cmd.Process.Signal(syscall.SIGKILL)
		_ = g.cmd.Wait()
		g.cmd = nil
	}
}

// Stop ends the daemon as a test that is done with it wants:
// `ovs-appctl exit --cleanup`, which also deletes its internal ports, then
// SIGTERM if that fails, and SIGKILL if it still runs 5 s later.
func (g *Gvsd) Stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	_, _, err := g.Run("ovs-appctl", "--timeout=5", "exit", "--cleanup")
	if err != nil {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-done:
		g.cleanedUp = err == nil
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
	}
	g.cmd = nil
}

// Socket is the unix socket path of the database.
func (g *Gvsd) Socket() string { return filepath.Join(g.Rundir, "db.sock") }

// Run runs an OVS client against this gvsd with a 30 s limit and returns
// its stdout, stderr and error.
func (g *Gvsd) Run(name string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+g.Rundir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// Vsctl runs ovs-vsctl against this gvsd.
func (g *Gvsd) Vsctl(args ...string) (string, string, error) {
	return g.Run("ovs-vsctl", append([]string{"--db=unix:" + g.Socket(), "--timeout=20"}, args...)...)
}

// MustVsctl runs ovs-vsctl and fails the test if it fails or complains.
func (g *Gvsd) MustVsctl(args ...string) string {
	g.t.Helper()
	out, errOut, err := g.Vsctl(args...)
	if err != nil || errOut != "" {
		g.t.Fatalf("ovs-vsctl %s: err=%v\nstderr: %s\nstdout: %s", strings.Join(args, " "), err, errOut, out)
	}
	return out
}

// FailVsctl runs ovs-vsctl expecting it to fail, and returns its stderr.
func (g *Gvsd) FailVsctl(args ...string) string {
	g.t.Helper()
	out, errOut, err := g.Vsctl(args...)
	if err == nil {
		g.t.Fatalf("ovs-vsctl %s succeeded, expected failure; stdout: %s", strings.Join(args, " "), out)
	}
	return errOut
}
