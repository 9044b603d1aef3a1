package ofproto

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
	"time"
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
	frag     int // IPv4 only; 0: whole, 1: first fragment, 2: later fragment
}

var propMACs = [][6]byte{
	{2, 0, 0, 0, 0, 1}, {2, 0, 0, 0, 0, 2}, {2, 0, 0, 0, 0, 3}, {2, 0, 0, 0, 0, 4},
	{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {1, 0, 0x5e, 0, 0, 1}, {1, 0x80, 0xc2, 0, 0, 0},
}

func randomSpec(rng *rand.Rand, ports int) frameSpec {
	s := frameSpec{in: uint32(1 + rng.Intn(ports)), src: rng.Intn(len(propMACs)), dst: rng.Intn(len(propMACs)),
		ether: rng.Intn(4), nwSrc: byte(1 + rng.Intn(2)), tpDst: uint16(80 + rng.Intn(2)), dei: rng.Intn(4) == 0}
	s.tags = randomTags(rng)
	s.frag = rng.Intn(3)
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
	if pick() {
		m.frag = r.frag
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
		flags := [3][2]byte{{0, 0}, {0x20, 0}, {0, 3}}[s.frag] // MF; an offset of 24 bytes
		f = append(f, 0x45, 0, 0, 40, 0, 0, flags[0], flags[1], 64, proto, 0, 0, 10, 0, 0, s.nwSrc, 10, 0, 0, 9)
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
	if differentKeys := checkMaskPairs(t, b, nports, 3); differentKeys < 500 {
		t.Fatalf("only %d compared pairs had different keys", differentKeys)
	}
}

// checkMaskPairs translates 20,000 random frames and a mutation of each,
// and fails the test when two that agree on the first one's mask
// translate differently. It returns how many compared pairs had
// different keys.
func checkMaskPairs(t *testing.T, b *Bridge, nports int, seed int64) (differentKeys int) {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
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
	return differentKeys
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

// ofBridge is a bridge of four trunk ports (OpenFlow and datapath
// numbers 1 to 4) and its LOCAL port (datapath 5), with no flows.
func ofBridge(t *testing.T) *Bridge {
	t.Helper()
	b := NewBridge("br", 64, 300)
	cfg := &Config{Ports: map[uint32]*Port{}}
	for i := uint32(1); i <= 5; i++ {
		p := &Port{Name: fmt.Sprintf("p%d", i), OFPort: i, DPPort: i, VLAN: trunks(true)}
		if i == 5 {
			p.OFPort = LocalPort
		}
		cfg.Ports[p.DPPort] = p
		cfg.Flood = append(cfg.Flood, p)
	}
	b.SetConfig(cfg)
	b.Tables.Delete(Selector{Table: TableAll})
	return b
}

// TestTranslateOpenFlowActions checks the datapath actions each OpenFlow
// action becomes, for a TCP frame (TTL 64) entering on port 1.
func TestTranslateOpenFlowActions(t *testing.T) {
	cases := []struct {
		name  string
		flows []string
		want  string
	}{
		{"output", []string{"in_port=1,actions=output:2"}, "2"},
		{"output to in_port skipped", []string{"actions=output:1,output:3"}, "3"},
		{"IN_PORT", []string{"actions=IN_PORT"}, "1"},
		{"FLOOD", []string{"actions=FLOOD"}, "2,3,4,5"},
		{"ALL", []string{"actions=ALL"}, "2,3,4,5"},
		{"LOCAL", []string{"actions=LOCAL"}, "5"},
		{"drop", []string{"actions=drop"}, "drop"},
		{"note", []string{"actions=note:01.02,output:2"}, "2"},
		{"resubmit(,T)", []string{"actions=resubmit(,1)", "table=1,actions=output:3"}, "3"},
		{"resubmit then more", []string{"actions=resubmit(,1),output:4", "table=1,actions=output:3"}, "3,4"},
		{"resubmit miss", []string{"actions=resubmit(,7),output:4"}, "4"},
		{"goto_table", []string{"actions=goto_table:2", "table=2,actions=output:4"}, "4"},
		{"resubmit(P,T)", []string{"actions=resubmit(3,1)", "table=1,in_port=3,actions=output:2", "table=1,priority=0,actions=output:4"}, "2"},
		{"resubmit:P", []string{"in_port=1,actions=resubmit:2", "in_port=2,actions=output:3"}, "3"},
		{"resubmit keeps in_port", []string{"actions=resubmit(2,1),output:1", "table=1,actions=output:2"}, "drop"},
		{"mod_dl_dst", []string{"actions=mod_dl_dst:02:00:00:00:00:99,output:2"}, "set(eth(dst=02:00:00:00:00:99)),2"},
		{"mod_dl_src", []string{"actions=mod_dl_src:02:00:00:00:00:98,output:2"}, "set(eth(src=02:00:00:00:00:98)),2"},
		{"set_field eth_dst", []string{"actions=set_field:02:00:00:00:00:97->eth_dst,output:2"}, "set(eth(dst=02:00:00:00:00:97)),2"},
		{"mod_nw_src/dst", []string{"actions=mod_nw_src:10.1.1.1,mod_nw_dst:10.2.2.2,output:2"}, "set(ipv4(src=10.1.1.1)),set(ipv4(dst=10.2.2.2)),2"},
		{"mod_nw_tos", []string{"actions=mod_nw_tos:32,output:2"}, "set(ipv4(tos=0x20)),2"},
		{"mod_tp_src/dst", []string{"actions=mod_tp_src:1,mod_tp_dst:2,output:2"}, "set(l4(src=1)),set(l4(dst=2)),2"},
		{"load tcp_dst", []string{"tcp,actions=load:0x1f90->NXM_OF_TCP_DST[],output:2"}, "set(l4(dst=8080)),2"},
		{"dec_ttl", []string{"actions=dec_ttl,output:2"}, "set(ipv4(ttl=63)),2"},
		{"dec_ttl at 1", []string{"actions=mod_nw_ttl:1,dec_ttl,output:2"}, "set(ipv4(ttl=1))"},
		{"mod_vlan_vid", []string{"actions=mod_vlan_vid:10,output:2"}, "push_vlan(vid=10,pcp=0),2"},
		{"mod_vlan_vid+pcp", []string{"actions=mod_vlan_vid:10,mod_vlan_pcp:3,output:2"}, "push_vlan(vid=10,pcp=3),2"},
		{"push then pop", []string{"actions=mod_vlan_vid:10,output:2,strip_vlan,output:3"}, "push_vlan(vid=10,pcp=0),2,pop_vlan,3"},
		{"register to next table", []string{"actions=load:5->NXM_NX_REG0[],resubmit(,1)", "table=1,reg0=5,actions=output:3", "table=1,priority=0,actions=output:4"}, "3"},
		{"set_field register", []string{"actions=set_field:7->reg3,set_field:0x10->metadata,goto_table:1", "table=1,reg3=7,metadata=0x10,actions=output:3"}, "3"},
		{"move", []string{"actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG1[0..15],resubmit(,1)", "table=1,reg1=1,actions=output:3"}, "3"},
		{"rewrite seen by next table", []string{"actions=mod_dl_dst:02:00:00:00:00:99,resubmit(,1)", "table=1,dl_dst=02:00:00:00:00:99,actions=output:4"}, "set(eth(dst=02:00:00:00:00:99)),4"},
		{"NORMAL", []string{"actions=NORMAL"}, "2,3,4,5"},
		{"clone", []string{"actions=clone(mod_dl_dst:02:00:00:00:00:99,output:2),output:3"}, "clone(set(eth(dst=02:00:00:00:00:99)),2),3"},
		{"clone keeps VLAN edits inside", []string{"actions=clone(mod_vlan_vid:10,output:2),output:3"}, "clone(push_vlan(vid=10,pcp=0),2),3"},
		{"clone's key changes end with it", []string{"actions=clone(load:1->NXM_NX_REG0[]),resubmit(,1)", "table=1,reg0=1,actions=output:2", "table=1,priority=0,actions=output:4"}, "4"},
		{"clone with resubmit", []string{"actions=clone(resubmit(,1)),output:3", "table=1,actions=output:2"}, "clone(2),3"},
		{"clone of unsupported drops all", []string{"actions=clone(output:NXM_NX_PKT_MARK[0..15]),output:3"}, "drop"},
		{"controller", []string{"actions=output:2,controller"}, "2,userspace(controller)"},
		{"controller sees rewrites", []string{"actions=mod_vlan_vid:10,controller:64"}, "push_vlan(vid=10,pcp=0),userspace(controller)"},
		{"miss without a controller drops", []string{"table=1,actions=output:2"}, "drop"},
		{"output:REG", []string{"actions=load:3->NXM_NX_REG0[0..15],output:NXM_NX_REG0[0..15]"}, "3"},
		{"unsupported drops all", []string{"actions=output:2,output:NXM_NX_PKT_MARK[0..15]"}, "drop"},
		{"unsupported in resubmit drops all", []string{"actions=output:2,resubmit(,1)", "table=1,actions=learn(table=2,limit=5,NXM_OF_ETH_DST[])"}, "drop"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := ofBridge(t)
			for _, f := range tc.flows {
				addFlow(t, b, f)
			}
			_, x := translateSpec(b, frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80})
			if got := datapath.FormatActions(x.Actions, nil); got != tc.want {
				t.Errorf("actions %s, want %s", got, tc.want)
			}
		})
	}
}

// TestTranslateResubmitLimits checks that a resubmit loop and a fan-out
// past OVS's limits drop the packet, outputs made before included, and
// count it, and that a chain just under the depth limit still forwards.
func TestTranslateResubmitLimits(t *testing.T) {
	s := frameSpec{in: 1, src: 0, dst: 4, ether: 3}
	for _, flows := range [][]string{
		{"actions=output:2,resubmit(,0)"},
		{"actions=output:2,resubmit(,1)", "table=1,actions=resubmit(,1),resubmit(,1)"},
	} {
		b := ofBridge(t)
		for _, f := range flows {
			addFlow(t, b, f)
		}
		before := tooDeep.Total()
		_, x := translateSpec(b, s)
		if len(x.Actions) != 0 {
			t.Errorf("%v: actions %s, want drop", flows, datapath.FormatActions(x.Actions, nil))
		}
		if tooDeep.Total() != before+1 {
			t.Errorf("%v: ofproto_xlate_too_deep went from %d to %d", flows, before, tooDeep.Total())
		}
	}
	// Tables 0..63 each resubmit to the next: 63 nested resubmits.
	b := ofBridge(t)
	for i := range maxResubmitDepth - 1 {
		addFlow(t, b, fmt.Sprintf("table=%d,actions=resubmit(,%d)", i, i+1))
	}
	addFlow(t, b, fmt.Sprintf("table=%d,actions=output:3", maxResubmitDepth-1))
	if _, x := translateSpec(b, s); datapath.FormatActions(x.Actions, nil) != "3" {
		t.Errorf("chain of %d resubmits: actions %s, want 3", maxResubmitDepth-1, datapath.FormatActions(x.Actions, nil))
	}
	var accounted int
	_, x := translateSpec(b, s)
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectAccount {
			accounted++
		}
	}
	if accounted != maxResubmitDepth {
		t.Errorf("%d rules accounted, want every one of the %d hit", accounted, maxResubmitDepth)
	}
}

