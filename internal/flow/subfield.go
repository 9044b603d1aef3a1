package flow

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Subfield is a range of bits of a field, as load, move, output, learn and
// ct(zone=...) name them: NXM_NX_REG0[0..15], reg0[3], NXM_OF_ETH_SRC[].
// Field is the field's canonical gvs name ("reg0", "eth_src"); Start is
// the least significant bit, counted from 0; Bits how many bits.
type Subfield struct {
	Field string
	Start uint16
	Bits  uint16
}

// nxmField is a field as NXM and OXM name it, with its width in bits.
type nxmField struct {
	nxm   string // the name ovs-ofctl prints
	field string // gvs's canonical field name
	width uint16
}

// nxmFields lists the fields a subfield can name. The first entry of a
// field gives the name printed for it.
var nxmFields = []nxmField{
	{"NXM_OF_IN_PORT", "in_port", 16},
	{"NXM_OF_ETH_DST", "eth_dst", 48},
	{"NXM_OF_ETH_SRC", "eth_src", 48},
	{"NXM_OF_ETH_TYPE", "eth_type", 16},
	{"NXM_OF_VLAN_TCI", "vlan_tci", 16},
	{"NXM_OF_IP_TOS", "nw_tos", 8},
	{"NXM_OF_IP_PROTO", "nw_proto", 8},
	{"NXM_OF_IP_SRC", "ip_src", 32},
	{"NXM_OF_IP_DST", "ip_dst", 32},
	{"NXM_OF_TCP_SRC", "tcp_src", 16},
	{"NXM_OF_TCP_DST", "tcp_dst", 16},
	{"NXM_OF_UDP_SRC", "udp_src", 16},
	{"NXM_OF_UDP_DST", "udp_dst", 16},
	{"NXM_OF_ICMP_TYPE", "icmp_type", 8},
	{"NXM_OF_ICMP_CODE", "icmp_code", 8},
	{"NXM_OF_ARP_OP", "arp_op", 16},
	{"NXM_OF_ARP_SPA", "arp_spa", 32},
	{"NXM_OF_ARP_TPA", "arp_tpa", 32},
	{"NXM_NX_TUN_ID", "tun_id", 64},
	{"OXM_OF_TUNNEL_ID", "tun_id", 64},
	{"NXM_NX_ARP_SHA", "arp_sha", 48},
	{"NXM_NX_ARP_THA", "arp_tha", 48},
	{"NXM_NX_IPV6_SRC", "ipv6_src", 128},
	{"NXM_NX_IPV6_DST", "ipv6_dst", 128},
	{"NXM_NX_ICMPV6_TYPE", "icmpv6_type", 8},
	{"NXM_NX_ICMPV6_CODE", "icmpv6_code", 8},
	{"NXM_NX_ND_TARGET", "nd_target", 128},
	{"NXM_NX_ND_SLL", "nd_sll", 48},
	{"NXM_NX_ND_TLL", "nd_tll", 48},
	{"NXM_NX_IP_FRAG", "ip_frag", 2},
	{"NXM_NX_IPV6_LABEL", "ipv6_label", 20},
	{"NXM_NX_IP_ECN", "nw_ecn", 2},
	{"NXM_NX_IP_TTL", "nw_ttl", 8},
	{"NXM_NX_TUN_IPV4_SRC", "tun_src", 32},
	{"NXM_NX_TUN_IPV4_DST", "tun_dst", 32},
	{"NXM_NX_TUN_IPV6_SRC", "tun_ipv6_src", 128},
	{"NXM_NX_TUN_IPV6_DST", "tun_ipv6_dst", 128},
	{"NXM_NX_TUN_FLAGS", "tun_flags", 1},
	{"NXM_NX_PKT_MARK", "pkt_mark", 32},
	{"NXM_NX_TCP_FLAGS", "tcp_flags", 12},
	{"NXM_NX_DP_HASH", "dp_hash", 32},
	{"NXM_NX_RECIRC_ID", "recirc_id", 32},
	{"NXM_NX_CT_STATE", "ct_state", 32},
	{"NXM_NX_CT_ZONE", "ct_zone", 16},
	{"NXM_NX_CT_MARK", "ct_mark", 32},
	{"NXM_NX_CT_LABEL", "ct_label", 128},
	{"NXM_NX_CT_NW_PROTO", "ct_nw_proto", 8},
	{"NXM_NX_CT_NW_SRC", "ct_nw_src", 32},
	{"NXM_NX_CT_NW_DST", "ct_nw_dst", 32},
	{"NXM_NX_CT_IPV6_SRC", "ct_ipv6_src", 128},
	{"NXM_NX_CT_IPV6_DST", "ct_ipv6_dst", 128},
	{"NXM_NX_CT_TP_SRC", "ct_tp_src", 16},
	{"NXM_NX_CT_TP_DST", "ct_tp_dst", 16},
	{"OXM_OF_METADATA", "metadata", 64},
	{"OXM_OF_VLAN_VID", "vlan_vid", 12},
	{"OXM_OF_VLAN_PCP", "vlan_pcp", 3},
	{"OXM_OF_IP_DSCP", "ip_dscp", 6},
	{"OXM_OF_IP_ECN", "nw_ecn", 2},
	{"OXM_OF_MPLS_LABEL", "mpls_label", 20},
	{"OXM_OF_MPLS_TC", "mpls_tc", 3},
	{"OXM_OF_MPLS_BOS", "mpls_bos", 1},
	{"OXM_OF_SCTP_SRC", "sctp_src", 16},
	{"OXM_OF_SCTP_DST", "sctp_dst", 16},
}

