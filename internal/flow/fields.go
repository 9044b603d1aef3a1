package flow

import (
	"fmt"
	"strings"

	"gvs/internal/packet"
)

// kind says how a field's value is written.
type kind uint8

const (
	kNum      kind = iota // an integer: decimal, 0x hex or 0 octal
	kIPv4                 // dotted quad, /prefix or /dotted mask
	kIPv6                 // RFC 4291 text, /prefix or /address mask
	kMAC                  // xx:xx:xx:xx:xx:xx, /mask
	kLabel                // a 128-bit integer (ct_label)
	kTCPFlags             // +syn-ack, syn|ack or numbers
	kCtState              // +trk+new, trk|new or numbers
	kTunFlags             // +oam, oam or numbers
	kFrag                 // no, yes, first, later, not_later
	kPort                 // an OpenFlow port number or name
	kVLANTCI              // vlan_tci: the TCI with the present bit
	kVLANVID              // vlan_vid: OpenFlow 1.2 VID with OFPVID_PRESENT
	kDlVLAN               // dl_vlan: OpenFlow 1.0 VID, 0xffff for untagged
	kVLANPCP              // dl_vlan_pcp, vlan_pcp
	kReg                  // regN, xregN, xxregN: one or more 32-bit registers
)

// field is one name a match can mention, and where it writes in the key.
type field struct {
	name string
	slot slot
	kind kind
	// For kNum: the value is shifted left by shift into the slot, where
	// it covers bits (0: the low width bits); it is width bits wide, and
	// takes arbitrary masks if maskable.
	bits     uint64
	shift    uint
	width    uint
	maskable bool
	// For kReg: the registers the field spans, most significant first.
	regs []slot
}

func num(name string, s slot, width uint, maskable bool) *field {
	return &field{name: name, slot: s, kind: kNum, width: width, maskable: maskable}
}

func bitsOf(name string, s slot, bits uint64, shift, width uint) *field {
	return &field{name: name, slot: s, kind: kNum, bits: bits, shift: shift, width: width}
}

// typed is a field with a syntax of its own (addresses, flags, ports...),
// which decides for itself what masks it takes.
func typed(name string, s slot, k kind) *field {
	return &field{name: name, slot: s, kind: k}
}

// fields maps every accepted field name (aliases included) to its field.
// Names are case-sensitive, as in OVS.
var fields = map[string]*field{}

func init() {
	for _, f := range []*field{
		num("tun_id", sTunID, 64, true),
		typed("tun_src", sTunSrc, kIPv4),
		typed("tun_dst", sTunDst, kIPv4),
		typed("tun_ipv6_src", sTunIPv6Src, kIPv6),
		typed("tun_ipv6_dst", sTunIPv6Dst, kIPv6),
		num("tun_tos", sTunTOS, 8, false),
		num("tun_ttl", sTunTTL, 8, false),
		typed("tun_flags", sTunFlags, kTunFlags),
		num("tun_gbp_id", sTunGBPID, 16, true),
		num("tun_gbp_flags", sTunGBPFlags, 8, true),
		num("tun_erspan_ver", sTunErspanVer, 4, true),
		num("tun_erspan_idx", sTunErspanIdx, 20, true),
		num("tun_erspan_dir", sTunErspanDir, 1, true),
		num("tun_erspan_hwid", sTunErspanHWID, 6, true),
		num("metadata", sMetadata, 64, true),
		typed("in_port", sInPort, kPort),
		num("recirc_id", sRecircID, 32, false),
		num("dp_hash", sDpHash, 32, true),
		num("conj_id", sConjID, 32, false),
		num("pkt_mark", sPktMark, 32, true),
		typed("ct_state", sCtState, kCtState),
		num("ct_zone", sCtZone, 16, false),
		num("ct_mark", sCtMark, 32, true),
		typed("ct_label", sCtLabel, kLabel),
		typed("ct_nw_src", sCtNwSrc, kIPv4),
		typed("ct_nw_dst", sCtNwDst, kIPv4),
		typed("ct_ipv6_src", sCtIPv6Src, kIPv6),
		typed("ct_ipv6_dst", sCtIPv6Dst, kIPv6),
		num("ct_nw_proto", sCtNwProto, 8, false),
		num("ct_tp_src", sCtTpSrc, 16, true),
		num("ct_tp_dst", sCtTpDst, 16, true),
		typed("eth_src", sDlSrc, kMAC),
		typed("eth_dst", sDlDst, kMAC),
		num("eth_type", sDlType, 16, false),
		typed("vlan_tci", sVLANTCI, kVLANTCI),
		typed("vlan_vid", sVLANTCI, kVLANVID),
		typed("dl_vlan", sVLANTCI, kDlVLAN),
		typed("vlan_pcp", sVLANTCI, kVLANPCP),
		bitsOf("mpls_label", sMPLS, 0xfffff000, 12, 20),
		bitsOf("mpls_tc", sMPLS, 0xe00, 9, 3),
		bitsOf("mpls_bos", sMPLS, 0x100, 8, 1),
		bitsOf("mpls_ttl", sMPLS, 0xff, 0, 8),
		typed("ip_src", sNwSrc, kIPv4),
		typed("ip_dst", sNwDst, kIPv4),
		typed("ipv6_src", sIPv6Src, kIPv6),
		typed("ipv6_dst", sIPv6Dst, kIPv6),
		num("ipv6_label", sIPv6Label, 20, true),
		num("nw_proto", sNwProto, 8, false),
		num("nw_ttl", sNwTTL, 8, false),
		bitsOf("nw_tos", sNwTOS, 0xfc, 0, 8),
		bitsOf("ip_dscp", sNwTOS, 0xfc, 2, 6),
		bitsOf("nw_ecn", sNwTOS, 0x03, 0, 2),
		typed("ip_frag", sNwFrag, kFrag),
		num("tcp_src", sTpSrc, 16, true),
		num("tcp_dst", sTpDst, 16, true),
		typed("tcp_flags", sTCPFlags, kTCPFlags),
		bitsOf("icmp_type", sTpSrc, 0xffff, 0, 8),
		bitsOf("icmp_code", sTpDst, 0xffff, 0, 8),
		// arp_op, arp_spa and arp_tpa share the slots of nw_proto,
		// nw_src and nw_dst while parsing, as in OpenFlow 1.0; they move
		// to the key's ARP members once the match is known to be ARP.
		bitsOf("arp_op", sNwProto, 0xff, 0, 8),
		typed("arp_spa", sNwSrc, kIPv4),
		typed("arp_tpa", sNwDst, kIPv4),
		typed("arp_sha", sArpSha, kMAC),
		typed("arp_tha", sArpTha, kMAC),
		typed("nd_target", sNdTarget, kIPv6),
		// nd_sll and nd_tll likewise share arp_sha and arp_tha.
		typed("nd_sll", sArpSha, kMAC),
		typed("nd_tll", sArpTha, kMAC),
	} {
		fields[f.name] = f
	}
	addRegisters()
	for alias, name := range aliases {
		f := *fields[name]
		f.name = alias
		fields[alias] = &f
	}
}

