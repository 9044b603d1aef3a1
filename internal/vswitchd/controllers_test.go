package vswitchd

import (
	"strings"
	"testing"
	"time"

	"gvs/internal/connmgr"
)

// TestControllerStatusMap checks the status column as OVS writes it:
// state always, the times since connecting and disconnecting once each
// happened, last_error when there was one.
func TestControllerStatusMap(t *testing.T) {
	now := time.Now()
	m := controllerStatusMap(connmgr.ControllerStatus{State: "BACKOFF"}, now)
	if len(m) != 1 || m["state"] != "BACKOFF" {
		t.Fatalf("never connected: %v", m)
	}
	m = controllerStatusMap(connmgr.ControllerStatus{State: "ACTIVE", LastConnected: now.Add(-3 * time.Second),
		LastDisconnected: now.Add(-10 * time.Second), LastError: "End of file"}, now)
	want := map[string]string{"state": "ACTIVE", "sec_since_connect": "3", "sec_since_disconnect": "10", "last_error": "End of file"}
	if !sameStringMap(m, want) {
		t.Fatalf("status %v, want %v", m, want)
	}
}

// TestControllerLastErrorBounded: last_error quotes the target, which a
// client may make megabytes long; gvsd writes it back cut.
func TestControllerLastErrorBounded(t *testing.T) {
	long := `controller "unix:` + strings.Repeat("x", 1<<20) + `": no such file`
	m := controllerStatusMap(connmgr.ControllerStatus{State: "BACKOFF", LastError: long}, time.Now())
	if n := len(m["last_error"]); n == 0 || n > maxErrorText+16 {
		t.Errorf("last_error of %d bytes, want at most about %d", n, maxErrorText)
	}
}
