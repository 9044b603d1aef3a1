package openflow

// Stats (1.0) and multipart (1.3) messages. Each request and reply kind is
// its own Go type; Flags carries OFPSF_REPLY_MORE on replies that continue
// in the next message (EncodeReplies splits long replies that way).

import (
	"errors"
	"fmt"
)

// Stats types (OFPST_* / OFPMP_*).
const (
	statsDesc          = 0
	statsFlow          = 1
	statsAggregate     = 2
	statsTable         = 3
	statsPort          = 4
	statsQueue         = 5
	statsTableFeatures = 12 // 1.3
	statsPortDesc      = 13 // 1.3, and OVS's extension to 1.0
	statsVendor        = 0xffff

	nxstFlow      = 0
	nxstAggregate = 1
)

// ReplyMore is the flag of a reply that continues in another message.
const ReplyMore = 1

type (
	DescRequest       struct{ Flags uint16 }
	TableStatsRequest struct{ Flags uint16 }
	// PortDescRequest asks for one port (PortNo, 1.5 only) or all
	// (PortAny).
	PortDescRequest struct {
		Flags  uint16
		PortNo uint32
	}
	PortStatsRequest struct {
		Flags  uint16
		PortNo uint32 // PortAny for all ports
	}
	// QueueStatsRequest asks for the statistics of queue QueueID
	// (QueueAll: every queue) of port PortNo (PortAny: every port).
	QueueStatsRequest struct {
		Flags   uint16
		PortNo  uint32
		QueueID uint32
	}
	// FlowStatsRequest asks for flows matching Match (NXM in 1.0 when
	// NXM is set, Match10 otherwise; OXM in 1.3) in TableID (0xff: all).
	FlowStatsRequest struct {
		Flags      uint16
		NXM        bool
		TableID    uint8
		OutPort    uint32
		OutGroup   uint32 // 1.3
		Cookie     uint64 // 1.3
		CookieMask uint64 // 1.3
		Match10    Match10
		Match      []Field
	}
	// AggregateStatsRequest has the same body as FlowStatsRequest.
	AggregateStatsRequest FlowStatsRequest
	// TableFeaturesRequest with no tables asks for the current features.
	TableFeaturesRequest struct {
		Flags  uint16
		Tables []TableFeatures
	}
)

type (
	DescReply struct {
		Flags                       uint16
		Mfr, HW, SW, Serial, DPDesc string
	}
	FlowStatsReply struct {
		Flags uint16
		NXM   bool
		Flows []FlowStats
	}
	AggregateStatsReply struct {
		Flags       uint16
		NXM         bool
		PacketCount uint64
		ByteCount   uint64
		FlowCount   uint32
	}
	TableStatsReply struct {
		Flags  uint16
		Tables []TableStats
	}
	PortStatsReply struct {
		Flags uint16
		Ports []PortStats
	}
	PortDescReply struct {
		Flags uint16
		Ports []PortDesc
	}
	// QueueStatsReply lists no queues: gvs has none (OVS answers a
	// bridge without QoS the same way).
	QueueStatsReply    struct{ Flags uint16 }
	TableFeaturesReply struct {
		Flags  uint16
		Tables []TableFeatures
	}
)

// FlowStats is one flow of a flow stats reply. IdleAge and HardAge exist
// only in NXST_FLOW; Match10 only in plain 1.0; Instructions only in 1.3.
type FlowStats struct {
	TableID      uint8
	DurationSec  uint32
	DurationNsec uint32
	Priority     uint16
	IdleTimeout  uint16
	HardTimeout  uint16
	Flags        uint16 // 1.3+
	Importance   uint16 // 1.4+
	IdleAge      uint16 // NXM and 1.5
	HardAge      uint16 // NXM
	Cookie       uint64
	PacketCount  uint64
	ByteCount    uint64
	Match10      Match10
	Match        []Field
	Actions      []Action
	Instructions []Instruction
}

// TableStats is one table of a table stats reply; Name, Wildcards and
// MaxEntries are sent only in 1.0.
type TableStats struct {
	TableID      uint8
	Name         string
	Wildcards    uint32
	MaxEntries   uint32
	ActiveCount  uint32
	LookupCount  uint64
	MatchedCount uint64
}

// PortStats is one port's counters; the duration only in 1.3.
type PortStats struct {
	PortNo                                      uint32
	RxPackets, TxPackets, RxBytes, TxBytes      uint64
	RxDropped, TxDropped, RxErrors, TxErrors    uint64
	RxFrameErr, RxOverErr, RxCRCErr, Collisions uint64
	DurationSec, DurationNsec                   uint32
}

