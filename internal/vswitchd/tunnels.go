package vswitchd

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"gvs/internal/netdev"
)

// Tunnel commands, as OVS's: the route table (ovs/route/*), the
// neighbour cache of native tunnelling (tnl/neigh/*, and its older name
// tnl/arp/*), and the receiving sockets with, per port, how its packets
// leave (tnl/ports/show).

func registerTunnelCommands(r Registrar) {
	r.Register("tnl/ports/show", "-v", 0, 1, tnlPortsShow)
	r.Register("ovs/route/show", "", 0, 0, ovsRouteShow)
	r.Register("ovs/route/add", "ip_addr/prefix_len out_br_name [gw] [pkt_mark=mark]", 2, 4, ovsRouteAdd)
	r.Register("ovs/route/del", "ip_addr/prefix_len [pkt_mark=mark]", 1, 2, ovsRouteDel)
	r.Register("ovs/route/lookup", "ip_addr [pkt_mark=mark]", 1, 2, ovsRouteLookup)
	for _, base := range []string{"tnl/neigh/", "tnl/arp/"} {
		r.Register(base+"show", "", 0, 0, tnlNeighShow)
		r.Register(base+"set", "BRIDGE IP MAC", 3, 3, tnlNeighSet)
		r.Register(base+"flush", "", 0, 0, tnlNeighFlush)
		r.Register(base+"aging", "[SECS]", 0, 1, tnlNeighAging)
	}
}

// tnlPortsShow lists the receiving sockets (OVS's tunnel datapath ports)
// and the tunnel ports on each, with how their packets leave: natively
// through a gvs internal port, or through the host's routing.
func tnlPortsShow(args []string) (string, error) {
	var sb strings.Builder
	sb.WriteString("Listening ports:\n")
	for _, l := range netdev.TunnelPorts() {
		fmt.Fprintf(&sb, "%s (%s) ref_cnt=%d\n", l.Name, l.Proto, len(l.Ports))
		for _, p := range l.Ports {
			fmt.Fprintf(&sb, "  %s: type=%s remote_ip=%s", p.Name, p.Type, flowOr(p.RemoteFlow, p.Remote.String()))
			if p.Local.IsValid() || p.LocalFlow {
				fmt.Fprintf(&sb, " local_ip=%s", flowOr(p.LocalFlow, p.Local.String()))
			}
			fmt.Fprintf(&sb, " in_key=%s out_key=%s", flowOr(p.InKeyFlow, strconv.FormatUint(uint64(p.InKey), 10)),
				flowOr(p.OutKeyFlow, strconv.FormatUint(uint64(p.OutKey), 10)))
			if p.DstPort != 0 {
				fmt.Fprintf(&sb, " dst_port=%d", p.DstPort)
			}
			src := "none (no route)"
			if p.Source.IsValid() {
				src = p.Source.String()
			}
			if p.Native {
				via := ""
				if p.GW.IsValid() {
					via = " gateway " + p.GW.String()
				}
				fmt.Fprintf(&sb, " egress=native dev %s%s, source %s\n", p.Dev, via, src)
			} else {
				fmt.Fprintf(&sb, " egress=host routing, source %s\n", src)
			}
		}
	}
	return sb.String(), nil
}

// ovsRouteShow prints the route table as OVS 3.1 does.
func ovsRouteShow(args []string) (string, error) {
	netdev.SyncTunnelRoutes()
	var sb strings.Builder
	sb.WriteString("Route Table:\n")
	for _, r := range netdev.TunnelRouter().Routes() {
		sb.WriteString(formatRoute(r))
	}
	return sb.String(), nil
}

func formatRoute(r netdev.Route) string {
	var sb strings.Builder
	if r.User {
		sb.WriteString("User: ")
	} else {
		sb.WriteString("Cached: ")
	}
	sb.WriteString(r.Prefix.String())
	if r.Mark != 0 {
		fmt.Fprintf(&sb, " MARK %d", r.Mark)
	}
	fmt.Fprintf(&sb, " dev %s", r.Dev)
	if r.GW.IsValid() {
		fmt.Fprintf(&sb, " GW %s", r.GW)
	}
	fmt.Fprintf(&sb, " SRC %s", r.Src)
	if r.Local {
		sb.WriteString(" local")
	}
	sb.WriteString("\n")
	return sb.String()
}

// ovsMessage is an error worded exactly as OVS words it (capitals and
// full stops included), for scripts that match OVS's answers.
type ovsMessage string

func (m ovsMessage) Error() string { return string(m) }

// errInsertRoute is OVS's answer to any route it cannot add.
var errInsertRoute = ovsMessage("Error while inserting route.")

