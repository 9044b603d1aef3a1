package unixsock

import (
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

// watchMode records the mode of path each time it is seen, from before
// it exists until stop is closed.
func watchMode(path string, stop <-chan struct{}) <-chan map[os.FileMode]bool {
	out := make(chan map[os.FileMode]bool, 1)
	go func() {
		seen := map[os.FileMode]bool{}
		for {
			select {
			case <-stop:
				out <- seen
				return
			default:
			}
			if fi, err := os.Lstat(path); err == nil {
				seen[fi.Mode().Perm()] = true
			}
		}
	}()
	return out
}

// The socket has its final mode from the moment its name appears, under
// a permissive and under restrictive umasks; the umask can tighten it.
func TestListenModeFromFirstSight(t *testing.T) {
	for _, tc := range []struct {
		umask int
		want  os.FileMode
	}{{0, 0o750}, {0o022, 0o750}, {0o027, 0o750}, {0o077, 0o700}} {
		for range 20 { // repeated: a window between bind and chmod shows up
			path := filepath.Join(t.TempDir(), "db.sock")
			stop := make(chan struct{})
			seen := watchMode(path, stop)
			old := syscall.Umask(tc.umask)
			l, err := Listen(path, 0o750)
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(path)
			close(stop)
			modes := <-seen
			l.Close()
			if err != nil {
				t.Fatal(err)
			}
			modes[fi.Mode().Perm()] = true
			if len(modes) != 1 || !modes[tc.want] {
				t.Fatalf("umask %03o: modes seen %v, want only %03o", tc.umask, modes, tc.want)
			}
		}
	}
}

func TestListenServesAndCloseRemovesOwnSocketOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s")
	l, err := Listen(path, 0o750)
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Addr().String(); got != path {
		t.Fatalf("Addr %q, want %q", got, path)
	}
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial the renamed socket: %v", err)
	}
	c.Close()
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %v, want only the socket", entries)
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket left after Close: %v", err)
	}

	// A successor's socket at the same name survives our Close.
	l1, err := Listen(path, 0o750)
	if err != nil {
		t.Fatal(err)
	}
	l1.UnixListener.Close() // dead, file left behind
	l2, err := Listen(path, 0o750)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	defer l2.Close()
	l1.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("closing the old listener removed its successor's socket: %v", err)
	}
}

func TestListenRefusesLiveSocketAndOtherFiles(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	ln, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// The refusal names the server by command name and pid.
	want := fmt.Sprintf("another process is listening on it, unixsock.test (pid %d)", os.Getpid())
	if _, err := Listen(live, 0o750); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Listen over a live socket: %v, want %q", err, want)
	}
	if c, err := net.Dial("unix", live); err != nil {
		t.Fatalf("the live socket was taken away: %v", err)
	} else {
		c.Close()
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("keep"), 0o600)
	if _, err := Listen(plain, 0o750); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a regular file: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(plain, link)
	if _, err := Listen(link, 0o750); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("Listen over a symlink: %v", err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep" {
		t.Fatal("regular file changed")
	}
	if _, err := Listen(filepath.Join(dir, strings.Repeat("p", 120)), 0o750); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("Listen with a long path: %v", err)
	}
}

// A path that fits sun_path but whose private bind directory would not
// is bound through /proc.
func TestListenNearPathLimit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("n", MaxPath-len(dir)-1))
	l, err := Listen(path, 0o750)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// TestListenRemovesStaleBindDirs: a gvsd killed between making its
// private bind directory and removing it left an empty ".sock..."
// directory in the run directory for good; Listen removes those of this
// user whose process is gone (or, named by an older gvsd, that are old),
// and leaves a live process's, another user's and recent ones alone.
func TestListenRemovesStaleBindDirs(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	mk := func(name string, withSocket bool) string {
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if withSocket {
			if err := os.WriteFile(filepath.Join(p, "s"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	staleNew := mk(fmt.Sprintf(".sock-%d-1", dead), true)
	staleOld := mk(".sock123456", false)
	old := time.Now().Add(-2 * staleAge)
	if err := os.Chtimes(staleOld, old, old); err != nil {
		t.Fatal(err)
	}
	recentOld := mk(".sock654321", false)
	live := mk(fmt.Sprintf(".sock-%d-1", os.Getppid()), false)
	others := mk(fmt.Sprintf(".sock-%d-2", dead), false)
	if err := os.Chown(others, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(filepath.Join(dir, "a.sock"), 0o700)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, p := range []string{staleNew, staleOld} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("stale %s still there (%v)", filepath.Base(p), err)
		}
	}
	for _, p := range []string{recentOld, live, others} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", filepath.Base(p), err)
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 4 {
		t.Errorf("run directory holds %q, want a.sock and the three kept directories", names)
	}
}
