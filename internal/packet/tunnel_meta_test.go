package packet

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// SetFlow gives the same headers as a template made for the new remote,
// source and key from the start, for every type, and the sequence
// number carries on.
func TestEncapSetFlowAsNew(t *testing.T) {
	inner := make([]byte, 80)
	for i := range inner {
		inner[i] = byte(i)
	}
	for _, base := range []TunnelConfig{
		{Type: TunnelGRE, HasKey: true, Key: 1, Seq: true, Csum: true},
		{Type: TunnelVXLAN, Key: 1},
		{Type: TunnelGeneve, Key: 1, Csum: true},
		{Type: TunnelERSPAN, ERSPANVer: 2, Key: 1, ERSPANHWID: 3},
	} {
		for _, v6 := range []bool{false, true} {
			src, dst, dst2 := "10.0.0.1", "10.0.0.2", "10.0.0.3"
			if v6 {
				src, dst, dst2 = "2001:db8::1", "2001:db8::2", "2001:db8::3"
			}
			cfg := base
			cfg.Src, cfg.Dst = netip.MustParseAddr(src), netip.MustParseAddr(dst)
			e, err := NewEncap(cfg)
			if err != nil {
				t.Fatal(err)
			}
			key := uint32(0x12345678)
			if err := e.SetFlow(cfg.Src, netip.MustParseAddr(dst2), key); err != nil {
				t.Fatalf("%v v6=%v: %v", base.Type, v6, err)
			}
			want := cfg
			want.Dst, want.Key = netip.MustParseAddr(dst2), key
			switch base.Type {
			case TunnelVXLAN, TunnelGeneve:
				want.Key &= MaxVNI
			case TunnelERSPAN:
				want.Key &= ERSPANMaxSession
			}
			fresh, err := NewEncap(want)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, MaxTunnelHeader)
			ref := make([]byte, MaxTunnelHeader)
			n, _ := e.Build(got, inner, 7)
			m, _ := fresh.Build(ref, inner, 7)
			if !bytes.Equal(got[:n], ref[:m]) {
				t.Errorf("%v v6=%v: after SetFlow\n%x\nwant\n%x", base.Type, v6, got[:n], ref[:m])
			}
			if err := e.SetFlow(cfg.Src, netip.MustParseAddr(map[bool]string{false: "2001:db8::9", true: "10.9.9.9"}[v6]), 1); err == nil {
				t.Errorf("%v v6=%v: SetFlow took a remote of the other IP version", base.Type, v6)
			}
			if a := testing.AllocsPerRun(50, func() { _ = e.SetFlow(cfg.Src, cfg.Dst, 5) }); a != 0 {
				t.Errorf("SetFlow allocates %.0f times", a)
			}
		}
	}
}

