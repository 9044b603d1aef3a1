package conntrack

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"gvs/internal/packet"
)

// TestNoAllocEstablished: a packet of an existing connection allocates
// nothing.
func TestNoAllocEstablished(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	s7(t, tr, c.fromL(fSYN, nil, true), true, sec)
	s7(t, tr, c.fromR(fSYN|fACK, nil, true), false, sec)
	s7(t, tr, c.fromL(fACK, nil, true), true, sec)
	frame := c.fromL(fACK, nil, false)
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(frame, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	a := Action{}
	n := testing.AllocsPerRun(1000, func() {
		if r := tr.Execute(frame, &key, &off, &a, 2*sec); r.State != StateTrk|StateEst {
			t.Fatalf("state %s", stateString(r.State))
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}

// fillUDP commits n UDP connections and returns parsed packets of some of
// them (the reply direction, so that each is a hit).
func fillUDP(tb testing.TB, tr *Tracker, n int) (frames [][]byte, keys []packet.Key, offs []packet.Offsets) {
	base := udpFrame("10.0.0.1", "10.200.0.2", 1, 53)
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(base, 1, &key, &off); err != nil {
		tb.Fatal(err)
	}
	a := Action{Commit: true}
	for i := range n {
		binary.BigEndian.PutUint32(key.NwSrc[:], 0x0a000000|uint32(i>>16))
		binary.BigEndian.PutUint16(base[14+20:], uint16(i))
		tr.Execute(base, &key, &off, &a, sec)
	}
	const sample = 1024
	for i := range sample {
		j := (i * 7919) % n
		f := udpFrame("10.200.0.2", fmt.Sprintf("10.%d.%d.%d", 0, byte(j>>24), byte(j>>16)), 53, uint16(j))
		var k packet.Key
		var o packet.Offsets
		if err := packet.Parse(f, 1, &k, &o); err != nil {
			tb.Fatal(err)
		}
		binary.BigEndian.PutUint32(k.NwDst[:], 0x0a000000|uint32(j>>16))
		frames = append(frames, f)
		keys = append(keys, k)
		offs = append(offs, o)
	}
	return frames, keys, offs
}

// BenchmarkLookupHit: one packet of an existing connection (UDP, reply
// direction) at several table sizes; ns/op should stay flat.
func BenchmarkLookupHit(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			tr := New(Config{})
			frames, keys, offs := fillUDP(b, tr, n)
			if tr.Stats().Conns != uint64(n) {
				b.Fatalf("%d conns", tr.Stats().Conns)
			}
			a := Action{}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				j := i & 1023
				if r := tr.Execute(frames[j], &keys[j], &offs[j], &a, 2*sec); r.State&StateRpl == 0 {
					b.Fatalf("miss: %s", stateString(r.State))
				}
			}
		})
	}
}

// BenchmarkTCPEstablished: an established TCP connection's segment.
func BenchmarkTCPEstablished(b *testing.B) {
	tr := New(Config{})
	c := newConv()
	s7(b, tr, c.fromL(fSYN, nil, true), true, sec)
	s7(b, tr, c.fromR(fSYN|fACK, nil, true), false, sec)
	s7(b, tr, c.fromL(fACK, nil, true), true, sec)
	frame := c.fromL(fACK, nil, false)
	var key packet.Key
	var off packet.Offsets
	_ = packet.Parse(frame, 1, &key, &off)
	a := Action{}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		tr.Execute(frame, &key, &off, &a, 2*sec)
	}
}

// TestBytesPerConn measures the heap that 1M connections take (skipped
// in -short runs). The figure is logged; it fails above 256 bytes.
func TestBytesPerConn(t *testing.T) {
	if testing.Short() {
		t.Skip("1M connections: not in -short runs")
	}
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	rss0 := rssBytes(t)
	tr := New(Config{})
	const n = 1_000_000
	fillUDP(t, tr, n)
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := float64(m1.HeapAlloc-m0.HeapAlloc) / n
	t.Logf("%d connections: %.0f bytes of heap each, %.0f bytes of RSS each", n, per, float64(rssBytes(t)-rss0)/n)
	if per > 256 {
		t.Fatalf("%.0f bytes per connection, want <= 256", per)
	}
	runtime.KeepAlive(tr)
}

// rssBytes reads the process's resident set size.
func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// BenchmarkCommitUDP: a new connection's first packet with ct(commit),
// the cost that bounds new connections per second; the table is swept
// every 2^18 connections so that it stays below the global limit.
func BenchmarkCommitUDP(b *testing.B) {
	tr := New(Config{})
	base := udpFrame("10.0.0.1", "10.200.0.2", 1, 53)
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(base, 1, &key, &off); err != nil {
		b.Fatal(err)
	}
	a := Action{Commit: true}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		binary.BigEndian.PutUint32(key.NwSrc[:], 0x0a000000|uint32(i>>16))
		binary.BigEndian.PutUint16(base[14+20:], uint16(i))
		now := int64(i>>18) * 40 * sec
		if r := tr.Execute(base, &key, &off, &a, now); r.State&StateNew == 0 {
			b.Fatalf("not new: %s", stateString(r.State))
		}
		if i&(1<<18-1) == 1<<18-1 {
			b.StopTimer()
			tr.Sweep(now + 40*sec)
			b.StartTimer()
		}
	}
}

// synFlood returns a tracker whose zone 0 is at its limit of one
// connection, and a SYN of another connection, parsed.
func synFlood(tb testing.TB) (tr *Tracker, frame []byte, key *packet.Key, off *packet.Offsets) {
	tr = New(Config{})
	if err := tr.SetZoneLimit(0, 1); err != nil {
		tb.Fatal(err)
	}
	c := newConv()
	if r := exec(tb, tr, c.fromL(packet.TCPFlagSYN, nil, false), Action{Commit: true}, sec); r.LimitDrop {
		tb.Fatal("the first connection was refused")
	}
	c.lp++
	frame = c.fromL(packet.TCPFlagSYN, nil, false)
	key, off = new(packet.Key), new(packet.Offsets)
	if err := packet.Parse(frame, 1, key, off); err != nil {
		tb.Fatal(err)
	}
	return tr, frame, key, off
}

// BenchmarkSYNFloodRefused: a SYN flood's packet through S7's flows with
// the zone at its limit, as the datapath runs it: ct(table=0) tracks it
// +new without committing, then ct(commit) in the recirculation is
// refused. Each SYN has a source port of its own.
func BenchmarkSYNFloodRefused(b *testing.B) {
	tr, frame, key, off := synFlood(b)
	track, commit := Action{}, Action{Commit: true}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sport := uint16(2000 + i%60000)
		binary.BigEndian.PutUint16(frame[14+20:], sport)
		key.TpSrc = sport
		key.CtState, key.CtZone = 0, 0
		r := tr.Execute(frame, key, off, &track, 2*sec)
		key.CtState, key.CtZone = r.State, r.Zone
		if r = tr.Execute(frame, key, off, &commit, 2*sec); !r.LimitDrop {
			b.Fatalf("commit not refused: %s", stateString(r.State))
		}
	}
}
