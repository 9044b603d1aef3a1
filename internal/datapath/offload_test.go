package datapath_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// offloadMemory is a memory port that takes super-frames whole, as a
// system port does, and records them.
type offloadMemory struct {
	*netdev.Memory
	whole [][]byte
}

func (m *offloadMemory) ReadBatchOffload(bufs [][]byte, sizes []int, offs []netdev.Offload) (int, error) {
	clear(offs)
	return m.ReadBatch(bufs, sizes)
}

func (m *offloadMemory) WriteBatchOffload(frames [][]byte, offs []netdev.Offload) error {
	for i, f := range frames {
		if offs[i].IsSuper() {
			m.whole = append(m.whole, bytes.Clone(f))
		}
	}
	return m.WriteBatch(frames) // the memory port refuses what is too large
}

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

// A super-frame goes whole to an output that takes it whole, and in
// wire-size segments, encoded as each output needs, everywhere else:
// a trunk (a tag to push) and a mirror output that is a plain port.
func TestSuperFrameWholeOrSegmented(t *testing.T) {
	in := &offloadMemory{Memory: netdev.NewMemory("so1", 64)}
	whole := &offloadMemory{Memory: netdev.NewMemory("so2", 64)}
	trunkPort := netdev.NewMemory("so3", 64)
	mirrorOut := netdev.NewMemory("so4", 64)
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
	bcfg.Mirrors = []*ofproto.Mirror{{Name: "m0", All: true, OutPort: bcfg.Ports[4], OutVLAN: -1, Stats: stats}}
	br.SetConfig(bcfg)
	dp.SetConfigForTest(dcfg)

	const payload, mss = 4000, 1000
	super := tcpSuperFrame(payload)
	off, ok := netdev.NewTCPOffload(super, mss)
	if !ok {
		t.Fatal("NewTCPOffload refused the test's super-frame")
	}
	dp.NewTestThread(1).ProcessOffload([][]byte{super}, []netdev.Offload{off})

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