// TableFeatures is one table of a 1.3 table features message. Its
// properties stay as type and bytes: gvs builds them and ovs-ofctl reads
// them, neither needs them interpreted here.
type TableFeatures struct {
	TableID       uint8
	Name          string
	MetadataMatch uint64
	MetadataWrite uint64
	Config        uint32
	MaxEntries    uint32
	Props         []TableFeatureProp
}

type TableFeatureProp struct {
	Type uint16
	Data []byte
}

// statsHeader writes the stats header; for Nicira stats also the vendor
// and subtype (and in a request the 4 bytes of padding after them).
func statsHeader(w *writer, v uint8, typ, flags uint16) {
	w.u16(typ)
	w.u16(flags)
	if v != Version10 {
		w.zeros(4)
	}
}

func nxStatsHeader(w *writer, flags uint16, sub uint32) {
	statsHeader(w, Version10, statsVendor, flags)
	w.u32(NXVendorID)
	w.u32(sub)
	w.zeros(4)
}

func reqType(v uint8) uint8 { return pick(v, t10StatsReq, t13MultipartReq) }
func repType(v uint8) uint8 { return pick(v, t10StatsRep, t13MultipartRep) }

func (m *DescRequest) encode(w *writer, v uint8) (uint8, error) {
	statsHeader(w, v, statsDesc, m.Flags)
	return reqType(v), nil
}

func (m *TableStatsRequest) encode(w *writer, v uint8) (uint8, error) {
	statsHeader(w, v, statsTable, m.Flags)
	return reqType(v), nil
}

func (m *PortDescRequest) encode(w *writer, v uint8) (uint8, error) {
	statsHeader(w, v, statsPortDesc, m.Flags)
	if v >= Version15 {
		w.u32(m.PortNo)
		w.zeros(4)
	} else if m.PortNo != PortAny && m.PortNo != 0 {
		return 0, errorf(ErrBadVersion, "a port description request for one port needs OpenFlow 1.5")
	}
	return reqType(v), nil
}

func (m *PortStatsRequest) encode(w *writer, v uint8) (uint8, error) {
	statsHeader(w, v, statsPort, m.Flags)
	if err := putPort(w, v, m.PortNo); err != nil {
		return 0, err
	}
	w.zeros(int(pick(v, 6, 4)))
	return reqType(v), nil
}

// QueueAll names every queue of a port in a queue stats request.
const QueueAll = 0xffffffff

func (m *QueueStatsRequest) encode(w *writer, v uint8) (uint8, error) {
	statsHeader(w, v, statsQueue, m.Flags)
	if err := putPort(w, v, m.PortNo); err != nil {
		return 0, err
	}
	w.zeros(int(pick(v, 2, 0)))
	w.u32(m.QueueID)
	return reqType(v), nil
}

func (m *QueueStatsReply) encode(w *writer, v uint8) (uint8, error) {
	statsHeader(w, v, statsQueue, m.Flags)
	return repType(v), nil
}

func (m *FlowStatsRequest) encode(w *writer, v uint8) (uint8, error) {
	return reqType(v), encodeFlowStatsRequest(w, v, m, statsFlow, nxstFlow)
}

func (m *AggregateStatsRequest) encode(w *writer, v uint8) (uint8, error) {
	return reqType(v), encodeFlowStatsRequest(w, v, (*FlowStatsRequest)(m), statsAggregate, nxstAggregate)
}

func encodeFlowStatsRequest(w *writer, v uint8, m *FlowStatsRequest, typ uint16, nxType uint32) error {
	switch {
	case v != Version10:
		statsHeader(w, v, typ, m.Flags)
		w.u8(m.TableID)
		w.zeros(3)
		w.u32(m.OutPort)
		w.u32(m.OutGroup)
		w.zeros(4)
		w.u64(m.Cookie)
		w.u64(m.CookieMask)
		encodeOXMMatch(w, m.Match)
	case m.NXM:
		nxStatsHeader(w, m.Flags, nxType)
		if err := putPort(w, v, m.OutPort); err != nil {
			return err
		}
		w.u16(uint16(fieldsLen(m.Match)))
		w.u8(m.TableID)
		w.zeros(3)
		start := w.pos()
		encodeFields(w, m.Match)
		w.pad8(start)
	default:
		statsHeader(w, v, typ, m.Flags)
		encodeMatch10(w, &m.Match10)
		w.u8(m.TableID)
		w.zeros(1)
		return putPort(w, v, m.OutPort)
	}
	return nil
}

func (m *TableFeaturesRequest) encode(w *writer, v uint8) (uint8, error) {
	if v == Version10 {
		return 0, errorf(ErrBadStat, "table features are not in OpenFlow 1.0")
	}
	statsHeader(w, v, statsTableFeatures, m.Flags)
	return reqType(v), encodeTableFeatures(w, m.Tables)
}

