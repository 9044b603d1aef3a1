package openflow

// The messages whose layout changed in OpenFlow 1.4 and 1.5 (learned
// from the OpenFlow 1.4 and 1.5 specifications and OVS's
// include/openflow/openflow-1.4.h and -1.5.h): ports and port stats
// carry properties from 1.4 on, and 1.5 moves flow statistics into OXS
// and gives packet-out a match. Every other message keeps 1.3's form.

const (
	port14Len      = 40 // ofp14_port without properties
	portStats14Len = 80 // ofp14_port_stats without properties
	portProp14Len  = 32 // OFPPDPT14_ETHERNET
	statsProp14Len = 40 // OFPPSPT14_ETHERNET
	propEthernet   = 0  // property type of the Ethernet properties above
)

// encodePortDesc14 writes an ofp14_port with its Ethernet property.
func encodePortDesc14(w *writer, p *PortDesc) {
	w.u32(p.PortNo)
	w.u16(port14Len + portProp14Len)
	w.zeros(2)
	w.bytes(p.HWAddr[:])
	w.zeros(2)
	w.fixedString(p.Name, portNameLen)
	w.u32(p.Config)
	w.u32(p.State)
	w.u16(propEthernet)
	w.u16(portProp14Len)
	w.zeros(4)
	for _, x := range []uint32{p.Curr, p.Advertised, p.Supported, p.Peer, p.CurrSpeed, p.MaxSpeed} {
		w.u32(x)
	}
}

// decodePortDesc14 reads one ofp14_port off r. Properties other than
// the Ethernet one (optical, experimenter) are skipped.
func decodePortDesc14(r *reader) (PortDesc, error) {
	var p PortDesc
	if r.len() < port14Len {
		return p, errorf(ErrBadLen, "port description truncated to %d bytes", r.len())
	}
	p.PortNo = r.u32()
	n := int(r.u16())
	if n < port14Len || n > r.len()+6 {
		return p, errorf(ErrBadLen, "port description length %d with %d bytes left", n, r.len()+6)
	}
	r.zeros(2)
	copy(p.HWAddr[:], r.bytes(6))
	r.zeros(2)
	p.Name = r.fixedString(portNameLen)
	p.Config, p.State = r.u32(), r.u32()
	e, err := ethernetProp(newReader(r.bytes(n-port14Len), ErrBadLen, "port description"), portProp14Len, "Ethernet port property")
	if err != nil {
		return p, err
	}
	if e != nil {
		p.Curr, p.Advertised, p.Supported = e.u32(), e.u32(), e.u32()
		p.Peer, p.CurrSpeed, p.MaxSpeed = e.u32(), e.u32(), e.u32()
	}
	return p, r.err
}

// ethernetProp reads a property list and returns a reader on the body
// of its Ethernet property (of at least n bytes) past the padding, or
// nil without one; other properties (optical, experimenter) are
// skipped.
func ethernetProp(props *reader, n int, what string) (*reader, error) {
	var eth *reader
	for props.len() > 0 {
		typ, body, err := nextProp(props)
		if err != nil {
			return nil, err
		}
		if typ == propEthernet {
			if len(body) < n-4 {
				return nil, errorf(ErrPropBadLen, "%s of %d bytes", what, len(body)+4)
			}
			eth = newReader(body, ErrBadLen, what)
			eth.zeros(4)
		}
	}
	return eth, nil
}

// nextProp reads one property (type, length, body, padding to 8 bytes,
// as every 1.4 property list is laid out) and returns its body.
func nextProp(r *reader) (uint16, []byte, error) {
	if r.len() < 4 {
		return 0, nil, errorf(ErrPropBadLen, "property truncated to %d bytes", r.len())
	}
	typ, n := r.u16(), int(r.u16())
	if n < 4 || n-4 > r.len() {
		return 0, nil, errorf(ErrPropBadLen, "property %d has length %d, %d bytes left", typ, n, r.len()+4)
	}
	body := r.bytes(n - 4)
	r.skip(min(pad8(n)-n, r.len()))
	return typ, body, nil
}

