package ofproto

import (
	"encoding/binary"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// maxResubmitDepth bounds how deeply resubmit and goto_table nest, and
// maxResubmits how many table lookups one packet makes in all, as OVS's
// limits of 64 and 64*64: beyond them the packet is dropped.
const (
	maxResubmitDepth = 64
	maxResubmits     = maxResubmitDepth * maxResubmitDepth
)

// tooDeep counts packets dropped for going over those limits.
var tooDeep = coverage.New("ofproto_xlate_too_deep")

// maxDatapathActions bounds the datapath actions of one packet. Flows
// that fit in flow-mods can fan out, within the resubmit limits, to
// millions of outputs (seconds and hundreds of MB per packet); OVS drops
// a packet whose datapath actions outgrow a netlink attribute (64 KiB,
// some 8000 outputs), and so does gvs past this many.
const maxDatapathActions = 8192

// tooLarge counts packets dropped for going over maxDatapathActions.
var tooLarge = coverage.New("ofproto_xlate_too_large")

// checkSize drops the packet once its datapath actions are too many.
func checkSize(x *xlate) bool {
	if len(x.out.Actions) <= maxDatapathActions {
		return true
	}
	if !x.aborted {
		tooLarge.Inc()
	}
	x.aborted = true
	return false
}

// ofctx is one bridge's pass of a frame through its OpenFlow tables. key
// is the working flow key: OpenFlow in_port, fields as the actions so far
// rewrote them, registers and metadata; lookups and actions read it, and
// the datapath actions emitted keep the packet in step with it.
type ofctx struct {
	b     *Bridge
	cfg   *Config
	in    *Port
	f     frame      // the frame as it entered the bridge
	key   packet.Key // the working key
	entry packet.Key // the key as the frame entered, for restore
	vlans VLANs      // the frame's VLAN headers as the actions left them
	depth int        // patch depth
	cur   uint8      // the table whose rule's actions are running
	nest  int        // resubmit depth
	// written has bit 1<<f set for each datapath field a set-field
	// rewrote; mirrored says an output happened, so mirrors apply.
	written  uint16
	mirrored bool
	stop     bool  // dec_ttl ran out: the current rule's actions end
	rule     *Rule // the rule whose actions are running
	clones   int   // clone(...) nesting
	pktOut   bool  // a packet-out's actions: output:TABLE is valid
}

// table looks the working key up in table id and runs the actions of the
// rule it finds. A miss does nothing, so a miss in table 0 drops (as OVS
// does without a controller) and a resubmit to a table without a match
// continues with the next action.
//
// A miss in table 0 or after goto_table (may, as OVS names it, send a
// packet-in) goes to the controllers when one wants table misses.
func (c *ofctx) table(x *xlate, id uint8, mayPacketIn bool) {
	var wc packet.Key
	r := c.b.Tables.Lookup(id, &c.key, &wc)
	wc.ConjID = 0 // a table reads conj_id but no packet carries one
	x.out.Mask.OrMask(&wc)
	if x.trace != nil {
		x.trace.Lookup(id, r, c.nest)
	}
	if r == nil {
		if mayPacketIn {
			c.miss(x, id)
		}
		return
	}
	x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectAccount, Accounter: r})
	acts := r.Actions()
	if !supported(acts) {
		// The packet is dropped whole rather than half-forwarded.
		unsupportedActions.Inc()
		x.aborted = true
		return
	}
	prev, prevRule := c.cur, c.rule
	c.cur, c.rule = id, r
	c.run(x, acts)
	c.cur, c.rule, c.stop = prev, prevRule, false
}

// resubmit looks the frame up in table id as if it had entered on port
// inPort (flow.PortInPort: its in_port), which is restored after.
func (c *ofctx) resubmit(x *xlate, inPort uint32, id uint8, mayPacketIn bool) {
	if c.nest >= maxResubmitDepth || x.resubmits >= maxResubmits {
		if !x.aborted {
			tooDeep.Inc()
		}
		x.aborted = true
		return
	}
	x.resubmits++
	c.nest++
	saved := c.key.InPort
	if inPort != flow.PortInPort {
		c.key.InPort = inPort
	}
	c.table(x, id, mayPacketIn)
	c.key.InPort = saved
	c.nest--
}

