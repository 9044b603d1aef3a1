package ofproto

import (
	"testing"

	"gvs/internal/packet"
)

func tagged(vid uint16) uint16 { return packet.KeyTCI(vid) }

func trunks(all bool, vids ...uint16) PortVLAN {
	v := PortVLAN{Mode: ModeTrunk, AllTrunks: all}
	for _, x := range vids {
		v.Trunks.Add(x)
	}
	return v
}

func TestInputVLAN(t *testing.T) {
	nativeUntagged := trunks(false, 20)
	nativeUntagged.Mode, nativeUntagged.Tag = ModeNativeUntagged, 10
	tests := []struct {
		name   string
		port   PortVLAN
		tci    uint16
		vlan   uint16
		accept bool
	}{
		{"access untagged", PortVLAN{Mode: ModeAccess, Tag: 10}, 0, 10, true},
		{"access priority-tagged", PortVLAN{Mode: ModeAccess, Tag: 10}, packet.KeyTCI(5 << 13), 10, true},
		{"access tagged with its own vlan", PortVLAN{Mode: ModeAccess, Tag: 10}, tagged(10), 0, false},
		{"trunk untagged is vlan 0", trunks(true), 0, 0, true},
		{"trunk tagged", trunks(true), tagged(30), 30, true},
		{"trunk not carrying", trunks(false, 10, 20), tagged(30), 30, false},
		{"trunk carrying", trunks(false, 10, 20), tagged(20), 20, true},
		{"native untagged goes native", nativeUntagged, 0, 10, true},
		{"native tagged native vid", nativeUntagged, tagged(10), 10, true},
		{"native trunked vid", nativeUntagged, tagged(20), 20, true},
		{"native other vid", nativeUntagged, tagged(30), 30, false},
	}
	for _, tt := range tests {
		vlan, ok := tt.port.InputVLAN(tt.tci)
		if ok != tt.accept || (ok && vlan != tt.vlan) {
			t.Errorf("%s: InputVLAN(%#x) = %d, %v; want %d, %v", tt.name, tt.tci, vlan, ok, tt.vlan, tt.accept)
		}
	}
}

func TestOutputEncoding(t *testing.T) {
	nu := trunks(false, 20)
	nu.Mode, nu.Tag = ModeNativeUntagged, 10
	nt := nu
	nt.Mode = ModeNativeTagged
	tests := []struct {
		name    string
		port    PortVLAN
		vlan    uint16
		carries bool
		tagged  bool
	}{
		{"access own", PortVLAN{Mode: ModeAccess, Tag: 10}, 10, true, false},
		{"access other", PortVLAN{Mode: ModeAccess, Tag: 10}, 20, false, false},
		{"trunk vlan 0", trunks(true), 0, true, false},
		{"trunk vlan 10", trunks(true), 10, true, true},
		{"native-untagged native", nu, 10, true, false},
		{"native-untagged trunked", nu, 20, true, true},
		{"native-untagged other", nu, 30, false, true},
		{"native-tagged native", nt, 10, true, true},
	}
	for _, tt := range tests {
		if c := tt.port.Carries(tt.vlan); c != tt.carries {
			t.Errorf("%s: Carries(%d) = %v", tt.name, tt.vlan, c)
		}
		if tt.carries {
			if g := tt.port.OutputTagged(tt.vlan); g != tt.tagged {
				t.Errorf("%s: OutputTagged(%d) = %v", tt.name, tt.vlan, g)
			}
		}
	}
}

func TestParseVLANMode(t *testing.T) {
	if m, ok := ParseVLANMode("", true); !ok || m != ModeAccess {
		t.Errorf("empty mode with tag = %v", m)
	}
	if m, ok := ParseVLANMode("", false); !ok || m != ModeTrunk {
		t.Errorf("empty mode without tag = %v", m)
	}
	if _, ok := ParseVLANMode("bogus", false); ok {
		t.Errorf("bogus mode accepted")
	}
}
