package flow

import (
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
)

// ofctlActionCases are flows ovs-ofctl and gvs both accept, with the
// OpenFlow version to compare them in ("" for ovs-ofctl's default, 1.0
// with Nicira extensions, where gvs prints OpenFlow10Actions; "15" for
// OpenFlow 1.5, where OVS prints the actions as parsed).
var ofctlActionCases = []struct{ of, flow string }{
	{"", "actions=output:2,output:NXM_NX_REG0[0..15],output:reg1,output:NXM_NX_REG2[3..18]"},
	{"", "actions=NORMAL,FLOOD,ALL,IN_PORT,LOCAL,CONTROLLER,normal,output:65534,output:LOCAL,output:controller,5"},
	{"", "actions=controller:100,controller(max_len=100,reason=no_match),controller(reason=invalid_ttl,id=3)"},
	{"", "actions=controller(pause),controller(reason=action,max_len=65535),controller()"},
	{"", "actions=resubmit:3,resubmit(,7),resubmit(2,7),resubmit(IN_PORT,5),resubmit(LOCAL,)"},
	{"", "actions=mod_vlan_vid:100,mod_vlan_pcp:3,strip_vlan,mod_vlan_vid:0,mod_vlan_vid:4095"},
	{"", "actions=set_field:1->reg0,set_field:0x10/0xff->reg1,set_field:5->metadata,set_field:0xff00/0xff00->reg3"},
	{"", "actions=set_field:0x5/0xf0f->reg4,set_field:1->xreg1,set_field:0x100000000->xreg2,set_field:7->xxreg0"},
	{"", "actions=set_field:0x1234567890abcdef1234->xxreg3,set_field:3->pkt_mark,set_field:5->tun_id"},
	{"", "ipv6,actions=set_field:fe80::1->ipv6_src,set_field:::1/64->ipv6_dst,set_field:0x12345->ipv6_label"},
	{"", "actions=load:0x5->NXM_NX_REG0[0..15],load:1->NXM_OF_VLAN_TCI[],load:0x1->reg2[3],load:0->OXM_OF_METADATA[]"},
	{"", "actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],move:NXM_NX_REG0[0..7]->NXM_NX_REG1[8..15],move:reg3->reg4"},
	{"", "actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG5[],move:OXM_OF_METADATA[]->NXM_NX_XXREG1[64..127]"},
	{"", "actions=mod_dl_src:00:00:00:00:00:01,mod_dl_dst:02:00:00:00:00:02,set_field:00:11:22:33:44:55->eth_src"},
	{"", "ip,actions=mod_nw_src:1.2.3.4,mod_nw_dst:5.6.7.8,mod_nw_tos:32,mod_nw_ecn:2,mod_nw_ttl:9,dec_ttl"},
	{"", "ip,actions=set_field:1.1.1.1->ip_src,set_field:2.2.2.2->nw_dst,set_field:10.0.0.0/8->ip_dst"},
	{"", "ip,actions=set_field:8->nw_tos,set_field:3->nw_ecn,set_field:7->nw_ttl,dec_ttl(1,2),dec_ttl()"},
	{"", "tcp,actions=mod_tp_src:80,mod_tp_dst:8080,set_field:1->tcp_src,set_field:2->tp_dst"},
	{"", "udp,actions=set_field:53->udp_dst,set_field:53->udp_src"},
	{"", "actions=set_tunnel:0x5,set_tunnel64:0x123456789,set_tunnel:0x123456789,set_tunnel:0"},
	{"", "actions=note:de.ad.be.ef,note:00,note:,note:0102030405060708090a"},
	{"", "actions=clone(mod_dl_dst:00:00:00:00:00:09,output:2),output:3,clone(clone(drop)),clone()"},
	{"", "actions=learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]),resubmit(,10)"},
	{"", "ip,actions=learn(table=20,hard_timeout=300,idle_timeout=10,priority=5,cookie=0x99,fin_idle_timeout=3,fin_hard_timeout=4,send_flow_rem,delete_learned,dl_type=0x800,NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],nw_proto=6,output:NXM_OF_IN_PORT[])"},
	{"", "actions=learn(limit=5,result_dst=reg0[0],NXM_OF_VLAN_TCI[0..11]=0x5,load:0x5->reg0[0..3],in_port=99,eth_src=00:00:00:00:00:01)"},
	{"", "ip,actions=ct(commit,zone=5,exec(set_field:1->ct_mark,set_field:0x3/0xff->ct_label)),ct(commit,force,table=3,zone=NXM_NX_REG0[0..15])"},
	{"", "ip,actions=ct(commit,nat(src=10.0.0.1-10.0.0.9:1000-2000,random)),ct(commit,nat(dst=10.1.1.1:80,hash)),ct(nat),ct"},
	{"", "ip,actions=ct(commit,nat(src=10.0.0.1,persistent)),ct(commit,nat(dst=10.0.0.1:1-1)),ct(commit,nat(src=1.1.1.1-1.1.1.1))"},
	{"", "ipv6,actions=ct(commit,nat(src=[fe80::1]-[fe80::9]:5,persistent)),ct(table=1,zone=0)"},
	{"", "tcp,actions=ct(commit,alg=ftp),ct_clear,ct(commit,exec(load:0x1->NXM_NX_CT_MARK[],move:NXM_NX_REG0[]->NXM_NX_CT_MARK[]))"},
	{"", "udp,actions=ct(alg=tftp,commit,table=2,zone=7)"},
	{"", "actions=move:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15],move:NXM_NX_CT_STATE[]->NXM_NX_REG0[]"},
	{"", "ip,actions=move:NXM_NX_IP_FRAG[]->NXM_NX_REG0[0..1],move:OXM_OF_IP_DSCP[]->NXM_NX_REG0[0..5],move:ip_dscp->reg1[0..5]"},
	{"", "ip,actions=move:NXM_NX_IP_ECN[]->NXM_NX_REG0[0..1],move:reg0[0..1]->nw_ecn,move:vlan_tci->reg0[0..15]"},
	{"", "ipv6,actions=move:NXM_NX_IPV6_LABEL[]->NXM_NX_REG0[0..19]"},
	{"", "mpls,actions=move:mpls_label->reg0[0..19],move:NXM_NX_TUN_FLAGS[]->reg0[0],move:NXM_NX_CT_ZONE[]->reg0[0..15]"},
	{"", "actions=drop"},
	{"", "actions="},
	{"", "actions=goto_table:1"},
	{"", "actions=conjunction(1,1/2),note:aa,conjunction( 4294967295 , 64 / 64 ),conjunction(7,2/3)"},
	{"", "actions=note:aa.bb,conjunction(0,2/2)"},
	{"15", "actions=conjunction(5,1/2),conjunction(6,2/2)"},
	{"", "actions=pop_vlan,output:3"},
	{"", "actions=set_field:0x1/0x1->tun_flags,set_field:1.1.1.1->tun_dst,set_field:1.1.1.0/24->tun_src"},
	{"15", "actions=push_vlan:0x88a8,set_field:4196->vlan_vid,output:2,pop_vlan,push_vlan:0x8100"},
	{"15", "actions=set_field:1->reg0,set_field:0x10/0xff->reg1,set_field:00:11:22:33:44:55->eth_dst,goto_table:5"},
	{"15", "ip,actions=set_field:10->ip_dscp,set_field:8->nw_tos,set_field:5->pkt_mark,set_field:1.1.1.1->tun_src,mod_nw_ttl:9"},
	{"15", "tcp,actions=set_field:1.2.3.0/24->ip_src,set_field:0x5/0xff->tun_id,set_field:80->tcp_dst,set_field:80/0xff->tp_src"},
	{"15", "actions=set_field:3->in_port,set_field:0x5/0xff->reg3,set_field:5->xreg0,set_field:0x1/0x3->xxreg1"},
	{"15", "ip,actions=ct(commit,exec(set_field:1->ct_mark,set_field:0x1/0x1->ct_label)),ct_clear"},
	{"", "actions=group:1,output:2,group:4294967040,clone(group:7)"},
	{"15", "actions=group:5,clone(group:0),output:3"},
}