// supported reports whether translation executes every action of acts.
// The others are still to come. (conjunction does nothing when it runs:
// only a packet-out can run one, a lookup never returns a clause flow.)
func supported(acts []flow.Action) bool {
	for _, a := range acts {
		switch a := a.(type) {
		case flow.Output:
			if a.Port == flow.PortTable || a.Port == flow.PortController || a.Port >= flow.PortNone {
				return false
			}
		case flow.SetField:
			if _, ok := writable(a.Field); !ok && a.Field != "vlan_vid" && a.Field != "vlan_pcp" && !tunIPv6(a.Field) {
				return false
			}
		case flow.Load:
			if f, ok := writable(a.Dst.Field); (!ok || f.width > 64) && !tunIPv6(a.Dst.Field) {
				return false
			}
		case flow.Move:
			if _, ok := writable(a.Dst.Field); !ok && !tunIPv6(a.Dst.Field) {
				return false
			}
			if _, ok := readable(a.Src.Field); !ok && !tunIPv6(a.Src.Field) {
				return false
			}
		case flow.DecTTL:
			if len(a.IDs) > 0 {
				return false
			}
		case flow.CT:
			if a.ZoneSrc.Field != "" {
				if _, ok := readable(a.ZoneSrc.Field); !ok {
					return false
				}
			}
		case flow.CTClear, flow.Resubmit, flow.GotoTable, flow.SetVLANVID, flow.SetVLANPCP, flow.StripVLAN,
			flow.PushVLAN, flow.SetEthAddr, flow.SetIPv4Addr, flow.SetIPTOS, flow.SetIPECN,
			flow.SetIPTTL, flow.SetL4Port, flow.Note, flow.SetTunnel, flow.Conjunction:
		case flow.Clone:
			if !supported(a.Actions) {
				return false
			}
		case flow.Group:
		case flow.OutputReg:
			if _, ok := readable(a.Src.Field); !ok {
				return false
			}
		case flow.Learn:
			// limit and result_dst (OVS's learn2) are not implemented.
			if a.Limit != 0 || a.ResultDst.Field != "" {
				return false
			}
		case flow.Controller:
			if a.Pause {
				return false // continuations are not implemented
			}
		default:
			return false
		}
	}
	return true
}

// run executes a rule's actions.
func (c *ofctx) run(x *xlate, acts []flow.Action) {
	for _, a := range acts {
		if x.aborted || c.stop || !checkSize(x) {
			return
		}
		if x.trace != nil {
			x.trace.Action(a, c.nest)
		}
		switch a := a.(type) {
		case flow.Output:
			c.output(x, a.Port)
		case flow.Resubmit:
			id := a.Table
			if id == flow.TableNone {
				id = c.cur
			}
			c.resubmit(x, a.InPort, id, false)
		case flow.GotoTable:
			c.resubmit(x, flow.PortInPort, a.Table, true)
		case flow.CT:
			c.ct(x, a)
		case flow.CTClear:
			c.ctClear(x)
		case flow.Note, flow.Conjunction:
		case flow.Clone:
			c.clone(x, a.Actions)
		case flow.Learn:
			c.learn(x, a)
		case flow.OutputReg:
			f, _ := readable(a.Src.Field)
			f.maskAll(&x.out.Mask)
			c.output(x, uint32(f.get(&c.key)>>a.Src.Start&bitsMask(a.Src.Bits)))
		case flow.Controller:
			c.controller(x, a)
		case flow.Group:
			c.group(x, a.ID)
		default:
			c.edit(x, a)
		}
	}
}

// maxCloneNest bounds nested clone(...) actions: each is a datapath
// clone, and translation adds one of its own around an output that
// pops VLAN headers, within the datapath's limit of 8.
const maxCloneNest = 4

// clone runs acts on a copy of the packet: their rewrites, VLAN edits and
// register changes end with them, as ovs-actions(7) says; their outputs
// and packet-ins happen. A dec_ttl that runs out stops only the clone.
func (c *ofctx) clone(x *xlate, acts []flow.Action) {
	if c.clones >= maxCloneNest {
		if !x.aborted {
			tooDeep.Inc()
		}
		x.aborted = true
		return
	}
	key, vlans, tunSet := c.key, c.vlans, x.tunSet
	cur, ncur, npushed := x.cur, x.ncur, x.npushed
	start := len(x.out.Actions)
	x.out.Actions = append(x.out.Actions, datapath.Clone(0))
	c.clones++
	c.run(x, acts)
	c.clones--
	if n := len(x.out.Actions) - start - 1; n > 0 {
		x.out.Actions[start].Len = uint32(n)
	} else {
		x.out.Actions = x.out.Actions[:start] // nothing to do on the copy
	}
	c.key, c.vlans, c.stop = key, vlans, false
	x.cur, x.ncur, x.npushed, x.tunSet = cur, ncur, npushed, tunSet
}

