package datapath

import (
	"strings"
	"testing"

	"gvs/internal/packet"
)

// A flow of a frame from a tunnel dumps its tunnel match first, in
// OVS's form: what OVS 3.1 printed for GRE from its peer was
// tunnel(tun_id=0x42,src=172.21.12.163,dst=172.21.12.8,flags(-df-csum+key)),recirc_id(0),...
func TestCachedFlowStringTunnel(t *testing.T) {
	var f CachedFlow
	f.InPort = 5
	k, m := &f.Key.Key, &f.Mask.Key
	k.TunID, k.TunSrc, k.TunDst, k.TunFlags, k.TunTTL = 0x42, [4]byte{172, 21, 12, 163}, [4]byte{172, 21, 12, 8}, packet.TunFlagKey, 64
	m.TunID, m.TunSrc, m.TunDst, m.TunTOS = ^uint64(0), [4]byte{255, 255, 255, 255}, [4]byte{255, 255, 255, 255}, 0xff
	m.TunFlags = packet.TunFlagDF | packet.TunFlagCsum | packet.TunFlagKey
	want := "tunnel(tun_id=0x42,src=172.21.12.163,dst=172.21.12.8,flags(-df-csum+key)),recirc_id(0),in_port(5), packets:0"
	if got := f.String(nil); !strings.HasPrefix(got, want) {
		t.Errorf("dump\n got %s\nwant %s...", got, want)
	}
	k.TunTOS, k.TunFlags = 0x28, packet.TunFlagKey|packet.TunFlagCsum|packet.TunFlagOAM
	m.TunFlags |= packet.TunFlagOAM
	m.TunTTL, m.TunID = 0xff, 0xff
	k.TunErspanVer, k.TunErspanDir, k.TunErspanHWID = 2, 1, 5
	m.TunErspanVer, m.TunErspanDir, m.TunErspanHWID = 0xf, 1, 0x3f
	want = "tunnel(tun_id=0x42/0xff,src=172.21.12.163,dst=172.21.12.8,tos=0x28,ttl=64,erspan(ver=2,dir=1,hwid=0x5),flags(+oam-df+csum+key)),recirc_id(0)"
	if got := f.String(nil); !strings.HasPrefix(got, want) || strings.Contains(got, "tun_id=0x42,") {
		t.Errorf("dump\n got %s\nwant %s...", got, want)
	}
	var v6 CachedFlow
	v6.Key.TunIPv6Dst[15], v6.Mask.TunIPv6Dst = 1, [16]byte{0xff, 0xff}
	v6.Key.TunIPv6Dst[0] = 0x20
	if got := v6.String(nil); !strings.HasPrefix(got, "tunnel(ipv6_dst=2000::1/ffff::),recirc_id(0)") {
		t.Errorf("IPv6 dump %s", got)
	}
}
