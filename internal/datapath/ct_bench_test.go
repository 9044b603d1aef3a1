package datapath_test

import (
	"encoding/binary"
	"testing"

	"gvs/internal/conntrack"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
)

// s7Flows are S7's five flows, with OpenFlow port numbers: 1 is the
// left, 2 the right.
var s7Flows = []string{
	"table=0, priority=50, ct_state=-trk, tcp, in_port=1, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+new, tcp, in_port=1, actions=ct(commit),2",
	"table=0, priority=50, ct_state=-trk, tcp, in_port=2, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=2, actions=1",
	"table=0, priority=50, ct_state=+trk+est, tcp, in_port=1, actions=2",
}

// s7Switch is a bridge of two trunk ports with S7's flows only (no
// NORMAL) and the datapath's connection tracker.
func s7Switch(t testing.TB) *testSwitch {
	ts := newTestSwitch(t, map[uint32]ofproto.PortVLAN{1: trunk(), 2: trunk()})
	ts.br.Tables.Delete(ofproto.Selector{Table: ofproto.TableAll})
	for _, s := range s7Flows {
		f, err := flow.ParseFlow(s, flow.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.br.Tables.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	ts.dp.SetTracker(newTracker())
	return ts
}

// tcpSegment builds an Ethernet/IPv4/TCP frame from 192.168.0.2:1024 to
// 10.0.0.2:2048 (or back, with reply set) with checksums.
func tcpSegment(t testing.TB, reply bool, flags byte, seq, ack uint32, payload int) []byte {
	src, dst := []byte{192, 168, 0, 2}, []byte{10, 0, 0, 2}
	sport, dport := uint16(1024), uint16(2048)
	smac, dmac := macA, macB
	if reply {
		src, dst, sport, dport, smac, dmac = dst, src, dport, sport, dmac, smac
	}
	b := append(append([]byte{}, dmac[:]...), smac[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	ip := []byte{0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 6, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+payload))
	b = append(append(append(b, ip...), src...), dst...)
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12], tcp[13] = 5<<4, flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	b = append(b, tcp...)
	b = append(b, make([]byte, payload)...)
	return withChecksums(t, b, false)
}

const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpPSH = 0x08
	tcpACK = 0x10
)

// s7Handshake opens the connection from the left and returns the threads
// of both ports.
func s7Handshake(t testing.TB, ts *testSwitch) (left, right *datapath.TestThread) {
	left, right = ts.dp.NewTestThread(1), ts.dp.NewTestThread(2)
	left.Process([][]byte{tcpSegment(t, false, tcpSYN, 100, 0, 0)})
	right.Process([][]byte{tcpSegment(t, true, tcpSYN|tcpACK, 200, 101, 0)})
	left.Process([][]byte{tcpSegment(t, false, tcpACK, 101, 201, 0)})
	return left, right
}

// TestS7ThroughDatapath runs S7's flows through the bridge, the flow
// cache and the tracker: the handshake opened from the left crosses both
// ways, a SYN opened from the right goes nowhere.
func TestS7ThroughDatapath(t *testing.T) {
	ts := s7Switch(t)
	s7Handshake(t, ts)
	if got := len(drain(ts.ports[2])); got != 2 {
		t.Errorf("right got %d segments of the handshake, want 2 (SYN, ACK)", got)
	}
	if got := len(drain(ts.ports[1])); got != 1 {
		t.Errorf("left got %d segments, want 1 (SYN-ACK)", got)
	}
	syn := tcpSegment(t, true, tcpSYN, 900, 0, 0)
	binary.BigEndian.PutUint16(syn[34:], 3000) // a connection of its own
	ts.dp.NewTestThread(2).Process([][]byte{withChecksums(t, syn, false)})
	if got := len(drain(ts.ports[1])); got != 0 {
		t.Errorf("a SYN from the right reached the left")
	}
}

// BenchmarkConntrackEstablished measures a segment of an established
// connection through S7's flows: a cache hit (ct_state=-trk), the
// tracker, a second cache hit (+trk+est) and the output.
func BenchmarkConntrackEstablished(b *testing.B) {
	ts := s7Switch(b)
	out := &sink{Netdev: ts.ports[2]}
	ts.dp.Config().Ports[2].Dev = out
	left, _ := s7Handshake(b, ts)
	seg := tcpSegment(b, false, tcpACK|tcpPSH, 101, 201, 64)
	batch := make([][]byte, datapath.BatchSize)
	for i := range batch {
		batch[i] = seg
	}
	left.Process(batch)
	before := out.frames
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		left.Process(batch)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/packet")
	if out.frames == before {
		b.Fatal("no segment reached the right")
	}
}

// s7Limited is s7Switch with zone 0 limited to the one connection that
// s7Handshake opens, and a SYN of another connection from the left.
func s7Limited(t testing.TB) (ts *testSwitch, tr *conntrack.Tracker, left *datapath.TestThread, syn []byte) {
	ts = s7Switch(t)
	tr = conntrack.New(conntrack.Config{Clock: datapath.Monotime})
	if err := tr.SetZoneLimit(0, 1); err != nil {
		t.Fatal(err)
	}
	ts.dp.SetTracker(tr)
	left, _ = s7Handshake(t, ts)
	drain(ts.ports[1])
	drain(ts.ports[2])
	syn = tcpSegment(t, false, tcpSYN, 5000, 0, 0)
	binary.BigEndian.PutUint16(syn[34:], 4000) // a connection of its own
	return ts, tr, left, withChecksums(t, syn, false)
}

// TestS7LimitDropsSYN: with the zone at its limit, a SYN of a new
// connection from the left goes nowhere (its ct(commit) is refused and
// the output after it not run), while the connection committed before
// the limit keeps crossing.
func TestS7LimitDropsSYN(t *testing.T) {
	ts, tr, left, syn := s7Limited(t)
	left.Process([][]byte{syn})
	if got := len(drain(ts.ports[2])); got != 0 {
		t.Errorf("a SYN beyond the zone limit reached the right")
	}
	if n := tr.Stats().LimitDrops; n != 1 {
		t.Errorf("%d commits refused, want 1", n)
	}
	left.Process([][]byte{tcpSegment(t, false, tcpACK|tcpPSH, 101, 201, 64)})
	if got := len(drain(ts.ports[2])); got != 1 {
		t.Errorf("the established connection's segment reached the right %d times, want 1", got)
	}
}

// BenchmarkConntrackSYNFlood measures a SYN flood's packet through S7's
// flows with the zone at its limit: a cache hit (ct_state=-trk), the
// tracker (+new, not committed), a second cache hit (+trk+new) and the
// refused ct(commit), which drops it. Each SYN has a source port of its
// own.
func BenchmarkConntrackSYNFlood(b *testing.B) {
	ts, tr, left, syn := s7Limited(b)
	batch := make([][]byte, datapath.BatchSize)
	for i := range batch {
		batch[i] = append([]byte(nil), syn...)
	}
	sport := uint16(10000)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, f := range batch {
			// Never 1024, the connection s7Handshake opened.
			sport = 10000 + (sport-9999)%50000
			binary.BigEndian.PutUint16(f[34:], sport)
		}
		left.Process(batch)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/packet")
	if got := len(drain(ts.ports[2])); got != 0 {
		b.Fatalf("%d flood SYNs reached the right", got)
	}
	if tr.Stats().LimitDrops < uint64(b.N) {
		b.Fatalf("%d commits refused for %d batches", tr.Stats().LimitDrops, b.N)
	}
}
