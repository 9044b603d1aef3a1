package openflow

// Message is one decoded OpenFlow message body. The header's version and
// xid travel beside it (Encode's arguments, Decode's Header), so that the
// same value can be sent in either version.
type Message interface {
	// encode writes the body after the header and returns the header's
	// type for version.
	encode(w *writer, version uint8) (uint8, error)
}

// Encode builds the wire form of m.
func Encode(version uint8, xid uint32, m Message) ([]byte, error) {
	return AppendMessage(nil, version, xid, m)
}

// AppendMessage appends the wire form of m to b.
func AppendMessage(b []byte, version uint8, xid uint32, m Message) ([]byte, error) {
	if _, hello := m.(*Hello); !hello && !Supported(version) {
		return b, errorf(ErrBadVersion, "cannot encode %s", versionName(version))
	}
	w := &writer{b: b}
	start := w.pos()
	w.u8(version)
	w.u8(0)
	w.u16(0)
	w.u32(xid)
	typ, err := m.encode(w, version)
	if err != nil {
		return b, err
	}
	n := w.pos() - start
	if n > MaxMessageLen {
		return b, errorf(ErrBadLen, "message of %d bytes exceeds OpenFlow's %d", n, MaxMessageLen)
	}
	w.b[start+1] = typ
	w.put16(start+2, uint16(n))
	return w.b, nil
}

// Decode parses one whole message (as ReadMessage returns it). The
// returned error is always an *Error carrying the OpenFlow error a switch
// should answer with. The message does not keep references to b.
func Decode(b []byte) (Header, Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, nil, err
	}
	r := newReader(b[HeaderLen:], ErrBadLen, "message")
	if h.Type == tHello {
		m, err := decodeHello(r)
		return h, m, err
	}
	if !Supported(h.Version) {
		return h, nil, errorf(ErrBadVersion, "%s is not supported", versionName(h.Version))
	}
	m, err := decodeBody(h, r)
	if err == nil && r.err != nil {
		err = r.err
	}
	if err != nil {
		return h, nil, err
	}
	if r.len() != 0 {
		return h, nil, errorf(ErrBadLen, "%d bytes past the end of message type %d", r.len(), h.Type)
	}
	return h, m, nil
}

func decodeBody(h Header, r *reader) (Message, error) {
	v := h.Version
	switch h.Type {
	case tError:
		return &ErrorMsg{Err: *decodeError(r, v)}, nil
	case tEchoRequest:
		return &EchoRequest{Data: r.rest()}, nil
	case tEchoReply:
		return &EchoReply{Data: r.rest()}, nil
	case tVendor:
		return decodeVendor(r, v)
	case tFeaturesReq:
		return &FeaturesRequest{}, nil
	case tFeaturesRep:
		return decodeFeaturesReply(r, v)
	case tGetConfigReq:
		return &GetConfigRequest{}, nil
	case tGetConfigRep:
		return &GetConfigReply{Flags: r.u16(), MissSendLen: r.u16()}, nil
	case tSetConfig:
		return &SetConfig{Flags: r.u16(), MissSendLen: r.u16()}, nil
	}
	if v == Version10 {
		switch h.Type {
		case t10PacketIn:
			return decodePacketIn(r, v)
		case t10FlowRemoved:
			return decodeFlowRemoved10(r)
		case t10PortStatus:
			return decodePortStatus(r, v)
		case t10PacketOut:
			return decodePacketOut(r, v)
		case t10FlowMod:
			return decodeFlowMod10(r)
		case t10PortMod:
			return decodePortMod(r, v)
		case t10StatsReq:
			return decodeStatsRequest(r, v)
		case t10StatsRep:
			return decodeStatsReply(r, v)
		case t10BarrierReq:
			return &BarrierRequest{}, nil
		case t10BarrierRep:
			return &BarrierReply{}, nil
		}
	} else {
		switch h.Type {
		case t13PacketIn:
			return decodePacketIn(r, v)
		case t13FlowRemoved:
			if v >= Version15 {
				return decodeFlowRemoved15(r)
			}
			return decodeFlowRemoved13(r)
		case t13PortStatus:
			return decodePortStatus(r, v)
		case t13PacketOut:
			return decodePacketOut(r, v)
		case t13FlowMod:
			return decodeFlowMod13(r, v)
		case t13PortMod:
			return decodePortMod(r, v)
		case t13GroupMod:
			return decodeGroupMod(r, v)
		case t13RoleRequest:
			role, gen, err := decodeRole(r)
			return &RoleRequest{Role: role, GenerationID: gen}, err
		case t13RoleReply:
			role, gen, err := decodeRole(r)
			return &RoleReply{Role: role, GenerationID: gen}, err
		case t13MultipartReq:
			return decodeStatsRequest(r, v)
		case t13MultipartRep:
			return decodeStatsReply(r, v)
		case t13BarrierReq:
			return &BarrierRequest{}, nil
		case t13BarrierRep:
			return &BarrierReply{}, nil
		case t13GetAsyncReq:
			return &GetAsyncRequest{}, nil
		case t13GetAsyncRep:
			return decodeAsyncConfig(r, v, true, v < Version14)
		case t13SetAsync:
			return decodeAsyncConfig(r, v, false, v < Version14)
		case t14RoleStatus:
			if v < Version14 {
				break
			}
			return decodeRoleStatus(r)
		case t14BundleControl, t14BundleAdd:
			if v < Version14 {
				break
			}
			if h.Type == t14BundleControl {
				return decodeBundleControl(r)
			}
			return decodeBundleAdd(r, h)
		}
	}
	return nil, errorf(ErrBadType, "message type %d is not supported in %s", h.Type, versionName(v))
}

