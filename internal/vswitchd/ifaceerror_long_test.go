package vswitchd

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"gvs/internal/testutil"
	"gvs/internal/vlog"
)

// TestInterfaceErrorBounded: Interface.error quotes option values the
// database client wrote (a tunnel's remote_ip, say), which may be
// megabytes. gvsd wrote such an error back whole (a 1 MiB remote_ip of
// control bytes made a 4 MiB error), into a database bounded in size,
// from the same transaction as every interface's status. The error
// written is cut to a bounded length.
func TestInterfaceErrorBounded(t *testing.T) {
	sw := newSwitchWithBridge(t, `[]`)
	text, _ := json.Marshal(strings.Repeat("\x01", 1<<20))
	err := transact(t, sw.db, `[
		{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"lerr","type":"vxlan","options":["map",[["remote_ip",`+string(text)+`]]]}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"lerr","interfaces":["named-uuid","i"]}},
		{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["set",[["named-uuid","p"]]]]]}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	snap := sw.db.Snapshot(configTables...)
	for u := range snap.Tables["Interface"] {
		e, _ := get(snap, "Interface", u, "error").Str()
		if e == "" {
			t.Fatal("the interface has no error")
		}
		if len(e) > maxErrorText+16 || !strings.Contains(e, "remote_ip") {
			t.Errorf("Interface.error of %d bytes (%.120q...), want at most about %d naming remote_ip", len(e), e, maxErrorText)
		}
	}
}

// TestInterfaceOpenFailuresLogBounded: an interface that cannot be set up
// is tried again at every reconfiguration, and gvsd's own statistics
// writes reconfigure it every few seconds; each try logged the whole
// error (megabytes when it quotes a client's option value). The log
// stays bounded: lines are cut, and repeats rate-limited.
func TestInterfaceOpenFailuresLogBounded(t *testing.T) {
	var log testutil.SyncBuffer
	vlog.Default.SetConsole(&log)
	defer vlog.Default.SetConsole(os.Stderr)
	sw := newSwitchWithBridge(t, `[]`)
	text, _ := json.Marshal(strings.Repeat("\x01", 64<<10))
	err := transact(t, sw.db, `[
		{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"lerrlog","type":"vxlan","options":["map",[["remote_ip",`+string(text)+`]]]}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"lerrlog","interfaces":["named-uuid","i"]}},
		{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["set",[["named-uuid","p"]]]]]}]`)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		sw.reconcile()
	}
	lines := 0
	for _, l := range strings.Split(log.String(), "\n") {
		if !strings.Contains(l, "lerrlog") {
			continue
		}
		lines++
		if len(l) > 2*maxErrorText {
			t.Errorf("a log line of %d bytes", len(l))
			break
		}
	}
	if lines > 30 { // the rate limit is shared with other tests: 0 is possible
		t.Errorf("100 reconfigurations logged the failing interface %d times, want at most 30", lines)
	}
	if n := len(log.String()); n > 64<<10 {
		t.Errorf("100 reconfigurations logged %d bytes", n)
	}
}

// TestCheckErrorsQuoteShort: a refused other_config value is quoted in
// the transaction error; a 4 MiB value made a 4 MiB error. It quotes the
// first 64 bytes.
func TestCheckErrorsQuoteShort(t *testing.T) {
	sw := newSwitchWithBridge(t, `[]`)
	err := setBridgeConfig(t, sw.db, "mac-table-size", strings.Repeat("9", 4<<20))
	if err == nil || len(err.Error()) > 1024 || !strings.Contains(err.Error(), "mac-table-size") {
		n := 0
		if err != nil {
			n = len(err.Error())
		}
		t.Errorf("a 4 MiB mac-table-size: error of %d bytes, want a short one naming the key", n)
	}
}