// ofctlActions returns the actions ovs-ofctl prints for flow, or ok=false
// if it refused it.
func ofctlActions(t *testing.T, bin, of, flow string) (string, bool) {
	args := []string{"parse-flow", flow}
	if of != "" {
		args = append([]string{"-O", "OpenFlow" + of}, args...)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Logf("ovs-ofctl %q: %v: %s", args, err, out)
		return "", false
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	_, acts, ok := strings.Cut(last, " actions=")
	if !ok || strings.Contains(last, "decode error") {
		t.Logf("ovs-ofctl %q printed no actions: %s", args, out)
		return "", false
	}
	return acts, true
}

// TestActionsPrintLikeOvsOfctl is the differential test of the action
// syntax: what gvs parses and prints, OVS 3.1 parses and prints the same.
func TestActionsPrintLikeOvsOfctl(t *testing.T) {
	bin, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl not installed: the differential test needs it")
	}
	for _, c := range ofctlActionCases {
		f, err := ParseFlow(c.flow, ParseOptions{})
		if err != nil {
			t.Errorf("ParseFlow(%q): %v (ovs-ofctl accepts it)", c.flow, err)
			continue
		}
		want, ok := ofctlActions(t, bin, c.of, c.flow)
		if !ok {
			t.Errorf("ovs-ofctl refused %q, which is in the table of shared cases", c.flow)
			continue
		}
		acts := f.Actions
		if c.of == "" {
			acts = OpenFlow10Actions(acts)
		}
		if got := FormatActions(acts, FormatOptions{}); got != want {
			t.Errorf("OpenFlow%s %q:\n gvs prints %q\n OVS prints %q", c.of, c.flow, got, want)
		}
	}
}

