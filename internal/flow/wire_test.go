package flow

import (
	"testing"

	"gvs/internal/packet"
)

// TestWireFieldsRoundTrip: a match turned into wire entries and back is
// the same match, for the S7 flows and the common field kinds.
func TestWireFieldsRoundTrip(t *testing.T) {
	for _, s := range []string{
		"tun_erspan_ver=2,tun_erspan_dir=1,tun_erspan_hwid=0x4,tun_flags=-oam",
		"tun_erspan_ver=1,tun_erspan_idx=0x3",
		"ct_state=-trk,tcp,in_port=1",
		"ct_state=+new+trk,tcp,in_port=2",
		"ip,nw_src=10.0.0.0/8,nw_dst=192.168.1.1",
		"udp,tp_dst=0x1000/0xf000",
		"arp,arp_spa=10.0.0.1,arp_op=1,arp_sha=00:11:22:33:44:55",
		"dl_vlan=10,dl_src=00:00:00:00:00:01/ff:ff:ff:00:00:00",
		"icmp,icmp_type=8,icmp_code=0",
		"tcp6,ipv6_src=2001:db8::/32,tp_src=22",
		"reg0=0x5/0xff,metadata=0x10",
		"ip,nw_tos=32,nw_ecn=1,ip_frag=first",
		"tcp,tcp_flags=+syn-ack",
		"",
	} {
		m, err := ParseMatch(s)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		back, err := MatchFromWire(m.WireFields())
		if err != nil {
			t.Fatalf("%q: from wire %v: %v", s, m.WireFields(), err)
		}
		if !back.Equal(m) {
			t.Errorf("%q: round trip gave %q", s, back.String())
		}
	}
}

// TestMatchFromWirePrereq: an entry without its prerequisite is refused.
func TestMatchFromWirePrereq(t *testing.T) {
	_, err := MatchFromWire([]WireField{{Name: "tcp_dst", FieldValue: FieldValue{Value: putUint(80), Mask: putUint(0xffff)}}})
	if err == nil {
		t.Fatal("tcp_dst without tcp accepted")
	}
	// OVS 3.1 takes contradictory ct_state flags over OpenFlow (a flow
	// that matches nothing), and refuses bits past the eight flags.
	if _, err = MatchFromWire([]WireField{{Name: "ct_state", FieldValue: FieldValue{Value: putUint(0x03), Mask: putUint(0x03)}}}); err != nil {
		t.Errorf("ct_state +new+est refused: %v", err)
	}
	if _, err = MatchFromWire([]WireField{{Name: "ct_state", FieldValue: FieldValue{Value: putUint(0x120), Mask: putUint(0x120)}}}); err == nil {
		t.Error("ct_state bit 0x100 accepted")
	}
}

// tun_flags on the wire is OpenFlow's oam bit only: an exact wire match
// (mask all ones) must not look at the datapath's df, csum and key bits
// the key keeps beside it, and other bits are refused.
func TestMatchFromWireTunFlags(t *testing.T) {
	var wf WireField
	wf.Name = "tun_flags"
	wf.Value[15], wf.Mask[14], wf.Mask[15] = 1, 0xff, 0xff
	m, err := MatchFromWire([]WireField{wf})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Mask().TunFlags; got != 1 {
		t.Errorf("tun_flags mask %#x, want 0x1", got)
	}
	k := packet.Key{TunFlags: 1 | 8} // oam, and the datapath's key flag
	if !m.Matches(&k) {
		t.Error("tun_flags=+oam does not match an OAM frame with a key")
	}
	wf.Value[15] = 2
	if _, err := MatchFromWire([]WireField{wf}); err == nil {
		t.Error("tun_flags 0x2 taken")
	}
}
