package datapath_test

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"

	"gvs/internal/conntrack"
	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// fakeTracker is a stand-in connection tracker: a connection, keyed by
// its IPv4 source and destination, is +new until committed and +est
// after; it records the source address of the frames it saw.
type fakeTracker struct {
	mu        sync.Mutex
	committed map[[12]byte]uint32 // mark, by addresses and ports
	calls     int
	seenSrc   [][4]byte
	drop      bool // answer every packet with Drop, as at a limit
	grow      int  // lengthen every frame by this many 0xee bytes, as an ALG's rewrite
}

func (f *fakeTracker) Execute(frame []byte, key *packet.Key, off *packet.Offsets, a *conntrack.Action, now int64) conntrack.Result {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var src [4]byte
	copy(src[:], frame[int(off.L3)+12:])
	if len(f.seenSrc) < 8 {
		f.seenSrc = append(f.seenSrc, src)
	}
	var tuple, rev [12]byte
	copy(tuple[:4], key.NwSrc[:])
	copy(tuple[4:], key.NwDst[:])
	binary.BigEndian.PutUint16(tuple[8:], key.TpSrc)
	binary.BigEndian.PutUint16(tuple[10:], key.TpDst)
	copy(rev[:4], key.NwDst[:])
	copy(rev[4:], key.NwSrc[:])
	binary.BigEndian.PutUint16(rev[8:], key.TpDst)
	binary.BigEndian.PutUint16(rev[10:], key.TpSrc)
	r := conntrack.Result{State: conntrack.StateTrk, Zone: a.Zone, OrigValid: true,
		OrigSrc: netip.AddrFrom4(key.NwSrc), OrigDst: netip.AddrFrom4(key.NwDst), OrigProto: key.NwProto,
		OrigSport: key.TpSrc, OrigDport: key.TpDst}
	if f.drop {
		return conntrack.Result{State: conntrack.StateTrk | conntrack.StateNew, LimitDrop: true, Drop: true}
	}
	if f.grow > 0 && len(frame)+f.grow <= cap(frame) {
		ext := frame[:len(frame)+f.grow]
		for i := len(frame); i < len(ext); i++ {
			ext[i] = 0xee
		}
		r.Len, r.Rewrote = len(ext), true
	}
	mark, ok := f.committed[tuple]
	if !ok {
		mark, ok = f.committed[rev]
	}
	switch {
	case ok:
		r.State |= conntrack.StateEst
		r.Mark = mark
	case a.Commit:
		f.committed[tuple] = a.Mark & a.MarkMask
		r.State |= conntrack.StateNew
	default:
		r.State |= conntrack.StateNew
	}
	return r
}

// ctTranslator is S7 in miniature: a packet not yet tracked goes through
// ct and recirculates with id 7; +new is committed (mark 5) and goes to
// port 2; +est goes to port 3 if its mark is 5. It records the keys it
// translated.
type ctTranslator struct {
	pre   []datapath.Action // before the ct action
	after []datapath.Action // after the recirculation, in the first pass
	keys  []packet.Key
}

var commitMark5 = &conntrack.Action{Zone: 9, Commit: true, SetMark: true, Mark: 5, MarkMask: 0xffffffff}

func (c *ctTranslator) Translate(pkt *datapath.Packet, x *datapath.Xlate) {
	c.keys = append(c.keys, pkt.Key.Key)
	x.Mask.InPort, x.Mask.RecircID, x.Mask.CtState, x.Mask.CtMark = ^uint32(0), ^uint32(0), 0xff, ^uint32(0)
	k := &pkt.Key
	switch {
	case k.RecircID == 0:
		x.Actions = append(x.Actions, c.pre...)
		x.Actions = append(x.Actions, datapath.CT(&conntrack.Action{Zone: 9}), datapath.Recirc(7))
		x.Actions = append(x.Actions, c.after...)
	case k.CtState&conntrack.StateNew != 0:
		x.Actions = append(x.Actions, datapath.CT(commitMark5), datapath.Output(2))
	case k.CtState&conntrack.StateEst != 0 && k.CtMark == 5:
		x.Actions = append(x.Actions, datapath.Output(3))
	}
}

