package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// tunnelCase is one tunnel configuration the tests encapsulate with.
type tunnelCase struct {
	name string
	cfg  TunnelConfig
}

func tunnelCases() []tunnelCase {
	v4s, v4d := netip.MustParseAddr("172.21.12.8"), netip.MustParseAddr("172.21.12.163")
	v6s, v6d := netip.MustParseAddr("2001:db8::8"), netip.MustParseAddr("2001:db8::163")
	return []tunnelCase{
		{"gre", TunnelConfig{Type: TunnelGRE, Src: v4s, Dst: v4d, DF: true}},
		{"gre-key", TunnelConfig{Type: TunnelGRE, Src: v4s, Dst: v4d, Key: 0x10, HasKey: true, DF: true}},
		{"gre-csum-seq", TunnelConfig{Type: TunnelGRE, Src: v4s, Dst: v4d, Key: 7, HasKey: true, Csum: true, Seq: true, TTL: 9, TOS: 0x28}},
		{"gre6", TunnelConfig{Type: TunnelGRE, Src: v6s, Dst: v6d, Key: 5, HasKey: true, Csum: true}},
		{"erspan2", TunnelConfig{Type: TunnelERSPAN, Src: v4s, Dst: v4d, Key: 0x3ff, ERSPANVer: 1, ERSPANIdx: 0xabcde, DF: true}},
		{"erspan3", TunnelConfig{Type: TunnelERSPAN, Src: v4s, Dst: v4d, Key: 100, ERSPANVer: 2, ERSPANDir: 1, ERSPANHWID: 0x2a}},
		{"erspan3-6", TunnelConfig{Type: TunnelERSPAN, Src: v6s, Dst: v6d, Key: 1, ERSPANVer: 2, ERSPANHWID: 1}},
		{"vxlan", TunnelConfig{Type: TunnelVXLAN, Src: v4s, Dst: v4d, Key: 0x123456, DF: true}},
		{"vxlan-csum", TunnelConfig{Type: TunnelVXLAN, Src: v4s, Dst: v4d, Key: 1, Csum: true, DstPort: 8472}},
		{"vxlan6", TunnelConfig{Type: TunnelVXLAN, Src: v6s, Dst: v6d, Key: 1}},
		{"geneve", TunnelConfig{Type: TunnelGeneve, Src: v4s, Dst: v4d, Key: 0xfffffe, DF: true}},
		{"geneve6", TunnelConfig{Type: TunnelGeneve, Src: v6s, Dst: v6d, Key: 3}},
	}
}

// innerFrame is an Ethernet frame with an ICMP echo, odd length on
// purpose (checksums over an odd tail).
func innerFrame() []byte {
	f := make([]byte, 14+20+8+33)
	copy(f, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00})
	ip := IPv4(f[14:])
	ip[0], ip[8], ip[9] = 0x45, 64, ProtoICMPv4
	ip.SetTotalLen(uint16(len(f) - 14))
	ip.SetSrc([4]byte{10, 0, 0, 1})
	ip.SetDst([4]byte{10, 0, 0, 2})
	SetIPv4Checksum(ip)
	f[34] = 8
	for i := 42; i < len(f); i++ {
		f[i] = byte(i)
	}
	return f
}

// decapOuter takes the outer IP (and UDP) headers off pkt as a receiver
// would, then parses the tunnel header.
func decapOuter(t *testing.T, typ TunnelType, pkt []byte, info *TunnelInfo) []byte {
	t.Helper()
	var payload []byte
	if pkt[0]>>4 == 6 {
		payload = pkt[IPv6Len:]
	} else {
		var o OuterIP
		if err := ParseOuterIPv4(pkt, &o); err != nil {
			t.Fatal(err)
		}
		payload = pkt[o.Payload:o.End]
	}
	var err error
	switch typ {
	case TunnelGRE, TunnelERSPAN:
		err = ParseGRE(payload, info)
	case TunnelVXLAN:
		err = ParseVXLAN(payload[UDPLen:], info)
		payload = payload[UDPLen:]
	case TunnelGeneve:
		err = ParseGeneve(payload[UDPLen:], info)
		payload = payload[UDPLen:]
	}
	if err != nil {
		t.Fatalf("decap: %v", err)
	}
	return payload[info.Inner:]
}

