package datapath_test

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// offloadMemory is a memory port that takes super-frames whole, as a
// system port does, and records them.
type offloadMemory struct {
	*netdev.Memory
	whole    [][]byte
	noRecord bool // for allocation tests
}

func (m *offloadMemory) ReadBatchOffload(bufs [][]byte, sizes []int, offs []netdev.Offload) (int, error) {
	clear(offs)
	return m.ReadBatch(bufs, sizes)
}

func (m *offloadMemory) Transmit(b *netdev.Batch) (netdev.TxResult, error) {
	for i, f := range b.Frames {
		if b.Meta[i].Off.IsSuper() && !m.noRecord {
			m.whole = append(m.whole, bytes.Clone(f))
		}
	}
	return m.Memory.Transmit(b) // the memory port refuses what is too large
}

func (offloadMemory) TakesSuperFrames() bool { return true }

func (offloadMemory) NonBlocking() {}

// tcpSuperFrame is an IPv4 TCP packet from A to B with payload bytes of
// data, far larger than a wire frame, as TSO hands it over.
func tcpSuperFrame(payload int) []byte {
	f := make([]byte, 14+20+20+payload)
	copy(f[0:], macB[:])
	copy(f[6:], macA[:])
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+payload))
	copy(ip[12:], []byte{198, 51, 100, 1, 198, 51, 100, 2})
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	tcp[12], tcp[13] = 5<<4, 0x18 // data offset, ACK|PSH
	for i := range payload {
		tcp[20+i] = byte(i)
	}
	return f
}

// offloadSwitch is a bridge with an offload input port 1 and an offload
// port 2 (access VLAN 10), a trunk 3 and port 4, the output of a
// select_all mirror that keeps snaplen bytes.
type offloadSwitch struct {
	dp               *datapath.Datapath
	in, whole        *offloadMemory
	trunk, mirrorOut *netdev.Memory
	stats            *ofproto.MirrorStats
}

func newOffloadSwitch(t *testing.T, snaplen uint32) *offloadSwitch {
	in := &offloadMemory{Memory: netdev.NewMemory("so1", 64)}
	whole := &offloadMemory{Memory: netdev.NewMemory("so2", 64)}
	trunkPort := netdev.NewMemory("so3", 256)
	mirrorOut := netdev.NewMemory("so4", 256)
	devs := map[uint32]netdev.Netdev{1: in, 2: whole, 3: trunkPort, 4: nonBlockingMemory{mirrorOut}}
	vlans := map[uint32]ofproto.PortVLAN{1: access(10), 2: access(10), 3: trunk(), 4: access(10)}

	dp, br := datapath.New(), ofproto.NewBridge("br", 1024, 300)
	bcfg := &ofproto.Config{Ports: map[uint32]*ofproto.Port{}}
	dcfg := &datapath.Config{Ports: map[uint32]*datapath.Port{}}
	for no := uint32(1); no <= 4; no++ {
		p := &ofproto.Port{Name: devs[no].Name(), OFPort: no, DPPort: no, VLAN: vlans[no], MirrorOut: no == 4}
		bcfg.Ports[no] = p
		bcfg.Flood = append(bcfg.Flood, p)
		dcfg.Ports[no] = &datapath.Port{No: no, Name: p.Name, Dev: devs[no], Translator: br}
		t.Cleanup(func() { devs[no].Close() })
	}
	stats := &ofproto.MirrorStats{}
	bcfg.Mirrors = []*ofproto.Mirror{{Name: "m0", All: true, OutPort: bcfg.Ports[4], OutVLAN: -1, Snaplen: snaplen, Stats: stats}}
	br.SetConfig(bcfg)
	dp.SetConfigForTest(dcfg)

	return &offloadSwitch{dp: dp, in: in, whole: whole, trunk: trunkPort, mirrorOut: mirrorOut, stats: stats}
}