// pick returns the 1.0 or the 1.3 number of a message type.
func pick(v uint8, t10, t13 uint8) uint8 {
	if v == Version10 {
		return t10
	}
	return t13
}

// Hello opens a connection. Versions is the bitmap of the versions the
// sender supports (bit 1: 1.0, bit 4: 1.3), or 0 when it sent none and
// means "the header's version and below".
type Hello struct{ Versions uint32 }

const helloElemVersionBitmap = 1

func (m *Hello) encode(w *writer, v uint8) (uint8, error) {
	if m.Versions != 0 {
		w.u16(helloElemVersionBitmap)
		w.u16(8)
		w.u32(m.Versions)
	}
	return tHello, nil
}

func decodeHello(r *reader) (Message, error) {
	m := &Hello{}
	// Unknown elements are skipped, as OpenFlow 1.3 asks; a hello from
	// a newer version may carry them.
	for r.len() >= 4 {
		typ, n := r.u16(), int(r.u16())
		if n < 4 || pad8(n)-4 > r.len() && n-4 > r.len() {
			return nil, errorf(ErrBadLen, "hello element length %d", n)
		}
		body := r.bytes(n - 4)
		r.skip(min(pad8(n)-n, r.len()))
		if typ == helloElemVersionBitmap && len(body) >= 4 && m.Versions == 0 {
			m.Versions = uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
		}
	}
	r.skip(r.len())
	return m, nil
}

// Negotiate picks the version of a connection from our supported
// versions (a bitmap) and the peer's hello, as OpenFlow 1.3 section 6.3.1
// describes: the highest common version with bitmaps, else the lower of
// the two headers' versions if we support it.
func Negotiate(ours uint32, peer Header, hello *Hello) (uint8, error) {
	common := ours
	if hello != nil && hello.Versions != 0 {
		common &= hello.Versions
	} else {
		common &= uint32(1)<<(min(peer.Version, 31)+1) - 1
	}
	for v := 31; v > 0; v-- {
		if common&(1<<v) != 0 {
			return uint8(v), nil
		}
	}
	return 0, errorf(ErrHelloIncompatible, "peer speaks version 0x%02x, we speak bitmap 0x%x", peer.Version, ours)
}

// VersionBitmap is the hello bitmap of the given versions.
func VersionBitmap(versions ...uint8) uint32 {
	var b uint32
	for _, v := range versions {
		b |= 1 << v
	}
	return b
}

// ErrorMsg is OFPT_ERROR.
type ErrorMsg struct{ Err Error }

func (m *ErrorMsg) encode(w *writer, v uint8) (uint8, error) {
	encodeError(w, v, &m.Err)
	return tError, nil
}

type (
	EchoRequest      struct{ Data []byte }
	EchoReply        struct{ Data []byte }
	FeaturesRequest  struct{}
	GetConfigRequest struct{}
	BarrierRequest   struct{}
	BarrierReply     struct{}
	// GetConfigReply and SetConfig carry the switch configuration: the
	// fragment handling flags (OFPC_FRAG_*) and miss_send_len.
	GetConfigReply struct{ Flags, MissSendLen uint16 }
	SetConfig      struct{ Flags, MissSendLen uint16 }
)

func (m *EchoRequest) encode(w *writer, v uint8) (uint8, error) {
	w.bytes(m.Data)
	return tEchoRequest, nil
}

func (m *EchoReply) encode(w *writer, v uint8) (uint8, error) {
	w.bytes(m.Data)
	return tEchoReply, nil
}

func (m *FeaturesRequest) encode(w *writer, v uint8) (uint8, error)  { return tFeaturesReq, nil }
func (m *GetConfigRequest) encode(w *writer, v uint8) (uint8, error) { return tGetConfigReq, nil }

func (m *BarrierRequest) encode(w *writer, v uint8) (uint8, error) {
	return pick(v, t10BarrierReq, t13BarrierReq), nil
}

func (m *BarrierReply) encode(w *writer, v uint8) (uint8, error) {
	return pick(v, t10BarrierRep, t13BarrierRep), nil
}

func (m *GetConfigReply) encode(w *writer, v uint8) (uint8, error) {
	w.u16(m.Flags)
	w.u16(m.MissSendLen)
	return tGetConfigRep, nil
}

func (m *SetConfig) encode(w *writer, v uint8) (uint8, error) {
	w.u16(m.Flags)
	w.u16(m.MissSendLen)
	return tSetConfig, nil
}

