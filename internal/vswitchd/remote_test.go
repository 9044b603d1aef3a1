package vswitchd

import (
	"strings"
	"sync/atomic"
	"testing"

	"gvs/internal/ovsdb"
)

// fakeRemote is a database "served by another server": no row checks,
// and writable only when the test says so (connected and holding the
// ovs_vswitchd lock, for a real replica).
type fakeRemote struct {
	*ovsdb.DB
	writable atomic.Bool
}

func (f *fakeRemote) Writable() bool { return f.writable.Load() }

func column(t *testing.T, db *ovsdb.DB, table, col string) ovsdb.Datum {
	t.Helper()
	rows := db.Rows(table)
	if len(rows) != 1 {
		t.Fatalf("%s has %d rows, want 1", table, len(rows))
	}
	return rows[0].Column(db.Schema().Tables[table], col)
}

// With a remote database the switch applies nothing until it is
// writable, then describes itself in the root row, applies and
// acknowledges; rows that fail a check, which the remote server
// accepted, are reported (Interface.error, the log) and not refused.
func TestRemoteDatabase(t *testing.T) {
	db := &fakeRemote{DB: newMemDB(t)}
	if err := transact(t, db, `[{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"br0"}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"],"next_cfg":1}}]`); err != nil {
		t.Fatal(err)
	}
	sw := New(db)
	defer sw.state.close(true)
	sw.reconcile()
	if len(sw.state.bridges) != 0 {
		t.Fatal("the switch applied a remote database before holding its lock")
	}
	if n, _ := column(t, db.DB, "Open_vSwitch", "cur_cfg").Int(); n != 0 {
		t.Fatalf("cur_cfg = %d before the lock", n)
	}
	db.writable.Store(true)
	sw.reconcile()
	if sw.state.bridges["br0"] == nil {
		t.Fatal("br0 not applied once writable")
	}
	if n, _ := column(t, db.DB, "Open_vSwitch", "cur_cfg").Int(); n != 1 {
		t.Errorf("cur_cfg = %d, want 1", n)
	}
	if v, _ := column(t, db.DB, "Open_vSwitch", "ovs_version").Str(); v != Version {
		t.Errorf("ovs_version = %q, want %q (Init on the remote database)", v, Version)
	}

	// A reload (a reconnection, perhaps to a server given another
	// database) describes the switch in the root row again.
	if err := transact(t, db, `[{"op":"update","table":"Open_vSwitch","where":[],"row":{"ovs_version":["set",[]]}}]`); err != nil {
		t.Fatal(err)
	}
	sw.Reconfigure()
	sw.reconcile()
	if v, _ := column(t, db.DB, "Open_vSwitch", "ovs_version").Str(); v != Version {
		t.Errorf("ovs_version = %q after a reload, want %q", v, Version)
	}

	// No row checks: the write succeeds, as it would on ovsdb-server.
	err := transact(t, db, `[{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"memremote0","type":"memory","options":["map",[["depth","2000"]]]}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"memremote0","interfaces":["named-uuid","i"]}},
		{"op":"mutate","table":"Bridge","where":[],"mutations":[["ports","insert",["set",[["named-uuid","p"]]]],
			["other_config","insert",["map",[["mac-table-size","0"]]]]]}]`)
	if err != nil {
		t.Fatalf("a remote database refused what only gvsd's own checks refuse: %v", err)
	}
	sw.reconcile()
	if e, _ := column(t, db.DB, "Interface", "error").Str(); !strings.Contains(e, "depth") {
		t.Errorf("Interface.error = %q, want the depth problem", e)
	}
	if len(sw.state.violations) != 1 {
		t.Errorf("violations %v, want the memory interface's", sw.state.violations)
	}
	found := false
	for p := range sw.checks.logged {
		found = found || strings.Contains(p, "mac-table-size")
	}
	if !found {
		t.Errorf("mac-table-size=0 not reported; logged %v", sw.checks.logged)
	}
}
