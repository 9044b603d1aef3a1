package unixctl

import (
	"path/filepath"
	"testing"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/testutil"
	"gvs/internal/vlog"
)

// testServer is a running server in its own rundir, with its own log and
// coverage registries so tests do not see each other.
type testServer struct {
	*Server
	rundir  string
	logs    *vlog.Registry
	cov     *coverage.Registry
	console *testutil.SyncBuffer
}

// startServer runs a server as ovs-vswitchd would: pidfile and
// "<rundir>/ovs-vswitchd.<pid>.ctl".
func startServer(t *testing.T, opts ...Option) *testServer {
	t.Helper()
	rundir := t.TempDir()
	pf, err := CreatePidfile(filepath.Join(rundir, "ovs-vswitchd.pid"))
	if err != nil {
		t.Fatalf("CreatePidfile: %v", err)
	}
	t.Cleanup(func() { pf.Remove() })
	ts := &testServer{rundir: rundir, logs: vlog.NewRegistry("ovs-vswitchd"), cov: coverage.NewRegistry(), console: &testutil.SyncBuffer{}}
	ts.logs.SetConsole(ts.console)
	ts.logs.SetSyslog(&testutil.SyncBuffer{})
	opts = append([]Option{WithLogs(ts.logs), WithCoverage(ts.cov)}, opts...)
	srv, err := NewServer(ControlPath(rundir, "ovs-vswitchd"), opts...)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	ts.Server = srv
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after Close", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Serve did not return after Close")
		}
	})
	return ts
}

func (ts *testServer) dial(t *testing.T) *Client {
	t.Helper()
	c, err := Dial(ts.Path())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// call runs one command on a new connection.
func (ts *testServer) call(t *testing.T, method string, args ...string) (string, error) {
	t.Helper()
	return ts.dial(t).Call(method, args...)
}

func mustCall(t *testing.T, ts *testServer, method string, args ...string) string {
	t.Helper()
	out, err := ts.call(t, method, args...)
	if err != nil {
		t.Fatalf("%s %v: %v", method, args, err)
	}
	return out
}

func remoteMessage(t *testing.T, err error) string {
	t.Helper()
	re, ok := err.(*RemoteError)
	if !ok {
		t.Fatalf("got error %v (%T), want a *RemoteError", err, err)
	}
	return re.Message
}