// PortDesc describes a port: ofp_phy_port in 1.0, ofp_port in 1.3
// (CurrSpeed and MaxSpeed exist only there).
type PortDesc struct {
	PortNo     uint32
	HWAddr     [6]byte
	Name       string
	Config     uint32
	State      uint32
	Curr       uint32
	Advertised uint32
	Supported  uint32
	Peer       uint32
	CurrSpeed  uint32
	MaxSpeed   uint32
}

const (
	portDesc10Len = 48
	portDesc13Len = 64
	portNameLen   = 16
)

func encodePortDesc(w *writer, v uint8, p *PortDesc) error {
	if v >= Version14 {
		encodePortDesc14(w, p)
		return nil
	}
	if err := putPort(w, v, p.PortNo); err != nil {
		return err
	}
	if v != Version10 {
		w.zeros(4)
	}
	w.bytes(p.HWAddr[:])
	if v != Version10 {
		w.zeros(2)
	}
	w.fixedString(p.Name, portNameLen)
	for _, x := range []uint32{p.Config, p.State, p.Curr, p.Advertised, p.Supported, p.Peer} {
		w.u32(x)
	}
	if v != Version10 {
		w.u32(p.CurrSpeed)
		w.u32(p.MaxSpeed)
	}
	return nil
}

func decodePortDesc(r *reader, v uint8) PortDesc {
	var p PortDesc
	p.PortNo = getPort(r, v)
	if v != Version10 {
		r.zeros(4)
	}
	copy(p.HWAddr[:], r.bytes(6))
	if v != Version10 {
		r.zeros(2)
	}
	p.Name = r.fixedString(portNameLen)
	p.Config, p.State, p.Curr = r.u32(), r.u32(), r.u32()
	p.Advertised, p.Supported, p.Peer = r.u32(), r.u32(), r.u32()
	if v != Version10 {
		p.CurrSpeed, p.MaxSpeed = r.u32(), r.u32()
	}
	return p
}

func portDescLen(v uint8) int {
	if v == Version10 {
		return portDesc10Len
	}
	return portDesc13Len
}

// decodePortDescs reads port descriptions filling the rest of r.
func decodePortDescs(r *reader, v uint8) ([]PortDesc, error) {
	if v >= Version14 {
		var ps []PortDesc
		for r.len() > 0 {
			p, err := decodePortDesc14(r)
			if err != nil {
				return nil, err
			}
			ps = append(ps, p)
		}
		return ps, nil
	}
	n := portDescLen(v)
	if r.len()%n != 0 {
		return nil, errorf(ErrBadLen, "%d bytes of port descriptions, not a multiple of %d", r.len(), n)
	}
	var ps []PortDesc
	for r.len() > 0 {
		ps = append(ps, decodePortDesc(r, v))
	}
	return ps, nil
}

// FeaturesReply answers FeaturesRequest. Ports is sent only in 1.0; 1.3
// clients ask for port descriptions separately. Actions is 1.0's
// supported-actions bitmap, reserved in 1.3.
type FeaturesReply struct {
	DatapathID   uint64
	NBuffers     uint32
	NTables      uint8
	AuxiliaryID  uint8
	Capabilities uint32
	Actions      uint32
	Ports        []PortDesc
}

func (m *FeaturesReply) encode(w *writer, v uint8) (uint8, error) {
	w.u64(m.DatapathID)
	w.u32(m.NBuffers)
	w.u8(m.NTables)
	if v == Version10 {
		w.zeros(3)
	} else {
		w.u8(m.AuxiliaryID)
		w.zeros(2)
	}
	w.u32(m.Capabilities)
	w.u32(m.Actions)
	if v == Version10 {
		for i := range m.Ports {
			if err := encodePortDesc(w, v, &m.Ports[i]); err != nil {
				return 0, err
			}
		}
	} else if len(m.Ports) != 0 {
		return 0, errorf(ErrEPerm, "OpenFlow 1.3 features reply carries no ports")
	}
	return tFeaturesRep, nil
}

func decodeFeaturesReply(r *reader, v uint8) (Message, error) {
	m := &FeaturesReply{DatapathID: r.u64(), NBuffers: r.u32(), NTables: r.u8()}
	if v == Version10 {
		r.zeros(3)
	} else {
		m.AuxiliaryID = r.u8()
		r.zeros(2)
	}
	m.Capabilities = r.u32()
	m.Actions = r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if v == Version10 {
		ps, err := decodePortDescs(r, v)
		if err != nil {
			return nil, err
		}
		m.Ports = ps
	}
	return m, nil
}

// PortStatus tells the controller a port was added, deleted or changed.
type PortStatus struct {
	Reason uint8
	Desc   PortDesc
}

func (m *PortStatus) encode(w *writer, v uint8) (uint8, error) {
	w.u8(m.Reason)
	w.zeros(7)
	return pick(v, t10PortStatus, t13PortStatus), encodePortDesc(w, v, &m.Desc)
}

func decodePortStatus(r *reader, v uint8) (Message, error) {
	m := &PortStatus{Reason: r.u8()}
	r.zeros(7)
	if v >= Version14 {
		d, err := decodePortDesc14(r)
		m.Desc = d
		return m, err
	}
	if r.len() != portDescLen(v) {
		return nil, errorf(ErrBadLen, "port status with %d bytes of description", r.len())
	}
	m.Desc = decodePortDesc(r, v)
	return m, nil
}

