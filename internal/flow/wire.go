package flow

import (
	"fmt"

	"gvs/internal/packet"
)

// WireField is one NXM/OXM match entry seen by its ovs-fields(7) name:
// Value and Mask are big-endian, right-aligned in 16 bytes (as
// FieldValue), and an exact match has a mask of all ones over the
// field's width. The OpenFlow channel converts between these and the
// wire's entries, whose lengths it knows; this package knows where each
// field lives in the flow key.
type WireField struct {
	Name string
	FieldValue
}

// MatchFromWire builds a match from the entries of an NXM or OXM match,
// checking prerequisites and values as ParseMatch does for text. Names
// are ovs-fields(7) names (in_port with a 16-bit port number, vlan_tci,
// vlan_vid and vlan_pcp as OpenFlow 1.2 defines them, regN, xregN).
func MatchFromWire(fs []WireField) (*Match, error) {
	var p parser
	for _, wf := range fs {
		f, ok := fields[wf.Name]
		if !ok {
			return nil, &Error{Field: wf.Name, Msg: "field not supported by gvs"}
		}
		p.mentioned[f.slot] = &mention{field: wf.Name, value: hex128(wf.Value[:])}
		if err := p.setWire(f, wf.FieldValue); err != nil {
			return nil, &Error{Field: wf.Name, Value: hex128(wf.Value[:]), Msg: err.Error()}
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return NewMatch(p.value, p.mask), nil
}

// setWire writes one wire entry into the parser's key.
func (p *parser) setWire(f *field, fv FieldValue) error {
	v, m := getUint64(fv.Value), getUint64(fv.Mask)
	switch f.kind {
	case kIPv4, kIPv6, kMAC, kLabel:
		n := int(layouts[f.slot].size)
		p.setBytes(f.slot, fv.Value[16-n:], fv.Mask[16-n:])
		return nil
	case kReg:
		n := len(f.regs)
		for j, r := range f.regs {
			off := 16 - 4*(n-j)
			rv := uint64(fv.Value[off])<<24 | uint64(fv.Value[off+1])<<16 | uint64(fv.Value[off+2])<<8 | uint64(fv.Value[off+3])
			rm := uint64(fv.Mask[off])<<24 | uint64(fv.Mask[off+1])<<16 | uint64(fv.Mask[off+2])<<8 | uint64(fv.Mask[off+3])
			setUint(&p.value, r, rv&rm)
			setUint(&p.mask, r, rm)
		}
		return nil
	case kCtState:
		// No checkCtState here: the OVS 3.1 switch takes any
		// combination of the eight flags over OpenFlow (+new+est, -trk+new),
		// a flow that then matches no packet. Bits past them it refuses.
		if (v|m)&^ctStateFlagSet.all() != 0 {
			return fmt.Errorf("bits %#x are outside ct_state: mask not supported", (v|m)&^ctStateFlagSet.all())
		}
	case kTunFlags:
		// oam is OpenFlow's only tunnel flag: the key's other bits (df,
		// csum, key) are the datapath's, which an exact wire match must
		// not look at.
		if v&^tunFlagSet.all() != 0 {
			return fmt.Errorf("bits %#x are outside tun_flags", v&^tunFlagSet.all())
		}
		p.setSlot(f, v, m&tunFlagSet.all())
		return nil
	case kVLANVID:
		// OpenFlow 1.2's VID carries the present bit where the TCI has CFI.
		p.setSlot(f, v&tciVIDBits, m&tciVIDBits)
		return nil
	case kVLANPCP:
		if v > 7 {
			return fmt.Errorf("value %d too large (3 bits)", v)
		}
		p.setSlot(f, v<<packet.VLANPCPShift|uint64(packet.VLANPresent), tciPCPBits)
		return nil
	case kNum:
		bits := f.slotBits()
		if fv.Mask == allOnes(valueWidth(f.name, f)) {
			m = bits >> f.shift // exact, as the text "icmp_type=8" is
		}
		if (v<<f.shift)&^bits != 0 {
			return fmt.Errorf("bits %#x are outside %s", v&^(bits>>f.shift), f.name)
		}
		p.setSlot(f, v<<f.shift, m<<f.shift&bits)
		return nil
	}
	p.setSlot(f, v, m)
	return nil
}

// wireSlot is one field WireFields can emit: its name and the bits of a
// key slot it covers.
type wireSlot struct {
	name  string
	s     slot
	bits  uint64 // 0: the whole slot
	shift uint
}

// The fields of a match in the order OVS puts them on the wire, so that
// every field's prerequisites come before it.
var (
	wireMeta = []wireSlot{
		{"in_port", sInPort, 0, 0}, {"tun_id", sTunID, 0, 0}, {"tun_src", sTunSrc, 0, 0},
		{"tun_dst", sTunDst, 0, 0}, {"tun_ipv6_src", sTunIPv6Src, 0, 0}, {"tun_ipv6_dst", sTunIPv6Dst, 0, 0},
		{"tun_flags", sTunFlags, 0, 0}, {"tun_gbp_id", sTunGBPID, 0, 0}, {"tun_gbp_flags", sTunGBPFlags, 0, 0},
		{"tun_erspan_idx", sTunErspanIdx, 0, 0}, {"tun_erspan_ver", sTunErspanVer, 0, 0},
		{"tun_erspan_dir", sTunErspanDir, 0, 0}, {"tun_erspan_hwid", sTunErspanHWID, 0, 0},
		{"metadata", sMetadata, 0, 0}, {"recirc_id", sRecircID, 0, 0}, {"dp_hash", sDpHash, 0, 0},
		{"conj_id", sConjID, 0, 0},
		{"pkt_mark", sPktMark, 0, 0}, {"ct_state", sCtState, 0, 0}, {"ct_zone", sCtZone, 0, 0},
		{"ct_mark", sCtMark, 0, 0}, {"ct_label", sCtLabel, 0, 0},
		{"eth_src", sDlSrc, 0, 0}, {"eth_dst", sDlDst, 0, 0}, {"eth_type", sDlType, 0, 0},
		{"vlan_tci", sVLANTCI, 0, 0},
	}
	wireCt4  = []wireSlot{{"ct_nw_proto", sCtNwProto, 0, 0}, {"ct_nw_src", sCtNwSrc, 0, 0}, {"ct_nw_dst", sCtNwDst, 0, 0}}
	wireCt6  = []wireSlot{{"ct_nw_proto", sCtNwProto, 0, 0}, {"ct_ipv6_src", sCtIPv6Src, 0, 0}, {"ct_ipv6_dst", sCtIPv6Dst, 0, 0}}
	wireCtTp = []wireSlot{{"ct_tp_src", sCtTpSrc, 0, 0}, {"ct_tp_dst", sCtTpDst, 0, 0}}
	wireIPv4 = []wireSlot{{"ip_src", sNwSrc, 0, 0}, {"ip_dst", sNwDst, 0, 0}}
	wireIPv6 = []wireSlot{{"ipv6_src", sIPv6Src, 0, 0}, {"ipv6_dst", sIPv6Dst, 0, 0}, {"ipv6_label", sIPv6Label, 0, 0}}
	wireIP   = []wireSlot{
		{"nw_proto", sNwProto, 0, 0}, {"nw_tos", sNwTOS, 0xfc, 0}, {"nw_ecn", sNwTOS, 0x03, 0},
		{"nw_ttl", sNwTTL, 0, 0}, {"ip_frag", sNwFrag, 0, 0},
	}
	wireARP = []wireSlot{
		{"arp_op", sArpOp, 0xff, 0}, {"arp_spa", sArpSpa, 0, 0}, {"arp_tpa", sArpTpa, 0, 0},
		{"arp_sha", sArpSha, 0, 0}, {"arp_tha", sArpTha, 0, 0},
	}
	wireICMP   = []wireSlot{{"icmp_type", sTpSrc, 0xff, 0}, {"icmp_code", sTpDst, 0xff, 0}}
	wireICMPv6 = []wireSlot{
		{"icmpv6_type", sTpSrc, 0xff, 0}, {"icmpv6_code", sTpDst, 0xff, 0}, {"nd_target", sNdTarget, 0, 0},
		{"nd_sll", sNdSll, 0, 0}, {"nd_tll", sNdTll, 0, 0},
	}
)

func tpSlots(proto string) []wireSlot {
	return []wireSlot{{proto + "_src", sTpSrc, 0, 0}, {proto + "_dst", sTpDst, 0, 0}}
}

// WireFields lists the match as NXM/OXM entries, prerequisites first, in
// the form MatchFromWire reads: the inverse of MatchFromWire. Registers
// come out one 32-bit register at a time.
func (m *Match) WireFields() []WireField {
	var out []WireField
	emit := func(list []wireSlot) {
		for _, ws := range list {
			if wf, ok := m.wireField(ws); ok {
				out = append(out, wf)
			}
		}
	}
	emit(wireMeta)
	for i := range packet.NumRegs {
		emit([]wireSlot{{fmt.Sprintf("reg%d", i), sReg0 + slot(i), 0, 0}})
	}
	dlType := getUint(&m.value, sDlType)
	if getUint(&m.mask, sDlType) == 0 {
		dlType = 0
	}
	proto := getUint(&m.value, sNwProto)
	switch dlType {
	case 0x0806:
		emit(wireARP)
		return out
	case 0x0800:
		emit(wireIPv4)
	case 0x86dd:
		emit(wireIPv6)
	default:
		return out
	}
	emit(wireIP)
	if getUint(&m.mask, sCtNwProto) != 0 || !isZero(&m.mask, sCtNwSrc) || !isZero(&m.mask, sCtIPv6Src) ||
		!isZero(&m.mask, sCtNwDst) || !isZero(&m.mask, sCtIPv6Dst) {
		if dlType == 0x0800 {
			emit(wireCt4)
		} else {
			emit(wireCt6)
		}
	}
	emit(wireCtTp)
	switch {
	case getUint(&m.mask, sNwProto) == 0:
	case proto == 6:
		emit(tpSlots("tcp"))
		emit([]wireSlot{{"tcp_flags", sTCPFlags, 0, 0}})
	case proto == 17:
		emit(tpSlots("udp"))
	case proto == 132:
		emit(tpSlots("sctp"))
	case proto == 1 && dlType == 0x0800:
		emit(wireICMP)
	case proto == 58 && dlType == 0x86dd:
		emit(wireICMPv6)
	}
	return out
}

// wireField extracts one entry, if the match looks at its bits.
func (m *Match) wireField(ws wireSlot) (WireField, bool) {
	l := layouts[ws.s]
	wf := WireField{Name: ws.name}
	if !l.isInt {
		if isZero(&m.mask, ws.s) {
			return wf, false
		}
		copy(wf.Value[16-l.size:], slotBytes(&m.value, ws.s))
		copy(wf.Mask[16-l.size:], slotBytes(&m.mask, ws.s))
		return wf, true
	}
	bits := ws.bits
	if bits == 0 {
		bits = uint64(1)<<(8*l.size) - 1
		if l.size == 8 {
			bits = ^uint64(0)
		}
	}
	mask := getUint(&m.mask, ws.s) & bits
	if mask == 0 {
		return wf, false
	}
	wf.Value = putUint((getUint(&m.value, ws.s) & bits) >> ws.shift)
	wf.Mask = putUint(mask >> ws.shift)
	return wf, true
}

// keySlots are the wire fields by name, for KeyField.
var keySlots = map[string]wireSlot{}

func init() {
	for _, list := range [][]wireSlot{wireMeta, wireCt4, wireCt6, wireCtTp, wireIPv4, wireIPv6, wireIP, wireARP,
		wireICMP, wireICMPv6, tpSlots("tcp"), tpSlots("udp"), tpSlots("sctp"), {{"tcp_flags", sTCPFlags, 0, 0}}} {
		for _, ws := range list {
			if _, dup := keySlots[ws.name]; !dup {
				keySlots[ws.name] = ws
			}
		}
	}
	for i := range packet.NumRegs {
		keySlots[fmt.Sprintf("reg%d", i)] = wireSlot{fmt.Sprintf("reg%d", i), sReg0 + slot(i), 0, 0}
	}
}

// KeyField returns the value of the field a subfield names (its
// canonical name: "eth_src", "vlan_tci", "reg0", "in_port") in key k,
// right-aligned as a FieldValue's, and the key bits it is read from (for
// a cache mask); false for a field that is not in the key this way.
func KeyField(k *packet.Key, name string) ([16]byte, packet.Key, bool) {
	ws, ok := keySlots[name]
	if !ok {
		return [16]byte{}, packet.Key{}, false
	}
	var mask packet.Key
	l := layouts[ws.s]
	if l.isInt {
		bits := ws.bits
		if bits == 0 {
			bits = ^uint64(0)
		}
		setUint(&mask, ws.s, bits)
	} else {
		for i := range slotBytes(&mask, ws.s) {
			slotBytes(&mask, ws.s)[i] = 0xff
		}
	}
	m := Match{value: *k, mask: mask}
	wf, _ := m.wireField(ws)
	return wf.Value, mask, true
}

// FieldsMask returns the key bits that fields (names, and masks in
// FieldValue.Mask; the values are ignored) cover: what a select group's
// selection_method=hash,fields(...) hashes. Prerequisites are not
// required, as OVS's field list names fields alone.
func FieldsMask(fs []WireField) (packet.Key, error) {
	var p parser
	for _, wf := range fs {
		f, ok := fields[wf.Name]
		if !ok {
			return packet.Key{}, &Error{Field: wf.Name, Msg: "field not supported by gvs"}
		}
		wf.Value = wf.Mask
		if err := p.setWire(f, wf.FieldValue); err != nil {
			return packet.Key{}, &Error{Field: wf.Name, Msg: err.Error()}
		}
	}
	return p.mask, nil
}