// ovsRouteAdd adds a user route: prefix, the internal port it leaves
// through, and optionally a gateway and a pkt_mark.
func ovsRouteAdd(args []string) (string, error) {
	p, err := parseRoutePrefix(args[0])
	if err != nil {
		return "", errInsertRoute
	}
	var gw netip.Addr
	var mark uint32
	invalid := ovsMessage("Invalid pkt_mark or gateway")
	if p.Addr().Is6() {
		invalid = "Invalid pkt_mark or IPv6 gateway" // OVS 3.1's words for an IPv4 gateway too
	}
	for _, a := range args[2:] {
		if v, ok := strings.CutPrefix(a, "pkt_mark="); ok {
			if mark, err = parseMark(v); err != nil {
				return "", invalid
			}
			continue
		}
		if gw, err = netip.ParseAddr(a); err != nil || gw.Zone() != "" || (p.Addr().Is6() && gw.Is4()) {
			return "", invalid
		}
		gw = gw.Unmap()
	}
	addrs, ok := netdev.NativeDevAddrs(args[1])
	if !ok {
		netdev.SyncTunnelRoutes() // a port added an instant ago
		if addrs, ok = netdev.NativeDevAddrs(args[1]); !ok {
			return "", errInsertRoute
		}
	}
	if err := netdev.TunnelRouter().AddUser(p, args[1], gw, mark, addrs); err != nil {
		return "", errInsertRoute
	}
	return "OK\n", nil
}

func ovsRouteDel(args []string) (string, error) {
	p, err := parseRoutePrefix(args[0])
	if err != nil {
		return "", netdev.ErrRouteNotFound
	}
	var mark uint32
	if len(args) > 1 {
		v, ok := strings.CutPrefix(args[1], "pkt_mark=")
		if mark, err = parseMark(v); !ok || err != nil {
			return "", ovsMessage("Invalid pkt_mark")
		}
	}
	if err := netdev.TunnelRouter().DelUser(p, mark); err != nil {
		return "", err
	}
	return "OK\n", nil
}

func ovsRouteLookup(args []string) (string, error) {
	ip, err := netip.ParseAddr(args[0])
	if err != nil {
		return "", ovsMessage("Invalid parameters")
	}
	var mark uint32
	if len(args) > 1 {
		v, ok := strings.CutPrefix(args[1], "pkt_mark=")
		if mark, err = parseMark(v); !ok || err != nil {
			return "", ovsMessage("Invalid pkt_mark")
		}
	}
	r, ok := netdev.TunnelRouter().Lookup(ip, mark)
	if !ok {
		return "", ovsMessage("Not found")
	}
	gw := "::"
	if r.GW.IsValid() {
		gw = r.GW.String()
	}
	return fmt.Sprintf("src %s\ngateway %s\ndev %s\n", r.Src, gw, r.Dev), nil
}

// parseRoutePrefix reads ip/len, or a bare address as a host route.
func parseRoutePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
	}
	return p.Masked(), nil
}

func parseMark(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 0, 32)
	return uint32(v), err
}

// tnlNeighShow prints the neighbour cache as OVS 3.1 does.
func tnlNeighShow(args []string) (string, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-46s%-20s%s\n", "IP", "MAC", "Bridge")
	sb.WriteString(strings.Repeat("=", 74) + "\n")
	for _, n := range netdev.TunnelNeighbours().Entries() {
		fmt.Fprintf(&sb, "%-46s%-20s%s\n", n.IP, net.HardwareAddr(n.MAC[:]), n.Bridge)
	}
	return sb.String(), nil
}

// maxNeighBridgeLen bounds the bridge name tnl/neigh/set stores with an
// entry: a bridge's name is its internal port's, an interface name.
const maxNeighBridgeLen = 15

func tnlNeighSet(args []string) (string, error) {
	switch {
	case args[0] == "":
		return "", errors.New("bad bridge name: empty")
	case len(args[0]) > maxNeighBridgeLen:
		return "", fmt.Errorf("bad bridge name: longer than %d bytes", maxNeighBridgeLen)
	}
	ip, err := netip.ParseAddr(args[1])
	if err != nil || ip.Zone() != "" {
		return "", errors.New("bad IP address")
	}
	mac, err := net.ParseMAC(args[2])
	if err != nil || len(mac) != 6 {
		return "", errors.New("bad MAC address")
	}
	netdev.TunnelNeighbours().Set(args[0], ip, [6]byte(mac))
	return "OK\n", nil
}

func tnlNeighFlush(args []string) (string, error) {
	netdev.TunnelNeighbours().Flush()
	return "OK\n", nil
}

func tnlNeighAging(args []string) (string, error) {
	c := netdev.TunnelNeighbours()
	if len(args) == 0 {
		return fmt.Sprintf("%d\n", c.Aging()), nil
	}
	secs, err := strconv.Atoi(args[0])
	if err != nil || !c.SetAging(secs) {
		return "", errors.New("bad aging value")
	}
	return "OK\n", nil
}

// flowOr is "flow" for an option that says so, else v.
func flowOr(flow bool, v string) string {
	if flow {
		return "flow"
	}
	return v
}
