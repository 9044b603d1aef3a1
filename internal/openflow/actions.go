package openflow

import (
	"encoding/binary"
	"fmt"
)

// Action is one OpenFlow or Nicira action. The same Go type stands for
// the action in both versions where OpenFlow only renumbered it (dec_ttl
// is Nicira's in 1.0 and standard in 1.3); encoding an action a version
// cannot carry is an error.
type Action interface {
	encode(w *writer, version uint8) error
}

// Standard actions.
type (
	// Output sends to a port; MaxLen bounds what goes to the controller.
	Output struct {
		Port   uint32
		MaxLen uint16
	}
	SetVLANVID struct{ VID uint16 } // 1.0's mod_vlan_vid
	SetVLANPCP struct{ PCP uint8 }  // 1.0's mod_vlan_pcp
	PopVLAN    struct{}             // strip_vlan in 1.0, pop_vlan in 1.3
	SetDlAddr  struct {             // mod_dl_src / mod_dl_dst
		Dst  bool
		Addr [6]byte
	}
	SetNwAddr struct { // mod_nw_src / mod_nw_dst
		Dst  bool
		Addr [4]byte
	}
	SetNwTOS  struct{ TOS uint8 }
	SetTpPort struct { // mod_tp_src / mod_tp_dst
		Dst  bool
		Port uint16
	}
	Enqueue struct { // 1.0 only
		Port    uint32
		QueueID uint32
	}
	PushVLAN struct{ EthType uint16 } // 1.3 only
	SetQueue struct{ QueueID uint32 }
	Group    struct{ GroupID uint32 }
	SetNwTTL struct{ TTL uint8 }   // 1.3 only
	DecNwTTL struct{}              // dec_ttl
	SetField struct{ Field Field } // 1.3 set_field, 1.0 NXAST_REG_LOAD2
)

// Nicira extension actions.
type (
	Resubmit struct {
		InPort uint32 // PortInPort for "the packet's in_port"
		Table  uint8  // 255: the current table
		// WithTable selects NXAST_RESUBMIT_TABLE (resubmit(port,table))
		// over the older NXAST_RESUBMIT (resubmit:port).
		WithTable bool
		CT        bool // resubmit(,T,ct)
	}
	SetTunnel struct {
		ID   uint64
		Is64 bool // NXAST_SET_TUNNEL64
	}
	PopQueue struct{}
	RegLoad  struct {
		OfsNbits uint16 // offset << 6 | (n_bits - 1)
		Dst      uint32 // NXM header
		Value    uint64
	}
	RegMove struct {
		NBits, SrcOfs, DstOfs uint16
		Src, Dst              uint32 // NXM headers
	}
	Note      struct{ Data []byte } // includes the zero padding, as OVS keeps it
	OutputReg struct {
		OfsNbits uint16
		Src      uint32
		MaxLen   uint16
	}
	// Learn keeps nx_action_learn's body (after the subtype) as it came:
	// gvs decodes and re-encodes it; ofproto interprets it.
	Learn      struct{ Body []byte }
	Exit       struct{}
	Controller struct {
		MaxLen       uint16
		ControllerID uint16
		Reason       uint8
	}
	WriteMetadata struct{ Metadata, Mask uint64 } // 1.0 form of the instruction
	Conjunction   struct {
		Clause, NClauses uint8
		ID               uint32
	}
	CT struct {
		Flags       uint16
		ZoneSrc     uint32 // NXM header of the zone field, or 0 for ZoneImm
		Zone        uint16 // immediate zone, or ofs_nbits of ZoneSrc
		RecircTable uint8
		Alg         uint16
		Actions     []Action
	}
	NAT struct {
		Flags        uint16
		RangePresent uint16
		IPv4Min      [4]byte
		IPv4Max      [4]byte
		IPv6Min      [16]byte
		IPv6Max      [16]byte
		ProtoMin     uint16
		ProtoMax     uint16
	}
	OutputTrunc struct {
		Port   uint32
		MaxLen uint32
	}
	Clone   struct{ Actions []Action }
	CTClear struct{}
)

