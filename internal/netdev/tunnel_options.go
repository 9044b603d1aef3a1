package netdev

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gvs/internal/packet"
)

// Tunnel port options, as man 5 ovs-vswitchd.conf.db describes them for
// the Interface table. Everything is checked when the port opens; a
// refusal becomes the Interface's error column, worded as OVS words it
// where OVS has a wording.

// tunnelTypes maps the Interface types gvs tunnels under to their
// encapsulation and underlay IP version ("" means either, by remote_ip).
var tunnelTypes = map[string]struct {
	typ packet.TunnelType
	v6  bool // the ip6 types: remote_ip must be IPv6
}{
	"gre":       {packet.TunnelGRE, false},
	"ip6gre":    {packet.TunnelGRE, true},
	"erspan":    {packet.TunnelERSPAN, false},
	"ip6erspan": {packet.TunnelERSPAN, true},
	"vxlan":     {packet.TunnelVXLAN, false},
	"geneve":    {packet.TunnelGeneve, false},
}

// tunnelOptions is a tunnel port's checked configuration.
type tunnelOptions struct {
	encap packet.TunnelConfig // outer headers; Src is local_ip (or unset)
	// What received packets must carry to be this port's.
	remote, local netip.Addr // local unset: any local address
	inKey         uint32
	dstPort       uint16 // UDP tunnels
	autoSrc       bool   // no local_ip: the source comes from the route
	// The options that say "flow": the value comes from the frame's
	// tunnel metadata (tun_dst, tun_src, tun_id) as it leaves, and a
	// received frame matches whatever it carries there.
	remoteFlow, localFlow, inKeyFlow, outKeyFlow bool
	v6                                           bool // the underlay is IPv6
	// gro: the port joins the TCP segments it receives (tunnel_gro.go):
	// VXLAN and Geneve by default (options:gvs-gro=false turns it off,
	// for a remote mirror's collector that wants the frames as they were
	// copied), GRE with gvs-gro=true. ERSPAN ports never join: they
	// exist for remote mirrors.
	gro bool
	// direct: frames may go straight to the route's device when the
	// kernel's neighbour is known (tnl_direct_linux.go);
	// options:gvs-direct=false keeps every frame on the kernel's IP
	// output (netfilter).
	direct bool
}

// flowBased reports whether any outer value comes from the flow.
func (o *tunnelOptions) flowBased() bool { return o.remoteFlow || o.localFlow || o.outKeyFlow }

// flowPlaceholder4 and flowPlaceholder6 stand in for remote_ip=flow in
// the header template until a frame's tun_dst replaces them; nothing is
// ever sent to them (a frame without tun_dst is dropped).
var (
	flowPlaceholder4 = netip.MustParseAddr("192.0.2.1")
	flowPlaceholder6 = netip.MustParseAddr("2001:db8::1")
)

// parseTunnelOptions checks a tunnel port's options.
func parseTunnelOptions(cfg Config) (*tunnelOptions, error) {
	tt, ok := tunnelTypes[cfg.Type]
	if !ok {
		return nil, fmt.Errorf("%s: %q is not a tunnel type", cfg.Name, cfg.Type)
	}
	o := &tunnelOptions{encap: packet.TunnelConfig{Type: tt.typ, DF: true, ERSPANVer: 1}}
	if err := o.parseAddrs(cfg, tt.v6); err != nil {
		return nil, err
	}
	if err := o.parseKeys(cfg); err != nil {
		return nil, err
	}
	if err := o.parseOuter(cfg); err != nil {
		return nil, err
	}
	if err := o.parseTypeSpecific(cfg); err != nil {
		return nil, err
	}
	if err := o.parseGRO(cfg); err != nil {
		return nil, err
	}
	// Let the encoder check the whole: limits that depend on the type.
	if _, err := packet.NewEncap(o.encap); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	return o, nil
}

// parseAddrs reads remote_ip and local_ip. With remote_ip=flow the
// underlay's IP version is that of local_ip, or IPv6 for the ip6 types,
// else IPv4: a flow-based port sends and receives on one IP version.
func (o *tunnelOptions) parseAddrs(cfg Config, want6 bool) error {
	opt := cfg.Options
	var remote netip.Addr
	if opt["remote_ip"] == "flow" {
		o.remoteFlow = true
	} else {
		var err error
		if remote, err = parseTunnelAddr(opt["remote_ip"], want6); err != nil {
			return fmt.Errorf("%s: %s type requires valid 'remote_ip' argument: %v", cfg.Name, cfg.Type, err)
		}
		o.remote, o.encap.Dst = remote, remote
	}
	if s, ok := opt["local_ip"]; ok && s == "flow" {
		o.localFlow = true
	} else if ok {
		local, err := parseTunnelAddr(s, want6 || remote.Is6())
		if err != nil || (remote.IsValid() && local.Is4() != remote.Is4()) {
			return fmt.Errorf("%s: %s type: invalid 'local_ip' argument %q (an address of the same IP version as remote_ip)", cfg.Name, cfg.Type, s)
		}
		o.local, o.encap.Src = local, local
	}
	o.v6 = remote.Is6() || (!remote.IsValid() && (want6 || o.local.Is6()))
	if o.remoteFlow {
		o.encap.Dst = pick(o.v6, flowPlaceholder6, flowPlaceholder4)
	}
	o.autoSrc = !o.local.IsValid()
	return nil
}

