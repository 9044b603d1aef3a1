package unixctl

import (
	"bufio"
	"bytes"
	"errors"
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

func helperCommand(mode, path string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperEnv+"_PATH="+path)
	return cmd
}

// probe runs a second process that tries to take the pidfile.
func probe(t *testing.T, path string) string {
	t.Helper()
	cmd := helperCommand("probe", path)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe process: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// readPidfile reads the file's contents through p's own descriptor:
// opening the file again in this process would drop the lock.
func readPidfile(t *testing.T, p *Pidfile) string {
	t.Helper()
	buf := make([]byte, 64)
	n, err := p.f.ReadAt(buf, 0)
	if err != nil && n == 0 {
		t.Fatalf("reading pidfile: %v", err)
	}
	return string(buf[:n])
}

func TestPidfileConflictsAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvsd.pid")
	holder := helperCommand("hold", path)
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		holder.Process.Kill()
		holder.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}

	_, err = CreatePidfile(path)
	// The holder is named by its command name, as ovsdb-server or
	// ovs-vswitchd would be.
	want := fmt.Sprintf("already held by unixctl.test (pid %d)", holder.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("CreatePidfile while held elsewhere: %v, want %q", err, want)
	}

	stdin.Close()
	done := make(chan error, 1)
	go func() { done <- holder.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("holder exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("holder did not exit")
	}
	pf, err := CreatePidfile(path)
	if err != nil {
		t.Fatalf("CreatePidfile after the holder exited: %v", err)
	}
	defer pf.Remove()
	if got := readPidfile(t, pf); got != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Fatalf("pidfile holds %q", got)
	}
}

func TestPidfileConflictsWithinProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvsd.pid")
	first, err := CreatePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = CreatePidfile(path)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("already held by unixctl.test (pid %d), this process", os.Getpid())) {
		t.Fatalf("second CreatePidfile in one process: %v", err)
	}
	// The refused attempt must not have dropped the first lock.
	want := fmt.Sprintf("refused: pidfile %q: already held by unixctl.test (pid %d)", path, os.Getpid())
	if got := probe(t, path); got != want {
		t.Fatalf("other process saw %q, want %q", got, want)
	}
	if err := first.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pidfile still there after Remove: %v", err)
	}
	if err := first.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if got := probe(t, path); got != "acquired" {
		t.Fatalf("other process after Remove: %q", got)
	}
	again, err := CreatePidfile(path)
	if err != nil {
		t.Fatalf("CreatePidfile after Remove: %v", err)
	}
	again.Remove()
}

func TestPidfileReplacesStaleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvsd.pid")
	if err := os.WriteFile(path, []byte("99999999\nleftover text that is longer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pf, err := CreatePidfile(path)
	if err != nil {
		t.Fatalf("CreatePidfile over a stale file: %v", err)
	}
	defer pf.Remove()
	if got := readPidfile(t, pf); got != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Fatalf("pidfile holds %q", got)
	}
	if pf.Path() != path {
		t.Fatalf("Path() = %q", pf.Path())
	}
}

func TestPidfileRemoveLeavesASuccessorsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvsd.pid")
	pf, err := CreatePidfile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Someone replaced the file (a new daemon after ours was declared
	// dead): Remove must not delete theirs.
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := pf.Remove(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(data, []byte("1\n")) {
		t.Fatalf("successor's pidfile: %q, %v", data, err)
	}
}

func TestPidfileInMissingDirectory(t *testing.T) {
	_, err := CreatePidfile(filepath.Join(t.TempDir(), "no", "such", "gvsd.pid"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("got %v", err)
	}
}

func TestRemoveStaleControls(t *testing.T) {
	dir := t.TempDir()
	live, err := NewServer(filepath.Join(dir, "ovs-vswitchd.100.ctl"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// A socket whose server is gone, as a crash leaves it.
	dead, err := net.Listen("unix", filepath.Join(dir, "ovs-vswitchd.200.ctl"))
	if err != nil {
		t.Fatal(err)
	}
	dead.(*net.UnixListener).SetUnlinkOnClose(false)
	dead.Close()
	other := filepath.Join(dir, "ovs-vswitchd.300.ctl")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	removed := RemoveStaleControls(dir, "ovs-vswitchd")
	if len(removed) != 1 || removed[0] != filepath.Join(dir, "ovs-vswitchd.200.ctl") {
		t.Fatalf("removed %q, want only the dead socket", removed)
	}
	for _, keep := range []string{live.Path(), other} {
		if _, err := os.Lstat(keep); err != nil {
			t.Errorf("%s removed: %v", keep, err)
		}
	}
}

// A pidfile name that is a symbolic link (planted in a run directory
// others can write, such as /tmp) must not make gvsd, running as root,
// truncate and write whatever file the link points to.
func TestPidfileRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gvsd.pid")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	p, err := CreatePidfile(path)
	if err == nil {
		p.Remove()
		t.Fatal("CreatePidfile followed a symbolic link")
	}
	if !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %q does not say why", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Errorf("the link's target was changed to %q", got)
	}
}

// Only a regular file with one link is a pidfile: a FIFO would hang
// nothing but is no pidfile, and a hard link to another file (say
// /etc/shadow, on the same filesystem) would be truncated.
func TestPidfileRefusesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.pid")
	if err := os.Link(victim, hard); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{fifo, "not a regular file"},
		{hard, "2 links"},
		{dir, "not a regular file"},
	} {
		done := make(chan error, 1)
		go func() {
			p, err := CreatePidfile(c.path)
			if err == nil {
				p.Remove()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want one saying %q", c.path, err, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: CreatePidfile hangs", c.path)
		}
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Errorf("the hard link's other name was changed to %q", got)
	}
}

// A pidfile that another user owns is that user's to lock or rewrite:
// it is refused, not shared.
func TestPidfileRefusesAnotherUsersFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file away")
	}
	path := filepath.Join(t.TempDir(), "gvsd.pid")
	if err := os.WriteFile(path, []byte("1\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	p, err := CreatePidfile(path)
	if err == nil {
		p.Remove()
		t.Fatal("CreatePidfile took another user's file")
	}
	if !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("error %q does not say why", err)
	}
}