func decodeStatsRequest(r *reader, v uint8) (Message, error) {
	typ, flags := r.u16(), r.u16()
	if v != Version10 {
		r.zeros(4)
	}
	if r.err != nil {
		return nil, r.err
	}
	empty := func(m Message) (Message, error) {
		if r.len() != 0 {
			return nil, errorf(ErrBadLen, "stats request type %d with a %d-byte body", typ, r.len())
		}
		return m, nil
	}
	switch typ {
	case statsDesc:
		return empty(&DescRequest{Flags: flags})
	case statsTable:
		return empty(&TableStatsRequest{Flags: flags})
	case statsPortDesc:
		if v >= Version15 {
			if r.len() != 8 {
				return nil, errorf(ErrBadLen, "port description request with a %d-byte body", r.len())
			}
			m := &PortDescRequest{Flags: flags, PortNo: r.u32()}
			r.zeros(4)
			return m, nil
		}
		return empty(&PortDescRequest{Flags: flags, PortNo: PortAny})
	case statsPort:
		if r.len() != 8 {
			return nil, errorf(ErrBadLen, "port stats request with a %d-byte body", r.len())
		}
		m := &PortStatsRequest{Flags: flags, PortNo: getPort(r, v)}
		r.zeros(r.len())
		return m, nil
	case statsQueue:
		if r.len() != 8 {
			return nil, errorf(ErrBadLen, "queue stats request with a %d-byte body", r.len())
		}
		m := &QueueStatsRequest{Flags: flags, PortNo: getPort(r, v)}
		r.zeros(int(pick(v, 2, 0)))
		m.QueueID = r.u32()
		return m, nil
	case statsFlow, statsAggregate:
		m, err := decodeFlowStatsRequest(r, v, flags)
		if err != nil || typ == statsFlow {
			return m, err
		}
		return (*AggregateStatsRequest)(m), nil
	case statsTableFeatures:
		if v == Version10 {
			break
		}
		ts, err := decodeTableFeatures(r)
		return &TableFeaturesRequest{Flags: flags, Tables: ts}, err
	case statsTableDesc:
		if v < Version14 {
			break
		}
		return empty(&TableDescRequest{Flags: flags})
	case groupStatsType, groupDescType, groupFeatureType:
		if v == Version10 {
			break
		}
		return decodeGroupStatsRequest(r, v, typ, flags)
	case statsVendor:
		if v == Version10 {
			return decodeNXStatsRequest(r, flags)
		}
		return nil, errorf(ErrBadVendor, "experimenter multipart requests are not supported")
	}
	return nil, errorf(ErrBadStat, "stats type %d is not supported in %s", typ, versionName(v))
}

func decodeFlowStatsRequest(r *reader, v uint8, flags uint16) (*FlowStatsRequest, error) {
	m := &FlowStatsRequest{Flags: flags}
	if v == Version10 {
		if r.len() != match10Len+4 {
			return nil, errorf(ErrBadLen, "flow stats request with a %d-byte body", r.len())
		}
		m.Match10 = decodeMatch10(r)
		m.TableID = r.u8()
		r.zeros(1)
		m.OutPort = getPort(r, v)
		return m, nil
	}
	if r.len() < 32 {
		return nil, errorf(ErrBadLen, "flow stats request with a %d-byte body", r.len())
	}
	m.TableID = r.u8()
	r.zeros(3)
	m.OutPort, m.OutGroup = r.u32(), r.u32()
	r.zeros(4)
	m.Cookie, m.CookieMask = r.u64(), r.u64()
	fs, err := decodeOXMMatch(r)
	m.Match = fs
	return m, err
}

func decodeNXStatsRequest(r *reader, flags uint16) (Message, error) {
	if r.len() < 12 {
		return nil, errorf(ErrBadLen, "vendor stats request of %d bytes", r.len())
	}
	if vendor := r.u32(); vendor != NXVendorID {
		return nil, errorf(ErrBadVendor, "vendor 0x%08x", vendor)
	}
	sub := r.u32()
	r.zeros(4)
	switch sub {
	case nxstGroup, nxstGroupDesc, nxstGroupFeatures:
		return decodeGroupStatsRequest(r, Version10, uint16(sub-1), flags)
	case nxstFlow, nxstAggregate:
	default:
		return nil, errorf(ErrBadStat, "Nicira stats subtype %d is not supported", sub)
	}
	if r.len() < 8 {
		return nil, errorf(ErrBadLen, "Nicira flow stats request of %d bytes", r.len())
	}
	m := &FlowStatsRequest{Flags: flags, NXM: true, OutPort: getPort(r, Version10)}
	n := int(r.u16())
	m.TableID = r.u8()
	r.zeros(3)
	fs, err := decodeNXMMatch(r, n)
	if err != nil {
		return nil, err
	}
	m.Match = fs
	if sub == nxstAggregate {
		return (*AggregateStatsRequest)(m), nil
	}
	return m, nil
}

