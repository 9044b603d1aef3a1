package e2e

import (
	"strings"
	"testing"
)

// TestS4RemoteMirrorNativeUnderlay runs S4 over GRE (verbatim) and VXLAN
// with OVS's native tunnelling on both hosts (docs/GUIDE.md section 6):
// the underlay addresses sit on each gvsd's bridge ul, whose port phyN
// is the "physical" NIC. gvs routes the tunnel with its own route table
// (copied from the kernel's routes of ul), resolves the next hop with
// its own neighbour cache (learned from ARP replies delivered to ul),
// sends the encapsulated frames through bridge ul, and takes the tunnel
// packets that bridge ul delivers to ul off before the kernel sees them.
func TestS4RemoteMirrorNativeUnderlay(t *testing.T) {
	s := gvtnSetupS4Underlay(t, true)
	for _, c := range []struct {
		g           *Gvsd
		local, peer string
	}{{s.g1, gvtnUnder1, gvtnUnder2}, {s.g2, gvtnUnder2, gvtnUnder1}} {
		routes := appctl(t, c.g, "ovs/route/show")
		if !strings.Contains(routes, "Route Table:\n") || !strings.Contains(routes, "Cached: 172.21.12.0/24 dev ul SRC "+c.local+"\n") ||
			!strings.Contains(routes, "Cached: "+c.local+"/32 dev ul SRC "+c.local+" local\n") {
			t.Errorf("ovs/route/show lacks ul's routes:\n%s", routes)
		}
		neigh := appctl(t, c.g, "tnl/neigh/show")
		if !strings.Contains(neigh, "Bridge\n"+strings.Repeat("=", 74)+"\n") || !gvtnHasNeighbour(neigh, c.peer, "ul") {
			t.Errorf("tnl/neigh/show does not have %s on ul:\n%s", c.peer, neigh)
		}
	}
	for _, tn := range []gvtnTunnel{
		{"gre", "gre", nil, "gre_sys"},
		{"vxlan", "vxlan", nil, "vxlan_sys_4789"},
	} {
		t.Run(tn.name, func(t *testing.T) {
			tx, rx := gvtnCoverage(t, s.g1, "tunnel_native_tx"), gvtnCoverage(t, s.g2, "tunnel_native_rx")
			s.connect(t, tn)
			defer s.disconnect(t)
			s.checkRemoteMirror(t)
			s.checkTunnelStats(t)
			// host1 sent through bridge ul, host2 decapsulated what its
			// bridge ul delivered (not the kernel's socket).
			if got := gvtnCoverage(t, s.g1, "tunnel_native_tx"); got < tx+gvtnMirrorPingSize {
				t.Errorf("host1 tunnel_native_tx went from %d to %d, want +%d", tx, got, gvtnMirrorPingSize)
			}
			if got := gvtnCoverage(t, s.g2, "tunnel_native_rx"); got < rx+gvtnMirrorPingSize {
				t.Errorf("host2 tunnel_native_rx went from %d to %d, want +%d", rx, got, gvtnMirrorPingSize)
			}
		})
	}
}

// gvtnHasNeighbour reports whether tnl/neigh/show has ip on bridge.
func gvtnHasNeighbour(out, ip, bridge string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == ip && f[2] == bridge {
			return true
		}
	}
	return false
}
