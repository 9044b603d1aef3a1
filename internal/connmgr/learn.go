package connmgr

import (
	"encoding/binary"
	"fmt"

	"gvs/internal/flow"
	"gvs/internal/openflow"
)

// The body of Nicira's learn action (nx_action_learn after its subtype):
// timeouts, priority, cookie, flags, table, then flow_mod_spec entries,
// each a 16-bit header (source kind, destination kind, bit count), the
// source (an NXM field and offset, or an immediate value) and the
// destination (an NXM field and offset, none for output).
const (
	learnFixedLen = 22

	learnSendFlowRem   = 1 << 0
	learnDeleteLearned = 1 << 1
	learnWriteResult   = 1 << 2

	specSrcImmediate = 1 << 13
	specDstShift     = 11
	specBitsMask     = 0x3ff
)

func badLearn(format string, args ...any) error {
	return &openflow.Error{Code: openflow.ErrActBadArgument, Detail: "learn: " + fmt.Sprintf(format, args...)}
}

// learnFromWire converts a learn action's body.
func learnFromWire(b []byte) (flow.Learn, error) {
	var l flow.Learn
	if len(b) < learnFixedLen {
		return l, badLearn("%d bytes", len(b))
	}
	be := binary.BigEndian
	l.IdleTimeout, l.HardTimeout, l.Priority = be.Uint16(b), be.Uint16(b[2:]), be.Uint16(b[4:])
	l.Cookie = be.Uint64(b[6:])
	flags := be.Uint16(b[14:])
	l.Table = b[16]
	l.FinIdleTimeout, l.FinHardTimeout = be.Uint16(b[18:]), be.Uint16(b[20:])
	if flags&^(learnSendFlowRem|learnDeleteLearned) != 0 {
		return l, badLearn("flags %#x", flags)
	}
	l.SendFlowRem, l.DeleteLearned = flags&learnSendFlowRem != 0, flags&learnDeleteLearned != 0
	b = b[learnFixedLen:]
	for len(b) >= 2 {
		h := be.Uint16(b)
		if h == 0 {
			break // the padding that ends the list
		}
		b = b[2:]
		s, rest, err := specFromWire(h, b)
		if err != nil {
			return l, err
		}
		l.Specs, b = append(l.Specs, s), rest
	}
	for _, c := range b {
		if c != 0 {
			return l, badLearn("bytes after the last spec")
		}
	}
	return l, nil
}

// specFromWire reads one flow_mod_spec whose header is h from b.
func specFromWire(h uint16, b []byte) (flow.LearnSpec, []byte, error) {
	var s flow.LearnSpec
	n := h & specBitsMask
	kind := h >> specDstShift & 3
	if n == 0 || kind > 2 || h>>14 != 0 {
		return s, nil, badLearn("spec header %#04x", h)
	}
	s.Kind = []flow.LearnKind{flow.LearnMatch, flow.LearnLoad, flow.LearnOutput}[kind]
	field := func() (flow.Subfield, error) {
		if len(b) < 6 {
			return flow.Subfield{}, badLearn("truncated spec")
		}
		sf, err := subfieldFromNXM(binary.BigEndian.Uint32(b), binary.BigEndian.Uint16(b[4:]), n)
		b = b[6:]
		return sf, err
	}
	var err error
	if h&specSrcImmediate != 0 {
		if s.Kind == flow.LearnOutput {
			return s, nil, badLearn("output from an immediate value")
		}
		m := int(n+15) / 16 * 2
		if len(b) < m || m > 16 {
			return s, nil, badLearn("truncated immediate value")
		}
		copy(s.Imm[16-m:], b[:m])
		b = b[m:]
	} else if s.Src, err = field(); err != nil {
		return s, nil, err
	}
	if s.Kind != flow.LearnOutput {
		if s.Dst, err = field(); err != nil {
			return s, nil, err
		}
		if s.Src.Field == "" && s.Kind == flow.LearnMatch && s.Dst.Start == 0 && fieldBits(s.Dst.Field) == s.Dst.Bits {
			s.ImmField = s.Dst.Field // printed as field=value, as OVS does
		}
	}
	return s, b, nil
}

// fieldBits is the width of a field a subfield may name.
func fieldBits(name string) uint16 {
	sf, err := flow.ParseSubfield(name + "[]")
	if err != nil {
		return 0
	}
	return sf.Bits
}

// learnToWire encodes a learn action; false for one the Nicira learn
// action cannot carry (limit, result_dst: OVS's learn2).
func learnToWire(l flow.Learn) (openflow.Action, bool) {
	if l.Limit != 0 || l.ResultDst.Field != "" {
		return nil, false
	}
	be := binary.BigEndian
	b := make([]byte, learnFixedLen, 64)
	be.PutUint16(b, l.IdleTimeout)
	be.PutUint16(b[2:], l.HardTimeout)
	be.PutUint16(b[4:], l.Priority)
	be.PutUint64(b[6:], l.Cookie)
	var flags uint16
	if l.SendFlowRem {
		flags |= learnSendFlowRem
	}
	if l.DeleteLearned {
		flags |= learnDeleteLearned
	}
	be.PutUint16(b[14:], flags)
	b[16] = l.Table
	be.PutUint16(b[18:], l.FinIdleTimeout)
	be.PutUint16(b[20:], l.FinHardTimeout)
	for _, s := range l.Specs {
		var ok bool
		if b, ok = appendSpec(b, s); !ok {
			return nil, false
		}
	}
	return &openflow.Learn{Body: b}, true
}

func appendSpec(b []byte, s flow.LearnSpec) ([]byte, bool) {
	be := binary.BigEndian
	n := s.Dst.Bits
	if s.Kind == flow.LearnOutput {
		n = s.Src.Bits
	}
	h := n | uint16(s.Kind)<<specDstShift
	if s.Src.Field == "" {
		h |= specSrcImmediate
	}
	b = be.AppendUint16(b, h)
	if s.Src.Field == "" {
		m := int(n+15) / 16 * 2
		b = append(b, s.Imm[16-m:]...)
	} else {
		hdr, ok := nxmHeader(s.Src)
		if !ok {
			return nil, false
		}
		b = be.AppendUint16(be.AppendUint32(b, hdr), s.Src.Start)
	}
	if s.Kind != flow.LearnOutput {
		hdr, ok := nxmHeader(s.Dst)
		if !ok {
			return nil, false
		}
		b = be.AppendUint16(be.AppendUint32(b, hdr), s.Dst.Start)
	}
	return b, true
}
