package flow

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"gvs/internal/packet"
)

// Error reports a match that could not be parsed. Field and Value are the
// offending assignment as written (Value is empty for a bare keyword).
type Error struct {
	Field string
	Value string
	Msg   string
}

func (e *Error) Error() string {
	switch {
	case e.Field == "":
		return e.Msg
	case e.Value == "":
		return e.Field + ": " + e.Msg
	}
	return e.Field + "=" + e.Value + ": " + e.Msg
}

// ParseOptions adjusts ParseMatchWith.
type ParseOptions struct {
	// PortByName resolves a port name in in_port (in_port=eth0) to its
	// OpenFlow port number. Without it, only numbers and the reserved
	// names (LOCAL, CONTROLLER, ...) are accepted.
	PortByName func(name string) (uint32, bool)
	// LenientCtState accepts ct_state flags split by commas
	// (ct_state=+trk,+new) as one value. ovs-ofctl rejects that, because
	// a comma separates fields; gvs's own CLI accepts both spellings.
	LenientCtState bool
}

// ParseMatch parses the match part of an ovs-ofctl flow ("tcp,tp_dst=80"):
// fields and protocol shorthands separated by commas or white space, as
// ovs-fields(7) describes them. An empty string matches everything.
func ParseMatch(s string) (*Match, error) {
	return ParseMatchWith(s, ParseOptions{})
}