// Nicira action subtypes (nicira-ext.h, ofp-actions.c).
const (
	nxastResubmit      = 1
	nxastSetTunnel     = 2
	nxastSetQueue      = 4
	nxastPopQueue      = 5
	nxastRegMove       = 6
	nxastRegLoad       = 7
	nxastNote          = 8
	nxastSetTunnel64   = 9
	nxastResubmitTable = 14
	nxastOutputReg     = 15
	nxastLearn         = 16
	nxastExit          = 17
	nxastDecTTL        = 18
	nxastController    = 20
	nxastWriteMetadata = 22
	nxastRegLoad2      = 33
	nxastConjunction   = 34
	nxastCT            = 35
	nxastNAT           = 36
	nxastOutputTrunc   = 39
	nxastGroup         = 40
	nxastClone         = 42
	nxastCTClear       = 43
	nxastResubmitCT    = 44
)

// NAT range_present bits.
const (
	NATRangeIPv4Min  = 1 << 0
	NATRangeIPv4Max  = 1 << 1
	NATRangeIPv6Min  = 1 << 2
	NATRangeIPv6Max  = 1 << 3
	NATRangeProtoMin = 1 << 4
	NATRangeProtoMax = 1 << 5
)

const ofpatVendor = 0xffff

// maxActionDepth bounds nesting of clone and ct, so that a crafted
// message cannot recurse without end.
const maxActionDepth = 16

// EncodeActions appends the encoding of acts for version.
func EncodeActions(b []byte, version uint8, acts []Action) ([]byte, error) {
	w := &writer{b: b}
	err := encodeActions(w, version, acts)
	return w.b, err
}

func encodeActions(w *writer, version uint8, acts []Action) error {
	for _, a := range acts {
		if a == nil {
			return errorf(ErrActBadType, "nil action")
		}
		if err := a.encode(w, version); err != nil {
			return err
		}
	}
	return nil
}

// std starts a standard action of the given type; end fixes its length.
func std(w *writer, typ uint16) int {
	at := w.pos()
	w.u16(typ)
	w.u16(0)
	return at
}

func nx(w *writer, subtype uint16) int {
	at := std(w, ofpatVendor)
	w.u32(NXVendorID)
	w.u16(subtype)
	return at
}

func end(w *writer, at int) error {
	w.pad8(at)
	n := w.pos() - at
	if n > MaxMessageLen {
		return errorf(ErrActBadLen, "action of %d bytes", n)
	}
	w.put16(at+2, uint16(n))
	return nil
}

// only checks that an action exists in version: want Version10 means
// 1.0 alone, Version13 means 1.3 and later.
func only(version, want uint8, what string) error {
	if (version == Version10) != (want == Version10) {
		return errorf(ErrActBadType, "%s is not an action of %s", what, versionName(version))
	}
	return nil
}

func (a Output) encode(w *writer, v uint8) error {
	at := std(w, 0)
	if err := putPort(w, v, a.Port); err != nil {
		return err
	}
	w.u16(a.MaxLen)
	return end(w, at)
}

// stdType13 numbers for the actions that 1.1 renumbered.
func (a SetVLANVID) encode(w *writer, v uint8) error {
	at := std(w, 1)
	w.u16(a.VID)
	return end(w, at)
}

func (a SetVLANPCP) encode(w *writer, v uint8) error {
	at := std(w, 2)
	w.u8(a.PCP)
	return end(w, at)
}

func (a PopVLAN) encode(w *writer, v uint8) error {
	t := uint16(18)
	if v == Version10 {
		t = 3
	}
	return end(w, std(w, t))
}

func (a SetDlAddr) encode(w *writer, v uint8) error {
	t := uint16(3)
	if v == Version10 {
		t = 4
	}
	if a.Dst {
		t++
	}
	at := std(w, t)
	w.bytes(a.Addr[:])
	return end(w, at)
}

