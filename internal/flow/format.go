package flow

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gvs/internal/packet"
)

// FormatOptions adjusts Match.Format.
type FormatOptions struct {
	// PortName gives a port's name, to print in_port=eth0 rather than
	// in_port=3 (as ovs-ofctl --names does). Nil prints numbers.
	PortName func(port uint32) (string, bool)
}

// String prints the match in ovs-ofctl's canonical form, fields in the
// order ovs-ofctl prints them ("tcp,nw_src=10.0.0.0/24,tp_dst=80"). A
// match that wildcards everything prints as "". For every match ParseMatch
// returns, parsing the printed text gives the same match.
func (m *Match) String() string { return m.Format(FormatOptions{}) }

// Format is String with options.
func (m *Match) Format(o FormatOptions) string {
	w := writer{v: &m.value, m: &m.mask, opts: o}
	w.metadata()
	w.conntrack()
	proto := w.protocol()
	w.registers()
	w.tunnel()
	w.l2(proto)
	w.l3(proto)
	w.l4(proto)
	return strings.TrimSuffix(w.b.String(), ",")
}

// writer prints one match.
type writer struct {
	b    strings.Builder
	v, m *packet.Key
	opts FormatOptions
}

func (w *writer) put(name, text string) {
	w.b.WriteString(name)
	w.b.WriteByte('=')
	w.b.WriteString(text)
	w.b.WriteByte(',')
}

// field returns the value and mask of field name's bits, shifted down,
// and the mask an exact match has.
func (w *writer) field(name string) (value, mask, all uint64) {
	f := fields[name]
	bits := f.slotBits()
	value = getUint(w.v, f.slot) & bits >> f.shift
	mask = getUint(w.m, f.slot) & bits >> f.shift
	return value, mask, bits >> f.shift
}

// cHex prints like C's "%#x": 0 has no prefix.
func cHex(v uint64) string {
	if v == 0 {
		return "0"
	}
	return "0x" + strconv.FormatUint(v, 16)
}

// hexNum prints a field ovs-fields(7) formats in hex.
func (w *writer) hexNum(name string) {
	v, m, all := w.field(name)
	switch {
	case m == 0:
	case m == all:
		w.put(name, cHex(v))
	default:
		w.put(name, cHex(v)+"/"+cHex(m))
	}
}

// decNum prints a field formatted in decimal; a masked one in hex.
func (w *writer) decNum(name string) {
	v, m, all := w.field(name)
	switch {
	case m == 0:
	case m == all:
		w.put(name, strconv.FormatUint(v, 10))
	default:
		w.put(name, fmt.Sprintf("%#x/%#x", v, m))
	}
}

func (w *writer) flags(name string, fs *flagSet) {
	v, m, _ := w.field(name)
	if m != 0 {
		w.put(name, fs.format(v, m))
	}
}

func (w *writer) metadata() {
	w.hexNum("pkt_mark")
	w.hexNum("recirc_id")
	w.hexNum("dp_hash")
	w.decNum("conj_id")
}

func (w *writer) conntrack() {
	w.flags("ct_state", ctStateFlagSet)
	w.decNum("ct_zone")
	w.hexNum("ct_mark")
	w.label("ct_label", sCtLabel)
	w.ipv4("ct_nw_src", sCtNwSrc)
	w.ipv4("ct_nw_dst", sCtNwDst)
	w.ipv6("ct_ipv6_src", sCtIPv6Src)
	w.ipv6("ct_ipv6_dst", sCtIPv6Dst)
	w.decNum("ct_nw_proto")
	w.decNum("ct_tp_src")
	w.decNum("ct_tp_dst")
}

// proto is what the protocol shorthand at the front of the match said.
type proto struct {
	dlTypeDone bool // printed as a shorthand
	protoDone  bool // nw_proto printed as part of the shorthand
	icmp       bool // icmp or icmp6: ports print as icmp_type/icmp_code
}