// addRegisters adds reg0-reg15 (32 bits), xreg0-xreg7 (64 bits: two
// registers) and xxreg0-xxreg3 (128 bits: four), as ovs-fields(7) defines
// them: the lower-numbered register holds the more significant bits.
func addRegisters() {
	for _, r := range []struct {
		prefix string
		n      int
	}{{"reg", 1}, {"xreg", 2}, {"xxreg", 4}} {
		for i := range packet.NumRegs / r.n {
			f := &field{name: fmt.Sprintf("%s%d", r.prefix, i), kind: kReg, width: uint(32 * r.n), maskable: true}
			for j := range r.n {
				f.regs = append(f.regs, sReg0+slot(i*r.n+j))
			}
			f.slot = f.regs[0]
			fields[f.name] = f
		}
	}
}

// aliases are other names of the same fields. A field keeps the name the
// user wrote, for error messages.
var aliases = map[string]string{
	"tunnel_id":   "tun_id",
	"in_port_oxm": "in_port",
	"dl_src":      "eth_src",
	"dl_dst":      "eth_dst",
	"dl_type":     "eth_type",
	"dl_vlan_pcp": "vlan_pcp",
	"nw_src":      "ip_src",
	"nw_dst":      "ip_dst",
	"ip_proto":    "nw_proto",
	"ip_ecn":      "nw_ecn",
	"nw_frag":     "ip_frag",
	"tp_src":      "tcp_src",
	"tp_dst":      "tcp_dst",
	"udp_src":     "tcp_src",
	"udp_dst":     "tcp_dst",
	"sctp_src":    "tcp_src",
	"sctp_dst":    "tcp_dst",
	"icmpv6_type": "icmp_type",
	"icmpv6_code": "icmp_code",
}

// Ethertypes and IP protocols the shorthands and prerequisites name.
const (
	ethIPv4  = 0x0800
	ethARP   = 0x0806
	ethRARP  = 0x8035
	ethIPv6  = 0x86dd
	ethMPLS  = 0x8847
	ethMPLSM = 0x8848

	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
)

// shorthand is a protocol keyword: it sets eth_type and maybe nw_proto.
type shorthand struct {
	name     string
	dlType   uint16
	nwProto  uint8
	hasProto bool
}

var shorthands = []shorthand{
	{"ip", ethIPv4, 0, false},
	{"ipv6", ethIPv6, 0, false},
	{"icmp", ethIPv4, protoICMP, true},
	{"icmp6", ethIPv6, protoICMPv6, true},
	{"tcp", ethIPv4, protoTCP, true},
	{"tcp6", ethIPv6, protoTCP, true},
	{"udp", ethIPv4, protoUDP, true},
	{"udp6", ethIPv6, protoUDP, true},
	{"sctp", ethIPv4, protoSCTP, true},
	{"sctp6", ethIPv6, protoSCTP, true},
	{"arp", ethARP, 0, false},
	{"rarp", ethRARP, 0, false},
	{"mpls", ethMPLS, 0, false},
	{"mplsm", ethMPLSM, 0, false},
}

func findShorthand(name string) (shorthand, bool) {
	for _, s := range shorthands {
		if s.name == name {
			return s, true
		}
	}
	return shorthand{}, false
}

// notMatchFields are the other keywords of ovs-ofctl's flow syntax: they
// describe a flow or a command, not what it matches.
var notMatchFields = map[string]bool{
	"priority": true, "cookie": true, "table": true, "actions": true,
	"idle_timeout": true, "hard_timeout": true, "importance": true,
	"send_flow_rem": true, "check_overlap": true, "reset_counts": true,
	"no_packet_counts": true, "no_byte_counts": true, "out_port": true,
	"out_group": true, "duration": true, "n_packets": true, "n_bytes": true,
	"idle_age": true, "hard_age": true,
}

// unsupportedField reports names OVS knows as match fields that gvs's flow
// key does not carry, so that the error says so rather than "unknown".
func unsupportedField(name string) bool {
	switch name {
	case "skb_priority", "actset_output", "packet_type",
		"nd_reserved", "nd_options_type", "tun_gtpu_flags", "tun_gtpu_msgtype",
		"nsp", "nsi", "nshc1", "nshc2", "nshc3", "nshc4":
		return true
	}
	for _, p := range []string{"tun_metadata", "nsh_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