// Replies. Each kind encodes its entries one by one so that EncodeReplies
// can cut a long reply into messages that fit.

// multipartReply is a reply whose entries may span messages.
type multipartReply interface {
	Message
	// head writes the stats header with flags; entries encodes the
	// entries separately.
	head(w *writer, v uint8, flags uint16)
	entries(v uint8) ([][]byte, error)
	typ(v uint8) uint8
}

func encodeMultipart(w *writer, v uint8, m multipartReply, flags uint16) (uint8, error) {
	es, err := m.entries(v)
	if err != nil {
		return 0, err
	}
	m.head(w, v, flags)
	for _, e := range es {
		if e == nil {
			return 0, errEntryTooBig
		}
		w.bytes(e)
	}
	return m.typ(v), nil
}

// EncodeReplies encodes a reply as one or more messages, each within
// MaxMessageLen, all but the last flagged ReplyMore: how OpenFlow chains
// a flow dump that does not fit 64 KiB. Other messages come back as one.
func EncodeReplies(version uint8, xid uint32, m Message) ([][]byte, error) {
	out, skipped, err := EncodeRepliesSkipping(version, xid, m)
	if err == nil && skipped > 0 {
		return nil, errorf(ErrBadLen, "%d reply entries do not fit a message", skipped)
	}
	return out, err
}

// EncodeRepliesSkipping is EncodeReplies that leaves out an entry too
// big for any message (a flow with thousands of actions, in a version
// whose actions are longer), as OVS does, and says how many it left out.
func EncodeRepliesSkipping(version uint8, xid uint32, m Message) (out [][]byte, skipped int, err error) {
	if _, ok := m.(multipartReply); !ok {
		b, err := Encode(version, xid, m)
		return [][]byte{b}, 0, err
	}
	e := &ReplyEncoder{Version: version, Xid: xid}
	out, err = e.Add(m)
	if err != nil {
		return nil, 0, err
	}
	return append(out, e.Finish()), e.Skipped, nil
}

// ReplyEncoder encodes a multipart reply given in parts (a flow dump a
// few flows at a time), so that the whole reply never needs to be in
// memory: each Add returns the messages its entries filled, flagged
// ReplyMore, and Finish the last one. Entries too big for any message
// are left out and counted in Skipped, as EncodeRepliesSkipping does.
type ReplyEncoder struct {
	Version uint8
	Xid     uint32
	Skipped int

	mr      multipartReply
	w       *writer // the message being filled
	headEnd int     // where its entries start
}

// Add encodes the entries of m, a part of the reply (every part of the
// same kind), and returns the messages they filled.
func (e *ReplyEncoder) Add(m Message) ([][]byte, error) {
	mr, ok := m.(multipartReply)
	if !ok {
		return nil, fmt.Errorf("%T is not a multipart reply", m)
	}
	es, err := mr.entries(e.Version)
	if err != nil {
		return nil, err
	}
	e.mr = mr
	if e.w == nil {
		e.start()
	}
	var out [][]byte
	for _, en := range es {
		if en != nil && e.w.pos()+len(en) > MaxMessageLen && e.w.pos() > e.headEnd {
			out = append(out, e.seal(true))
			e.start()
		}
		if en == nil || e.w.pos()+len(en) > MaxMessageLen {
			e.Skipped++
			continue
		}
		e.w.bytes(en)
	}
	return out, nil
}

// Finish returns the reply's last message; Add must have been called
// (with no entries, for an empty reply).
func (e *ReplyEncoder) Finish() []byte {
	if e.w == nil {
		e.start()
	}
	return e.seal(false)
}

func (e *ReplyEncoder) start() {
	w := &writer{}
	w.u8(e.Version)
	w.u8(e.mr.typ(e.Version))
	w.u16(0)
	w.u32(e.Xid)
	e.mr.head(w, e.Version, 0)
	e.w, e.headEnd = w, w.pos()
}

// seal ends the message being filled.
func (e *ReplyEncoder) seal(more bool) []byte {
	const flagsAt = HeaderLen + 2
	w := e.w
	if more {
		w.put16(flagsAt, ReplyMore)
	}
	w.put16(2, uint16(w.pos()))
	e.w = nil
	return w.b
}

func (m *DescReply) encode(w *writer, v uint8) (uint8, error) {
	statsHeader(w, v, statsDesc, m.Flags)
	w.fixedString(m.Mfr, 256)
	w.fixedString(m.HW, 256)
	w.fixedString(m.SW, 256)
	w.fixedString(m.Serial, 32)
	w.fixedString(m.DPDesc, 256)
	return repType(v), nil
}