func ctSwitch(t testing.TB, tr *ctTranslator) (*datapath.Datapath, *fakeTracker, map[uint32]*sink) {
	dp, _, ports := actionSwitch(t, 4)
	sinks := map[uint32]*sink{}
	for no, p := range dp.Config().Ports {
		p.Translator = tr
		sinks[no] = &sink{Netdev: ports[no]}
		p.Dev = sinks[no]
	}
	ft := &fakeTracker{committed: map[[12]byte]uint32{}}
	dp.SetTracker(ft)
	return dp, ft, sinks
}

// TestCTRecirculation: the first packet of a connection is +new and
// committed, the next ones +est with the mark set at commit; they cost
// one tracker call and two cache hits each, with no translation and no
// allocation.
func TestCTRecirculation(t *testing.T) {
	tr := &ctTranslator{}
	dp, ft, sinks := ctSwitch(t, tr)
	th := dp.NewTestThread(1)
	in := ipFrame(t, packet.ProtoTCP, false)
	th.Process([][]byte{in})
	if sinks[2].frames != 1 || sinks[3].frames != 0 {
		t.Fatalf("first packet: %d to port 2 (+new), %d to port 3, want 1 and 0", sinks[2].frames, sinks[3].frames)
	}
	if len(tr.keys) != 2 || tr.keys[1].RecircID != 7 || tr.keys[1].CtState != conntrack.StateTrk|conntrack.StateNew ||
		tr.keys[1].CtZone != 9 || tr.keys[1].CtTpDst != 80 || tr.keys[1].CtNwProto != packet.ProtoTCP {
		t.Fatalf("translated keys %+v: want the first pass and a recirculated +trk+new one in zone 9", tr.keys)
	}
	th.Process([][]byte{in})
	if sinks[3].frames != 1 {
		t.Fatalf("second packet: %d to port 3, want 1 (+est, mark 5)", sinks[3].frames)
	}
	translated, calls := len(tr.keys), ft.calls
	batch := [][]byte{in, in, in, in}
	allocs := testing.AllocsPerRun(50, func() { th.Process(batch) })
	if allocs != 0 {
		t.Errorf("%v allocations per batch of established packets", allocs)
	}
	if len(tr.keys) != translated {
		t.Errorf("translated %d more times, want none (two cache hits per packet)", len(tr.keys)-translated)
	}
	if got := ft.calls - calls; got != 4+50*4 {
		t.Errorf("tracker ran %d times, want once per packet (%d)", got, 4+50*4)
	}
}

// TestCTSeesEditsAndForks: set-fields before ct reach the frame the
// tracker reads, and the actions after the recirculation go on with the
// packet as it was before it (the original of the fork).
func TestCTSeesEditsAndForks(t *testing.T) {
	tr := &ctTranslator{pre: []datapath.Action{datapath.SetField(datapath.FieldIPv4Src, 0x0a000063)},
		after: []datapath.Action{datapath.Output(4)}}
	dp, _, _ := ctSwitch(t, tr)
	mem := map[uint32]*fakeOut{}
	for no, p := range dp.Config().Ports {
		mem[no] = &fakeOut{Netdev: p.Dev}
		p.Dev = mem[no]
	}
	ft := &fakeTracker{committed: map[[12]byte]uint32{}}
	dp.SetTracker(ft)
	in := ipFrame(t, packet.ProtoTCP, false)
	dp.NewTestThread(1).Process([][]byte{in})
	if len(ft.seenSrc) != 2 || ft.seenSrc[0] != [4]byte{10, 0, 0, 99} {
		t.Fatalf("the tracker saw sources %v, want 10.0.0.99 (set before ct) twice", ft.seenSrc)
	}
	if len(mem[2].frames) != 1 || len(mem[4].frames) != 1 {
		t.Fatalf("port 2 (recirculated) got %d, port 4 (after the fork) %d, want 1 each", len(mem[2].frames), len(mem[4].frames))
	}
	if !bytes.Equal(mem[2].frames[0][26:30], []byte{10, 0, 0, 99}) {
		t.Errorf("recirculated output has source %v", mem[2].frames[0][26:30])
	}
}

