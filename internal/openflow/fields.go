package openflow

import "fmt"

// NXM and OXM classes (the top 16 bits of an entry's header).
const (
	ClassNXM0         = 0x0000 // NXM_OF_*: OpenFlow 1.0 fields in NXM form
	ClassNXM1         = 0x0001 // NXM_NX_*: Nicira fields
	ClassOpenFlow     = 0x8000 // OXM_OF_*: OpenFlow 1.2+ basic fields
	ClassExperimenter = 0xffff // an experimenter id follows the header
)

// FieldInfo describes one NXM/OXM field: its wire identity, its size,
// whether it takes a mask, and the name internal/flow (and ovs-ofctl's
// text syntax) knows it by. This table is the one bridge between the wire
// and the flow model: the channel turns a decoded Field into a match on
// FlowName and back.
type FieldInfo struct {
	Name         string // NXM/OXM name, as ovs-ofctl prints it (NXM_OF_ETH_DST)
	FlowName     string // the ovs-fields(7) name (eth_dst)
	Class        uint16
	Field        uint8
	Experimenter uint32 // for ClassExperimenter
	Len          int    // value length in bytes
	Maskable     bool
}

// fieldTable lists the fields gvs accepts on the wire, from ovs-fields(7)
// and OVS's meta-flow.h (numbers only).
var fieldTable = []FieldInfo{
	// NXM_OF_*: OpenFlow 1.0's fields.
	{"NXM_OF_IN_PORT", "in_port", ClassNXM0, 0, 0, 2, false},
	{"NXM_OF_ETH_DST", "eth_dst", ClassNXM0, 1, 0, 6, true},
	{"NXM_OF_ETH_SRC", "eth_src", ClassNXM0, 2, 0, 6, true},
	{"NXM_OF_ETH_TYPE", "eth_type", ClassNXM0, 3, 0, 2, false},
	{"NXM_OF_VLAN_TCI", "vlan_tci", ClassNXM0, 4, 0, 2, true},
	{"NXM_OF_IP_TOS", "nw_tos", ClassNXM0, 5, 0, 1, false},
	{"NXM_OF_IP_PROTO", "nw_proto", ClassNXM0, 6, 0, 1, false},
	{"NXM_OF_IP_SRC", "ip_src", ClassNXM0, 7, 0, 4, true},
	{"NXM_OF_IP_DST", "ip_dst", ClassNXM0, 8, 0, 4, true},
	{"NXM_OF_TCP_SRC", "tcp_src", ClassNXM0, 9, 0, 2, true},
	{"NXM_OF_TCP_DST", "tcp_dst", ClassNXM0, 10, 0, 2, true},
	{"NXM_OF_UDP_SRC", "udp_src", ClassNXM0, 11, 0, 2, true},
	{"NXM_OF_UDP_DST", "udp_dst", ClassNXM0, 12, 0, 2, true},
	{"NXM_OF_ICMP_TYPE", "icmp_type", ClassNXM0, 13, 0, 1, false},
	{"NXM_OF_ICMP_CODE", "icmp_code", ClassNXM0, 14, 0, 1, false},
	{"NXM_OF_ARP_OP", "arp_op", ClassNXM0, 15, 0, 2, false},
	{"NXM_OF_ARP_SPA", "arp_spa", ClassNXM0, 16, 0, 4, true},
	{"NXM_OF_ARP_TPA", "arp_tpa", ClassNXM0, 17, 0, 4, true},

	// NXM_NX_*: Nicira's fields (registers 0-15 are added in init).
	{"NXM_NX_TUN_ID", "tun_id", ClassNXM1, 16, 0, 8, true},
	{"NXM_NX_ARP_SHA", "arp_sha", ClassNXM1, 17, 0, 6, true},
	{"NXM_NX_ARP_THA", "arp_tha", ClassNXM1, 18, 0, 6, true},
	{"NXM_NX_IPV6_SRC", "ipv6_src", ClassNXM1, 19, 0, 16, true},
	{"NXM_NX_IPV6_DST", "ipv6_dst", ClassNXM1, 20, 0, 16, true},
	{"NXM_NX_ICMPV6_TYPE", "icmpv6_type", ClassNXM1, 21, 0, 1, false},
	{"NXM_NX_ICMPV6_CODE", "icmpv6_code", ClassNXM1, 22, 0, 1, false},
	{"NXM_NX_ND_TARGET", "nd_target", ClassNXM1, 23, 0, 16, true},
	{"NXM_NX_ND_SLL", "nd_sll", ClassNXM1, 24, 0, 6, true},
	{"NXM_NX_ND_TLL", "nd_tll", ClassNXM1, 25, 0, 6, true},
	{"NXM_NX_IP_FRAG", "ip_frag", ClassNXM1, 26, 0, 1, true},
	{"NXM_NX_IPV6_LABEL", "ipv6_label", ClassNXM1, 27, 0, 4, true},
	{"NXM_NX_IP_ECN", "nw_ecn", ClassNXM1, 28, 0, 1, false},
	{"NXM_NX_IP_TTL", "nw_ttl", ClassNXM1, 29, 0, 1, false},
	{"NXM_NX_COOKIE", "cookie", ClassNXM1, 30, 0, 8, true},
	{"NXM_NX_TUN_IPV4_SRC", "tun_src", ClassNXM1, 31, 0, 4, true},
	{"NXM_NX_TUN_IPV4_DST", "tun_dst", ClassNXM1, 32, 0, 4, true},
	{"NXM_NX_PKT_MARK", "pkt_mark", ClassNXM1, 33, 0, 4, true},
	{"NXM_NX_TCP_FLAGS", "tcp_flags", ClassNXM1, 34, 0, 2, true},
	{"NXM_NX_DP_HASH", "dp_hash", ClassNXM1, 35, 0, 4, true},
	{"NXM_NX_RECIRC_ID", "recirc_id", ClassNXM1, 36, 0, 4, false},
	{"NXM_NX_CONJ_ID", "conj_id", ClassNXM1, 37, 0, 4, false},
	{"NXM_NX_TUN_GBP_ID", "tun_gbp_id", ClassNXM1, 38, 0, 2, true},
	{"NXM_NX_TUN_GBP_FLAGS", "tun_gbp_flags", ClassNXM1, 39, 0, 1, true},
	{"NXM_NX_TUN_FLAGS", "tun_flags", ClassNXM1, 104, 0, 2, true},
	{"NXM_NX_CT_STATE", "ct_state", ClassNXM1, 105, 0, 4, true},
	{"NXM_NX_CT_ZONE", "ct_zone", ClassNXM1, 106, 0, 2, false},
	{"NXM_NX_CT_MARK", "ct_mark", ClassNXM1, 107, 0, 4, true},
	{"NXM_NX_CT_LABEL", "ct_label", ClassNXM1, 108, 0, 16, true},
	{"NXM_NX_TUN_IPV6_SRC", "tun_ipv6_src", ClassNXM1, 109, 0, 16, true},
	{"NXM_NX_TUN_IPV6_DST", "tun_ipv6_dst", ClassNXM1, 110, 0, 16, true},
	{"NXM_NX_CT_NW_PROTO", "ct_nw_proto", ClassNXM1, 119, 0, 1, false},
	{"NXM_NX_CT_NW_SRC", "ct_nw_src", ClassNXM1, 120, 0, 4, true},
	{"NXM_NX_CT_NW_DST", "ct_nw_dst", ClassNXM1, 121, 0, 4, true},
	{"NXM_NX_CT_IPV6_SRC", "ct_ipv6_src", ClassNXM1, 122, 0, 16, true},
	{"NXM_NX_CT_IPV6_DST", "ct_ipv6_dst", ClassNXM1, 123, 0, 16, true},
	{"NXM_NX_CT_TP_SRC", "ct_tp_src", ClassNXM1, 124, 0, 2, true},
	{"NXM_NX_CT_TP_DST", "ct_tp_dst", ClassNXM1, 125, 0, 2, true},

	// OXM_OF_*: OpenFlow 1.2+ basic fields.
	{"OXM_OF_IN_PORT", "in_port_oxm", ClassOpenFlow, 0, 0, 4, false},
	{"OXM_OF_METADATA", "metadata", ClassOpenFlow, 2, 0, 8, true},
	{"OXM_OF_ETH_DST", "eth_dst", ClassOpenFlow, 3, 0, 6, true},
	{"OXM_OF_ETH_SRC", "eth_src", ClassOpenFlow, 4, 0, 6, true},
	{"OXM_OF_ETH_TYPE", "eth_type", ClassOpenFlow, 5, 0, 2, false},
	{"OXM_OF_VLAN_VID", "vlan_vid", ClassOpenFlow, 6, 0, 2, true},
	{"OXM_OF_VLAN_PCP", "vlan_pcp", ClassOpenFlow, 7, 0, 1, false},
	{"OXM_OF_IP_DSCP", "ip_dscp", ClassOpenFlow, 8, 0, 1, false},
	{"OXM_OF_IP_ECN", "nw_ecn", ClassOpenFlow, 9, 0, 1, false},
	{"OXM_OF_IP_PROTO", "nw_proto", ClassOpenFlow, 10, 0, 1, false},
	{"OXM_OF_IPV4_SRC", "ip_src", ClassOpenFlow, 11, 0, 4, true},
	{"OXM_OF_IPV4_DST", "ip_dst", ClassOpenFlow, 12, 0, 4, true},
	{"OXM_OF_TCP_SRC", "tcp_src", ClassOpenFlow, 13, 0, 2, true},
	{"OXM_OF_TCP_DST", "tcp_dst", ClassOpenFlow, 14, 0, 2, true},
	{"OXM_OF_UDP_SRC", "udp_src", ClassOpenFlow, 15, 0, 2, true},
	{"OXM_OF_UDP_DST", "udp_dst", ClassOpenFlow, 16, 0, 2, true},
	{"OXM_OF_SCTP_SRC", "sctp_src", ClassOpenFlow, 17, 0, 2, true},
	{"OXM_OF_SCTP_DST", "sctp_dst", ClassOpenFlow, 18, 0, 2, true},
	{"OXM_OF_ICMPV4_TYPE", "icmp_type", ClassOpenFlow, 19, 0, 1, false},
	{"OXM_OF_ICMPV4_CODE", "icmp_code", ClassOpenFlow, 20, 0, 1, false},
	{"OXM_OF_ARP_OP", "arp_op", ClassOpenFlow, 21, 0, 2, false},
	{"OXM_OF_ARP_SPA", "arp_spa", ClassOpenFlow, 22, 0, 4, true},
	{"OXM_OF_ARP_TPA", "arp_tpa", ClassOpenFlow, 23, 0, 4, true},
	{"OXM_OF_ARP_SHA", "arp_sha", ClassOpenFlow, 24, 0, 6, true},
	{"OXM_OF_ARP_THA", "arp_tha", ClassOpenFlow, 25, 0, 6, true},
	{"OXM_OF_IPV6_SRC", "ipv6_src", ClassOpenFlow, 26, 0, 16, true},
	{"OXM_OF_IPV6_DST", "ipv6_dst", ClassOpenFlow, 27, 0, 16, true},
	{"OXM_OF_IPV6_FLABEL", "ipv6_label", ClassOpenFlow, 28, 0, 4, true},
	{"OXM_OF_ICMPV6_TYPE", "icmpv6_type", ClassOpenFlow, 29, 0, 1, false},
	{"OXM_OF_ICMPV6_CODE", "icmpv6_code", ClassOpenFlow, 30, 0, 1, false},
	{"OXM_OF_IPV6_ND_TARGET", "nd_target", ClassOpenFlow, 31, 0, 16, true},
	{"OXM_OF_IPV6_ND_SLL", "nd_sll", ClassOpenFlow, 32, 0, 6, true},
	{"OXM_OF_IPV6_ND_TLL", "nd_tll", ClassOpenFlow, 33, 0, 6, true},
	{"OXM_OF_MPLS_LABEL", "mpls_label", ClassOpenFlow, 34, 0, 4, false},
	{"OXM_OF_MPLS_TC", "mpls_tc", ClassOpenFlow, 35, 0, 1, false},
	{"OXM_OF_MPLS_BOS", "mpls_bos", ClassOpenFlow, 36, 0, 1, false},
	{"OXM_OF_TUNNEL_ID", "tun_id", ClassOpenFlow, 38, 0, 8, true},

	// Experimenter OXM fields OVS uses in OpenFlow 1.3.
	{"NXOXM_ET_DP_HASH", "dp_hash", ClassExperimenter, 0, NXVendorID, 4, true},
	{"NXOXM_ET_ERSPAN_IDX", "tun_erspan_idx", ClassExperimenter, 11, NXVendorID, 4, true},
	{"NXOXM_ET_ERSPAN_VER", "tun_erspan_ver", ClassExperimenter, 12, NXVendorID, 1, true},
	{"NXOXM_ET_ERSPAN_DIR", "tun_erspan_dir", ClassExperimenter, 13, NXVendorID, 1, true},
	{"NXOXM_ET_ERSPAN_HWID", "tun_erspan_hwid", ClassExperimenter, 14, NXVendorID, 1, true},
	{"ONFOXM_ET_TCP_FLAGS", "tcp_flags", ClassExperimenter, 42, onfVendorID, 2, true},
	{"ONFOXM_ET_ACTSET_OUTPUT", "actset_output", ClassExperimenter, 43, onfVendorID, 4, false},
}