// A super-frame goes whole to an output that takes it whole, and in
// wire-size segments, encoded as each output needs, everywhere else:
// a trunk (a tag to push) and a mirror output that is a plain port.
func TestSuperFrameWholeOrSegmented(t *testing.T) {
	ts := newOffloadSwitch(t, 0)
	whole, trunkPort, mirrorOut, stats := ts.whole, ts.trunk, ts.mirrorOut, ts.stats

	const payload, mss = 4000, 1000
	super := tcpSuperFrame(payload)
	off, ok := netdev.NewTCPOffload(super, mss)
	if !ok {
		t.Fatal("NewTCPOffload refused the test's super-frame")
	}
	ts.dp.NewTestThread(1).ProcessOffload([][]byte{super}, []netdev.Offload{off})

	if len(whole.whole) != 1 || !bytes.Equal(whole.whole[0], super) {
		t.Fatalf("the offload port got %d super-frames, want the one sent, unchanged", len(whole.whole))
	}
	segs := drain(trunkPort)
	if len(segs) != payload/mss {
		t.Fatalf("the trunk got %d frames, want %d segments", len(segs), payload/mss)
	}
	for i, s := range segs {
		tag := binary.BigEndian.Uint32(s[12:])
		if tag != 0x8100_000a {
			t.Errorf("segment %d: tag %#x, want VLAN 10 (0x8100000a)", i, tag)
		}
		if want := 14 + 4 + 20 + 20 + mss; len(s) != want {
			t.Errorf("segment %d: %d bytes, want %d", i, len(s), want)
		}
		if got := s[18+40]; got != byte(i*mss) {
			t.Errorf("segment %d starts with payload byte %d, want %d", i, got, byte(i*mss))
		}
	}
	copies := drain(mirrorOut)
	if len(copies) != payload/mss {
		t.Fatalf("the mirror output got %d copies, want %d segments", len(copies), payload/mss)
	}
	for i, c := range copies {
		if !bytes.Equal(c[12:], segs[i][16:]) || !bytes.Equal(c[:12], segs[i][:12]) {
			t.Errorf("copy %d differs from the trunk's segment %d apart from the tag", i, i)
		}
	}
	if d := stats.Copy.Dropped.Load(); d != 0 {
		t.Errorf("mirror counted %d drops", d)
	}
}

// A super-frame cut into more segments than a batch holds still arrives
// whole in order, and a mirror with a snaplen counts the packet once as
// truncated, as it counts it once as mirrored.
func TestSuperFrameManySegmentsCountedOnce(t *testing.T) {
	ts := newOffloadSwitch(t, 60)
	const payload, mss = 100 * 500, 500 // 100 segments: more than BatchSize
	super := tcpSuperFrame(payload)
	off, ok := netdev.NewTCPOffload(super, mss)
	if !ok {
		t.Fatal("NewTCPOffload refused the test's super-frame")
	}
	ts.dp.NewTestThread(1).ProcessOffload([][]byte{super}, []netdev.Offload{off})

	segs := drain(ts.trunk)
	if len(segs) != payload/mss {
		t.Fatalf("the trunk got %d frames, want %d segments", len(segs), payload/mss)
	}
	for i, s := range segs {
		if got, want := binary.BigEndian.Uint32(s[18+20+4:]), uint32(i*mss); got != want {
			t.Fatalf("segment %d carries sequence number %d, want %d: out of order", i, got, want)
		}
	}
	copies := drain(ts.mirrorOut)
	if len(copies) != payload/mss {
		t.Fatalf("the mirror output got %d copies, want %d", len(copies), payload/mss)
	}
	for _, c := range copies {
		if len(c) != 60 {
			t.Fatalf("a copy of %d bytes, want 60 (snaplen)", len(c))
		}
	}
	st := ts.stats
	if p, tr, d := st.Packets.Load(), st.Copy.Truncated.Load(), st.Copy.Dropped.Load(); p != 1 || tr != 1 || d != 0 {
		t.Fatalf("mirror counted %d packets, %d truncated, %d dropped; want 1, 1, 0", p, tr, d)
	}
}

// Cutting super-frames for other outputs and mirrors does not allocate.
func TestSuperFrameSegmentingDoesNotAllocate(t *testing.T) {
	ts := newOffloadSwitch(t, 60)
	super := tcpSuperFrame(8000)
	off, _ := netdev.NewTCPOffload(super, 1000)
	th := ts.dp.NewTestThread(1)
	frames, offs := [][]byte{super}, []netdev.Offload{off}
	ts.whole.noRecord = true
	th.ProcessOffload(frames, offs) // learn, create queues
	// The memory ports' queues fill up and then drop: that costs nothing.
	allocs := testing.AllocsPerRun(50, func() { th.ProcessOffload(frames, offs) })
	if allocs > 0 {
		t.Fatalf("%.1f allocations per super-frame", allocs)
	}
}

