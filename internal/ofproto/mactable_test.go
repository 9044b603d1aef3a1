package ofproto

import (
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
