package vswitchd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBridgeNameCannotLeaveRundir: a bridge's OpenFlow socket is
// <rundir>/<name>.mgmt, so a name with a "/" would have gvsd, as root,
// create a socket wherever the name points. Such a name fails the
// transaction; one already in a database (written by another program)
// gets no socket.
func TestBridgeNameCannotLeaveRundir(t *testing.T) {
	base := t.TempDir()
	rundir := filepath.Join(base, "run")
	if err := os.Mkdir(rundir, 0o755); err != nil {
		t.Fatal(err)
	}
	sw := newSwitchWithBridge(t, `[]`)
	sw.SetRunDir(rundir)
	for _, name := range []string{"../evil", "a/b", "/tmp/x"} {
		err := transact(t, sw.db, `[{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"`+name+`"}},
			{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["bridges","insert",["set",[["named-uuid","b"]]]]]}]`)
		if err == nil || !strings.Contains(err.Error(), "bridge name") {
			t.Errorf("bridge %q: transaction error %v, want one about the bridge name", name, err)
		}
	}

	// Written before the check existed: applied without a socket.
	db := newMemDB(t)
	if err := transact(t, db, `[{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"../evil"}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`); err != nil {
		t.Fatal(err)
	}
	old := New(db)
	t.Cleanup(func() { old.state.close(true) })
	old.SetRunDir(rundir)
	old.reconcile()
	if _, err := os.Lstat(filepath.Join(base, "evil.mgmt")); err == nil {
		t.Errorf("bridge ../evil made a socket outside the run directory")
	}
}
