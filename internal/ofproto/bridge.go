// Package ofproto is a bridge: its ports and their VLAN configuration, its
// MAC learning table, its mirrors, and the translation of a received
// packet into what NORMAL switching and mirroring call for (and, as they
// arrive, OpenFlow tables). It decides; the datapath package executes.
//
// A translation reads, and never changes, the bridge: it returns datapath
// actions, the mask of the key fields it looked at, and its side effects
// (learn this source, count this mirror) as data, so that the datapath
// can cache it and apply the effects to every packet it serves. Anything
// the mask cannot describe (configuration, MAC table contents) calls
// datapath.Invalidate when it changes.
package ofproto

import (
	"fmt"
	"sync"
	"sync/atomic"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// LocalPort is the OpenFlow number of a bridge's own internal port.
const LocalPort = 65534

// maxPatchDepth bounds translation across chains of patch ports, so that a
// loop of patches cannot recurse forever.
const maxPatchDepth = 8

// Port is a bridge port as translation sees it.
type Port struct {
	Name   string
	OFPort uint32
	DPPort uint32 // datapath port number
	VLAN   PortVLAN

	// MirrorOut marks a mirror's output port: it takes no part in normal
	// switching (nothing is sent to it, what it receives is dropped).
	MirrorOut bool

	// For a patch port: the bridge and datapath port of its peer.
	PeerBridge *Bridge
	PeerDPPort uint32

	// TunnelFlow, for a tunnel port, says which of its outer values
	// (remote_ip, local_ip, key) come from the flow's tun_* fields: an
	// output to it carries them (see emitTunnel).
	TunnelFlow netdev.TunnelFlow

	// Bond, for a member of a bond, is the bond: NORMAL switches
	// through the bond, not the member (see bond.go).
	Bond *Bond
	// Dev is the port's device, whose link state says whether buckets
	// watching the port are live; nil for a patch port.
	Dev netdev.Netdev
}

// IsPatch reports whether p is one end of a patch.
func (p *Port) IsPatch() bool { return p.PeerBridge != nil }

// Config is one immutable configuration of a bridge.
type Config struct {
	Ports      map[uint32]*Port // by datapath port
	Flood      []*Port          // every port, in OpenFlow port order
	FloodVLANs VLANSet          // VLANs on which nothing is learned
	Mirrors    []*Mirror
	// ForwardBPDU is other_config:forward-bpdu: whether NORMAL forwards
	// frames to the reserved 01:80:c2:00:00:0x addresses (STP, LACP,
	// LLDP). Off by default, as in OVS; mirrors copy them either way.
	ForwardBPDU bool
	// VLANLimit is how many VLAN headers of a received frame NORMAL
	// switching looks at: the Open_vSwitch table's vlan-limit, capped
	// at packet.MaxVLANs. 0 means 1, OVS's default; further headers are
	// payload, which is why a customer frame tagged twice keeps both
	// tags in a service VLAN.
	VLANLimit int
}

// vlanLimit returns VLANLimit with its default and cap applied.
func (c *Config) vlanLimit() int {
	if c.VLANLimit <= 0 {
		return 1
	}
	return min(c.VLANLimit, packet.MaxVLANs)
}

// Bridge is one bridge. Its configuration is swapped atomically; its MAC
// table lives as long as the bridge.
type Bridge struct {
	Name string
	MACs *MACTable
	// Tables are the bridge's OpenFlow tables, which live as long as
	// the bridge; a new bridge has OVS's "priority=0 actions=NORMAL".
	Tables *Tables
	// Groups is the bridge's OpenFlow group table.
	Groups *Groups
	cfg    atomic.Pointer[Config]

	sink     atomic.Pointer[sinkHolder] // packet-ins go here (the OpenFlow channel)
	failOpen atomic.Bool                // see SetFailOpen
	missIn   atomic.Bool                // see SetMissPacketIn
	frag     atomic.Uint32              // FragMode; see SetFragMode

	// portCfg holds the ports' OpenFlow config bits (portconfig.go),
	// by OpenFlow port, copied on write; portCfgMu orders the writes.
	portCfg   atomic.Pointer[map[uint32]portCfgEntry]
	portCfgMu sync.Mutex
}

// NewBridge returns a bridge with no ports.
func NewBridge(name string, macTableSize, macAging int) *Bridge {
	b := &Bridge{Name: name, MACs: NewMACTable(macTableSize, macAging), Tables: NewBridgeTables(TablesOptions{})}
	b.cfg.Store(&Config{Ports: map[uint32]*Port{}})
	b.Groups = newGroups(b.Tables, func() []*Port { return b.cfg.Load().Flood })
	return b
}

// SetConfig installs a new configuration; the datapath's cached flows,
// made with the old one, are stale from now on. The ports c lacks lose
// their OpenFlow config bits.
func (b *Bridge) SetConfig(c *Config) {
	b.setConfigPruned(c)
	datapath.Invalidate()
}

// Config returns the current configuration.
func (b *Bridge) Config() *Config { return b.cfg.Load() }

// xlate is a port thread's translation scratch space, kept in
// datapath.Xlate.Ctx so that translating allocates nothing once warm.
type xlate struct {
	key *packet.Key
	out *datapath.Xlate
	// base holds the first nbase VLAN headers of the frame as the
	// datapath holds it; cur holds the ncur headers that the actions
	// emitted so far leave in their place, which the next output's VLAN
	// actions start from: npushed pushed ones over base.
	base, cur            VLANs
	nbase, ncur, npushed int
	outs                 []*Port  // output ports of the bridges being translated, stacked
	copied               []uint32 // datapath ports that already got a mirror copy
	resubmits            int      // table lookups after table 0, in every bridge
	aborted              bool     // the packet is dropped: no action is executed
	// tunSet has a tunSet* bit for each tunnel field an action wrote:
	// an output by the flow then does not depend on the received value.
	tunSet uint8
	// tunEmitted: an output got tunnel metadata (ActSetTunnel), which
	// the datapath keeps for the outputs after it.
	tunEmitted bool
	// trace, when set, watches the translation (ofproto/trace); tnest
	// is the resubmit depth NORMAL's notes are indented to.
	trace Tracer
	tnest int
	final packet.Key // with trace: the working key as the first bridge's tables left it
	// pktOut, for a packet-out, are its actions, which run in place of
	// table 0 in the first bridge.
	pktOut []flow.Action
}

// frame is what translation knows of a packet inside one bridge.
type frame struct {
	src, dst [6]byte
	vlans    VLANs               // its VLAN headers as the bridge receives it
	copy     *datapath.CopyStats // non-nil when this is a mirror copy
	key      *packet.Key         // the sending bridge's working key, for a frame crossing a patch
	snaplen  uint32
}

// Translate implements datapath.Translator with NORMAL switching and
// mirroring. It reads the bridge's configuration and MAC table and
// records in x.Mask the key fields it looked at: the input port, the
// VLAN headers NORMAL sees (their TCIs and TPIDs), both Ethernet
// addresses, and whatever the mirrors' filters read. MAC learning and
// mirror statistics are side effects in x.Effects; a learned destination
// bounds x.TTL by its remaining age. What the mask cannot express (the
// configuration, the MAC table's contents) changes the datapath's
// generation when it changes.
func (b *Bridge) Translate(pkt *datapath.Packet, out *datapath.Xlate) {
	cfg := b.cfg.Load()
	// A recirculated packet's translation goes on from another point
	// than a received one's, so every translation depends on the id.
	out.Mask.InPort, out.Mask.RecircID = ^uint32(0), ^uint32(0)
	maskTunnelRx(&out.Mask.Key, &pkt.Key.Key)
	in, ok := cfg.Ports[pkt.InPort]
	if !ok && pkt.Key.RecircID == 0 {
		return
	}
	x, _ := out.Ctx.(*xlate)
	if x == nil {
		x = &xlate{}
		out.Ctx = x
	}
	x.key, x.out = &pkt.Key.Key, out
	x.outs, x.copied = x.outs[:0], x.copied[:0]
	x.resubmits, x.aborted, x.tunSet, x.tunEmitted = 0, false, 0, false
	limit := cfg.vlanLimit()
	maskVLANs(&out.Mask, limit)
	x.base, x.nbase = packet.VLANHeaders(pkt.Frame, &pkt.Off, limit)
	for i := range x.base {
		x.base[i].TCI &^= dei
	}
	x.cur, x.ncur, x.npushed = x.base, x.nbase, 0
	k := &pkt.Key
	if k.RecircID == 0 && in.Bond != nil && lacpRx(in, pkt, out) {
		return // a LACPDU, taken by the bond's LACP
	}
	f := frame{src: k.DlSrc, dst: k.DlDst, vlans: x.base}
	if k.RecircID != 0 {
		resume(x, k.RecircID, f)
	} else {
		b.pipeline(x, cfg, in, f, 0)
	}
	if checkSize(x); x.aborted {
		out.Actions = out.Actions[:0]
	}
}

// pipeline runs a frame that entered the bridge on port in through its
// OpenFlow tables, starting with table 0 (see ofctx), and then sends
// the mirror copies its outputs call for. A bridge without tables
// switches with NORMAL.
func (b *Bridge) pipeline(x *xlate, cfg *Config, in *Port, f frame, depth int) {
	b.pipelineFrom(x, cfg, in, f, depth, nil)
}

// pipelineFrom is pipeline, or with fz set the rest of a pipeline that
// froze at a ct(table=N) action: from table N, with the registers and
// metadata it had.
func (b *Bridge) pipelineFrom(x *xlate, cfg *Config, in *Port, f frame, depth int, fz *frozen) {
	base := len(x.outs)
	mirrored := false
	pktOut := x.pktOut != nil && depth == 0
	// The fragment mode is the receiving bridge's: a frame crossing a
	// patch was judged by the first one.
	if !b.mayReceive(x, in, &f) {
		return // not mirrored either, as in OVS
	}
	var noPorts bool
	if f.key == nil {
		var drop bool
		if drop, noPorts = b.fragments(x); drop {
			return
		}
	}
	if b.Tables == nil || b.failOpen.Load() && !pktOut {
		mirrored = b.normal(x, cfg, in, f, depth)
	} else {
		c := ofctx{b: b, cfg: cfg, in: in, f: f, vlans: f.vlans, depth: depth}
		// Rules match OpenFlow port numbers; the key has datapath
		// ones. The in_port bits are in the mask already.
		if f.key != nil {
			// Across a patch the frame is as the other bridge's
			// actions left it (derived from key bits already in the
			// mask), with registers and metadata cleared, as in OVS.
			c.key = *f.key
			c.key.VLANTCI, c.key.InnerVLANTCI = keyTCI(f.vlans[0]), keyTCI(f.vlans[1])
			c.key.DlSrc, c.key.DlDst = f.src, f.dst
			c.key.Regs, c.key.Metadata = [packet.NumRegs]uint32{}, 0
		} else {
			c.key = *x.key
			if depth > 0 {
				c.key.VLANTCI, c.key.InnerVLANTCI = keyTCI(f.vlans[0]), keyTCI(f.vlans[1])
				c.key.DlSrc, c.key.DlDst = f.src, f.dst
			}
		}
		if noPorts {
			c.key.TpSrc, c.key.TpDst = 0, 0
		}
		c.key.InPort = in.OFPort
		table := uint8(0)
		if fz != nil {
			c.key.Regs, c.key.Metadata, table = fz.regs, fz.metadata, fz.table
		}
		c.entry = c.key
		if x.trace != nil {
			x.trace.Bridge(b, 0)
			if fz != nil {
				x.trace.Note(fmt.Sprintf("thaw: resuming from table %d", table), 0)
			}
		}
		if pktOut {
			c.pktOut = true
			c.run(x, x.pktOut)
		} else {
			// A miss in the first table of a pass (table 0, or the
			// table a ct(table=N) resumes at) may be a packet-in.
			c.table(x, table, true)
		}
		if x.trace != nil && depth == 0 {
			x.final = c.key
		}
		mirrored = c.mirrored && !x.aborted
		// A patch peer's rewrites end with its pass, as OVS's do;
		// mirror copies are of the frame as it entered.
		if depth > 0 || mirrored && len(cfg.Mirrors) > 0 {
			c.restore(x)
		}
	}
	if mirrored && len(cfg.Mirrors) > 0 && !in.MirrorOut {
		// output_vlan mirrors look at the destination.
		x.out.Mask.DlDst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
		if vs, ok := in.VLAN.Input(f.vlans); ok {
			b.mirror(x, cfg, in, x.outs[base:], f, vs, depth)
		}
	}
	x.outs = x.outs[:base]
}

// keyTCI is a VLAN header's TCI as the flow key holds it: 0 for none.
func keyTCI(h packet.VLANHeader) uint16 {
	if h.TCI == 0 {
		return 0
	}
	return packet.KeyTCI(h.TCI)
}

// isNormal reports whether acts are NORMAL and nothing else.
func isNormal(acts []flow.Action) bool {
	if len(acts) != 1 {
		return false
	}
	o, ok := acts[0].(flow.Output)
	return ok && o.Port == flow.PortNormal
}

// unsupportedActions counts packets dropped because their rule had
// actions translation does not execute yet.
var unsupportedActions = coverage.New("ofproto_xlate_unsupported_actions")

// maskVLANs marks the VLAN headers that NORMAL reads (the first limit,
// or the absence of them) as looked at.
func maskVLANs(m *datapath.Key, limit int) {
	m.VLANTCI = 0xffff
	m.VLANTPID[0] = 0xffff
	if limit > 1 {
		m.InnerVLANTCI = 0xffff
		m.VLANTPID[1] = 0xffff
	}
}

// dei is the Drop Eligible Indicator bit of a TCI, which NORMAL
// switching neither looks at nor sets, as in OVS: a frame keeps it when
// its header is left as it is.
const dei = 0x1000

// emitOutput emits the actions that send the frame out of datapath port
// port with the n VLAN headers of want, from the headers the previous
// actions left: the headers both end with are left in place (so that an
// output that needs no change needs no copy), the others popped and
// pushed. The received frame's own headers are only ever popped inside
// a clone, so that a later output that keeps them still gets them as
// received (with their DEI bit), as in OVS.
func (x *xlate) emitOutput(want VLANs, n int, port uint32, f *frame) {
	out := datapath.Output(port)
	out.Copy = f.copy
	x.emitWith(want, n, f.snaplen, out)
}

// emitWith emits the VLAN actions emitOutput describes, a truncation to
// snaplen (0: none), and then act, which takes the frame so encoded.
func (x *xlate) emitWith(want VLANs, n int, snaplen uint32, act datapath.Action) {
	c, w := x.ncur, n
	for c > 0 && w > 0 && x.cur[c-1] == want[w-1] {
		c, w = c-1, w-1
	}
	acts := x.out.Actions
	start := len(acts)
	clone := c > x.npushed
	if clone {
		acts = append(acts, datapath.Clone(0))
	}
	for range c {
		acts = append(acts, datapath.PopVLAN())
	}
	for i := w - 1; i >= 0; i-- {
		acts = append(acts, datapath.PushVLAN(want[i]))
	}
	if snaplen > 0 {
		acts = append(acts, datapath.Truncate(snaplen))
	}
	acts = append(acts, act)
	if clone {
		acts[start].Len = uint32(len(acts) - start - 1)
	} else {
		x.cur, x.ncur, x.npushed = want, n, x.npushed-c+w
	}
	x.out.Actions = acts
}

// normal switches a frame that entered on port in, leaving the ports
// it sent the frame to in x.outs for the mirrors, and reports whether
// the frame was switched (and so is mirrored).
func (b *Bridge) normal(x *xlate, cfg *Config, in *Port, f frame, depth int) bool {
	if in.MirrorOut {
		return false // mirror output ports receive nothing
	}
	x.out.Mask.DlSrc = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	x.out.Mask.DlDst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	vs, ok := in.VLAN.Input(f.vlans)
	if !ok {
		if x.trace != nil {
			x.trace.Note("dropped: the input port does not take this VLAN", x.tnest)
		}
		return false
	}
	vlan := vs.VID()
	if in.Bond != nil {
		if !b.bondAdmits(x, cfg, in, &f, vlan) {
			return false
		}
		in = bondLead(cfg, in) // the bond's addresses are learned on its lead member
	}
	// A multicast source address is never learned, but the frame is
	// still switched, as OVS does.
	if f.src[0]&1 == 0 && !cfg.FloodVLANs.Has(vlan) {
		x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectLearn,
			Learner: b.MACs, MAC: f.src, VLAN: vlan, Port: in.DPPort})
	}
	base := len(x.outs)
	if cfg.ForwardBPDU || !isReservedMulticast(f.dst) {
		b.chooseOutputs(x, cfg, in, &f, vs)
	}
	for _, out := range x.outs[base:] {
		b.output(x, out, f, vs, depth)
	}
	return true
}