func (a SetNwAddr) encode(w *writer, v uint8) error {
	t := uint16(5)
	if v == Version10 {
		t = 6
	}
	if a.Dst {
		t++
	}
	at := std(w, t)
	w.bytes(a.Addr[:])
	return end(w, at)
}

func (a SetNwTOS) encode(w *writer, v uint8) error {
	t := uint16(7)
	if v == Version10 {
		t = 8
	}
	at := std(w, t)
	w.u8(a.TOS)
	return end(w, at)
}

func (a SetTpPort) encode(w *writer, v uint8) error {
	t := uint16(9)
	if a.Dst {
		t = 10
	}
	at := std(w, t)
	w.u16(a.Port)
	return end(w, at)
}

func (a Enqueue) encode(w *writer, v uint8) error {
	if err := only(v, Version10, "enqueue"); err != nil {
		return err
	}
	at := std(w, 11)
	if err := putPort(w, v, a.Port); err != nil {
		return err
	}
	w.zeros(6)
	w.u32(a.QueueID)
	return end(w, at)
}

func (a PushVLAN) encode(w *writer, v uint8) error {
	if err := only(v, Version13, "push_vlan"); err != nil {
		return err
	}
	at := std(w, 17)
	w.u16(a.EthType)
	return end(w, at)
}

func (a SetQueue) encode(w *writer, v uint8) error {
	var at int
	if v == Version10 {
		at = nx(w, nxastSetQueue)
		w.zeros(2)
	} else {
		at = std(w, 21)
	}
	w.u32(a.QueueID)
	return end(w, at)
}

func (a Group) encode(w *writer, v uint8) error {
	var at int
	if v == Version10 {
		at = nx(w, nxastGroup)
		w.zeros(2)
	} else {
		at = std(w, 22)
	}
	w.u32(a.GroupID)
	return end(w, at)
}

func (a SetNwTTL) encode(w *writer, v uint8) error {
	if err := only(v, Version13, "mod_nw_ttl"); err != nil {
		return err
	}
	at := std(w, 23)
	w.u8(a.TTL)
	return end(w, at)
}

func (a DecNwTTL) encode(w *writer, v uint8) error {
	if v == Version10 {
		at := nx(w, nxastDecTTL)
		w.zeros(6)
		return end(w, at)
	}
	return end(w, std(w, 24))
}

func (a SetField) encode(w *writer, v uint8) error {
	var at int
	if v == Version10 {
		at = nx(w, nxastRegLoad2)
	} else {
		at = std(w, 25)
	}
	encodeFields(w, []Field{a.Field})
	return end(w, at)
}

func (a Resubmit) encode(w *writer, v uint8) error {
	p, err := toPort10(a.InPort)
	if err != nil {
		return err
	}
	switch {
	case a.CT:
		at := nx(w, nxastResubmitCT)
		w.u16(p)
		w.u8(a.Table)
		return end(w, at)
	case a.WithTable:
		at := nx(w, nxastResubmitTable)
		w.u16(p)
		w.u8(a.Table)
		return end(w, at)
	}
	at := nx(w, nxastResubmit)
	w.u16(p)
	return end(w, at)
}

func (a SetTunnel) encode(w *writer, v uint8) error {
	if a.Is64 {
		at := nx(w, nxastSetTunnel64)
		w.zeros(6)
		w.u64(a.ID)
		return end(w, at)
	}
	if a.ID > 0xffffffff {
		return errorf(ErrActBadArgument, "set_tunnel id 0x%x needs the 64-bit form", a.ID)
	}
	at := nx(w, nxastSetTunnel)
	w.zeros(2)
	w.u32(uint32(a.ID))
	return end(w, at)
}

func (a PopQueue) encode(w *writer, v uint8) error { return end(w, nx(w, nxastPopQueue)) }
func (a Exit) encode(w *writer, v uint8) error     { return end(w, nx(w, nxastExit)) }
func (a CTClear) encode(w *writer, v uint8) error  { return end(w, nx(w, nxastCTClear)) }

