package datapath_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// frame builds an Ethernet frame, tagged with vid when vid >= 0.
func frame(dst, src [6]byte, vid int, payloadLen int) []byte {
	var b bytes.Buffer
	b.Write(dst[:])
	b.Write(src[:])
	if vid >= 0 {
		binary.Write(&b, binary.BigEndian, uint16(0x8100))
		binary.Write(&b, binary.BigEndian, uint16(vid))
	}
	binary.Write(&b, binary.BigEndian, uint16(0x88b5)) // local experimental ethertype
	b.Write(make([]byte, payloadLen))
	return b.Bytes()
}

var (
	macA  = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB  = [6]byte{0x02, 0, 0, 0, 0, 0xb}
	bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// testSwitch is a bridge over memory ports numbered 1..n.
type testSwitch struct {
	dp    *datapath.Datapath
	br    *ofproto.Bridge
	ports map[uint32]*netdev.Memory
}

func newTestSwitch(t testing.TB, vlans map[uint32]ofproto.PortVLAN) *testSwitch {
	ts := &testSwitch{dp: datapath.New(), br: ofproto.NewBridge("br", 1024, 300), ports: map[uint32]*netdev.Memory{}}
	bcfg := &ofproto.Config{Ports: map[uint32]*ofproto.Port{}}
	dcfg := &datapath.Config{Ports: map[uint32]*datapath.Port{}}
	for no := uint32(1); no <= uint32(len(vlans)); no++ {
		m := netdev.NewMemory("m"+string(rune('0'+no)), 4096)
		ts.ports[no] = m
		p := &ofproto.Port{Name: m.Name(), OFPort: no, DPPort: no, VLAN: vlans[no]}
		bcfg.Ports[no] = p
		bcfg.Flood = append(bcfg.Flood, p)
		dcfg.Ports[no] = &datapath.Port{No: no, Name: m.Name(), Dev: m, Translator: ts.br}
	}
	ts.br.SetConfig(bcfg)
	// Install the config without starting threads: tests drive
	// processing themselves through TestThread.
	ts.dp.SetConfigForTest(dcfg)
	return ts
}

func trunk() ofproto.PortVLAN            { return ofproto.PortVLAN{Mode: ofproto.ModeTrunk, AllTrunks: true} }
func access(tag uint16) ofproto.PortVLAN { return ofproto.PortVLAN{Mode: ofproto.ModeAccess, Tag: tag} }

func drain(m *netdev.Memory) [][]byte { return m.Sent() }

func TestNormalFloodLearnAndVLANEncoding(t *testing.T) {
	ts := newTestSwitch(t, map[uint32]ofproto.PortVLAN{1: access(10), 2: access(10), 3: trunk(), 4: access(20)})
	th1 := ts.dp.NewTestThread(1)
	th1.Process([][]byte{frame(bcast, macA, -1, 46)})

	if got := drain(ts.ports[2]); len(got) != 1 || !bytes.Equal(got[0], frame(bcast, macA, -1, 46)) {
		t.Fatalf("access port 2 got %x, want the untagged broadcast", got)
	}
	if got := drain(ts.ports[3]); len(got) != 1 || !bytes.Equal(got[0], frame(bcast, macA, 10, 46)) {
		t.Fatalf("trunk port 3 got %x, want the broadcast tagged with VLAN 10", got)
	}
	if got := drain(ts.ports[4]); len(got) != 0 {
		t.Fatalf("port 4 of VLAN 20 got %d frames", len(got))
	}
	if got := drain(ts.ports[1]); len(got) != 0 {
		t.Fatalf("input port got its own frame back")
	}

	// B answers from the trunk, tagged: A was learned, so only port 1
	// gets it, untagged.
	th3 := ts.dp.NewTestThread(3)
	th3.Process([][]byte{frame(macA, macB, 10, 46)})
	if got := drain(ts.ports[1]); len(got) != 1 || !bytes.Equal(got[0], frame(macA, macB, -1, 46)) {
		t.Fatalf("port 1 got %x, want the unicast reply untagged", got)
	}
	if got := drain(ts.ports[2]); len(got) != 0 {
		t.Fatalf("learned unicast was flooded to port 2")
	}

	// A frame tagged with a VLAN on an access port is dropped.
	th1.Process([][]byte{frame(bcast, macA, 10, 46)})
	for no := uint32(2); no <= 4; no++ {
		if got := drain(ts.ports[no]); len(got) != 0 {
			t.Fatalf("tagged frame on access port reached port %d", no)
		}
	}
}

// sink is a port that counts and discards what it is sent, so that a
// benchmark measures the switch and not the test's queues.
type sink struct {
	netdev.Netdev
	frames int
}

func (s *sink) WriteBatch(frames [][]byte) error { s.frames += len(frames); return nil }

func (s *sink) Transmit(b *netdev.Batch) (netdev.TxResult, error) {
	s.frames += b.Len()
	return netdev.TxResult{Sent: b.Len()}, nil
}

func BenchmarkNormalForwarding(b *testing.B) {
	ts := newTestSwitch(b, map[uint32]ofproto.PortVLAN{1: access(10), 2: access(10), 3: access(10)})
	out := &sink{Netdev: ts.ports[2]}
	ts.dp.Config().Ports[2].Dev = out
	th1, th2 := ts.dp.NewTestThread(1), ts.dp.NewTestThread(2)
	th2.Process([][]byte{frame(macA, macB, -1, 46)}) // learn B on port 2
	th1.Process([][]byte{frame(macB, macA, -1, 46)}) // learn A on port 1
	batch := make([][]byte, datapath.BatchSize)
	for i := range batch {
		batch[i] = frame(macB, macA, -1, 46)
	}
	out.frames = 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += datapath.BatchSize {
		th1.Process(batch)
	}
	b.StopTimer()
	if out.frames < b.N {
		b.Fatalf("%d frames forwarded for %d sent", out.frames, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(out.frames), "ns/packet")
}

// inlineSink is a sink that never waits, so mirror copies to it go in the
// receiving thread's batch, as to a kernel device.
type inlineSink struct{ *sink }

func (inlineSink) NonBlocking() {}

// BenchmarkMirroredForwarding is NORMAL forwarding from port 1 to port 2
// with a select_all mirror copying every packet to port 3.
func BenchmarkMirroredForwarding(b *testing.B) {
	out := &sink{Netdev: netdev.NewMemory("bmf2", 64)}
	copies := &sink{Netdev: netdev.NewMemory("bmf3", 64)}
	dp, stats := mirrorSwitchOf(b, [3]netdev.Netdev{netdev.NewMemory("bmf1", 64), out, inlineSink{copies}}, 0)
	th1, th2 := dp.NewTestThread(1), dp.NewTestThread(2)
	th2.Process([][]byte{frame(macA, macB, -1, 46)}) // learn B on port 2
	th1.Process([][]byte{frame(macB, macA, -1, 46)}) // learn A on port 1
	batch := make([][]byte, datapath.BatchSize)
	for i := range batch {
		batch[i] = frame(macB, macA, -1, 46)
	}
	out.frames, copies.frames = 0, 0
	before := stats.Packets.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += datapath.BatchSize {
		th1.Process(batch)
	}
	b.StopTimer()
	if out.frames < b.N || copies.frames < b.N || stats.Packets.Load()-before < uint64(b.N) {
		b.Fatalf("%d frames forwarded, %d copies, %d counted for %d sent", out.frames, copies.frames, stats.Packets.Load()-before, b.N)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(out.frames), "ns/packet")
}