func TestEncapDecapRoundTrip(t *testing.T) {
	inner := innerFrame()
	for _, tc := range tunnelCases() {
		t.Run(tc.name, func(t *testing.T) {
			e, err := NewEncap(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, MaxTunnelHeader+len(inner))
			for seq := range uint32(3) {
				pkt, err := e.Encapsulate(buf, inner, 0x01020304)
				if err != nil {
					t.Fatal(err)
				}
				var info TunnelInfo
				got := decapOuter(t, tc.cfg.Type, pkt, &info)
				if !bytes.Equal(got, inner) {
					t.Fatalf("inner frame changed:\n got %x\nwant %x", got, inner)
				}
				checkInfo(t, e.Config(), &info, seq)
			}
		})
	}
}

func checkInfo(t *testing.T, c TunnelConfig, info *TunnelInfo, seq uint32) {
	t.Helper()
	if info.Type != c.Type {
		t.Errorf("type %v, want %v", info.Type, c.Type)
	}
	if c.Type != TunnelGRE || c.HasKey {
		if info.Key != c.Key {
			t.Errorf("key %#x, want %#x", info.Key, c.Key)
		}
	}
	if c.Seq && (!info.HasSeq || info.Seq != seq) {
		t.Errorf("sequence %d (present %v), want %d", info.Seq, info.HasSeq, seq)
	}
	if c.Type == TunnelERSPAN {
		if info.ERSPANVer != c.ERSPANVer || info.ERSPANIdx != c.ERSPANIdx || info.ERSPANDir != c.ERSPANDir || info.ERSPANHWID != c.ERSPANHWID {
			t.Errorf("ERSPAN fields %+v, want %+v", info, c)
		}
		if c.ERSPANVer == 2 && info.Timestamp != 0x01020304 {
			t.Errorf("timestamp %#x", info.Timestamp)
		}
	}
}

// gopacket is an independent decoder: what it reads from gvs's headers
// must be what the configuration asked for, and the checksums must hold.
func TestEncapMatchesGopacket(t *testing.T) {
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
			first := layers.LayerTypeIPv4
			if tc.cfg.Dst.Is6() {
				first = layers.LayerTypeIPv6
			}
			p := gopacket.NewPacket(pkt, first, gopacket.Default)
			if el := p.ErrorLayer(); el != nil && tc.cfg.Type != TunnelERSPAN {
				t.Fatalf("gopacket: %v", el.Error())
			}
			checkOuterIP(t, p, e.Config(), pkt)
			checkTunnelLayer(t, p, e.Config(), pkt)
		})
	}
}

func checkOuterIP(t *testing.T, p gopacket.Packet, c TunnelConfig, pkt []byte) {
	t.Helper()
	if ip, ok := p.Layers()[0].(*layers.IPv4); ok {
		if ip.TTL != c.TTL || ip.TOS != c.TOS || (ip.Flags&layers.IPv4DontFragment != 0) != c.DF ||
			int(ip.Length) != len(pkt) || ip.SrcIP.String() != c.Src.String() || ip.DstIP.String() != c.Dst.String() {
			t.Errorf("outer IPv4 %+v does not match %+v", ip, c)
		}
		if Checksum(pkt[:20], 0) != 0xffff {
			t.Error("outer IPv4 checksum is wrong")
		}
		return
	}
	ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
	if ip.HopLimit != c.TTL || ip.TrafficClass != c.TOS || int(ip.Length) != len(pkt)-IPv6Len {
		t.Errorf("outer IPv6 %+v does not match %+v", ip, c)
	}
}