func (m *FlowStatsReply) encode(w *writer, v uint8) (uint8, error) {
	return encodeMultipart(w, v, m, m.Flags)
}

func (m *FlowStatsReply) typ(v uint8) uint8 { return repType(v) }

func (m *FlowStatsReply) head(w *writer, v uint8, flags uint16) {
	if v == Version10 && m.NXM {
		nxStatsHeader(w, flags, nxstFlow)
		return
	}
	statsHeader(w, v, statsFlow, flags)
}

// errEntryTooBig is a reply entry longer than any message can carry; a
// multipart reply's entries list it as nil.
var errEntryTooBig = errorf(ErrBadLen, "reply entry does not fit a message")

func (m *FlowStatsReply) entries(v uint8) ([][]byte, error) {
	out := make([][]byte, 0, len(m.Flows))
	for i := range m.Flows {
		w := &writer{}
		err := encodeFlowStats(w, v, m.NXM, &m.Flows[i])
		if errors.Is(err, errEntryTooBig) {
			out = append(out, nil) // left out by EncodeRepliesSkipping
			continue
		} else if err != nil {
			return nil, err
		}
		out = append(out, w.b)
	}
	return out, nil
}

func encodeFlowStats(w *writer, v uint8, nxm bool, f *FlowStats) error {
	if v >= Version15 {
		if err := encodeFlowStats15(w, f); err != nil {
			return err
		}
		return finishFlowStats(w)
	}
	w.u16(0)
	w.u8(f.TableID)
	w.zeros(1)
	var err error
	switch {
	case v != Version10:
		w.u32(f.DurationSec)
		w.u32(f.DurationNsec)
		w.u16(f.Priority)
		w.u16(f.IdleTimeout)
		w.u16(f.HardTimeout)
		w.u16(f.Flags)
		if v >= Version14 {
			w.u16(f.Importance)
			w.zeros(2)
		} else {
			w.zeros(4)
		}
		w.u64(f.Cookie)
		w.u64(f.PacketCount)
		w.u64(f.ByteCount)
		encodeOXMMatch(w, f.Match)
		err = encodeInstructions(w, f.Instructions)
	case nxm:
		w.u32(f.DurationSec)
		w.u32(f.DurationNsec)
		w.u16(f.Priority)
		w.u16(f.IdleTimeout)
		w.u16(f.HardTimeout)
		w.u16(uint16(fieldsLen(f.Match)))
		w.u16(f.IdleAge)
		w.u16(f.HardAge)
		w.u64(f.Cookie)
		w.u64(f.PacketCount)
		w.u64(f.ByteCount)
		start := w.pos()
		encodeFields(w, f.Match)
		w.pad8(start)
		err = encodeActions(w, v, f.Actions)
	default:
		encodeMatch10(w, &f.Match10)
		w.u32(f.DurationSec)
		w.u32(f.DurationNsec)
		w.u16(f.Priority)
		w.u16(f.IdleTimeout)
		w.u16(f.HardTimeout)
		w.zeros(6)
		w.u64(f.Cookie)
		w.u64(f.PacketCount)
		w.u64(f.ByteCount)
		err = encodeActions(w, v, f.Actions)
	}
	if err != nil {
		return err
	}
	return finishFlowStats(w)
}

// finishFlowStats fills in the length of the entry w holds.
func finishFlowStats(w *writer) error {
	if w.pos() > MaxMessageLen-HeaderLen-24 {
		return errEntryTooBig
	}
	w.put16(0, uint16(w.pos()))
	return nil
}

func (m *AggregateStatsReply) encode(w *writer, v uint8) (uint8, error) {
	if v == Version10 && m.NXM {
		nxStatsHeader(w, m.Flags, nxstAggregate)
	} else {
		statsHeader(w, v, statsAggregate, m.Flags)
	}
	if v >= Version15 {
		encodeOXS(w, &oxsStats{PacketCount: m.PacketCount, ByteCount: m.ByteCount, FlowCount: m.FlowCount,
			hasPackets: true, hasBytes: true, hasFlowCount: true})
		return repType(v), nil
	}
	w.u64(m.PacketCount)
	w.u64(m.ByteCount)
	w.u32(m.FlowCount)
	w.zeros(4)
	return repType(v), nil
}

func (m *TableStatsReply) encode(w *writer, v uint8) (uint8, error) {
	return encodeMultipart(w, v, m, m.Flags)
}

func (m *TableStatsReply) typ(v uint8) uint8 { return repType(v) }

func (m *TableStatsReply) head(w *writer, v uint8, flags uint16) {
	statsHeader(w, v, statsTable, flags)
}

