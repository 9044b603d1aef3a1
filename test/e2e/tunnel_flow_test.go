package e2e

import (
	"strings"
	"testing"
	"time"
)

// Flow-based tunnels (docs/GUIDE.md section 6, "Tunnels whose remote and
// key come from the flow"): options:remote_ip=flow and key=flow, the tun_*
// matches and the set_tunnel/set_field actions that feed them, as
// ovs-vswitchd.conf.db(5), ovs-fields(7) and ovs-actions(7) describe
// them. Everything made here starts with "gvtf".

// gvtfFlows are tunnel matches and actions in ovs-ofctl's syntax; port 1
// is a plain port and port 2 the flow-based tunnel.
var gvtfFlows = []string{
	"priority=90,tun_id=0x42,actions=output:1",
	"priority=89,tun_id=0x40/0xf0,tun_src=10.0.0.2,actions=drop",
	"priority=88,tun_dst=10.0.0.1,actions=set_tunnel:0x43,output:1",
	"priority=87,tun_ipv6_src=2001:db8::2,actions=set_field:2001:db8::9->tun_ipv6_dst,output:2",
	"priority=86,in_port=1,actions=set_field:172.21.12.163->tun_dst,set_tunnel:0x42,output:2",
	"priority=85,ip,actions=set_tunnel64:0x1122334455,set_field:0x5->tun_id,set_field:10.1.1.1->tun_src,output:2",
	"priority=84,arp,actions=load:0x5->NXM_NX_TUN_ID[],move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[],load:0xac150ca3->NXM_NX_TUN_IPV4_DST[],output:2",
	"priority=83,tun_id=0x42,tun_src=172.21.12.8,tun_dst=172.21.12.163,actions=output:1",
	"priority=82,tun_ipv6_dst=2001:db8::/32,actions=output:1",
	"priority=81,tun_id=0x1/0x1,actions=set_field:0x42/0xff->tun_id,output:2",
	"priority=80,tun_flags=+oam,actions=output:1",
	"priority=77,in_port=1,actions=load:0x20010db8000000000000000000000009->NXM_NX_TUN_IPV6_DST[],move:NXM_NX_TUN_IPV6_SRC[0..63]->NXM_NX_TUN_IPV6_DST[0..63],output:2",
	"priority=76,tun_ipv6_src=2001:db8::1,actions=set_field:1->tun_flags,output:2",
	"priority=75,actions=move:NXM_NX_TUN_IPV6_DST[64..95]->NXM_NX_REG3[],load:0x1->NXM_NX_TUN_FLAGS[],output:2",
	"priority=74,tun_erspan_ver=1,tun_erspan_idx=0x1234,actions=output:1",
	"priority=73,tun_erspan_ver=2,tun_erspan_dir=1,tun_erspan_hwid=0x5,actions=set_field:2->tun_erspan_ver,set_field:0x3f->tun_erspan_hwid,set_field:1->tun_erspan_dir,output:2",
	"priority=72,tun_erspan_idx=0x100/0xf00,actions=set_field:0xabcde->tun_erspan_idx,output:2",
}

