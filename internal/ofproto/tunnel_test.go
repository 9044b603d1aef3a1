package ofproto

import (
	"net/netip"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// tunnelBridge is ofBridge with port 3 a tunnel port whose remote_ip,
// local_ip and key say "flow", and port 4 a tunnel port with fixed ones
// (nothing from the flow).
func tunnelBridge(t *testing.T, flows ...string) *Bridge {
	b := ofBridge(t)
	b.cfg.Load().Ports[3].TunnelFlow = netdev.TunnelFlow{Remote: true, Local: true, Key: true}
	for _, f := range flows {
		addFlow(t, b, f)
	}
	return b
}

// translateTunnel translates a TCP frame entering on port 1 with tunnel
// metadata md.
func translateTunnel(b *Bridge, md packet.TunnelMeta) (datapath.Key, *datapath.Xlate) {
	f := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}.bytes()
	pkt := &datapath.Packet{Frame: f, InPort: 1}
	_ = packet.Parse(f, 1, &pkt.Key.Key, &pkt.Off)
	md.ToKey(&pkt.Key.Key)
	x := &datapath.Xlate{}
	b.Translate(pkt, x)
	return pkt.Key, x
}

func meta(id uint64, src, dst string) packet.TunnelMeta {
	m := packet.TunnelMeta{ID: id}
	var s, d netip.Addr
	if src != "" {
		s = netip.MustParseAddr(src)
	}
	if dst != "" {
		d = netip.MustParseAddr(dst)
	}
	m.SetAddrs(s, d)
	return m
}

