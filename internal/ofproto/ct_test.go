package ofproto

import (
	"encoding/binary"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"gvs/internal/conntrack"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// translateCT translates s as it comes back from the tracker with
// recirculation id id and ct_state state (id 0: as received).
func translateCT(b *Bridge, s frameSpec, id uint32, state uint8) (datapath.Key, *datapath.Xlate) {
	f := s.bytes()
	pkt := &datapath.Packet{Frame: f, InPort: s.in}
	_ = packet.Parse(f, s.in, &pkt.Key.Key, &pkt.Off)
	pkt.Key.RecircID, pkt.Key.CtState = id, state
	x := &datapath.Xlate{}
	b.Translate(pkt, x)
	return pkt.Key, x
}

// recircOf returns the recirculation id the actions end with, or 0.
func recircOf(acts []datapath.Action) uint32 {
	for _, a := range acts {
		if a.Kind == datapath.ActRecirc {
			return uint32(a.Value)
		}
	}
	return 0
}

func ctOf(acts []datapath.Action) *conntrack.Action {
	for _, a := range acts {
		if a.Kind == datapath.ActCT {
			return a.CT
		}
	}
	return nil
}

// TestTranslateS7 translates S7's five flows for each pass of a packet:
// untracked it goes to the tracker and recirculates to table 0; back as
// +trk+new from the left it is committed and sent right; +est crosses
// either way; +new from the right goes nowhere. The masks hold ct_state
// and the recirculation id.
func TestTranslateS7(t *testing.T) {
	b := ofBridge(t)
	for _, f := range []string{
		"table=0, priority=50, ct_state=-trk, tcp, in_port=1, actions=ct(table=0)",
		"table=0, priority=50, ct_state=+trk+new, tcp, in_port=1, actions=ct(commit),2",
		"table=0, priority=50, ct_state=-trk, tcp, in_port=2, actions=ct(table=0)",
		"table=0, priority=50, ct_state=+trk+est, tcp, in_port=2, actions=1",
		"table=0, priority=50, ct_state=+trk+est, tcp, in_port=1, actions=2",
	} {
		addFlow(t, b, f)
	}
	left := frameSpec{in: 1, src: 0, dst: 1, ether: 0, nwSrc: 1, tpDst: 80}
	right := frameSpec{in: 2, src: 1, dst: 0, ether: 0, nwSrc: 2, tpDst: 80}
	_, x := translateCT(b, left, 0, 0)
	id := recircOf(x.Actions)
	if got := datapath.FormatActions(x.Actions, nil); id == 0 || !strings.HasPrefix(got, "ct,recirc(") {
		t.Fatalf("untracked from the left: %s, want ct,recirc(ID)", got)
	}
	if x.Mask.CtState&conntrack.StateTrk == 0 || x.Mask.RecircID != ^uint32(0) {
		t.Errorf("mask ct_state %#x recirc_id %#x: want trk and the whole id", x.Mask.CtState, x.Mask.RecircID)
	}
	_, xr := translateCT(b, right, 0, 0)
	if idr := recircOf(xr.Actions); idr == 0 || idr == id {
		t.Errorf("from the right: recirculation id %d, want one of its own (left: %d)", idr, id)
	}
	trkNew := conntrack.StateTrk | conntrack.StateNew
	trkEst := conntrack.StateTrk | conntrack.StateEst
	for _, tc := range []struct {
		name  string
		s     frameSpec
		state uint8
		want  string
	}{
		{"+new from the left", left, trkNew, "ct(commit),2"},
		{"+est from the left", left, trkEst, "2"},
		{"+est from the right", right, trkEst, "1"},
		{"+new from the right", right, trkNew, "drop"},
		{"+inv from the left", left, conntrack.StateTrk | conntrack.StateInv, "drop"},
	} {
		_, x := translateCT(b, tc.s, recircOf(map[bool][]datapath.Action{true: x.Actions, false: xr.Actions}[tc.s.in == 1]), tc.state)
		if got := datapath.FormatActions(x.Actions, nil); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if x.Mask.CtState&(conntrack.StateNew|conntrack.StateEst) == 0 {
			t.Errorf("%s: ct_state mask %#x lacks the bits matched", tc.name, x.Mask.CtState)
		}
	}
}

// TestTranslateCTArguments: zone from a register, exec writes to
// ct_mark and ct_label, nat and alg reach the tracker's action.
func TestTranslateCTArguments(t *testing.T) {
	b := ofBridge(t)
	addFlow(t, b, "ip,actions=load:7->NXM_NX_REG0[0..15],ct(commit,zone=NXM_NX_REG0[0..15],"+
		"exec(set_field:0x5/0xff->ct_mark,load:1->NXM_NX_CT_LABEL[64]),nat(src=10.0.0.9:1000-1010),alg=ftp),output:2")
	_, x := translateCT(b, frameSpec{in: 1, src: 0, dst: 1, ether: 0, nwSrc: 1, tpDst: 80}, 0, 0)
	a := ctOf(x.Actions)
	if a == nil {
		t.Fatalf("no ct action in %s", datapath.FormatActions(x.Actions, nil))
	}
	if a.Zone != 7 || !a.Commit || !a.SetMark || a.Mark != 5 || a.MarkMask != 0xff {
		t.Errorf("ct action %+v: want zone 7, commit, mark 5/0xff", *a)
	}
	if !a.SetLabel || a.Label[7] != 1 || a.LabelMask[7] != 1 || a.LabelMask[8] != 0 {
		t.Errorf("label %x/%x: want bit 64", a.Label, a.LabelMask)
	}
	if !a.HasNAT || a.NAT.Kind != conntrack.NATSrc || a.NAT.AddrMin.String() != "10.0.0.9" ||
		a.NAT.AddrMax != a.NAT.AddrMin || a.NAT.PortMin != 1000 || a.NAT.PortMax != 1010 || a.ALG != conntrack.ALGFTP {
		t.Errorf("nat %+v alg %d", a.NAT, a.ALG)
	}
}

// TestTranslateRecirculationKeepsRegisters: registers and metadata set
// before ct(table=N) are there in table N; the original of the fork goes
// on untracked; ct_clear forgets the ct fields.
func TestTranslateRecirculationKeepsRegisters(t *testing.T) {
	b := ofBridge(t)
	addFlow(t, b, "priority=10,ip,actions=load:3->NXM_NX_REG2[],set_field:0x9->metadata,ct(table=1),resubmit(,2)")
	addFlow(t, b, "table=1,reg2=3,metadata=0x9,ct_state=+trk,actions=output:3")
	addFlow(t, b, "table=2,ct_state=-trk,actions=output:4")
	addFlow(t, b, "table=3,ip,ct_state=+trk,actions=ct_clear,resubmit(,4)")
	addFlow(t, b, "table=4,ct_state=-trk,actions=output:2")
	s := frameSpec{in: 1, src: 0, dst: 1, ether: 0, nwSrc: 1, tpDst: 80}
	_, x := translateCT(b, s, 0, 0)
	id := recircOf(x.Actions)
	if got := datapath.FormatActions(x.Actions, nil); !strings.HasPrefix(got, "ct,recirc(") || !strings.HasSuffix(got, "),4") {
		t.Fatalf("first pass: %s, want ct,recirc(ID),4", got)
	}
	if _, x = translateCT(b, s, id, conntrack.StateTrk); datapath.FormatActions(x.Actions, nil) != "3" {
		t.Errorf("recirculated: %s, want 3 (reg2 and metadata kept)", datapath.FormatActions(x.Actions, nil))
	}
	b.Tables.Delete(Selector{Table: TableAll})
	addFlow(t, b, "ip,actions=ct(table=3)")
	addFlow(t, b, "table=3,ip,ct_state=+trk,actions=ct_clear,resubmit(,4)")
	addFlow(t, b, "table=4,ct_state=-trk,actions=output:2")
	_, x = translateCT(b, s, 0, 0)
	if _, x = translateCT(b, s, recircOf(x.Actions), conntrack.StateTrk); datapath.FormatActions(x.Actions, nil) != "ct_clear,2" {
		t.Errorf("ct_clear: %s, want ct_clear,2", datapath.FormatActions(x.Actions, nil))
	}
}

// TestMirrorFilterSeesCTState: a mirror whose filter matches ct_state
// copies the packets of the pass after ct() that have that state: new
// connections, not established ones.
func TestMirrorFilterSeesCTState(t *testing.T) {
	b := ofBridge(t)
	cfg := *b.Config()
	m, err := flow.ParseMatchWith("ct_state=+trk+new", flow.ParseOptions{LenientCtState: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mirrors = []*Mirror{{Name: "new", All: true, Filter: m, OutPort: cfg.Ports[4], OutVLAN: -1, Stats: &MirrorStats{}}}
	b.SetConfig(&cfg)
	addFlow(t, b, "priority=50,ct_state=-trk,tcp,actions=ct(table=0)")
	addFlow(t, b, "priority=50,ct_state=+trk,tcp,actions=ct(commit),output:2")
	s := frameSpec{in: 1, src: 0, dst: 1, ether: 0, nwSrc: 1, tpDst: 80}
	_, x := translateCT(b, s, 0, 0)
	id := recircOf(x.Actions)
	_, xn := translateCT(b, s, id, conntrack.StateTrk|conntrack.StateNew)
	if got := datapath.FormatActions(xn.Actions, nil); got != "ct(commit),2,4" {
		t.Errorf("+new: %s, want ct(commit),2,4 (the mirror copy)", got)
	}
	if xn.Mask.CtState&conntrack.StateNew == 0 {
		t.Errorf("the filter's ct_state bits are not in the mask (%#x)", xn.Mask.CtState)
	}
	_, xe := translateCT(b, s, id, conntrack.StateTrk|conntrack.StateEst)
	if got := datapath.FormatActions(xe.Actions, nil); got != "ct(commit),2" {
		t.Errorf("+est: %s, want ct(commit),2 (no copy)", got)
	}
}

// TestTranslateMaskPropertyWithCT is the mask property for ct flows: two
// packets whose keys (recirculation id, ct_state, ct_mark included) agree
// on a translation's mask translate alike.
func TestTranslateMaskPropertyWithCT(t *testing.T) {
	b, nports := propBridge(t, 2)
	for _, f := range []string{
		"priority=100,ip,ct_state=-trk,actions=load:5->NXM_NX_REG0[0..15],ct(table=1,zone=NXM_NX_REG0[0..15])",
		"priority=50,arp,actions=NORMAL",
		"table=1,ip,ct_state=+trk+new,actions=ct(commit,exec(set_field:1->ct_mark)),NORMAL",
		"table=1,ip,ct_state=+trk+est,ct_mark=1,actions=output:2",
		"table=1,priority=0,actions=ct_clear,NORMAL",
	} {
		addFlow(t, b, f)
	}
	_, x := translateCT(b, frameSpec{in: 1, ether: 0}, 0, 0)
	id := recircOf(x.Actions)
	if id == 0 {
		t.Fatalf("no recirculation: %s", datapath.FormatActions(x.Actions, nil))
	}
	states := []uint8{0, conntrack.StateTrk | conntrack.StateNew, conntrack.StateTrk | conntrack.StateEst,
		conntrack.StateTrk | conntrack.StateEst | conntrack.StateRpl, conntrack.StateTrk | conntrack.StateInv}
	type ctSpec struct {
		s     frameSpec
		id    uint32
		state uint8
		mark  uint32
	}
	random := func(rng *rand.Rand) ctSpec {
		return ctSpec{randomSpec(rng, nports), []uint32{0, id}[rng.Intn(2)], states[rng.Intn(len(states))], uint32(rng.Intn(2))}
	}
	translate := func(c ctSpec) (datapath.Key, *datapath.Xlate) {
		f := c.s.bytes()
		pkt := &datapath.Packet{Frame: f, InPort: c.s.in}
		_ = packet.Parse(f, c.s.in, &pkt.Key.Key, &pkt.Off)
		pkt.Key.RecircID, pkt.Key.CtState, pkt.Key.CtMark = c.id, c.state, c.mark
		pos := int(pkt.Off.VLAN)
		for i := 0; i < int(pkt.Off.NumVLANs) && i < packet.MaxVLANs; i++ {
			pkt.Key.VLANTPID[i] = binary.BigEndian.Uint16(f[pos:])
			pos += packet.VLANTagLen
		}
		x := &datapath.Xlate{}
		b.Translate(pkt, x)
		return pkt.Key, x
	}
	rng := rand.New(rand.NewSource(7))
	compared := 0
	for range 20000 {
		a := random(rng)
		ka, xa := translate(a)
		c, r := a, random(rng)
		switch rng.Intn(4) {
		case 0:
			c.s = a.s.mutate(rng)
		case 1:
			c.id = r.id
		case 2:
			c.state = r.state
		case 3:
			c.mark = r.mark
		}
		kb, xb := translate(c)
		if !agree(&ka, &kb, &xa.Mask) {
			continue
		}
		if ka != kb {
			compared++
		}
		if !reflect.DeepEqual(xa.Actions, xb.Actions) || !reflect.DeepEqual(xa.Effects, xb.Effects) {
			t.Fatalf("keys agreeing on the mask translate differently:\n%+v\n%+v\nactions %s\nactions %s",
				a, c, datapath.FormatActions(xa.Actions, nil), datapath.FormatActions(xb.Actions, nil))
		}
	}
	if compared < 500 {
		t.Fatalf("only %d compared pairs had different keys", compared)
	}
}