// parseTunnelAddr reads remote_ip or local_ip: an IP address.
func parseTunnelAddr(s string, want6 bool) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fmt.Errorf("missing")
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	a = a.Unmap()
	if a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%q is not a unicast address", s)
	}
	if want6 && !a.Is6() {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address", s)
	}
	return a, nil
}

// parseKeys reads key, in_key and out_key: numbers in C's notation
// (0x10 is 16), or "flow": the key of a received frame is its tun_id,
// and a frame leaves with its tun_id as key.
func (o *tunnelOptions) parseKeys(cfg Config) error {
	maxKey := uint64(1<<32 - 1)
	switch o.encap.Type {
	case packet.TunnelVXLAN, packet.TunnelGeneve:
		maxKey = packet.MaxVNI
	case packet.TunnelERSPAN:
		maxKey = packet.ERSPANMaxSession
	}
	flows := map[string]bool{}
	get := func(name string) (uint32, bool, error) {
		s, ok := cfg.Options[name]
		if !ok {
			return 0, false, nil
		}
		if s == "flow" {
			flows[name] = true
			return 0, false, nil
		}
		v, err := strconv.ParseUint(s, 0, 64)
		if err != nil || v > maxKey {
			return 0, false, fmt.Errorf("%s: options:%s %q is not a number from 0 to %d", cfg.Name, name, s, maxKey)
		}
		return uint32(v), true, nil
	}
	key, hasKey, err := get("key")
	if err != nil {
		return err
	}
	in, hasIn, err := get("in_key")
	if err != nil {
		return err
	}
	out, hasOut, err := get("out_key")
	if err != nil {
		return err
	}
	o.inKey, o.encap.Key = key, key
	o.inKeyFlow, o.outKeyFlow = flows["key"], flows["key"]
	if hasIn || flows["in_key"] {
		o.inKey, o.inKeyFlow = in, flows["in_key"]
	}
	if hasOut || flows["out_key"] {
		o.encap.Key, o.outKeyFlow = out, flows["out_key"]
	}
	// GRE sends the key field only for a non-zero key, as OVS does, and
	// always with out_key=flow.
	o.encap.HasKey = (hasKey || hasOut) && o.encap.Key != 0 || o.outKeyFlow
	return nil
}

// parseOuter reads ttl, tos, df_default, csum and dst_port.
func (o *tunnelOptions) parseOuter(cfg Config) error {
	opt := cfg.Options
	if s, ok := opt["ttl"]; ok {
		v, err := strconv.ParseUint(s, 10, 8)
		if err != nil || v == 0 {
			return fmt.Errorf("%s: options:ttl %q is not a number from 1 to 255 (\"inherit\" is not supported by gvs yet)", cfg.Name, s)
		}
		o.encap.TTL = uint8(v)
	}
	if s, ok := opt["tos"]; ok {
		v, err := strconv.ParseUint(s, 0, 8)
		if err != nil || v&3 != 0 {
			return fmt.Errorf("%s: options:tos %q is not a DSCP value from 0 to 252 with the ECN bits zero (\"inherit\" is not supported by gvs yet)", cfg.Name, s)
		}
		o.encap.TOS = uint8(v)
	}
	var err error
	if o.encap.DF, err = tunnelBool(cfg, "df_default", true); err != nil {
		return err
	}
	if o.encap.Csum, err = tunnelBool(cfg, "csum", false); err != nil {
		return err
	}
	if s, ok := opt["dst_port"]; ok {
		v, err := strconv.ParseUint(s, 10, 16)
		if err != nil || v == 0 || (o.encap.Type != packet.TunnelVXLAN && o.encap.Type != packet.TunnelGeneve) {
			return fmt.Errorf("%s: options:dst_port %q is not a UDP port from 1 to 65535 of a vxlan or geneve port", cfg.Name, s)
		}
		o.encap.DstPort = uint16(v)
	}
	o.dstPort = o.encap.DstPort
	if o.dstPort == 0 {
		o.dstPort = packet.VXLANPort
		if o.encap.Type == packet.TunnelGeneve {
			o.dstPort = packet.GenevePort
		}
	}
	return nil
}

