package netdev

import (
	"net/netip"
	"testing"

	"gvs/internal/packet"
)

// remote_ip, local_ip, key, in_key and out_key accept "flow", as
// ovs-vswitchd.conf.db(5) describes; the underlay's IP version follows
// the type and local_ip.
func TestTunnelOptionsFlowParsed(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		opts map[string]string
		want tunnelOptions // the flow flags, v6, inKey, encap.Key/HasKey
	}{
		{"gre", map[string]string{"remote_ip": "flow", "key": "flow"},
			tunnelOptions{remoteFlow: true, inKeyFlow: true, outKeyFlow: true, encap: packet.TunnelConfig{HasKey: true}}},
		{"vxlan", map[string]string{"remote_ip": "flow", "local_ip": "flow", "key": "7"},
			tunnelOptions{remoteFlow: true, localFlow: true, inKey: 7, encap: packet.TunnelConfig{Key: 7, HasKey: true}}},
		{"ip6gre", map[string]string{"remote_ip": "flow"},
			tunnelOptions{remoteFlow: true, v6: true}},
		{"geneve", map[string]string{"remote_ip": "flow", "local_ip": "2001:db8::5"},
			tunnelOptions{remoteFlow: true, v6: true}},
		{"gre", map[string]string{"remote_ip": "192.0.2.9", "in_key": "flow", "out_key": "5"},
			tunnelOptions{inKeyFlow: true, encap: packet.TunnelConfig{Key: 5, HasKey: true}}},
		{"gre", map[string]string{"remote_ip": "192.0.2.9", "in_key": "3", "out_key": "flow"},
			tunnelOptions{inKey: 3, outKeyFlow: true, encap: packet.TunnelConfig{HasKey: true}}},
	} {
		o, err := parseTunnelOptions(Config{Name: "t0", Type: tc.typ, Options: tc.opts})
		if err != nil {
			t.Errorf("%s %v: %v", tc.typ, tc.opts, err)
			continue
		}
		w := tc.want
		if o.remoteFlow != w.remoteFlow || o.localFlow != w.localFlow || o.inKeyFlow != w.inKeyFlow ||
			o.outKeyFlow != w.outKeyFlow || o.v6 != w.v6 || o.inKey != w.inKey ||
			o.encap.Key != w.encap.Key || o.encap.HasKey != w.encap.HasKey {
			t.Errorf("%s %v: got %+v", tc.typ, tc.opts, *o)
		}
		if o.remoteFlow && o.remote.IsValid() {
			t.Errorf("%s %v: remote %s for remote_ip=flow", tc.typ, tc.opts, o.remote)
		}
		if o.flowBased() != (w.remoteFlow || w.localFlow || w.outKeyFlow) {
			t.Errorf("%s %v: flowBased %v", tc.typ, tc.opts, o.flowBased())
		}
	}
}

// A received packet goes to the most specific port, in OVS 3.1's order:
// an exact key before key=flow, then a configured remote before
// remote_ip=flow, then a configured local_ip, then none, then
// local_ip=flow.
func TestTunnelFlowReceiveMatch(t *testing.T) {
	ports := map[string]map[string]string{
		"exact":       {"remote_ip": "10.0.0.2", "local_ip": "10.0.0.1", "key": "5"},
		"nolocal":     {"remote_ip": "10.0.0.2", "key": "5"},
		"anyremote":   {"remote_ip": "flow", "key": "5"},
		"flowlocal":   {"remote_ip": "flow", "local_ip": "flow", "key": "5"},
		"anykey":      {"remote_ip": "10.0.0.2", "key": "flow"},
		"anything":    {"remote_ip": "flow", "key": "flow"},
		"other-type0": {"remote_ip": "flow", "key": "flow"},
	}
	opts := map[string]*tunnelOptions{}
	for name, o := range ports {
		typ := "gre"
		if name == "other-type0" {
			typ = "vxlan"
		}
		p, err := parseTunnelOptions(Config{Name: name, Type: typ, Options: o})
		if err != nil {
			t.Fatal(err)
		}
		opts[name] = p
	}
	best := func(src, dst string, key uint32, without ...string) string {
		name, score := "", -1
	next:
		for n, o := range opts {
			for _, w := range without {
				if n == w {
					continue next
				}
			}
			if s := o.matches(packet.TunnelGRE, netip.MustParseAddr(src), netip.MustParseAddr(dst), key); s > score {
				name, score = n, s
			}
		}
		return name
	}
	for _, c := range []struct {
		src, dst string
		key      uint32
		without  []string
		want     string
	}{
		{"10.0.0.2", "10.0.0.1", 5, nil, "exact"},
		{"10.0.0.2", "10.0.0.9", 5, nil, "nolocal"},
		{"10.0.0.3", "10.0.0.1", 5, nil, "anyremote"},
		{"10.0.0.3", "10.0.0.1", 5, []string{"anyremote"}, "flowlocal"},
		{"10.0.0.2", "10.0.0.1", 6, nil, "anykey"},
		{"10.0.0.3", "10.0.0.1", 6, nil, "anything"},
		// An exact key wins over key=flow even with a flow remote.
		{"10.0.0.2", "10.0.0.1", 5, []string{"exact", "nolocal"}, "anyremote"},
		{"10.0.0.3", "10.0.0.1", 6, []string{"anything"}, ""},
	} {
		if got := best(c.src, c.dst, c.key, c.without...); got != c.want {
			t.Errorf("%s -> %s key %d (without %v): port %q, want %q", c.src, c.dst, c.key, c.without, got, c.want)
		}
	}
	if !opts["anything"].sameReceive(opts["anything"]) || opts["anything"].sameReceive(opts["anykey"]) {
		t.Error("sameReceive does not tell flow-based ports apart")
	}
}