// PacketOut sends a packet (or a buffered one) through actions.
type PacketOut struct {
	BufferID uint32
	InPort   uint32
	// Match holds the fields of a 1.5 packet-out's match other than
	// in_port (pipeline fields such as metadata or registers).
	Match   []Field
	Actions []Action
	Data    []byte
}

// NoBuffer is the buffer id of a message that carries its packet.
const NoBuffer = 0xffffffff

func (m *PacketOut) encode(w *writer, v uint8) (uint8, error) {
	if v >= Version15 {
		return t13PacketOut, m.encode15(w)
	}
	if len(m.Match) != 0 {
		return 0, errorf(ErrBadVersion, "a packet-out match needs OpenFlow 1.5")
	}
	w.u32(m.BufferID)
	if err := putPort(w, v, m.InPort); err != nil {
		return 0, err
	}
	lenAt := w.pos()
	w.u16(0)
	if v != Version10 {
		w.zeros(6)
	}
	start := w.pos()
	if err := encodeActions(w, v, m.Actions); err != nil {
		return 0, err
	}
	w.put16(lenAt, uint16(w.pos()-start))
	w.bytes(m.Data)
	return pick(v, t10PacketOut, t13PacketOut), nil
}

func decodePacketOut(r *reader, v uint8) (Message, error) {
	if v >= Version15 {
		return decodePacketOut15(r)
	}
	m := &PacketOut{BufferID: r.u32(), InPort: getPort(r, v)}
	n := int(r.u16())
	if v != Version10 {
		r.zeros(6)
	}
	if r.err != nil {
		return nil, r.err
	}
	return m.decodeTail(r, n, v)
}

// decodeTail reads a packet-out's n bytes of actions and its frame.
func (m *PacketOut) decodeTail(r *reader, n int, v uint8) (Message, error) {
	if n > r.len() {
		return nil, errorf(ErrBadLen, "packet-out actions length %d with %d bytes left", n, r.len())
	}
	acts, err := decodeActions(r.bytes(n), v, 0)
	if err != nil {
		return nil, err
	}
	m.Actions = acts
	m.Data = r.rest()
	return m, nil
}

// PacketIn sends a packet to the controller. InPort is 1.0's; 1.3 puts
// the in_port (and metadata) in Match.
type PacketIn struct {
	BufferID uint32
	TotalLen uint16
	Reason   uint8
	TableID  uint8  // 1.3
	Cookie   uint64 // 1.3
	InPort   uint32 // 1.0
	Match    []Field
	Data     []byte
}

func (m *PacketIn) encode(w *writer, v uint8) (uint8, error) {
	w.u32(m.BufferID)
	w.u16(m.TotalLen)
	if v == Version10 {
		if err := putPort(w, v, m.InPort); err != nil {
			return 0, err
		}
		w.u8(m.Reason)
		w.zeros(1)
	} else {
		w.u8(m.Reason)
		w.u8(m.TableID)
		w.u64(m.Cookie)
		encodeOXMMatch(w, m.Match)
		w.zeros(2)
	}
	w.bytes(m.Data)
	return pick(v, t10PacketIn, t13PacketIn), nil
}

func decodePacketIn(r *reader, v uint8) (Message, error) {
	m := &PacketIn{BufferID: r.u32(), TotalLen: r.u16()}
	if v == Version10 {
		m.InPort = getPort(r, v)
		m.Reason = r.u8()
		r.zeros(1)
	} else {
		m.Reason = r.u8()
		m.TableID = r.u8()
		m.Cookie = r.u64()
		if r.err != nil {
			return nil, r.err
		}
		fs, err := decodeOXMMatch(r)
		if err != nil {
			return nil, err
		}
		m.Match = fs
		r.zeros(2)
	}
	if r.err != nil {
		return nil, r.err
	}
	m.Data = r.rest()
	return m, nil
}

// Flow mod commands (OFPFC_*).
const (
	FlowAdd          = 0
	FlowModify       = 1
	FlowModifyStrict = 2
	FlowDelete       = 3
	FlowDeleteStrict = 4
)

// Flow mod flags (OFPFF_*).
const (
	FlagSendFlowRem  = 1 << 0
	FlagCheckOverlap = 1 << 1
	FlagResetCounts  = 1 << 2 // 1.3
	FlagNoPktCounts  = 1 << 3 // 1.3
	FlagNoBytCounts  = 1 << 4 // 1.3
)

// FlowMod adds, changes or deletes flows. In 1.0 it is either the plain
// ofp_flow_mod (Match10) or Nicira's NXT_FLOW_MOD (NXM true, Match);
// in 1.3 the match is Match (OXM) and the actions are Instructions.
//
// In 1.0, TableID travels in the command's high byte, which a switch
// honours only after NXT_FLOW_MOD_TABLE_ID; the decoder splits it out and
// leaves that decision to the channel.
type FlowMod struct {
	NXM          bool
	Cookie       uint64
	CookieMask   uint64 // 1.3
	TableID      uint8
	Command      uint8
	IdleTimeout  uint16
	HardTimeout  uint16
	Priority     uint16
	BufferID     uint32
	OutPort      uint32
	OutGroup     uint32 // 1.3
	Flags        uint16
	Importance   uint16 // 1.4+: eviction precedence, 0 in earlier versions
	Match10      Match10
	Match        []Field
	Actions      []Action      // 1.0
	Instructions []Instruction // 1.3+
}

