package unixctl

import (
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// openIdle opens n connections that never send anything.
func openIdle(t *testing.T, path string, n int) {
	t.Helper()
	for i := range n {
		c, err := net.DialTimeout("unix", path, 2*time.Second)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// More idle clients than the connection limit must not lock out the
// operator: ovs-appctl still gets its answer, at once.
func TestIdleConnectionsDoNotLockOutAppctl(t *testing.T) {
	ts := startServer(t)
	openIdle(t, ts.Path(), maxConns+44)
	start := time.Now()
	out := appctl(t, ts, "version").mustSucceed(t)
	if !strings.Contains(out, "Open vSwitch") {
		t.Fatalf("version printed %q", out)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("version took %v behind %d idle connections", d, maxConns+44)
	}
	exited := make(chan bool, 1)
	ts.RegisterExit(func(bool) { exited <- true })
	appctl(t, ts, "exit").mustSucceed(t)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		t.Fatal("exit callback not called")
	}
}

// A client that connects and sends nothing (or dribbles a request) is
// disconnected after the read timeout, so it holds nothing for long.
func TestIdleClientTimesOut(t *testing.T) {
	setReadTimeoutForTest(t, 200*time.Millisecond)
	ts := startServer(t)
	c, err := net.Dial("unix", ts.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"id":1,`)) // half a request, never finished
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	for {
		_, err := c.Read(buf)
		if err == nil {
			continue
		}
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("server kept an idle client past its read timeout")
		}
		return // closed by the server
	}
}

func TestControlSocketModeHonoursUmask(t *testing.T) {
	for _, tc := range []struct {
		umask int
		want  os.FileMode
	}{{0, 0o750}, {0o027, 0o750}, {0o077, 0o700}} {
		old := syscall.Umask(tc.umask)
		path := t.TempDir() + "/x.ctl"
		srv, err := NewServer(path)
		syscall.Umask(old)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		srv.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("umask %03o: socket mode %03o, want %03o", tc.umask, got, tc.want)
		}
	}
}

// setReadTimeoutForTest shortens readTimeout until the test ends.
func setReadTimeoutForTest(t *testing.T, d time.Duration) {
	old := readTimeout
	readTimeout = d
	t.Cleanup(func() { readTimeout = old })
}

// TestLargeRepliesHeldBounded: a client that asks for a large reply (a
// conntrack or flow dump can be hundreds of MB) and does not read it
// held it until the write timed out, and its connection counted as busy,
// so could not be evicted: many such clients held many replies. Only
// maxReplying large replies are written at once; a new one drops the
// client that has been writing longest.
func TestLargeRepliesHeldBounded(t *testing.T) {
	ts := startServer(t)
	var calls atomic.Int32
	big := strings.Repeat("r", 512<<10)
	ts.Register("test/big", "", 0, 0, func([]string) (string, error) {
		calls.Add(1)
		return big, nil
	})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 60
	for i := range n {
		c, err := net.DialTimeout("unix", ts.Path(), 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.Write([]byte(`{"id":1,"method":"test/big","params":[]}`)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d replies built, heap grew by %d MiB", calls.Load(), held>>20)
	if bound := int64(maxReplying) << 20; held > bound {
		t.Fatalf("%d MiB held for clients that do not read their 512 KiB replies (bound %d MiB)", held>>20, bound>>20)
	}
	// A client that reads still gets its large reply.
	if out := mustCall(t, ts, "test/big"); strings.TrimSuffix(out, "\n") != big {
		t.Fatalf("reply of %d bytes, want %d", len(out), len(big))
	}
}