func (m *TableStatsReply) entries(v uint8) ([][]byte, error) {
	out := make([][]byte, 0, len(m.Tables))
	for _, t := range m.Tables {
		w := &writer{}
		w.u8(t.TableID)
		w.zeros(3)
		if v == Version10 {
			w.fixedString(t.Name, 32)
			w.u32(t.Wildcards)
			w.u32(t.MaxEntries)
		}
		w.u32(t.ActiveCount)
		w.u64(t.LookupCount)
		w.u64(t.MatchedCount)
		out = append(out, w.b)
	}
	return out, nil
}

func (m *PortStatsReply) encode(w *writer, v uint8) (uint8, error) {
	return encodeMultipart(w, v, m, m.Flags)
}

func (m *PortStatsReply) typ(v uint8) uint8 { return repType(v) }

func (m *PortStatsReply) head(w *writer, v uint8, flags uint16) {
	statsHeader(w, v, statsPort, flags)
}

func (m *PortStatsReply) entries(v uint8) ([][]byte, error) {
	out := make([][]byte, 0, len(m.Ports))
	for _, p := range m.Ports {
		w := &writer{}
		if v >= Version14 {
			encodePortStats14(w, &p)
			out = append(out, w.b)
			continue
		}
		if err := putPort(w, v, p.PortNo); err != nil {
			return nil, err
		}
		w.zeros(int(pick(v, 6, 4)))
		for _, x := range []uint64{p.RxPackets, p.TxPackets, p.RxBytes, p.TxBytes, p.RxDropped, p.TxDropped,
			p.RxErrors, p.TxErrors, p.RxFrameErr, p.RxOverErr, p.RxCRCErr, p.Collisions} {
			w.u64(x)
		}
		if v != Version10 {
			w.u32(p.DurationSec)
			w.u32(p.DurationNsec)
		}
		out = append(out, w.b)
	}
	return out, nil
}

func (m *PortDescReply) encode(w *writer, v uint8) (uint8, error) {
	return encodeMultipart(w, v, m, m.Flags)
}

func (m *PortDescReply) typ(v uint8) uint8 { return repType(v) }

func (m *PortDescReply) head(w *writer, v uint8, flags uint16) {
	statsHeader(w, v, statsPortDesc, flags)
}

func (m *PortDescReply) entries(v uint8) ([][]byte, error) {
	out := make([][]byte, 0, len(m.Ports))
	for i := range m.Ports {
		w := &writer{}
		if err := encodePortDesc(w, v, &m.Ports[i]); err != nil {
			return nil, err
		}
		out = append(out, w.b)
	}
	return out, nil
}

func (m *TableFeaturesReply) encode(w *writer, v uint8) (uint8, error) {
	if v == Version10 {
		return 0, errorf(ErrBadStat, "table features are not in OpenFlow 1.0")
	}
	return encodeMultipart(w, v, m, m.Flags)
}

func (m *TableFeaturesReply) typ(v uint8) uint8 { return repType(v) }

func (m *TableFeaturesReply) head(w *writer, v uint8, flags uint16) {
	statsHeader(w, v, statsTableFeatures, flags)
}

func (m *TableFeaturesReply) entries(v uint8) ([][]byte, error) {
	if v == Version10 {
		return nil, errorf(ErrBadStat, "table features are not in OpenFlow 1.0")
	}
	out := make([][]byte, 0, len(m.Tables))
	for i := range m.Tables {
		w := &writer{}
		if err := encodeTableFeatures(w, m.Tables[i:i+1]); err != nil {
			return nil, err
		}
		out = append(out, w.b)
	}
	return out, nil
}

func encodeTableFeatures(w *writer, ts []TableFeatures) error {
	for _, t := range ts {
		start := w.pos()
		w.u16(0)
		w.u8(t.TableID)
		w.zeros(5)
		w.fixedString(t.Name, 32)
		w.u64(t.MetadataMatch)
		w.u64(t.MetadataWrite)
		w.u32(t.Config)
		w.u32(t.MaxEntries)
		for _, p := range t.Props {
			at := w.pos()
			w.u16(p.Type)
			w.u16(uint16(4 + len(p.Data)))
			w.bytes(p.Data)
			w.pad8(at)
		}
		if w.pos()-start > MaxMessageLen-16 {
			return errorf(ErrBadLen, "table %d features of %d bytes", t.TableID, w.pos()-start)
		}
		w.put16(start, uint16(w.pos()-start))
	}
	return nil
}

const tableFeaturesLen = 64

