package openflow

import (
	"bytes"
	"encoding/binary"
)

// Field is one NXM or OXM match entry. Mask is nil for an entry without
// a mask. Experimenter is set only for ClassExperimenter entries.
type Field struct {
	Class        uint16
	Field        uint8
	Experimenter uint32
	Value        []byte
	Mask         []byte
}

// Info returns the table entry of a known field.
func (f *Field) Info() (*FieldInfo, bool) {
	return LookupField(f.Class, f.Field, f.Experimenter)
}

// NewField builds an entry for the named field (NXM_OF_ETH_DST); mask
// may be nil.
func NewField(name string, value, mask []byte) (Field, error) {
	fi, ok := FieldByName(name)
	if !ok {
		return Field{}, errorf(ErrMatchBadField, "unknown field %s", name)
	}
	f := Field{Class: fi.Class, Field: fi.Field, Experimenter: fi.Experimenter, Value: value, Mask: mask}
	return f, f.validate(fi)
}

// maxMatchFields bounds the entries of one match: no real match names
// more fields than exist, and a peer must not make us build huge lists.
const maxMatchFields = 256

// decodeFields reads a list of NXM/OXM entries filling all of b.
func decodeFields(b []byte) ([]Field, error) {
	var out []Field
	seen := map[fieldKey]bool{}
	for len(b) > 0 {
		if len(out) >= maxMatchFields {
			return nil, errorf(ErrMatchBadLen, "match has more than %d fields", maxMatchFields)
		}
		f, n, err := decodeField(b)
		if err != nil {
			return nil, err
		}
		k := fieldKey{f.Class, f.Field, f.Experimenter}
		if seen[k] {
			return nil, errorf(ErrMatchDupField, "field %s appears twice", fieldName(&f))
		}
		seen[k] = true
		out = append(out, f)
		b = b[n:]
	}
	return out, nil
}

// decodeField reads one entry at the start of b and says how many bytes
// it took.
func decodeField(b []byte) (Field, int, error) {
	if len(b) < 4 {
		return Field{}, 0, errorf(ErrMatchBadLen, "%d bytes left, too short for a field header", len(b))
	}
	h := binary.BigEndian.Uint32(b)
	f := Field{Class: uint16(h >> 16), Field: uint8(h>>9) & 0x7f}
	hasMask := h&0x100 != 0
	n := int(h & 0xff)
	if 4+n > len(b) {
		return Field{}, 0, errorf(ErrMatchBadLen, "field header 0x%08x says %d bytes, %d left", h, n, len(b)-4)
	}
	p := b[4 : 4+n]
	if f.Class == ClassExperimenter {
		if n < 4 {
			return Field{}, 0, errorf(ErrMatchBadLen, "experimenter field header 0x%08x has length %d", h, n)
		}
		f.Experimenter = binary.BigEndian.Uint32(p)
		p = p[4:]
	}
	fi, ok := f.Info()
	if !ok {
		return Field{}, 0, errorf(ErrMatchBadField, "unknown field with header 0x%08x", h)
	}
	want := fi.Len
	if hasMask {
		want *= 2
	}
	if len(p) != want {
		// OVS calls a known field of the wrong size an unsupported
		// field, not a length problem; so do we.
		return Field{}, 0, errorf(ErrMatchBadField, "field %s has %d bytes, want %d", fi.Name, len(p), want)
	}
	f.Value = append([]byte(nil), p[:fi.Len]...)
	if hasMask {
		f.Mask = append([]byte(nil), p[fi.Len:]...)
	}
	return f, 4 + n, f.validate(fi)
}

// validate checks what OpenFlow requires of an entry beyond its size:
// only maskable fields have masks, and a value has no 1-bits the mask
// wildcards.
func (f *Field) validate(fi *FieldInfo) error {
	if len(f.Value) != fi.Len || (f.Mask != nil && len(f.Mask) != fi.Len) {
		return errorf(ErrMatchBadLen, "field %s: value of %d bytes, want %d", fi.Name, len(f.Value), fi.Len)
	}
	if f.Mask == nil {
		return nil
	}
	if !fi.Maskable && !allOnes(f.Mask) {
		// An all-ones mask is an exact match, which OVS accepts on
		// any field.
		return errorf(ErrMatchBadMask, "field %s does not take a mask", fi.Name)
	}
	for i := range f.Value {
		if f.Value[i]&^f.Mask[i] != 0 {
			return errorf(ErrMatchBadWildcards, "field %s: value has 1-bits where the mask is 0", fi.Name)
		}
	}
	return nil
}

func allOnes(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

func fieldName(f *Field) string {
	if fi, ok := f.Info(); ok {
		return fi.Name
	}
	return "unknown"
}

func (f *Field) header() uint32 {
	n := len(f.Value) + len(f.Mask)
	if f.Class == ClassExperimenter {
		n += 4
	}
	h := uint32(f.Class)<<16 | uint32(f.Field&0x7f)<<9 | uint32(n&0xff)
	if f.Mask != nil {
		h |= 0x100
	}
	return h
}

func encodeFields(w *writer, fs []Field) {
	for i := range fs {
		f := &fs[i]
		w.u32(f.header())
		if f.Class == ClassExperimenter {
			w.u32(f.Experimenter)
		}
		w.bytes(f.Value)
		w.bytes(f.Mask)
	}
}

// equalFields compares matches entry by entry (order matters on the wire).
func equalFields(a, b []Field) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Class != b[i].Class || a[i].Field != b[i].Field || a[i].Experimenter != b[i].Experimenter ||
			!bytes.Equal(a[i].Value, b[i].Value) || !bytes.Equal(a[i].Mask, b[i].Mask) || (a[i].Mask == nil) != (b[i].Mask == nil) {
			return false
		}
	}
	return true
}

