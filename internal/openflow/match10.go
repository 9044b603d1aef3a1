package openflow

import "encoding/binary"

// OpenFlow 1.0's fixed match and NXM describe the same fields; ovs-ofctl
// sends the fixed form whenever a flow fits it (add-flow "tcp,tp_dst=80"
// arrives as ofp_flow_mod, not NXT_FLOW_MOD), so the channel turns both
// into one []Field with Fields, and answers 1.0-format peers with
// Match10FromFields.

const (
	ethIPv4    = 0x0800
	ethARP     = 0x0806
	protoICMP  = 1
	protoTCP   = 6
	protoUDP   = 17
	protoSCTP  = 132
	vlanNone   = 0xffff // OFP_VLAN_NONE: the packet has no 802.1Q header
	vlanCFI    = 0x1000
	nwBitsMask = 0x3f
)

// FW10AllOVS wildcards everything the way OVS writes it: the address
// wildcard counts say 32 rather than 63.
const FW10AllOVS = FW10All&^(nwBitsMask<<FW10NwSrcShift|nwBitsMask<<FW10NwDstShift) |
	32<<FW10NwSrcShift | 32<<FW10NwDstShift

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// prefixMask is the mask of an address with the low wild bits
// wildcarded (OFPFW_NW_SRC_*: 32 or more is all of it).
func prefixMask(wild uint32) (uint32, bool) {
	if wild >= 32 {
		return 0, false
	}
	return ^uint32(0) << wild, true
}

func addrField(name string, addr [4]byte, wild uint32) (Field, bool) {
	mask, ok := prefixMask(wild)
	if !ok {
		return Field{}, false
	}
	v := binary.BigEndian.Uint32(addr[:]) & mask
	f := Field{Value: binary.BigEndian.AppendUint32(nil, v)}
	if mask != ^uint32(0) {
		f.Mask = binary.BigEndian.AppendUint32(nil, mask)
	}
	fi, _ := FieldByName(name)
	f.Class, f.Field = fi.Class, fi.Field
	return f, true
}

func exact(name string, v []byte) Field {
	fi, _ := FieldByName(name)
	return Field{Class: fi.Class, Field: fi.Field, Value: v}
}

// Fields returns the NXM entries that mean what m means. As OpenFlow 1.0
// says, a field whose prerequisites the match does not state (nw_src
// without dl_type=0x0800 or 0x0806, tp_dst without an IP protocol) is
// ignored rather than refused; so is a PCP with dl_vlan=0xffff (no VLAN).
func (m *Match10) Fields() []Field {
	w := m.Wildcards
	var fs []Field
	if w&FW10InPort == 0 {
		fs = append(fs, exact("NXM_OF_IN_PORT", be16(m.InPort)))
	}
	if w&FW10DlSrc == 0 {
		fs = append(fs, exact("NXM_OF_ETH_SRC", append([]byte(nil), m.DlSrc[:]...)))
	}
	if w&FW10DlDst == 0 {
		fs = append(fs, exact("NXM_OF_ETH_DST", append([]byte(nil), m.DlDst[:]...)))
	}
	if tci, ok := m.vlanTCI(); ok {
		fs = append(fs, tci)
	}
	if w&FW10DlType != 0 {
		return fs
	}
	fs = append(fs, exact("NXM_OF_ETH_TYPE", be16(m.DlType)))
	switch m.DlType {
	case ethIPv4:
		if w&FW10NwTOS == 0 {
			fs = append(fs, exact("NXM_OF_IP_TOS", []byte{m.NwTOS & 0xfc}))
		}
		if w&FW10NwProto == 0 {
			fs = append(fs, exact("NXM_OF_IP_PROTO", []byte{m.NwProto}))
		}
		if f, ok := addrField("NXM_OF_IP_SRC", m.NwSrc, w>>FW10NwSrcShift&nwBitsMask); ok {
			fs = append(fs, f)
		}
		if f, ok := addrField("NXM_OF_IP_DST", m.NwDst, w>>FW10NwDstShift&nwBitsMask); ok {
			fs = append(fs, f)
		}
		if w&FW10NwProto == 0 {
			fs = append(fs, m.transport()...)
		}
	case ethARP:
		if w&FW10NwProto == 0 {
			fs = append(fs, exact("NXM_OF_ARP_OP", be16(uint16(m.NwProto))))
		}
		if f, ok := addrField("NXM_OF_ARP_SPA", m.NwSrc, w>>FW10NwSrcShift&nwBitsMask); ok {
			fs = append(fs, f)
		}
		if f, ok := addrField("NXM_OF_ARP_TPA", m.NwDst, w>>FW10NwDstShift&nwBitsMask); ok {
			fs = append(fs, f)
		}
	}
	return fs
}

