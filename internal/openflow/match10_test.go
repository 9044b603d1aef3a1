package openflow

import (
	"reflect"
	"testing"
)

// TestMatch10Fields: ovs-ofctl sends add-flow "priority=100,tcp,
// nw_src=10.0.0.0/24,tp_dst=80" as a plain 1.0 flow mod
// (testdata/captures/of10_add_basic.hex); its fixed match means the same
// NXM entries the NXM form would carry, and converts back unchanged.
func TestMatch10Fields(t *testing.T) {
	fm := firstFlowMod(t, "of10_add_basic.hex")
	if fm.NXM {
		t.Fatal("expected the plain 1.0 flow mod")
	}
	got := fm.Match10.Fields()
	want := []Field{
		mustField(t, "NXM_OF_ETH_TYPE", []byte{8, 0}, nil),
		mustField(t, "NXM_OF_IP_PROTO", []byte{6}, nil),
		mustField(t, "NXM_OF_IP_SRC", []byte{10, 0, 0, 0}, []byte{255, 255, 255, 0}),
		mustField(t, "NXM_OF_TCP_DST", []byte{0, 80}, nil),
	}
	if !equalFields(got, want) {
		t.Errorf("fields\n got %+v\nwant %+v", got, want)
	}
	back, ok := Match10FromFields(got)
	if !ok || back != fm.Match10 {
		t.Errorf("back to 1.0: %v\n got %+v\nwant %+v", ok, back, fm.Match10)
	}
}

func TestMatch10Conversions(t *testing.T) {
	all := uint32(FW10AllOVS)
	for _, c := range []struct {
		name string
		m    Match10
		want []Field
	}{
		{"everything", Match10{Wildcards: all}, nil},
		{"in_port and MACs", Match10{Wildcards: all &^ (FW10InPort | FW10DlSrc | FW10DlDst), InPort: 0xfffe,
			DlSrc: [6]byte{1, 2, 3, 4, 5, 6}, DlDst: [6]byte{7, 8, 9, 10, 11, 12}},
			[]Field{mustField(t, "NXM_OF_IN_PORT", []byte{0xff, 0xfe}, nil),
				mustField(t, "NXM_OF_ETH_SRC", []byte{1, 2, 3, 4, 5, 6}, nil),
				mustField(t, "NXM_OF_ETH_DST", []byte{7, 8, 9, 10, 11, 12}, nil)}},
		{"untagged", Match10{Wildcards: all &^ FW10DlVLAN, DlVLAN: 0xffff},
			[]Field{mustField(t, "NXM_OF_VLAN_TCI", []byte{0, 0}, nil)}},
		{"vlan 10", Match10{Wildcards: all &^ FW10DlVLAN, DlVLAN: 10},
			[]Field{mustField(t, "NXM_OF_VLAN_TCI", []byte{0x10, 10}, []byte{0x1f, 0xff})}},
		{"pcp 5", Match10{Wildcards: all &^ FW10DlVLANPCP, DlVLANPCP: 5},
			[]Field{mustField(t, "NXM_OF_VLAN_TCI", []byte{0xb0, 0}, []byte{0xf0, 0})}},
		{"vlan and pcp", Match10{Wildcards: all &^ (FW10DlVLAN | FW10DlVLANPCP), DlVLAN: 10, DlVLANPCP: 5},
			[]Field{mustField(t, "NXM_OF_VLAN_TCI", []byte{0xb0, 10}, nil)}},
		{"icmp", Match10{Wildcards: all &^ (FW10DlType | FW10NwProto | FW10TpSrc | FW10TpDst | FW10NwTOS),
			DlType: 0x0800, NwProto: 1, TpSrc: 8, TpDst: 0, NwTOS: 0x20},
			[]Field{mustField(t, "NXM_OF_ETH_TYPE", []byte{8, 0}, nil), mustField(t, "NXM_OF_IP_TOS", []byte{0x20}, nil),
				mustField(t, "NXM_OF_IP_PROTO", []byte{1}, nil), mustField(t, "NXM_OF_ICMP_TYPE", []byte{8}, nil),
				mustField(t, "NXM_OF_ICMP_CODE", []byte{0}, nil)}},
		{"udp src, exact dst address", Match10{Wildcards: all &^ (FW10DlType | FW10NwProto | FW10TpSrc) &^ (0x3f << FW10NwDstShift),
			DlType: 0x0800, NwProto: 17, TpSrc: 53, NwDst: [4]byte{1, 2, 3, 4}},
			[]Field{mustField(t, "NXM_OF_ETH_TYPE", []byte{8, 0}, nil), mustField(t, "NXM_OF_IP_PROTO", []byte{17}, nil),
				mustField(t, "NXM_OF_IP_DST", []byte{1, 2, 3, 4}, nil), mustField(t, "NXM_OF_UDP_SRC", []byte{0, 53}, nil)}},
		{"arp", Match10{Wildcards: all&^(FW10DlType|FW10NwProto)&^(0x3f<<FW10NwSrcShift) | 16<<FW10NwSrcShift,
			DlType: 0x0806, NwProto: 2, NwSrc: [4]byte{10, 1, 0, 0}},
			[]Field{mustField(t, "NXM_OF_ETH_TYPE", []byte{8, 6}, nil), mustField(t, "NXM_OF_ARP_OP", []byte{0, 2}, nil),
				mustField(t, "NXM_OF_ARP_SPA", []byte{10, 1, 0, 0}, []byte{255, 255, 0, 0})}},
	} {
		got := c.m.Fields()
		if !equalFields(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
			continue
		}
		back, ok := Match10FromFields(got)
		if !ok || !reflect.DeepEqual(back, c.m) {
			t.Errorf("%s: back: %v\n got %+v\nwant %+v", c.name, ok, back, c.m)
		}
	}
	// Fields 1.0 cannot carry.
	for _, fs := range [][]Field{
		{mustField(t, "NXM_NX_REG0", []byte{0, 0, 0, 1}, nil)},
		{mustField(t, "NXM_OF_ETH_DST", []byte{1, 0, 0, 0, 0, 0}, []byte{1, 0, 0, 0, 0, 0})},
		{mustField(t, "NXM_OF_IP_SRC", []byte{10, 0, 0, 1}, []byte{255, 0, 255, 255})},
		{mustField(t, "NXM_OF_VLAN_TCI", []byte{0, 5}, []byte{0, 0xff})},
	} {
		if m, ok := Match10FromFields(fs); ok {
			t.Errorf("%+v became %+v", fs, m)
		}
	}
}

// TestMatch10CapturesRoundTrip: every plain 1.0 match ovs-ofctl sent
// (add-flow, del-flows, mod-flows) survives the trip through NXM fields.
func TestMatch10CapturesRoundTrip(t *testing.T) {
	n := 0
	for _, c := range loadCaptures(t) {
		_, m, err := Decode(c.msg)
		if err != nil {
			continue
		}
		fm, ok := m.(*FlowMod)
		if !ok || fm.NXM || c.msg[0] != Version10 {
			continue
		}
		n++
		back, ok := Match10FromFields(fm.Match10.Fields())
		if !ok || back != fm.Match10 {
			t.Errorf("%s:%d: %+v became %+v (%v)", c.file, c.line, fm.Match10, back, ok)
		}
	}
	if n < 5 {
		t.Fatalf("only %d plain 1.0 flow mods in the captures", n)
	}
}
