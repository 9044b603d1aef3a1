package flow

import (
	"errors"
	"strings"
	"testing"

	"gvs/internal/packet"
)

// TestParsePrints checks parsing and canonical printing against
// expectations written out by hand (the differential test compares with
// ovs-ofctl where it is installed; these hold everywhere).
func TestParsePrints(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", ""},
		{"tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0", "tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0"},
		{"tp_dst=80,tcp", "tcp,tp_dst=80"},
		{"ip,nw_proto=17,udp_dst=53", "udp,tp_dst=53"},
		{"ipv6,nw_proto=58,icmpv6_type=135,nd_target=fe80::1", "icmp6,icmp_type=135,nd_target=fe80::1"},
		{"ip,nw_src=10.1.2.3/255.255.0.0", "ip,nw_src=10.1.0.0/16"},
		{"ip,nw_src=10.1.2.3/255.0.255.0", "ip,nw_src=10.0.2.0/255.0.255.0"},
		{"dl_vlan=10", "dl_vlan=10"},
		{"dl_vlan=0xffff", "vlan_tci=0x0000"},
		{"dl_vlan=10,dl_vlan_pcp=5", "dl_vlan=10,dl_vlan_pcp=5"},
		{"vlan_tci=0x1000/0x1000", "vlan_tci=0x1000/0x1000"},
		{"tcp,tcp_flags=+syn-ack", "tcp,tcp_flags=+syn-ack"},
		{"tcp,tcp_flags=0x12", "tcp,tcp_flags=syn|ack"},
		{"ct_state=+trk+new-est", "ct_state=+new-est+trk"},
		{"ct_state=+est+trk,ip,ct_nw_dst=10.0.0.1", "ct_state=+est+trk,ct_nw_dst=10.0.0.1,ip"},
		{"arp,nw_src=10.0.0.1,arp_op=2", "arp,arp_spa=10.0.0.1,arp_op=2"},
		{"icmp6,icmp_type=135,arp_sha=00:11:22:33:44:55", "icmp6,icmp_type=135,nd_sll=00:11:22:33:44:55"},
		{"ip,ip_frag=not_later", "ip,nw_frag=not_later"},
		{"ip,nw_frag=0x2/0x3", "ip,nw_frag=0x2/0x3"},
		{"in_port=LOCAL,dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0", "in_port=LOCAL,dl_dst=01:80:c2:00:00:00/ff:ff:ff:ff:ff:f0"},
		{"ct_mark=0x10/0xf0,ct_zone=7,pkt_mark=3", "pkt_mark=0x3,ct_zone=7,ct_mark=0x10/0xf0"},
		{"tun_id=0x64,tun_src=192.0.2.1", "tun_id=0x64,tun_src=192.0.2.1"},
		{"mpls,mpls_label=100,mpls_bos=1", "mpls,mpls_label=100,mpls_bos=1"},
		{"tcp,tp_dst=*", "tcp"},
		{"ct_state=+trk,+new", ""}, // only with LenientCtState; see TestLenientCtState
	}
	for _, c := range cases[:len(cases)-1] {
		m, err := ParseMatch(c.in)
		if err != nil {
			t.Errorf("ParseMatch(%q): %v", c.in, err)
			continue
		}
		if got := m.String(); got != c.want {
			t.Errorf("ParseMatch(%q).String() = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLenientCtState(t *testing.T) {
	opts := ParseOptions{LenientCtState: true}
	for _, in := range []string{"ct_state=+trk,+new", "ct_state=+trk, +new", "ct_state=+trk,+new,ip"} {
		m, err := ParseMatchWith(in, opts)
		if err != nil {
			t.Errorf("lenient ParseMatchWith(%q): %v", in, err)
			continue
		}
		if got := m.String(); !strings.HasPrefix(got, "ct_state=+new+trk") {
			t.Errorf("lenient ParseMatchWith(%q).String() = %q, want ct_state=+new+trk...", in, got)
		}
	}
	// Lenience glues flags only onto ct_state, and only flag words.
	if _, err := ParseMatchWith("tcp,tcp_flags=+syn,+ack", opts); err == nil {
		t.Error("lenient mode accepted tcp_flags=+syn,+ack")
	}
	_, err := ParseMatch("ct_state=+trk,+new")
	if err == nil || !strings.Contains(err.Error(), "ct_state=+trk,+new") ||
		!strings.Contains(err.Error(), "ct_state=+trk+new") {
		t.Errorf("strict ParseMatch(ct_state=+trk,+new) error = %v, want one naming the value and the right spelling", err)
	}
}

func TestPortNames(t *testing.T) {
	ports := map[string]uint32{"eth0": 3, "LOCALX": 9}
	byName := func(s string) (uint32, bool) { p, ok := ports[s]; return p, ok }
	m, err := ParseMatchWith("in_port=eth0", ParseOptions{PortByName: byName})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.String(); got != "in_port=3" {
		t.Errorf("String() = %q, want in_port=3", got)
	}
	name := func(p uint32) (string, bool) { return "eth0", p == 3 }
	if got := m.Format(FormatOptions{PortName: name}); got != "in_port=eth0" {
		t.Errorf("Format with names = %q, want in_port=eth0", got)
	}
	if _, err := ParseMatch("in_port=eth0"); err == nil {
		t.Error("in_port=eth0 parsed with no way to resolve names")
	}
	// Reserved names win over a port that happens to share one.
	m, err = ParseMatchWith("in_port=local", ParseOptions{PortByName: byName})
	if err != nil || m.Value().InPort != PortLocal {
		t.Errorf("in_port=local: %v, port %d, want %d", err, m.Value().InPort, PortLocal)
	}
}

// TestParseErrors: every error names the field and the value as written,
// and says what is wrong.
func TestParseErrors(t *testing.T) {
	cases := []struct{ in, field, value, want string }{
		{"tp_dst=80", "tp_dst", "80", "prerequisites not met: tp_dst applies only to tcp, udp, sctp"},
		{"tcp_dst=80", "tcp_dst", "80", "prerequisites not met"},
		{"ip,tp_dst=80", "tp_dst", "80", "prerequisites not met"},
		{"ipv6,nw_proto=1,icmp_type=3", "icmp_type", "3", "prerequisites not met"},
		{"udp,tcp_flags=+syn", "tcp_flags", "+syn", "applies only to TCP packets"},
		{"nw_src=10.0.0.1", "nw_src", "10.0.0.1", "prerequisites not met: nw_src applies only to IPv4 and ARP"},
		{"ipv6,nw_src=10.0.0.1", "nw_src", "10.0.0.1", "prerequisites not met"},
		{"ip,ipv6_src=::1", "ipv6_src", "::1", "applies only to IPv6 packets"},
		{"nw_ttl=3", "nw_ttl", "3", "applies only to IP packets"},
		{"ip_frag=no", "ip_frag", "no", "prerequisites not met"},
		{"nw_src=*", "nw_src", "*", "prerequisites not met"},
		{"arp_sha=00:00:00:00:00:01", "arp_sha", "00:00:00:00:00:01", "prerequisites not met"},
		{"icmp6,nd_target=::1", "nd_target", "::1", "applies only to ND messages"},
		{"icmp6,icmp_type=135,icmp_code=1,nd_target=::1", "nd_target", "::1", "prerequisites not met"},
		{"icmp6,icmp_type=136,nd_sll=00:00:00:00:00:01", "nd_sll", "00:00:00:00:00:01", "prerequisites not met"},
		{"mpls_label=5", "mpls_label", "5", "applies only to MPLS packets"},
		{"ct_nw_src=1.1.1.1", "ct_nw_src", "1.1.1.1", "tracked, valid connections"},
		{"ct_state=+trk,ip,ct_nw_src=1.1.1.1", "ct_nw_src", "1.1.1.1", "prerequisites not met"},
		{"ct_state=+trk+inv,ct_nw_proto=6", "ct_nw_proto", "6", "prerequisites not met"},
		{"ct_state=+est+trk,ct_nw_src=1.1.1.1", "ct_nw_src", "1.1.1.1", "IPv4 packets"},
		{"ct_state=+new,ct_tp_src=1", "ct_tp_src", "1", "with ct_nw_proto given"},
		{"ct_state=+trk,+new", "ct_state", "+trk,+new", "without commas (ct_state=+trk+new)"},
		{"ct_state=+trk-trk", "ct_state", "+trk-trk", `"trk" given more than once`},
		{"ct_state=+foo", "ct_state", "+foo", `unknown ct_state flag "foo"`},
		{"ct_state=0x100", "ct_state", "0x100", "not ct_state flags"},
		{"ct_state=+new+est", "ct_state", "+new+est", "new and est are mutually exclusive"},
		{"ct_state=+new+rpl", "ct_state", "+new+rpl", "new and rpl are mutually exclusive"},
		{"ct_state=+inv+new", "ct_state", "+inv+new", "with +inv only +trk"},
		{"ct_state=+new-trk", "ct_state", "+new-trk", "with -trk no other flag"},
		{"priority=5,ip", "priority", "5", "not a match field"},
		{"cookie=0x5", "cookie", "0x5", "not a match field"},
		{"table=1", "table", "1", "not a match field"},
		{"ip,actions=drop", "actions", "drop", "not a match field"},
		{"send_flow_rem", "send_flow_rem", "", "not a match field"},
		{"foo=1", "foo", "1", "unknown field"},
		{"TP_DST=80", "TP_DST", "80", "names are case-sensitive: tp_dst"},
		{"TCP", "TCP", "", "names are case-sensitive: tcp"},
		{"bogus", "bogus", "", "unknown field or protocol"},
		{"tun_metadata0=1", "tun_metadata0", "1", "not supported by gvs"},
		{"reg16=1", "reg16", "1", "unknown field"},
		{"xreg0=0x10000000000000000", "xreg0", "0x10000000000000000", "the field is 64 bits"},
		{"reg0=0x100000000", "reg0", "0x100000000", "the field is 32 bits"},
		{"metadata=1/2/3", "metadata", "1/2/3", "more than one"},
		{"tcp=1", "tcp", "1", "protocol keyword takes no value"},
		{"tcp,tp_dst=99999", "tp_dst", "99999", "value too large (the field is 16 bits: at most 65535)"},
		{"tcp,tp_dst=80/0x10000", "tp_dst", "80/0x10000", "mask: value too large"},
		{"tcp,tp_dst=", "tp_dst", "", "missing value"},
		{"tcp,tp_dst", "tp_dst", "", "missing value"},
		{"tcp,tp_dst=80/", "tp_dst", "80/", "missing mask"},
		{"tcp,tp_dst=/80", "tp_dst", "/80", "missing value"},
		{"tcp,tp_dst=1e2", "tp_dst", "1e2", "not a number"},
		{"tcp,tp_dst=-1", "tp_dst", "-1", "not a number"},
		{"tcp,tp_dst=080", "tp_dst", "080", "leading 0 means octal"},
		{"tcp,tp_dst=0x", "tp_dst", "0x", "not a number"},
		{"tcp,tp_dst=8_0", "tp_dst", "8_0", "not a number"},
		{"tcp,tp_dst(80", "tp_dst", "", "missing ')'"},
		{"=5", "", "", "missing field name"},
		{"ip,nw_ttl=5/0xf0", "nw_ttl", "5/0xf0", "cannot be masked"},
		{"ip,nw_ttl=256", "nw_ttl", "256", "value too large"},
		{"ip,nw_tos=3", "nw_tos", "3", "ECN bits are nw_ecn"},
		{"ip,ip_dscp=64", "ip_dscp", "64", "value too large"},
		{"ip,nw_ecn=4", "nw_ecn", "4", "value too large"},
		{"ip,nw_src=10.1", "nw_src", "10.1", "invalid IPv4 address"},
		{"ip,nw_src=10.0.0.256", "nw_src", "10.0.0.256", "invalid IPv4 address"},
		{"ip,nw_src=10.0.0.1/33", "nw_src", "10.0.0.1/33", "prefix length must be 0 to 32"},
		{"ip,nw_src=10.0.0.1/24/8", "nw_src", "10.0.0.1/24/8", "more than one '/'"},
		{"ip,nw_src=10.0.0.0/255.0.0.x", "nw_src", "10.0.0.0/255.0.0.x", "invalid IPv4 mask"},
		{"ipv6,ipv6_src=1.2.3.4", "ipv6_src", "1.2.3.4", "invalid IPv6 address"},
		{"ipv6,ipv6_dst=fe80::1%eth0", "ipv6_dst", "fe80::1%eth0", "invalid IPv6 address"},
		{"ipv6,ipv6_src=::1/129", "ipv6_src", "::1/129", "prefix length must be 0 to 128"},
		{"ipv6,ipv6_label=0x100000", "ipv6_label", "0x100000", "value too large"},
		{"dl_src=01:02:03:04:05", "dl_src", "01:02:03:04:05", "invalid Ethernet address"},
		{"dl_src=01-02-03-04-05-06", "dl_src", "01-02-03-04-05-06", "invalid Ethernet address"},
		{"dl_src=01:02:03:04:05:06/24", "dl_src", "01:02:03:04:05:06/24", "invalid Ethernet mask"},
		{"dl_type=0x10000", "dl_type", "0x10000", "value too large"},
		{"dl_type=0x800/0xff00", "dl_type", "0x800/0xff00", "cannot be masked"},
		{"dl_vlan=4096", "dl_vlan", "4096", "VLAN ID must be 0 to 4095"},
		{"dl_vlan=5/0xff", "dl_vlan", "5/0xff", "cannot be masked"},
		{"vlan_pcp=8", "vlan_pcp", "8", "VLAN priority must be 0 to 7"},
		{"vlan_vid=0x2005", "vlan_vid", "0x2005", "value too large"},
		{"vlan_tci=0x10000", "vlan_tci", "0x10000", "value too large"},
		{"in_port=foo", "in_port", "foo", "unknown port"},
		{"in_port=70000", "in_port", "70000", "out of range"},
		{"in_port=0xfffe", "in_port", "0xfffe", "unknown port"},
		{"in_port=1/1", "in_port", "1/1", "cannot be masked"},
		{"ct_zone=5/0xff", "ct_zone", "5/0xff", "cannot be masked"},
		{"ct_zone=65536", "ct_zone", "65536", "value too large"},
		{"ct_label=0x1ff123456789abcdef0123456789abcdef0", "ct_label", "0x1ff123456789abcdef0123456789abcdef0", "value too large"},
		{"ct_label=18446744073709551616", "ct_label", "18446744073709551616", "write wide values in hex"},
		{"tun_id=0x1ffffffffffffffff", "tun_id", "0x1ffffffffffffffff", "value too large"},
		{"tun_flags=2", "tun_flags", "2", "not tunnel flags"},
		{"tun_flags=+oam-oam", "tun_flags", "+oam-oam", "given more than once"},
		{"tcp,tcp_flags=0x1000", "tcp_flags", "0x1000", "not TCP flags"},
		{"tcp,tcp_flags=syn+ack", "tcp_flags", "syn+ack", `unknown TCP flag "syn+ack"`},
		{"tcp,tcp_flags=+SYN", "tcp_flags", "+SYN", `unknown TCP flag "SYN"`},
		{"tcp,tcp_flags=+", "tcp_flags", "+", "missing TCP flag name"},
		{"tcp,tcp_flags=+[300]", "tcp_flags", "+[300]", "unknown TCP flag"},
		{"tcp,tcp_flags=+syn,+ack", "tcp_flags", "+syn,+ack", "without commas"},
		{"ip,ip_frag=maybe", "ip_frag", "maybe", "unknown fragment type"},
		{"ip,nw_frag=1/3/3", "nw_frag", "1/3/3", "unknown fragment type"},
		{"arp,arp_op=256", "arp_op", "256", "value too large"},
		{"icmp,tp_dst=0x100/0xff00", "tp_dst", "0x100/0xff00", "ICMP type and code cannot be masked"},
		{"icmp6,icmp_type=1,tp_src=300", "tp_src", "300", "ICMP type and code are 8 bits"},
		{"icmp,icmp_code=1/0xf", "icmp_code", "1/0xf", "cannot be masked"},
		{"mpls,mpls_label=0x100000", "mpls_label", "0x100000", "value too large"},
		{"mpls,mpls_label=5/0xff", "mpls_label", "5/0xff", "cannot be masked"},
	}
	for _, c := range cases {
		m, err := ParseMatch(c.in)
		if err == nil {
			t.Errorf("ParseMatch(%q) = %q, want an error containing %q", c.in, m, c.want)
			continue
		}
		var fe *Error
		if !errors.As(err, &fe) {
			t.Errorf("ParseMatch(%q) error %v is a %T, not a *flow.Error", c.in, err, err)
			continue
		}
		if fe.Field != c.field || fe.Value != c.value {
			t.Errorf("ParseMatch(%q) error names %q=%q, want %q=%q", c.in, fe.Field, fe.Value, c.field, c.value)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseMatch(%q) error %q does not contain %q", c.in, err, c.want)
		}
		if c.field != "" && !strings.Contains(err.Error(), c.field) {
			t.Errorf("ParseMatch(%q) error %q does not name the field", c.in, err)
		}
	}
}

// TestRoundTrip: for every match the tests parse, printing and parsing
// again gives the same match, and printing that gives the same text.
func TestRoundTrip(t *testing.T) {
	for _, in := range ofctlCases {
		m, err := ParseMatch(in)
		if err != nil {
			t.Errorf("ParseMatch(%q): %v", in, err)
			continue
		}
		checkRoundTrip(t, in, m)
	}
}

func checkRoundTrip(t *testing.T, in string, m *Match) {
	t.Helper()
	text := m.String()
	again, err := ParseMatch(text)
	if err != nil {
		t.Errorf("ParseMatch(%q) printed %q, which does not parse: %v", in, text, err)
		return
	}
	if !again.Equal(m) {
		t.Errorf("ParseMatch(%q) printed %q, which parses to a different match (%q)", in, text, again)
	}
	if again.String() != text {
		t.Errorf("printing is not stable: %q then %q", text, again.String())
	}
}

// TestKeyPlacement checks that fields land in the Key members the packet
// parser fills, including the ones OpenFlow 1.0 shares.
func TestKeyPlacement(t *testing.T) {
	m, err := ParseMatch("arp,nw_src=10.0.0.1,nw_dst=10.0.0.2,arp_op=1,arp_sha=00:00:00:00:00:01")
	if err != nil {
		t.Fatal(err)
	}
	v, k := m.Value(), m.Mask()
	if v.ArpSpa != [4]byte{10, 0, 0, 1} || v.ArpTpa != [4]byte{10, 0, 0, 2} || v.ArpOp != 1 ||
		k.ArpOp != 0xffff || v.NwSrc != ([4]byte{}) || k.NwSrc != ([4]byte{}) || k.NwProto != 0 {
		t.Errorf("ARP fields misplaced: value %+v mask %+v", v, k)
	}
	m, err = ParseMatch("icmp6,icmp_type=136,nd_tll=00:00:00:00:00:02,nd_target=fe80::1")
	if err != nil {
		t.Fatal(err)
	}
	v = m.Value()
	if v.NdTll != [6]byte{0, 0, 0, 0, 0, 2} || v.ArpTha != ([6]byte{}) || v.TpSrc != 136 || m.Mask().TpSrc != 0xffff {
		t.Errorf("ND fields misplaced: %+v", v)
	}
	m, err = ParseMatch("ip,nw_tos=0xb8,nw_ecn=1,dl_vlan=7,dl_vlan_pcp=5,mpls_label=0,ct_label=0x1")
	if err == nil {
		t.Errorf("mpls_label on an IP match parsed: %q", m)
	}
	m, err = ParseMatch("ip,nw_tos=0xb8,nw_ecn=1,dl_vlan=7,dl_vlan_pcp=5,ct_label=0x0102")
	if err != nil {
		t.Fatal(err)
	}
	v, k = m.Value(), m.Mask()
	wantLabel := [16]byte{14: 1, 15: 2}
	if v.NwTOS != 0xb9 || k.NwTOS != 0xff || v.VLANTCI != 0xb007 || k.VLANTCI != 0xffff || v.CtLabel != wantLabel {
		t.Errorf("fields misplaced: value %+v mask %+v", v, k)
	}
	m, err = ParseMatch("mpls,mpls_label=0x12345,mpls_tc=5,mpls_bos=1,mpls_ttl=9")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Value().MPLSLSE[0], uint32(0x12345<<12|5<<9|1<<8|9); got != want || m.Mask().MPLSLSE[0] != 0xffffffff {
		t.Errorf("MPLS LSE = %#x mask %#x, want %#x", got, m.Mask().MPLSLSE[0], want)
	}
	var zero packet.Key
	if m, _ := ParseMatch(""); !m.IsCatchAll() || m.Mask() != zero {
		t.Error("empty match is not catch-all")
	}
}