// encodePortStats14 writes an ofp14_port_stats with its Ethernet
// property.
func encodePortStats14(w *writer, p *PortStats) {
	w.u16(portStats14Len + statsProp14Len)
	w.zeros(2)
	w.u32(p.PortNo)
	w.u32(p.DurationSec)
	w.u32(p.DurationNsec)
	for _, x := range []uint64{p.RxPackets, p.TxPackets, p.RxBytes, p.TxBytes, p.RxDropped, p.TxDropped, p.RxErrors, p.TxErrors} {
		w.u64(x)
	}
	w.u16(propEthernet)
	w.u16(statsProp14Len)
	w.zeros(4)
	for _, x := range []uint64{p.RxFrameErr, p.RxOverErr, p.RxCRCErr, p.Collisions} {
		w.u64(x)
	}
}

func decodePortStats14(r *reader) ([]PortStats, error) {
	var out []PortStats
	for r.len() > 0 {
		if r.len() < portStats14Len {
			return nil, errorf(ErrBadLen, "port stats entry truncated to %d bytes", r.len())
		}
		n := int(r.u16())
		if n < portStats14Len || n > r.len()+2 {
			return nil, errorf(ErrBadLen, "port stats length %d with %d bytes left", n, r.len()+2)
		}
		e := newReader(r.bytes(n-2), ErrBadLen, "port stats entry")
		e.zeros(2)
		p := PortStats{PortNo: e.u32(), DurationSec: e.u32(), DurationNsec: e.u32()}
		p.RxPackets, p.TxPackets, p.RxBytes, p.TxBytes = e.u64(), e.u64(), e.u64(), e.u64()
		p.RxDropped, p.TxDropped, p.RxErrors, p.TxErrors = e.u64(), e.u64(), e.u64(), e.u64()
		if e.err != nil {
			return nil, e.err
		}
		b, err := ethernetProp(e, statsProp14Len, "Ethernet port stats property")
		if err != nil {
			return nil, err
		}
		if b != nil {
			p.RxFrameErr, p.RxOverErr, p.RxCRCErr, p.Collisions = b.u64(), b.u64(), b.u64(), b.u64()
		}
		out = append(out, p)
	}
	return out, nil
}

// encodePortMod14 writes a 1.4 port mod: advertise moved into an
// Ethernet property.
func (m *PortMod) encode14(w *writer) {
	w.u32(m.PortNo)
	w.zeros(4)
	w.bytes(m.HWAddr[:])
	w.zeros(2)
	w.u32(m.Config)
	w.u32(m.Mask)
	w.u16(propEthernet)
	w.u16(8)
	w.u32(m.Advertise)
}

func decodePortMod14(r *reader) (Message, error) {
	if r.len() < 24 {
		return nil, errorf(ErrBadLen, "port mod with a %d-byte body", r.len())
	}
	m := &PortMod{PortNo: r.u32()}
	r.zeros(4)
	copy(m.HWAddr[:], r.bytes(6))
	r.zeros(2)
	m.Config, m.Mask = r.u32(), r.u32()
	for r.len() > 0 {
		typ, body, err := nextProp(r)
		if err != nil {
			return nil, err
		}
		if typ == propEthernet {
			if len(body) != 4 {
				return nil, errorf(ErrPropBadLen, "Ethernet port mod property of %d bytes", len(body)+4)
			}
			m.Advertise = uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
		}
	}
	return m, nil
}

// OXS (OpenFlow 1.5's flow statistics fields): class OFPXSC_OPENFLOW_BASIC.
const (
	oxsClass       = 0x8002
	oxsDuration    = 0
	oxsIdleTime    = 1
	oxsFlowCount   = 3
	oxsPacketCount = 4
	oxsByteCount   = 5
)

