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

// TestDebPackage builds the .deb with scripts/build-deb.sh and checks what
// an operator gets from it: the control fields, every file in its place,
// binaries that run and report the package's version, and man pages that
// man renders from the programs' own help.
func TestDebPackage(t *testing.T) {
	requireTool(t, "dpkg-deb", "man", "go")
	out := t.TempDir()
	build := exec.Command("../../scripts/build-deb.sh", out)
	b, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, b)
	}
	deb := strings.TrimSpace(string(b[bytes.LastIndexByte(bytes.TrimSpace(b), '\n')+1:]))
	fields, err := exec.Command("dpkg-deb", "-f", deb, "Package", "Version", "Architecture").Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s: %v", deb, err)
	}
	if !strings.Contains(string(fields), "Package: gvs\n") || !strings.Contains(string(fields), "Version: 0.") {
		t.Errorf("control fields:\n%s", fields)
	}
	contents, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"./usr/sbin/gvsd", "./usr/bin/gvs", "./lib/systemd/system/gvsd.service",
		"./etc/logrotate.d/gvsd", "./usr/share/man/man8/gvsd.8.gz", "./usr/share/man/man8/gvs.8.gz"} {
		if !strings.Contains(string(contents), " "+want+"\n") {
			t.Errorf("the package lacks %s:\n%s", want, contents)
		}
	}
	if strings.Contains(string(contents), "drwx------") {
		t.Errorf("a directory that only root can enter:\n%s", contents)
	}

	root := t.TempDir()
	if b, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, b)
	}
	version, err := exec.Command(filepath.Join(root, "usr/sbin/gvsd"), "--version").CombinedOutput()
	// The package's version ends in the commit; gvsd reports the same
	// commit (dirty or not).
	versionLine := strings.SplitN(string(fields), "\n", 3)[1]
	rev := versionLine[strings.LastIndexByte(versionLine, '.')+1:]
	if err != nil || len(rev) != 12 || !strings.Contains(string(version), "+"+rev) {
		t.Errorf("gvsd --version: %v %q, package %q", err, version, fields)
	}
	for page, words := range map[string][]string{
		"gvsd.8.gz": {"SYNOPSIS", "--log-file", "--detach", "--pidfile"},
		"gvs.8.gz":  {"gvs flows", "gvs show", "gvs capture", "NO_COLOR"},
	} {
		text, err := exec.Command("man", "-l", filepath.Join(root, "usr/share/man/man8", page)).Output()
		if err != nil {
			t.Errorf("man -l %s: %v", page, err)
			continue
		}
		for _, w := range words {
			if !strings.Contains(strings.ReplaceAll(string(text), "‐\n", ""), w) {
				t.Errorf("man page %s lacks %q:\n%s", page, w, text)
			}
		}
	}
}
