package flow

import (
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
)

// ofctlCases are matches that gvs and ovs-ofctl both accept; each must
// print the same in both. (Inputs ovs-ofctl accepts but gvs refuses, such
// as fields whose prerequisites are missing, are in TestParseErrors.)
var ofctlCases = []string{
	"",
	"ip", "ipv6", "icmp", "icmp6", "tcp", "tcp6", "udp", "udp6", "sctp", "sctp6",
	"arp", "rarp", "mpls", "mplsm", "eth",
	"tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0",
	"tcp,tp_dst=80", "udp,tp_dst=53", "udp,udp_dst=53", "sctp,sctp_src=1", "tcp,tcp_src=1,tcp_dst=2",
	"tcp,udp_dst=53", "tcp,tp_src=0/0xff00", "tcp,tp_dst=0x51/0xfff0", "tcp,tp_dst=80/65520",
	"tcp,tp_dst=80/0xffff", "tcp,tp_dst=80/0", "tcp,tp_dst=*", "tp_dst=80,tcp",
	"tcp6,tp_dst=443", "udp6,tp_src=546,tp_dst=547",
	"icmp,icmp_type=3,icmp_code=1", "icmp,tp_src=3", "icmp,tp_dst=3", "icmp6,icmpv6_type=1",
	"icmp6,icmp_type=135", "icmp6,icmpv6_code=0",
	"ip,nw_proto=6", "ip,nw_proto=6,tp_dst=80", "dl_type=0x0800,nw_proto=6", "dl_type=0x800",
	"eth_type=0x86dd,ip_proto=58", "dl_type=0x0800,nw_proto=44", "dl_type=0x86dd,nw_proto=44",
	"ip,nw_proto=0", "ip,nw_proto=99,nw_ttl=4,nw_tos=4,nw_src=1.1.1.1",
	"ipv6,nw_proto=99,nw_ttl=4,ipv6_label=3",
	"dl_type=0x1234", "dl_type=0x05ff", "dl_type=0", "dl_type=2048",
	"arp,arp_op=2", "rarp,arp_op=3", "arp,arp_sha=01:02:03:04:05:06", "arp,nw_proto=1",
	"arp,arp_op=1,arp_spa=1.1.1.0/24,arp_tpa=2.2.2.2,arp_sha=01:00:00:00:00:00,arp_tha=02:00:00:00:00:00,dl_vlan=3,dl_vlan_pcp=2",
	"arp,nw_dst=1.2.3.4", "rarp,nw_src=1.2.3.4", "dl_type=0x0806,nw_src=1.2.3.4",
	"arp,arp_spa=1.2.3.4,nw_src=5.6.7.8", "arp,arp_spa=1.2.3.4/16",
	"arp,arp_sha=01:02:03:04:05:06/ff:ff:ff:ff:ff:00",
	"ip,nw_tos=0xb8", "ip,ip_dscp=46", "ip,nw_ecn=3", "ip,ip_ecn=1", "ip,nw_ttl=5",
	"ip,ip_dscp=46,nw_ecn=2", "ip,nw_ecn=1,nw_tos=8,nw_ttl=3", "ip,nw_tos=0xfc", "ip,nw_tos=8/0xff",
	"ip,nw_ttl=5/0xff", "ip,nw_ttl=5/0", "ip,nw_proto=6/0xff", "dl_type=0x0800/0xffff",
	"ip,ip_frag=no", "ip,ip_frag=yes", "ip,ip_frag=first", "ip,ip_frag=later", "ip,ip_frag=not_later",
	"ipv6,nw_frag=later",
	"tcp,tcp_flags=syn", "tcp,tcp_flags=+syn+ack-fin", "tcp,tcp_flags=0x12", "tcp,tcp_flags=0x012/0xfff",
	"tcp,tcp_flags=0/0", "tcp,tcp_flags=0x200/0x200", "tcp,tcp_flags=0x12/0x12",
	"tcp,tcp_flags=+ns+cwr+ece+urg+psh+rst", "tcp,tcp_flags=fin|syn", "tcp,tcp_flags=0xfff",
	"tcp,tcp_flags=0", "tcp,tcp_flags=+syn,tcp_flags=+ack", "tcp,tcp_flags=0x2/0x6",
	"tcp,tcp_flags=0x3/0x2", "tcp6,tcp_flags=+syn", "tcp,tcp_flags=-syn-ack", "tcp,tcp_flags=[200]",
	"tcp,tcp_flags=+[200]", "tcp,tcp_flags=+syn,ip",
	"ip,nw_src=10.0.0.1/32", "ip,nw_src=10.0.0.1/0", "ip,nw_src=10.0.0.1/255.0.255.0",
	"ip,nw_src=10.0.0.1/0.0.0.0", "ip,nw_src=10.1.2.3/8", "ip,nw_src=10.0.0.01", "ip,nw_src=*",
	"ip,ip_src=1.2.3.4", "ip,ip_dst=1.2.3.4", "ip,nw_dst=192.168.0.0/255.255.128.0",
	"ipv6,ipv6_src=2001:db8::1", "ipv6,ipv6_src=2001:DB8::1/64", "ipv6,ipv6_src=2001:db8::/ffff:ffff::",
	"ipv6,ipv6_src=2001:db8::/ffff:0:ffff::", "ipv6,ipv6_src=::/0", "ipv6,ipv6_src=::1/128",
	"ipv6,ipv6_src=::ffff:1.2.3.4", "ipv6,ipv6_dst=::1.2.3.4", "ipv6,ipv6_dst=::2",
	"ipv6,ipv6_src=2001:db8:0:0:1:0:0:1", "ipv6,ipv6_dst=fe80::1:0:0:0/64",
	"ipv6,ipv6_src=::ffff:0:1.2.3.4", "ipv6,ipv6_src=1::", "ipv6,ipv6_src=1:0:0:1::1",
	"ipv6,ipv6_src=1:0:1:0:1:0:1:0", "ipv6,ipv6_src=::1:0", "ipv6,ipv6_src=::0.0.0.1",
	"ipv6,ipv6_src=::ffff:0.0.0.0", "ipv6,ipv6_src=0:0:0:0:0:1::", "ipv6,ipv6_src=::/::1",
	"ipv6,ipv6_src=2001:db8::/ffff::ff00",
	"ipv6,ipv6_label=0x12345", "ipv6,ipv6_label=5/0xf", "ipv6,ipv6_label=1048575", "ipv6,ipv6_label=0",
	"ipv6,ipv6_src=::1,ipv6_dst=::2,ipv6_label=5,nw_proto=58",
	"ipv6,ipv6_label=5,ipv6_src=::1,ipv6_dst=::2,nw_ttl=3,nw_tos=4,ip_frag=no",
	"tcp6,ipv6_label=5,tcp_flags=+syn,tp_src=2,tp_dst=3",
	"icmp6,icmp_type=135,icmp_code=0,nd_target=::1,nd_sll=01:02:03:04:05:06",
	"icmp6,icmp_type=136,icmp_code=0,nd_target=::1,nd_tll=01:02:03:04:05:06",
	"icmp6,icmp_type=135,nd_target=2001:db8::/64",
	"icmp6,icmp_type=135,nd_sll=01:02:03:04:05:06/ff:ff:ff:00:00:00",
	"icmp6,icmp_type=136,nd_target=::1,nd_tll=01:02:03:04:05:06",
	"dl_src=01:02:03:04:05:06", "dl_src=1:2:3:4:5:6", "dl_src=AA:BB:CC:DD:EE:FF",
	"dl_src=aa:bb:cc:dd:ee:ff/ff:ff:ff:00:00:00", "dl_src=aa:bb:cc:dd:ee:ff/00:00:00:00:00:00",
	"dl_src=aa:bb:cc:dd:ee:ff/ff:ff:ff:ff:ff:ff", "dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
	"dl_dst=00:00:00:00:00:00/01:00:00:00:00:00", "dl_dst=ff:ff:ff:ff:ff:ff", "eth_dst=01:02:03:04:05:06",
	"in_port=1,dl_src=01:00:00:00:00:00/01:00:00:00:00:00",
	"dl_type=0x1234,in_port=1,dl_src=01:00:00:00:00:00,dl_vlan=1",
	"dl_vlan=5", "dl_vlan=0xffff", "dl_vlan=0", "dl_vlan=4095", "vlan_tci=0x1005/0x1fff",
	"vlan_vid=5", "vlan_vid=0x1005", "vlan_vid=0x1000/0x1000", "vlan_vid=0", "vlan_vid=0x1005/0x1fff",
	"vlan_vid=5/0xff", "vlan_pcp=3", "dl_vlan=0xffff,dl_vlan_pcp=3", "dl_vlan_pcp=3,dl_vlan=0xffff",
	"dl_vlan=5,vlan_tci=0x1009", "vlan_tci=0x1009,dl_vlan=5", "vlan_tci=0", "vlan_tci=0/0x1000",
	"vlan_tci=0x1000/0x1000", "vlan_tci=0x5", "vlan_tci=0x6005", "vlan_tci=0x7005/0xffff",
	"vlan_tci=0x6000/0xe000", "vlan_tci=0x7000/0xf000", "vlan_tci=0x1005/0x0fff",
	"dl_vlan=5,dl_vlan_pcp=3", "dl_vlan_pcp=3,vlan_tci=0x1000/0x1000", "vlan_tci=0x0005/0x1fff",
	"vlan_tci=0x2005/0x3fff", "vlan_tci=0x1005/0x1000", "vlan_tci=0xffff/0x1fff", "vlan_tci=0x5/0xefff",
	"vlan_vid=0x5/0x1fff", "vlan_vid=0x1005/0x1005", "vlan_vid=0x0005/0x0fff", "vlan_vid=0x1000",
	"vlan_vid=0x1fff/0x1000", "vlan_tci=1/0xffff", "vlan_tci=0x6001/0xffff", "dl_vlan=5,dl_vlan_pcp=*", "dl_vlan=5,dl_vlan_pcp=3,dl_vlan=*",
	"dl_vlan=5,dl_vlan=*", "vlan_tci=0x1000/0x1000,dl_vlan_pcp=*",
	"mpls,mpls_label=5", "mpls,mpls_tc=3", "mpls,mpls_bos=1", "mpls,mpls_ttl=64",
	"mplsm,mpls_label=5,mpls_tc=2,mpls_bos=0,mpls_ttl=3",
	"mpls,mpls_label=5,mpls_ttl=3,dl_src=01:00:00:00:00:00,in_port=1,dl_vlan=2",
	"in_port=LOCAL", "in_port=65534", "in_port=65535", "in_port=65280", "in_port=65279", "in_port=NONE",
	"in_port=CONTROLLER", "in_port=4294967294", "in_port=4294967040", "in_port=local", "in_port=IN_PORT",
	"in_port=TABLE", "in_port=NORMAL", "in_port=FLOOD", "in_port=ALL", "in_port=ANY", "in_port=010",
	"in_port=0", "in_port(7)", "in_port:7",
	"pkt_mark=5/0xff", "pkt_mark=0xffffffff", "pkt_mark=0/0xff", "pkt_mark=0", "pkt_mark=010",
	"recirc_id=4", "recirc_id=0", "recirc_id=0x10", "dp_hash=5", "dp_hash=5/0xf", "dp_hash=0/0xf",
	"recirc_id=4,dp_hash=5,pkt_mark=1", "recirc_id=3,ip", "recirc_id=0,tcp,tp_dst=80", "recirc_id=3,dl_vlan=5",
	"recirc_id=3,in_port=1", "recirc_id=3,dl_type=0x1234", "recirc_id=3,tun_id=1,dl_dst=00:00:00:00:00:01",
	"dp_hash=1,ip",
	"ct_mark=5/0xff", "ct_mark=0xffffffff/0", "ct_mark=0/0xffffffff", "ct_mark=0", "ct_mark=10",
	"ct_label=0x5/0xff", "ct_label=0x123456789abcdef0123456789abcdef",
	"ct_label=0x123456789abcdef0123456789abcdef0", "ct_label=0/0", "ct_label=0x1/0x1",
	"ct_label=0xffffffffffffffffffffffffffffffff",
	"ct_label=0xffffffffffffffffffffffffffffffff/0xf0000000000000000000000000000000",
	"ct_label=1/0xffffffffffffffffffffffffffffffff", "ct_label=00000000000000000000000000000000001",
	"ct_label=10", "ct_label=0/0xff", "ct_label=0x10",
	"tun_id=0x5/0xff", "tunnel_id=5", "tun_id=0", "tun_id=0/0xff", "tun_id=0xffffffffffffffff",
	"tun_id=0x00ffffffffffffffff", "tun_id=10",
	"ct_zone=5", "ct_zone=0x10", "ct_zone=65535", "ct_zone=0x0",
	"ct_state=-new", "ct_state=+new", "ct_state=+trk+new-est", "ct_state=0x21", "ct_state=0x21/0x23",
	"ct_state=trk", "ct_state=0", "ct_state=0/0xff", "ct_state=+dnat+trk,ip",
	"ct_state=+trk-inv,ip,ct_nw_src=1.1.1.1", "ct_state=+new+trk,ip,ct_nw_src=1.1.1.1",
	"ct_state=+rel+trk,ipv6,ct_ipv6_src=::1", "ct_state=+rpl+trk,ct_nw_proto=6",
	"ct_state=+trk-inv,ct_nw_proto=6,ct_tp_src=1,ct_tp_dst=2/0xff",
	"ct_state=+trk-inv,ip,ct_nw_src=1.1.1.0/24,ct_nw_dst=2.2.2.2",
	"ct_state=+new,ct_nw_proto=6", "ct_state=+dnat+trk,ct_nw_proto=6", "ct_state=+snat,ct_nw_proto=6",
	"ct_state=+est-new,ct_nw_proto=6", "ct_state=+rpl,ct_nw_proto=1,ct_tp_src=1",
	"ct_state=+rpl,ct_nw_proto=132,ct_tp_dst=1",
	"ct_state=-trk,ct_zone=0,ct_mark=0,ct_label=0",
	"tun_src=1.2.3.4", "tun_dst=1.2.3.0/24", "tun_ipv6_src=::1", "tun_ipv6_dst=2001::/16",
	"tun_flags=+oam", "tun_flags=oam", "tun_flags=-oam", "tun_flags=1", "tun_flags=0/1", "tun_flags=0",
	"tun_gbp_id=5", "tun_gbp_id=5/0xff", "tun_gbp_id=0/0xff", "tun_gbp_flags=1", "tun_gbp_flags=0",
	"tun_erspan_ver=1", "tun_erspan_ver=1/0xf",
	"reg0=5", "reg3=5/0xff", "reg15=0xffffffff", "reg0=1/0", "reg0=*", "reg0=0", "reg7=010",
	"xreg0=0x100000002", "xreg7=1/0xff", "xreg3=0xffffffffffffffff", "xreg1=0x100000000/0xffffffff00000000",
	"xxreg0=5", "xxreg3=0x1234567890abcdef1234567890abcdef/0xffff0000000000000000000000000000",
	"metadata=0x5", "metadata=5/0xff", "metadata=0xffffffffffffffff", "metadata=0/0",
	"tcp,tp_dst=80,in_port=1,reg3=5/0xff,xreg0=0x100000002,metadata=0x5,pkt_mark=3,ct_state=+trk,tun_id=5," +
		"recirc_id=1,dp_hash=3,xreg7=1/0xff,ct_mark=1",
	"tcp tp_dst=80", "tcp, tp_dst=80", "tcp,,tp_dst=80", "tcp,tp_dst:80", "tcp,tp_dst(80)", " tcp",
	"tcp,tp_dst=0X50", "tcp,tp_dst=010", "tcp,tp_dst=00", "ip,nw_tos=010", "tcp,tp_dst=0x0050",
	"tcp,ip,ip", "tcp,udp", "ip,nw_proto=6,nw_proto=17", "tcp,dl_type=0x86dd", "ip,ipv6",
	"pkt_mark=0x7,ct_state=+trk,ct_zone=3,ct_mark=0x2,ct_label=0x1,tcp,tun_id=0x5,tun_src=1.1.1.1," +
		"tun_dst=2.2.2.2,in_port=3,dl_vlan=5,dl_vlan_pcp=0,dl_src=02:00:00:00:00:00," +
		"dl_dst=01:00:00:00:00:00,nw_src=2.2.2.2,nw_dst=1.1.1.1,nw_tos=8,nw_ecn=1,nw_ttl=3," +
		"nw_frag=first,tp_src=1,tp_dst=80,tcp_flags=+syn",
}