// oxsStats are the statistics of a 1.5 flow stats entry, flow removed
// or aggregate reply; the has* flags say which were present.
type oxsStats struct {
	DurationSec, DurationNsec uint32
	IdleSec                   uint32
	PacketCount, ByteCount    uint64
	FlowCount                 uint32

	hasDuration, hasIdle, hasPackets, hasBytes, hasFlowCount bool
}

func oxsHeader(w *writer, field uint8, n int) {
	w.u32(uint32(oxsClass)<<16 | uint32(field)<<9 | uint32(n))
}

// encodeOXS writes an ofp_oxs_stat: a reserved half-word, the length
// without padding, the entries, then padding to 8 bytes.
func encodeOXS(w *writer, s *oxsStats) {
	start := w.pos()
	w.u16(0)
	w.u16(0)
	if s.hasDuration {
		oxsHeader(w, oxsDuration, 8)
		w.u32(s.DurationSec)
		w.u32(s.DurationNsec)
	}
	if s.hasIdle {
		oxsHeader(w, oxsIdleTime, 8)
		w.u32(s.IdleSec)
		w.u32(0)
	}
	if s.hasPackets {
		oxsHeader(w, oxsPacketCount, 8)
		w.u64(s.PacketCount)
	}
	if s.hasBytes {
		oxsHeader(w, oxsByteCount, 8)
		w.u64(s.ByteCount)
	}
	if s.hasFlowCount {
		oxsHeader(w, oxsFlowCount, 4)
		w.u32(s.FlowCount)
	}
	w.put16(start+2, uint16(w.pos()-start))
	w.pad8(start)
}

func decodeOXS(r *reader) (oxsStats, error) {
	var s oxsStats
	if r.len() < 4 {
		return s, errorf(ErrBadLen, "OXS stats truncated to %d bytes", r.len())
	}
	r.skip(2)
	n := int(r.u16())
	if n < 4 || pad8(n)-4 > r.len() {
		return s, errorf(ErrBadLen, "OXS stats length %d with %d bytes left", n, r.len()+4)
	}
	e := newReader(r.bytes(n-4), ErrBadLen, "OXS stats")
	r.skip(pad8(n) - n)
	for e.len() > 0 {
		if e.len() < 4 {
			return s, errorf(ErrBadLen, "OXS entry truncated to %d bytes", e.len())
		}
		h := e.u32()
		class, field, hasMask, ln := uint16(h>>16), uint8(h>>9)&0x7f, h&0x100 != 0, int(h&0xff)
		if ln > e.len() {
			return s, errorf(ErrBadLen, "OXS entry of %d bytes with %d left", ln, e.len())
		}
		body := newReader(e.bytes(ln), ErrBadLen, "OXS entry")
		if class != oxsClass || hasMask {
			continue // an experimenter's statistic: not ours to read
		}
		want := map[uint8]int{oxsDuration: 8, oxsIdleTime: 8, oxsFlowCount: 4, oxsPacketCount: 8, oxsByteCount: 8}[field]
		if want == 0 {
			continue
		}
		if ln != want {
			return s, errorf(ErrBadLen, "OXS field %d of %d bytes, want %d", field, ln, want)
		}
		switch field {
		case oxsDuration:
			s.DurationSec, s.DurationNsec, s.hasDuration = body.u32(), body.u32(), true
		case oxsIdleTime:
			s.IdleSec, s.hasIdle = body.u32(), true
		case oxsFlowCount:
			s.FlowCount, s.hasFlowCount = body.u32(), true
		case oxsPacketCount:
			s.PacketCount, s.hasPackets = body.u64(), true
		case oxsByteCount:
			s.ByteCount, s.hasBytes = body.u64(), true
		}
	}
	return s, nil
}

