package openflow

// Asynchronous message configuration: which reasons of each kind of
// asynchronous message a connection gets, in the role of master (or
// equal) and of slave. OpenFlow 1.3's OFPT_SET_ASYNC and Nicira's
// NXT_SET_ASYNC_CONFIG carry the first three kinds for both roles in a
// fixed body; 1.4 and 1.5 carry any of them as properties.

// Kinds of asynchronous messages: 1.4's property types are twice the
// kind for the slave role, one more for the master role.
const (
	AsyncPacketIn = iota
	AsyncPortStatus
	AsyncFlowRemoved
	AsyncRoleStatus
	AsyncTableStatus
	AsyncRequestForward
	NumAsyncKinds
)

// AsyncMasks are the reasons (bit n: reason n, in the numbers of the
// connection's version) of each kind a role gets.
type AsyncMasks [NumAsyncKinds]uint32

// AsyncProp is one mask: a kind, a role and its reasons.
type AsyncProp struct {
	Kind  int
	Slave bool
	Mask  uint32
}

// GetAsyncRequest is OFPT_GET_ASYNC_REQUEST (1.3 and later).
type GetAsyncRequest struct{}

// GetAsyncReply is OFPT_GET_ASYNC_REPLY: the masks of both roles, the
// first three kinds in 1.3, all of them as properties from 1.4.
type GetAsyncReply struct{ Master, Slave AsyncMasks }

// SetAsync is OFPT_SET_ASYNC (1.3 and later) or, with NX,
// NXT_SET_ASYNC_CONFIG (Legacy, any version) or NXT_SET_ASYNC_CONFIG2
// (properties, before 1.4 as in OVS 3.1). Legacy: the fixed 1.3 body, which sets every
// mask (those it lacks to none); else Props change only the masks they
// name.
type SetAsync struct {
	Props  []AsyncProp
	Legacy bool
	NX     bool
}

const (
	nxtSetAsyncConfig  = 19
	nxtSetAsyncConfig2 = 27
	asyncLegacyLen     = 24 // three kinds, two roles, four bytes each
	asyncPropLen       = 8
)

// AsyncAllowed returns the reasons that version defines for kind: what
// a 1.4 property may carry and what a reply shows.
func AsyncAllowed(version uint8, kind int) uint32 {
	switch kind {
	case AsyncPacketIn:
		if version < Version14 {
			return 0x7 // no match, action, invalid TTL
		}
		return 0x3f // and action set, group, packet-out
	case AsyncPortStatus, AsyncRoleStatus:
		return 0x7
	case AsyncFlowRemoved:
		return 0x3f // idle, hard, delete, group delete, meter delete, eviction
	case AsyncTableStatus:
		return 0x18 // vacancy down, vacancy up
	case AsyncRequestForward:
		return 0x3
	}
	return 0
}

func (m *GetAsyncRequest) encode(w *writer, v uint8) (uint8, error) {
	if v < Version13 {
		return 0, errorf(ErrBadType, "no get-async request in %s", versionName(v))
	}
	return t13GetAsyncReq, nil
}

func (m *GetAsyncReply) encode(w *writer, v uint8) (uint8, error) {
	if v < Version13 {
		return 0, errorf(ErrBadType, "no get-async reply in %s", versionName(v))
	}
	var props []AsyncProp
	for k := range NumAsyncKinds {
		props = append(props, AsyncProp{k, true, m.Slave[k]}, AsyncProp{k, false, m.Master[k]})
	}
	encodeAsync(w, v, props, v < Version14)
	return t13GetAsyncRep, nil
}

func (m *SetAsync) encode(w *writer, v uint8) (uint8, error) {
	t := uint8(t13SetAsync)
	switch {
	case m.NX && m.Legacy:
		t, _ = nxHeader(w, nxtSetAsyncConfig)
	case m.NX:
		t, _ = nxHeader(w, nxtSetAsyncConfig2)
	case v < Version13:
		return 0, errorf(ErrBadType, "no set-async in %s", versionName(v))
	}
	encodeAsync(w, v, m.Props, m.Legacy)
	return t, nil
}

// encodeAsync writes props: as the fixed body (packet-in, port status,
// flow removed; master then slave in each) or as 1.4 properties.
func encodeAsync(w *writer, v uint8, props []AsyncProp, legacy bool) {
	if legacy {
		var body [3][2]uint32
		for _, p := range props {
			if p.Kind < 3 {
				body[p.Kind][b2i(p.Slave)] = p.Mask & AsyncAllowed(v, p.Kind)
			}
		}
		for _, k := range body {
			w.u32(k[0])
			w.u32(k[1])
		}
		return
	}
	for _, p := range props {
		w.u16(uint16(2*p.Kind + 1 - b2i(p.Slave)))
		w.u16(asyncPropLen)
		w.u32(p.Mask & AsyncAllowed(v, p.Kind))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// decodeAsyncConfig reads a get-async reply or a set-async request. The
// fixed body keeps only the reasons the version defines, as OVS does;
// a 1.4 property with others is refused (OFPACFC_INVALID), one of an
// unknown type too (OFPACFC_UNSUPPORTED), any experimenter's with
// OFPBPC_BAD_EXP_TYPE, as OVS 3.1 answers them.
func decodeAsyncConfig(r *reader, v uint8, reply, legacy bool) (Message, error) {
	var props []AsyncProp
	if legacy {
		if r.len() != asyncLegacyLen {
			return nil, errorf(ErrBadLen, "asynchronous configuration of %d bytes, want %d", r.len(), asyncLegacyLen)
		}
		for k := range 3 {
			master, slave := r.u32(), r.u32()
			props = append(props, AsyncProp{k, false, master & AsyncAllowed(v, k)}, AsyncProp{k, true, slave & AsyncAllowed(v, k)})
		}
	} else {
		for r.len() > 0 {
			// A property longer than the message is the message's
			// length, as OVS answers it.
			if r.len() >= 4 && int(r.b[2])<<8|int(r.b[3]) > r.len() {
				return nil, errorf(ErrBadLen, "asynchronous configuration property longer than the message")
			}
			typ, body, err := nextProp(r)
			if err != nil {
				return nil, err
			}
			if typ >= 0xfffe {
				if len(body) < 8 {
					return nil, errorf(ErrPropBadLen, "experimenter property of %d bytes", len(body)+4)
				}
				return nil, errorf(ErrPropBadExpType, "no experimenter asynchronous configuration property is known")
			}
			kind := int(typ / 2)
			if kind >= NumAsyncKinds {
				return nil, errorf(ErrAsyncUnsupported, "asynchronous configuration property %d", typ)
			}
			if len(body) != 4 {
				return nil, errorf(ErrPropBadLen, "asynchronous configuration property %d of %d bytes, want 8", typ, len(body)+4)
			}
			mask := uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])
			if allowed := AsyncAllowed(v, kind); mask&^allowed != 0 {
				return nil, errorf(ErrAsyncInvalid, "asynchronous configuration property %d: mask %#x outside %#x", typ, mask, allowed)
			}
			props = append(props, AsyncProp{kind, typ%2 == 0, mask})
		}
	}
	if reply {
		m := &GetAsyncReply{}
		for _, p := range props {
			if p.Slave {
				m.Slave[p.Kind] = p.Mask
			} else {
				m.Master[p.Kind] = p.Mask
			}
		}
		return m, nil
	}
	return &SetAsync{Props: props, Legacy: legacy}, nil
}