// protocol prints the shorthand for eth_type and nw_proto, if one says
// them: "tcp", "ipv6", "arp"...
func (w *writer) protocol() proto {
	var pr proto
	if w.ethernetSaid() {
		w.b.WriteString("eth,")
	}
	v := matchView{w.v, w.m}
	t, ok := v.exact(sDlType)
	if !ok {
		return pr
	}
	np, npOK := v.exact(sNwProto)
	sh, found := shorthand{}, false
	for _, c := range shorthands {
		switch {
		case uint64(c.dlType) != t:
		case c.hasProto && npOK && uint64(c.nwProto) == np:
			sh, found = c, true
		case !c.hasProto && !found:
			sh, found = c, true
		}
	}
	if !found {
		return pr
	}
	pr.dlTypeDone, pr.protoDone = true, sh.hasProto
	pr.icmp = sh.hasProto && (sh.nwProto == protoICMP || sh.nwProto == protoICMPv6)
	w.b.WriteString(sh.name + ",")
	return pr
}

// ethernetSaid: ovs-ofctl names the packet type ("eth") in a match on
// recirc_id that also looks at Ethernet fields, because such a match is
// specific to one packet type. It means nothing more, and parses as
// nothing.
func (w *writer) ethernetSaid() bool {
	if isZero(w.m, sRecircID) {
		return false
	}
	return !isZero(w.m, sDlSrc) || !isZero(w.m, sDlDst) || !isZero(w.m, sDlType) || !isZero(w.m, sVLANTCI)
}

func (w *writer) tunnel() {
	w.hexNum("tun_id")
	w.ipv4("tun_src", sTunSrc)
	w.ipv4("tun_dst", sTunDst)
	w.ipv6("tun_ipv6_src", sTunIPv6Src)
	w.ipv6("tun_ipv6_dst", sTunIPv6Dst)
	w.decNum("tun_gbp_id")
	w.hexNum("tun_gbp_flags")
	w.decNum("tun_tos")
	w.decNum("tun_ttl")
	w.flags("tun_flags", tunFlagSet)
	w.decNum("tun_erspan_ver")
	w.hexNum("tun_erspan_idx")
	w.decNum("tun_erspan_dir")
	w.hexNum("tun_erspan_hwid")
}

// registers prints the registers one by one, as ovs-ofctl does even for
// a match written with xreg or xxreg.
func (w *writer) registers() {
	for i := range packet.NumRegs {
		w.hexNum("reg" + strconv.Itoa(i))
	}
}

func (w *writer) l2(pr proto) {
	w.hexNum("metadata")
	if getUint(w.m, sInPort) != 0 {
		w.put("in_port", FormatPort(uint32(getUint(w.v, sInPort)), w.opts.PortName))
	}
	w.vlan()
	w.mac("dl_src", sDlSrc)
	w.mac("dl_dst", sDlDst)
	if !pr.dlTypeDone {
		if v, m, all := w.field("eth_type"); m == all {
			w.put("dl_type", fmt.Sprintf("0x%04x", v))
		} else if m != 0 {
			w.put("dl_type", fmt.Sprintf("0x%04x/0x%04x", v, m))
		}
	}
	w.decNum("mpls_label")
	w.decNum("mpls_tc")
	w.decNum("mpls_ttl")
	w.decNum("mpls_bos")
}

// vlan prints the outer VLAN match as dl_vlan/dl_vlan_pcp when those say
// it exactly, else as vlan_tci.
func (w *writer) vlan() {
	v, m := uint16(getUint(w.v, sVLANTCI)), uint16(getUint(w.m, sVLANTCI))
	vidMask, pcpMask := m&packet.VLANVIDMask, m&packet.VLANPCPMask
	tagged := m&packet.VLANPresent != 0 && v&packet.VLANPresent != 0
	switch {
	case m == 0:
	case tagged && (vidMask == 0 || vidMask == packet.VLANVIDMask) &&
		(pcpMask == 0 || pcpMask == packet.VLANPCPMask) && vidMask|pcpMask != 0:
		if vidMask != 0 {
			w.put("dl_vlan", strconv.Itoa(int(v&packet.VLANVIDMask)))
		}
		if pcpMask != 0 {
			w.put("dl_vlan_pcp", strconv.Itoa(int(v>>packet.VLANPCPShift)))
		}
	case m == tciAll:
		w.put("vlan_tci", fmt.Sprintf("0x%04x", v))
	default:
		w.put("vlan_tci", fmt.Sprintf("0x%04x/0x%04x", v, m))
	}
}