// encodeFlowStats15 writes an ofp15_flow_desc entry: the description,
// the match, OXS statistics (with the idle time), the instructions.
func encodeFlowStats15(w *writer, f *FlowStats) error {
	w.u16(0)
	w.zeros(2)
	w.u8(f.TableID)
	w.zeros(1)
	w.u16(f.Priority)
	w.u16(f.IdleTimeout)
	w.u16(f.HardTimeout)
	w.u16(f.Flags)
	w.u16(f.Importance)
	w.u64(f.Cookie)
	encodeOXMMatch(w, f.Match)
	encodeOXS(w, &oxsStats{DurationSec: f.DurationSec, DurationNsec: f.DurationNsec, IdleSec: uint32(f.IdleAge),
		PacketCount: f.PacketCount, ByteCount: f.ByteCount, hasDuration: true, hasIdle: true, hasPackets: true, hasBytes: true})
	return encodeInstructions(w, f.Instructions)
}

func decodeFlowStats15(e *reader) (FlowStats, error) {
	e.skip(2)
	e.zeros(2)
	f := FlowStats{TableID: e.u8()}
	e.zeros(1)
	f.Priority, f.IdleTimeout, f.HardTimeout, f.Flags, f.Importance = e.u16(), e.u16(), e.u16(), e.u16(), e.u16()
	f.Cookie = e.u64()
	if e.err != nil {
		return f, e.err
	}
	var err error
	if f.Match, err = decodeOXMMatch(e); err != nil {
		return f, err
	}
	s, err := decodeOXS(e)
	if err != nil {
		return f, err
	}
	f.DurationSec, f.DurationNsec, f.IdleAge = s.DurationSec, s.DurationNsec, uint16(min(s.IdleSec, 0xffff))
	f.PacketCount, f.ByteCount = s.PacketCount, s.ByteCount
	f.Instructions, err = DecodeInstructions(e.bytes(e.len()))
	if err == nil {
		err = e.err
	}
	return f, err
}

// encode15 writes an ofp15_flow_removed, its match and OXS statistics.
func (m *FlowRemoved) encode15(w *writer) {
	w.u8(m.TableID)
	w.u8(m.Reason)
	w.u16(m.Priority)
	w.u16(m.IdleTimeout)
	w.u16(m.HardTimeout)
	w.u64(m.Cookie)
	encodeOXMMatch(w, m.Match)
	encodeOXS(w, &oxsStats{DurationSec: m.DurationSec, DurationNsec: m.DurationNsec, PacketCount: m.PacketCount,
		ByteCount: m.ByteCount, hasDuration: true, hasPackets: true, hasBytes: true})
}

func decodeFlowRemoved15(r *reader) (Message, error) {
	if r.len() < 16 {
		return nil, errorf(ErrBadLen, "flow removed of %d bytes", r.len()+HeaderLen)
	}
	m := &FlowRemoved{TableID: r.u8(), Reason: r.u8(), Priority: r.u16(), IdleTimeout: r.u16(), HardTimeout: r.u16(), Cookie: r.u64()}
	fs, err := decodeOXMMatch(r)
	if err != nil {
		return nil, err
	}
	m.Match = fs
	s, err := decodeOXS(r)
	if err != nil {
		return nil, err
	}
	m.DurationSec, m.DurationNsec, m.PacketCount, m.ByteCount = s.DurationSec, s.DurationNsec, s.PacketCount, s.ByteCount
	return m, nil
}

// encode15 writes a 1.5 packet-out, whose in_port travels in a match.
func (m *PacketOut) encode15(w *writer) error {
	w.u32(m.BufferID)
	lenAt := w.pos()
	w.u16(0)
	w.zeros(2)
	in := Field{Class: ClassOpenFlow, Field: 0, Value: []byte{byte(m.InPort >> 24), byte(m.InPort >> 16), byte(m.InPort >> 8), byte(m.InPort)}}
	encodeOXMMatch(w, append([]Field{in}, m.Match...))
	start := w.pos()
	if err := encodeActions(w, Version15, m.Actions); err != nil {
		return err
	}
	if w.pos()-start > MaxMessageLen {
		return errorf(ErrBadLen, "packet-out actions of %d bytes", w.pos()-start)
	}
	w.put16(lenAt, uint16(w.pos()-start))
	w.bytes(m.Data)
	return nil
}

