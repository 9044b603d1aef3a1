package span

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gvs/internal/packet"
)

// Tunnel destinations carry each copy, encapsulated as gvs's tunnel ports
// encapsulate (internal/packet), to a remote collector over the host's
// routing: an ERSPAN or GRE analyser, a VXLAN or Geneve endpoint.

// tunnelOptions are the options each tunnel kind takes, with the largest
// value each may have.
var tunnelOptions = map[string]map[string]uint64{
	"gre":    {"key": 1<<32 - 1},
	"erspan": {"ver": 2, "idx": packet.ERSPANMaxIndex, "key": packet.ERSPANMaxSession},
	"vxlan":  {"vni": packet.MaxVNI},
	"geneve": {"vni": packet.MaxVNI},
}

var tunnelTypes = map[string]packet.TunnelType{
	"gre": packet.TunnelGRE, "erspan": packet.TunnelERSPAN,
	"vxlan": packet.TunnelVXLAN, "geneve": packet.TunnelGeneve,
}

// parseTunnel reads REMOTE[,OPTION=N...] for a tunnel kind. REMOTE is an
// IPv4 or IPv6 address (an IPv6 one may be written in brackets).
func parseTunnel(kind, rest string) (packet.TunnelConfig, error) {
	addr, opts, _ := strings.Cut(rest, ",")
	addr = strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	remote, err := netip.ParseAddr(addr)
	if err != nil || remote.Zone() != "" {
		return packet.TunnelConfig{}, fmt.Errorf("%s: %q is not an IP address (the remote collector's)", kind, addr)
	}
	remote = remote.Unmap()
	if remote.IsUnspecified() || remote.IsMulticast() {
		return packet.TunnelConfig{}, fmt.Errorf("%s: %s is not a unicast address", kind, remote)
	}
	// As a tunnel port's defaults: Don't Fragment set, ERSPAN type II.
	c := packet.TunnelConfig{Type: tunnelTypes[kind], Dst: remote, DF: true, ERSPANVer: 1}
	allowed := tunnelOptions[kind]
	seen := map[string]bool{}
	for opt := range strings.SplitSeq(opts, ",") {
		if opts == "" {
			break
		}
		name, val, _ := strings.Cut(opt, "=")
		limit, ok := allowed[name]
		if !ok {
			return packet.TunnelConfig{}, fmt.Errorf("%s: unknown option %q: %s takes %s", kind, name, kind, optionNames(kind))
		}
		if seen[name] {
			return packet.TunnelConfig{}, fmt.Errorf("%s: option %s given twice", kind, name)
		}
		seen[name] = true
		n, err := strconv.ParseUint(val, 0, 64)
		if err != nil || n > limit || (name == "ver" && n < 1) {
			low := 0
			if name == "ver" {
				low = 1
			}
			return packet.TunnelConfig{}, fmt.Errorf("%s: %s=%s: a number from %d to %d", kind, name, val, low, limit)
		}
		switch name {
		case "key":
			c.Key, c.HasKey = uint32(n), true
		case "vni":
			c.Key = uint32(n)
		case "ver":
			c.ERSPANVer = uint8(n)
		case "idx":
			c.ERSPANIdx = uint32(n)
		}
	}
	if c.Type == packet.TunnelERSPAN && c.ERSPANVer == 2 && seen["idx"] {
		return packet.TunnelConfig{}, fmt.Errorf("%s: idx is a field of ERSPAN type II (ver=1) only", kind)
	}
	if _, err := packet.NewEncap(c); err != nil {
		return packet.TunnelConfig{}, fmt.Errorf("%s: %w", kind, err)
	}
	return c, nil
}

// optionNames lists a kind's options for messages, in a fixed order.
func optionNames(kind string) string {
	switch kind {
	case "gre":
		return "key=K"
	case "erspan":
		return "ver=1|2, idx=N (ver=1) and key=SESSION"
	}
	return "vni=N"
}

// FilterRules are the rules the kernel filter is compiled from: the
// session's own, after one reject rule per tunnel destination for the
// packets that carry its copies (the tunnel's protocol, to its remote).
// Without them a source that the copies leave by would copy them again,
// and again. With no rules of its own a session copies everything, so an
// accept-all rule then follows the guards.
func (c *Config) FilterRules() []Rule {
	var guards []Rule
	for _, d := range c.Dests {
		if d.Kind != DestTunnel {
			continue
		}
		r, err := ParseRule(guardRule(d.Tunnel))
		if err != nil {
			continue // cannot happen: the rule is built from a checked address
		}
		guards = append(guards, r)
	}
	if len(guards) == 0 {
		return c.Rules
	}
	if len(c.Rules) == 0 {
		all, _ := ParseRule("accept")
		return append(guards, all)
	}
	return append(guards, c.Rules...)
}

// guardRule is the reject rule for a tunnel's own packets.
func guardRule(t packet.TunnelConfig) string {
	ip, dst, l4 := "ip", "nw_dst", ""
	if t.Dst.Is6() {
		ip, dst = "ipv6", "ipv6_dst"
	}
	switch t.Type {
	case packet.TunnelVXLAN, packet.TunnelGeneve:
		port := t.DstPort
		if port == 0 {
			port = packet.VXLANPort
			if t.Type == packet.TunnelGeneve {
				port = packet.GenevePort
			}
		}
		ip = strings.Replace(ip, "ip", "udp", 1)
		if ip == "udpv6" {
			ip = "udp6"
		}
		l4 = fmt.Sprintf(",tp_dst=%d", port)
	default:
		l4 = ",nw_proto=47"
	}
	return fmt.Sprintf("reject %s,%s=%s%s", ip, dst, t.Dst, l4)
}
