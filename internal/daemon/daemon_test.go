package daemon

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestCrashed(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   bool
	}{
		{"exit 0", false},
		{"exit 1", false}, // a startup error: restarting would only repeat it
		{"exit 2", true},  // a Go panic or fatal runtime error
		{"kill -TERM $$", false},
		{"kill -INT $$", false},
		{"kill -SEGV $$", true},
		{"kill -ABRT $$", true},
		{"kill -KILL $$", true},
		{"kill -BUS $$", true},
	} {
		cmd := exec.Command("sh", "-c", tc.script)
		cmd.Run()
		if got := crashed(cmd.ProcessState); got != tc.want {
			t.Errorf("%q: crashed = %v, want %v (%v)", tc.script, got, tc.want, cmd.ProcessState)
		}
	}
}

// listenNotify is a NOTIFY_SOCKET as systemd makes it, at name.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func readNotify(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("reading the notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotifyPathAndAbstract(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		"@gvs-notify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	} {
		conn := listenNotify(t, name)
		if err := Notify("READY=1"); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readNotify(t, conn); got != "READY=1" {
			t.Fatalf("%s: got %q", name, got)
		}
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody"))
	if err := Notify("READY=1"); err == nil {
		t.Fatal("Notify to a socket nobody listens on succeeded")
	}
}

func TestReadyNotifiesOnce(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	p := &Process{}
	if err := p.Ready(); err != nil {
		t.Fatal(err)
	}
	if got := readNotify(t, conn); got != "READY=1" {
		t.Fatalf("got %q", got)
	}
	p.Ready()
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := conn.Read(make([]byte, 16)); err == nil {
		t.Fatalf("second Ready sent %d more bytes", n)
	}
}