// TestRecirculationLoopBounded: a translation that recirculates forever
// is cut at the depth limit.
func TestRecirculationLoopBounded(t *testing.T) {
	dp, _, ports := actionSwitch(t, 2, datapath.CT(&conntrack.Action{}), datapath.Recirc(1), datapath.Output(2))
	dp.SetTracker(&fakeTracker{committed: map[[12]byte]uint32{}})
	dp.NewTestThread(1).Process([][]byte{ipFrame(t, packet.ProtoUDP, false)})
	// Each pass outputs after its recirculation returns: the received
	// packet and six recirculations.
	if got := len(ports[2].Sent()); got != 7 {
		t.Errorf("%d outputs, want 7 (the recirculation depth bounded at 6)", got)
	}
}

// fakeOut keeps copies of the frames written to it.
type fakeOut struct {
	netdev.Netdev
	frames [][]byte
}

func (f *fakeOut) WriteBatch(frames [][]byte) error {
	for _, fr := range frames {
		f.frames = append(f.frames, append([]byte(nil), fr...))
	}
	return nil
}

// newTracker returns the tracker the S7 tests and benchmark run with:
// the real one.
func newTracker() datapath.Tracker { return conntrack.New(conntrack.Config{Clock: datapath.Monotime}) }

// TestCTDropEndsActions: a packet the tracker says to drop (a commit
// refused at a limit) goes nowhere after its ct action, in this pass;
// the original of a fork goes on.
func TestCTDropEndsActions(t *testing.T) {
	dp, _, ports := actionSwitch(t, 3, datapath.Output(3), datapath.CT(commitMark5), datapath.Output(2))
	dp.SetTracker(&fakeTracker{committed: map[[12]byte]uint32{}, drop: true})
	dp.NewTestThread(1).Process([][]byte{ipFrame(t, packet.ProtoUDP, false)})
	if n2, n3 := len(ports[2].Sent()), len(ports[3].Sent()); n2 != 0 || n3 != 1 {
		t.Errorf("port 2 (after ct) got %d, port 3 (before) %d: want 0 and 1", n2, n3)
	}
}

// TestCTResizedFrame: a frame the tracker lengthened (an FTP ALG's
// rewrite) leaves with its new length, while an output before the ct
// action still gets the frame as it was received.
func TestCTResizedFrame(t *testing.T) {
	dp, _, ports := actionSwitch(t, 3, datapath.Output(3), datapath.CT(&conntrack.Action{HasNAT: true}), datapath.Output(2))
	dp.SetTracker(&fakeTracker{committed: map[[12]byte]uint32{}, grow: 4})
	in := ipFrame(t, packet.ProtoTCP, false)
	dp.NewTestThread(1).Process([][]byte{in})
	s2, s3 := ports[2].Sent(), ports[3].Sent()
	if len(s2) != 1 || len(s3) != 1 {
		t.Fatalf("port 2 got %d frames, port 3 %d, want 1 each", len(s2), len(s3))
	}
	if len(s2[0]) != len(in)+4 || !bytes.HasSuffix(s2[0], []byte{0xee, 0xee, 0xee, 0xee}) {
		t.Errorf("after ct: %d bytes ending %x, want %d ending eeeeeeee", len(s2[0]), s2[0][len(s2[0])-4:], len(in)+4)
	}
	if !bytes.Equal(s3[0], in) {
		t.Errorf("before ct: the frame changed")
	}
}