func TestTunnelMetaKey(t *testing.T) {
	var m TunnelMeta
	m.ID = 0x42
	m.SetAddrs(netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"))
	var k Key
	m.ToKey(&k)
	if k.TunID != 0x42 || k.TunSrc != [4]byte{10, 0, 0, 2} || k.TunDst != [4]byte{10, 0, 0, 1} || k.TunIPv6Src != [16]byte{} {
		t.Errorf("key %+v", k)
	}
	var back TunnelMeta
	back.FromKey(&k)
	if back != m || back.Remote() != netip.MustParseAddr("10.0.0.1") || back.Local() != netip.MustParseAddr("10.0.0.2") {
		t.Errorf("round trip %+v", back)
	}
	m.SetAddrs(netip.MustParseAddr("2001:db8::2"), netip.MustParseAddr("2001:db8::1"))
	if m.Src != [4]byte{} || m.Remote() != netip.MustParseAddr("2001:db8::1") || m.Local() != netip.MustParseAddr("2001:db8::2") {
		t.Errorf("IPv6: %+v", m)
	}
	if (&TunnelMeta{}).Remote().IsValid() {
		t.Error("empty metadata has a remote")
	}
}

// What gvs encapsulates comes back as the metadata OVS 3.1 fills on
// receive: the outer TOS and TTL, +key for a GRE key, VNI or ERSPAN
// session, +csum for a GRE or non-zero UDP checksum, never +df, and the
// ERSPAN version, index, direction and hardware id.
func TestTunnelMetaReceived(t *testing.T) {
	inner := innerFrame()
	for _, tc := range tunnelCases() {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEncap(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			pkt, err := e.Encapsulate(make([]byte, MaxTunnelHeader+len(inner)), inner, 0)
			if err != nil {
				t.Fatal(err)
			}
			var o OuterIP
			if pkt[0]>>4 == 6 {
				err = ParseOuterIPv6(pkt, &o)
			} else {
				err = ParseOuterIPv4(pkt, &o)
			}
			if err != nil {
				t.Fatal(err)
			}
			var info TunnelInfo
			decapOuter(t, tc.cfg.Type, pkt, &info)
			if tc.cfg.Type == TunnelVXLAN || tc.cfg.Type == TunnelGeneve {
				o.Meta.UDPCsum = binary.BigEndian.Uint16(pkt[o.Payload+6:]) != 0
			}
			var m TunnelMeta
			m.SetReceived(&info, o.Src, o.Dst, o.Meta)
			c := e.Config()
			ttl := c.TTL
			if ttl == 0 {
				ttl = 64
			}
			if m.TOS != c.TOS || m.TTL != ttl || m.ID != uint64(c.Key) || m.Local() != c.Src || m.Remote() != c.Dst {
				t.Errorf("metadata %+v, want tos %#x ttl %d key %#x", m, c.TOS, ttl, c.Key)
			}
			var flags uint16
			if c.Type != TunnelGRE || c.HasKey {
				flags |= TunFlagKey
			}
			if c.Csum || (c.Dst.Is6() && c.Type != TunnelGRE && c.Type != TunnelERSPAN) {
				flags |= TunFlagCsum
			}
			if m.Flags != flags {
				t.Errorf("flags %#x, want %#x", m.Flags, flags)
			}
			var k Key
			m.ToKey(&k)
			if c.Type == TunnelERSPAN {
				idx := c.ERSPANIdx
				if c.ERSPANVer != 1 {
					idx = 0
				}
				if k.TunErspanVer != c.ERSPANVer || k.TunErspanIdx != idx || k.TunErspanDir != c.ERSPANDir || k.TunErspanHWID != c.ERSPANHWID {
					t.Errorf("ERSPAN key fields %d %#x %d %#x, want %+v", k.TunErspanVer, k.TunErspanIdx, k.TunErspanDir, k.TunErspanHWID, c)
				}
			}
			var back TunnelMeta
			back.FromKey(&k)
			if back != m {
				t.Errorf("key round trip %+v, want %+v", back, m)
			}
		})
	}
}

// Geneve's O bit is OpenFlow's tun_flags=+oam.
func TestTunnelMetaGeneveOAM(t *testing.T) {
	b := make([]byte, GeneveMinLen+EthernetLen)
	binary.BigEndian.PutUint16(b[2:], genevePortEth)
	b[1] = 0x80
	var info TunnelInfo
	if err := ParseGeneve(b, &info); err != nil {
		t.Fatal(err)
	}
	var m TunnelMeta
	m.SetReceived(&info, netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1"), OuterMeta{})
	if m.Flags != TunFlagOAM|TunFlagKey {
		t.Errorf("flags %#x, want oam|key", m.Flags)
	}
}

// What a tunnel port's receive adds per frame: the metadata from the
// headers, then into the flow key (compare BenchmarkDecap).
func BenchmarkTunnelMetaReceived(b *testing.B) {
	info := TunnelInfo{Type: TunnelVXLAN, Key: 0x42}
	src, dst := netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.1")
	var m TunnelMeta
	var k Key
	b.ReportAllocs()
	for b.Loop() {
		m.SetReceived(&info, src, dst, OuterMeta{TOS: 0x28, TTL: 64})
		m.ToKey(&k)
	}
}
