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

// checkFreshPidfile checks that p is a new regular file at path, with
// one link, owned by this process's user, holding this process's pid.
func checkFreshPidfile(t *testing.T, p *Pidfile, path string) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if !st.Mode().IsRegular() || sys.Nlink != 1 || int(sys.Uid) != os.Geteuid() {
		t.Errorf("pidfile is %v, %d links, uid %d", st.Mode(), sys.Nlink, sys.Uid)
	}
	if got, want := readPidfile(t, p), fmt.Sprintf("%d\n", os.Getpid()); got != want {
		t.Errorf("pidfile holds %q, want %q", got, want)
	}
}

// What another user may have put at the pidfile's name in a run
// directory others can write (OVS_RUNDIR=/tmp) must not make gvsd, as
// root, truncate and write another file: a symbolic link, a hard link (a
// second name of, say, /etc/shadow), a FIFO (which would also block the
// open), another user's file (theirs to rewrite later, and to lock). Each
// is replaced by a fresh file, as OVS's rename over the name replaces
// it, and whatever it pointed to is left alone.
func TestPidfileReplacesPlantedNames(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plant := map[string]func(path string) error{
		"symlink":  func(path string) error { return os.Symlink(victim, path) },
		"dangling": func(path string) error { return os.Symlink(filepath.Join(dir, "created-through-link"), path) },
		"hardlink": func(path string) error { return os.Link(victim, path) },
		"fifo":     func(path string) error { return syscall.Mkfifo(path, 0o666) },
	}
	if os.Geteuid() == 0 {
		plant["theirs"] = func(path string) error {
			if err := os.WriteFile(path, []byte("1\n"), 0o666); err != nil {
				return err
			}
			return os.Chown(path, 65534, 65534)
		}
	}
	for name, place := range plant {
		path := filepath.Join(dir, name+".pid")
		if err := place(path); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		var p *Pidfile
		var err error
		go func() { p, err = CreatePidfile(path); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: CreatePidfile hangs", name)
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		checkFreshPidfile(t, p, path)
		p.Remove()
	}
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Errorf("the planted name's target now holds %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "created-through-link")); err == nil {
		t.Error("a file was created through a dangling link")
	}
	if _, err := CreatePidfile(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("a directory at the pidfile's name: error %v", err)
	}
}

// Another user's pidfile that a live process holds is not replaced: that
// process is running.
func TestPidfileKeepsAnotherUsersLockedFile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give the file away")
	}
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
	t.Cleanup(func() { stdin.Close(); holder.Wait() })
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); !strings.HasPrefix(line, "locked") {
		t.Fatalf("holder: %q", line)
	}
	if err := os.Chown(path, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	_, err = CreatePidfile(path)
	if want := fmt.Sprintf("pid %d)", holder.Process.Pid); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("CreatePidfile of a held file of another user: %v, want an error naming %q", err, want)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the held pidfile was removed: %v", err)
	}
}