// The tunnel matches and actions go through the real ovs-ofctl into
// gvsd and back out of dump-flows exactly as the real OVS 3.1 prints
// them, in OpenFlow 1.0 (Nicira extensions) and 1.3 (OXM); the ports
// take remote_ip=flow, key=flow, and tnl/ports/show says so.
func TestTunnelFlowOfctlRoundTrip(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd")
	lab := newNetLab(t)
	const ns, br = "gvtf-rt", "gvtfbr"
	lab.netns(ns)
	lab.vethIn(ns, "gvtfp1", "gvtfp1x", ns)
	configure := func(vsctl func(...string) string) {
		vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
		vsctl("add-port", br, "gvtfp1", "--", "set", "interface", "gvtfp1", "ofport_request=1")
		vsctl("add-port", br, "gvtft0", "--", "set", "interface", "gvtft0", "type=gre",
			"options:remote_ip=flow", "options:key=flow", "ofport_request=2")
	}
	dump := func(run func(...string) (string, string, error)) []string {
		var out []string
		for _, proto := range [][]string{{"-O", "OpenFlow10"}, {"-O", "OpenFlow13"}} {
			for _, args := range [][]string{{"del-flows", br}, {"add-flows", br, "-"}} {
				cmd := append(append([]string{"ovs-ofctl"}, proto...), args...)
				if args[0] == "add-flows" {
					cmd = []string{"sh", "-c", strings.Join(cmd, " ") + " <<'EOF'\n" + strings.Join(gvtfFlows, "\n") + "\nEOF\n"}
				}
				if o, e, err := run(cmd...); err != nil {
					t.Fatalf("%s: %v\n%s%s", strings.Join(cmd, " "), err, o, e)
				}
			}
			o, e, err := run(append(append([]string{"ovs-ofctl"}, proto...), "--no-stats", "dump-flows", br)...)
			if err != nil {
				t.Fatalf("dump-flows %v: %v\n%s", proto, err, e)
			}
			out = append(out, strings.Join(gvofCanonFlows(o), "\n"))
		}
		return out
	}
	ref := func() []string {
		o := gvsyStartOVSNetns(t, ns)
		defer o.Stop()
		configure(o.MustVsctl)
		return dump(o.run)
	}()
	g := StartGvsdNetns(t, ns)
	configure(g.MustVsctl)
	if e := strings.TrimSpace(g.MustVsctl("get", "interface", "gvtft0", "error")); e != "[]" {
		t.Fatalf("gvtft0: Interface.error = %s", e)
	}
	got := dump(func(args ...string) (string, string, error) { return g.Run(args[0], args[1:]...) })
	if !strings.Contains(ref[0], "set_tunnel:0x43") || !strings.Contains(ref[1], "tun_id=0x42") {
		t.Fatalf("the reference OVS did not take the flows:\n%s", strings.Join(ref, "\n"))
	}
	for i, proto := range []string{"OpenFlow10", "OpenFlow13"} {
		if ref[i] != got[i] {
			t.Errorf("%s: dump-flows differ\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", proto, ref[i], got[i])
		}
	}
	if ports := appctl(t, g, "tnl/ports/show"); !strings.Contains(ports, "gvtft0: type=gre remote_ip=flow in_key=flow out_key=flow") {
		t.Errorf("tnl/ports/show does not show the flow options:\n%s", ports)
	}
	// ofproto/trace takes the tunnel fields in the flow it traces.
	tr := appctl(t, g, "ofproto/trace", br, "in_port=2,tun_id=0x42,tun_src=172.21.12.8,tun_dst=172.21.12.163,udp")
	for _, w := range []string{"tun_id=0x42", "priority 90", "output:1"} {
		if !strings.Contains(tr, w) {
			t.Errorf("ofproto/trace lacks %q:\n%s", w, tr)
		}
	}
}

// gvtfHosts is two hosts, each a namespace with its own gvsd, joined by
// a veth underlay (host routing): host1's bridge has vm1 behind p1,
// host2's bridge has the internal port ml, moved into rmon. The tunnel
// ports come per test.
type gvtfHosts struct {
	lab    *netLab
	g1, g2 *Gvsd
}

const (
	gvtfH1, gvtfH2, gvtfVM1, gvtfRmon = "gvtf-h1", "gvtf-h2", "gvtf-vm1", "gvtf-rmon"
	gvtfRmonAddr                      = "10.12.4.9"
)

func gvtfSetup(t *testing.T) *gvtfHosts {
	t.Helper()
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ping")
	for _, ns := range []string{gvtfH1, gvtfH2, gvtfVM1, gvtfRmon} {
		lab.netns(ns)
	}
	lab.vethIn(gvtfH1, "ul1", "ul2", gvtfH2, gvtnUnder2+"/24")
	lab.configure(gvtfH1, "ul1", gvtnUnder1+"/24")
	lab.vethIn(gvtfH1, "p1", "vm1eth", gvtfVM1, gvtnVMAddr1+"/24")
	h := &gvtfHosts{lab: lab, g1: StartGvsdNetns(t, gvtfH1), g2: StartGvsdNetns(t, gvtfH2)}
	h.g1.MustVsctl("add-br", "br1")
	h.g1.MustVsctl("add-port", "br1", "p1")
	h.g2.MustVsctl("add-br", "br2")
	h.g2.MustVsctl("add-port", "br2", "ml", "--", "set", "interface", "ml", "type=internal")
	gvtnWaitLinkIn(t, lab, gvtfH2, "ml")
	lab.must("ip", "-n", gvtfH2, "link", "set", "ml", "netns", gvtfRmon)
	lab.configure(gvtfRmon, "ml", gvtfRmonAddr+"/24")
	return h
}

