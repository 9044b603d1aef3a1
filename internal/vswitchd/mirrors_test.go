package vswitchd

import (
	"testing"

	"gvs/internal/ovsdb"
)

// mirrorStatistics returns the statistics column of the mirror named
// name, as a map.
func mirrorStatistics(t *testing.T, db *ovsdb.DB, name string) map[string]int64 {
	t.Helper()
	tbl := db.Schema().Tables["Mirror"]
	for _, r := range db.Rows("Mirror") {
		if n, _ := r.Column(tbl, "name").Str(); n != name {
			continue
		}
		d := r.Column(tbl, "statistics")
		out := map[string]int64{}
		for i, k := range d.Keys {
			out[k.(string)], _ = d.Values[i].(int64)
		}
		return out
	}
	t.Fatalf("no mirror %q", name)
	return nil
}

func mirrorUUID(t *testing.T, db *ovsdb.DB, name string) ovsdb.UUID {
	t.Helper()
	tbl := db.Schema().Tables["Mirror"]
	for _, r := range db.Rows("Mirror") {
		if n, _ := r.Column(tbl, "name").Str(); n == name {
			return r.UUID
		}
	}
	t.Fatalf("no mirror %q", name)
	return ovsdb.UUID{}
}

// TestMirrorStatisticsWithoutOutput follows OVS 3.1 (checked against its
// ovs-vswitchd): a mirror that loses its output port keeps the counters
// last written, a mirror that never had an output has no statistics, and
// a mirror that gets an output again counts from zero.
func TestMirrorStatisticsWithoutOutput(t *testing.T) {
	db := newMemDB(t)
	sw := New(db)
	defer sw.state.close(true)
	port := func(name string) string {
		return `{"op":"insert","table":"Interface","uuid-name":"i` + name + `","row":{"name":"` + name + `","type":"memory"}},
			{"op":"insert","table":"Port","uuid-name":"` + name + `","row":{"name":"` + name + `","interfaces":["named-uuid","i` + name + `"]}},`
	}
	err := transact(t, db, `[`+port("mstat1")+port("mstat2")+port("mstat3")+`
		{"op":"insert","table":"Mirror","uuid-name":"m0","row":{"name":"m0","select_all":true,"output_port":["named-uuid","mstat2"]}},
		{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"br0",
			"ports":["set",[["named-uuid","mstat1"],["named-uuid","mstat2"],["named-uuid","mstat3"]]],"mirrors":["named-uuid","m0"]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	m0 := mirrorUUID(t, db, "m0")
	stats := sw.state.mirrorStat[m0]
	if stats == nil {
		t.Fatal("mirror m0 has no counters")
	}
	stats.Packets.Add(3) // as if three packets were mirrored
	stats.Bytes.Add(180)
	sw.refreshStats()
	if got := mirrorStatistics(t, db, "m0"); got["tx_packets"] != 3 || got["tx_bytes"] != 180 {
		t.Fatalf("m0 statistics %v, want 3 packets, 180 bytes", got)
	}

	// The output port goes away: the mirror is out of effect and keeps
	// its last counters.
	if err := transact(t, db, `[{"op":"mutate","table":"Bridge","where":[],"mutations":[["ports","delete",["set",[["uuid","`+
		portUUID(t, db, "mstat2")+`"]]]]]}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	sw.refreshStats()
	if got := mirrorStatistics(t, db, "m0"); got["tx_packets"] != 3 || got["tx_bytes"] != 180 {
		t.Fatalf("m0 statistics %v after losing its output, want the last counters", got)
	}

	// A mirror that never had an output has no statistics.
	if err := transact(t, db, `[{"op":"insert","table":"Mirror","uuid-name":"m1","row":{"name":"m1","select_all":true}},
		{"op":"mutate","table":"Bridge","where":[],"mutations":[["mirrors","insert",["set",[["named-uuid","m1"]]]]]}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	sw.refreshStats()
	if got := mirrorStatistics(t, db, "m1"); len(got) != 0 {
		t.Fatalf("m1, without output, has statistics %v", got)
	}

	// m0 copies again: it counts from zero.
	if err := transact(t, db, `[{"op":"update","table":"Mirror","where":[["name","==","m0"]],"row":{"output_port":["uuid","`+
		portUUID(t, db, "mstat3")+`"]}}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	sw.refreshStats()
	if got := mirrorStatistics(t, db, "m0"); got["tx_packets"] != 0 || got["tx_bytes"] != 0 {
		t.Fatalf("m0 statistics %v with a new output, want zero counters", got)
	}
}

func portUUID(t *testing.T, db *ovsdb.DB, name string) string {
	t.Helper()
	tbl := db.Schema().Tables["Port"]
	for _, r := range db.Rows("Port") {
		if n, _ := r.Column(tbl, "name").Str(); n == name {
			return r.UUID.String()
		}
	}
	t.Fatalf("no port %q", name)
	return ""
}
