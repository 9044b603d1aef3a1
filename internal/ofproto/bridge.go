// Package ofproto is a bridge: its ports and their VLAN configuration, its
// MAC learning table, its mirrors, and the translation of a received
// packet into the outputs that NORMAL switching and mirroring call for
// (and, as they arrive, OpenFlow tables). It decides; the datapath package
// executes.
package ofproto

import (
	"sync/atomic"

	"gvs/internal/datapath"
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
	cfg    atomic.Pointer[Config]
}

// NewBridge returns a bridge with no ports.
func NewBridge(name string, macTableSize, macAging int) *Bridge {
	b := &Bridge{Name: name, MACs: NewMACTable(macTableSize, macAging), Tables: NewBridgeTables(TablesOptions{})}
	b.cfg.Store(&Config{Ports: map[uint32]*Port{}})
	return b
}

// SetConfig installs a new configuration.
func (b *Bridge) SetConfig(c *Config) { b.cfg.Store(c) }

// Config returns the current configuration.
func (b *Bridge) Config() *Config { return b.cfg.Load() }

// xlate is a port thread's translation scratch space, kept in
// datapath.Actions.Ctx so that translating allocates nothing once warm.
type xlate struct {
	key  *packet.Key
	acts *datapath.Actions
	// base holds the first nbase VLAN headers of the frame as the
	// datapath holds it, which every output's VLAN edit starts from.
	base   VLANs
	nbase  int
	outs   []*Port  // output ports of the bridges being translated, stacked
	copied []uint32 // datapath ports that already got a mirror copy
}

// frame is what translation knows of a packet inside one bridge.
type frame struct {
	src, dst [6]byte
	vlans    VLANs               // its VLAN headers as the bridge receives it
	copy     *datapath.CopyStats // non-nil when this is a mirror copy
	snaplen  uint32
}

// Translate implements datapath.Translator with NORMAL switching and
// mirroring.
func (b *Bridge) Translate(pkt *datapath.Packet, acts *datapath.Actions) {
	cfg := b.cfg.Load()
	in, ok := cfg.Ports[pkt.InPort]
	if !ok {
		return
	}
	x, _ := acts.Ctx.(*xlate)
	if x == nil {
		x = &xlate{}
		acts.Ctx = x
	}
	x.key, x.acts = &pkt.Key, acts
	x.outs, x.copied = x.outs[:0], x.copied[:0]
	x.base, x.nbase = packet.VLANHeaders(pkt.Frame, &pkt.Off, cfg.vlanLimit())
	for i := range x.base {
		x.base[i].TCI &^= dei
	}
	k := &pkt.Key
	b.normal(x, cfg, in, frame{src: k.DlSrc, dst: k.DlDst, vlans: x.base}, len(pkt.Frame), 0)
}

// dei is the Drop Eligible Indicator bit of a TCI, which NORMAL
// switching neither looks at nor sets, as in OVS: a frame keeps it when
// its header is left as it is.
const dei = 0x1000

// edit returns the change from the received frame's VLAN headers to the
// n headers of want: the headers both end with are left in place, the
// others popped and pushed.
func (x *xlate) edit(want VLANs, n int) datapath.VLANEdit {
	b := x.nbase
	for b > 0 && n > 0 && x.base[b-1] == want[n-1] {
		b, n = b-1, n-1
	}
	e := datapath.VLANEdit{Pop: uint8(b), NPush: uint8(n)}
	copy(e.Push[:], want[:n])
	return e
}

// normal switches a frame that entered on port in.
func (b *Bridge) normal(x *xlate, cfg *Config, in *Port, f frame, size, depth int) {
	if in.MirrorOut {
		return // mirror output ports receive nothing
	}
	vs, ok := in.VLAN.Input(f.vlans)
	if !ok {
		return
	}
	vlan := vs.VID()
	// A multicast source address is never learned, but the frame is
	// still switched, as OVS does.
	if f.src[0]&1 == 0 && !cfg.FloodVLANs.Has(vlan) {
		b.MACs.Learn(f.src, vlan, in.DPPort)
	}
	base := len(x.outs)
	if cfg.ForwardBPDU || !isReservedMulticast(f.dst) {
		b.chooseOutputs(x, cfg, in, f.dst, vs)
	}
	outs := x.outs[base:]
	for _, out := range outs {
		b.output(x, out, f, vs, size, depth)
	}
	if len(cfg.Mirrors) > 0 {
		b.mirror(x, cfg, in, outs, f, vs, size, depth)
	}
	x.outs = x.outs[:base]
}

// chooseOutputs appends to x.outs the ports NORMAL sends the frame to:
// the learned port of a known unicast destination, or every port of the
// VLAN but the input; only ports that take the frame's headers (see
// PortVLAN.Includes).
func (b *Bridge) chooseOutputs(x *xlate, cfg *Config, in *Port, dst [6]byte, vs VLANs) {
	vlan := vs.VID()
	if dst[0]&1 == 0 && !cfg.FloodVLANs.Has(vlan) {
		if port, ok := b.MACs.Lookup(dst, vlan); ok {
			if out := cfg.Ports[port]; out != nil && out != in && !out.MirrorOut && out.VLAN.Includes(vs) {
				x.outs = append(x.outs, out)
			}
			return
		}
	}
	for _, out := range cfg.Flood {
		if out != in && !out.MirrorOut && out.VLAN.Includes(vs) {
			x.outs = append(x.outs, out)
		}
	}
}

// output sends the frame, with VLAN headers vs inside the bridge, out of
// port out, or across it into the peer bridge when out is a patch port.
func (b *Bridge) output(x *xlate, out *Port, f frame, vs VLANs, size, depth int) {
	ovs := out.VLAN.Output(vs)
	want, n := ovs.wire()
	if !out.IsPatch() {
		x.acts.Outputs = append(x.acts.Outputs, datapath.Output{Port: out.DPPort, VLAN: x.edit(want, n),
			Copy: f.copy, Snaplen: f.snaplen})
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
	peer.normal(x, pcfg, pin, f, size, depth+1)
}

// mirror sends the copies that the bridge's mirrors ask for, each
// destination at most once per packet.
// A dot1q-tunnel port's frames are in its service VLAN, for select_vlan
// as for switching, and a copy gets the headers its output port gives
// the frame.
func (b *Bridge) mirror(x *xlate, cfg *Config, in *Port, outs []*Port, f frame, vs VLANs, size, depth int) {
	vlan := vs.VID()
	for _, m := range cfg.Mirrors {
		if !m.selects(in, outs, vlan, x.key) {
			continue
		}
		m.Stats.Packets.Add(1)
		m.Stats.Bytes.Add(uint64(size))
		c := f
		c.copy, c.snaplen = &m.Stats.Copy, m.Snaplen
		if m.OutPort != nil {
			b.copyTo(x, m.OutPort, c, vs, size, depth)
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
			if !out.MirrorOut && out.VLAN.Includes(ovs) {
				b.copyTo(x, out, c, ovs, size, depth)
			}
		}
	}
}

// copyTo sends one mirror copy to out unless out already got one.
func (b *Bridge) copyTo(x *xlate, out *Port, c frame, vs VLANs, size, depth int) {
	for _, p := range x.copied {
		if p == out.DPPort {
			return
		}
	}
	x.copied = append(x.copied, out.DPPort)
	b.output(x, out, c, vs, size, depth)
}