// TestActionErrors: bad actions are refused with an error that names the
// offending word.
func TestActionErrors(t *testing.T) {
	cases := []struct{ in, word, msg string }{
		{"actions=frobnicate", "frobnicate", "unknown action"},
		{"actions=output:2,bogus:3", "bogus", "unknown action"},
		{"actions=group:x", "group", "group number"},
		{"actions=group:4294967041", "group", "group number"},
		{"actions=drop,output:2", "drop", "only action"},
		{"actions=output:99999999", "output", "out of range"},
		{"actions=output:ANY", "output", "ANY"},
		{"actions=resubmit(1,2,3)", "resubmit", "resubmit(PORT,TABLE)"},
		{"actions=resubmit(,255)", "resubmit", "0 to 254"},
		{"actions=goto_table:1,output:2", "goto_table", "last action"},
		{"actions=mod_vlan_vid:4096", "mod_vlan_vid", "0 to 4095"},
		{"actions=mod_vlan_pcp:8", "mod_vlan_pcp", "0 to 7"},
		{"actions=push_vlan:0x800", "push_vlan", "0x8100 or 0x88a8"},
		{"actions=set_field:1->nosuch", "set_field", "unknown field nosuch"},
		{"actions=set_field:1->eth_type", "set_field", "read-only"},
		{"actions=set_field:1->ct_mark", "set_field", "inside ct"},
		{"actions=set_field:1->tun_metadata0", "set_field", "not supported"},
		{"actions=set_field:1.2.3->ip_src", "set_field", "invalid IPv4"},
		{"actions=set_field:0x100000000->reg0", "set_field", "32 bits"},
		{"actions=set_field:1", "set_field", "->FIELD"},
		{"actions=load:0x10000->NXM_NX_REG0[0..15]", "load", "does not fit in 16 bits"},
		{"actions=load:1->NXM_NX_REG0[0..32]", "load", "beyond the field"},
		{"actions=load:1->NXM_NX_REG0[5..3]", "load", "starts after"},
		{"actions=load:1->NXM_NX_REG0[x]", "load", "bad bit range"},
		{"actions=load:1->NXM_NX_REG0[1", "load", "missing ']'"},
		{"actions=load:1->NXM_NX_NOPE[]", "load", "unknown field"},
		{"actions=move:reg0[0..7]->reg1[0..3]", "move", "8 bits wide but destination 4"},
		{"actions=move:reg0->ct_state", "move", "read-only"},
		{"actions=mod_nw_tos:3", "mod_nw_tos", "multiple of 4"},
		{"actions=mod_nw_ecn:4", "mod_nw_ecn", "0 to 3"},
		{"actions=mod_dl_src:1:2:3", "mod_dl_src", "invalid Ethernet"},
		{"actions=note:abc", "note", "pairs of hex digits"},
		{"actions=nat(src=1.1.1.1)", "nat", "only valid inside ct"},
		{"actions=nat", "nat", "only valid inside ct"},
		{"actions=ct(force)", "ct", "force requires commit"},
		{"actions=ct(exec(set_field:1->ct_mark))", "ct", "require commit"},
		{"actions=ct(commit,exec(output:1))", "ct", "may only set ct_mark"},
		{"actions=ct(commit,zone=NXM_NX_REG0[0..7])", "ct", "16 bits"},
		{"actions=ct(commit,alg=http)", "ct", "unknown alg"},
		{"actions=ct(commit,nat(src=1.1.1.1,hash,random))", "ct", "exclude each other"},
		{"actions=ct(commit,nat(src=1.1.1.9-1.1.1.1))", "ct", "bad address range"},
		{"actions=ct(commit,nat(src=fe80::1))", "ct", "IPv6 goes in brackets"},
		{"actions=ct(commit,nat(src=1.1.1.1:0))", "ct", "bad port"},
		{"actions=ct(commit,nat(bogus))", "ct", "unexpected"},
		{"actions=ct(bogus)", "ct", "unknown ct argument"},
		{"actions=ct(nat(src))", "ct", "require commit"},
		{"actions=resubmit:IN_PORT", "resubmit", "in_port or a table"},
		{"actions=ct(commit", "ct", "missing ')'"},
		{"actions=clone(output:1)x", "clone", "missing ')'"},
		{"actions=learn(NXM_OF_ETH_DST[]=NXM_NX_REG0[])", "learn", "32 bits wide but destination 48"},
		{"actions=learn(bogus=1)", "learn", "unknown field bogus"},
		{"actions=learn(result_dst=reg0[0..1])", "learn", "single bit"},
		{"actions=controller(reason=whatever)", "controller", "unknown reason"},
		{"actions=controller(bogus)", "controller", "unknown controller argument"},
		{"actions=controller:70000", "controller", "16 bits"},
		{"actions=dec_ttl(x)", "dec_ttl", "controller id"},
		{"actions=clone(clone(clone(clone(clone(clone(clone(clone(clone(drop)))))))))", "actions", "nested"},
		{"tcp,tp_dst=80", "actions", "missing"},
		{"table=255,actions=drop", "table", "0 to 254"},
		{"priority=65536,actions=drop", "priority", "16 bits"},
		{"cookie=0x1/0x2/0x3,actions=drop", "cookie", "more than one"},
		{"idle_timeout=,actions=drop", "idle_timeout", "missing value"},
		{"send_flow_rem=1,actions=drop", "send_flow_rem", "no value"},
		{"out_port=1,actions=drop", "out_port", "not in a flow"},
		{"tp_dst=80,actions=drop", "tp_dst", "prerequisites"},
		{"actions=conjunction(1,1/1)", "conjunction", "conjunction must have at least 2 clauses"},
		{"actions=conjunction(1,1/65)", "conjunction", "conjunction must have at most 64 clauses"},
		{"actions=conjunction(1,0/2)", "conjunction", "clause index must be positive"},
		{"actions=conjunction(1,3/2)", "conjunction", "clause index must be less than or equal to number of clauses"},
		{"actions=conjunction(1,1/2),output:1", "conjunction", `"conjunction" actions may be used along with "note" but not any other kind of action (such as the "output" action used here)`},
		{"actions=output:1,conjunction(1,1/2)", "conjunction", `(such as the "output" action used here)`},
		{"actions=conjunction(1,1)", "conjunction", `"conjunction" syntax is "conjunction(id,i/n)"`},
		{"actions=conjunction(4294967296,1/2)", "conjunction", "syntax"},
		{"actions=clone(conjunction(1,1/2))", "conjunction", "not nested"},
		{"conj_id=5/0xff,actions=drop", "conj_id", "mask"},
		{"actions=set_field:1->tcp_dst", "set_field", "tcp_dst applies only to tcp"},
		{"ip,actions=load:1->NXM_OF_TCP_DST[]", "load", "prerequisites not met"},
		{"actions=move:NXM_OF_IP_SRC[]->reg0", "move", "ip_src applies only to IPv4 and ARP"},
		{"actions=output:NXM_OF_TCP_DST[]", "output", "prerequisites not met"},
		{"actions=learn(NXM_OF_IP_SRC[])", "learn", "prerequisites not met"},
		{"actions=ct(commit)", "ct", "IP packets"},
		{"actions=clone(set_field:1->ip_dscp)", "set_field", "IP packets"},
		{"arp,actions=ct(table=1)", "ct", "IP packets"},
		{"nosuch=1,actions=drop", "nosuch", "unknown field"},
		{"in_port=nosuchport,actions=drop", "in_port", "unknown port"},
		{"tcp,tp_dst=80/0xfff0/1,actions=drop", "tp_dst", "more than one"},
	}
	for _, c := range cases {
		_, err := ParseFlow(c.in, ParseOptions{PortByName: goldenByName})
		var fe *Error
		switch {
		case err == nil:
			t.Errorf("ParseFlow(%q) succeeded, want an error about %s", c.in, c.word)
		case !errors.As(err, &fe):
			t.Errorf("ParseFlow(%q) error %q is not a *flow.Error", c.in, err)
		case fe.Field != c.word || !strings.Contains(err.Error(), c.msg):
			t.Errorf("ParseFlow(%q) error %q (word %q), want word %q and %q", c.in, err, fe.Field, c.word, c.msg)
		}
	}
	if _, err := ParseActions(strings.Repeat("x", MaxActionsText+1), nil); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Errorf("oversized action text: error %v, want too long", err)
	}
}

