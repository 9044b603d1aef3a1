package ofproto

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"unsafe"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// frameSpec is a random frame's choices, so that a second frame can
// share some of them.
type frameSpec struct {
	in       uint32
	src, dst int
	tags     []packet.VLANHeader
	ether    int // 0: IPv4/TCP, 1: IPv4/UDP, 2: ARP type, 3: local experimental
	nwSrc    byte
	tpDst    uint16
	dei      bool
}

var propMACs = [][6]byte{
	{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3}, {2, 0, 0, 0, 0, 4},
	{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {1, 0, 0x5e, 0, 0, 1}, {1, 0x80, 0xc2, 0, 0, 0},
}

func randomSpec(rng *rand.Rand, ports int) frameSpec {
	s := frameSpec{in: uint32(1 + rng.Intn(ports)), src: rng.Intn(len(propMACs)), dst: rng.Intn(len(propMACs)),
		ether: rng.Intn(4), nwSrc: byte(1 + rng.Intn(2)), tpDst: uint16(80 + rng.Intn(2)), dei: rng.Intn(4) == 0}
	s.tags = randomTags(rng)
	return s
}

func randomTags(rng *rand.Rand) []packet.VLANHeader {
	var tags []packet.VLANHeader
	vids := []uint16{0, 10, 20, 30, 100}
	for range rng.Intn(3) {
		tpid := packet.EtherTypeVLAN
		if rng.Intn(3) == 0 {
			tpid = packet.EtherTypeQinQ
		}
		tags = append(tags, packet.VLANHeader{TPID: tpid, TCI: uint16(rng.Intn(2)*3)<<packet.VLANPCPShift | vids[rng.Intn(len(vids))]})
	}
	return tags
}

// mutate returns s with each choice made again with probability 1/4.
func (s frameSpec) mutate(rng *rand.Rand) frameSpec {
	r := randomSpec(rng, 1)
	m := s
	pick := func() bool { return rng.Intn(4) == 0 }
	if pick() {
		m.src = r.src
	}
	if pick() {
		m.dst = r.dst
	}
	if pick() {
		m.tags = randomTags(rng)
	}
	if pick() {
		m.ether = r.ether
	}
	if pick() {
		m.nwSrc = r.nwSrc
	}
	if pick() {
		m.tpDst = r.tpDst
	}
	if pick() {
		m.dei = r.dei
	}
	return m
}

func (s frameSpec) bytes() []byte {
	f := append(append([]byte{}, propMACs[s.dst][:]...), propMACs[s.src][:]...)
	for i, h := range s.tags {
		tci := h.TCI
		if s.dei && i == 0 {
			tci |= dei
		}
		f = binary.BigEndian.AppendUint16(f, h.TPID)
		f = binary.BigEndian.AppendUint16(f, tci)
	}
	switch s.ether {
	case 0, 1:
		proto := byte(6)
		if s.ether == 1 {
			proto = 17
		}
		f = binary.BigEndian.AppendUint16(f, 0x0800)
		f = append(f, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, proto, 0, 0, 10, 0, 0, s.nwSrc, 10, 0, 0, 9)
		l4 := make([]byte, 20)
		binary.BigEndian.PutUint16(l4[0:], 1000)
		binary.BigEndian.PutUint16(l4[2:], s.tpDst)
		l4[12] = 5 << 4
		f = append(f, l4...)
	case 2:
		f = binary.BigEndian.AppendUint16(f, 0x0806)
		f = append(f, make([]byte, 28)...)
	default:
		f = binary.BigEndian.AppendUint16(f, 0x88b5)
		f = append(f, make([]byte, 30)...)
	}
	return f
}

// propBridge is a bridge with ports of every VLAN mode, a patch to a
// second bridge, mirrors with filters, select_vlan and output_vlan, and
// a few learned addresses.
func propBridge(t *testing.T, vlanLimit int) (*Bridge, int) {
	t.Helper()
	b := NewBridge("br", 64, 300)
	b2 := NewBridge("br2", 64, 300)
	native := trunks(false, 20)
	native.Mode, native.Tag = ModeNativeUntagged, 10
	vlans := []PortVLAN{{Mode: ModeAccess, Tag: 10}, {Mode: ModeAccess, Tag: 20}, trunks(true), trunks(false, 10, 20),
		native, tunnel(100, 0, 10), trunks(true), {Mode: ModeAccess, Tag: 10}}
	cfg := &Config{Ports: map[uint32]*Port{}, VLANLimit: vlanLimit}
	cfg.FloodVLANs.Add(20)
	for i, v := range vlans {
		p := &Port{Name: fmt.Sprintf("p%d", i+1), OFPort: uint32(i + 1), DPPort: uint32(i + 1), VLAN: v}
		cfg.Ports[p.DPPort] = p
		cfg.Flood = append(cfg.Flood, p)
	}
	cfg.Ports[7].MirrorOut = true
	patch := cfg.Ports[8]
	patch.PeerBridge, patch.PeerDPPort = b2, 21
	cfg2 := &Config{Ports: map[uint32]*Port{}, VLANLimit: vlanLimit}
	for i, v := range []PortVLAN{{Mode: ModeAccess, Tag: 10}, {Mode: ModeAccess, Tag: 10}, trunks(true)} {
		p := &Port{Name: fmt.Sprintf("q%d", i), OFPort: uint32(i + 1), DPPort: uint32(21 + i), VLAN: v}
		cfg2.Ports[p.DPPort] = p
		cfg2.Flood = append(cfg2.Flood, p)
	}
	cfg2.Ports[21].PeerBridge, cfg2.Ports[21].PeerDPPort = b, 8
	match := func(s string) *flow.Match {
		m, err := flow.ParseMatch(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	sel20 := &VLANSet{}
	sel20.Add(20)
	cfg.Mirrors = []*Mirror{
		{Name: "m1", Src: map[uint32]bool{1: true, 3: true}, Filter: match("ip,nw_src=10.0.0.1"), OutPort: cfg.Ports[7], OutVLAN: -1, Snaplen: 64, Stats: &MirrorStats{}},
		{Name: "m2", All: true, VLANs: sel20, OutVLAN: 30, Stats: &MirrorStats{}},
		{Name: "m3", Dst: map[uint32]bool{2: true, 4: true}, Filter: match("tcp,tp_dst=80"), OutPort: cfg.Ports[7], OutVLAN: -1, Stats: &MirrorStats{}},
	}
	b.SetConfig(cfg)
	b2.SetConfig(cfg2)
	b.MACs.Learn(propMACs[0], 10, 1)
	b.MACs.Learn(propMACs[1], 20, 4)
	b.MACs.Learn(propMACs[2], 0, 3)
	b.MACs.Learn(propMACs[3], 10, 8)
	b2.MACs.Learn(propMACs[0], 10, 21)
	b2.MACs.Learn(propMACs[3], 10, 23)
	return b, len(vlans)
}

func translateSpec(b *Bridge, s frameSpec) (datapath.Key, *datapath.Xlate) {
	f := s.bytes()
	pkt := &datapath.Packet{Frame: f, InPort: s.in}
	_ = packet.Parse(f, s.in, &pkt.Key.Key, &pkt.Off)
	pos := int(pkt.Off.VLAN)
	for i := 0; i < int(pkt.Off.NumVLANs) && i < packet.MaxVLANs; i++ {
		pkt.Key.VLANTPID[i] = binary.BigEndian.Uint16(f[pos:])
		pos += packet.VLANTagLen
	}
	x := &datapath.Xlate{}
	b.Translate(pkt, x)
	return pkt.Key, x
}

// agree reports whether a and b are equal in every bit of mask.
func agree(a, b, mask *datapath.Key) bool {
	const n = unsafe.Sizeof(datapath.Key{}) / 8
	aw := (*[n]uint64)(unsafe.Pointer(a))
	bw := (*[n]uint64)(unsafe.Pointer(b))
	mw := (*[n]uint64)(unsafe.Pointer(mask))
	for i := range aw {
		if aw[i]&mw[i] != bw[i]&mw[i] {
			return false
		}
	}
	return true
}

// TestTranslateMaskProperty checks the mask Translate returns: any two
// frames whose keys agree on it get the same actions and side effects.
// That is what makes a cached translation right for every packet it
// serves.
func TestTranslateMaskProperty(t *testing.T) {
	for _, limit := range []int{1, 2} {
		b, nports := propBridge(t, limit)
		rng := rand.New(rand.NewSource(int64(limit)))
		compared, differentKeys := 0, 0
		for range 20000 {
			sa := randomSpec(rng, nports)
			ka, xa := translateSpec(b, sa)
			sb := sa.mutate(rng)
			kb, xb := translateSpec(b, sb)
			if !agree(&ka, &kb, &xa.Mask) {
				continue
			}
			compared++
			if ka != kb {
				differentKeys++
			}
			if !reflect.DeepEqual(xa.Actions, xb.Actions) || !reflect.DeepEqual(xa.Effects, xb.Effects) {
				t.Fatalf("vlan-limit %d: frames agreeing on the mask translate differently:\n%x\n%x\nactions %s effects %v\nactions %s effects %v",
					limit, sa.bytes(), sb.bytes(), datapath.FormatActions(xa.Actions, nil), xa.Effects,
					datapath.FormatActions(xb.Actions, nil), xb.Effects)
			}
		}
		// The property says nothing unless many pairs agreed on the mask
		// with different keys.
		if differentKeys < 500 {
			t.Fatalf("vlan-limit %d: only %d of %d compared pairs had different keys", limit, differentKeys, compared)
		}
	}
}

// TestTranslateLearnsAsSideEffect checks that translating changes no MAC
// table (learning is an effect the datapath applies) and that a frame to
// its own source finds it where it is being learned, as when learning
// happened first.
func TestTranslateLearnsAsSideEffect(t *testing.T) {
	b, _ := propBridge(t, 1)
	b.MACs.Flush()
	s := frameSpec{in: 1, src: 0, dst: 0, ether: 3}
	_, x := translateSpec(b, s)
	if len(b.MACs.Entries()) != 0 {
		t.Fatalf("translation learned %v", b.MACs.Entries())
	}
	want := []datapath.Effect{{Kind: datapath.EffectLearn, Learner: b.MACs, MAC: propMACs[0], VLAN: 10, Port: 1}}
	var learns []datapath.Effect
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectLearn {
			learns = append(learns, e)
		}
	}
	if !reflect.DeepEqual(learns, want) {
		t.Fatalf("effects %v, want %v", x.Effects, want)
	}
	if len(x.Actions) != 0 {
		t.Errorf("a frame to its own source went out: %s", datapath.FormatActions(x.Actions, nil))
	}
}

// addFlow adds a flow in ovs-ofctl syntax to b's tables.
func addFlow(t *testing.T, b *Bridge, text string) {
	t.Helper()
	f, err := flow.ParseFlow(text, flow.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tables.Add(f); err != nil {
		t.Fatal(err)
	}
}

// TestTranslateThroughTable0 checks that NORMAL is reached through table
// 0's rule, which counts the packet (as a side effect) and whose
// classifier wildcards join the mask, and that a drop rule above it
// drops, its fields in the mask too.
func TestTranslateThroughTable0(t *testing.T) {
	b, _ := propBridge(t, 1)
	cfg := *b.Config()
	cfg.Mirrors = nil // their filters read tp_dst too
	b.SetConfig(&cfg)
	tcp80 := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 2, tpDst: 80}
	_, x := translateSpec(b, tcp80)
	var rule *Rule
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectAccount {
			rule = e.Accounter.(*Rule)
		}
	}
	if rule == nil || !isNormal(rule.Actions()) || len(x.Actions) == 0 {
		t.Fatalf("NORMAL not reached through the default rule: rule %v, actions %s", rule, datapath.FormatActions(x.Actions, nil))
	}
	if x.Mask.TpDst != 0 {
		t.Errorf("tp_dst in the mask with only the catch-all rule")
	}

	addFlow(t, b, "priority=100,tcp,tp_dst=80,actions=drop")
	_, x = translateSpec(b, tcp80)
	if len(x.Actions) != 0 {
		t.Errorf("tcp port 80 not dropped: %s", datapath.FormatActions(x.Actions, nil))
	}
	if x.Mask.TpDst != 0xffff || x.Mask.NwProto != 0xff || x.Mask.DlType != 0xffff {
		t.Errorf("the drop rule's fields are not in the mask: tp_dst %#x nw_proto %#x dl_type %#x", x.Mask.TpDst, x.Mask.NwProto, x.Mask.DlType)
	}
	tcp81 := tcp80
	tcp81.tpDst = 81
	if _, x = translateSpec(b, tcp81); len(x.Actions) == 0 {
		t.Error("tcp port 81 dropped too")
	}
}

// TestTranslateMaskPropertyWithFlows is the mask property with flows in
// table 0 above NORMAL, so the classifier's wildcards are part of it.
func TestTranslateMaskPropertyWithFlows(t *testing.T) {
	b, nports := propBridge(t, 2)
	addFlow(t, b, "priority=100,tcp,tp_dst=80,nw_src=10.0.0.1,actions=drop")
	addFlow(t, b, "priority=90,in_port=4,dl_vlan=20,actions=drop")
	addFlow(t, b, "priority=80,udp,actions=NORMAL")
	addFlow(t, b, "priority=70,dl_dst=ff:ff:ff:ff:ff:ff,arp,actions=drop")
	rng := rand.New(rand.NewSource(3))
	differentKeys := 0
	for range 20000 {
		sa := randomSpec(rng, nports)
		ka, xa := translateSpec(b, sa)
		sb := sa.mutate(rng)
		kb, xb := translateSpec(b, sb)
		if !agree(&ka, &kb, &xa.Mask) {
			continue
		}
		if ka != kb {
			differentKeys++
		}
		if !reflect.DeepEqual(xa.Actions, xb.Actions) || !reflect.DeepEqual(xa.Effects, xb.Effects) {
			t.Fatalf("frames agreeing on the mask translate differently:\n%x\n%x\nactions %s\nactions %s",
				sa.bytes(), sb.bytes(), datapath.FormatActions(xa.Actions, nil), datapath.FormatActions(xb.Actions, nil))
		}
	}
	if differentKeys < 500 {
		t.Fatalf("only %d compared pairs had different keys", differentKeys)
	}
}

// TestPatchPeerTableSeesFrameAsCrossed checks that the peer bridge of a
// patch looks its tables up with the frame as it crosses the patch: a
// frame tagged 10 leaves br untagged through an access port of VLAN 10,
// so br2's rule for dl_vlan=10 does not drop it.
func TestPatchPeerTableSeesFrameAsCrossed(t *testing.T) {
	b, _ := propBridge(t, 1)
	b2 := b.Config().Ports[8].PeerBridge
	addFlow(t, b2, "priority=100,dl_vlan=10,actions=drop")
	s := frameSpec{in: 3, src: 2, dst: 3, ether: 3, tags: []packet.VLANHeader{q(10)}}
	_, x := translateSpec(b, s)
	var ports []uint32
	for _, o := range outputsOf(x.Actions) {
		ports = append(ports, o.Port)
	}
	if !reflect.DeepEqual(ports, []uint32{23}) {
		t.Fatalf("outputs %v (%s), want br2's trunk 23", ports, datapath.FormatActions(x.Actions, nil))
	}
}
