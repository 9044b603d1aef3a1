package span

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"testing"

	"gvs/internal/packet"
)

func TestParseTunnelDest(t *testing.T) {
	for _, c := range []struct {
		in   string
		want packet.TunnelConfig
	}{
		{"gre:192.0.2.9", packet.TunnelConfig{Type: packet.TunnelGRE}},
		{"gre:192.0.2.9,key=0x10", packet.TunnelConfig{Type: packet.TunnelGRE, Key: 16, HasKey: true}},
		{"erspan:192.0.2.9", packet.TunnelConfig{Type: packet.TunnelERSPAN, ERSPANVer: 1}},
		{"erspan:192.0.2.9,ver=1,idx=7,key=3", packet.TunnelConfig{Type: packet.TunnelERSPAN, ERSPANVer: 1, ERSPANIdx: 7, Key: 3, HasKey: true}},
		{"erspan:2001:db8::9,ver=2", packet.TunnelConfig{Type: packet.TunnelERSPAN, ERSPANVer: 2}},
		{"vxlan:192.0.2.9,vni=100", packet.TunnelConfig{Type: packet.TunnelVXLAN, Key: 100}},
		{"geneve:[2001:db8::9],vni=5", packet.TunnelConfig{Type: packet.TunnelGeneve, Key: 5}},
	} {
		d, err := ParseDest(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		got := d.Tunnel
		if d.Kind != DestTunnel || got.Type != c.want.Type || got.Key != c.want.Key || got.HasKey != c.want.HasKey ||
			(c.want.Type == packet.TunnelERSPAN && (got.ERSPANVer != c.want.ERSPANVer || got.ERSPANIdx != c.want.ERSPANIdx)) {
			t.Errorf("%s: got %+v, want %+v", c.in, got, c.want)
		}
		if !got.Dst.IsValid() || !got.DF || d.Text != c.in {
			t.Errorf("%s: remote %v, DF %v, text %q", c.in, got.Dst, got.DF, d.Text)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"gre:", "not an IP address"},
		{"gre:collector", "not an IP address"},
		{"vxlan:0.0.0.0", "not a unicast address"},
		{"geneve:224.0.0.1", "not a unicast address"},
		{"gre:192.0.2.9,vni=4", `unknown option "vni": gre takes key=K`},
		{"vxlan:192.0.2.9,vni=16777216", "vni=16777216: a number from 0 to 16777215"},
		{"erspan:192.0.2.9,ver=3", "ver=3: a number from 1 to 2"},
		{"erspan:192.0.2.9,ver=0", "ver=0: a number from 1 to 2"},
		{"erspan:192.0.2.9,key=1024", "key=1024: a number from 0 to 1023"},
		{"erspan:192.0.2.9,ver=2,idx=3", "idx is a field of ERSPAN type II"},
		{"gre:192.0.2.9,key=1,key=2", "given twice"},
		{"gre:fe80::1%eth0", "not an IP address"},
	} {
		_, err := ParseDest(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error with %q", c.in, err, c.want)
		}
	}
}

// ipFrame is an untagged Ethernet frame with an IPv4 or IPv6 header to
// dst of protocol proto and 8 bytes of L4 header (ports sport, dport).
func ipFrame(dst netip.Addr, proto uint8, sport, dport uint16) []byte {
	var f []byte
	if dst.Is4() {
		f = make([]byte, 14+20+8)
		binary.BigEndian.PutUint16(f[12:], 0x0800)
		ip := f[14:]
		ip[0], ip[8], ip[9] = 0x45, 64, proto
		binary.BigEndian.PutUint16(ip[2:], 28)
		copy(ip[12:], []byte{192, 0, 2, 1})
		a := dst.As4()
		copy(ip[16:], a[:])
	} else {
		f = make([]byte, 14+40+8)
		binary.BigEndian.PutUint16(f[12:], 0x86dd)
		ip := f[14:]
		ip[0], ip[6], ip[7] = 0x60, proto, 64
		binary.BigEndian.PutUint16(ip[4:], 8)
		ip[8], ip[9] = 0x20, 0x01
		a := dst.As16()
		copy(ip[24:], a[:])
	}
	l4 := f[len(f)-8:]
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	copy(f[0:12], []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1})
	return f
}

// A session never copies the packets that carry its own copies to a
// tunnel destination, whatever its rules; everything else is decided by
// its rules as before.
func TestFilterSkipsOwnTunnelPackets(t *testing.T) {
	r4, r6, other := netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("2001:db8::9"), netip.MustParseAddr("192.0.2.10")
	frames := map[string][]byte{
		"gre to remote":       ipFrame(r4, 47, 0, 0),
		"gre to other":        ipFrame(other, 47, 0, 0),
		"vxlan to remote":     ipFrame(r4, 17, 40000, 4789),
		"tcp to remote":       ipFrame(r4, 6, 40000, 4789),
		"geneve6 to remote":   ipFrame(r6, 17, 40000, 6081),
		"udp6 5201 to remote": ipFrame(r6, 17, 40000, 5201),
	}
	for _, c := range []struct {
		dests, rules []string
		copied       []string // the others are not
	}{
		{[]string{"gre:192.0.2.9,key=1"}, nil, []string{"gre to other", "vxlan to remote", "tcp to remote", "geneve6 to remote", "udp6 5201 to remote"}},
		{[]string{"vxlan:192.0.2.9", "geneve:2001:db8::9"}, nil, []string{"gre to remote", "gre to other", "tcp to remote", "udp6 5201 to remote"}},
		{[]string{"erspan:192.0.2.9"}, []string{"accept ip"}, []string{"gre to other", "vxlan to remote", "tcp to remote"}},
		{[]string{"dev:d0"}, nil, []string{"gre to remote", "gre to other", "vxlan to remote", "tcp to remote", "geneve6 to remote", "udp6 5201 to remote"}},
	} {
		cfg := Config{Rules: mustRules(t, c.rules...)}
		for _, d := range c.dests {
			dest, err := ParseDest(d)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Dests = append(cfg.Dests, dest)
		}
		ins, err := Compile(cfg.FilterRules(), Both, 0)
		if err != nil {
			t.Fatalf("%v: %v", c.dests, err)
		}
		for name, f := range frames {
			want := false
			for _, n := range c.copied {
				want = want || n == name
			}
			if got := run(t, ins, f, 0, false) != 0; got != want {
				t.Errorf("dests %v, rules %q: %s copied %v, want %v", c.dests, c.rules, name, got, want)
			}
		}
	}
}