func checkTunnelLayer(t *testing.T, p gopacket.Packet, c TunnelConfig, pkt []byte) {
	t.Helper()
	l3 := IPv4MinLen
	if c.Dst.Is6() {
		l3 = IPv6Len
	}
	switch c.Type {
	case TunnelGRE, TunnelERSPAN:
		g := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
		if g.KeyPresent != c.HasKey || g.Key != c.Key && c.HasKey || g.SeqPresent != c.Seq || g.ChecksumPresent != c.Csum {
			t.Errorf("GRE %+v does not match %+v", g, c)
		}
		if c.Csum && Checksum(pkt[l3:], 0) != 0xffff {
			t.Error("GRE checksum is wrong")
		}
		if c.Type == TunnelERSPAN && c.ERSPANVer == 1 {
			s, ok := p.Layer(layers.LayerTypeERSPANII).(*layers.ERSPANII)
			if !ok || s.Version != 1 || uint32(s.SessionID) != c.Key || s.Index != c.ERSPANIdx {
				t.Errorf("ERSPAN II %+v does not match %+v", s, c)
			}
		}
		return
	case TunnelVXLAN:
		v, ok := p.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		if !ok { // a port gopacket does not know as VXLAN's
			u := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
			v = gopacket.NewPacket(u.Payload, layers.LayerTypeVXLAN, gopacket.Default).Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		}
		if !v.ValidIDFlag || v.VNI != c.Key {
			t.Errorf("VXLAN %+v does not match %+v", v, c)
		}
	case TunnelGeneve:
		g := p.Layer(layers.LayerTypeGeneve).(*layers.Geneve)
		if g.VNI != c.Key || g.Protocol != layers.EthernetTypeTransparentEthernetBridging {
			t.Errorf("Geneve %+v does not match %+v", g, c)
		}
	}
	u := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
	if uint16(u.DstPort) != c.DstPort || u.SrcPort < tunnelSrcPortMin || u.SrcPort > tunnelSrcPortMax || int(u.Length) != len(pkt)-l3 {
		t.Errorf("UDP %+v does not match %+v", u, c)
	}
	if (u.Checksum != 0) != (c.Csum || c.Dst.Is6()) {
		t.Errorf("UDP checksum %#x with csum=%v", u.Checksum, c.Csum)
	}
	if u.Checksum != 0 {
		var src, dst []byte = pkt[12:16], pkt[16:20]
		if c.Dst.Is6() {
			src, dst = pkt[8:24], pkt[24:40]
		}
		sum := PseudoHeaderChecksum(ProtoUDP, src, dst, uint32(len(pkt)-l3))
		if Checksum(pkt[l3:], sum) != 0xffff {
			t.Error("UDP checksum is wrong")
		}
	}
}

func TestNewEncapRefusesBadConfig(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	for _, c := range []TunnelConfig{
		{Type: TunnelGRE},
		{Type: TunnelGRE, Dst: netip.IPv4Unspecified()},
		{Type: TunnelGRE, Src: v6, Dst: v4},
		{Type: TunnelVXLAN, Dst: v4, Key: 1 << 24},
		{Type: TunnelGeneve, Dst: v4, Key: 1 << 24},
		{Type: TunnelERSPAN, Dst: v4, ERSPANVer: 3},
		{Type: TunnelERSPAN, Dst: v4, ERSPANVer: 1, Key: 1024},
		{Type: TunnelERSPAN, Dst: v4, ERSPANVer: 1, ERSPANIdx: 1 << 20},
		{Type: TunnelERSPAN, Dst: v4, ERSPANVer: 2, ERSPANDir: 2},
		{Type: TunnelERSPAN, Dst: v4, ERSPANVer: 2, ERSPANHWID: 64},
		{Type: 99, Dst: v4},
	} {
		if _, err := NewEncap(c); err == nil {
			t.Errorf("NewEncap(%+v) accepted", c)
		}
	}
}

func TestEncapDefaults(t *testing.T) {
	e, err := NewEncap(TunnelConfig{Type: TunnelVXLAN, Dst: netip.MustParseAddr("192.0.2.1")})
	if err != nil {
		t.Fatal(err)
	}
	pkt, _ := e.Encapsulate(make([]byte, 200), innerFrame(), 0)
	if IPv4(pkt).TTL() != 64 || IPv4(pkt).DontFragment() || binary.BigEndian.Uint16(pkt[22:]) != VXLANPort {
		t.Errorf("defaults: ttl %d df %v port %d", IPv4(pkt).TTL(), IPv4(pkt).DontFragment(), binary.BigEndian.Uint16(pkt[22:]))
	}
}

func TestEncapTooBig(t *testing.T) {
	e, _ := NewEncap(TunnelConfig{Type: TunnelGRE, Dst: netip.MustParseAddr("192.0.2.1")})
	hdr := make([]byte, MaxTunnelHeader)
	if _, err := e.Build(hdr, make([]byte, 0xffff-e.Len()), 0); err != nil {
		t.Fatalf("largest frame refused: %v", err)
	}
	if _, err := e.Build(hdr, make([]byte, 0xffff-e.Len()+1), 0); !errors.Is(err, ErrTooBig) {
		t.Fatalf("oversized frame: %v", err)
	}
	if _, err := e.Build(hdr[:3], innerFrame(), 0); err == nil {
		t.Fatal("short header buffer accepted")
	}
}