// lookup returns where dst on vlan goes: learned by this very packet
// earlier in the translation (its learning is a side effect still to
// come), or in the MAC table, which then bounds how long the
// translation holds.
func (b *Bridge) lookup(x *xlate, dst [6]byte, vlan uint16) (uint32, bool) {
	for i := range x.out.Effects {
		e := &x.out.Effects[i]
		if e.Kind == datapath.EffectLearn && e.Learner == datapath.Learner(b.MACs) && e.MAC == dst && e.VLAN == vlan {
			return e.Port, true
		}
	}
	port, ttl, ok := b.MACs.lookupTTL(dst, vlan)
	if ok && (x.out.TTL == 0 || ttl < x.out.TTL) {
		x.out.TTL = ttl
	}
	return port, ok
}

// chooseOutputs appends to x.outs the ports NORMAL sends the frame to:
// the learned port of a known unicast destination, or every port of the
// VLAN but the input and those with NO_FLOOD; only ports that take the
// frame's headers (see PortVLAN.Includes) and have no NO_FWD (not
// mirrored as outputs either, as in OVS). A bond is one port: flooded once, through the
// member bondOutput picks.
func (b *Bridge) chooseOutputs(x *xlate, cfg *Config, in *Port, f *frame, vs VLANs) {
	vlan := vs.VID()
	dst := f.dst
	if dst[0]&1 == 0 && !cfg.FloodVLANs.Has(vlan) {
		if port, ok := b.lookup(x, dst, vlan); ok {
			if x.trace != nil {
				x.trace.Note(fmt.Sprintf("forwarding to learned port %s", portName(cfg, port)), x.tnest)
			}
			if out := cfg.Ports[port]; out != nil && !sameSwitchPort(out, in) && !out.MirrorOut && out.VLAN.Includes(vs) {
				if out = bondOutput(x, out, f, vlan); out != nil && b.mayForward(x, out) {
					x.outs = append(x.outs, out)
				}
			}
			return
		}
	}
	if x.trace != nil {
		x.trace.Note("no learned MAC for destination, flooding", x.tnest)
	}
	for _, out := range cfg.Flood {
		if !sameSwitchPort(out, in) && !out.MirrorOut && out.VLAN.Includes(vs) && bondLead(cfg, out) == out && b.floodable(cfg, out) {
			if out = bondOutput(x, out, f, vlan); out != nil && b.mayForward(x, out) {
				x.outs = append(x.outs, out)
			}
		}
	}
}