// decodePacketOut15 reads a 1.5 packet-out. The match's in_port becomes
// InPort (OFPP_CONTROLLER without one, as the specification says); any
// other field stays in Match for the channel to judge.
func decodePacketOut15(r *reader) (Message, error) {
	m := &PacketOut{BufferID: r.u32(), InPort: PortController}
	n := int(r.u16())
	r.zeros(2)
	if r.err != nil {
		return nil, r.err
	}
	fs, err := decodeOXMMatch(r)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		if f.Class == ClassOpenFlow && f.Field == 0 && f.Mask == nil && len(f.Value) == 4 {
			m.InPort = uint32(f.Value[0])<<24 | uint32(f.Value[1])<<16 | uint32(f.Value[2])<<8 | uint32(f.Value[3])
			continue
		}
		m.Match = append(m.Match, f)
	}
	return m.decodeTail(r, n, Version15)
}

// OpenFlow 1.4 bundle messages.
const (
	t14BundleControl = 33
	t14BundleAdd     = 34
)

// Bundle control types (OFPBCT_*) and flags (OFPBF_*).
const (
	BundleOpenRequest    = 0
	BundleOpenReply      = 1
	BundleCloseRequest   = 2
	BundleCloseReply     = 3
	BundleCommitRequest  = 4
	BundleCommitReply    = 5
	BundleDiscardRequest = 6
	BundleDiscardReply   = 7

	BundleAtomic  = 1 << 0
	BundleOrdered = 1 << 1
)

// BundleControl opens, closes, commits or discards a bundle, and
// answers each (OFPT_BUNDLE_CONTROL). Properties are kept as they came.
type BundleControl struct {
	BundleID uint32
	Type     uint16
	Flags    uint16
	Props    []Prop
}

// BundleAdd adds one message to a bundle (OFPT_BUNDLE_ADD_MESSAGE).
// Message is the whole inner message, header included, as it came.
type BundleAdd struct {
	BundleID uint32
	Flags    uint16
	Message  []byte
	Props    []Prop
}

func bundleVersion(v uint8) error {
	if v < Version14 {
		return errorf(ErrBadType, "bundles are OpenFlow 1.4+ messages")
	}
	return nil
}

func (m *BundleControl) encode(w *writer, v uint8) (uint8, error) {
	if err := bundleVersion(v); err != nil {
		return 0, err
	}
	w.u32(m.BundleID)
	w.u16(m.Type)
	w.u16(m.Flags)
	return t14BundleControl, encodeProps(w, m.Props)
}

func (m *BundleAdd) encode(w *writer, v uint8) (uint8, error) {
	if err := bundleVersion(v); err != nil {
		return 0, err
	}
	w.u32(m.BundleID)
	w.zeros(2)
	w.u16(m.Flags)
	start := w.pos()
	w.bytes(m.Message)
	if len(m.Props) > 0 {
		w.pad8(start)
	}
	return t14BundleAdd, encodeProps(w, m.Props)
}

func decodeBundleControl(r *reader) (Message, error) {
	if r.len() < 8 {
		return nil, errorf(ErrBadLen, "bundle control with a %d-byte body", r.len())
	}
	m := &BundleControl{BundleID: r.u32(), Type: r.u16(), Flags: r.u16()}
	ps, err := decodeProps(r)
	m.Props = ps
	return m, err
}