// ofctlPrint returns how ovs-ofctl prints match, or ok=false if it
// refused it.
func ofctlPrint(t *testing.T, bin, match string) (string, bool) {
	flow := "actions=drop"
	if strings.TrimSpace(match) != "" {
		flow = match + "," + flow
	}
	out, err := exec.Command(bin, "parse-flow", flow).CombinedOutput()
	if err != nil {
		t.Logf("ovs-ofctl parse-flow %q: %v: %s", flow, err, out)
		return "", false
	}
	for _, line := range strings.Split(string(out), "\n") {
		_, rest, ok := strings.Cut(line, " ADD ")
		if !ok {
			continue
		}
		if strings.Contains(rest, "decode error") {
			return "", false
		}
		return strings.TrimSpace(strings.TrimSuffix(rest, "actions=drop")), true
	}
	t.Logf("ovs-ofctl parse-flow %q printed no flow: %s", flow, out)
	return "", false
}

// TestPrintLikeOvsOfctl is the differential test: gvs must print each
// match exactly as the reference ovs-ofctl does.
func TestPrintLikeOvsOfctl(t *testing.T) {
	bin, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl not installed: the differential test needs it")
	}
	for _, c := range ofctlCases {
		m, err := ParseMatch(c)
		if err != nil {
			t.Errorf("ParseMatch(%q): %v (ovs-ofctl accepts it)", c, err)
			continue
		}
		want, ok := ofctlPrint(t, bin, c)
		if !ok {
			t.Errorf("ovs-ofctl refused %q, which is in the table of shared cases", c)
			continue
		}
		if got := m.String(); got != want {
			t.Errorf("ParseMatch(%q).String() = %q, ovs-ofctl prints %q", c, got, want)
		}
	}
}