// The tunnel actions and matches translate as OVS's would: metadata
// changes emit nothing until an output to a flow-based tunnel port,
// which gets the metadata as the actions left it; other ports get none.
func TestTranslateTunnelActions(t *testing.T) {
	rx := meta(0x7, "10.0.0.2", "10.0.0.1")
	oam := rx
	oam.Flags = packet.TunFlagOAM | packet.TunFlagKey
	erspan := rx
	erspan.ErspanVer, erspan.ErspanDir, erspan.ErspanHWID = 2, 1, 5
	for _, tc := range []struct {
		name  string
		flows []string
		md    packet.TunnelMeta
		want  string
	}{
		{"set_tunnel and tun_dst", []string{"actions=set_field:192.168.1.2->tun_dst,set_tunnel:0x42,output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x42,dst=192.168.1.2)),3"},
		{"set_tunnel64", []string{"actions=set_tunnel64:0x1122334455,set_field:192.168.1.2->tun_dst,output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x1122334455,dst=192.168.1.2)),3"},
		{"set_field tun_id and tun_src", []string{"actions=set_field:0x99->tun_id,set_field:10.1.1.1->tun_src,set_field:10.2.2.2->tun_dst,output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x99,src=10.1.1.1,dst=10.2.2.2)),3"},
		{"set_field tun_ipv6_dst", []string{"actions=set_field:2001:db8::9->tun_ipv6_dst,output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x0,ipv6_dst=2001:db8::9)),3"},
		{"load into tun_id", []string{"actions=load:0x5->NXM_NX_TUN_ID[],load:0xc0a80102->NXM_NX_TUN_IPV4_DST[],output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x5,dst=192.168.1.2)),3"},
		{"move from tun_id", []string{"actions=move:NXM_NX_TUN_ID[0..31]->NXM_NX_REG0[],resubmit(,1)", "table=1,reg0=7,actions=output:2"}, rx,
			"2"},
		{"received metadata passes", []string{"actions=output:3"}, rx,
			"set(tunnel(tun_id=0x7,src=10.0.0.2,dst=10.0.0.1)),3"},
		{"fixed tunnel port gets none", []string{"actions=set_tunnel:0x42,output:4"}, rx, "4"},
		{"match tun_id", []string{"tun_id=0x7,actions=output:2", "priority=0,actions=output:4"}, rx, "2"},
		{"match tun_id mask", []string{"tun_id=0x0/0xf0,actions=output:2", "priority=0,actions=output:4"}, rx, "2"},
		{"match tun_src tun_dst", []string{"tun_src=10.0.0.2,tun_dst=10.0.0.1,actions=output:2", "priority=0,actions=output:4"}, rx, "2"},
		{"match tun_src mismatch", []string{"tun_src=10.0.0.3,actions=output:2", "priority=0,actions=output:4"}, rx, "4"},
		{"match tun_ipv6_src", []string{"tun_ipv6_src=2001:db8::2,actions=output:2", "priority=0,actions=output:4"},
			meta(1, "2001:db8::2", "2001:db8::1"), "2"},
		{"load into tun_ipv6_dst", []string{"actions=load:0x20010db8000000000000000000000009->NXM_NX_TUN_IPV6_DST[],output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x0,ipv6_dst=2001:db8::9)),3"},
		{"load into part of tun_ipv6_src", []string{"actions=set_field:2001:db8::9->tun_ipv6_dst,set_field:2001:db8::1->tun_ipv6_src,load:0xabcd->NXM_NX_TUN_IPV6_SRC[64..79],output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x0,ipv6_src=2001:db8:0:abcd::1,ipv6_dst=2001:db8::9)),3"},
		{"move tun_ipv6_src to tun_ipv6_dst", []string{"actions=move:NXM_NX_TUN_IPV6_SRC[]->NXM_NX_TUN_IPV6_DST[],output:3"},
			meta(1, "2001:db8::2", "2001:db8::1"), "set(tunnel(tun_id=0x1,ipv6_src=2001:db8::2,ipv6_dst=2001:db8::2)),3"},
		{"move from tun_ipv6_src low bits", []string{"actions=move:NXM_NX_TUN_IPV6_SRC[0..31]->NXM_NX_REG0[],resubmit(,1)", "table=1,reg0=2,actions=output:2"},
			meta(1, "2001:db8::2", "2001:db8::1"), "2"},
		{"move reg into tun_ipv6_dst high bits", []string{"actions=set_field:2001:db8::9->tun_ipv6_dst,load:0xfe80->NXM_NX_REG1[0..15],move:NXM_NX_REG1[0..15]->NXM_NX_TUN_IPV6_DST[112..127],output:3"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x0,ipv6_dst=fe80:db8::9)),3"},
		{"match tun_flags", []string{"tun_flags=+oam,actions=output:2", "priority=0,actions=output:4"}, oam, "2"},
		{"match tun_flags -oam", []string{"tun_flags=+oam,actions=output:2", "priority=0,actions=output:4"}, rx, "4"},
		{"match tun_erspan", []string{"tun_erspan_ver=2,tun_erspan_dir=1,tun_erspan_hwid=0x5,actions=output:2", "priority=0,actions=output:4"}, erspan, "2"},
		{"match tun_erspan mismatch", []string{"tun_erspan_ver=1,actions=output:2", "priority=0,actions=output:4"}, erspan, "4"},
		{"set_field tun_flags then match", []string{"actions=set_field:1->tun_flags,resubmit(,1)", "table=1,tun_flags=+oam,actions=output:2"}, rx, "2"},
		{"load tun_flags keeps the datapath's", []string{"actions=load:0->NXM_NX_TUN_FLAGS[],move:NXM_NX_TUN_FLAGS[]->NXM_NX_REG0[3],resubmit(,1)", "table=1,reg0=0,actions=output:2"}, oam, "2"},
		{"set_field tun_erspan then match", []string{"actions=set_field:2->tun_erspan_ver,set_field:1->tun_erspan_dir,set_field:0x5->tun_erspan_hwid,resubmit(,1)",
			"table=1,tun_erspan_ver=2,tun_erspan_dir=1,tun_erspan_hwid=0x5,actions=output:2"}, rx, "2"},
		{"set_field tun_erspan_idx", []string{"actions=set_field:1->tun_erspan_ver,set_field:0xabcde->tun_erspan_idx,resubmit(,1)",
			"table=1,tun_erspan_ver=1,tun_erspan_idx=0xabcde,actions=output:2"}, rx, "2"},
		{"clone keeps its metadata", []string{"actions=clone(set_tunnel:0x1,set_field:10.3.3.3->tun_dst,output:3),output:3"}, rx,
			"clone(set(tunnel(tun_id=0x1,src=10.0.0.2,dst=10.3.3.3)),3),set(tunnel(tun_id=0x7,src=10.0.0.2,dst=10.0.0.1)),3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tunnelBridge(t, tc.flows...)
			_, x := translateTunnel(b, tc.md)
			if got := datapath.FormatActions(x.Actions, nil); got != tc.want {
				t.Errorf("actions %s, want %s", got, tc.want)
			}
		})
	}
}

// The mask says exactly what the decision depended on: a tun_id match
// puts its mask bits in, an output by the flow's metadata puts in the
// fields the port reads unless an action wrote them, and a packet that
// only goes to plain ports leaves the tunnel fields out. (A frame from a
// tunnel always depends on its metadata: TestTranslateTunnelRxMask.)
func TestTranslateTunnelMask(t *testing.T) {
	var rx packet.TunnelMeta // from a plain port
	for _, tc := range []struct {
		name           string
		flows          []string
		tunID          uint64
		tunDst, tunSrc bool
	}{
		{"no tunnel fields read", []string{"actions=output:2"}, 0, false, false},
		{"masked tun_id match", []string{"tun_id=0x0/0xf0,actions=output:2"}, 0xf0, false, false},
		{"pass-through", []string{"actions=output:3"}, ^uint64(0), true, true},
		{"all written", []string{"actions=set_tunnel:1,set_field:10.1.1.1->tun_src,set_field:10.2.2.2->tun_dst,output:3"}, 0, false, false},
		{"key written", []string{"actions=set_tunnel:1,output:3"}, 0, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tunnelBridge(t, tc.flows...)
			_, x := translateTunnel(b, rx)
			m := &x.Mask.Key
			if m.TunID != tc.tunID || (m.TunDst != [4]byte{}) != tc.tunDst || (m.TunSrc != [4]byte{}) != tc.tunSrc {
				t.Errorf("mask tun_id=%#x tun_dst=%v tun_src=%v, want %#x %v %v", m.TunID, m.TunDst, m.TunSrc, tc.tunID, tc.tunDst, tc.tunSrc)
			}
		})
	}
}

// A frame that came out of a tunnel depends on its tun_id, endpoints,
// df/csum/key flags and TOS whatever the rules read, as in OVS 3.1, so
// that the datapath flows of two tunnels (or two TOS values) stay apart;
// the TTL and the ERSPAN fields join only when a rule reads them.
func TestTranslateTunnelRxMask(t *testing.T) {
	for _, tc := range []struct {
		name string
		md   packet.TunnelMeta
	}{
		{"IPv4", meta(0x7, "10.0.0.2", "10.0.0.1")},
		{"IPv6", meta(0x7, "2001:db8::2", "2001:db8::1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tunnelBridge(t, "actions=output:2")
			_, x := translateTunnel(b, tc.md)
			m := &x.Mask.Key
			want := packet.Key{TunID: ^uint64(0), TunTOS: 0xff,
				TunFlags: packet.TunFlagDF | packet.TunFlagCsum | packet.TunFlagKey}
			if tc.md.Dst != [4]byte{} {
				want.TunSrc, want.TunDst = allOnes4, allOnes4
			} else {
				want.TunIPv6Src, want.TunIPv6Dst = allOnes16, allOnes16
			}
			var got packet.Key
			got.TunID, got.TunTOS, got.TunTTL, got.TunFlags = m.TunID, m.TunTOS, m.TunTTL, m.TunFlags
			got.TunSrc, got.TunDst, got.TunIPv6Src, got.TunIPv6Dst = m.TunSrc, m.TunDst, m.TunIPv6Src, m.TunIPv6Dst
			got.TunErspanVer, got.TunErspanIdx = m.TunErspanVer, m.TunErspanIdx
			if got != want {
				t.Errorf("tunnel mask %+v, want %+v", got, want)
			}
		})
	}
}

// A Geneve port (port 4 here, fixed remote) sends tun_flags' oam as its
// O bit: an output to it gets the bit when an action set it or the frame
// came with it (the mask then keeps frames with and without it apart),
// and nothing otherwise; an output after one that got metadata gets its
// own, so that the datapath does not carry the first one's on to it.
func TestTranslateGeneveOAM(t *testing.T) {
	rx := meta(0x7, "10.0.0.2", "10.0.0.1")
	oam := rx
	oam.Flags = packet.TunFlagOAM | packet.TunFlagKey
	for _, tc := range []struct {
		name    string
		flows   []string
		md      packet.TunnelMeta
		want    string
		maskOAM bool
	}{
		{"plain frame", []string{"actions=output:4"}, packet.TunnelMeta{}, "4", false},
		{"set_field oam", []string{"actions=set_field:1->tun_flags,output:4"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x0,flags(oam))),4", false},
		{"load oam", []string{"actions=load:1->NXM_NX_TUN_FLAGS[0],output:4"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x0,flags(oam))),4", false},
		{"received oam", []string{"actions=output:4"}, oam, "set(tunnel(tun_id=0x0,flags(oam))),4", true},
		{"received without oam", []string{"actions=output:4"}, rx, "4", true},
		{"oam cleared", []string{"actions=set_field:0->tun_flags,output:4"}, oam, "4", false},
		{"oam then not", []string{"actions=set_field:1->tun_flags,output:4,set_field:0->tun_flags,output:4"}, packet.TunnelMeta{},
			"set(tunnel(tun_id=0x0,flags(oam))),4,set(tunnel(tun_id=0x0)),4", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tunnelBridge(t, tc.flows...)
			b.cfg.Load().Ports[4].TunnelFlow = netdev.TunnelFlow{OAM: true}
			_, x := translateTunnel(b, tc.md)
			if got := datapath.FormatActions(x.Actions, nil); got != tc.want {
				t.Errorf("actions %s, want %s", got, tc.want)
			}
			if got := x.Mask.Key.TunFlags&packet.TunFlagOAM != 0; got != tc.maskOAM {
				t.Errorf("mask has oam %v, want %v", got, tc.maskOAM)
			}
		})
	}
}