func (a RegLoad) encode(w *writer, v uint8) error {
	at := nx(w, nxastRegLoad)
	w.u16(a.OfsNbits)
	w.u32(a.Dst)
	w.u64(a.Value)
	return end(w, at)
}

func (a RegMove) encode(w *writer, v uint8) error {
	at := nx(w, nxastRegMove)
	w.u16(a.NBits)
	w.u16(a.SrcOfs)
	w.u16(a.DstOfs)
	w.u32(a.Src)
	w.u32(a.Dst)
	return end(w, at)
}

func (a Note) encode(w *writer, v uint8) error {
	at := nx(w, nxastNote)
	w.bytes(a.Data)
	if w.pos()-at < 16 {
		w.zeros(16 - (w.pos() - at))
	}
	return end(w, at)
}

func (a OutputReg) encode(w *writer, v uint8) error {
	at := nx(w, nxastOutputReg)
	w.u16(a.OfsNbits)
	w.u32(a.Src)
	w.u16(a.MaxLen)
	w.zeros(6)
	return end(w, at)
}

func (a Learn) encode(w *writer, v uint8) error {
	at := nx(w, nxastLearn)
	w.bytes(a.Body)
	return end(w, at)
}

func (a Controller) encode(w *writer, v uint8) error {
	at := nx(w, nxastController)
	w.u16(a.MaxLen)
	w.u16(a.ControllerID)
	w.u8(a.Reason)
	return end(w, at)
}

func (a WriteMetadata) encode(w *writer, v uint8) error {
	at := nx(w, nxastWriteMetadata)
	w.zeros(6)
	w.u64(a.Metadata)
	w.u64(a.Mask)
	return end(w, at)
}

func (a Conjunction) encode(w *writer, v uint8) error {
	at := nx(w, nxastConjunction)
	w.u8(a.Clause)
	w.u8(a.NClauses)
	w.u32(a.ID)
	return end(w, at)
}

func (a CT) encode(w *writer, v uint8) error {
	at := nx(w, nxastCT)
	w.u16(a.Flags)
	w.u32(a.ZoneSrc)
	w.u16(a.Zone)
	w.u8(a.RecircTable)
	w.zeros(3)
	w.u16(a.Alg)
	if err := encodeActions(w, v, a.Actions); err != nil {
		return err
	}
	return end(w, at)
}

func (a NAT) encode(w *writer, v uint8) error {
	at := nx(w, nxastNAT)
	w.zeros(2)
	w.u16(a.Flags)
	w.u16(a.RangePresent)
	if a.RangePresent&NATRangeIPv4Min != 0 {
		w.bytes(a.IPv4Min[:])
	}
	if a.RangePresent&NATRangeIPv4Max != 0 {
		w.bytes(a.IPv4Max[:])
	}
	if a.RangePresent&NATRangeIPv6Min != 0 {
		w.bytes(a.IPv6Min[:])
	}
	if a.RangePresent&NATRangeIPv6Max != 0 {
		w.bytes(a.IPv6Max[:])
	}
	if a.RangePresent&NATRangeProtoMin != 0 {
		w.u16(a.ProtoMin)
	}
	if a.RangePresent&NATRangeProtoMax != 0 {
		w.u16(a.ProtoMax)
	}
	return end(w, at)
}

func (a OutputTrunc) encode(w *writer, v uint8) error {
	at := nx(w, nxastOutputTrunc)
	p, err := toPort10(a.Port)
	if err != nil {
		return err
	}
	w.u16(p)
	w.u32(a.MaxLen)
	return end(w, at)
}

func (a Clone) encode(w *writer, v uint8) error {
	at := nx(w, nxastClone)
	w.zeros(6)
	if err := encodeActions(w, v, a.Actions); err != nil {
		return err
	}
	return end(w, at)
}

