package ofproto

import "gvs/internal/packet"

// VLANMode is a port's Port.vlan_mode.
type VLANMode uint8

// The VLAN modes of ovs-vswitchd.conf.db(5).
const (
	ModeTrunk VLANMode = iota
	ModeAccess
	ModeNativeTagged
	ModeNativeUntagged
	ModeDot1qTunnel
)

// ParseVLANMode maps the column value to a mode; empty means "the
// default", which depends on whether the port has a tag.
func ParseVLANMode(s string, hasTag bool) (VLANMode, bool) {
	switch s {
	case "":
		if hasTag {
			return ModeAccess, true
		}
		return ModeTrunk, true
	case "trunk":
		return ModeTrunk, true
	case "access":
		return ModeAccess, true
	case "native-tagged":
		return ModeNativeTagged, true
	case "native-untagged":
		return ModeNativeUntagged, true
	case "dot1q-tunnel":
		return ModeDot1qTunnel, true
	}
	return ModeTrunk, false
}

// VLANSet is a set of VLAN IDs as a bitmap, so membership is one load.
type VLANSet [4096 / 64]uint64

// Add puts vid in the set.
func (s *VLANSet) Add(vid uint16) { s[vid>>6&63] |= 1 << (vid & 63) }

// Has reports whether vid is in the set.
func (s *VLANSet) Has(vid uint16) bool { return s[vid>>6&63]&(1<<(vid&63)) != 0 }

// VLANs are the VLAN headers of a frame as NORMAL switching sees them,
// outermost first, like OVS's "xvlan": at most two, and only as many as
// vlan-limit lets the bridge see. A header is there when its TCI (PCP and
// VID; the DEI bit is not kept) is not zero: a header of VID 0 and PCP 0
// says nothing, so it is left off the frame on output, as in OVS. A TPID
// of 0 stands for 802.1Q.
type VLANs [packet.MaxVLANs]packet.VLANHeader

// VID returns the VLAN of the outer header: the VLAN the bridge switches
// the frame in. 0 for a frame without one.
func (v *VLANs) VID() uint16 { return v[0].TCI & packet.VLANVIDMask }

// innerVID returns the VID of the second header (the customer VLAN of a
// frame in a service VLAN), 0 if there is none.
func (v *VLANs) innerVID() uint16 { return v[1].TCI & packet.VLANVIDMask }

// push adds h as the outer header. Only two headers fit: a frame that
// had two loses its inner one, as in OVS.
func (v *VLANs) push(h packet.VLANHeader) { v[1], v[0] = v[0], h }

// pop removes the outer header.
func (v *VLANs) pop() { v[0], v[1] = v[1], packet.VLANHeader{} }

// withVID returns h with its VID replaced, or an 802.1Q header of vid
// and no priority if there was none.
func withVID(h packet.VLANHeader, vid uint16) packet.VLANHeader {
	if h.TPID == 0 {
		h.TPID = packet.EtherTypeVLAN
	}
	h.TCI = h.TCI&^packet.VLANVIDMask | vid&packet.VLANVIDMask
	return h
}

// wire returns the headers a frame with these VLANs carries, and how
// many: the leading headers that are there, with a TPID each.
func (v *VLANs) wire() (hs VLANs, n int) {
	for ; n < len(v) && v[n].TCI != 0; n++ {
		hs[n] = v[n]
		if hs[n].TPID == 0 {
			hs[n].TPID = packet.EtherTypeVLAN
		}
	}
	return hs, n
}

// PortVLAN is a port's VLAN configuration.
type PortVLAN struct {
	Mode      VLANMode
	Tag       uint16  // access VLAN, service VLAN (dot1q-tunnel), or native VLAN for native-* modes
	Trunks    VLANSet // VLANs a trunk carries
	AllTrunks bool    // trunks column empty: every VLAN
	// CVLANs is a dot1q-tunnel port's cvlans: the customer VLANs it lets
	// in and out (0 standing for frames without a customer tag); nil
	// lets every one through.
	CVLANs *VLANSet
	// QinQTPID is a dot1q-tunnel port's other_config:qinq-ethtype: the
	// TPID of the service tag its frames get on a trunk. 0 means
	// 802.1ad (0x88a8), the default.
	QinQTPID uint16
}

// Input translates the headers of a frame received on the port into
// the VLANs the bridge switches it in, and reports false if the port
// must drop the frame.
func (v *PortVLAN) Input(in VLANs) (VLANs, bool) {
	vid := in.VID()
	switch v.Mode {
	case ModeAccess:
		// A tag with VID 0 only carries a priority: the frame is
		// untagged as far as VLANs go.
		if vid != 0 {
			return in, false
		}
		return VLANs{withVID(in[0], v.Tag)}, true
	case ModeDot1qTunnel:
		// The customer's frame, tagged or not, goes into the service
		// VLAN whole.
		if v.CVLANs != nil && !v.CVLANs.Has(vid) {
			return in, false
		}
		in.push(packet.VLANHeader{TPID: v.qinqTPID(), TCI: v.Tag})
		return in, true
	case ModeNativeTagged, ModeNativeUntagged:
		if vid == 0 {
			in[0] = withVID(in[0], v.Tag)
			return in, true
		}
	default:
		if in[0].TPID == 0 {
			return in, true // an untagged frame on a trunk: VLAN 0
		}
	}
	return in, v.trunks(vid)
}

func (v *PortVLAN) qinqTPID() uint16 {
	if v.QinQTPID == 0 {
		return packet.EtherTypeQinQ
	}
	return v.QinQTPID
}

// Includes reports whether a frame with headers vs may leave through
// the port: its VLAN must be the port's, and an access port only takes
// frames without a customer tag, a dot1q-tunnel port only those of its
// customer VLANs.
func (v *PortVLAN) Includes(vs VLANs) bool {
	switch v.Mode {
	case ModeAccess:
		return vs.VID() == v.Tag && vs.innerVID() == 0
	case ModeDot1qTunnel:
		return vs.VID() == v.Tag && (v.CVLANs == nil || v.CVLANs.Has(vs.innerVID()))
	}
	return v.trunks(vs.VID())
}

// trunks reports whether a trunk or native-* port carries VLAN vid.
func (v *PortVLAN) trunks(vid uint16) bool {
	switch v.Mode {
	case ModeAccess, ModeDot1qTunnel:
		return false
	case ModeNativeTagged, ModeNativeUntagged:
		if vid == v.Tag {
			return true
		}
	}
	return v.AllTrunks || v.Trunks.Has(vid)
}

// Output returns the headers a frame with headers vs leaves the port
// with: none on an access port, the service tag taken off on a
// dot1q-tunnel port (the customer's own tag, if any, stays), the native
// VLAN's tag taken off on a native-untagged port.
func (v *PortVLAN) Output(vs VLANs) VLANs {
	switch v.Mode {
	case ModeAccess:
		return VLANs{}
	case ModeDot1qTunnel:
		vs.pop()
	case ModeNativeUntagged:
		if vs.VID() == v.Tag {
			vs.pop()
		}
	}
	return vs
}