type fieldKey struct {
	class uint16
	field uint8
	exp   uint32
}

var (
	fieldsByKey  = map[fieldKey]*FieldInfo{}
	fieldsByName = map[string]*FieldInfo{}
)

func init() {
	for i := 0; i < 16; i++ {
		fieldTable = append(fieldTable, FieldInfo{
			Name: fmt.Sprintf("NXM_NX_REG%d", i), FlowName: fmt.Sprintf("reg%d", i),
			Class: ClassNXM1, Field: uint8(i), Len: 4, Maskable: true})
	}
	for i := 0; i < 4; i++ {
		fieldTable = append(fieldTable, FieldInfo{
			Name: fmt.Sprintf("NXM_NX_XXREG%d", i), FlowName: fmt.Sprintf("xxreg%d", i),
			Class: ClassNXM1, Field: uint8(111 + i), Len: 16, Maskable: true})
	}
	for i := 0; i < 8; i++ {
		fieldTable = append(fieldTable, FieldInfo{
			Name: fmt.Sprintf("OXM_OF_PKT_REG%d", i), FlowName: fmt.Sprintf("xreg%d", i),
			Class: 0x8001, Field: uint8(i), Len: 8, Maskable: true})
	}
	for i := range fieldTable {
		f := &fieldTable[i]
		fieldsByKey[fieldKey{f.Class, f.Field, f.Experimenter}] = f
		fieldsByName[f.Name] = f
	}
}

// LookupField finds a field by its wire identity.
func LookupField(class uint16, field uint8, experimenter uint32) (*FieldInfo, bool) {
	f, ok := fieldsByKey[fieldKey{class, field, experimenter}]
	return f, ok
}

// FieldByName finds a field by its NXM/OXM name (NXM_NX_REG0).
func FieldByName(name string) (*FieldInfo, bool) {
	f, ok := fieldsByName[name]
	return f, ok
}

// Header is the field's 32-bit NXM/OXM header without a mask.
func (f *FieldInfo) Header() uint32 {
	n := f.Len
	if f.Class == ClassExperimenter {
		n += 4
	}
	return uint32(f.Class)<<16 | uint32(f.Field)<<9 | uint32(n)
}

// Fields lists every field gvs accepts on the wire, in the table's
// order (the channel advertises them in its table features).
func Fields() []FieldInfo {
	return append([]FieldInfo(nil), fieldTable...)
}