// DecodeActions reads an action list that fills b.
func DecodeActions(b []byte, version uint8) ([]Action, error) {
	return decodeActions(b, version, 0)
}

// maxActions bounds one list; 64 KiB of 8-byte actions is the most a
// message can hold anyway.
const maxActions = MaxMessageLen / 8

func decodeActions(b []byte, version uint8, depth int) ([]Action, error) {
	if depth > maxActionDepth {
		return nil, errorf(ErrActBadArgument, "actions nested more than %d deep", maxActionDepth)
	}
	var out []Action
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errorf(ErrActBadLen, "%d bytes left, too short for an action", len(b))
		}
		typ := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n < 8 || n%8 != 0 || n > len(b) {
			return nil, errorf(ErrActBadLen, "action type %d has length %d (%d bytes left)", typ, n, len(b))
		}
		if len(out) >= maxActions {
			return nil, errorf(ErrActTooMany, "more than %d actions", maxActions)
		}
		a, err := decodeAction(b[:n], typ, version, depth)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
		b = b[n:]
	}
	return out, nil
}

// actLen is the exact length each fixed-size action must have.
func wantLen(b []byte, n int, what string) error {
	if len(b) != n {
		return errorf(ErrActBadLen, "%s action has length %d, want %d", what, len(b), n)
	}
	return nil
}

func decodeAction(b []byte, typ uint16, v uint8, depth int) (Action, error) {
	if typ == ofpatVendor {
		return decodeVendorAction(b, v, depth)
	}
	r := newReader(b[4:], ErrActBadLen, "action")
	if v == Version10 {
		return decodeAction10(r, b, typ)
	}
	return decodeAction13(r, b, typ)
}

func decodeAction10(r *reader, b []byte, typ uint16) (Action, error) {
	size := actionLen10
	n, ok := size[typ]
	if !ok {
		return nil, errorf(ErrActBadType, "unknown OpenFlow 1.0 action type %d", typ)
	}
	if err := wantLen(b, n, fmt.Sprintf("OpenFlow 1.0 type %d", typ)); err != nil {
		return nil, err
	}
	var a Action
	switch typ {
	case 0:
		a = Output{Port: port10(r.u16()), MaxLen: r.u16()}
	case 1:
		a = SetVLANVID{VID: r.u16()}
	case 2:
		a = SetVLANPCP{PCP: r.u8()}
	case 3:
		a = PopVLAN{}
	case 4, 5:
		d := SetDlAddr{Dst: typ == 5}
		copy(d.Addr[:], r.bytes(6))
		a = d
	case 6, 7:
		d := SetNwAddr{Dst: typ == 7}
		copy(d.Addr[:], r.bytes(4))
		a = d
	case 8:
		a = SetNwTOS{TOS: r.u8()}
	case 9, 10:
		a = SetTpPort{Dst: typ == 10, Port: r.u16()}
	case 11:
		p := port10(r.u16())
		r.zeros(6)
		a = Enqueue{Port: p, QueueID: r.u32()}
	}
	return a, r.err
}

func decodeAction13(r *reader, b []byte, typ uint16) (Action, error) {
	size := actionLen13
	if typ == 25 {
		return decodeSetField(b[4:], 4, "set_field")
	}
	n, ok := size[typ]
	if !ok {
		return nil, errorf(ErrActBadType, "unknown OpenFlow 1.3 action type %d", typ)
	}
	if err := wantLen(b, n, fmt.Sprintf("OpenFlow 1.3 type %d", typ)); err != nil {
		return nil, err
	}
	var a Action
	switch typ {
	case 0:
		a = Output{Port: r.u32(), MaxLen: r.u16()}
	case 1:
		a = SetVLANVID{VID: r.u16()}
	case 2:
		a = SetVLANPCP{PCP: r.u8()}
	case 3, 4:
		d := SetDlAddr{Dst: typ == 4}
		copy(d.Addr[:], r.bytes(6))
		a = d
	case 5, 6:
		d := SetNwAddr{Dst: typ == 6}
		copy(d.Addr[:], r.bytes(4))
		a = d
	case 7:
		a = SetNwTOS{TOS: r.u8()}
	case 9, 10:
		a = SetTpPort{Dst: typ == 10, Port: r.u16()}
	case 17:
		a = PushVLAN{EthType: r.u16()}
	case 18:
		a = PopVLAN{}
	case 21:
		a = SetQueue{QueueID: r.u32()}
	case 22:
		a = Group{GroupID: r.u32()}
	case 23:
		a = SetNwTTL{TTL: r.u8()}
	case 24:
		a = DecNwTTL{}
	}
	return a, r.err
}