// output sends the frame, with VLAN headers vs inside the bridge, out of
// port out, or across it into the peer bridge when out is a patch port.
func (b *Bridge) output(x *xlate, out *Port, f frame, vs VLANs, depth int) {
	if !b.mayForward(x, out) {
		return
	}
	ovs := out.VLAN.Output(vs)
	want, n := ovs.wire()
	if !out.IsPatch() {
		k := f.key
		if k == nil {
			k = x.key
		}
		x.emitTunnel(out, k)
		x.emitOutput(want, n, out.DPPort, &f)
		return
	}
	if depth >= maxPatchDepth {
		return
	}
	peer := out.PeerBridge
	pcfg := peer.cfg.Load()
	pin, ok := pcfg.Ports[out.PeerDPPort]
	if !ok {
		return
	}
	f.vlans = want
	peer.pipeline(x, pcfg, pin, f, depth+1)
}

// mirror sends the copies that the bridge's mirrors ask for, each
// destination at most once per packet, and counts the packet in the
// statistics of each mirror that selects it.
// A dot1q-tunnel port's frames are in its service VLAN, for select_vlan
// as for switching, and a copy gets the headers its output port gives
// the frame.
func (b *Bridge) mirror(x *xlate, cfg *Config, in *Port, outs []*Port, f frame, vs VLANs, depth int) {
	vlan := vs.VID()
	for _, m := range cfg.Mirrors {
		if !m.selects(in, outs, vlan, x.key, &x.out.Mask) {
			continue
		}
		x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectCount, Counter: &m.Stats.Counter})
		if x.trace != nil {
			x.trace.Mirror(m, 0)
		}
		c := f
		c.copy, c.snaplen = &m.Stats.Copy, m.Snaplen
		if m.OutPort != nil {
			if out := bondOutput(x, m.OutPort, &c, vlan); out != nil {
				b.copyTo(x, out, c, vs, depth)
			}
			continue
		}
		if m.OutVLAN < 0 || uint16(m.OutVLAN) == vlan || isReservedMulticast(f.dst) {
			continue
		}
		// Like OVS, the flood includes the input port: a trunk gets its
		// own frames back on the output VLAN.
		// The copy keeps its headers, the outer one retagged.
		ovs := vs
		ovs[0] = withVID(ovs[0], uint16(m.OutVLAN))
		for _, out := range cfg.Flood {
			if !out.MirrorOut && out.VLAN.Includes(ovs) && bondLead(cfg, out) == out {
				if out = bondOutput(x, out, &c, uint16(m.OutVLAN)); out != nil {
					b.copyTo(x, out, c, ovs, depth)
				}
			}
		}
	}
}

// copyTo sends one mirror copy to out unless out already got one.
func (b *Bridge) copyTo(x *xlate, out *Port, c frame, vs VLANs, depth int) {
	for _, p := range x.copied {
		if p == out.DPPort {
			return
		}
	}
	x.copied = append(x.copied, out.DPPort)
	b.output(x, out, c, vs, depth)
}

// portName names datapath port no of cfg for a trace.
func portName(cfg *Config, no uint32) string {
	if p := cfg.Ports[no]; p != nil {
		return p.Name
	}
	return fmt.Sprint(no)
}
