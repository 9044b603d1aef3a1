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