func decodeTableFeatures(r *reader) ([]TableFeatures, error) {
	var out []TableFeatures
	for r.len() > 0 {
		if r.len() < tableFeaturesLen {
			return nil, errorf(ErrBadLen, "table features entry truncated to %d bytes", r.len())
		}
		n := int(r.b[0])<<8 | int(r.b[1])
		if n < tableFeaturesLen || n > r.len() {
			return nil, errorf(ErrBadLen, "table features length %d with %d bytes left", n, r.len())
		}
		e := newReader(r.bytes(n), ErrBadLen, "table features")
		e.skip(2)
		t := TableFeatures{TableID: e.u8()}
		e.zeros(5)
		t.Name = e.fixedString(32)
		t.MetadataMatch, t.MetadataWrite = e.u64(), e.u64()
		t.Config, t.MaxEntries = e.u32(), e.u32()
		for e.len() > 0 {
			if e.len() < 4 {
				return nil, errorf(ErrBadLen, "table feature property truncated")
			}
			typ, pn := e.u16(), int(e.u16())
			if pn < 4 || pad8(pn)-4 > e.len() {
				return nil, errorf(ErrBadLen, "table feature property %d has length %d, %d bytes left", typ, pn, e.len()+4)
			}
			t.Props = append(t.Props, TableFeatureProp{Type: typ, Data: e.clone(pn - 4)})
			e.skip(pad8(pn) - pn)
		}
		out = append(out, t)
	}
	return out, nil
}

func decodeStatsReply(r *reader, v uint8) (Message, error) {
	typ, flags := r.u16(), r.u16()
	if v != Version10 {
		r.zeros(4)
	}
	if r.err != nil {
		return nil, r.err
	}
	switch typ {
	case groupStatsType, groupDescType, groupFeatureType:
		if v != Version10 {
			return decodeGroupStatsReply(r, v, typ, flags)
		}
	case statsDesc:
		if r.len() != 1056 {
			return nil, errorf(ErrBadLen, "desc reply with a %d-byte body", r.len())
		}
		return &DescReply{Flags: flags, Mfr: r.fixedString(256), HW: r.fixedString(256),
			SW: r.fixedString(256), Serial: r.fixedString(32), DPDesc: r.fixedString(256)}, nil
	case statsFlow:
		fs, err := decodeFlowStatsList(r, v, false)
		return &FlowStatsReply{Flags: flags, Flows: fs}, err
	case statsAggregate:
		if v >= Version15 {
			s, err := decodeOXS(r)
			return &AggregateStatsReply{Flags: flags, PacketCount: s.PacketCount, ByteCount: s.ByteCount, FlowCount: s.FlowCount}, err
		}
		return decodeAggregateReply(r, flags, false)
	case statsTable:
		ts, err := decodeTableStats(r, v)
		return &TableStatsReply{Flags: flags, Tables: ts}, err
	case statsPort:
		ps, err := decodePortStats(r, v)
		return &PortStatsReply{Flags: flags, Ports: ps}, err
	case statsQueue:
		if r.len() != 0 {
			return nil, errorf(ErrBadLen, "queue stats reply with %d bytes of entries: gvs reads none", r.len())
		}
		return &QueueStatsReply{Flags: flags}, nil
	case statsPortDesc:
		ps, err := decodePortDescs(r, v)
		return &PortDescReply{Flags: flags, Ports: ps}, err
	case statsTableFeatures:
		if v == Version10 {
			break
		}
		ts, err := decodeTableFeatures(r)
		return &TableFeaturesReply{Flags: flags, Tables: ts}, err
	case statsTableDesc:
		if v < Version14 {
			break
		}
		ts, err := decodeTableDescs(r)
		return &TableDescReply{Flags: flags, Tables: ts}, err
	case statsVendor:
		if v != Version10 {
			return nil, errorf(ErrBadVendor, "experimenter multipart replies are not supported")
		}
		if r.len() < 12 {
			return nil, errorf(ErrBadLen, "vendor stats reply of %d bytes", r.len())
		}
		if vendor := r.u32(); vendor != NXVendorID {
			return nil, errorf(ErrBadVendor, "vendor 0x%08x", vendor)
		}
		sub := r.u32()
		r.zeros(4)
		switch sub {
		case nxstFlow:
			fs, err := decodeFlowStatsList(r, v, true)
			return &FlowStatsReply{Flags: flags, NXM: true, Flows: fs}, err
		case nxstAggregate:
			return decodeAggregateReply(r, flags, true)
		case nxstGroup, nxstGroupDesc, nxstGroupFeatures:
			return decodeGroupStatsReply(r, v, uint16(sub-1), flags)
		}
		return nil, errorf(ErrBadStat, "Nicira stats subtype %d is not supported", sub)
	}
	return nil, errorf(ErrBadStat, "stats type %d is not supported in %s", typ, versionName(v))
}

func decodeAggregateReply(r *reader, flags uint16, nxm bool) (Message, error) {
	if r.len() != 24 {
		return nil, errorf(ErrBadLen, "aggregate reply with a %d-byte body", r.len())
	}
	m := &AggregateStatsReply{Flags: flags, NXM: nxm, PacketCount: r.u64(), ByteCount: r.u64(), FlowCount: r.u32()}
	r.zeros(4)
	return m, nil
}