// decodeSetField reads one OXM entry and its padding. hdrLen is the size
// of the action header before the entry. In an action, OVS reports an
// unknown field as OFPBAC_BAD_SET_TYPE and a known one of the wrong size
// as OFPBAC_BAD_SET_LEN; a truncated entry keeps its match error.
func decodeSetField(b []byte, hdrLen int, what string) (Action, error) {
	if len(b) >= 4 {
		h := binary.BigEndian.Uint32(b)
		class, field, n := uint16(h>>16), uint8(h>>9)&0x7f, int(h&0xff)
		var exp uint32
		if class == ClassExperimenter && len(b) >= 8 {
			exp = binary.BigEndian.Uint32(b[4:])
			n -= 4
		}
		if h&0x100 != 0 {
			n /= 2
		}
		fi, ok := LookupField(class, field, exp)
		switch {
		case !ok:
			return nil, errorf(ErrActBadSetType, "%s of unknown field with header 0x%08x", what, h)
		case n != fi.Len:
			return nil, errorf(ErrActBadSetLen, "%s of %s with %d bytes, want %d", what, fi.Name, n, fi.Len)
		}
	}
	f, n, err := decodeField(b)
	if err != nil {
		return nil, err
	}
	if f.Mask != nil && what == "set_field" {
		return nil, errorf(ErrActBadSetMask, "%s with a mask", what)
	}
	if pad8(hdrLen+n) != hdrLen+len(b) {
		return nil, errorf(ErrActBadLen, "%s action has %d bytes for a %d-byte field", what, hdrLen+len(b), n)
	}
	return SetField{Field: f}, nil
}

// fieldByHeader finds the field of a 4-byte NXM header as reg_load,
// reg_move and output_reg name it: class, field and length must all fit.
func fieldByHeader(h uint32) (*FieldInfo, bool) {
	fi, ok := LookupField(uint16(h>>16), uint8(h>>9)&0x7f, 0)
	if !ok || h&0x100 != 0 || int(h&0xff) != fi.Len {
		return nil, false
	}
	return fi, true
}

// checkBits checks that bits [ofs, ofs+n) lie inside the field of NXM
// header h. unknown is the error for a header that names no field: OVS
// says OFPBMC_BAD_FIELD for a move's fields and OFPBAC_BAD_SET_TYPE for
// the others.
func checkBits(h uint32, ofs, n int, unknown ErrCode, what string) error {
	fi, ok := fieldByHeader(h)
	if !ok {
		return errorf(unknown, "%s: unknown field with header 0x%08x", what, h)
	}
	if n < 1 || ofs+n > fi.Len*8 {
		return errorf(ErrActBadSetLen, "%s: bits %d..%d outside the %d bits of %s", what, ofs, ofs+n-1, fi.Len*8, fi.Name)
	}
	return nil
}

func (a RegLoad) check() error {
	ofs, n := int(a.OfsNbits>>6), int(a.OfsNbits&0x3f)+1
	if err := checkBits(a.Dst, ofs, n, ErrActBadSetType, "load"); err != nil {
		return err
	}
	if n < 64 && a.Value>>n != 0 {
		return errorf(ErrActBadArgument, "load: value 0x%x does not fit %d bits", a.Value, n)
	}
	return nil
}