// edit executes an action that changes the packet or the working key.
func (c *ofctx) edit(x *xlate, a flow.Action) {
	switch a := a.(type) {
	case flow.SetVLANVID:
		c.setVLAN(a.VID, packet.VLANVIDMask)
	case flow.SetVLANPCP:
		c.setVLAN(uint16(a.PCP)<<packet.VLANPCPShift, 7<<packet.VLANPCPShift)
	case flow.StripVLAN:
		c.vlans.pop()
		c.syncVLANs()
	case flow.PushVLAN:
		// The new header takes the VID and PCP of the one it covers.
		c.vlans.push(packet.VLANHeader{TPID: a.Ethertype, TCI: c.vlans[0].TCI})
		c.syncVLANs()
	case flow.SetField:
		v := binary.BigEndian.Uint64(a.Value[8:])
		m := binary.BigEndian.Uint64(a.Mask[8:])
		switch a.Field {
		case "vlan_vid":
			c.setVLAN(uint16(v)&packet.VLANVIDMask, uint16(m)&packet.VLANVIDMask)
		case "vlan_pcp":
			c.setVLAN(uint16(v&7)<<packet.VLANPCPShift, uint16(m&7)<<packet.VLANPCPShift)
		case "tun_ipv6_src", "tun_ipv6_dst":
			c.setTunIPv6(x, a)
		default:
			c.write(x, a.Field, v, m)
		}
	case flow.Load:
		v := binary.BigEndian.Uint64(a.Value[8:])
		if tunIPv6(a.Dst.Field) {
			c.writeTunIPv6(x, a.Dst, binary.BigEndian.Uint64(a.Value[:8]), v)
			return
		}
		c.write(x, a.Dst.Field, v<<a.Dst.Start, bitsMask(a.Dst.Bits)<<a.Dst.Start)
	case flow.Move:
		c.move(x, a)
	case flow.SetEthAddr:
		c.write(x, pick(a.Dst, "eth_dst", "eth_src"), mac48(a.Addr), ^uint64(0))
	case flow.SetIPv4Addr:
		c.write(x, pick(a.Dst, "ip_dst", "ip_src"), uint64(binary.BigEndian.Uint32(a.Addr[:])), ^uint64(0))
	case flow.SetIPTOS:
		c.write(x, "nw_tos", uint64(a.TOS), 0xfc)
	case flow.SetIPECN:
		c.write(x, "nw_ecn", uint64(a.ECN), 3)
	case flow.SetIPTTL:
		c.write(x, "nw_ttl", uint64(a.TTL), 0xff)
	case flow.SetL4Port:
		c.write(x, pick(a.Dst, "tcp_dst", "tcp_src"), uint64(a.Port), 0xffff)
	case flow.DecTTL:
		c.decTTL(x)
	case flow.SetTunnel:
		c.setTunnel(x, a.ID)
	}
}

// move executes move: a 128-bit tunnel field on either side goes
// through readTunIPv6 or writeTunIPv6, anything else is 64 bits wide.
func (c *ofctx) move(x *xlate, a flow.Move) {
	var hi, lo uint64
	if tunIPv6(a.Src.Field) {
		hi, lo = c.readTunIPv6(x, a.Src)
	} else {
		src, _ := readable(a.Src.Field)
		src.maskAll(&x.out.Mask)
		lo = src.get(&c.key) >> a.Src.Start & bitsMask(a.Src.Bits)
	}
	if tunIPv6(a.Dst.Field) {
		c.writeTunIPv6(x, a.Dst, hi, lo)
		return
	}
	c.write(x, a.Dst.Field, lo<<a.Dst.Start, bitsMask(a.Dst.Bits)<<a.Dst.Start)
}