func (m *FlowMod) encode(w *writer, v uint8) (uint8, error) {
	if v != Version10 {
		return m.encode13(w, v)
	}
	if m.NXM {
		return tVendor, m.encodeNX(w)
	}
	encodeMatch10(w, &m.Match10)
	w.u64(m.Cookie)
	w.u16(uint16(m.TableID)<<8 | uint16(m.Command))
	w.u16(m.IdleTimeout)
	w.u16(m.HardTimeout)
	w.u16(m.Priority)
	w.u32(m.BufferID)
	if err := putPort(w, v, m.OutPort); err != nil {
		return 0, err
	}
	w.u16(m.Flags)
	return t10FlowMod, encodeActions(w, v, m.Actions)
}

func (m *FlowMod) encodeNX(w *writer) error {
	w.u32(NXVendorID)
	w.u32(nxtFlowMod)
	w.u64(m.Cookie)
	w.u16(uint16(m.TableID)<<8 | uint16(m.Command))
	w.u16(m.IdleTimeout)
	w.u16(m.HardTimeout)
	w.u16(m.Priority)
	w.u32(m.BufferID)
	if err := putPort(w, Version10, m.OutPort); err != nil {
		return err
	}
	w.u16(m.Flags)
	w.u16(uint16(fieldsLen(m.Match)))
	w.zeros(6)
	start := w.pos()
	encodeFields(w, m.Match)
	w.pad8(start)
	return encodeActions(w, Version10, m.Actions)
}

func (m *FlowMod) encode13(w *writer, v uint8) (uint8, error) {
	w.u64(m.Cookie)
	w.u64(m.CookieMask)
	w.u8(m.TableID)
	w.u8(m.Command)
	w.u16(m.IdleTimeout)
	w.u16(m.HardTimeout)
	w.u16(m.Priority)
	w.u32(m.BufferID)
	w.u32(m.OutPort)
	w.u32(m.OutGroup)
	w.u16(m.Flags)
	if v >= Version14 {
		w.u16(m.Importance)
	} else {
		w.zeros(2)
	}
	encodeOXMMatch(w, m.Match)
	return t13FlowMod, encodeInstructions(w, m.Instructions)
}

func decodeFlowMod10(r *reader) (Message, error) {
	if r.len() < match10Len+24 {
		return nil, errorf(ErrBadLen, "flow mod of %d bytes", r.len()+HeaderLen)
	}
	m := &FlowMod{Match10: decodeMatch10(r), Cookie: r.u64()}
	m.splitCommand(r.u16())
	m.IdleTimeout, m.HardTimeout, m.Priority = r.u16(), r.u16(), r.u16()
	m.BufferID = r.u32()
	m.OutPort = getPort(r, Version10)
	m.Flags = r.u16()
	acts, err := decodeActions(r.bytes(r.len()), Version10, 0)
	m.Actions = acts
	return m, err
}

func (m *FlowMod) splitCommand(c uint16) {
	m.TableID, m.Command = uint8(c>>8), uint8(c)
}

func decodeFlowModNX(r *reader) (Message, error) {
	if r.len() < 32 {
		return nil, errorf(ErrBadLen, "NXT_FLOW_MOD of %d bytes", r.len()+16)
	}
	m := &FlowMod{NXM: true, Cookie: r.u64()}
	m.splitCommand(r.u16())
	m.IdleTimeout, m.HardTimeout, m.Priority = r.u16(), r.u16(), r.u16()
	m.BufferID = r.u32()
	m.OutPort = getPort(r, Version10)
	m.Flags = r.u16()
	n := int(r.u16())
	r.zeros(6)
	fs, err := decodeNXMMatch(r, n)
	if err != nil {
		return nil, err
	}
	m.Match = fs
	acts, err := decodeActions(r.bytes(r.len()), Version10, 0)
	m.Actions = acts
	return m, err
}

func decodeFlowMod13(r *reader, v uint8) (Message, error) {
	if r.len() < 40 {
		return nil, errorf(ErrBadLen, "flow mod of %d bytes", r.len()+HeaderLen)
	}
	m := &FlowMod{Cookie: r.u64(), CookieMask: r.u64(), TableID: r.u8(), Command: r.u8()}
	m.IdleTimeout, m.HardTimeout, m.Priority = r.u16(), r.u16(), r.u16()
	m.BufferID, m.OutPort, m.OutGroup = r.u32(), r.u32(), r.u32()
	m.Flags = r.u16()
	if v >= Version14 {
		m.Importance = r.u16()
	} else {
		r.zeros(2)
	}
	fs, err := decodeOXMMatch(r)
	if err != nil {
		return nil, err
	}
	m.Match = fs
	insts, err := DecodeInstructions(r.bytes(r.len()))
	m.Instructions = insts
	return m, err
}