// TestRandomMatchesPrintLikeOvsOfctl combines fields at random (protocols,
// fields with and without their prerequisites) and checks that whatever
// gvs accepts, ovs-ofctl accepts and prints the same way.
func TestRandomMatchesPrintLikeOvsOfctl(t *testing.T) {
	bin, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl not installed: the differential test needs it")
	}
	protos := []string{"ip", "ipv6", "tcp", "udp", "tcp6", "udp6", "icmp", "icmp6", "arp", "rarp",
		"sctp", "mpls", "dl_type=0x1234", ""}
	fieldsToTry := []string{"nw_src=10.0.0.0/8", "nw_dst=1.2.3.4", "tp_src=5", "tp_dst=0x100/0xff00",
		"tcp_flags=+syn", "nw_ttl=9", "nw_tos=4", "nw_ecn=2", "ip_frag=first", "ipv6_src=2001:db8::/32",
		"ipv6_label=7", "icmp_type=3", "icmp_code=4", "arp_op=2", "arp_sha=01:02:03:04:05:06",
		"arp_tpa=1.1.1.1", "dl_vlan=7", "dl_vlan_pcp=2", "vlan_tci=0x1000/0x1000", "dl_src=00:00:00:00:00:01",
		"dl_dst=01:00:00:00:00:00/01:00:00:00:00:00", "in_port=5", "pkt_mark=3", "ct_state=+trk-inv",
		"ct_zone=4", "ct_mark=1/1", "ct_label=0x5", "tun_id=0x9", "tun_src=3.3.3.3", "mpls_label=4",
		"mpls_ttl=3", "nw_proto=99", "ct_nw_src=2.2.2.2", "ct_nw_proto=6", "ct_tp_dst=7", "recirc_id=3",
		"dp_hash=1/1", "icmp_type=135", "nd_target=::1", "ct_state=+est+trk",
		"reg5=7", "xreg2=0x300000004/0xff000000ff", "metadata=0x10/0xf0"}
	r := rand.New(rand.NewPCG(11, 12))
	compared := 0
	for range 600 {
		parts := []string{protos[r.IntN(len(protos))]}
		for range 1 + r.IntN(3) {
			parts = append(parts, fieldsToTry[r.IntN(len(fieldsToTry))])
		}
		r.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
		in := strings.Trim(strings.ReplaceAll(strings.Join(parts, ","), ",,", ","), ",")
		m, err := ParseMatch(in)
		if err != nil {
			continue
		}
		want, ok := ofctlPrint(t, bin, in)
		if !ok {
			t.Errorf("gvs accepts %q (as %q), ovs-ofctl refuses it", in, m)
			continue
		}
		compared++
		if got := m.String(); got != want {
			t.Errorf("ParseMatch(%q).String() = %q, ovs-ofctl prints %q", in, got, want)
		}
	}
	if compared < 100 {
		t.Errorf("only %d random matches were accepted and compared; the generator needs fixing", compared)
	}
}