// flows replaces br's flows on g with flows (ovs-ofctl syntax, port
// names allowed).
func gvtfFlowsOn(t *testing.T, g *Gvsd, br string, flows ...string) {
	t.Helper()
	gvofMust(t, g, nil, "del-flows", br)
	for _, f := range flows {
		gvofMust(t, g, nil, "add-flow", br, f)
	}
}

// gvtfPackets returns n_packets of br's flow whose dump line contains
// match; -1 if there is none.
func gvtfPackets(t *testing.T, g *Gvsd, br, match string) int {
	t.Helper()
	for _, l := range nonEmptyLines(gvofMust(t, g, nil, "--names", "dump-flows", br)) {
		if !strings.Contains(l, match+" ") && !strings.Contains(l, match+",") {
			continue
		}
		i := strings.Index(l, "n_packets=")
		if i < 0 {
			continue
		}
		n := 0
		for _, c := range l[i+len("n_packets="):] {
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	return -1
}

// The brief's scenario, over GRE and VXLAN: host1's tunnel port has
// remote_ip=flow and key=flow, and its flow sets the remote and key
// (set_field:<host2>->tun_dst,set_tunnel:0x42); host2's port takes any
// key (key=flow) and its flows match tun_id=0x42, beside one for
// tun_id=0x43 that must see nothing. vm1 pings rmon across. Then a key
// host2 has no flow for stops the ping, and a flow that sets no tun_dst
// has its frames dropped and counted (tunnel_flow_no_remote).
func TestTunnelFlowBasedPing(t *testing.T) {
	h := gvtfSetup(t)
	for _, typ := range []string{"gre", "vxlan"} {
		t.Run(typ, func(t *testing.T) {
			h.g1.MustVsctl("add-port", "br1", "tun0", "--", "set", "interface", "tun0", "type="+typ,
				"options:remote_ip=flow", "options:key=flow")
			h.g2.MustVsctl("add-port", "br2", "tun0", "--", "set", "interface", "tun0", "type="+typ,
				"options:remote_ip="+gvtnUnder1, "options:key=flow")
			defer func() {
				h.g1.MustVsctl("del-port", "br1", "tun0")
				h.g2.MustVsctl("del-port", "br2", "tun0")
				_, _ = h.lab.exec(gvtfVM1, "ip", "neigh", "flush", "all")
				_, _ = h.lab.exec(gvtfRmon, "ip", "neigh", "flush", "all")
			}()
			for _, c := range []struct {
				g    *Gvsd
				port string
			}{{h.g1, "tun0"}, {h.g2, "tun0"}} {
				if e := strings.TrimSpace(c.g.MustVsctl("get", "interface", c.port, "error")); e != "[]" {
					t.Fatalf("%s: Interface.error = %s", c.port, e)
				}
			}
			gvtfFlowsOn(t, h.g1, "br1",
				"in_port=p1,actions=set_field:"+gvtnUnder2+"->tun_dst,set_tunnel:0x42,output:tun0",
				"in_port=tun0,tun_id=0x42,actions=output:p1")
			gvtfFlowsOn(t, h.g2, "br2",
				"priority=10,in_port=tun0,tun_id=0x42,actions=output:ml",
				"priority=10,in_port=tun0,tun_id=0x43,actions=output:ml",
				"in_port=ml,actions=set_tunnel:0x42,output:tun0")
			if !h.lab.pingEventually(gvtfVM1, gvtfRmonAddr, 10*time.Second) {
				t.Fatalf("vm1 cannot ping rmon over the flow-based %s tunnel\nhost1 flows:\n%s\nhost2 flows:\n%s\nhost1 coverage:\n%s\nhost2 coverage:\n%s",
					typ, gvofMust(t, h.g1, nil, "dump-flows", "br1"), gvofMust(t, h.g2, nil, "dump-flows", "br2"),
					gvtnCoverageLines(t, h.g1), gvtnCoverageLines(t, h.g2))
			}
			if n := gvtfPackets(t, h.g2, "br2", "tun_id=0x42"); n <= 0 {
				t.Errorf("host2's tun_id=0x42 flow counted %d packets", n)
			}
			if n := gvtfPackets(t, h.g2, "br2", "tun_id=0x43"); n != 0 {
				t.Errorf("host2's tun_id=0x43 flow counted %d packets, want 0", n)
			}
			if n := gvtfPackets(t, h.g1, "br1", "tun_id=0x42"); n <= 0 {
				t.Errorf("host1's tun_id=0x42 flow counted %d packets (the replies)", n)
			}

			// A key host2 has no flow for: nothing gets through.
			gvofMust(t, h.g1, nil, "mod-flows", "br1", "in_port=p1,actions=set_field:"+gvtnUnder2+"->tun_dst,set_tunnel:0x44,output:tun0")
			h.lab.pingFails(gvtfVM1, gvtfRmonAddr)

			// No tun_dst for a remote_ip=flow port: dropped and counted.
			before := gvtnCoverage(t, h.g1, "tunnel_flow_no_remote")
			gvofMust(t, h.g1, nil, "mod-flows", "br1", "in_port=p1,actions=set_tunnel:0x42,output:tun0")
			h.lab.pingFails(gvtfVM1, gvtfRmonAddr)
			if after := gvtnCoverage(t, h.g1, "tunnel_flow_no_remote"); after <= before {
				t.Errorf("tunnel_flow_no_remote went from %d to %d", before, after)
			}
		})
	}
}

// The tunnel metadata beyond key and endpoints, between two gvsd hosts:
// host1 sends with tos=40 (and a GRE checksum, or ERSPAN type III with a
// direction and hardware id); host2's flow matches the ERSPAN fields
// (ovs-fields(7)) and its datapath flow shows the metadata as OVS 3.1
// dumps it, tunnel(tun_id=..,src=..,dst=..,tos=0x28,flags(-oam-df+csum+key))
// (oam: a flow on tun_flags was looked at).
// vm1 pings rmon across; an ERSPAN match on another hardware id sees
// nothing.
func TestTunnelFlowMetaPing(t *testing.T) {
	h := gvtfSetup(t)
	for _, c := range []struct {
		typ        string
		opts1      []string // host1's port, besides remote_ip=flow key=flow
		match      string   // host2's receive flow
		tunnel     string   // host2's datapath flow, tunnel part
		notMatched string   // a host2 flow that must count nothing
		set1       string   // host1's actions before the output, besides tun_dst and tun_id
	}{
		{"gre", []string{"options:tos=40", "options:csum=true"}, "tun_id=0x42,tun_flags=-oam",
			"tunnel(tun_id=0x42,src=" + gvtnUnder1 + ",dst=" + gvtnUnder2 + ",tos=0x28,flags(-oam-df+csum+key))", "tun_flags=+oam", ""},
		{"vxlan", []string{"options:tos=40"}, "tun_id=0x42",
			"tunnel(tun_id=0x42,src=" + gvtnUnder1 + ",dst=" + gvtnUnder2 + ",tos=0x28,flags(-oam-df-csum+key))", "tun_flags=+oam", ""},
		{"erspan", []string{"options:erspan_ver=2", "options:erspan_dir=1", "options:erspan_hwid=0x4"},
			"tun_erspan_ver=2,tun_erspan_dir=1,tun_erspan_hwid=0x4",
			"tunnel(tun_id=0x42,src=" + gvtnUnder1 + ",dst=" + gvtnUnder2 + ",erspan(ver=2,dir=1,hwid=0x4",
			"tun_erspan_hwid=0x5", ""},
		// OVS sends tun_flags' oam as Geneve's O bit (gvs did not).
		{"geneve", nil, "tun_id=0x42,tun_flags=+oam",
			"tunnel(tun_id=0x42,src=" + gvtnUnder1 + ",dst=" + gvtnUnder2 + ",flags(+oam-df-csum+key))", "tun_flags=-oam",
			"set_field:1->tun_flags,"},
	} {
		t.Run(c.typ, func(t *testing.T) {
			h.g1.MustVsctl(append([]string{"add-port", "br1", "tun0", "--", "set", "interface", "tun0", "type=" + c.typ,
				"options:remote_ip=flow", "options:key=flow"}, c.opts1...)...)
			h.g2.MustVsctl("add-port", "br2", "tun0", "--", "set", "interface", "tun0", "type="+c.typ,
				"options:remote_ip="+gvtnUnder1, "options:key=flow")
			defer func() {
				h.g1.MustVsctl("del-port", "br1", "tun0")
				h.g2.MustVsctl("del-port", "br2", "tun0")
				_, _ = h.lab.exec(gvtfVM1, "ip", "neigh", "flush", "all")
				_, _ = h.lab.exec(gvtfRmon, "ip", "neigh", "flush", "all")
			}()
			for _, g := range []*Gvsd{h.g1, h.g2} {
				if e := strings.TrimSpace(g.MustVsctl("get", "interface", "tun0", "error")); e != "[]" {
					t.Fatalf("tun0: Interface.error = %s", e)
				}
			}
			gvtfFlowsOn(t, h.g1, "br1",
				"in_port=p1,actions=set_field:"+gvtnUnder2+"->tun_dst,set_tunnel:0x42,"+c.set1+"output:tun0",
				"in_port=tun0,tun_id=0x42,actions=output:p1")
			other := "priority=20,in_port=tun0," + c.notMatched + ",actions=drop"
			if c.typ == "erspan" {
				other = "priority=20,in_port=tun0,tun_erspan_ver=2,tun_erspan_dir=1," + c.notMatched + ",actions=drop"
			}
			gvtfFlowsOn(t, h.g2, "br2",
				"priority=10,in_port=tun0,"+c.match+",actions=output:ml", other,
				"in_port=ml,actions=set_tunnel:0x42,output:tun0")
			if !h.lab.pingEventually(gvtfVM1, gvtfRmonAddr, 10*time.Second) {
				t.Fatalf("vm1 cannot ping rmon over %s matching %s\nhost2 flows:\n%s\nhost2 datapath flows:\n%s\nhost2 coverage:\n%s",
					c.typ, c.match, gvofMust(t, h.g2, nil, "dump-flows", "br2"), appctl(t, h.g2, "dpctl/dump-flows"),
					gvtnCoverageLines(t, h.g2))
			}
			if n := gvtfPackets(t, h.g2, "br2", c.match); n <= 0 {
				t.Errorf("host2's %s flow counted %d packets", c.match, n)
			}
			if n := gvtfPackets(t, h.g2, "br2", c.notMatched); n != 0 {
				t.Errorf("host2's %s flow counted %d packets, want 0", c.notMatched, n)
			}
			// The flows of the echo requests are still cached: pinging
			// once more keeps them.
			_, _ = h.lab.exec(gvtfVM1, "ping", "-c", "1", "-W", "1", gvtfRmonAddr)
			dp := appctl(t, h.g2, "dpctl/dump-flows")
			if !strings.Contains(dp, c.tunnel) {
				t.Errorf("host2's datapath flows lack %s:\n%s", c.tunnel, dp)
			}
		})
	}
}

// A mirror whose output port has remote_ip=flow, as OVS 3.1 does it
// (checked with ovs-vswitchd 3.1 and a Geneve remote_ip=flow mirror
// port: nothing left it, and ofproto/trace said "Not tunneling to our
// own address"): a copy goes where the frame's tunnel metadata says, so
// a frame from a plain port (no tun_dst) is dropped, and one from a
// tunnel, whose tun_dst is this host's own address, is not tunnelled
// back to this host. Both are counted (tx_dropped,
// tunnel_flow_no_remote, tunnel_flow_to_self); the ping goes on.
func TestTunnelFlowMirrorPort(t *testing.T) {
	h := gvtfSetup(t)
	h.g1.MustVsctl("add-port", "br1", "tun0", "--", "set", "interface", "tun0", "type=gre",
		"options:remote_ip="+gvtnUnder2, "options:key=0x42")
	h.g2.MustVsctl("add-port", "br2", "tun0", "--", "set", "interface", "tun0", "type=gre",
		"options:remote_ip="+gvtnUnder1, "options:key=0x42")
	h.g2.MustVsctl("add-port", "br2", "tunm", "--", "set", "interface", "tunm", "type=geneve",
		"options:remote_ip=flow", "options:key=flow")
	h.g2.MustVsctl("--", "--id=@p", "get", "port", "tunm", "--", "--id=@m", "create", "mirror", "name=gvtfm",
		"select_all=true", "output_port=@p", "--", "set", "bridge", "br2", "mirrors=@m")
	if e := strings.TrimSpace(h.g2.MustVsctl("get", "interface", "tunm", "error")); e != "[]" {
		t.Fatalf("tunm: Interface.error = %s", e)
	}
	toSelf := gvtnCoverage(t, h.g2, "tunnel_flow_to_self")
	noRemote := gvtnCoverage(t, h.g2, "tunnel_flow_no_remote")
	if !h.lab.pingEventually(gvtfVM1, gvtfRmonAddr, 10*time.Second) {
		t.Fatalf("vm1 cannot ping rmon with the mirror\nhost2 coverage:\n%s", gvtnCoverageLines(t, h.g2))
	}
	// Interface.statistics is written every few seconds: wait for it.
	dropped := -1
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if dropped = gvtnStat(h.g2, "tunm", "tx_dropped"); dropped > 0 {
			break
		}
	}
	if dropped <= 0 {
		t.Errorf("tunm counted tx_dropped %d, want some", dropped)
	}
	if n := gvtnStat(h.g2, "tunm", "tx_packets"); n != 0 {
		t.Errorf("tunm sent %d packets, want 0", n)
	}
	if n := gvtnCoverage(t, h.g2, "tunnel_flow_to_self"); n <= toSelf {
		t.Errorf("tunnel_flow_to_self went from %d to %d (copies of frames from tun0)", toSelf, n)
	}
	if n := gvtnCoverage(t, h.g2, "tunnel_flow_no_remote"); n <= noRemote {
		t.Errorf("tunnel_flow_no_remote went from %d to %d (copies of frames from ml, which have no tun_dst)", noRemote, n)
	}
}

// TestTunnelFlowInteropOVS runs flow-based tunnels between the real OVS
// 3.1 (host1: userspace datapath, native tunnelling through its bridge
// ul, as in TestTunnelInteropOVS) and gvsd (host2: the host's routing),
// over GRE, VXLAN and Geneve (with the O bit). Both tunnel ports have remote_ip=flow and
// key=flow; each side's flows set the other's address with set_field
// and the key with set_tunnel:0x42, and match tun_id=0x42 on receive
// (host2 also has a tun_id=0x43 flow that must see nothing): vm1 behind
// OVS pings rmon behind gvs.
func TestTunnelFlowInteropOVS(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ping")
	const ovsNS = "gvtf-ovs"
	for _, ns := range []string{ovsNS, gvtfH2, gvtfVM1, gvtfRmon} {
		lab.netns(ns)
	}
	lab.vethIn(ovsNS, "ulo", "ul2", gvtfH2, gvtnUnder2+"/24")
	lab.vethIn(ovsNS, "p1", "vm1eth", gvtfVM1, gvtnVMAddr1+"/24")
	o := gvsyStartOVSNetns(t, ovsNS)
	o.MustVsctl("add-br", "ul", "--", "set", "bridge", "ul", "datapath_type=netdev")
	o.MustVsctl("add-port", "ul", "ulo")
	lab.mustExec(ovsNS, "ip", "addr", "add", gvtnUnder1+"/24", "dev", "ul")
	lab.mustExec(ovsNS, "ip", "link", "set", "ul", "up")
	o.MustVsctl("add-br", "br1", "--", "set", "bridge", "br1", "datapath_type=netdev")
	o.MustVsctl("add-port", "br1", "p1")
	ofctl := func(args ...string) {
		t.Helper()
		if out, errOut, err := o.run(append([]string{"ovs-ofctl"}, args...)...); err != nil {
			t.Fatalf("reference ovs-ofctl %v: %v\n%s%s", args, err, out, errOut)
		}
	}

	g := StartGvsdNetns(t, gvtfH2)
	g.MustVsctl("add-br", "br2")
	g.MustVsctl("add-port", "br2", "ml", "--", "set", "interface", "ml", "type=internal")
	gvtnWaitLinkIn(t, lab, gvtfH2, "ml")
	lab.must("ip", "-n", gvtfH2, "link", "set", "ml", "netns", gvtfRmon)
	lab.configure(gvtfRmon, "ml", gvtfRmonAddr+"/24")

	// Over Geneve both sides set tun_flags=+oam and receive only frames
	// that carry it: the O bit as OVS 3.1 sends and reads it.
	for _, c := range []struct{ typ, set, match string }{
		{"gre", "", ""}, {"vxlan", "", ""}, {"geneve", "set_field:1->tun_flags,", ",tun_flags=+oam"},
	} {
		typ := c.typ
		t.Run(typ, func(t *testing.T) {
			tunnel := []string{"--", "set", "interface", "tun0", "type=" + typ, "options:remote_ip=flow", "options:key=flow"}
			o.MustVsctl(append([]string{"add-port", "br1", "tun0"}, tunnel...)...)
			g.MustVsctl(append([]string{"add-port", "br2", "tun0"}, tunnel...)...)
			defer func() {
				o.MustVsctl("del-port", "br1", "tun0")
				g.MustVsctl("del-port", "br2", "tun0")
				_, _ = lab.exec(gvtfVM1, "ip", "neigh", "flush", "all")
				_, _ = lab.exec(gvtfRmon, "ip", "neigh", "flush", "all")
			}()
			if e := strings.TrimSpace(g.MustVsctl("get", "interface", "tun0", "error")); e != "[]" {
				t.Fatalf("gvsd tun0: Interface.error = %s", e)
			}
			ofctl("del-flows", "br1")
			ofctl("add-flow", "br1", "in_port=p1,actions=set_field:"+gvtnUnder2+"->tun_dst,set_tunnel:0x42,"+c.set+"output:tun0")
			ofctl("add-flow", "br1", "in_port=tun0,tun_id=0x42"+c.match+",actions=output:p1")
			gvtfFlowsOn(t, g, "br2",
				"priority=10,in_port=tun0,tun_id=0x42"+c.match+",actions=output:ml",
				"priority=10,in_port=tun0,tun_id=0x43,actions=output:ml",
				"in_port=ml,actions=set_field:"+gvtnUnder1+"->tun_dst,set_tunnel:0x42,"+c.set+"output:tun0")
			if !lab.pingEventually(gvtfVM1, gvtfRmonAddr, 15*time.Second) {
				flows, _, _ := o.run("ovs-ofctl", "dump-flows", "br1")
				dp, _, _ := o.run("ovs-appctl", "-t", o.dir+"/ovs-vswitchd.ctl", "dpctl/dump-flows")
				t.Fatalf("vm1 behind OVS cannot ping rmon behind gvs over flow-based %s\nOVS flows:\n%s\nOVS datapath flows:\n%s\ngvs flows:\n%s\ngvs coverage:\n%s",
					typ, flows, dp, gvofMust(t, g, nil, "dump-flows", "br2"), gvtnCoverageLines(t, g))
			}
			if n := gvtfPackets(t, g, "br2", "tun_id=0x42"); n <= 0 {
				t.Errorf("gvs's tun_id=0x42 flow counted %d packets", n)
			}
			if n := gvtfPackets(t, g, "br2", "tun_id=0x43"); n != 0 {
				t.Errorf("gvs's tun_id=0x43 flow counted %d packets, want 0", n)
			}
		})
	}
}