func TestParseGRERefuses(t *testing.T) {
	e, _ := NewEncap(TunnelConfig{Type: TunnelGRE, Dst: netip.MustParseAddr("192.0.2.1"), Csum: true, HasKey: true, Key: 3})
	pkt, _ := e.Encapsulate(make([]byte, 200), innerFrame(), 0)
	gre := pkt[IPv4MinLen:]
	var info TunnelInfo
	bad := bytes.Clone(gre)
	bad[len(bad)-1] ^= 0xff
	if err := ParseGRE(bad, &info); !errors.Is(err, ErrTunnelChecksum) {
		t.Errorf("corrupted payload: %v", err)
	}
	ip := bytes.Clone(gre)
	binary.BigEndian.PutUint16(ip[2:], EtherTypeIPv4)
	if err := ParseGRE(ip, &info); !errors.Is(err, ErrMalformedTunnel) {
		t.Errorf("GRE carrying IP: %v", err)
	}
	for n := range 12 + EthernetLen {
		if err := ParseGRE(gre[:n], &info); !errors.Is(err, ErrMalformedTunnel) {
			t.Errorf("GRE cut at %d: %v", n, err)
		}
	}
	ver := bytes.Clone(gre)
	ver[1] |= 1
	if err := ParseGRE(ver, &info); !errors.Is(err, ErrTunnelVersion) {
		t.Errorf("GRE version 1: %v", err)
	}
}

func TestParseUDPTunnelsRefuse(t *testing.T) {
	var info TunnelInfo
	vx := make([]byte, VXLANLen+EthernetLen)
	if err := ParseVXLAN(vx, &info); !errors.Is(err, ErrTunnelVersion) {
		t.Errorf("VXLAN without I flag: %v", err)
	}
	vx[0] = vxlanFlagVNI
	if err := ParseVXLAN(vx[:VXLANLen+EthernetLen-1], &info); !errors.Is(err, ErrTunnelTruncated) {
		t.Errorf("VXLAN short inner: %v", err)
	}
	gn := make([]byte, GeneveMinLen+8+EthernetLen)
	binary.BigEndian.PutUint16(gn[2:], EtherTypeTEB)
	gn[0] = 2 // two words of options
	if err := ParseGeneve(gn, &info); err != nil || info.Inner != 16 {
		t.Errorf("Geneve with options: inner %d, %v", info.Inner, err)
	}
	gn[1] = 0x40
	if err := ParseGeneve(gn, &info); !errors.Is(err, ErrTunnelVersion) {
		t.Errorf("Geneve with critical options: %v", err)
	}
	gn[1], gn[0] = 0, 3
	if err := ParseGeneve(gn, &info); !errors.Is(err, ErrTunnelTruncated) {
		t.Errorf("Geneve options past the end: %v", err)
	}
}

func TestEncapDecapAllocations(t *testing.T) {
	inner := innerFrame()
	for _, tc := range tunnelCases() {
		e, _ := NewEncap(tc.cfg)
		buf := make([]byte, MaxTunnelHeader+len(inner))
		pkt, _ := e.Encapsulate(buf, inner, 0)
		var info TunnelInfo
		if n := testing.AllocsPerRun(100, func() {
			_, _ = e.Build(buf, inner, 0)
			decapNoTest(tc.cfg.Type, pkt, &info)
		}); n != 0 {
			t.Errorf("%s: %v allocations per packet", tc.name, n)
		}
	}
}

// decapNoTest is decapOuter without a testing.T, for benchmarks.
func decapNoTest(typ TunnelType, pkt []byte, info *TunnelInfo) error {
	var o OuterIP
	var payload []byte
	if pkt[0]>>4 == 6 {
		payload = pkt[IPv6Len:]
	} else {
		if err := ParseOuterIPv4(pkt, &o); err != nil {
			return err
		}
		payload = pkt[o.Payload:o.End]
	}
	switch typ {
	case TunnelVXLAN:
		return ParseVXLAN(payload[UDPLen:], info)
	case TunnelGeneve:
		return ParseGeneve(payload[UDPLen:], info)
	}
	return ParseGRE(payload, info)
}

func BenchmarkEncap(b *testing.B) {
	inner := make([]byte, 1500)
	copy(inner, innerFrame())
	for _, tc := range tunnelCases() {
		e, _ := NewEncap(tc.cfg)
		hdr := make([]byte, MaxTunnelHeader)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(inner)))
			for b.Loop() {
				_, _ = e.Build(hdr, inner, 0)
			}
		})
	}
}

