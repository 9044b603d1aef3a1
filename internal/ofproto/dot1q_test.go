package ofproto

import (
	"encoding/binary"
	"fmt"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// dot1qBridge is a bridge with dot1q-tunnel ports 1 and 2 (service VLAN
// 100; port 2 only for customer VLANs 10 and 20), a trunk 3, an access
// port 4 of VLAN 100, and port 5 left for mirror outputs (a trunk).
func dot1qBridge(vlanLimit int, mirrors ...*Mirror) *Bridge {
	b := NewBridge("br", 64, 300)
	cfg := &Config{Ports: map[uint32]*Port{}, VLANLimit: vlanLimit, Mirrors: mirrors}
	vlans := []PortVLAN{tunnel(100), tunnel(100, 10, 20), trunks(true), {Mode: ModeAccess, Tag: 100}, trunks(true)}
	for i, v := range vlans {
		p := &Port{Name: fmt.Sprintf("p%d", i+1), OFPort: uint32(i + 1), DPPort: uint32(i + 1), VLAN: v}
		cfg.Ports[p.DPPort] = p
		cfg.Flood = append(cfg.Flood, p)
	}
	for _, m := range mirrors {
		if m.OutPort != nil {
			m.OutPort = cfg.Ports[m.OutPort.DPPort]
			m.OutPort.MirrorOut = true
		}
	}
	b.SetConfig(cfg)
	return b
}

// edit is the net change that a translation's actions make to the
// received frame's VLAN headers at one output: Pop outer headers off,
// then Push[:NPush] on, Push[0] outermost.
type edit struct {
	Pop, NPush uint8
	Push       [4]packet.VLANHeader
}

// output is one output of a translation, with the edit it gets.
type output struct {
	Port uint32
	VLAN edit
	Copy *datapath.CopyStats
}

// translate runs a broadcast frame with the given VLAN headers through
// NORMAL from port in and returns the edit each output port gets.
func translate(t *testing.T, b *Bridge, in uint32, hs ...packet.VLANHeader) map[uint32]edit {
	t.Helper()
	got := map[uint32]edit{}
	for _, o := range translateOutputs(b, in, hs...) {
		if _, dup := got[o.Port]; dup {
			t.Errorf("port %d got two outputs", o.Port)
		}
		got[o.Port] = o.VLAN
	}
	return got
}

// translateOutputs is translate returning the outputs in order. It
// applies the translation's mirror statistics as the datapath would.
func translateOutputs(b *Bridge, in uint32, hs ...packet.VLANHeader) []output {
	f := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, byte(in)}
	for _, h := range hs {
		f = binary.BigEndian.AppendUint16(f, h.TPID)
		f = binary.BigEndian.AppendUint16(f, h.TCI)
	}
	f = append(f, 0x88, 0xb5, 'x', 'y')
	pkt := &datapath.Packet{Frame: f, InPort: in}
	_ = packet.Parse(f, in, &pkt.Key.Key, &pkt.Off)
	var x datapath.Xlate
	b.Translate(pkt, &x)
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectCount {
			e.Counter.Packets.Add(1)
			e.Counter.Bytes.Add(uint64(len(f)))
		}
	}
	return outputsOf(x.Actions)
}

// outputsOf follows actions as the datapath executes them and returns
// each output with the net VLAN edit it gets.
func outputsOf(acts []datapath.Action) []output {
	var outs []output
	var e edit
	walkActions(acts, e, &outs)
	return outs
}

func walkActions(acts []datapath.Action, e edit, outs *[]output) {
	for i := 0; i < len(acts); i++ {
		a := acts[i]
		switch a.Kind {
		case datapath.ActClone:
			n := int(a.Len)
			walkActions(acts[i+1:i+1+n], e, outs)
			i += n
		case datapath.ActPushVLAN:
			copy(e.Push[1:], e.Push[:e.NPush])
			e.Push[0] = packet.VLANHeader{TPID: a.TPID, TCI: a.TCI}
			e.NPush++
		case datapath.ActPopVLAN:
			if e.NPush > 0 {
				copy(e.Push[:], e.Push[1:e.NPush])
				e.NPush--
				e.Push[e.NPush] = packet.VLANHeader{}
			} else {
				e.Pop++
			}
		case datapath.ActOutput:
			*outs = append(*outs, output{Port: a.Port, VLAN: e, Copy: a.Copy})
		}
	}
}

// none, pop and push are VLAN edits.
var none = edit{}

func pop(n uint8, push ...packet.VLANHeader) edit {
	e := edit{Pop: n, NPush: uint8(len(push))}
	copy(e.Push[:], push)
	return e
}

func push(hs ...packet.VLANHeader) edit { return pop(0, hs...) }

func checkEdits(t *testing.T, name string, got, want map[uint32]edit) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: outputs %v, want %v", name, got, want)
	}
}