// decodeBundleAdd reads a bundle add message; the inner message must be
// of the outer's version and xid (OFPBFC_MSG_BAD_LEN, _BAD_XID).
func decodeBundleAdd(r *reader, h Header) (Message, error) {
	if r.len() < 8+HeaderLen {
		return nil, errorf(ErrBundleMsgBadLen, "bundle add with a %d-byte body", r.len())
	}
	m := &BundleAdd{BundleID: r.u32()}
	r.zeros(2)
	m.Flags = r.u16()
	inner, err := ParseHeader(r.b[:min(len(r.b), max(HeaderLen, int(r.b[2])<<8|int(r.b[3])))])
	if err != nil || int(inner.Length) > r.len() {
		return nil, errorf(ErrBundleMsgBadLen, "inner message of %d bytes with %d left", inner.Length, r.len())
	}
	if inner.Version != h.Version {
		return nil, errorf(ErrBundleBadVersion, "inner message of version 0x%02x in a 0x%02x bundle", inner.Version, h.Version)
	}
	if inner.Xid != h.Xid {
		return nil, errorf(ErrBundleMsgBadXid, "inner xid %d, outer %d", inner.Xid, h.Xid)
	}
	m.Message = r.clone(int(inner.Length))
	if r.len() > 0 {
		r.skip(min(pad8(int(inner.Length))-int(inner.Length), r.len()))
		ps, err := decodeProps(r)
		if err != nil {
			return nil, err
		}
		m.Props = ps
	}
	return m, nil
}

// statsTableDesc is OFPMP_TABLE_DESC (1.4+): each table's configuration
// and properties (ovs-ofctl dump-table-desc).
const statsTableDesc = 14

// Table description property types (OFPTMPT14_*).
const (
	TablePropEviction = 2
	TablePropVacancy  = 3
)

type (
	TableDescRequest struct{ Flags uint16 }
	TableDescReply   struct {
		Flags  uint16
		Tables []TableDesc
	}
	// TableDesc is one table's ofp14_table_desc; its properties stay as
	// type and bytes.
	TableDesc struct {
		TableID uint8
		Config  uint32
		Props   []Prop
	}
)

func (m *TableDescRequest) encode(w *writer, v uint8) (uint8, error) {
	if v < Version14 {
		return 0, errorf(ErrBadStat, "table descriptions are OpenFlow 1.4+")
	}
	statsHeader(w, v, statsTableDesc, m.Flags)
	return reqType(v), nil
}

func (m *TableDescReply) encode(w *writer, v uint8) (uint8, error) {
	if v < Version14 {
		return 0, errorf(ErrBadStat, "table descriptions are OpenFlow 1.4+")
	}
	return encodeMultipart(w, v, m, m.Flags)
}

func (m *TableDescReply) typ(v uint8) uint8 { return repType(v) }

func (m *TableDescReply) head(w *writer, v uint8, flags uint16) {
	statsHeader(w, v, statsTableDesc, flags)
}

func (m *TableDescReply) entries(v uint8) ([][]byte, error) {
	out := make([][]byte, 0, len(m.Tables))
	for _, t := range m.Tables {
		w := &writer{}
		w.u16(0)
		w.u8(t.TableID)
		w.zeros(1)
		w.u32(t.Config)
		if err := encodeProps(w, t.Props); err != nil {
			return nil, err
		}
		if w.pos() > MaxMessageLen-16 {
			return nil, errorf(ErrBadLen, "table %d description of %d bytes", t.TableID, w.pos())
		}
		w.put16(0, uint16(w.pos()))
		out = append(out, w.b)
	}
	return out, nil
}

func decodeTableDescs(r *reader) ([]TableDesc, error) {
	var out []TableDesc
	for r.len() > 0 {
		if r.len() < 8 {
			return nil, errorf(ErrBadLen, "table description truncated to %d bytes", r.len())
		}
		n := int(r.u16())
		if n < 8 || n-2 > r.len() {
			return nil, errorf(ErrBadLen, "table description length %d with %d bytes left", n, r.len()+2)
		}
		e := newReader(r.bytes(n-2), ErrBadLen, "table description")
		t := TableDesc{TableID: e.u8()}
		e.zeros(1)
		t.Config = e.u32()
		ps, err := decodeProps(e)
		if err != nil {
			return nil, err
		}
		t.Props = ps
		out = append(out, t)
	}
	return out, nil
}
