// Package ofproto is a bridge: its ports and their VLAN configuration, its
// MAC learning table, and the translation of a received packet into the
// outputs that NORMAL switching calls for (and, as they arrive, OpenFlow
// tables and mirrors). It decides; the datapath package executes.
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
}

// Bridge is one bridge. Its configuration is swapped atomically; its MAC
// table lives as long as the bridge.
type Bridge struct {
	Name string
	MACs *MACTable
	cfg  atomic.Pointer[Config]
}

// NewBridge returns a bridge with no ports.
func NewBridge(name string, macTableSize, macAging int) *Bridge {
	b := &Bridge{Name: name, MACs: NewMACTable(macTableSize, macAging)}
	b.cfg.Store(&Config{Ports: map[uint32]*Port{}})
	return b
}

// SetConfig installs a new configuration.
func (b *Bridge) SetConfig(c *Config) { b.cfg.Store(c) }

// Config returns the current configuration.
func (b *Bridge) Config() *Config { return b.cfg.Load() }

// Translate implements datapath.Translator with NORMAL switching.
func (b *Bridge) Translate(pkt *datapath.Packet, acts *datapath.Actions) {
	cfg := b.cfg.Load()
	in, ok := cfg.Ports[pkt.InPort]
	if !ok {
		return
	}
	k := &pkt.Key
	b.normal(cfg, in, k.DlSrc, k.DlDst, k.VLANTCI, acts, 0)
}

// normal switches a frame that entered on port in with the given addresses
// and outer tag (in key form: VLANPresent set when tagged).
func (b *Bridge) normal(cfg *Config, in *Port, src, dst [6]byte, tci uint16, acts *datapath.Actions, depth int) {
	if src[0]&1 != 0 {
		return // a multicast source address is invalid: drop
	}
	vlan, ok := in.VLAN.InputVLAN(tci)
	if !ok {
		return
	}
	pcp := uint8(0)
	if tci&packet.VLANPresent != 0 {
		pcp = uint8(packet.WireTCI(tci) >> packet.VLANPCPShift)
	}
	if !cfg.FloodVLANs.Has(vlan) {
		b.MACs.Learn(src, vlan, in.DPPort)
	}
	if dst[0]&1 == 0 && !cfg.FloodVLANs.Has(vlan) {
		if port, ok := b.MACs.Lookup(dst, vlan); ok {
			if out := cfg.Ports[port]; out != nil && out != in && out.VLAN.Carries(vlan) {
				b.output(out, src, dst, vlan, pcp, acts, depth)
			}
			return
		}
	}
	for _, out := range cfg.Flood {
		if out != in && out.VLAN.Carries(vlan) {
			b.output(out, src, dst, vlan, pcp, acts, depth)
		}
	}
}

// output sends the frame out of port out, or across it into the peer
// bridge when out is a patch port.
func (b *Bridge) output(out *Port, src, dst [6]byte, vlan uint16, pcp uint8, acts *datapath.Actions, depth int) {
	tagged := out.VLAN.OutputTagged(vlan)
	if !out.IsPatch() {
		acts.Outputs = append(acts.Outputs, datapath.Output{Port: out.DPPort, Tagged: tagged, VID: vlan, PCP: pcp})
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
	tci := uint16(0)
	if tagged {
		tci = packet.KeyTCI(uint16(pcp)<<packet.VLANPCPShift | vlan)
	}
	peer.normal(pcfg, pin, src, dst, tci, acts, depth+1)
}
