package ofproto

import (
	"maps"

	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// OpenFlow port config bits (OFPPC_*) that an OpenFlow port mod sets and
// translation obeys, as OVS 3.1 does (ovs-ofctl(8) mod-port). PORT_DOWN
// is the device's admin state, kept by the device, not here.
const (
	PortNoSTP      = 1 << 1 // 1.0 only; kept and reported, no effect (gvs has no STP)
	PortNoRecv     = 1 << 2 // drop what the port receives but 802.1D BPDUs
	PortNoRecvSTP  = 1 << 3 // 1.0 only: drop the BPDUs the port receives
	PortNoFlood    = 1 << 4 // 1.0 only: left out of FLOOD and NORMAL's flooding
	PortNoFwd      = 1 << 5 // drop what is output to the port
	PortNoPacketIn = 1 << 6 // kept and reported; see PortConfig
	// PortConfigBits are the bits SetPortConfig keeps.
	PortConfigBits = PortNoSTP | PortNoRecv | PortNoRecvSTP | PortNoFlood | PortNoFwd | PortNoPacketIn
)

// portCfgEntry is one port's config bits, with the name of the port they
// were set on: an OpenFlow port number may go to another port in the
// same transaction that deletes the first, which must not inherit them.
type portCfgEntry struct {
	name string
	bits uint32
}

// PortConfig returns the config bits of OpenFlow port ofport. They live
// as long as the port: a port deleted loses them (SetConfig), so a port
// added again, or another port given its number, starts with none, and
// nothing persists them across a restart, as in OVS 3.1, which keeps
// them in ofproto only.
//
// PortNoPacketIn changes nothing: OVS 3.1 obeys it only for a table
// miss under a table-mod miss config (OFPTC11_TABLE_MISS_CONTROLLER or
// CONTINUE), which gvs does not take; a default miss and a controller
// action send their packet-ins whatever the bit says, in OVS as in gvs.
func (b *Bridge) PortConfig(ofport uint32) uint32 {
	if m := b.portCfg.Load(); m != nil {
		return (*m)[ofport].bits
	}
	return 0
}

// SetPortConfig sets the config bits of OpenFlow port ofport (those of
// PortConfigBits) and reports whether they changed. A change makes the
// datapath's cached flows, and the kernel's, stale: translations read
// the bits.
func (b *Bridge) SetPortConfig(ofport, config uint32) bool {
	return b.ModPortConfig(ofport, PortConfigBits, config)
}

// ModPortConfig sets the bits of mask (of PortConfigBits) of OpenFlow
// port ofport to config's, leaves the others, and reports whether they
// changed: a port mod, one at a time whatever connection sends it. A
// port the bridge no longer has (deleted while the port mod was on its
// way) changes nothing.
func (b *Bridge) ModPortConfig(ofport, mask, config uint32) bool {
	mask &= PortConfigBits
	b.portCfgMu.Lock()
	defer b.portCfgMu.Unlock()
	port := b.cfg.Load().portByOF(ofport)
	if port == nil {
		return false
	}
	old := b.portCfg.Load()
	var cur uint32
	if old != nil {
		cur = (*old)[ofport].bits
	}
	config = cur&^mask | config&mask
	if config == cur {
		return false
	}
	m := map[uint32]portCfgEntry{}
	if old != nil {
		m = maps.Clone(*old)
	}
	if config == 0 {
		delete(m, ofport)
	} else {
		m[ofport] = portCfgEntry{name: port.Name, bits: config}
	}
	b.portCfg.Store(&m)
	datapath.Invalidate()
	return true
}

// portByOF returns the port of OpenFlow number ofport, or nil.
func (c *Config) portByOF(ofport uint32) *Port {
	for _, p := range c.Ports {
		if p.OFPort == ofport {
			return p
		}
	}
	return nil
}

// setConfigPruned installs c and forgets the bits of the ports c does
// not have, or whose number c gives to another port; under portCfgMu,
// so that a port mod sees either the old ports and bits or the new.
func (b *Bridge) setConfigPruned(c *Config) {
	b.portCfgMu.Lock()
	defer b.portCfgMu.Unlock()
	b.cfg.Store(c)
	old := b.portCfg.Load()
	if old == nil || len(*old) == 0 {
		return
	}
	names := make(map[uint32]string, len(c.Ports))
	for _, p := range c.Ports {
		names[p.OFPort] = p.Name
	}
	var m map[uint32]portCfgEntry
	for no, e := range *old {
		if name, ok := names[no]; !ok || name != e.name {
			if m == nil {
				m = maps.Clone(*old)
			}
			delete(m, no)
		}
	}
	if m != nil {
		b.portCfg.Store(&m)
	}
}

// portBits returns p's config bits (p may be nil).
func (b *Bridge) portBits(p *Port) uint32 {
	if p == nil {
		return 0
	}
	return b.PortConfig(p.OFPort)
}

// bpduDst is 802.1D's destination address: frames to it, without an
// Ethertype (an 802.3 length), are what NO_RECV_STP governs instead of
// NO_RECV, as in OVS.
var bpduDst = [6]byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x00}

// mayReceive reports whether port in of b takes the frame it received:
// NO_RECV drops all but 802.1D BPDUs (an LACPDU on a bond is taken by
// its LACP before), NO_RECV_STP those (an 802.3 frame, no Ethertype,
// to 01:80:c2:00:00:00). A dropped frame is not mirrored
// either, as in OVS 3.1.
func (b *Bridge) mayReceive(x *xlate, in *Port, f *frame) bool {
	bits := b.portBits(in)
	if bits&(PortNoRecv|PortNoRecvSTP) == 0 {
		return true
	}
	x.out.Mask.DlDst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	x.out.Mask.DlType = 0xffff
	drop := uint32(PortNoRecv)
	k := x.key
	if f.key != nil {
		k = f.key // across a patch, as the other bridge left it
	}
	if f.dst == bpduDst && k.DlType == packet.EtherTypeNone {
		drop = PortNoRecvSTP
	}
	if bits&drop == 0 {
		return true
	}
	if x.trace != nil {
		if drop == PortNoRecv {
			x.trace.Note("OFPPC_NO_RECV set on the input port, dropping", x.tnest)
		} else {
			x.trace.Note("OFPPC_NO_RECV_STP set on the input port, dropping", x.tnest)
		}
	}
	return false
}

// mayForward reports whether an output to p goes out: not with NO_FWD,
// as in OVS (nor does the output's mirror copy).
func (b *Bridge) mayForward(x *xlate, p *Port) bool {
	if b.portBits(p)&PortNoFwd == 0 {
		return true
	}
	if x.trace != nil {
		x.trace.Note("OFPPC_NO_FWD set on "+p.Name+", skipping output", x.tnest)
	}
	return false
}

// floodable reports whether NORMAL floods to p: not when p, or a member
// of its bond, has NO_FLOOD, as OVS floods to a bundle only when none
// of its ports has it.
func (b *Bridge) floodable(cfg *Config, p *Port) bool {
	m := b.portCfg.Load()
	if m == nil || len(*m) == 0 {
		return true
	}
	if p.Bond == nil {
		return (*m)[p.OFPort].bits&PortNoFlood == 0
	}
	for _, q := range cfg.Flood {
		if q.Bond == p.Bond && (*m)[q.OFPort].bits&PortNoFlood != 0 {
			return false
		}
	}
	return true
}