func decodeFlowStatsList(r *reader, v uint8, nxm bool) ([]FlowStats, error) {
	var out []FlowStats
	for r.len() > 0 {
		if r.len() < 4 {
			return nil, errorf(ErrBadLen, "flow stats entry truncated")
		}
		n := int(r.b[0])<<8 | int(r.b[1])
		if n < 8 || n%8 != 0 || n > r.len() {
			return nil, errorf(ErrBadLen, "flow stats entry length %d with %d bytes left", n, r.len())
		}
		f, err := decodeFlowStats(newReader(r.bytes(n), ErrBadLen, "flow stats entry"), v, nxm)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

func decodeFlowStats(e *reader, v uint8, nxm bool) (FlowStats, error) {
	if v >= Version15 {
		return decodeFlowStats15(e)
	}
	e.skip(2)
	f := FlowStats{TableID: e.u8()}
	e.zeros(1)
	var err error
	switch {
	case v != Version10:
		f.DurationSec, f.DurationNsec = e.u32(), e.u32()
		f.Priority, f.IdleTimeout, f.HardTimeout, f.Flags = e.u16(), e.u16(), e.u16(), e.u16()
		if v >= Version14 {
			f.Importance = e.u16()
			e.zeros(2)
		} else {
			e.zeros(4)
		}
		f.Cookie, f.PacketCount, f.ByteCount = e.u64(), e.u64(), e.u64()
		if e.err != nil {
			return f, e.err
		}
		if f.Match, err = decodeOXMMatch(e); err != nil {
			return f, err
		}
		f.Instructions, err = DecodeInstructions(e.bytes(e.len()))
	case nxm:
		f.DurationSec, f.DurationNsec = e.u32(), e.u32()
		f.Priority, f.IdleTimeout, f.HardTimeout = e.u16(), e.u16(), e.u16()
		n := int(e.u16())
		f.IdleAge, f.HardAge = e.u16(), e.u16()
		f.Cookie, f.PacketCount, f.ByteCount = e.u64(), e.u64(), e.u64()
		if e.err != nil {
			return f, e.err
		}
		if f.Match, err = decodeNXMMatch(e, n); err != nil {
			return f, err
		}
		f.Actions, err = decodeActions(e.bytes(e.len()), v, 0)
	default:
		f.Match10 = decodeMatch10(e)
		f.DurationSec, f.DurationNsec = e.u32(), e.u32()
		f.Priority, f.IdleTimeout, f.HardTimeout = e.u16(), e.u16(), e.u16()
		e.zeros(6)
		f.Cookie, f.PacketCount, f.ByteCount = e.u64(), e.u64(), e.u64()
		if e.err != nil {
			return f, e.err
		}
		f.Actions, err = decodeActions(e.bytes(e.len()), v, 0)
	}
	if err == nil {
		err = e.err
	}
	return f, err
}

func decodeTableStats(r *reader, v uint8) ([]TableStats, error) {
	n := int(pick(v, 64, 24))
	if r.len()%n != 0 {
		return nil, errorf(ErrBadLen, "%d bytes of table stats, not a multiple of %d", r.len(), n)
	}
	var out []TableStats
	for r.len() > 0 {
		t := TableStats{TableID: r.u8()}
		r.zeros(3)
		if v == Version10 {
			t.Name = r.fixedString(32)
			t.Wildcards, t.MaxEntries = r.u32(), r.u32()
		}
		t.ActiveCount, t.LookupCount, t.MatchedCount = r.u32(), r.u64(), r.u64()
		out = append(out, t)
	}
	return out, nil
}

func decodePortStats(r *reader, v uint8) ([]PortStats, error) {
	if v >= Version14 {
		return decodePortStats14(r)
	}
	n := int(pick(v, 104, 112))
	if r.len()%n != 0 {
		return nil, errorf(ErrBadLen, "%d bytes of port stats, not a multiple of %d", r.len(), n)
	}
	var out []PortStats
	for r.len() > 0 {
		p := PortStats{PortNo: getPort(r, v)}
		r.zeros(int(pick(v, 6, 4)))
		p.RxPackets, p.TxPackets, p.RxBytes, p.TxBytes = r.u64(), r.u64(), r.u64(), r.u64()
		p.RxDropped, p.TxDropped, p.RxErrors, p.TxErrors = r.u64(), r.u64(), r.u64(), r.u64()
		p.RxFrameErr, p.RxOverErr, p.RxCRCErr, p.Collisions = r.u64(), r.u64(), r.u64(), r.u64()
		if v != Version10 {
			p.DurationSec, p.DurationNsec = r.u32(), r.u32()
		}
		out = append(out, p)
	}
	return out, nil
}
