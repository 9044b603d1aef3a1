package connmgr

import (
	"testing"

	"gvs/internal/flow"
	"gvs/internal/openflow"
)

// TestTunErspanWireRoundTrip: tun_erspan_* matches and set_field actions
// have only Nicira experimenter OXM headers (NXOXM_ET_ERSPAN_*,
// ovs-fields(7)); they go to the wire in NXM (OpenFlow 1.0) and OXM
// (1.3) matches and come back unchanged, so a flow dump keeps them.
func TestTunErspanWireRoundTrip(t *testing.T) {
	const text = "tun_erspan_ver=2,tun_erspan_idx=0x1234/0xffff,tun_erspan_dir=1,tun_erspan_hwid=0x5"
	m, err := flow.ParseMatch(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, oxm := range []bool{false, true} {
		fs := matchToWire(m, oxm)
		if len(fs) != 4 {
			t.Fatalf("oxm=%v: %d wire fields for %s, want 4: %+v", oxm, len(fs), text, fs)
		}
		for _, f := range fs {
			if f.Class != openflow.ClassExperimenter || f.Experimenter != openflow.NXVendorID {
				t.Errorf("oxm=%v: field %d: class %#x experimenter %#x, want Nicira's experimenter OXM", oxm, f.Field, f.Class, f.Experimenter)
			}
		}
		back, err := matchFromWire(fs)
		if err != nil {
			t.Fatalf("oxm=%v: %v", oxm, err)
		}
		if !back.Equal(m) {
			t.Errorf("oxm=%v: %s came back as %s", oxm, m, back)
		}
	}
	for _, act := range []string{"set_field:2->tun_erspan_ver", "set_field:0x3f->tun_erspan_hwid", "set_field:0xabcde->tun_erspan_idx", "set_field:1->tun_erspan_dir"} {
		acts, err := flow.ParseActions(act, nil)
		if err != nil {
			t.Fatalf("%s: %v", act, err)
		}
		for _, v := range []uint8{openflow.Version10, openflow.Version13} {
			wire, _ := actionsToWire(acts, v)
			if len(wire) != 1 {
				t.Fatalf("%s (version %d): %d wire actions, want 1", act, v, len(wire))
			}
			back, err := actionsFromWire(wire, v)
			if err != nil {
				t.Fatalf("%s (version %d): %v", act, v, err)
			}
			if got := flow.FormatActions(back, flow.FormatOptions{}); got != act {
				t.Errorf("version %d: %s came back as %s", v, act, got)
			}
		}
	}
}

// TestCTFromWireRefusesAsOVS: the ct and nat actions that ovs-ofctl can
// encode but the OVS 3.1 switch refuses (seen with the real ovs-vswitchd)
// get the same error code from gvs, and the ones it takes are taken.
func TestCTFromWireRefusesAsOVS(t *testing.T) {
	const reg0 = 0x00010004 // NXM_NX_REG0
	setMark := openflow.Action(openflow.SetField{Field: openflow.Field{Class: openflow.ClassNXM1, Field: 107, Value: []byte{0, 0, 0, 1}}})
	srcNAT := func(present uint16, ip4min, ip4max [4]byte, pmin, pmax uint16) openflow.NAT {
		return openflow.NAT{Flags: natSrc, RangePresent: present, IPv4Min: ip4min, IPv4Max: ip4max, ProtoMin: pmin, ProtoMax: pmax}
	}
	a1, a5 := [4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 5}
	for _, c := range []struct {
		name string
		ct   openflow.CT
		want openflow.ErrCode // 0: accepted
	}{
		{"zone=NXM_NX_REG0[0..15]", openflow.CT{Flags: ctCommit, ZoneSrc: reg0, Zone: 15, RecircTable: 255}, 0},
		{"zone=NXM_NX_REG0[0..16]", openflow.CT{Flags: ctCommit, ZoneSrc: reg0, Zone: 16, RecircTable: 255}, openflow.ErrActBadSetLen},
		{"zone=NXM_NX_REG0[0..7]", openflow.CT{Flags: ctCommit, ZoneSrc: reg0, Zone: 7, RecircTable: 255}, openflow.ErrActBadSetLen},
		{"force without commit", openflow.CT{Flags: ctForce, RecircTable: 255}, openflow.ErrActBadArgument},
		{"nat without commit", openflow.CT{RecircTable: 255, Actions: []openflow.Action{openflow.NAT{}}}, 0},
		{"nat(src=10.0.0.1) without commit", openflow.CT{RecircTable: 255, Actions: []openflow.Action{srcNAT(openflow.NATRangeIPv4Min, a1, a1, 0, 0)}}, openflow.ErrActBadArgument},
		{"exec(set_field:1->ct_mark) without commit", openflow.CT{RecircTable: 255, Actions: []openflow.Action{setMark}}, openflow.ErrActBadArgument},
		{"exec(set_field:1->ct_mark) with commit", openflow.CT{Flags: ctCommit, RecircTable: 255, Actions: []openflow.Action{setMark}}, 0},
		{"nat(src=10.0.0.1:0-10)", openflow.CT{Flags: ctCommit, RecircTable: 255, Actions: []openflow.Action{srcNAT(openflow.NATRangeIPv4Min|openflow.NATRangeProtoMax, a1, a1, 0, 10)}}, openflow.ErrActBadArgument},
		{"nat(src=10.0.0.5-10.0.0.1)", openflow.CT{Flags: ctCommit, RecircTable: 255, Actions: []openflow.Action{srcNAT(openflow.NATRangeIPv4Min|openflow.NATRangeIPv4Max, a5, a1, 0, 0)}}, openflow.ErrActBadArgument},
		{"nat(src=10.0.0.1:2000-1000)", openflow.CT{Flags: ctCommit, RecircTable: 255, Actions: []openflow.Action{srcNAT(openflow.NATRangeIPv4Min|openflow.NATRangeProtoMin|openflow.NATRangeProtoMax, a1, a1, 2000, 1000)}}, openflow.ErrActBadArgument},
		{"nat(src=10.0.0.1-10.0.0.5:1000-2000)", openflow.CT{Flags: ctCommit, RecircTable: 255, Actions: []openflow.Action{srcNAT(openflow.NATRangeIPv4Min|openflow.NATRangeIPv4Max|openflow.NATRangeProtoMin|openflow.NATRangeProtoMax, a1, a5, 1000, 2000)}}, 0},
		{"nat(src,dst)", openflow.CT{Flags: ctCommit, RecircTable: 255, Actions: []openflow.Action{openflow.NAT{Flags: natSrc | natDst}}}, openflow.ErrActBadArgument},
		{"nat(src,hash,random)", openflow.CT{Flags: ctCommit, RecircTable: 255, Actions: []openflow.Action{openflow.NAT{Flags: natSrc | natHash | natRandom}}}, openflow.ErrActBadArgument},
	} {
		_, err := ctFromWire(c.ct, openflow.Version10)
		var code openflow.ErrCode
		if oe, ok := err.(*openflow.Error); ok {
			code = oe.Code
		} else if err != nil {
			t.Errorf("%s: error %v is no OpenFlow error", c.name, err)
			continue
		}
		if code != c.want {
			t.Errorf("%s: error %v, want code %v", c.name, err, c.want)
		}
	}
}
