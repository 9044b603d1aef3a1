package ofproto

import (
	"testing"

	"gvs/internal/packet"
)

// q is one 802.1Q header of VID vid, and qp one with a priority too.
func q(vid uint16) packet.VLANHeader { return packet.VLANHeader{TPID: packet.EtherTypeVLAN, TCI: vid} }
func qp(vid uint16, pcp uint16) packet.VLANHeader {
	return packet.VLANHeader{TPID: packet.EtherTypeVLAN, TCI: pcp<<packet.VLANPCPShift | vid}
}

// ad is one 802.1ad header of VID vid.
func ad(vid uint16) packet.VLANHeader { return packet.VLANHeader{TPID: packet.EtherTypeQinQ, TCI: vid} }

func trunks(all bool, vids ...uint16) PortVLAN {
	v := PortVLAN{Mode: ModeTrunk, AllTrunks: all}
	for _, x := range vids {
		v.Trunks.Add(x)
	}
	return v
}

func tunnel(tag uint16, cvlans ...uint16) PortVLAN {
	v := PortVLAN{Mode: ModeDot1qTunnel, Tag: tag}
	if len(cvlans) > 0 {
		v.CVLANs = &VLANSet{}
		for _, c := range cvlans {
			v.CVLANs.Add(c)
		}
	}
	return v
}

func TestInputVLAN(t *testing.T) {
	nativeUntagged := trunks(false, 20)
	nativeUntagged.Mode, nativeUntagged.Tag = ModeNativeUntagged, 10
	tests := []struct {
		name   string
		port   PortVLAN
		in     VLANs
		want   VLANs
		accept bool
	}{
		{"access untagged", PortVLAN{Mode: ModeAccess, Tag: 10}, VLANs{}, VLANs{q(10)}, true},
		{"access priority-tagged", PortVLAN{Mode: ModeAccess, Tag: 10}, VLANs{qp(0, 5)}, VLANs{qp(10, 5)}, true},
		{"access tagged with its own vlan", PortVLAN{Mode: ModeAccess, Tag: 10}, VLANs{q(10)}, VLANs{}, false},
		{"trunk untagged is vlan 0", trunks(true), VLANs{}, VLANs{}, true},
		{"trunk tagged", trunks(true), VLANs{q(30)}, VLANs{q(30)}, true},
		{"trunk keeps an 802.1ad tag", trunks(true), VLANs{ad(30), q(5)}, VLANs{ad(30), q(5)}, true},
		{"trunk not carrying", trunks(false, 10, 20), VLANs{q(30)}, VLANs{}, false},
		{"trunk carrying", trunks(false, 10, 20), VLANs{q(20)}, VLANs{q(20)}, true},
		{"native untagged goes native", nativeUntagged, VLANs{}, VLANs{q(10)}, true},
		{"native tagged native vid", nativeUntagged, VLANs{q(10)}, VLANs{q(10)}, true},
		{"native trunked vid", nativeUntagged, VLANs{q(20)}, VLANs{q(20)}, true},
		{"native other vid", nativeUntagged, VLANs{q(30)}, VLANs{}, false},
		{"tunnel untagged", tunnel(100), VLANs{}, VLANs{ad(100)}, true},
		{"tunnel customer-tagged", tunnel(100), VLANs{qp(10, 5)}, VLANs{ad(100), qp(10, 5)}, true},
		{"tunnel keeps two headers, losing the innermost", tunnel(100), VLANs{q(5), q(7)}, VLANs{ad(100), q(5)}, true},
		{"tunnel 802.1q service tag", PortVLAN{Mode: ModeDot1qTunnel, Tag: 100, QinQTPID: packet.EtherTypeVLAN}, VLANs{q(10)}, VLANs{q(100), q(10)}, true},
		{"tunnel cvlans admit", tunnel(100, 10, 20), VLANs{q(20)}, VLANs{ad(100), q(20)}, true},
		{"tunnel cvlans refuse", tunnel(100, 10, 20), VLANs{q(30)}, VLANs{}, false},
		{"tunnel cvlans refuse untagged", tunnel(100, 10, 20), VLANs{}, VLANs{}, false},
		{"tunnel cvlans refuse priority-tagged", tunnel(100, 10), VLANs{qp(0, 3)}, VLANs{}, false},
		{"tunnel cvlans with 0 admit untagged", tunnel(100, 0), VLANs{}, VLANs{ad(100)}, true},
	}
	for _, tt := range tests {
		got, ok := tt.port.Input(tt.in)
		if ok != tt.accept || (ok && got != tt.want) {
			t.Errorf("%s: Input(%v) = %v, %v; want %v, %v", tt.name, tt.in, got, ok, tt.want, tt.accept)
		}
	}
}