// Copies of super-frames to a destination that may block (a pcap file)
// are queued whole and cut by the queue's sender, so that a full batch of
// them fits: every segment arrives, in order, truncated to the snaplen.
func TestSuperFrameCopiesQueuedWhole(t *testing.T) {
	in := &offloadMemory{Memory: netdev.NewMemory("sq1", 64)}
	out := netdev.NewMemory("sq2", 64)
	sink := netdev.NewMemory("sq3", 4096) // may block: gets the copy queue
	dp, stats := mirrorSwitchOf(t, [3]netdev.Netdev{in, out, sink}, 100)

	const payload, mss = 44 * 1000, 1000
	frames, offs := make([][]byte, datapath.BatchSize), make([]netdev.Offload, datapath.BatchSize)
	for i := range frames {
		frames[i] = tcpSuperFrame(payload)
		offs[i], _ = netdev.NewTCPOffload(frames[i], mss)
	}
	dp.NewTestThread(1).ProcessOffload(frames, offs)

	want := datapath.BatchSize * payload / mss
	for i := range want {
		c, ok := sink.Next(5 * time.Second)
		if !ok {
			t.Fatalf("copy %d of %d never arrived (mirror dropped %d)", i, want, stats.Copy.Dropped.Load())
		}
		if len(c) != 100 {
			t.Fatalf("copy %d: %d bytes, want 100 (snaplen)", i, len(c))
		}
		if seq, wantSeq := binary.BigEndian.Uint32(c[14+20+4:]), uint32(i%(payload/mss)*mss); seq != wantSeq {
			t.Fatalf("copy %d has sequence number %d, want %d: out of order", i, seq, wantSeq)
		}
	}
	if d, tr := stats.Copy.Dropped.Load(), stats.Copy.Truncated.Load(); d != 0 || tr != datapath.BatchSize {
		t.Fatalf("mirror counted %d dropped and %d truncated, want 0 and %d (one per packet)", d, tr, datapath.BatchSize)
	}
}

// A super-frame whose actions push a tag goes whole, tagged, to a trunk
// that takes super-frames: the rewrite happens on the super-frame and the
// device cuts it (before, the datapath cut it first).
func TestSuperFrameTaggedGoesWhole(t *testing.T) {
	ts := newOffloadSwitch(t, 0)
	trunk := &offloadMemory{Memory: ts.trunk}
	ts.dp.Config().Ports[3].Dev = trunk
	const payload, mss = 4000, 1000
	super := tcpSuperFrame(payload)
	off, _ := netdev.NewTCPOffload(super, mss)
	ts.dp.NewTestThread(1).ProcessOffload([][]byte{super}, []netdev.Offload{off})

	if len(trunk.whole) != 1 {
		t.Fatalf("the trunk got %d super-frames whole (and %d frames), want 1", len(trunk.whole), len(drain(ts.trunk)))
	}
	got := trunk.whole[0]
	if tag := binary.BigEndian.Uint32(got[12:]); tag != 0x8100_000a || !bytes.Equal(got[16:], super[12:]) {
		t.Fatalf("the super-frame went out with tag %#x, want VLAN 10 in front of the frame as sent", tag)
	}
}

// gresLike is an offload port that, by its configuration, never hands
// over a super-frame (a GRE or ERSPAN tunnel port).
type gresLike struct{ *offloadMemory }

func (gresLike) PassesSuperFrames() bool { return false }

// A port that never passes super-frames gets receive buffers of a wire
// frame, not of a super-frame: 64 of those would pin 4 MiB per port.
func TestNoSuperFrameBuffersForPortsThatNeverPassThem(t *testing.T) {
	joins := &offloadMemory{Memory: netdev.NewMemory("sb1", 64)}
	never := gresLike{&offloadMemory{Memory: netdev.NewMemory("sb2", 64)}}
	dp, _ := mirrorSwitchOf(t, [3]netdev.Netdev{joins, never, netdev.NewMemory("sb3", 64)}, 0)
	if got := dp.NewTestThread(1).FrameBufferSize(); got != netdev.MaxSuperFrame {
		t.Errorf("an offload port's buffers: %d bytes, want %d", got, netdev.MaxSuperFrame)
	}
	if got := dp.NewTestThread(2).FrameBufferSize(); got != netdev.MaxFrame {
		t.Errorf("a port that never passes super-frames: buffers of %d bytes, want %d", got, netdev.MaxFrame)
	}
}
