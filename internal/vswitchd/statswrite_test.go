package vswitchd

import "testing"

// TestStatisticsWritesDoNotReconfigure: gvsd's own writes of a
// statistics column (Interface's and Mirror's, every
// stats-update-interval; the root row's here, which needs no other rows)
// do not wake the reconciler, which would make every cached flow stale;
// a change of any other column does.
func TestStatisticsWritesDoNotReconfigure(t *testing.T) {
	db := newMemDB(t)
	sw := New(db)
	if err := transact(t, db, `[{"op":"insert","table":"Open_vSwitch","row":{}}]`); err != nil {
		t.Fatal(err)
	}
	drained := func() bool {
		select {
		case <-sw.changed:
			return true
		default:
			return false
		}
	}
	if !drained() {
		t.Fatal("inserting the root row did not wake the reconciler")
	}
	if err := transact(t, db, `[{"op":"update","table":"Open_vSwitch","where":[],
		"row":{"statistics":["map",[["cpu","2"]]]}}]`); err != nil {
		t.Fatal(err)
	}
	if drained() {
		t.Error("a statistics write woke the reconciler")
	}
	if err := transact(t, db, `[{"op":"update","table":"Open_vSwitch","where":[],
		"row":{"statistics":["map",[["cpu","3"]]],"other_config":["map",[["flow-limit","1000"]]]}}]`); err != nil {
		t.Fatal(err)
	}
	if !drained() {
		t.Error("a write of statistics and other_config did not wake the reconciler")
	}
}
