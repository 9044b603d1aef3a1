package vswitchd

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
)

// newMemDB returns an in-memory database with the Open_vSwitch schema and
// no switch (so no row checks) yet.
func newMemDB(t testing.TB) *ovsdb.DB {
	t.Helper()
	schema, err := ovsdb.ParseSchema(SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	return ovsdb.NewDB(schema, nil)
}

// transact runs the JSON operations in text and returns the error of the
// transaction, nil if it committed.
func transact(t testing.TB, db Database, text string) error {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader([]byte(text)))
	d.UseNumber()
	var ops []any
	if err := d.Decode(&ops); err != nil {
		t.Fatalf("bad ops %s: %v", text, err)
	}
	return checkResults(db.Transact(ops))
}

// newSwitchWithBridge makes a database holding bridge br0 with the given
// other_config, written before any check is registered (as a database
// file written by an older gvsd or another program would be), then the
// switch on it.
func newSwitchWithBridge(t *testing.T, otherConfig string) *Switch {
	t.Helper()
	db := newMemDB(t)
	err := transact(t, db, `[{"op":"insert","table":"Bridge","uuid-name":"b",
		"row":{"name":"br0","other_config":["map",`+otherConfig+`]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw := New(db)
	t.Cleanup(func() { sw.state.close(true) })
	return sw
}

func setBridgeConfig(t *testing.T, db Database, key, value string) error {
	return transact(t, db, `[{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],
		"mutations":[["other_config","delete",["set",["`+key+`"]]],["other_config","insert",["map",[["`+key+`","`+value+`"]]]]]}]`)
}

// TestHugeMACTableSizeInDatabaseStarts checks that a database already
// holding a huge mac-table-size (which preallocated 32 GiB, or panicked)
// is applied, clamped, without allocating for it.
func TestHugeMACTableSizeInDatabaseStarts(t *testing.T) {
	for _, size := range []string{"1000000000", "99999999999999999999", "4611686018427387904"} {
		t.Run(size, func(t *testing.T) {
			sw := newSwitchWithBridge(t, `[["mac-table-size","`+size+`"]]`)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			sw.reconcile()
			runtime.ReadMemStats(&after)
			br := sw.state.bridges["br0"]
			if br == nil {
				t.Fatal("bridge br0 was not created")
			}
			if got := br.MACs.Limit(); got != ofproto.MaxMACTableSize && size != "99999999999999999999" {
				t.Errorf("MAC table limit %d, want %d", got, ofproto.MaxMACTableSize)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
				t.Errorf("applying the bridge allocated %d bytes", grew)
			}
		})
	}
}

// TestMACTableSizeCheckedAtCommit checks that a transaction writing a
// mac-table-size out of range fails with a constraint violation naming
// the key and the range, while an old bad value does not block other
// changes to the row, and a good one is applied to the live bridge.
func TestMACTableSizeCheckedAtCommit(t *testing.T) {
	sw := newSwitchWithBridge(t, `[["mac-table-size","2000000000"]]`)
	sw.reconcile()
	if err := setBridgeConfig(t, sw.db, "forward-bpdu", "true"); err != nil {
		t.Fatalf("an old bad value blocked another change: %v", err)
	}
	for _, bad := range []string{"0", "-5", "1000001", "1000000000", "lots"} {
		err := setBridgeConfig(t, sw.db, "mac-table-size", bad)
		if err == nil || !strings.Contains(err.Error(), "constraint violation") ||
			!strings.Contains(err.Error(), "other_config:mac-table-size") || !strings.Contains(err.Error(), "from 1 to 1000000") {
			t.Errorf("mac-table-size=%s: err = %v, want a constraint violation with the range", bad, err)
		}
	}
	br := sw.state.bridges["br0"]
	for i := range 100 {
		br.MACs.Learn([6]byte{2, 0, 0, 0, 0, byte(i)}, 1, 1)
	}
	if err := setBridgeConfig(t, sw.db, "mac-table-size", "20"); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if got := br.MACs.Limit(); got != 20 {
		t.Fatalf("live bridge's limit %d after mac-table-size=20", got)
	}
	if n := len(br.MACs.Entries()); n != 20 {
		t.Fatalf("%d entries after shrinking to 20", n)
	}
	if err := setBridgeConfig(t, sw.db, "mac-table-size", "1"); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if got := br.MACs.Limit(); got != minMACTableSize {
		t.Fatalf("mac-table-size=1 gave limit %d, want OVS's minimum %d", got, minMACTableSize)
	}
}

// TestMemoryDepthCheckedAtCommit checks options:depth of a memory port:
// refused at commit out of range, and an Interface error (not an
// allocation of the requested size) when the database already holds it.
func TestMemoryDepthCheckedAtCommit(t *testing.T) {
	db := newMemDB(t)
	addPort := `[{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"memdeep0","type":"memory","options":["map",[["depth","1000000000"]]]}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"memdeep0","interfaces":["named-uuid","i"]}},
		{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"br0","ports":["named-uuid","p"]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`
	if err := transact(t, db, addPort); err != nil {
		t.Fatal(err)
	}
	sw := New(db)
	defer sw.state.close(true)
	err := transact(t, db, `[{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"memdeep1","type":"memory","options":["map",[["depth","2000"]]]}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"memdeep1","interfaces":["named-uuid","i"]}},
		{"op":"mutate","table":"Bridge","where":[],"mutations":[["ports","insert",["set",[["named-uuid","p"]]]]]}]`)
	if err == nil || !strings.Contains(err.Error(), "options:depth") || !strings.Contains(err.Error(), "from 1 to 1024") {
		t.Fatalf("depth=2000: err = %v, want a constraint violation with the range", err)
	}
	sw.reconcile()
	ifc := sw.state.ifaces["memdeep0"]
	if ifc == nil || ifc.dev != nil || !strings.Contains(ifc.err, "depth") {
		t.Fatalf("interface with depth=1000000000: %+v, want an error", ifc)
	}
	if _, ok := netdev.LookupMemory("memdeep0"); ok {
		t.Fatal("the memory port was opened")
	}
}

// TestStatsIntervalBounded checks that a huge stats-update-interval is
// taken as the longest interval, not overflowed into a short one.
func TestStatsIntervalBounded(t *testing.T) {
	db := newMemDB(t)
	sw := New(db)
	defer sw.state.close(true)
	for value, want := range map[string]time.Duration{
		"99999999999999999": maxStatsIntervalMs * time.Millisecond,
		"5000":              5 * time.Second,
		"10":                minStatsInterval,
	} {
		if err := transact(t, db, `[{"op":"delete","table":"Open_vSwitch","where":[]},
			{"op":"insert","table":"Open_vSwitch","row":{"other_config":["map",[["stats-update-interval","`+value+`"]]]}}]`); err != nil {
			t.Fatal(err)
		}
		if got := sw.statsInterval(); got != want {
			t.Errorf("stats-update-interval=%s: %v, want %v", value, got, want)
		}
	}
}
