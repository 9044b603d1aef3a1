package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ovsLogLine is a log file line in OVS's format.
var ovsLogLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\|\d{5}\|[a-z_]+\|(EMER|ERR|WARN|INFO|DBG)\|`)

// daemonPid reads the pid that gvsd wrote to pidfile.
func daemonPid(t *testing.T, pidfile string) int {
	t.Helper()
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatalf("reading the pidfile: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pidfile holds %q", b)
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// parentPid is the pid of pid's parent, from /proc.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: count after it.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// waitFor polls cond every 50 ms for up to limit.
func waitFor(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// fileLines is the non-empty lines of path.
func fileLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return nonEmptyLines(string(b))
}

// TestOVSCtlStartsGvsd starts gvsd with exactly the command line that
// ovs-ctl's do_start_forwarding and start_daemon build for ovs-vswitchd,
// and runs it the way an operator and logrotate do.
func TestOVSCtlStartsGvsd(t *testing.T) {
	requireTool(t, "ovs-vsctl", "ovs-appctl")
	dir := t.TempDir()
	dbSock := filepath.Join(dir, "db.sock")
	logFile := filepath.Join(dir, "ovs-vswitchd.log")
	pidfile := filepath.Join(dir, "ovs-vswitchd.pid")
	g := &Gvsd{t: t, Rundir: dir, DBPath: filepath.Join(dir, "conf.db"), log: &bytes.Buffer{}}
	env := append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir)
	t.Cleanup(func() {
		// Whatever happened, end every gvsd of this directory, then
		// start one the harness's way to delete the bridge's device.
		if b, err := os.ReadFile(pidfile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
				monitor := parentPid(t, pid)
				syscall.Kill(pid, syscall.SIGTERM)
				waitFor(5*time.Second, func() bool { return !alive(pid) })
				if monitor > 1 {
					syscall.Kill(monitor, syscall.SIGTERM)
				}
			}
		}
		g.Start()
		g.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("log file:\n%s", b)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gvsdBin, "unix:"+dbSock,
		"-vconsole:emer", "-vsyslog:err", "-vfile:info", "--mlockall", "--no-chdir",
		"--log-file="+logFile, "--pidfile="+pidfile, "--detach", "--monitor")
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gvsd --detach: %v\n%s", err, out)
	}
	// Returned with 0: the daemon serves already, no waiting.
	pid := daemonPid(t, pidfile)
	if c, err := net.Dial("unix", dbSock); err != nil {
		t.Fatalf("db.sock not served when --detach returned: %v", err)
	} else {
		c.Close()
	}
	if out, _, err := g.Run("ovs-appctl", "-t", "ovs-vswitchd", "version"); err != nil || !strings.Contains(out, "gvs") {
		t.Fatalf("control socket not served when --detach returned: %v %q", err, out)
	}
	monitor := parentPid(t, pid)
	if monitor <= 1 || !alive(monitor) {
		t.Fatalf("no monitor process above the daemon (parent %d)", monitor)
	}

	g.MustVsctl("add-br", "gvdm0", "--", "set", "bridge", "gvdm0", "datapath_type=netdev")
	if out, errOut, err := g.Run("ovs-appctl", "-t", "ovs-vswitchd", "vlog/set", "unixctl:file:dbg"); err != nil {
		t.Fatalf("vlog/set: %v %s %s", err, out, errOut)
	}
	g.Run("ovs-appctl", "-t", "ovs-vswitchd", "vlog/list")
	lines := fileLines(t, logFile)
	if len(linesWith(lines, "|unixctl|DBG|")) == 0 {
		t.Fatalf("vlog/set unixctl:file:dbg: no debug line in the log file:\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !ovsLogLine.MatchString(l) {
			t.Errorf("log line not in OVS's format: %q", l)
		}
		if strings.Contains(l, "|WARN|") || strings.Contains(l, "|ERR|") {
			t.Errorf("warning or error at a normal start: %q", l)
		}
	}

	// logrotate: mv, then vlog/reopen; and mv, then SIGHUP.
	rotate := func(how string, reopen func()) {
		t.Helper()
		if err := os.Rename(logFile, logFile+"."+how); err != nil {
			t.Fatal(err)
		}
		reopen()
		if !waitFor(5*time.Second, func() bool {
			// Each request logs a debug line, in the new file once
			// gvsd has reopened it.
			g.Run("ovs-appctl", "-t", "ovs-vswitchd", "vlog/list")
			b, err := os.ReadFile(logFile)
			return err == nil && strings.Contains(string(b), "|unixctl|DBG|")
		}) {
			t.Fatalf("%s: no new log file with new lines", how)
		}
	}
	rotate("reopen", func() {
		if out, errOut, err := g.Run("ovs-appctl", "-t", "ovs-vswitchd", "vlog/reopen"); err != nil {
			t.Fatalf("vlog/reopen: %v %s %s", err, out, errOut)
		}
	})
	rotate("hup", func() {
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	})
	if !alive(pid) {
		t.Fatal("SIGHUP ended gvsd")
	}

	// The monitor restarts a crashed daemon: kill -SEGV, then -KILL.
	for _, sig := range []syscall.Signal{syscall.SIGSEGV, syscall.SIGKILL} {
		old := pid
		syscall.Kill(old, sig)
		if !waitFor(15*time.Second, func() bool {
			b, err := os.ReadFile(pidfile)
			p, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return err == nil && p != old && p > 0 && alive(p)
		}) {
			t.Fatalf("kill -%v: the monitor did not restart gvsd", sig)
		}
		pid = daemonPid(t, pidfile)
		if !waitFor(10*time.Second, func() bool { _, _, err := g.Vsctl("br-exists", "gvdm0"); return err == nil }) {
			t.Fatalf("kill -%v: restarted gvsd lost the bridge", sig)
		}
		if parentPid(t, pid) != monitor {
			t.Fatalf("kill -%v: restarted daemon's parent is %d, not the monitor %d", sig, parentPid(t, pid), monitor)
		}
	}

	// A clean exit ends the monitor too.
	if out, errOut, err := g.Run("ovs-appctl", "-t", "ovs-vswitchd", "exit"); err != nil {
		t.Fatalf("exit: %v %s %s", err, out, errOut)
	}
	if !waitFor(10*time.Second, func() bool { return !alive(pid) && !procAlive(monitor) }) {
		t.Fatalf("after exit: daemon alive %v, monitor alive %v", alive(pid), procAlive(monitor))
	}
	time.Sleep(time.Second)
	if _, err := os.Stat(pidfile); !os.IsNotExist(err) {
		t.Fatalf("pidfile after exit: %v (restarted?)", err)
	}
}

// procAlive is alive for a process that may be a zombie whose parent
// (here init, which may not reap in a container) has not waited for it.
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}

// TestGvsdNotifiesSystemd: with NOTIFY_SOCKET set, gvsd sends READY=1 once
// it serves its database and has applied its configuration.
func TestGvsdNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rundir := t.TempDir()
	var log bytes.Buffer
	cmd := exec.Command(gvsdBin, "-rundir", rundir, "-db", filepath.Join(rundir, "conf.db"))
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+name, "OVS_RUNDIR="+rundir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v; log:\n%s", err, log.String())
	}
	if got := string(buf[:n]); got != "READY=1" {
		t.Fatalf("notification %q", got)
	}
	if c, err := net.Dial("unix", filepath.Join(rundir, "db.sock")); err != nil {
		t.Fatalf("READY=1 before db.sock is served: %v", err)
	} else {
		c.Close()
	}
	g := &Gvsd{t: t, Rundir: rundir}
	out, _, err := g.Run("ovs-vsctl", "--db=unix:"+g.Socket(), "--timeout=5", "get", "Open_vSwitch", ".", "cur_cfg", "next_cfg")
	if err != nil {
		t.Fatalf("ovs-vsctl after READY=1: %v", err)
	}
	if f := strings.Fields(out); len(f) != 2 || f[0] != f[1] {
		t.Fatalf("READY=1 before the configuration was applied: cur_cfg, next_cfg = %q", out)
	}
}

// TestSecondGvsdRefuses: a second gvsd on the same run directory refuses,
// naming the first; junk on the command line is an error with usage.
func TestSecondGvsdRefuses(t *testing.T) {
	first := StartGvsd(t)
	firstPid := first.cmd.Process.Pid
	for _, extra := range [][]string{nil, {"--detach"}, {"--detach", "--monitor"}} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		args := append([]string{"-rundir", first.Rundir, "-db", filepath.Join(t.TempDir(), "conf.db")}, extra...)
		cmd := exec.CommandContext(ctx, gvsdBin, args...)
		cmd.Env = append(os.Environ(), "OVS_RUNDIR="+first.Rundir)
		out, err := cmd.CombinedOutput()
		cancel()
		want := fmt.Sprintf("gvsd (pid %d)", firstPid)
		if err == nil || !strings.Contains(string(out), want) {
			t.Errorf("second gvsd %q: %v, want a refusal naming %q:\n%s", extra, err, want, out)
		}
	}
	first.MustVsctl("show")

	for _, junk := range [][]string{{"--bogus"}, {"show", "junk"}, {"-x"}} {
		cmd := exec.Command(gvsdBin, junk...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "usage: gvsd") {
			t.Errorf("gvsd %q: %v, want an error with usage:\n%s", junk, err, out)
		}
	}
}

// TestGvsdRefusesLiveOvsdbServer: gvsd about to serve its own database
// (no DATABASE) while the real ovsdb-server serves its db.sock refuses,
// naming it, and leaves it be. (With DATABASE unix:.../db.sock it would
// be that server's client: TestGvsdClientOfOVSCtl.)
func TestGvsdRefusesLiveOvsdbServer(t *testing.T) {
	requireTool(t, "ovsdb-server", "ovsdb-tool", "ovsdb-client")
	dir := t.TempDir()
	db := filepath.Join(dir, "conf.db")
	if out, err := exec.Command("ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema").CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-tool create: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "db.sock")
	server := exec.Command("ovsdb-server", db, "--remote=punix:"+sock,
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"), "--no-chdir")
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Process.Kill(); server.Wait() })
	waitSocketListening(t, sock)

	// Without DATABASE gvsd would serve its own database on that socket.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, gvsdBin, "--no-chdir", "--pidfile", "--detach")
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir)
	out, err := cmd.CombinedOutput()
	want := fmt.Sprintf("ovsdb-server (pid %d)", server.Process.Pid)
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("gvsd: %v, want a refusal naming %q:\n%s", err, want, out)
	}
	if out, err := exec.Command("ovsdb-client", "--timeout=5", "list-dbs", "unix:"+sock).CombinedOutput(); err != nil {
		t.Fatalf("ovsdb-server lost its socket: %v\n%s", err, out)
	}
	// A DATABASE that is not an OVSDB connection method is refused.
	cmd = exec.CommandContext(ctx, gvsdBin, "ssl:127.0.0.1:6640", "-rundir", t.TempDir())
	out, err = cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no SSL") {
		t.Fatalf("gvsd ssl:...: %v\n%s", err, out)
	}
}

// TestDetachWithoutMonitor: --detach alone leaves one daemon process, in
// its own session, ready when the command returns, on the control socket
// --unixctl names.
func TestDetachWithoutMonitor(t *testing.T) {
	requireTool(t, "ovs-appctl")
	dir := t.TempDir()
	ctl := filepath.Join(dir, "custom.ctl")
	g := &Gvsd{t: t, Rundir: dir, DBPath: filepath.Join(dir, "conf.db")}
	cmd := exec.Command(gvsdBin, "-rundir", dir, "-db", g.DBPath, "--detach", "--unixctl=custom.ctl", "-vconsole:off")
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("gvsd --detach: %v\n%s", err, out)
	}
	pid := daemonPid(t, filepath.Join(dir, "ovs-vswitchd.pid"))
	t.Cleanup(func() {
		if alive(pid) {
			syscall.Kill(pid, syscall.SIGTERM)
			waitFor(5*time.Second, func() bool { return !alive(pid) })
		}
	})
	if out, _, err := g.Run("ovs-appctl", "-t", ctl, "version"); err != nil || !strings.Contains(out, "gvs") {
		t.Fatalf("ovs-appctl -t %s version: %v %q", ctl, err, out)
	}
	if sid, _ := syscall.Getpgid(pid); sid != pid {
		t.Errorf("daemon %d is not a session leader (process group %d)", pid, sid)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != "/" {
		t.Errorf("detached daemon's directory is %q, want / (no --no-chdir)", cwd)
	}
	if _, _, err := g.Run("ovs-appctl", "-t", ctl, "exit"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool { return !procAlive(pid) }) {
		t.Fatal("exit did not end the daemon")
	}
}
