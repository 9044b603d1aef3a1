package ofproto

import (
	"runtime"
	"testing"
	"time"
)

func mac(b byte) [6]byte { return [6]byte{2, 0, 0, 0, 0, b} }

func TestMACTableLearnLookupPerVLAN(t *testing.T) {
	tb := NewMACTable(16, 300)
	tb.Learn(mac(1), 10, 3)
	if p, ok := tb.Lookup(mac(1), 10); !ok || p != 3 {
		t.Fatalf("Lookup = %d, %v", p, ok)
	}
	if _, ok := tb.Lookup(mac(1), 20); ok {
		t.Fatal("learned on VLAN 10, found on VLAN 20")
	}
	tb.Learn(mac(1), 10, 4) // the host moved
	if p, _ := tb.Lookup(mac(1), 10); p != 4 {
		t.Fatalf("after move, port = %d", p)
	}
	if e := tb.Entries(); len(e) != 1 || e[0].Port != 4 || e[0].VLAN != 10 || e[0].MAC != mac(1) {
		t.Fatalf("Entries = %+v", e)
	}
	tb.FlushPort(4)
	if _, ok := tb.Lookup(mac(1), 10); ok {
		t.Fatal("FlushPort kept the entry")
	}
	tb.Learn(mac(2), 1, 1)
	tb.Flush()
	if len(tb.Entries()) != 0 {
		t.Fatal("Flush kept entries")
	}
}

func TestMACTableLimitAndAging(t *testing.T) {
	tb := NewMACTable(4, 300)
	for i := byte(0); i < 10; i++ {
		tb.Learn(mac(i), 1, 1)
	}
	if n := len(tb.Entries()); n != 4 {
		t.Fatalf("table holds %d entries, limit 4", n)
	}
	tb.SetAging(0)
	tb.epoch = tb.epoch.Add(-2 * time.Second) // everything is now 2 s old
	if n := len(tb.Entries()); n != 0 {
		t.Fatalf("%d entries survived aging", n)
	}
	tb.SetAging(300)
	tb.Learn(mac(1), 1, 2) // expired slots are reused despite the limit
	if p, ok := tb.Lookup(mac(1), 1); !ok || p != 2 {
		t.Fatalf("learning after expiry: %d, %v", p, ok)
	}
}

// TestMACTableFlushPortForgets checks that the entries of a port that
// went away are forgotten for every address, including those whose hash
// has a zero top byte (the old 8-bit check matched a cleared value for
// them, and sent their frames to port 0).
func TestMACTableFlushPortForgets(t *testing.T) {
	tb := NewMACTable(64, 300)
	macs := collidingMACs(4)
	for i, m := range macs {
		tb.Learn(m, 1, uint32(10+i))
	}
	for i, m := range macs {
		tb.FlushPort(uint32(10 + i))
		if p, ok := tb.Lookup(m, 1); ok {
			t.Fatalf("address %d still found on port %d after its port was flushed", i, p)
		}
	}
}

// TestMACTableGrowsOnDemand checks that a huge mac-table-size costs no
// memory until addresses are learned, and that the table grows to hold
// them.
func TestMACTableGrowsOnDemand(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	tb := NewMACTable(1<<40, 300)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
		t.Fatalf("an empty table allocated %d bytes", grew)
	}
	if tb.Limit() != MaxMACTableSize {
		t.Fatalf("limit %d, want it clamped to %d", tb.Limit(), MaxMACTableSize)
	}
	const n = 5000
	for i := range n {
		tb.Learn([6]byte{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}, 1, uint32(i))
	}
	for i := range n {
		if p, ok := tb.Lookup([6]byte{2, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}, 1); !ok || p != uint32(i) {
			t.Fatalf("address %d: Lookup = %d, %v", i, p, ok)
		}
	}
	if slots := len(tb.tab.Load().slots); slots > 4*n {
		t.Fatalf("%d slots for %d entries", slots, n)
	}
}

