package flow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// FieldValue is a value (and mask) for one whole field, as set_field and
// learn write it: big-endian, right-aligned in 16 bytes, so that a 32-bit
// register's value is in the last four.
type FieldValue struct {
	Value, Mask [16]byte
}

// readOnly are fields set_field cannot write (OVS refuses the same).
var readOnly = map[string]bool{
	"eth_type": true, "nw_proto": true, "ip_frag": true, "tcp_flags": true,
	"recirc_id": true, "dp_hash": true, "ct_state": true, "ct_zone": true,
	"ct_nw_proto": true, "ct_nw_src": true, "ct_nw_dst": true, "ct_ipv6_src": true,
	"ct_ipv6_dst": true, "ct_tp_src": true, "ct_tp_dst": true,
}

// ctOnly are fields written only inside ct(exec(...)).
var ctOnly = map[string]bool{"ct_mark": true, "ct_label": true}

// hexFields print their values in hex, as ovs-fields(7) formats them.
var hexFields = map[string]bool{
	"tun_id": true, "pkt_mark": true, "recirc_id": true, "dp_hash": true, "ct_mark": true,
	"metadata": true, "tun_gbp_flags": true, "tun_erspan_idx": true, "tun_erspan_hwid": true,
	"eth_type": true, "vlan_tci": true, "ipv6_label": true, "ct_label": true,
}

// valueWidth is the width of a field's value in bits.
func valueWidth(name string, f *field) uint {
	if f.kind == kVLANVID {
		return 13 // the VID and OpenFlow 1.2's OFPVID_PRESENT bit
	}
	if w, ok := fieldWidth(name); ok {
		return uint(w)
	}
	switch f.kind {
	case kDlVLAN:
		return 12
	case kVLANPCP:
		return 3
	}
	return f.width
}

// allOnes returns the mask of a whole field of width bits.
func allOnes(width uint) [16]byte {
	var m [16]byte
	for i := range width {
		m[15-i/8] |= 1 << (i % 8)
	}
	return m
}

func putUint(v uint64) [16]byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], v)
	return b
}

func getUint64(b [16]byte) uint64 { return binary.BigEndian.Uint64(b[8:]) }

// parseFieldValue reads VALUE[/MASK] in the syntax of field name.
func parseFieldValue(name, s string, byName func(string) (uint32, bool)) (FieldValue, error) {
	f := fields[name]
	if f == nil {
		return FieldValue{}, errors.New("unknown field")
	}
	width := valueWidth(canonicalName(name), f)
	var fv FieldValue
	switch f.kind {
	case kIPv4:
		v, m, err := parseIPv4Masked(s)
		copy(fv.Value[12:], v[:])
		copy(fv.Mask[12:], m[:])
		return fv, err
	case kIPv6:
		v, m, err := parseIPv6Masked(s)
		return FieldValue{v, m}, err
	case kMAC:
		v, m, err := parseMACMasked(s)
		copy(fv.Value[10:], v[:])
		copy(fv.Mask[10:], m[:])
		return fv, err
	case kTCPFlags, kCtState, kTunFlags:
		v, m, err := flagSetOf(f.kind).parse(s)
		return FieldValue{putUint(v), putUint(m)}, err
	case kPort:
		p, err := ParsePort(s, byName)
		return FieldValue{putUint(uint64(p)), allOnes(width)}, err
	case kFrag:
		return fv, errors.New("field is read-only")
	}
	return parseNumberValue(f, s, width)
}

func parseNumberValue(f *field, s string, width uint) (FieldValue, error) {
	vs, ms, hasMask, err := splitMask(s)
	if err != nil {
		return FieldValue{}, err
	}
	fv := FieldValue{Mask: allOnes(width)}
	if fv.Value, err = parseWide(vs, width); err != nil {
		return FieldValue{}, err
	}
	if hasMask {
		if fv.Mask, err = parseWide(ms, width); err != nil {
			return FieldValue{}, fmt.Errorf("mask: %w", err)
		}
	}
	if f.kind == kNum && f.bits != 0 && f.shift == 0 && getUint64(fv.Value)&^f.bits != 0 {
		return FieldValue{}, fmt.Errorf("bits %#x are outside %s (only %#x)", getUint64(fv.Value)&^f.bits, f.name, f.bits)
	}
	for i := range fv.Value {
		fv.Value[i] &= fv.Mask[i]
	}
	return fv, nil
}

func flagSetOf(k kind) *flagSet {
	switch k {
	case kTCPFlags:
		return tcpFlagSet
	case kCtState:
		return ctStateFlagSet
	}
	return tunFlagSet
}

// formatFieldValue prints a value of field name as ovs-ofctl does.
func formatFieldValue(name string, fv FieldValue, portName func(uint32) (string, bool)) string {
	f := fields[name]
	if f == nil {
		return hex128(fv.Value[:])
	}
	width := valueWidth(name, f)
	exact := fv.Mask == allOnes(width)
	switch f.kind {
	case kIPv4:
		return formatIPv4Masked([4]byte(fv.Value[12:]), fv.Mask[12:])
	case kIPv6:
		return formatIPv6Masked(fv.Value, fv.Mask[:])
	case kMAC:
		return formatMACMasked(fv.Value[10:], fv.Mask[10:])
	case kTCPFlags, kCtState, kTunFlags:
		if getUint64(fv.Mask) == 0 {
			return "0/0" // the flag syntax has no word for "no flags looked at"
		}
		return flagSetOf(f.kind).format(getUint64(fv.Value), getUint64(fv.Mask))
	case kPort:
		return FormatPort(uint32(getUint64(fv.Value)), portName)
	}
	value := strconv.FormatUint(getUint64(fv.Value), 10)
	if hexFields[name] || f.kind == kReg || width > 64 {
		value = hex128(fv.Value[:])
	}
	if !exact {
		value += "/" + hex128(fv.Mask[:])
	}
	return value
}

func formatIPv4Masked(v [4]byte, m []byte) string {
	text := netip.AddrFrom4(v).String()
	switch n := prefixLen(m); {
	case n == 32:
	case n >= 0:
		text += "/" + strconv.Itoa(n)
	default:
		text += "/" + netip.AddrFrom4([4]byte(m)).String()
	}
	return text
}

func formatIPv6Masked(v [16]byte, m []byte) string {
	text := formatIPv6(v)
	switch n := prefixLen(m); {
	case n == 128:
	case n >= 0:
		text += "/" + strconv.Itoa(n)
	default:
		text += "/" + formatIPv6([16]byte(m))
	}
	return text
}

func formatMACMasked(v, m []byte) string {
	text := formatMAC(v)
	if [6]byte(m) != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
		text += "/" + formatMAC(m)
	}
	return text
}