// decTTL decrements an IPv4 TTL. A packet whose TTL would run out stops
// the current rule's actions, as OVS does when no controller takes it;
// other packets than IP are left alone.
func (c *ofctx) decTTL(x *xlate) {
	x.out.Mask.DlType = 0xffff
	switch c.key.DlType {
	case packet.EtherTypeIPv4:
	case packet.EtherTypeIPv6:
		// The datapath does not rewrite the hop limit yet.
		unsupportedActions.Inc()
		x.aborted = true
		return
	default:
		return
	}
	x.out.Mask.NwTTL = 0xff
	if c.key.NwTTL <= 1 {
		c.stop = true
		return
	}
	c.write(x, "nw_ttl", uint64(c.key.NwTTL-1), 0xff)
}

// setVLAN rewrites the bits mask of the outer VLAN header's TCI to v,
// pushing an 802.1Q header first if the frame has none.
func (c *ofctx) setVLAN(v, mask uint16) {
	if c.vlans[0].TCI == 0 {
		c.vlans.push(packet.VLANHeader{TPID: packet.EtherTypeVLAN})
	}
	h := &c.vlans[0]
	h.TCI = h.TCI&^mask | v&mask
	c.syncVLANs()
}

// syncVLANs puts the VLAN headers into the working key.
func (c *ofctx) syncVLANs() {
	c.key.VLANTCI, c.key.InnerVLANTCI = keyTCI(c.vlans[0]), keyTCI(c.vlans[1])
}

// write sets the bits mask of field name to v in the working key and, for
// a packet field, in the packet. The whole field joins the flow mask: the
// new value depends on the old one where mask leaves bits alone, and
// later lookups read it. A packet field the frame does not have (an IPv4
// address of an ARP frame) is left alone.
func (c *ofctx) write(x *xlate, name string, v, mask uint64) {
	f, ok := writable(name)
	if !ok {
		return
	}
	if f.prereq != nil && !f.prereq(&c.key, &x.out.Mask) {
		return
	}
	if _, bit, ok := tunnelField(name); ok {
		x.tunSet |= bit
	}
	switch {
	case f.dp == datapath.FieldIPv4TOS:
		// nw_tos, ip_dscp and nw_ecn are parts of one byte, written whole.
		x.out.Mask.NwTOS = 0xff
	case f.dp != 0:
		f.maskAll(&x.out.Mask)
	}
	if name == "nw_tos" {
		mask &= 0xfc // the DSCP bits in their place; ECN is nw_ecn's
	}
	nv := f.get(&c.key)&^mask | v&mask&bitsMask(uint16(f.width))
	f.set(&c.key, nv)
	if f.dp == 0 {
		return
	}
	if f.dp == datapath.FieldIPv4TOS {
		nv = uint64(c.key.NwTOS) // nw_tos and nw_ecn are both halves of it
	}
	c.written |= 1 << f.dp
	x.out.Actions = append(x.out.Actions, datapath.SetField(f.dp, nv))
}

// restore sets the packet fields the actions rewrote back to what they
// were as the frame entered, so that mirror copies, which follow, are
// copies of the frame as received.
func (c *ofctx) restore(x *xlate) {
	if c.written == 0 {
		return
	}
	for _, name := range []string{"eth_src", "eth_dst", "ip_src", "ip_dst", "nw_tos", "nw_ttl", "tcp_src", "tcp_dst"} {
		f, _ := writable(name)
		if c.written&(1<<f.dp) != 0 {
			x.out.Actions = append(x.out.Actions, datapath.SetField(f.dp, f.get(&c.entry)))
		}
	}
}

// output executes output:port, for an OpenFlow port number or one of the
// reserved ports. As OpenFlow requires, a frame never goes back out of
// its in_port unless IN_PORT says so; mirror output ports get nothing.
func (c *ofctx) output(x *xlate, port uint32) {
	switch port {
	case flow.PortTable:
		if c.pktOut {
			c.resubmit(x, flow.PortInPort, 0, true)
		}
	case flow.PortNormal:
		if c.in.DPPort == PacketOutDPPort {
			// As OVS: NORMAL has no input port to switch from.
			if x.trace != nil {
				x.trace.Note("no input port, dropping", c.nest)
			}
			return
		}
		f := c.f
		f.src, f.dst, f.vlans, f.key = c.key.DlSrc, c.key.DlDst, c.vlans, &c.key
		x.tnest = c.nest
		if c.b.normal(x, c.cfg, c.in, f, c.depth) {
			c.mirrored = true
		}
	case flow.PortFlood, flow.PortAll:
		// FLOOD leaves out the ports with NO_FLOOD, ALL does not.
		for _, p := range c.cfg.Flood {
			if p.OFPort != c.key.InPort && (port == flow.PortAll || c.b.PortConfig(p.OFPort)&PortNoFlood == 0) {
				c.outputTo(x, p)
			}
		}
	case flow.PortInPort:
		if p := c.port(c.key.InPort); p != nil {
			c.outputTo(x, p)
		}
	default:
		if p := c.port(port); p != nil && port != c.key.InPort {
			c.outputTo(x, p)
		}
	}
}