func (w *writer) l3(pr proto) {
	w.ipv4("nw_src", sNwSrc)
	w.ipv4("nw_dst", sNwDst)
	w.ipv6("ipv6_src", sIPv6Src)
	w.ipv6("ipv6_dst", sIPv6Dst)
	if v, m, all := w.field("ipv6_label"); m == all {
		w.put("ipv6_label", fmt.Sprintf("0x%05x", v))
	} else if m != 0 {
		w.put("ipv6_label", fmt.Sprintf("0x%05x/0x%05x", v, m))
	}
	w.ipv4("arp_spa", sArpSpa)
	w.ipv4("arp_tpa", sArpTpa)
	if !pr.protoDone {
		w.decNum("nw_proto")
	}
	if m := getUint(w.m, sArpOp); m != 0 {
		v := getUint(w.v, sArpOp)
		if m == 0xffff {
			w.put("arp_op", strconv.FormatUint(v, 10))
		} else {
			w.put("arp_op", fmt.Sprintf("%#x/%#x", v, m))
		}
	}
	w.mac("arp_sha", sArpSha)
	w.mac("arp_tha", sArpTha)
	w.decNum("nw_tos")
	w.decNum("nw_ecn")
	w.decNum("nw_ttl")
	w.frag()
}

func (w *writer) frag() {
	v, m, _ := w.field("ip_frag")
	if m == 0 {
		return
	}
	for _, form := range fragForms {
		if form.value == v && form.mask == m {
			w.put("nw_frag", form.name)
			return
		}
	}
	w.put("nw_frag", fmt.Sprintf("%#x/%#x", v, m))
}

func (w *writer) l4(pr proto) {
	if pr.icmp {
		w.icmp("icmp_type", "tp_src", sTpSrc)
		w.icmp("icmp_code", "tp_dst", sTpDst)
	} else {
		w.decNum("tp_src")
		w.decNum("tp_dst")
	}
	w.flags("tcp_flags", tcpFlagSet)
	w.ipv6("nd_target", sNdTarget)
	w.mac("nd_sll", sNdSll)
	w.mac("nd_tll", sNdTll)
}

// icmp prints an ICMP type or code, which the key keeps in the port
// fields; a masked one can only be written with the port name.
func (w *writer) icmp(name, portName string, s slot) {
	v, m := getUint(w.v, s), getUint(w.m, s)
	switch {
	case m == 0:
	case m == 0xffff && v <= 0xff:
		w.put(name, strconv.FormatUint(v, 10))
	default:
		w.decNum(portName)
	}
}

// label prints a 128-bit field in hex.
func (w *writer) label(name string, s slot) {
	m := slotBytes(w.m, s)
	if isZero(w.m, s) {
		return
	}
	text := hex128(slotBytes(w.v, s))
	if !isOnes(w.m, s) {
		text += "/" + hex128(m)
	}
	w.put(name, text)
}

func hex128(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, "%02x", c)
	}
	s := strings.TrimLeft(sb.String(), "0")
	if s == "" {
		return "0"
	}
	return "0x" + s
}

func (w *writer) ipv4(name string, s slot) {
	if !isZero(w.m, s) {
		w.put(name, formatIPv4Masked([4]byte(slotBytes(w.v, s)), slotBytes(w.m, s)))
	}
}

func (w *writer) ipv6(name string, s slot) {
	if !isZero(w.m, s) {
		w.put(name, formatIPv6Masked([16]byte(slotBytes(w.v, s)), slotBytes(w.m, s)))
	}
}

// formatIPv6 prints an address as inet_ntop does, which ovs-ofctl uses:
// RFC 5952, plus the dotted form for the deprecated IPv4-compatible
// addresses (::a.b.c.d).
func formatIPv6(a [16]byte) string {
	compat := true
	for _, b := range a[:12] {
		compat = compat && b == 0
	}
	if compat && (a[12] != 0 || a[13] != 0) {
		return "::" + netip.AddrFrom4([4]byte(a[12:])).String()
	}
	return netip.AddrFrom16(a).String()
}

func (w *writer) mac(name string, s slot) {
	if !isZero(w.m, s) {
		w.put(name, formatMACMasked(slotBytes(w.v, s), slotBytes(w.m, s)))
	}
}

func formatMAC(b []byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5])
}