var (
	nxmByName  = map[string]nxmField{}
	nxmByField = map[string]nxmField{}
)

func init() {
	for i := range 16 {
		nxmFields = append(nxmFields, nxmField{fmt.Sprintf("NXM_NX_REG%d", i), fmt.Sprintf("reg%d", i), 32})
	}
	for i := range 8 {
		nxmFields = append(nxmFields, nxmField{fmt.Sprintf("OXM_OF_PKT_REG%d", i), fmt.Sprintf("xreg%d", i), 64})
	}
	for i := range 4 {
		nxmFields = append(nxmFields, nxmField{fmt.Sprintf("NXM_NX_XXREG%d", i), fmt.Sprintf("xxreg%d", i), 128})
	}
	for _, f := range nxmFields {
		nxmByName[f.nxm] = f
		if _, ok := nxmByField[f.field]; !ok {
			nxmByField[f.field] = f
		}
	}
}

// canonicalNames maps a field's other spellings to the name ovs-ofctl
// prints it with. Names not listed print as written (udp_dst stays
// udp_dst, though it shares gvs's key member with tcp_dst).
var canonicalNames = map[string]string{
	"dl_src": "eth_src", "dl_dst": "eth_dst", "dl_type": "eth_type",
	"nw_src": "ip_src", "nw_dst": "ip_dst", "ip_proto": "nw_proto",
	"ip_ecn": "nw_ecn", "nw_frag": "ip_frag", "tunnel_id": "tun_id",
	"tp_src": "tcp_src", "tp_dst": "tcp_dst",
}

func canonicalName(name string) string {
	if c, ok := canonicalNames[name]; ok {
		return c
	}
	return name
}

// fieldWidth is how many bits a subfield of field name can address.
func fieldWidth(name string) (uint16, bool) {
	if f, ok := nxmByField[name]; ok {
		return f.width, true
	}
	return 0, false
}

// lookupSubfieldName resolves an NXM/OXM name or a field name.
func lookupSubfieldName(name string) (string, uint16, error) {
	if f, ok := nxmByName[name]; ok {
		return f.field, f.width, nil
	}
	if _, ok := fields[name]; ok {
		c := canonicalName(name)
		if w, ok := fieldWidth(c); ok {
			return c, w, nil
		}
		return "", 0, fmt.Errorf("field %s cannot be used as a subfield", name)
	}
	if unsupportedField(name) {
		return "", 0, fmt.Errorf("field %s not supported by gvs", name)
	}
	return "", 0, fmt.Errorf("unknown field %s", name)
}

// ParseSubfield reads NAME[start..end], NAME[bit], NAME[] or NAME, where
// NAME is an NXM or OXM name (NXM_NX_REG0) or a field name (reg0).
func ParseSubfield(s string) (Subfield, error) {
	name, rng, hasRange := strings.Cut(s, "[")
	field, width, err := lookupSubfieldName(name)
	if err != nil {
		return Subfield{}, err
	}
	sf := Subfield{Field: field, Bits: width}
	if !hasRange {
		return sf, nil
	}
	rng, ok := strings.CutSuffix(rng, "]")
	if !ok {
		return Subfield{}, fmt.Errorf("%s: missing ']'", s)
	}
	if rng == "" {
		return sf, nil
	}
	lo, hi, isRange := strings.Cut(rng, "..")
	start, err1 := strconv.ParseUint(lo, 10, 16)
	end, err2 := start, error(nil)
	if isRange {
		end, err2 = strconv.ParseUint(hi, 10, 16)
	}
	switch {
	case err1 != nil || err2 != nil || !isDigits(lo, 10) || (isRange && !isDigits(hi, 10)):
		return Subfield{}, fmt.Errorf("%s: bad bit range (write [start..end], [bit] or [])", s)
	case start > end:
		return Subfield{}, fmt.Errorf("%s: the range starts after it ends", s)
	case end >= uint64(width):
		return Subfield{}, fmt.Errorf("%s: bit %d is beyond the field (%d bits)", s, end, width)
	}
	return Subfield{Field: field, Start: uint16(start), Bits: uint16(end-start) + 1}, nil
}

// String prints the subfield as ovs-ofctl does, with the NXM name.
func (sf Subfield) String() string {
	name := sf.Field
	width := uint16(0)
	if f, ok := nxmByField[sf.Field]; ok {
		name, width = f.nxm, f.width
	}
	switch {
	case sf.Start == 0 && sf.Bits == width:
		return name + "[]"
	case sf.Bits == 1:
		return fmt.Sprintf("%s[%d]", name, sf.Start)
	}
	return fmt.Sprintf("%s[%d..%d]", name, sf.Start, sf.Start+sf.Bits-1)
}

// looksLikeSubfield tells a subfield from a value or a port: it has a bit
// range or is an NXM/OXM name.
func looksLikeSubfield(s string) bool {
	name, _, _ := strings.Cut(s, "[")
	_, isNXM := nxmByName[name]
	return strings.Contains(s, "[") || isNXM
}

var errNoArrow = errors.New("missing '->'")
