package netdev

import (
	"strings"
	"testing"

	"gvs/internal/packet"
)

func TestTunnelOptionsRefused(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		opts map[string]string
		want string
	}{
		{"gre", nil, "gre type requires valid 'remote_ip' argument"},
		{"vxlan", map[string]string{"remote_ip": "not-an-ip"}, "vxlan type requires valid 'remote_ip' argument: \"not-an-ip\" is not an IP address"},
		{"gre", map[string]string{"remote_ip": "0.0.0.0"}, "not a unicast address"},
		{"gre", map[string]string{"remote_ip": "flow", "local_ip": "nope"}, "invalid 'local_ip'"},
		{"gre", map[string]string{"remote_ip": "flow", "key": "flowx"}, "options:key"},
		{"ip6gre", map[string]string{"remote_ip": "192.0.2.1"}, "not an IPv6 address"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "local_ip": "2001:db8::1"}, "invalid 'local_ip'"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "key": "0x100000000"}, "options:key \"0x100000000\" is not a number from 0 to 4294967295"},
		{"vxlan", map[string]string{"remote_ip": "192.0.2.1", "key": "16777216"}, "from 0 to 16777215"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "ttl": "0"}, "options:ttl"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "ttl": "inherit"}, "options:ttl"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "tos": "3"}, "ECN bits zero"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "df_default": "yes"}, "neither true nor false"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "dst_port": "4789"}, "dst_port"},
		{"geneve", map[string]string{"remote_ip": "192.0.2.1", "dst_port": "70000"}, "dst_port"},
		{"erspan", map[string]string{"remote_ip": "192.0.2.1", "erspan_ver": "3"}, "invalid erspan_ver"},
		{"erspan", map[string]string{"remote_ip": "192.0.2.1", "erspan_idx": "100000"}, "invalid erspan_idx"},
		{"erspan", map[string]string{"remote_ip": "192.0.2.1", "erspan_hwid": "40"}, "invalid erspan_hwid"},
		{"erspan", map[string]string{"remote_ip": "192.0.2.1", "erspan_dir": "2"}, "invalid erspan_dir"},
		{"erspan", map[string]string{"remote_ip": "192.0.2.1", "key": "1024"}, "from 0 to 1023"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "gvs-gro": "no"}, "options:gvs-gro \"no\" is neither true nor false"},
		{"erspan", map[string]string{"remote_ip": "192.0.2.1", "gvs-gro": "true"}, "never join"},
		{"gre", map[string]string{"remote_ip": "192.0.2.1", "gvs-direct": "1"}, "options:gvs-direct \"1\" is neither true nor false"},
	} {
		_, err := parseTunnelOptions(Config{Name: "t0", Type: tc.typ, Options: tc.opts})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "t0: ") {
			t.Errorf("%s %v: error %v, want one naming t0 and containing %q", tc.typ, tc.opts, err, tc.want)
		}
	}
}

func TestTunnelOptionsParsed(t *testing.T) {
	o, err := parseTunnelOptions(Config{Name: "t0", Type: "gre", Options: map[string]string{
		"remote_ip": "172.21.12.163", "key": "0x0010", "ttl": "9", "tos": "0x28", "df_default": "false", "csum": "true", "seq": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	e := o.encap
	if e.Key != 16 || !e.HasKey || o.inKey != 16 || e.TTL != 9 || e.TOS != 0x28 || e.DF || !e.Csum || !e.Seq || !o.autoSrc {
		t.Errorf("gre options parsed as %+v / %+v", e, o)
	}
	o, err = parseTunnelOptions(Config{Name: "t1", Type: "vxlan", Options: map[string]string{
		"remote_ip": "192.0.2.1", "local_ip": "192.0.2.2", "in_key": "5", "out_key": "6"}})
	if err != nil {
		t.Fatal(err)
	}
	if o.inKey != 5 || o.encap.Key != 6 || o.dstPort != packet.VXLANPort || !o.encap.DF || o.autoSrc || o.local.String() != "192.0.2.2" {
		t.Errorf("vxlan options parsed as %+v / %+v", o.encap, o)
	}
	o, err = parseTunnelOptions(Config{Name: "t2", Type: "erspan", Options: map[string]string{
		"remote_ip": "192.0.2.1", "key": "7", "erspan_ver": "2", "erspan_dir": "1", "erspan_hwid": "0x2a", "erspan_idx": "1f"}})
	if err != nil {
		t.Fatal(err)
	}
	if e := o.encap; e.ERSPANVer != 2 || e.ERSPANDir != 1 || e.ERSPANHWID != 0x2a || e.ERSPANIdx != 0x1f || e.Key != 7 {
		t.Errorf("erspan options parsed as %+v", e)
	}
	o, err = parseTunnelOptions(Config{Name: "t3", Type: "geneve", Options: map[string]string{"remote_ip": "2001:db8::1", "dst_port": "6082"}})
	if err != nil || o.dstPort != 6082 || !o.remote.Is6() {
		t.Errorf("geneve over IPv6: %+v, %v", o, err)
	}
}

func TestTunnelMatchPrefersLocalIP(t *testing.T) {
	any, _ := parseTunnelOptions(Config{Name: "a", Type: "gre", Options: map[string]string{"remote_ip": "192.0.2.1", "key": "3"}})
	loc, _ := parseTunnelOptions(Config{Name: "b", Type: "gre", Options: map[string]string{"remote_ip": "192.0.2.1", "key": "3", "local_ip": "192.0.2.9"}})
	src, dst, other := any.remote, loc.local, any.remote
	if any.matches(packet.TunnelGRE, src, dst, 3) >= loc.matches(packet.TunnelGRE, src, dst, 3) {
		t.Error("the port with local_ip is not preferred")
	}
	if loc.matches(packet.TunnelGRE, src, other, 3) >= 0 || any.matches(packet.TunnelGRE, src, dst, 4) >= 0 || any.matches(packet.TunnelERSPAN, src, dst, 3) >= 0 {
		t.Error("a packet for another local address, key or type matched")
	}
}