// TestDot1qTunnelTranslate checks NORMAL's outputs for dot1q-tunnel ports
// against what OVS 3.1's ofproto/trace shows for the same bridge.
func TestDot1qTunnelTranslate(t *testing.T) {
	b := dot1qBridge(0)
	checkEdits(t, "customer VLAN 10 from p1", translate(t, b, 1, q(10)), map[uint32]edit{
		2: none, 3: push(ad(100)), 5: push(ad(100))})
	checkEdits(t, "customer VLAN 30 from p1 (not in p2's cvlans)", translate(t, b, 1, q(30)), map[uint32]edit{
		3: push(ad(100)), 5: push(ad(100))})
	checkEdits(t, "untagged from p1", translate(t, b, 1), map[uint32]edit{
		3: push(ad(100)), 4: none, 5: push(ad(100))})
	checkEdits(t, "priority-tagged from p1", translate(t, b, 1, qp(0, 3)), map[uint32]edit{
		3: push(ad(100)), 4: pop(1), 5: push(ad(100))})
	checkEdits(t, "customer VLAN 30 from p2 (cvlans 10, 20)", translate(t, b, 2, q(30)), map[uint32]edit{})
	checkEdits(t, "untagged from p2 (cvlans 10, 20)", translate(t, b, 2), map[uint32]edit{})
	checkEdits(t, "service-tagged from the trunk", translate(t, b, 3, ad(100), q(10)), map[uint32]edit{
		1: pop(1), 4: pop(1), 5: none})
	checkEdits(t, "untagged from the access port", translate(t, b, 4), map[uint32]edit{
		1: none, 3: push(q(100)), 5: push(q(100))})
}

// TestDot1qTunnelVLANLimit2 checks the outputs with vlan-limit 2 (or 0),
// where the bridge sees the customer tag of a service-tagged frame.
func TestDot1qTunnelVLANLimit2(t *testing.T) {
	b := dot1qBridge(2)
	checkEdits(t, "service-tagged from the trunk", translate(t, b, 3, ad(100), q(10)), map[uint32]edit{
		1: pop(1), 2: pop(1), 5: none})
	checkEdits(t, "service-tagged customer VLAN 5 from the trunk", translate(t, b, 3, ad(100), q(5)), map[uint32]edit{
		1: pop(1), 5: none})
	checkEdits(t, "double-tagged from p1 loses its inner tag", translate(t, b, 1, q(5), q(7)), map[uint32]edit{
		3: pop(2, ad(100), q(5)), 5: pop(2, ad(100), q(5))})
	// With vlan-limit 1 the same frame keeps both customer tags.
	checkEdits(t, "double-tagged from p1, vlan-limit 1", translate(t, dot1qBridge(1), 1, q(5), q(7)), map[uint32]edit{
		3: push(ad(100)), 5: push(ad(100))})
}

// TestDot1qTunnelMirrors checks what mirrors select and send for frames of
// a dot1q-tunnel port: they are in the service VLAN, and a copy leaves
// with the headers its output port gives it.
func TestDot1qTunnelMirrors(t *testing.T) {
	newMirror := func(out uint32, outVLAN int) *Mirror {
		m := &Mirror{Name: "m", Src: map[uint32]bool{1: true}, OutVLAN: outVLAN, Stats: &MirrorStats{}}
		if out != 0 {
			m.OutPort = &Port{DPPort: out}
		}
		return m
	}
	b := dot1qBridge(0, newMirror(5, -1))
	checkEdits(t, "copy to a trunk", translate(t, b, 1, q(10)), map[uint32]edit{
		2: none, 3: push(ad(100)), 5: push(ad(100))})
	b = dot1qBridge(0, newMirror(4, -1))
	checkEdits(t, "copy to an access port", translate(t, b, 1, q(10)), map[uint32]edit{
		2: none, 3: push(ad(100)), 4: pop(1), 5: push(ad(100))})
	b = dot1qBridge(0, newMirror(2, -1))
	checkEdits(t, "copy to a dot1q-tunnel port", translate(t, b, 1, q(30)), map[uint32]edit{
		2: none, 3: push(ad(100)), 5: push(ad(100))})

	m := newMirror(0, 200)
	b = dot1qBridge(0, m)
	// The frame, then the copies to the ports of VLAN 200, still over the
	// customer tag.
	var got []string
	for _, o := range translateOutputs(b, 1, q(10)) {
		got = append(got, fmt.Sprint(o.Port, o.VLAN, o.Copy != nil))
	}
	want := []string{fmt.Sprint(2, none, false), fmt.Sprint(3, push(ad(100)), false), fmt.Sprint(5, push(ad(100)), false),
		fmt.Sprint(3, push(ad(200)), true), fmt.Sprint(5, push(ad(200)), true)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("output_vlan 200: outputs %v, want %v", got, want)
	}

	m = newMirror(5, -1)
	m.VLANs = &VLANSet{}
	m.VLANs.Add(100)
	b = dot1qBridge(0, m)
	if got := translate(t, b, 1, q(10)); got[5] != push(ad(100)) || m.Stats.Packets.Load() != 1 {
		t.Errorf("select_vlan 100 (the service VLAN): outputs %v, %d packets selected", got, m.Stats.Packets.Load())
	}
	m.VLANs = &VLANSet{}
	m.VLANs.Add(10)
	if got := translate(t, b, 1, q(10)); len(got) != 2 || m.Stats.Packets.Load() != 1 {
		t.Errorf("select_vlan 10 (the customer VLAN) selected the frame: outputs %v, %d packets selected", got, m.Stats.Packets.Load())
	}
}

// TestTrunkKeepsTPID checks that a frame switched between trunks keeps
// its 802.1ad tag as it is (no copy), as OVS does.
func TestTrunkKeepsTPID(t *testing.T) {
	b := dot1qBridge(0)
	got := translate(t, b, 3, ad(7))
	if got[5] != none {
		t.Errorf("trunk to trunk: edit %v, want none", got[5])
	}
}