func (a RegMove) check() error {
	if err := checkBits(a.Src, int(a.SrcOfs), int(a.NBits), ErrMatchBadField, "move source"); err != nil {
		return err
	}
	return checkBits(a.Dst, int(a.DstOfs), int(a.NBits), ErrMatchBadField, "move destination")
}

func (a OutputReg) check() error {
	return checkBits(a.Src, int(a.OfsNbits>>6), int(a.OfsNbits&0x3f)+1, ErrActBadSetType, "output_reg")
}

func decodeVendorAction(b []byte, v uint8, depth int) (Action, error) {
	if len(b) < 16 {
		return nil, errorf(ErrActBadLen, "vendor action of %d bytes", len(b))
	}
	if vendor := binary.BigEndian.Uint32(b[4:]); vendor != NXVendorID {
		return nil, errorf(ErrActBadVendor, "vendor 0x%08x", vendor)
	}
	sub := binary.BigEndian.Uint16(b[8:])
	r := newReader(b[10:], ErrActBadLen, "Nicira action")
	fixed := func(n int) error { return wantLen(b, n, fmt.Sprintf("Nicira subtype %d", sub)) }
	var a Action
	var err error
	switch sub {
	case nxastResubmit:
		if err = fixed(16); err == nil {
			a = Resubmit{InPort: port10(r.u16()), Table: 255}
		}
	case nxastResubmitTable, nxastResubmitCT:
		if err = fixed(16); err == nil {
			a = Resubmit{InPort: port10(r.u16()), Table: r.u8(), WithTable: true, CT: sub == nxastResubmitCT}
		}
	case nxastSetTunnel:
		if err = fixed(16); err == nil {
			r.zeros(2)
			a = SetTunnel{ID: uint64(r.u32())}
		}
	case nxastSetTunnel64:
		if err = fixed(24); err == nil {
			r.zeros(6)
			a = SetTunnel{ID: r.u64(), Is64: true}
		}
	case nxastSetQueue:
		if err = versionOnly(v, Version10, sub); err == nil {
			if err = fixed(16); err == nil {
				r.zeros(2)
				a = SetQueue{QueueID: r.u32()}
			}
		}
	case nxastGroup:
		if err = versionOnly(v, Version10, sub); err == nil {
			if err = fixed(16); err == nil {
				r.zeros(2)
				a = Group{GroupID: r.u32()}
			}
		}
	case nxastDecTTL:
		if err = versionOnly(v, Version10, sub); err == nil {
			if err = fixed(16); err == nil {
				a = DecNwTTL{}
			}
		}
	case nxastRegLoad2:
		if err = versionOnly(v, Version10, sub); err == nil {
			// Unlike 1.3's set_field, reg_load2 may carry a mask.
			a, err = decodeSetField(b[10:], 10, "NXAST_REG_LOAD2")
		}
	case nxastPopQueue:
		if err = fixed(16); err == nil {
			a = PopQueue{}
		}
	case nxastExit:
		if err = fixed(16); err == nil {
			a = Exit{}
		}
	case nxastCTClear:
		if err = fixed(16); err == nil {
			a = CTClear{}
		}
	case nxastRegMove:
		if err = fixed(24); err == nil {
			m := RegMove{NBits: r.u16(), SrcOfs: r.u16(), DstOfs: r.u16(), Src: r.u32(), Dst: r.u32()}
			a, err = m, m.check()
		}
	case nxastRegLoad:
		if err = fixed(24); err == nil {
			l := RegLoad{OfsNbits: r.u16(), Dst: r.u32(), Value: r.u64()}
			a, err = l, l.check()
		}
	case nxastNote:
		a = Note{Data: r.rest()}
	case nxastOutputReg:
		if err = fixed(24); err == nil {
			o := OutputReg{OfsNbits: r.u16(), Src: r.u32(), MaxLen: r.u16()}
			a, err = o, o.check()
		}
	case nxastLearn:
		if len(b) < 32 {
			err = errorf(ErrActBadLen, "learn action of %d bytes", len(b))
		} else {
			a = Learn{Body: r.rest()}
		}
	case nxastController:
		if err = fixed(16); err == nil {
			a = Controller{MaxLen: r.u16(), ControllerID: r.u16(), Reason: r.u8()}
		}
	case nxastWriteMetadata:
		if err = fixed(32); err == nil {
			r.zeros(6)
			a = WriteMetadata{Metadata: r.u64(), Mask: r.u64()}
		}
	case nxastConjunction:
		if err = fixed(16); err == nil {
			a = Conjunction{Clause: r.u8(), NClauses: r.u8(), ID: r.u32()}
		}
	case nxastCT:
		a, err = decodeCT(r, b, v, depth)
	case nxastNAT:
		a, err = decodeNAT(r, b)
	case nxastOutputTrunc:
		if err = fixed(16); err == nil {
			a = OutputTrunc{Port: port10(r.u16()), MaxLen: r.u32()}
		}
	case nxastClone:
		r.zeros(6)
		var acts []Action
		acts, err = decodeActions(r.b, v, depth+1)
		a = Clone{Actions: acts}
	default:
		return nil, errorf(ErrActBadVendorType, "unknown Nicira action subtype %d", sub)
	}
	if err != nil {
		return nil, err
	}
	return a, r.err
}

