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

// tunnelXlate is a translation of a frame from a tunnel, masked as
// ofproto masks one (tun_id, endpoints, df/csum/key flags, TOS).
func tunnelXlate(out uint32) *Xlate {
	x := xlateTo(out, false)
	m := &x.Mask
	m.TunID, m.TunSrc, m.TunDst, m.TunTOS = ^uint64(0), [4]byte{255, 255, 255, 255}, [4]byte{255, 255, 255, 255}, 0xff
	m.TunFlags = packet.TunFlagDF | packet.TunFlagCsum | packet.TunFlagKey
	return x
}

func tunnelKey(id uint64, tos, ttl uint8, flags uint16) Key {
	k := cacheKey(1, 0xa, 0xb)
	k.TunID, k.TunSrc, k.TunDst, k.TunTOS, k.TunTTL, k.TunFlags = id, [4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, tos, ttl, flags
	return k
}

// The flow cache keeps frames apart by the tunnel fields the mask
// holds: another TOS or csum flag misses, another TTL (not in OVS's
// mask either) hits.
func TestFlowCacheTunnelFields(t *testing.T) {
	c := newFlowCache(100)
	k := tunnelKey(0x42, 0, 64, packet.TunFlagKey)
	c.install(&k, tunnelXlate(2), 7, 0)
	for _, tc := range []struct {
		name string
		k    Key
		hit  bool
	}{
		{"same", tunnelKey(0x42, 0, 64, packet.TunFlagKey), true},
		{"other ttl", tunnelKey(0x42, 0, 3, packet.TunFlagKey), true},
		{"other tos", tunnelKey(0x42, 0x28, 64, packet.TunFlagKey), false},
		{"csum", tunnelKey(0x42, 0, 64, packet.TunFlagKey|packet.TunFlagCsum), false},
		{"no key", tunnelKey(0x42, 0, 64, 0), false},
		{"other id", tunnelKey(0x43, 0, 64, packet.TunFlagKey), false},
	} {
		if got := c.lookup(&tc.k, 7, 0) != nil; got != tc.hit {
			t.Errorf("%s: hit %v, want %v", tc.name, got, tc.hit)
		}
	}
}

// A cache hit for frames from a tunnel, whose mask holds the tunnel
// fields (compare BenchmarkFlowCacheHit).
func BenchmarkFlowCacheHitTunnel(b *testing.B) {
	c := newFlowCache(10000)
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = tunnelKey(uint64(i), 0, 64, packet.TunFlagKey)
		c.install(&keys[i], tunnelXlate(2), 1, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.lookup(&keys[i%len(keys)], 1, 0) == nil {
			b.Fatal("miss")
		}
	}
}