// vlanTCI folds dl_vlan and dl_vlan_pcp into NXM's vlan_tci.
func (m *Match10) vlanTCI() (Field, bool) {
	var tci, mask uint16
	w := m.Wildcards
	switch {
	case w&FW10DlVLAN == 0 && m.DlVLAN == vlanNone:
		// No 802.1Q header: the whole TCI is zero, and the PCP
		// cannot be matched.
		tci, mask = 0, 0xffff
	default:
		if w&FW10DlVLAN == 0 {
			tci |= vlanCFI | m.DlVLAN&0xfff
			mask |= vlanCFI | 0xfff
		}
		if w&FW10DlVLANPCP == 0 {
			tci |= vlanCFI | uint16(m.DlVLANPCP&7)<<13
			mask |= vlanCFI | 0xe000
		}
	}
	if mask == 0 && !(w&FW10DlVLAN == 0 && m.DlVLAN == vlanNone) {
		return Field{}, false
	}
	f := exact("NXM_OF_VLAN_TCI", be16(tci))
	if mask != 0xffff {
		f.Mask = be16(mask)
	}
	return f, true
}

func (m *Match10) transport() []Field {
	w := m.Wildcards
	var src, dst string
	switch m.NwProto {
	case protoTCP:
		src, dst = "NXM_OF_TCP_SRC", "NXM_OF_TCP_DST"
	case protoUDP:
		src, dst = "NXM_OF_UDP_SRC", "NXM_OF_UDP_DST"
	case protoICMP:
		var fs []Field
		if w&FW10TpSrc == 0 {
			fs = append(fs, exact("NXM_OF_ICMP_TYPE", []byte{byte(m.TpSrc)}))
		}
		if w&FW10TpDst == 0 {
			fs = append(fs, exact("NXM_OF_ICMP_CODE", []byte{byte(m.TpDst)}))
		}
		return fs
	default:
		return nil
	}
	var fs []Field
	if w&FW10TpSrc == 0 {
		fs = append(fs, exact(src, be16(m.TpSrc)))
	}
	if w&FW10TpDst == 0 {
		fs = append(fs, exact(dst, be16(m.TpDst)))
	}
	return fs
}

// Match10FromFields builds the 1.0 fixed match of fs, if it has one:
// every field must be one ofp_match carries, exact or (addresses) a CIDR
// prefix, and vlan_tci one of the shapes dl_vlan/dl_vlan_pcp express.
// Unused members are zero, as OVS sends them.
func Match10FromFields(fs []Field) (Match10, bool) {
	m := Match10{Wildcards: FW10AllOVS}
	for i := range fs {
		if !m.set(&fs[i]) {
			return Match10{}, false
		}
	}
	return m, true
}