func versionOnly(v, want uint8, sub uint16) error {
	if v != want {
		return errorf(ErrActBadVendorType, "Nicira action subtype %d is not used in %s", sub, versionName(v))
	}
	return nil
}

func decodeCT(r *reader, b []byte, v uint8, depth int) (Action, error) {
	if len(b) < 24 {
		return nil, errorf(ErrActBadLen, "ct action of %d bytes", len(b))
	}
	a := CT{Flags: r.u16(), ZoneSrc: r.u32(), Zone: r.u16(), RecircTable: r.u8()}
	r.zeros(3)
	a.Alg = r.u16()
	acts, err := decodeActions(r.b, v, depth+1)
	if err != nil {
		return nil, err
	}
	a.Actions = acts
	return a, nil
}

func decodeNAT(r *reader, b []byte) (Action, error) {
	if len(b) < 16 {
		return nil, errorf(ErrActBadLen, "nat action of %d bytes", len(b))
	}
	r.zeros(2)
	a := NAT{Flags: r.u16(), RangePresent: r.u16()}
	// Unknown range_present bits carry no data; OVS ignores them, and
	// they are kept so that the action re-encodes unchanged.
	if a.RangePresent&NATRangeIPv4Min != 0 {
		copy(a.IPv4Min[:], r.bytes(4))
	}
	if a.RangePresent&NATRangeIPv4Max != 0 {
		copy(a.IPv4Max[:], r.bytes(4))
	}
	if a.RangePresent&NATRangeIPv6Min != 0 {
		copy(a.IPv6Min[:], r.bytes(16))
	}
	if a.RangePresent&NATRangeIPv6Max != 0 {
		copy(a.IPv6Max[:], r.bytes(16))
	}
	if a.RangePresent&NATRangeProtoMin != 0 {
		a.ProtoMin = r.u16()
	}
	if a.RangePresent&NATRangeProtoMax != 0 {
		a.ProtoMax = r.u16()
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.len() >= 8 {
		return nil, errorf(ErrActBadLen, "nat action has %d bytes past its ranges", r.len())
	}
	return a, nil
}

// The fixed lengths of the standard actions, by type.
var (
	actionLen10 = map[uint16]int{0: 8, 1: 8, 2: 8, 3: 8, 4: 16, 5: 16, 6: 8, 7: 8, 8: 8, 9: 8, 10: 8, 11: 16}
	actionLen13 = map[uint16]int{0: 16, 1: 8, 2: 8, 3: 16, 4: 16, 5: 8, 6: 8, 7: 8, 9: 8, 10: 8,
		17: 8, 18: 8, 21: 8, 22: 8, 23: 8, 24: 8}
)