// ParseMatchWith is ParseMatch with options.
func ParseMatchWith(s string, opts ParseOptions) (*Match, error) {
	p := parser{opts: opts}
	toks, err := tokenize(s, opts.LenientCtState)
	if err != nil {
		return nil, err
	}
	for i, t := range toks {
		if i > 0 && !t.hasValue && isFlagWord(t.key) && isFlagsField(toks[i-1]) {
			return nil, splitFlagsError(toks[i-1], t)
		}
		if err := p.apply(t); err != nil {
			return nil, err
		}
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	return NewMatch(p.value, p.mask), nil
}

// isFlagsField reports a field=value item written with flag syntax.
func isFlagsField(t token) bool {
	f := fields[t.key]
	return t.hasValue && f != nil && (f.kind == kCtState || f.kind == kTCPFlags || f.kind == kTunFlags)
}

// splitFlagsError explains ct_state=+trk,+new: the comma ended the value.
func splitFlagsError(prev, t token) error {
	return &Error{Field: prev.key, Value: prev.value + "," + t.key, Msg: fmt.Sprintf(
		"%q is not a field: a comma separates fields, so flags go in one value "+
			"without commas (%s=%s%s)", t.key, prev.key, prev.value, t.key)}
}

// mention remembers how the user last wrote to a slot, to name it in a
// prerequisite error.
type mention struct {
	field, value string
}

// parser accumulates a match; later assignments to a field replace
// earlier ones, as in ovs-ofctl.
type parser struct {
	opts        ParseOptions
	value, mask packet.Key
	mentioned   [numSlots]*mention
}

func (p *parser) apply(t token) error {
	if !t.hasValue {
		return p.applyKeyword(t.key)
	}
	f, ok := fields[t.key]
	if !ok {
		return p.unknownField(t)
	}
	if t.value == "" {
		return &Error{Field: t.key, Msg: "missing value"}
	}
	p.mentioned[f.slot] = &mention{t.key, t.value}
	if t.value == "*" {
		p.wildcard(f)
		return nil
	}
	if err := p.setField(f, t.value); err != nil {
		return &Error{Field: t.key, Value: t.value, Msg: err.Error()}
	}
	return nil
}

// applyKeyword handles a word without a value: a protocol shorthand.
func (p *parser) applyKeyword(word string) error {
	if sh, ok := findShorthand(word); ok {
		setUint(&p.value, sDlType, uint64(sh.dlType))
		setUint(&p.mask, sDlType, 0xffff)
		p.mentioned[sDlType] = &mention{field: word}
		if sh.hasProto {
			setUint(&p.value, sNwProto, uint64(sh.nwProto))
			setUint(&p.mask, sNwProto, 0xff)
			p.mentioned[sNwProto] = &mention{field: word}
		}
		return nil
	}
	switch {
	case word == "eth":
		return nil // packet_type=(0,0): every gvs packet is Ethernet
	case word[0] == '+' || word[0] == '-':
		return &Error{Field: word, Msg: "not a field: flags such as ct_state's are written together " +
			"in one value, without commas (ct_state=+trk+new)"}
	case notMatchFields[word]:
		return &Error{Field: word, Msg: "not a match field (it belongs to a flow, not to its match)"}
	case fields[word] != nil:
		return &Error{Field: word, Msg: "missing value"}
	}
	return &Error{Field: word, Msg: "unknown field or protocol" + caseHint(word)}
}

func (p *parser) unknownField(t token) error {
	switch {
	case notMatchFields[t.key]:
		return &Error{Field: t.key, Value: t.value, Msg: "not a match field (it belongs to a flow, not to its match)"}
	case unsupportedField(t.key):
		return &Error{Field: t.key, Value: t.value, Msg: "field not supported by gvs"}
	}
	if _, ok := findShorthand(t.key); ok {
		return &Error{Field: t.key, Value: t.value, Msg: "a protocol keyword takes no value"}
	}
	return &Error{Field: t.key, Value: t.value, Msg: "unknown field" + caseHint(t.key)}
}

// caseHint points out that names are case-sensitive when the lower-case
// spelling is known.
func caseHint(name string) string {
	lower := strings.ToLower(name)
	if _, ok := findShorthand(lower); ok || fields[lower] != nil {
		return fmt.Sprintf(" (names are case-sensitive: %s)", lower)
	}
	return ""
}

// wildcard handles field=*: the field matches anything, though it still
// needs its prerequisites (ovs-fields(7)).
func (p *parser) wildcard(f *field) {
	switch f.kind {
	case kVLANVID, kDlVLAN, kVLANPCP:
		p.wildcardVLAN(f.kind == kVLANPCP)
		return
	}
	if f.kind == kReg {
		for _, r := range f.regs {
			setUint(&p.value, r, 0)
			setUint(&p.mask, r, 0)
		}
		return
	}
	if layouts[f.slot].isInt {
		p.setSlot(f, 0, 0)
		return
	}
	clearSlot(&p.value, f.slot)
	clearSlot(&p.mask, f.slot)
}

// setSlot replaces the bits a field covers in the value and mask.
func (p *parser) setSlot(f *field, value, mask uint64) {
	bits := f.slotBits()
	v := getUint(&p.value, f.slot)&^bits | value&mask&bits
	m := getUint(&p.mask, f.slot)&^bits | mask&bits
	setUint(&p.value, f.slot, v)
	setUint(&p.mask, f.slot, m)
}

// slotBits is the part of the slot a field writes; for byte slots, all of
// it (only integer slots are shared bit-wise).
func (f *field) slotBits() uint64 {
	switch {
	case f.bits != 0:
		return f.bits
	case f.kind == kNum:
		return uint64(1)<<f.width - 1 // a shift by 64 gives 0: all ones
	case f.kind == kVLANVID || f.kind == kDlVLAN:
		return tciVIDBits
	case f.kind == kVLANPCP:
		return tciPCPBits
	}
	l := layouts[f.slot]
	if !l.isInt {
		return 0
	}
	return uint64(1)<<(8*l.size) - 1 // a shift by 64 gives 0, so 8 bytes give all ones
}

func (p *parser) setBytes(s slot, value, mask []byte) {
	v, m := slotBytes(&p.value, s), slotBytes(&p.mask, s)
	for i := range v {
		v[i] = value[i] & mask[i]
		m[i] = mask[i]
	}
}

// setField parses one value and writes it.
func (p *parser) setField(f *field, s string) error {
	switch f.kind {
	case kNum:
		return p.setNum(f, s)
	case kIPv4:
		v, m, err := parseIPv4Masked(s)
		if err == nil {
			p.setBytes(f.slot, v[:], m[:])
		}
		return err
	case kIPv6:
		v, m, err := parseIPv6Masked(s)
		if err == nil {
			p.setBytes(f.slot, v[:], m[:])
		}
		return err
	case kMAC:
		v, m, err := parseMACMasked(s)
		if err == nil {
			p.setBytes(f.slot, v[:], m[:])
		}
		return err
	case kLabel:
		return p.setLabel(f, s)
	case kTCPFlags, kCtState, kTunFlags:
		return p.setFlags(f, s)
	case kFrag:
		return p.setFrag(f, s)
	case kPort:
		return p.setPort(f, s)
	case kReg:
		return p.setReg(f, s)
	}
	return p.setVLAN(f, s)
}

func (p *parser) setNum(f *field, s string) error {
	vs, ms, hasMask, err := splitMask(s)
	if err != nil {
		return err
	}
	value, err := parseUint(vs, f.width)
	if err != nil {
		return widthError(err, f.width)
	}
	all := uint64(1)<<f.width - 1
	if f.width == 64 {
		all = ^uint64(0)
	}
	mask := all
	if hasMask {
		if mask, err = parseUint(ms, f.width); err != nil {
			return fmt.Errorf("mask: %w", widthError(err, f.width))
		}
		if !f.maskable && mask != 0 && mask != all {
			return fmt.Errorf("%s cannot be masked (only /0 or /%#x)", f.name, all)
		}
	}
	bits := f.slotBits()
	if mask == all {
		// Exact: all the bits the field covers, which for icmp_type is
		// the whole 16-bit port slot it shares.
		mask = bits >> f.shift
	}
	if (value<<f.shift)&^bits != 0 {
		if f.slot == sNwTOS && f.shift == 0 && bits == 0xfc {
			return errors.New("nw_tos holds only the 6 DSCP bits (a multiple of 4); the 2 ECN bits are nw_ecn")
		}
		return fmt.Errorf("bits %#x are outside %s (only %#x)", value&^(bits>>f.shift), f.name, bits>>f.shift)
	}
	p.setSlot(f, value<<f.shift, mask<<f.shift&bits)
	return nil
}

func widthError(err error, width uint) error {
	if err != errTooLarge {
		return err
	}
	if width == 64 {
		return fmt.Errorf("value too large (the field is 64 bits)")
	}
	return fmt.Errorf("value too large (the field is %d bits: at most %d)", width, uint64(1)<<width-1)
}

func (p *parser) setLabel(f *field, s string) error {
	vs, ms, hasMask, err := splitMask(s)
	if err != nil {
		return err
	}
	value, err := parseUint128(vs)
	if err != nil {
		return widthError128(err)
	}
	mask := [16]byte(prefixMask(128, 16))
	if hasMask {
		if mask, err = parseUint128(ms); err != nil {
			return fmt.Errorf("mask: %w", widthError128(err))
		}
	}
	p.setBytes(f.slot, value[:], mask[:])
	return nil
}

func widthError128(err error) error {
	if err != errTooLarge {
		return err
	}
	return fmt.Errorf("value too large (the field is 128 bits; write wide values in hex)")
}

func (p *parser) setFlags(f *field, s string) error {
	fs := tunFlagSet
	switch f.kind {
	case kTCPFlags:
		fs = tcpFlagSet
	case kCtState:
		fs = ctStateFlagSet
	}
	value, mask, err := fs.parse(s)
	if err != nil {
		return err
	}
	if f.kind == kCtState {
		if err := checkCtState(value, mask); err != nil {
			return err
		}
	}
	p.setSlot(f, value, mask)
	return nil
}

// checkCtState refuses ct_state combinations no packet can have, as the
// OVS switch does when such a flow is added.
func checkCtState(value, mask uint64) error {
	switch {
	case mask&csTrk != 0 && value&csTrk == 0 && value != 0:
		return fmt.Errorf("invalid connection state: with -trk no other flag can be set")
	case value&csInv != 0 && value&^(csInv|csTrk) != 0:
		return fmt.Errorf("invalid connection state: with +inv only +trk can also be set")
	case value&csNew != 0 && value&csEst != 0:
		return fmt.Errorf("invalid connection state: new and est are mutually exclusive")
	case value&csNew != 0 && value&csRpl != 0:
		return fmt.Errorf("invalid connection state: new and rpl are mutually exclusive")
	}
	return nil
}

// fragForms are ip_frag's keywords as value/mask of the key's NwFrag bits.
var fragForms = []struct {
	name        string
	value, mask uint64
}{
	{"no", 0, uint64(packet.FragAny)},
	{"yes", uint64(packet.FragAny), uint64(packet.FragAny)},
	{"first", uint64(packet.FragAny), uint64(packet.FragAny | packet.FragLater)},
	{"later", uint64(packet.FragAny | packet.FragLater), uint64(packet.FragAny | packet.FragLater)},
	{"not_later", 0, uint64(packet.FragLater)},
}

func (p *parser) setFrag(f *field, s string) error {
	for _, form := range fragForms {
		if form.name == s {
			p.setSlot(f, form.value, form.mask)
			return nil
		}
	}
	// gvs also takes the bits as numbers, so that every value/mask a
	// Match can hold prints as text that parses back.
	if s[0] >= '0' && s[0] <= '9' {
		vs, ms, hasMask, err := splitMask(s)
		if err == nil {
			v, errV := parseUint(vs, 2)
			m, errM := uint64(3), error(nil)
			if hasMask {
				m, errM = parseUint(ms, 2)
			}
			if errV == nil && errM == nil {
				p.setSlot(f, v, m)
				return nil
			}
		}
	}
	return fmt.Errorf("unknown fragment type (known: no, yes, first, later, not_later)")
}

// setReg writes a register field (reg3=5/0xff, xreg0=..., xxreg1=...)
// into the 32-bit registers it spans, the most significant first.
func (p *parser) setReg(f *field, s string) error {
	vs, ms, hasMask, err := splitMask(s)
	if err != nil {
		return err
	}
	value, err := parseWide(vs, f.width)
	if err != nil {
		return err
	}
	mask := [16]byte(prefixMask(128, 16))
	if hasMask {
		if mask, err = parseWide(ms, f.width); err != nil {
			return fmt.Errorf("mask: %w", err)
		}
	}
	n := len(f.regs)
	for j, r := range f.regs {
		off := 16 - 4*(n-j)
		v, m := binary.BigEndian.Uint32(value[off:]), binary.BigEndian.Uint32(mask[off:])
		setUint(&p.value, r, uint64(v&m))
		setUint(&p.mask, r, uint64(m))
	}
	return nil
}

// parseWide reads a number of up to width (32, 64 or 128) bits into 16
// big-endian bytes.
func parseWide(s string, width uint) ([16]byte, error) {
	if width > 64 {
		v, err := parseUint128(s)
		return v, widthError128(err)
	}
	var out [16]byte
	v, err := parseUint(s, width)
	if err != nil {
		return out, widthError(err, width)
	}
	binary.BigEndian.PutUint64(out[8:], v)
	return out, nil
}