func BenchmarkDecap(b *testing.B) {
	inner := make([]byte, 1500)
	copy(inner, innerFrame())
	for _, tc := range tunnelCases() {
		e, _ := NewEncap(tc.cfg)
		pkt, _ := e.Encapsulate(make([]byte, MaxTunnelHeader+len(inner)), inner, 0)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(inner)))
			var info TunnelInfo
			for b.Loop() {
				if err := decapNoTest(tc.cfg.Type, pkt, &info); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Fuzz targets: every decapsulation parser, seeded with what Encap
// builds. Beyond not panicking, a parser that accepts must leave a whole
// Ethernet header inside the input.

func tunnelSeeds(f *testing.F, typ TunnelType, strip int) {
	inner := innerFrame()
	for _, tc := range tunnelCases() {
		if tc.cfg.Type != typ && !(typ == TunnelGRE && tc.cfg.Type == TunnelERSPAN) || tc.cfg.Dst.Is6() {
			continue
		}
		e, _ := NewEncap(tc.cfg)
		pkt, _ := e.Encapsulate(make([]byte, MaxTunnelHeader+len(inner)), inner, 0)
		f.Add(pkt[strip:])
	}
}

func checkInner(t *testing.T, b []byte, info *TunnelInfo, err error) {
	if err == nil && (info.Inner < 0 || info.Inner+EthernetLen > len(b)) {
		t.Fatalf("inner frame at %d past the %d-byte packet", info.Inner, len(b))
	}
	if err != nil && !errors.Is(err, ErrMalformedTunnel) {
		t.Fatalf("error %v does not wrap ErrMalformedTunnel", err)
	}
}

func FuzzParseGRE(f *testing.F) {
	tunnelSeeds(f, TunnelGRE, IPv4MinLen)
	f.Fuzz(func(t *testing.T, b []byte) {
		var info TunnelInfo
		checkInner(t, b, &info, ParseGRE(b, &info))
	})
}

func FuzzParseVXLAN(f *testing.F) {
	tunnelSeeds(f, TunnelVXLAN, IPv4MinLen+UDPLen)
	f.Fuzz(func(t *testing.T, b []byte) {
		var info TunnelInfo
		checkInner(t, b, &info, ParseVXLAN(b, &info))
	})
}

func FuzzParseGeneve(f *testing.F) {
	tunnelSeeds(f, TunnelGeneve, IPv4MinLen+UDPLen)
	f.Fuzz(func(t *testing.T, b []byte) {
		var info TunnelInfo
		checkInner(t, b, &info, ParseGeneve(b, &info))
	})
}

func FuzzParseOuterIPv4(f *testing.F) {
	tunnelSeeds(f, TunnelGRE, 0)
	f.Fuzz(func(t *testing.T, b []byte) {
		var o OuterIP
		err := ParseOuterIPv4(b, &o)
		if err == nil && (o.Payload < IPv4MinLen || o.Payload > o.End || o.End > len(b)) {
			t.Fatalf("payload %d..%d outside the %d-byte packet", o.Payload, o.End, len(b))
		}
		if err == nil {
			var info TunnelInfo
			checkInner(t, b[o.Payload:o.End], &info, ParseGRE(b[o.Payload:o.End], &info))
		}
	})
}

func TestParseOuterIPv6(t *testing.T) {
	e, err := NewEncap(TunnelConfig{Type: TunnelGRE, Src: netip.MustParseAddr("2001:db8:5::1"), Dst: netip.MustParseAddr("2001:db8:5::2"), TTL: 64})
	if err != nil {
		t.Fatal(err)
	}
	inner := innerFrame()
	pkt, err := e.Encapsulate(make([]byte, 256), inner, 0)
	if err != nil {
		t.Fatal(err)
	}
	pkt = append(pkt, 0, 0, 0) // link-layer padding after the payload is ignored
	var o OuterIP
	if err := ParseOuterIPv6(pkt, &o); err != nil {
		t.Fatal(err)
	}
	if o.Src != netip.MustParseAddr("2001:db8:5::1") || o.Dst != netip.MustParseAddr("2001:db8:5::2") ||
		o.Proto != ProtoGRE || o.Payload != IPv6Len || o.End != len(pkt)-3 {
		t.Fatalf("parsed %+v from a %d-byte packet", o, len(pkt))
	}
	var info TunnelInfo
	if err := ParseGRE(pkt[o.Payload:o.End], &info); err != nil || !bytes.Equal(pkt[o.Payload+info.Inner:o.End], inner) {
		t.Fatalf("GRE payload: %v", err)
	}
	for name, c := range map[string]struct {
		b    []byte
		want error
	}{
		"short":     {pkt[:IPv6Len-1], ErrTunnelTruncated},
		"cut":       {pkt[:IPv6Len+10], ErrTunnelTruncated},
		"ipv4":      {append([]byte{0x45}, pkt[1:]...), ErrTunnelVersion},
		"jumbogram": {append(append([]byte{}, pkt[:4]...), append([]byte{0, 0}, pkt[6:]...)...), ErrTunnelVersion},
	} {
		if err := ParseOuterIPv6(c.b, &o); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

func FuzzParseOuterIPv6(f *testing.F) {
	e, err := NewEncap(TunnelConfig{Type: TunnelGRE, Src: netip.MustParseAddr("2001:db8:5::1"), Dst: netip.MustParseAddr("2001:db8:5::2"), TTL: 64})
	if err != nil {
		f.Fatal(err)
	}
	seed, _ := e.Encapsulate(make([]byte, 256), innerFrame(), 0)
	f.Add(seed)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var o OuterIP
		err := ParseOuterIPv6(b, &o)
		if err == nil && (o.Payload != IPv6Len || o.End <= o.Payload || o.End > len(b) || !o.Src.Is6() || !o.Dst.Is6()) {
			t.Fatalf("payload %d..%d outside the %d-byte packet, or %v -> %v", o.Payload, o.End, len(b), o.Src, o.Dst)
		}
		if err == nil {
			var info TunnelInfo
			checkInner(t, b[o.Payload:o.End], &info, ParseGRE(b[o.Payload:o.End], &info))
		}
	})
}

// TestEncapGeneveOAM: Geneve's O bit follows SetOAM (the frame's
// tun_flags=+oam), through a later SetFlow too, and the receiving side
// reads it back as TunnelInfo.OAM, which becomes tun_flags=+oam; other
// types have no O bit and keep their headers.
func TestEncapGeneveOAM(t *testing.T) {
	inner := innerFrame()
	buf := make([]byte, MaxTunnelHeader+len(inner))
	for _, v6 := range []bool{false, true} {
		src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		if v6 {
			src, dst = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		}
		e, err := NewEncap(TunnelConfig{Type: TunnelGeneve, Src: src, Dst: dst, Key: 0x42})
		if err != nil {
			t.Fatal(err)
		}
		oam := func(want bool, step string) {
			t.Helper()
			pkt, err := e.Encapsulate(buf, inner, 0)
			if err != nil {
				t.Fatal(err)
			}
			var info TunnelInfo
			if got := decapOuter(t, TunnelGeneve, pkt, &info); !bytes.Equal(got, inner) {
				t.Fatalf("%s: inner frame changed", step)
			}
			if info.OAM != want || info.Key != 0x42 {
				t.Errorf("v6=%v %s: OAM %v key %#x, want OAM %v key 0x42", v6, step, info.OAM, info.Key, want)
			}
			var m TunnelMeta
			m.SetReceived(&info, dst, src, OuterMeta{})
			if (m.Flags&TunFlagOAM != 0) != want {
				t.Errorf("v6=%v %s: received tun_flags %#x", v6, step, m.Flags)
			}
		}
		oam(false, "new")
		e.SetOAM(true)
		oam(true, "SetOAM(true)")
		e.SetOAM(true)
		oam(true, "SetOAM(true) again")
		if err := e.SetFlow(src, dst, 0x42); err != nil {
			t.Fatal(err)
		}
		oam(true, "after SetFlow")
		e.SetOAM(false)
		oam(false, "SetOAM(false)")
	}
	g, err := NewEncap(TunnelConfig{Type: TunnelVXLAN, Dst: netip.MustParseAddr("10.0.0.2"), Key: 7})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := g.Encapsulate(make([]byte, len(buf)), inner, 0)
	g.SetOAM(true)
	if after, _ := g.Encapsulate(buf, inner, 0); !bytes.Equal(before, after) {
		t.Errorf("SetOAM changed a VXLAN header")
	}
}