// FlowRemoved tells the controller a flow expired or was deleted. In 1.0
// it is ofp_flow_removed (Match10) or NXT_FLOW_REMOVED (NXM, Match).
type FlowRemoved struct {
	NXM          bool
	Cookie       uint64
	Priority     uint16
	Reason       uint8
	TableID      uint8 // NXM and 1.3
	DurationSec  uint32
	DurationNsec uint32
	IdleTimeout  uint16
	HardTimeout  uint16 // 1.3
	PacketCount  uint64
	ByteCount    uint64
	Match10      Match10
	Match        []Field
}

func (m *FlowRemoved) encode(w *writer, v uint8) (uint8, error) {
	switch {
	case v >= Version15:
		m.encode15(w)
		return t13FlowRemoved, nil
	case v != Version10:
		w.u64(m.Cookie)
		w.u16(m.Priority)
		w.u8(m.Reason)
		w.u8(m.TableID)
		w.u32(m.DurationSec)
		w.u32(m.DurationNsec)
		w.u16(m.IdleTimeout)
		w.u16(m.HardTimeout)
		w.u64(m.PacketCount)
		w.u64(m.ByteCount)
		encodeOXMMatch(w, m.Match)
		return t13FlowRemoved, nil
	case m.NXM:
		w.u32(NXVendorID)
		w.u32(nxtFlowRemoved)
		w.u64(m.Cookie)
		w.u16(m.Priority)
		w.u8(m.Reason)
		w.u8(m.TableID)
		w.u32(m.DurationSec)
		w.u32(m.DurationNsec)
		w.u16(m.IdleTimeout)
		w.u16(uint16(fieldsLen(m.Match)))
		w.u64(m.PacketCount)
		w.u64(m.ByteCount)
		start := w.pos()
		encodeFields(w, m.Match)
		w.pad8(start)
		return tVendor, nil
	}
	encodeMatch10(w, &m.Match10)
	w.u64(m.Cookie)
	w.u16(m.Priority)
	w.u8(m.Reason)
	w.zeros(1)
	w.u32(m.DurationSec)
	w.u32(m.DurationNsec)
	w.u16(m.IdleTimeout)
	w.zeros(2)
	w.u64(m.PacketCount)
	w.u64(m.ByteCount)
	return t10FlowRemoved, nil
}

func decodeFlowRemoved10(r *reader) (Message, error) {
	if r.len() != match10Len+40 {
		return nil, errorf(ErrBadLen, "flow removed of %d bytes", r.len()+HeaderLen)
	}
	m := &FlowRemoved{Match10: decodeMatch10(r), Cookie: r.u64(), Priority: r.u16(), Reason: r.u8()}
	r.zeros(1)
	m.DurationSec, m.DurationNsec, m.IdleTimeout = r.u32(), r.u32(), r.u16()
	r.zeros(2)
	m.PacketCount, m.ByteCount = r.u64(), r.u64()
	return m, nil
}

func decodeFlowRemovedNX(r *reader) (Message, error) {
	if r.len() < 40 {
		return nil, errorf(ErrBadLen, "NXT_FLOW_REMOVED of %d bytes", r.len()+16)
	}
	m := &FlowRemoved{NXM: true, Cookie: r.u64(), Priority: r.u16(), Reason: r.u8(), TableID: r.u8()}
	m.DurationSec, m.DurationNsec, m.IdleTimeout = r.u32(), r.u32(), r.u16()
	n := int(r.u16())
	m.PacketCount, m.ByteCount = r.u64(), r.u64()
	fs, err := decodeNXMMatch(r, n)
	m.Match = fs
	return m, err
}

func decodeFlowRemoved13(r *reader) (Message, error) {
	if r.len() < 40 {
		return nil, errorf(ErrBadLen, "flow removed of %d bytes", r.len()+HeaderLen)
	}
	m := &FlowRemoved{Cookie: r.u64(), Priority: r.u16(), Reason: r.u8(), TableID: r.u8()}
	m.DurationSec, m.DurationNsec = r.u32(), r.u32()
	m.IdleTimeout, m.HardTimeout = r.u16(), r.u16()
	m.PacketCount, m.ByteCount = r.u64(), r.u64()
	fs, err := decodeOXMMatch(r)
	m.Match = fs
	return m, err
}

// Nicira message subtypes (NXT_*).
const (
	nxtSetFlowFormat     = 12
	nxtFlowMod           = 13
	nxtFlowRemoved       = 14
	nxtFlowModTableID    = 15
	nxtSetPacketInFormat = 16
	nxtSetControllerID   = 20
)

// Flow formats of NXT_SET_FLOW_FORMAT.
const (
	FlowFormatOpenFlow10 = 0
	FlowFormatNXM        = 2
)