// port returns the bridge's port with OpenFlow number n, or nil.
func (c *ofctx) port(n uint32) *Port {
	for _, p := range c.cfg.Flood {
		if p.OFPort == n {
			return p
		}
	}
	return nil
}

// outputTo sends the frame as the actions left it out of p, or across p
// into the peer bridge when p is a patch port. No port VLAN
// configuration applies: that is NORMAL's.
func (c *ofctx) outputTo(x *xlate, p *Port) {
	if p.MirrorOut || !c.b.mayForward(x, p) {
		return
	}
	want, n := c.vlans.wire()
	x.outs = append(x.outs, p)
	c.mirrored = true
	f := c.f
	if !p.IsPatch() {
		x.emitTunnel(p, &c.key)
		x.emitOutput(want, n, p.DPPort, &f)
		return
	}
	if c.depth >= maxPatchDepth {
		return
	}
	peer := p.PeerBridge
	pcfg := peer.cfg.Load()
	pin, ok := pcfg.Ports[p.PeerDPPort]
	if !ok {
		return
	}
	f.src, f.dst, f.vlans, f.key = c.key.DlSrc, c.key.DlDst, want, &c.key
	peer.pipeline(x, pcfg, pin, f, c.depth+1)
}

// keyField is a flow key field that actions read or write.
type keyField struct {
	dp     datapath.Field // the packet field; 0 for registers and metadata
	width  uint
	get    func(k *packet.Key) uint64
	set    func(k *packet.Key, v uint64)
	prereq func(k *packet.Key, m *datapath.Key) bool // the frame has the field (and the mask says what was checked)
}

// maskAll puts the whole field into m.
func (f *keyField) maskAll(m *datapath.Key) { f.set(&m.Key, bitsMask(uint16(f.width))) }

func isIPv4(k *packet.Key, m *datapath.Key) bool {
	m.DlType = 0xffff
	return k.DlType == packet.EtherTypeIPv4
}

func isTCPorUDP(k *packet.Key, m *datapath.Key) bool {
	if !isIPv4(k, m) {
		return false
	}
	m.NwProto = 0xff
	return k.NwProto == 6 || k.NwProto == 17
}

var (
	fieldEthSrc = keyField{datapath.FieldEthSrc, 48, func(k *packet.Key) uint64 { return mac48(k.DlSrc) },
		func(k *packet.Key, v uint64) { k.DlSrc = macOf(v) }, nil}
	fieldEthDst = keyField{datapath.FieldEthDst, 48, func(k *packet.Key) uint64 { return mac48(k.DlDst) },
		func(k *packet.Key, v uint64) { k.DlDst = macOf(v) }, nil}
	fieldIPSrc = keyField{datapath.FieldIPv4Src, 32, func(k *packet.Key) uint64 { return uint64(binary.BigEndian.Uint32(k.NwSrc[:])) },
		func(k *packet.Key, v uint64) { binary.BigEndian.PutUint32(k.NwSrc[:], uint32(v)) }, isIPv4}
	fieldIPDst = keyField{datapath.FieldIPv4Dst, 32, func(k *packet.Key) uint64 { return uint64(binary.BigEndian.Uint32(k.NwDst[:])) },
		func(k *packet.Key, v uint64) { binary.BigEndian.PutUint32(k.NwDst[:], uint32(v)) }, isIPv4}
	fieldTOS = keyField{datapath.FieldIPv4TOS, 8, func(k *packet.Key) uint64 { return uint64(k.NwTOS) },
		func(k *packet.Key, v uint64) { k.NwTOS = uint8(v) }, isIPv4}
	fieldDSCP = keyField{datapath.FieldIPv4TOS, 6, func(k *packet.Key) uint64 { return uint64(k.NwTOS >> 2) },
		func(k *packet.Key, v uint64) { k.NwTOS = k.NwTOS&3 | uint8(v)<<2 }, isIPv4}
	fieldECN = keyField{datapath.FieldIPv4TOS, 2, func(k *packet.Key) uint64 { return uint64(k.NwTOS & 3) },
		func(k *packet.Key, v uint64) { k.NwTOS = k.NwTOS&^3 | uint8(v)&3 }, isIPv4}
	fieldTTL = keyField{datapath.FieldIPv4TTL, 8, func(k *packet.Key) uint64 { return uint64(k.NwTTL) },
		func(k *packet.Key, v uint64) { k.NwTTL = uint8(v) }, isIPv4}
	fieldTpSrc = keyField{datapath.FieldTpSrc, 16, func(k *packet.Key) uint64 { return uint64(k.TpSrc) },
		func(k *packet.Key, v uint64) { k.TpSrc = uint16(v) }, isTCPorUDP}
	fieldTpDst = keyField{datapath.FieldTpDst, 16, func(k *packet.Key) uint64 { return uint64(k.TpDst) },
		func(k *packet.Key, v uint64) { k.TpDst = uint16(v) }, isTCPorUDP}
	fieldMetadata = keyField{0, 64, func(k *packet.Key) uint64 { return k.Metadata },
		func(k *packet.Key, v uint64) { k.Metadata = v }, nil}
	fieldRegs  [packet.NumRegs]keyField
	fieldXRegs [packet.NumRegs / 2]keyField
	// fieldInPort is the OpenFlow in_port, which move can read.
	fieldInPort = keyField{0, 16, func(k *packet.Key) uint64 { return uint64(k.InPort) },
		func(k *packet.Key, v uint64) { k.InPort = uint32(v) }, nil}
)