// TestTranslateMaskPropertyWithActions is the mask property with flows
// that rewrite fields, edit VLANs, use registers and resubmit, on the
// bridge with mirrors and a patch.
func TestTranslateMaskPropertyWithActions(t *testing.T) {
	b, nports := propBridge(t, 2)
	b2 := b.Config().Ports[8].PeerBridge
	for _, f := range []string{
		"priority=100,tcp,tp_dst=80,actions=mod_dl_dst:02:00:00:00:00:03,resubmit(,1)",
		"priority=90,udp,actions=dec_ttl,mod_nw_tos:8,output:2,goto_table:1",
		"priority=80,dl_vlan=20,actions=strip_vlan,output:3,output:8",
		"priority=70,arp,actions=FLOOD",
		"priority=65,in_port=2,actions=IN_PORT,mod_vlan_vid:30,ALL",
		"priority=60,actions=load:1->NXM_NX_REG0[],move:NXM_OF_ETH_SRC[0..7]->NXM_NX_REG1[0..7],resubmit(,2)",
		"table=1,dl_dst=02:00:00:00:00:03,actions=mod_vlan_pcp:5,NORMAL",
		"table=1,priority=0,ip,actions=mod_nw_src:10.0.0.7,output:4,LOCAL",
		"table=2,reg0=1,reg1=1,ip,nw_src=10.0.0.1,actions=ALL",
		"table=2,reg0=1,reg1=2,actions=resubmit(8,3)",
		"table=2,priority=0,actions=NORMAL",
		"table=3,in_port=8,actions=output:1,output:5",
	} {
		addFlow(t, b, f)
	}
	addFlow(t, b2, "priority=50,dl_vlan=10,actions=mod_dl_src:02:00:00:00:00:77,output:3")
	rng := rand.New(rand.NewSource(5))
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

// TestTranslateActionsBounded: flows an OpenFlow client may add (each
// well under a flow-mod's 64 KiB) fan out within the resubmit limits to
// millions of outputs for one packet. Like OVS, which drops a packet
// whose datapath actions outgrow a netlink attribute, translation stops
// at maxDatapathActions, drops the packet and counts it.
func TestTranslateActionsBounded(t *testing.T) {
	b := ofBridge(t)
	rep := func(a string, n int) string { return strings.TrimSuffix(strings.Repeat(a+",", n), ",") }
	addFlow(t, b, "actions="+rep("resubmit(,1)", 60))
	addFlow(t, b, "table=1,actions="+rep("resubmit(,2)", 60))
	addFlow(t, b, "table=2,actions="+rep("output:2", 1000)) // 3.6 million outputs in all
	before := tooLarge.Total()
	start := time.Now()
	_, x := translateSpec(b, frameSpec{in: 1, src: 0, dst: 4, ether: 3})
	took := time.Since(start)
	t.Logf("translation took %v", took)
	if len(x.Actions) != 0 {
		t.Errorf("%d datapath actions, want the packet dropped", len(x.Actions))
	}
	if tooLarge.Total() != before+1 {
		t.Errorf("ofproto_xlate_too_large went from %d to %d", before, tooLarge.Total())
	}
	// Under the limit, a fan-out still forwards.
	b = ofBridge(t)
	addFlow(t, b, "actions="+rep("resubmit(,1)", 4))
	addFlow(t, b, "table=1,actions="+rep("output:2", 1000))
	if _, x := translateSpec(b, frameSpec{in: 1, src: 0, dst: 4, ether: 3}); len(x.Actions) != 4000 {
		t.Errorf("%d datapath actions for 4000 outputs", len(x.Actions))
	}
}
