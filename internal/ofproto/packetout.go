package ofproto

import (
	"fmt"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// PacketOutDPPort is the datapath port a packet-out that entered on no
// bridge port (in_port CONTROLLER or NONE) is executed with; no port has
// that number.
const PacketOutDPPort = ^uint32(0)

// packetOut translates an OpenFlow packet-out: its actions, as a rule's
// would run, for a frame that entered on port in.
type packetOut struct {
	b    *Bridge
	in   *Port
	acts []flow.Action
}

// PacketOut returns the translator of a packet-out that entered on
// OpenFlow port inPort (a bridge port, LOCAL, or CONTROLLER or NONE for
// none) with actions acts, and the datapath port to execute it with
// (datapath.Execute). Its actions act as a rule's, through the pipeline
// too: TABLE (output to the flow tables, as if the frame had been
// received on inPort), resubmit, goto_table, NORMAL (not for a frame from
// no port: OVS drops it). An action translation cannot execute is an
// error, and nothing is sent.
func (b *Bridge) PacketOut(inPort uint32, acts []flow.Action) (datapath.Translator, uint32, error) {
	if !supportedOut(acts) {
		return nil, 0, fmt.Errorf("bridge %s: packet-out: an action is not supported by gvs yet", b.Name)
	}
	cfg := b.cfg.Load()
	for _, p := range cfg.Flood {
		if p.OFPort == inPort {
			return &packetOut{b: b, in: p, acts: acts}, p.DPPort, nil
		}
	}
	if inPort != flow.PortController && inPort != flow.PortNone {
		return nil, 0, fmt.Errorf("bridge %s: packet-out: no port %d", b.Name, inPort)
	}
	// A frame from no port: no VLAN configuration, no mirror selects it.
	in := &Port{Name: "CONTROLLER", OFPort: inPort, DPPort: PacketOutDPPort, MirrorOut: true}
	return &packetOut{b: b, in: in, acts: acts}, PacketOutDPPort, nil
}

// supportedOut is supported for a packet-out, where output:TABLE is valid.
func supportedOut(acts []flow.Action) bool {
	for _, a := range acts {
		if o, ok := a.(flow.Output); ok && o.Port == flow.PortTable {
			continue
		}
		if !supported([]flow.Action{a}) {
			return false
		}
	}
	return true
}

// Translate implements datapath.Translator.
func (p *packetOut) Translate(pkt *datapath.Packet, out *datapath.Xlate) {
	cfg := p.b.cfg.Load()
	x := &xlate{key: &pkt.Key.Key, out: out, pktOut: p.acts}
	limit := cfg.vlanLimit()
	x.base, x.nbase = packet.VLANHeaders(pkt.Frame, &pkt.Off, limit)
	for i := range x.base {
		x.base[i].TCI &^= dei
	}
	x.cur, x.ncur = x.base, x.nbase
	k := &pkt.Key
	p.b.pipeline(x, cfg, p.in, frame{src: k.DlSrc, dst: k.DlDst, vlans: x.base}, 0)
	if checkSize(x); x.aborted {
		out.Actions = out.Actions[:0]
	}
}