// TestMACTableSetLimitEvictsOldest checks that lowering mac-table-size on
// a live table keeps the most recently seen entries, frees the rest, and
// that raising it lets the table learn again.
func TestMACTableSetLimitEvictsOldest(t *testing.T) {
	tb := NewMACTable(1000, 300)
	for i := range 100 {
		tb.Learn(mac(byte(i)), 1, 1)
	}
	tb.epoch = tb.epoch.Add(-10 * time.Second) // all are 10 s old
	for i := 90; i < 100; i++ {
		tb.Learn(mac(byte(i)), 1, 2) // these were seen just now
	}
	tb.SetLimit(10)
	e := tb.Entries()
	if len(e) != 10 {
		t.Fatalf("%d entries after SetLimit(10)", len(e))
	}
	for _, x := range e {
		if x.Port != 2 {
			t.Fatalf("kept %+v, an older entry", x)
		}
	}
	if slots := len(tb.tab.Load().slots); slots != minSlots {
		t.Fatalf("%d slots for 10 entries", slots)
	}
	tb.Learn(mac(200), 1, 3)
	if _, ok := tb.Lookup(mac(200), 1); ok {
		t.Fatal("learned beyond the new limit")
	}
	tb.SetLimit(20)
	tb.Learn(mac(200), 1, 3)
	if p, ok := tb.Lookup(mac(200), 1); !ok || p != 3 {
		t.Fatalf("after raising the limit: %d, %v", p, ok)
	}
}

// TestMACTableNoAllocations checks the packet path: a lookup, and the
// learning of a known address, allocate nothing.
func TestMACTableNoAllocations(t *testing.T) {
	tb := NewMACTable(8192, 300)
	for i := range 100 {
		tb.Learn(mac(byte(i)), 1, uint32(i))
	}
	n := testing.AllocsPerRun(1000, func() {
		tb.Learn(mac(7), 1, 7)
		tb.Lookup(mac(8), 1)
		tb.Lookup(mac(200), 1)
	})
	if n != 0 {
		t.Fatalf("%v allocations per learn and lookup", n)
	}
}

func BenchmarkMACLookup(b *testing.B) {
	tb := NewMACTable(8192, 300)
	for i := 0; i < 1000; i++ {
		tb.Learn([6]byte{2, 0, 0, 0, byte(i >> 8), byte(i)}, 10, uint32(i))
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tb.Lookup([6]byte{2, 0, 0, 0, byte(i >> 8 & 3), byte(i)}, 10)
	}
}

// TestMACTablesShareAMemoryBudget fills many bridges' MAC tables, each
// allowed a million addresses, with addresses a packet sender makes up:
// together their slots stay within the shared budget (1,024 bridges of
// 48 MiB each were possible before), learning goes on within the room
// they have, and a table's memory is given back when it goes away.
func TestMACTablesShareAMemoryBudget(t *testing.T) {
	const budget = 2 << 20
	old := macMemBudget.Load()
	macMemBudget.Store(budget)
	t.Cleanup(func() { macMemBudget.Store(old) })
	usedBefore := MACTableMemoryUsed()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	var tables []*MACTable
	for i := range 64 {
		mt := NewMACTable(MaxMACTableSize, 300)
		tables = append(tables, mt)
		for j := range 20000 {
			mt.Learn([6]byte{2, byte(i), 0, byte(j >> 16), byte(j >> 8), byte(j)}, 0, 1)
		}
		if _, ok := mt.Lookup([6]byte{2, byte(i), 0, 0, 0, 0}, 0); !ok {
			t.Fatalf("table %d did not learn its first address", i)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(before)
	t.Logf("64 tables of up to 20000 addresses: heap grew %d KiB, charged %d KiB, budget %d KiB",
		grown>>10, (MACTableMemoryUsed()-usedBefore)>>10, budget>>10)
	if grown > 2*budget {
		t.Errorf("the tables hold %d KiB, more than twice the %d KiB budget", grown>>10, budget>>10)
	}
	if MACTableMemoryUsed() > budget+slotsBytes(minSlots)*64 {
		t.Errorf("charged %d bytes past the budget of %d", MACTableMemoryUsed(), budget)
	}
	runtime.KeepAlive(tables)
	tables = nil
	collectUntil(func() bool { return MACTableMemoryUsed() <= usedBefore })
	if used := MACTableMemoryUsed(); used > usedBefore {
		t.Errorf("%d bytes still charged after the tables went away (%d before)", used, usedBefore)
	}
}

// collectUntil runs the garbage collector, and the cleanups it queues,
// until done says so or for about 200 ms.
func collectUntil(done func() bool) {
	for range 20 {
		runtime.GC()
		if done() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
