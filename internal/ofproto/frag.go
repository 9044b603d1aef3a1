package ofproto

import (
	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// FragMode is how a bridge switches IP fragments: OpenFlow's
// OFPC_FRAG_* switch configuration flags, which belong to the bridge
// (every connection sets and sees the same mode), as in OVS.
type FragMode uint8

const (
	// FragNormal: fragments go through the tables with their transport
	// ports (ICMP type and code) read as 0, the first fragment's too.
	FragNormal FragMode = 0
	// FragDrop: fragments are dropped before the tables.
	FragDrop FragMode = 1
	// FragReassemble would reassemble fragments first; like OVS's
	// userspace datapath, gvs does not implement it (SetFragMode
	// refuses it).
	FragReassemble FragMode = 2
	// FragNXMatch: fragments go through the tables as they are; a first
	// fragment keeps its ports, a later one has none.
	FragNXMatch FragMode = 3
)

// FragMask is the bits of the OpenFlow switch configuration flags that
// say the fragment mode.
const FragMask = 3

// String returns the mode as ovs-ofctl names it.
func (m FragMode) String() string {
	switch m {
	case FragNormal:
		return "normal"
	case FragDrop:
		return "drop"
	case FragReassemble:
		return "reassemble"
	}
	return "nx-match"
}

// SetFragMode sets how the bridge switches IP fragments and reports
// whether it could: reassembly is not implemented, and the mode is then
// left as it was (as OVS's userspace datapath leaves it; ovs-ofctl
// set-frags reads the mode back and tells its user). The cached
// translations, made under the old mode, are stale from now on.
func (b *Bridge) SetFragMode(m FragMode) bool {
	m &= FragMask
	if m == FragReassemble {
		return false
	}
	if FragMode(b.frag.Swap(uint32(m))) != m {
		datapath.Invalidate()
	}
	return true
}

// FragMode returns the bridge's fragment mode.
func (b *Bridge) FragMode() FragMode { return FragMode(b.frag.Load()) }

// fragments applies the bridge's fragment mode to a frame it received:
// it reports whether the frame is dropped (drop mode) and whether the
// tables must see its transport ports as 0 (a fragment in normal mode).
// Whether the packet is a fragment decides either way, so the cached
// translation depends on that bit; in nx-match mode only the rules that
// match ip_frag read it.
func (b *Bridge) fragments(x *xlate) (drop, noPorts bool) {
	mode := b.FragMode()
	if mode == FragNXMatch {
		return false, false
	}
	x.out.Mask.NwFrag |= packet.FragAny
	if x.key.NwFrag&packet.FragAny == 0 {
		return false, false
	}
	if mode == FragDrop {
		if x.trace != nil {
			x.trace.Note("dropping IP fragment (fragment handling mode: drop)", 0)
		}
		return true, false
	}
	return false, true
}
