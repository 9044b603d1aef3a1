package vswitchd

import (
	"fmt"
	"strings"

	"gvs/internal/netdev"
)

// Tunnel commands. gvs sends tunnel packets through the host's own
// routing (a raw IP socket) rather than through a route table and ARP
// cache of its own, so ovs/route/show and tnl/neigh/show say where to
// look instead, and tnl/ports/show lists, with the receiving sockets, the
// source address each port's packets leave with.

// tnlPortsShow lists the receiving sockets (OVS's tunnel datapath ports)
// and the tunnel ports on each.
func tnlPortsShow(args []string) (string, error) {
	var sb strings.Builder
	sb.WriteString("Listening ports:\n")
	for _, l := range netdev.TunnelPorts() {
		fmt.Fprintf(&sb, "%s (%s) ref_cnt=%d\n", l.Name, l.Proto, len(l.Ports))
		for _, p := range l.Ports {
			fmt.Fprintf(&sb, "  %s: type=%s remote_ip=%s", p.Name, p.Type, p.Remote)
			if p.Local.IsValid() {
				fmt.Fprintf(&sb, " local_ip=%s", p.Local)
			}
			fmt.Fprintf(&sb, " in_key=%d out_key=%d", p.InKey, p.OutKey)
			if p.DstPort != 0 {
				fmt.Fprintf(&sb, " dst_port=%d", p.DstPort)
			}
			src := "none (no route)"
			if p.Source.IsValid() {
				src = p.Source.String()
			}
			fmt.Fprintf(&sb, " egress=host routing, source %s\n", src)
		}
	}
	return sb.String(), nil
}

func ovsRouteShow(args []string) (string, error) {
	return "gvs routes tunnel packets with the host's routing table: see `ip route` in gvsd's network namespace;\n" +
		"`ovs-appctl tnl/ports/show` gives the source address each tunnel port uses.\n", nil
}

func tnlNeighShow(args []string) (string, error) {
	return "gvs resolves tunnel next hops with the host's neighbour table: see `ip neigh` in gvsd's network namespace.\n", nil
}
