package ofproto

import (
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// Mirror is one Mirror row as translation uses it.
type Mirror struct {
	Name     string
	All      bool            // select_all
	Src, Dst map[uint32]bool // select_src_port, select_dst_port, by datapath port
	VLANs    *VLANSet        // select_vlan; nil selects every VLAN
	Filter   *flow.Match     // the filter column; nil selects everything
	OutPort  *Port           // output_port, or nil
	OutVLAN  int             // output_vlan, or -1
	Snaplen  uint32          // 0: whole frames
	Stats    *MirrorStats    // lives as long as the Mirror row
}

// MirrorStats are a mirror's counters, kept across reconfigurations.
type MirrorStats struct {
	// Counter counts the packets the mirror selected and copied, and
	// their bytes as received.
	datapath.Counter
	Copy datapath.CopyStats
}

// selects reports whether the mirror picks a packet that entered on in,
// on vlan, and leaves through the ports in outs, and adds what its filter
// looked at to mask. Patch ports never count
// as selected ports, even for select_all, as in OVS: a packet crossing a
// patch is mirrored by the ports it enters or leaves the bridges through.
func (m *Mirror) selects(in *Port, outs []*Port, vlan uint16, key *packet.Key, mask *datapath.Key) bool {
	if m.VLANs != nil && !m.VLANs.Has(vlan) {
		return false
	}
	picked := !in.IsPatch() && (m.All || m.Src[in.DPPort])
	for i := 0; !picked && i < len(outs); i++ {
		picked = !outs[i].IsPatch() && (m.All || m.Dst[outs[i].DPPort])
	}
	if !picked || m.Filter == nil {
		return picked
	}
	fm := m.Filter.Mask()
	mask.OrMask(&fm)
	return m.Filter.Matches(key)
}

// isReservedMulticast reports whether dst is an IEEE 802.1D reserved
// address (01:80:c2:00:00:0x), which output_vlan mirrors never copy: they
// are link-local control frames (STP, LACP, LLDP) that must not be
// forwarded onto a VLAN.
func isReservedMulticast(dst [6]byte) bool {
	return dst[0] == 0x01 && dst[1] == 0x80 && dst[2] == 0xc2 && dst[3] == 0 && dst[4] == 0 && dst[5]&0xf0 == 0
}
