package ovsdb

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// staleSocket leaves a socket file at path that nobody listens on, as a
// crashed server does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

// db.sock and punix: remotes get mode 0750 less the umask, whatever the
// umask allows.
func TestPunixSocketMode(t *testing.T) {
	srv, err := NewServer(newTestDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, tc := range []struct {
		umask int
		want  os.FileMode
	}{{0, 0o750}, {0o022, 0o750}, {0o027, 0o750}, {0o077, 0o700}} {
		path := filepath.Join(t.TempDir(), "db.sock")
		old := syscall.Umask(tc.umask)
		_, err := srv.Listen("punix:" + path)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("umask %03o: mode %03o, want %03o", tc.umask, got, tc.want)
		}
	}
}

// An extra punix: remote pointing at a live server's socket must not take
// it over: the listen fails and the other server keeps its socket.
func TestPunixRefusesLiveSocket(t *testing.T) {
	db := newTestDB(t)
	_, path := testServer(t, db, nil)
	other, err := NewServer(newTestDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.Listen("punix:" + path)
	if err == nil || !strings.Contains(err.Error(), "another process is listening") {
		t.Fatalf("listen over a live socket: %v", err)
	}
	c := dial(t, path)
	c.result("echo")
	// A stale one is replaced.
	stale := filepath.Join(t.TempDir(), "stale.sock")
	staleSocket(t, stale)
	if _, err := other.Listen("punix:" + stale); err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
}