// parseTypeSpecific reads seq (GRE) and the erspan_* options. As in
// OVS, erspan_idx and erspan_hwid are hexadecimal.
func (o *tunnelOptions) parseTypeSpecific(cfg Config) error {
	var err error
	if o.encap.Type == packet.TunnelGRE {
		o.encap.Seq, err = tunnelBool(cfg, "seq", false)
		return err
	}
	if o.encap.Type != packet.TunnelERSPAN {
		return nil
	}
	for _, f := range []struct {
		name string
		base int
		max  uint64
		set  func(uint64)
	}{
		{"erspan_ver", 10, 2, func(v uint64) { o.encap.ERSPANVer = uint8(v) }},
		{"erspan_idx", 16, packet.ERSPANMaxIndex, func(v uint64) { o.encap.ERSPANIdx = uint32(v) }},
		{"erspan_dir", 10, 1, func(v uint64) { o.encap.ERSPANDir = uint8(v) }},
		{"erspan_hwid", 16, packet.ERSPANMaxHWID, func(v uint64) { o.encap.ERSPANHWID = uint8(v) }},
	} {
		s, ok := cfg.Options[f.name]
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), f.base, 32)
		if err != nil || v > f.max || (f.name == "erspan_ver" && v == 0) {
			return fmt.Errorf("%s: invalid %s %q (at most %#x)", cfg.Name, f.name, s, f.max)
		}
		f.set(v)
	}
	return nil
}

// tunnelGROOption turns joining received TCP segments off (or on): a gvs
// option, which OVS 3.1 would only warn about.
const tunnelGROOption = "gvs-gro"

// tunnelDirectOption turns direct sending off: a gvs option too.
const tunnelDirectOption = "gvs-direct"

// parseGRO reads gvs-gro and gvs-direct. Joining is on by default for
// VXLAN and Geneve, as behind the kernel's own devices. GRE is the
// tunnel of remote mirrors (S4, S5), whose collectors should see the
// frames as they were copied, as OVS 3.1 hands them on: a GRE port
// joins only with gvs-gro=true (as the kernel's underlay GRO does for
// gretap). ERSPAN never joins.
func (o *tunnelOptions) parseGRO(cfg Config) error {
	erspan := o.encap.Type == packet.TunnelERSPAN
	on, err := tunnelBool(cfg, tunnelGROOption, o.encap.Type != packet.TunnelGRE && !erspan)
	if err != nil {
		return err
	}
	if on && erspan {
		return fmt.Errorf("%s: options:%s=true: %s ports carry remote mirrors and never join segments", cfg.Name, tunnelGROOption, cfg.Type)
	}
	o.gro = on
	o.direct, err = tunnelBool(cfg, tunnelDirectOption, true)
	return err
}

// tunnelBool reads a true/false option.
func tunnelBool(cfg Config, name string, def bool) (bool, error) {
	s, ok := cfg.Options[name]
	if !ok {
		return def, nil
	}
	switch s {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s: options:%s %q is neither true nor false", cfg.Name, name, s)
}

// matches reports how well a received packet's addresses and key match
// this port: -1 for not at all, higher for more specific ports. As OVS
// 3.1 looks a received packet up (tnl_find in its ofproto/tunnel.c),
// an exact key beats key=flow whatever else, then a configured
// remote_ip beats remote_ip=flow, then a configured local_ip beats none,
// which beats local_ip=flow.
func (o *tunnelOptions) matches(typ packet.TunnelType, src, dst netip.Addr, key uint32) int {
	if typ != o.encap.Type {
		return -1
	}
	score := 0
	switch {
	case o.inKeyFlow:
	case key != o.inKey:
		return -1
	default:
		score += 6
	}
	switch {
	case o.remoteFlow:
	case src != o.remote:
		return -1
	default:
		score += 3
	}
	switch {
	case o.localFlow:
	case !o.local.IsValid():
		score++
	case dst != o.local:
		return -1
	default:
		score += 2
	}
	return score
}

// sameReceive reports whether o and p receive exactly the same packets.
func (o *tunnelOptions) sameReceive(p *tunnelOptions) bool {
	return o.encap.Type == p.encap.Type && o.remote == p.remote && o.remoteFlow == p.remoteFlow &&
		o.local == p.local && o.localFlow == p.localFlow && o.inKey == p.inKey && o.inKeyFlow == p.inKeyFlow
}

func pick[T any](cond bool, yes, no T) T {
	if cond {
		return yes
	}
	return no
}
