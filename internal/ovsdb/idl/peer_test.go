package idl

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// listenAs starts a process running as uid that listens on a unix socket
// at path and accepts connections until the test ends.
func listenAs(t *testing.T, uid uint32, path string) {
	t.Helper()
	py, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("needs /usr/bin/python3 to listen as another user")
	}
	script := `import socket,sys,time
s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8); print("ready",flush=True)
while True:
    c,_=s.accept(); time.sleep(0.1)
`
	cmd := exec.Command(py, "-c", script, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 6)
	if n, err := io.ReadFull(out, buf); err != nil || string(buf[:n]) != "ready\n" {
		t.Fatalf("listener as uid %d: %q %v", uid, buf[:n], err)
	}
}

// A unix: remote must be served by root or by gvsd's own user. In a run
// directory others can write (OVS_RUNDIR=/tmp), another user could
// otherwise bind db.sock first and have gvsd, running as root, take its
// whole configuration from them.
func TestDialRefusesAnotherUsersServer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a listener as another user")
	}
	dir, err := os.MkdirTemp("", "idl-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "db.sock")
	listenAs(t, 65534, sock)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := dial(ctx, "unix:"+sock)
	if err == nil {
		c.Close()
		t.Fatal("dial accepted a server running as uid 65534")
	}
	if !strings.Contains(err.Error(), "uid 65534") {
		t.Errorf("error %q does not name the server's user", err)
	}
	// The same server in a directory of its own user's (ovsdb-server run
	// as the openvswitch user, in the run directory given to it) is
	// trusted: that user could put any socket there anyway.
	own := filepath.Join(dir, "own")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(own, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	sock = filepath.Join(own, "db.sock")
	listenAs(t, 65534, sock)
	c, err = dial(ctx, "unix:"+sock)
	if err != nil {
		t.Fatalf("dial refused a server in its own user's directory: %v", err)
	}
	c.Close()
}