func init() {
	for i := range fieldRegs {
		fieldRegs[i] = keyField{0, 32, func(k *packet.Key) uint64 { return uint64(k.Regs[i]) },
			func(k *packet.Key, v uint64) { k.Regs[i] = uint32(v) }, nil}
	}
	for i := range fieldXRegs {
		fieldXRegs[i] = keyField{0, 64, func(k *packet.Key) uint64 { return uint64(k.Regs[2*i])<<32 | uint64(k.Regs[2*i+1]) },
			func(k *packet.Key, v uint64) { k.Regs[2*i], k.Regs[2*i+1] = uint32(v>>32), uint32(v) }, nil}
	}
}

// writable returns the field set_field, load and move can write by its
// canonical name.
func writable(name string) (*keyField, bool) {
	switch name {
	case "eth_src":
		return &fieldEthSrc, true
	case "eth_dst":
		return &fieldEthDst, true
	case "ip_src":
		return &fieldIPSrc, true
	case "ip_dst":
		return &fieldIPDst, true
	case "nw_tos":
		return &fieldTOS, true
	case "ip_dscp":
		return &fieldDSCP, true
	case "nw_ecn":
		return &fieldECN, true
	case "nw_ttl":
		return &fieldTTL, true
	case "tcp_src", "udp_src":
		return &fieldTpSrc, true
	case "tcp_dst", "udp_dst":
		return &fieldTpDst, true
	case "metadata":
		return &fieldMetadata, true
	}
	if f, _, ok := tunnelField(name); ok {
		return f, true
	}
	if i, ok := regIndex(name, "reg", packet.NumRegs); ok {
		return &fieldRegs[i], true
	}
	if i, ok := regIndex(name, "xreg", packet.NumRegs/2); ok {
		return &fieldXRegs[i], true
	}
	return nil, false
}

// readable returns a field move can read.
func readable(name string) (*keyField, bool) {
	if name == "in_port" {
		return &fieldInPort, true
	}
	return writable(name)
}

// regIndex parses "reg7" (with prefix "reg") into 7, below n.
func regIndex(name, prefix string, n int) (int, bool) {
	if len(name) <= len(prefix) || len(name) > len(prefix)+2 || name[:len(prefix)] != prefix {
		return 0, false
	}
	i := 0
	for _, ch := range name[len(prefix):] {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		i = i*10 + int(ch-'0')
	}
	return i, i < n && (i < 10 || name[len(prefix)] != '0')
}

// bitsMask is a mask of the low n bits.
func bitsMask(n uint16) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

func mac48(a [6]byte) uint64 {
	var v uint64
	for _, b := range a {
		v = v<<8 | uint64(b)
	}
	return v
}

func macOf(v uint64) (a [6]byte) {
	for i := range a {
		a[i] = byte(v >> (40 - 8*i))
	}
	return a
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}