// TestPortNamesInActions: names resolve through the caller's resolver and
// print back quoted as ovs-ofctl --names prints them.
func TestPortNamesInActions(t *testing.T) {
	f, err := ParseFlow(`in_port="p_6",actions=veth_r0,output:"p-7",resubmit(P9,1),output:9x`, ParseOptions{PortByName: goldenByName})
	if err != nil {
		t.Fatal(err)
	}
	want := []Action{Output{2}, Output{7}, Resubmit{InPort: 9, Table: 1}, Output{10}}
	if !reflect.DeepEqual(f.Actions, want) {
		t.Errorf("actions = %#v, want %#v", f.Actions, want)
	}
	// Names other than a letter and letters or digits are quoted (P9 is
	// not), as testdata/ovs31/names.names shows OVS 3.1 doing.
	want2 := `in_port="p_6" actions=output:"veth_r0",output:"p-7",resubmit(P9,1),output:"9x"`
	if got := f.Format(FormatOptions{PortName: goldenName}); got != want2 {
		t.Errorf("Format = %s\nwant     %s", got, want2)
	}
	if _, err := ParseActions("veth_r0", nil); err == nil {
		t.Error("a port name parsed without a resolver")
	}
}

// TestParseActionsNestingBounded: ct(exec(...)) nested in itself counts
// towards maxNesting as clone(...) does. Before, it had no bound, and
// each level's error quoted the whole text below it: 1000 levels (17 KB
// of text) took seconds, 4000 (within MaxActionsText) minutes.
func TestParseActionsNestingBounded(t *testing.T) {
	for _, open := range []string{"ct(commit,exec(", "clone(", "ct(commit,exec(clone("} {
		n := 1000
		text := strings.Repeat(open, n) + "drop" + strings.Repeat(")", n*strings.Count(open, "("))
		start := time.Now()
		_, err := ParseActions(text, nil)
		if took := time.Since(start); took > 100*time.Millisecond {
			t.Errorf("%d nested %q: %v to parse", n, open, took)
		}
		if err == nil || !strings.Contains(err.Error(), "nested more than") {
			t.Errorf("%d nested %q: error %.200v, want nested more than %d deep", n, open, err, maxNesting)
		}
	}
	// Within the bound, ct exec still parses.
	if _, err := ParseActions("ct(commit,exec(set_field:1->ct_mark))", nil); err != nil {
		t.Error(err)
	}
}

// A ct action given zone= twice takes the last one, whether each is a
// number or a subfield: before, a number and a subfield were both kept,
// so the action printed (and ran) differently from what it parsed to.
func TestCTLastZoneWins(t *testing.T) {
	for _, tc := range []struct {
		in   string
		zone uint16
		src  string
	}{
		{"ct(zone=1,zone=NXM_NX_REG0[0..15])", 0, "reg0"},
		{"ct(zone=NXM_NX_REG0[0..15],zone=7)", 7, ""},
		{"ct(zone=3,zone=9)", 9, ""},
	} {
		acts, err := ParseActions(tc.in, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		ct := acts[0].(CT)
		if ct.Zone != tc.zone || ct.ZoneSrc.Field != tc.src {
			t.Errorf("%s: zone %d from %q, want %d from %q", tc.in, ct.Zone, ct.ZoneSrc.Field, tc.zone, tc.src)
		}
	}
}
