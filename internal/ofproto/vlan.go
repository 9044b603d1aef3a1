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

// PortVLAN is a port's VLAN configuration.
type PortVLAN struct {
	Mode      VLANMode
	Tag       uint16  // access VLAN, or native VLAN for native-* modes
	Trunks    VLANSet // VLANs a trunk carries
	AllTrunks bool    // trunks column empty: every VLAN
}

// InputVLAN returns the VLAN of a frame received on the port, from the
// key's outer tag, and false if the port must drop the frame.
func (v *PortVLAN) InputVLAN(keyTCI uint16) (uint16, bool) {
	tagged := keyTCI&packet.VLANPresent != 0
	vid := keyTCI & packet.VLANVIDMask
	switch v.Mode {
	case ModeAccess, ModeDot1qTunnel:
		// A tag with VID 0 only carries a priority: the frame is
		// untagged as far as VLANs go.
		if tagged && vid != 0 {
			return 0, false
		}
		return v.Tag, true
	case ModeNativeTagged, ModeNativeUntagged:
		if !tagged || vid == 0 {
			return v.Tag, true
		}
	default:
		if !tagged {
			return 0, true
		}
	}
	return vid, v.Carries(vid)
}

// Carries reports whether the port carries VLAN vid.
func (v *PortVLAN) Carries(vid uint16) bool {
	switch v.Mode {
	case ModeAccess, ModeDot1qTunnel:
		return vid == v.Tag
	case ModeNativeTagged, ModeNativeUntagged:
		if vid == v.Tag {
			return true
		}
	}
	return v.AllTrunks || v.Trunks.Has(vid)
}

// OutputTagged reports whether a frame of VLAN vid leaves the port with an
// 802.1Q header.
func (v *PortVLAN) OutputTagged(vid uint16) bool {
	switch v.Mode {
	case ModeAccess, ModeDot1qTunnel:
		return false
	case ModeNativeUntagged:
		return vid != v.Tag
	case ModeNativeTagged:
		return true
	}
	return vid != 0
}