func TestOutputEncoding(t *testing.T) {
	nu := trunks(false, 20)
	nu.Mode, nu.Tag = ModeNativeUntagged, 10
	nt := nu
	nt.Mode = ModeNativeTagged
	tests := []struct {
		name     string
		port     PortVLAN
		vs       VLANs
		includes bool
		out      VLANs
	}{
		{"access own", PortVLAN{Mode: ModeAccess, Tag: 10}, VLANs{q(10)}, true, VLANs{}},
		{"access other", PortVLAN{Mode: ModeAccess, Tag: 10}, VLANs{q(20)}, false, VLANs{}},
		{"access own with customer tag", PortVLAN{Mode: ModeAccess, Tag: 100}, VLANs{ad(100), q(10)}, false, VLANs{}},
		{"access own with priority customer tag", PortVLAN{Mode: ModeAccess, Tag: 100}, VLANs{ad(100), qp(0, 3)}, true, VLANs{}},
		{"trunk vlan 0", trunks(true), VLANs{}, true, VLANs{}},
		{"trunk vlan 10", trunks(true), VLANs{q(10)}, true, VLANs{q(10)}},
		{"trunk service vlan", trunks(true), VLANs{ad(100), q(10)}, true, VLANs{ad(100), q(10)}},
		{"native-untagged native", nu, VLANs{q(10)}, true, VLANs{}},
		{"native-untagged native exposes inner tag", nu, VLANs{ad(10), q(5)}, true, VLANs{q(5)}},
		{"native-untagged trunked", nu, VLANs{q(20)}, true, VLANs{q(20)}},
		{"native-untagged other", nu, VLANs{q(30)}, false, VLANs{q(30)}},
		{"native-tagged native", nt, VLANs{q(10)}, true, VLANs{q(10)}},
		{"tunnel service vlan", tunnel(100), VLANs{ad(100), q(10)}, true, VLANs{q(10)}},
		{"tunnel untagged customer", tunnel(100), VLANs{ad(100)}, true, VLANs{}},
		{"tunnel other vlan", tunnel(100), VLANs{ad(200), q(10)}, false, VLANs{q(10)}},
		{"tunnel cvlans include", tunnel(100, 10), VLANs{ad(100), q(10)}, true, VLANs{q(10)}},
		{"tunnel cvlans exclude", tunnel(100, 10), VLANs{ad(100), q(11)}, false, VLANs{q(11)}},
		{"tunnel cvlans exclude untagged", tunnel(100, 10), VLANs{ad(100)}, false, VLANs{}},
	}
	for _, tt := range tests {
		if c := tt.port.Includes(tt.vs); c != tt.includes {
			t.Errorf("%s: Includes(%v) = %v", tt.name, tt.vs, c)
		}
		if got := tt.port.Output(tt.vs); got != tt.out {
			t.Errorf("%s: Output(%v) = %v, want %v", tt.name, tt.vs, got, tt.out)
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
	if m, ok := ParseVLANMode("dot1q-tunnel", true); !ok || m != ModeDot1qTunnel {
		t.Errorf("dot1q-tunnel = %v, %v", m, ok)
	}
	if _, ok := ParseVLANMode("bogus", false); ok {
		t.Errorf("bogus mode accepted")
	}
}