func (m *Match10) set(f *Field) bool {
	fi, ok := f.Info()
	if !ok || (f.Mask != nil && fi.Name != "NXM_OF_IP_SRC" && fi.Name != "NXM_OF_IP_DST" &&
		fi.Name != "NXM_OF_ARP_SPA" && fi.Name != "NXM_OF_ARP_TPA" && fi.Name != "NXM_OF_VLAN_TCI") {
		return false
	}
	v := f.Value
	switch fi.Name {
	case "NXM_OF_IN_PORT":
		m.InPort, m.Wildcards = binary.BigEndian.Uint16(v), m.Wildcards&^FW10InPort
	case "NXM_OF_ETH_SRC":
		copy(m.DlSrc[:], v)
		m.Wildcards &^= FW10DlSrc
	case "NXM_OF_ETH_DST":
		copy(m.DlDst[:], v)
		m.Wildcards &^= FW10DlDst
	case "NXM_OF_ETH_TYPE":
		m.DlType, m.Wildcards = binary.BigEndian.Uint16(v), m.Wildcards&^FW10DlType
	case "NXM_OF_VLAN_TCI":
		return m.setTCI(f)
	case "NXM_OF_IP_TOS":
		m.NwTOS, m.Wildcards = v[0], m.Wildcards&^FW10NwTOS
	case "NXM_OF_IP_PROTO":
		m.NwProto, m.Wildcards = v[0], m.Wildcards&^FW10NwProto
	case "NXM_OF_ARP_OP":
		if v[0] != 0 {
			return false
		}
		m.NwProto, m.Wildcards = v[1], m.Wildcards&^FW10NwProto
	case "NXM_OF_IP_SRC", "NXM_OF_ARP_SPA":
		return m.setAddr(f, &m.NwSrc, FW10NwSrcShift)
	case "NXM_OF_IP_DST", "NXM_OF_ARP_TPA":
		return m.setAddr(f, &m.NwDst, FW10NwDstShift)
	case "NXM_OF_TCP_SRC", "NXM_OF_UDP_SRC":
		m.TpSrc, m.Wildcards = binary.BigEndian.Uint16(v), m.Wildcards&^FW10TpSrc
	case "NXM_OF_TCP_DST", "NXM_OF_UDP_DST":
		m.TpDst, m.Wildcards = binary.BigEndian.Uint16(v), m.Wildcards&^FW10TpDst
	case "NXM_OF_ICMP_TYPE":
		m.TpSrc, m.Wildcards = uint16(v[0]), m.Wildcards&^FW10TpSrc
	case "NXM_OF_ICMP_CODE":
		m.TpDst, m.Wildcards = uint16(v[0]), m.Wildcards&^FW10TpDst
	default:
		return false
	}
	return true
}

func (m *Match10) setAddr(f *Field, dst *[4]byte, shift uint) bool {
	wild := uint32(0)
	if f.Mask != nil {
		mask := binary.BigEndian.Uint32(f.Mask)
		ones := 0
		for mask<<ones&0x80000000 != 0 {
			ones++
		}
		if ones < 32 && mask<<ones != 0 {
			return false // not a prefix
		}
		wild = uint32(32 - ones)
	}
	copy(dst[:], f.Value)
	m.Wildcards = m.Wildcards&^(nwBitsMask<<shift) | wild<<shift
	return true
}

func (m *Match10) setTCI(f *Field) bool {
	tci := binary.BigEndian.Uint16(f.Value)
	mask := uint16(0xffff)
	if f.Mask != nil {
		mask = binary.BigEndian.Uint16(f.Mask)
	}
	switch {
	case tci == 0 && mask == 0xffff:
		m.DlVLAN, m.Wildcards = vlanNone, m.Wildcards&^FW10DlVLAN
		return true
	case tci&vlanCFI == 0 || mask&vlanCFI == 0:
		return false
	}
	switch mask &^ vlanCFI {
	case 0xfff:
		m.DlVLAN, m.Wildcards = tci&0xfff, m.Wildcards&^FW10DlVLAN
	case 0xe000:
		m.DlVLANPCP, m.Wildcards = uint8(tci>>13), m.Wildcards&^FW10DlVLANPCP
	case 0xefff:
		m.DlVLAN, m.DlVLANPCP = tci&0xfff, uint8(tci>>13)
		m.Wildcards &^= FW10DlVLAN | FW10DlVLANPCP
	default:
		return false
	}
	return true
}