// OXM matches in OpenFlow 1.3 are wrapped in ofp_match: type OFPMT_OXM,
// a length that covers the header and the entries but not the padding to
// 8 bytes.
const ofpmtOXM = 1

func encodeOXMMatch(w *writer, fs []Field) {
	start := w.pos()
	w.u16(ofpmtOXM)
	w.u16(0)
	encodeFields(w, fs)
	w.put16(start+2, uint16(w.pos()-start))
	w.pad8(start)
}

func decodeOXMMatch(r *reader) ([]Field, error) {
	if r.len() < 4 {
		return nil, errorf(ErrMatchBadLen, "match header truncated")
	}
	typ := r.u16()
	n := int(r.u16())
	switch {
	case typ == 0:
		// OFPMT_STANDARD, OpenFlow 1.1's fixed match: OVS reports its
		// (wrong) length first, as we do.
		return nil, errorf(ErrMatchBadLen, "OpenFlow 1.1 standard match in an OpenFlow 1.3 message")
	case typ != ofpmtOXM:
		return nil, errorf(ErrMatchBadType, "match type %d is not OXM", typ)
	}
	if n < 4 || pad8(n)-4 > r.len() {
		return nil, errorf(ErrMatchBadLen, "match length %d with %d bytes left", n, r.len()+4)
	}
	body := r.bytes(n - 4)
	r.skip(pad8(n) - n)
	return decodeFields(body)
}

// decodeNXMMatch reads an NXM match of n bytes followed by padding to 8.
func decodeNXMMatch(r *reader, n int) ([]Field, error) {
	if pad8(n) > r.len() {
		return nil, errorf(ErrMatchBadLen, "NXM match length %d with %d bytes left", n, r.len())
	}
	body := r.bytes(n)
	r.skip(pad8(n) - n)
	return decodeFields(body)
}

// fieldsLen is the encoded size of an NXM match.
func fieldsLen(fs []Field) int {
	n := 0
	for i := range fs {
		n += 4 + len(fs[i].Value) + len(fs[i].Mask)
		if fs[i].Class == ClassExperimenter {
			n += 4
		}
	}
	return n
}

// Match10 is OpenFlow 1.0's fixed ofp_match. Wildcards says which members
// count (OFPFW_*); NwSrcBits and NwDstBits are folded into it as on the
// wire.
type Match10 struct {
	Wildcards uint32
	InPort    uint16
	DlSrc     [6]byte
	DlDst     [6]byte
	DlVLAN    uint16
	DlVLANPCP uint8
	DlType    uint16
	NwTOS     uint8
	NwProto   uint8
	NwSrc     [4]byte
	NwDst     [4]byte
	TpSrc     uint16
	TpDst     uint16
}

// OFPFW_* wildcard bits of Match10.
const (
	FW10InPort     = 1 << 0
	FW10DlVLAN     = 1 << 1
	FW10DlSrc      = 1 << 2
	FW10DlDst      = 1 << 3
	FW10DlType     = 1 << 4
	FW10NwProto    = 1 << 5
	FW10TpSrc      = 1 << 6
	FW10TpDst      = 1 << 7
	FW10NwSrcShift = 8
	FW10NwDstShift = 14
	FW10DlVLANPCP  = 1 << 20
	FW10NwTOS      = 1 << 21
	FW10All        = 1<<22 - 1
)

const match10Len = 40

func encodeMatch10(w *writer, m *Match10) {
	w.u32(m.Wildcards)
	w.u16(m.InPort)
	w.bytes(m.DlSrc[:])
	w.bytes(m.DlDst[:])
	w.u16(m.DlVLAN)
	w.u8(m.DlVLANPCP)
	w.zeros(1)
	w.u16(m.DlType)
	w.u8(m.NwTOS)
	w.u8(m.NwProto)
	w.zeros(2)
	w.bytes(m.NwSrc[:])
	w.bytes(m.NwDst[:])
	w.u16(m.TpSrc)
	w.u16(m.TpDst)
}

func decodeMatch10(r *reader) Match10 {
	var m Match10
	m.Wildcards = r.u32()
	m.InPort = r.u16()
	copy(m.DlSrc[:], r.bytes(6))
	copy(m.DlDst[:], r.bytes(6))
	m.DlVLAN = r.u16()
	m.DlVLANPCP = r.u8()
	r.zeros(1)
	m.DlType = r.u16()
	m.NwTOS = r.u8()
	m.NwProto = r.u8()
	r.zeros(2)
	copy(m.NwSrc[:], r.bytes(4))
	copy(m.NwDst[:], r.bytes(4))
	m.TpSrc = r.u16()
	m.TpDst = r.u16()
	return m
}