// Nicira control messages ovs-ofctl sends before its requests.
type (
	// SetFlowFormat picks 1.0 matches or NXM for flow mods and stats.
	SetFlowFormat struct{ Format uint32 }
	// FlowModTableID makes the command's high byte a table id.
	FlowModTableID struct{ Set bool }
	// SetPacketInFormat picks the packet-in message (0: standard, 1: NXT_PACKET_IN, 2: NXT_PACKET_IN2).
	SetPacketInFormat struct{ Format uint32 }
	// SetControllerID names this connection for the controller action.
	SetControllerID struct{ ID uint16 }
)

func nxHeader(w *writer, sub uint32) (uint8, error) {
	w.u32(NXVendorID)
	w.u32(sub)
	return tVendor, nil
}

func (m *SetFlowFormat) encode(w *writer, v uint8) (uint8, error) {
	t, err := nxHeader(w, nxtSetFlowFormat)
	w.u32(m.Format)
	return t, err
}

func (m *FlowModTableID) encode(w *writer, v uint8) (uint8, error) {
	t, err := nxHeader(w, nxtFlowModTableID)
	if m.Set {
		w.u8(1)
	} else {
		w.u8(0)
	}
	w.zeros(7)
	return t, err
}

func (m *SetPacketInFormat) encode(w *writer, v uint8) (uint8, error) {
	t, err := nxHeader(w, nxtSetPacketInFormat)
	w.u32(m.Format)
	return t, err
}

func (m *SetControllerID) encode(w *writer, v uint8) (uint8, error) {
	t, err := nxHeader(w, nxtSetControllerID)
	w.zeros(6)
	w.u16(m.ID)
	return t, err
}

func decodeVendor(r *reader, v uint8) (Message, error) {
	if r.len() < 8 {
		return nil, errorf(ErrBadLen, "vendor message of %d bytes", r.len()+HeaderLen)
	}
	if vendor := r.u32(); vendor != NXVendorID {
		return nil, errorf(ErrBadVendor, "vendor 0x%08x", vendor)
	}
	sub := r.u32()
	exact := func(n int) error {
		if r.len() != n {
			return errorf(ErrBadLen, "Nicira message %d with %d bytes of body, want %d", sub, r.len(), n)
		}
		return nil
	}
	switch sub {
	case nxtSetFlowFormat:
		if err := exact(4); err != nil {
			return nil, err
		}
		return &SetFlowFormat{Format: r.u32()}, nil
	case nxtFlowModTableID:
		if err := exact(8); err != nil {
			return nil, err
		}
		m := &FlowModTableID{Set: r.u8() != 0}
		r.zeros(7)
		return m, nil
	case nxtSetPacketInFormat:
		if err := exact(4); err != nil {
			return nil, err
		}
		return &SetPacketInFormat{Format: r.u32()}, nil
	case nxtPacketIn2:
		ps, err := decodeProps(r)
		return &PacketIn2{Props: ps}, err
	case nxtSetAsyncConfig:
		if err := exact(asyncLegacyLen); err != nil {
			return nil, err
		}
		m, err := decodeAsyncConfig(r, v, false, true)
		if err == nil {
			m.(*SetAsync).NX = true
		}
		return m, err
	case nxtSetAsyncConfig2:
		// The 1.4 property form before 1.4; from 1.4, OFPT_SET_ASYNC
		// is the way and OVS 3.1 knows no such Nicira message.
		if v >= Version14 {
			break
		}
		m, err := decodeAsyncConfig(r, v, false, false)
		if err == nil {
			m.(*SetAsync).NX = true
		}
		return m, err
	case nxtSetControllerID:
		if err := exact(8); err != nil {
			return nil, err
		}
		r.zeros(6)
		return &SetControllerID{ID: r.u16()}, nil
	}
	if v == Version10 {
		switch sub {
		case nxtFlowMod:
			return decodeFlowModNX(r)
		case nxtFlowRemoved:
			return decodeFlowRemovedNX(r)
		case nxtGroupMod:
			return decodeGroupMod(r, v)
		}
	}
	return nil, errorf(ErrBadSubtype, "Nicira message subtype %d is not supported in %s", sub, versionName(v))
}

const nxtPacketIn2 = 30

// NXT_PACKET_IN2 property types.
const (
	PacketIn2Packet       = 0
	PacketIn2FullLen      = 1
	PacketIn2BufferID     = 2
	PacketIn2TableID      = 3
	PacketIn2Cookie       = 4
	PacketIn2Reason       = 5
	PacketIn2Metadata     = 6 // the packet's metadata as an OXM match
	PacketIn2Userdata     = 7
	PacketIn2Continuation = 8
)

// PacketIn2 is Nicira's NXT_PACKET_IN2, the packet-in ovs-ofctl monitor
// asks for (NXT_SET_PACKET_IN_FORMAT 2) in both versions. It is a list of
// properties; the Packet2* constants name them.
type PacketIn2 struct{ Props []Prop }

// Prop is one property: a type and its value without padding.
type Prop struct {
	Type uint16
	Data []byte
}

func (m *PacketIn2) encode(w *writer, v uint8) (uint8, error) {
	t, _ := nxHeader(w, nxtPacketIn2)
	return t, encodeProps(w, m.Props)
}

func encodeProps(w *writer, ps []Prop) error {
	for _, p := range ps {
		if len(p.Data) > MaxMessageLen-4 {
			return errorf(ErrBadLen, "property of %d bytes", len(p.Data))
		}
		at := w.pos()
		w.u16(p.Type)
		w.u16(uint16(4 + len(p.Data)))
		w.bytes(p.Data)
		w.pad8(at)
	}
	return nil
}

func decodeProps(r *reader) ([]Prop, error) {
	var out []Prop
	for r.len() > 0 {
		if r.len() < 4 {
			return nil, errorf(ErrBadLen, "property truncated to %d bytes", r.len())
		}
		typ, n := r.u16(), int(r.u16())
		if n < 4 || pad8(n)-4 > r.len() {
			return nil, errorf(ErrBadLen, "property %d has length %d, %d bytes left", typ, n, r.len()+4)
		}
		out = append(out, Prop{Type: typ, Data: r.clone(n - 4)})
		r.skip(pad8(n) - n)
	}
	return out, nil
}

// PortMod changes a port's configuration bits (ovs-ofctl mod-port): the
// bits Mask selects take their value from Config.
type PortMod struct {
	PortNo    uint32
	HWAddr    [6]byte
	Config    uint32
	Mask      uint32
	Advertise uint32
}

func (m *PortMod) encode(w *writer, v uint8) (uint8, error) {
	if v >= Version14 {
		m.encode14(w)
		return t13PortMod, nil
	}
	if err := putPort(w, v, m.PortNo); err != nil {
		return 0, err
	}
	if v != Version10 {
		w.zeros(4)
	}
	w.bytes(m.HWAddr[:])
	if v != Version10 {
		w.zeros(2)
	}
	w.u32(m.Config)
	w.u32(m.Mask)
	w.u32(m.Advertise)
	w.zeros(4)
	return pick(v, t10PortMod, t13PortMod), nil
}

func decodePortMod(r *reader, v uint8) (Message, error) {
	if v >= Version14 {
		return decodePortMod14(r)
	}
	if r.len() != int(pick(v, 24, 32)) {
		return nil, errorf(ErrBadLen, "port mod with a %d-byte body", r.len())
	}
	m := &PortMod{PortNo: getPort(r, v)}
	if v != Version10 {
		r.zeros(4)
	}
	copy(m.HWAddr[:], r.bytes(6))
	if v != Version10 {
		r.zeros(2)
	}
	m.Config, m.Mask, m.Advertise = r.u32(), r.u32(), r.u32()
	r.zeros(4)
	return m, nil
}

const (
	t13RoleRequest = 24
	t13RoleReply   = 25
)

// Controller roles (OFPCR_ROLE_*).
const (
	RoleNoChange = 0
	RoleEqual    = 1
	RoleMaster   = 2
	RoleSlave    = 3
)

// RoleRequest and RoleReply (OpenFlow 1.3) set and report a controller
// connection's role; GenerationID orders masters.
type (
	RoleRequest struct {
		Role         uint32
		GenerationID uint64
	}
	RoleReply RoleRequest
)

func encodeRole(w *writer, v uint8, role uint32, gen uint64, typ uint8) (uint8, error) {
	if v == Version10 {
		return 0, errorf(ErrBadType, "role messages are OpenFlow 1.2+")
	}
	w.u32(role)
	w.zeros(4)
	w.u64(gen)
	return typ, nil
}

func (m *RoleRequest) encode(w *writer, v uint8) (uint8, error) {
	return encodeRole(w, v, m.Role, m.GenerationID, t13RoleRequest)
}

func (m *RoleReply) encode(w *writer, v uint8) (uint8, error) {
	return encodeRole(w, v, m.Role, m.GenerationID, t13RoleReply)
}

// t14RoleStatus is OFPT_ROLE_STATUS, OpenFlow 1.4 and later.
const t14RoleStatus = 30

// RoleStatusMasterRequest is OFPCRR_MASTER_REQUEST: another connection
// became master.
const RoleStatusMasterRequest = 0

// RoleStatus (OpenFlow 1.4+) tells a controller its role changed
// without its asking, and why (RoleStatus*).
type RoleStatus struct {
	Role         uint32
	Reason       uint8
	GenerationID uint64
}

func (m *RoleStatus) encode(w *writer, v uint8) (uint8, error) {
	if v < Version14 {
		return 0, errorf(ErrBadType, "no role status in %s", versionName(v))
	}
	w.u32(m.Role)
	w.u8(m.Reason)
	w.zeros(3)
	w.u64(m.GenerationID)
	return t14RoleStatus, nil
}

func decodeRoleStatus(r *reader) (Message, error) {
	if r.len() < 16 {
		return nil, errorf(ErrBadLen, "role status with a %d-byte body", r.len())
	}
	m := &RoleStatus{Role: r.u32(), Reason: r.u8()}
	r.zeros(3)
	m.GenerationID = r.u64()
	r.skip(r.len()) // properties: none is known
	return m, nil
}

func decodeRole(r *reader) (uint32, uint64, error) {
	if r.len() != 16 {
		return 0, 0, errorf(ErrBadLen, "role message with a %d-byte body", r.len())
	}
	role := r.u32()
	r.zeros(4)
	return role, r.u64(), nil
}
