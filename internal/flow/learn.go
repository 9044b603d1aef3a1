package flow

import (
	"errors"
	"fmt"
	"strings"
)

// Learn adds or changes a flow in another table from the packet it sees
// (learn(...) in ovs-actions(7)).
type Learn struct {
	Table                          uint8
	IdleTimeout, HardTimeout       uint16
	FinIdleTimeout, FinHardTimeout uint16
	Priority                       uint16
	Cookie                         uint64
	SendFlowRem, DeleteLearned     bool
	Limit                          uint32
	ResultDst                      Subfield // zero Field: none
	Specs                          []LearnSpec
}

// LearnSpec is one part of the learned flow: a match field, a load, or an
// output.
type LearnSpec struct {
	Kind LearnKind
	// Dst is the learned flow's match field (LearnMatch) or the subfield
	// its load action writes (LearnLoad); unused for LearnOutput.
	Dst Subfield
	// Src is the packet's subfield the value comes from, or the zero
	// Subfield when the value is the immediate Imm.
	Src Subfield
	Imm [16]byte
	// ImmField is set when an immediate match was written as
	// field=value (eth_type=0x800), to print it back in that syntax.
	ImmField string
}

// LearnKind says what a LearnSpec adds to the learned flow.
type LearnKind uint8

// The kinds of learn specs.
const (
	LearnMatch LearnKind = iota
	LearnLoad
	LearnOutput
)

const defaultPriority = 32768

func (a Learn) format(b *strings.Builder, _ FormatOptions) {
	parts := []string{fmt.Sprintf("table=%d", a.Table)}
	for _, o := range []struct {
		name string
		v    uint64
	}{{"idle_timeout", uint64(a.IdleTimeout)}, {"hard_timeout", uint64(a.HardTimeout)},
		{"fin_idle_timeout", uint64(a.FinIdleTimeout)}, {"fin_hard_timeout", uint64(a.FinHardTimeout)}} {
		if o.v != 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", o.name, o.v))
		}
	}
	if a.Priority != defaultPriority {
		parts = append(parts, fmt.Sprintf("priority=%d", a.Priority))
	}
	if a.SendFlowRem {
		parts = append(parts, "send_flow_rem")
	}
	if a.DeleteLearned {
		parts = append(parts, "delete_learned")
	}
	if a.Cookie != 0 {
		parts = append(parts, fmt.Sprintf("cookie=%#x", a.Cookie))
	}
	if a.Limit != 0 {
		parts = append(parts, fmt.Sprintf("limit=%d", a.Limit))
	}
	if a.ResultDst.Field != "" {
		parts = append(parts, "result_dst="+a.ResultDst.String())
	}
	for _, s := range a.Specs {
		parts = append(parts, s.String())
	}
	b.WriteString("learn(" + strings.Join(parts, ",") + ")")
}

// String prints the spec as ovs-ofctl does.
func (s LearnSpec) String() string {
	src := s.Src.String()
	if s.Src.Field == "" {
		src = hex128(s.Imm[:])
	}
	switch s.Kind {
	case LearnLoad:
		return "load:" + src + "->" + s.Dst.String()
	case LearnOutput:
		return "output:" + src
	}
	switch {
	case s.ImmField != "":
		return s.ImmField + "=" + formatFieldValue(s.ImmField, FieldValue{s.Imm, allOnes(uint(s.Dst.Bits))}, nil)
	case s.Src == s.Dst:
		return src
	}
	return s.Dst.String() + "=" + src
}

// parseLearn reads the inside of learn(...).
func (p *actionParser) parseLearn(arg string) (Action, error) {
	l := Learn{Table: 1, Priority: defaultPriority}
	for _, item := range splitTopLevel(arg) {
		if err := p.learnItem(&l, item); err != nil {
			return nil, fmt.Errorf("%s: %w", item, err)
		}
	}
	return l, nil
}

func (p *actionParser) learnItem(l *Learn, item string) error {
	key, val, delim := cutAction(item)
	hasVal := delim != 0
	var err error
	var v uint64
	switch {
	case key == "table" && delim == '=':
		l.Table, err = parseTable(val)
	case key == "priority" && delim == '=':
		v, err = parseUint(val, 16)
		l.Priority = uint16(v)
	case key == "cookie" && delim == '=':
		l.Cookie, err = parseUint(val, 64)
	case key == "limit" && delim == '=':
		v, err = parseUint(val, 32)
		l.Limit = uint32(v)
	case key == "result_dst" && delim == '=':
		l.ResultDst, err = ParseSubfield(val)
		if err == nil && l.ResultDst.Bits != 1 {
			err = errors.New("result_dst must be a single bit")
		}
	case key == "send_flow_rem" && !hasVal:
		l.SendFlowRem = true
	case key == "delete_learned" && !hasVal:
		l.DeleteLearned = true
	case learnTimeouts(l)[key] != nil && delim == '=':
		v, err = parseUint(val, 16)
		*learnTimeouts(l)[key] = uint16(v)
	default:
		var s LearnSpec
		s, err = parseLearnSpec(key, val, delim)
		l.Specs = append(l.Specs, s)
	}
	if err == errTooLarge {
		return errors.New("value too large")
	}
	return err
}

func learnTimeouts(l *Learn) map[string]*uint16 {
	return map[string]*uint16{"idle_timeout": &l.IdleTimeout, "hard_timeout": &l.HardTimeout,
		"fin_idle_timeout": &l.FinIdleTimeout, "fin_hard_timeout": &l.FinHardTimeout}
}

func parseLearnSpec(key, val string, delim byte) (LearnSpec, error) {
	switch {
	case key == "load" && delim == ':':
		src, dst, ok := strings.Cut(val, "->")
		if !ok {
			return LearnSpec{}, errNoArrow
		}
		s := LearnSpec{Kind: LearnLoad}
		var err error
		if s.Dst, err = ParseSubfield(dst); err != nil {
			return s, err
		}
		return s, s.setSource(src)
	case key == "output" && delim == ':':
		src, err := ParseSubfield(val)
		return LearnSpec{Kind: LearnOutput, Src: src}, err
	case delim == 0:
		sf, err := ParseSubfield(key)
		return LearnSpec{Kind: LearnMatch, Dst: sf, Src: sf}, err
	case delim != '=':
		return LearnSpec{}, errors.New("unknown learn argument")
	}
	s := LearnSpec{Kind: LearnMatch}
	var err error
	if s.Dst, err = ParseSubfield(key); err != nil {
		return s, err
	}
	if !strings.Contains(key, "[") && !looksLikeSubfield(val) && fields[key] != nil {
		fv, err := parseFieldValue(key, val, nil)
		if err != nil {
			return s, err
		}
		if fv.Mask != allOnes(uint(s.Dst.Bits)) {
			return s, errors.New("a learned match value cannot be masked")
		}
		s.Imm, s.ImmField = fv.Value, s.Dst.Field
		return s, nil
	}
	return s, s.setSource(val)
}

// setSource reads a spec's source: a subfield as wide as Dst, or a number
// that fits in it.
func (s *LearnSpec) setSource(src string) error {
	if looksLikeSubfield(src) {
		sf, err := ParseSubfield(src)
		if err != nil {
			return err
		}
		if sf.Bits != s.Dst.Bits {
			return fmt.Errorf("source is %d bits wide but destination %d", sf.Bits, s.Dst.Bits)
		}
		s.Src = sf
		return nil
	}
	v, err := parseImmediate(src, s.Dst.Bits)
	s.Imm = v
	return err
}

// parseImmediate reads a number that must fit in bits bits.
func parseImmediate(s string, bits uint16) ([16]byte, error) {
	v, err := parseWide(s, 128)
	if err != nil {
		return v, err
	}
	m := allOnes(uint(bits))
	for i := range v {
		if v[i]&^m[i] != 0 {
			return v, fmt.Errorf("value %s does not fit in %d bits", s, bits)
		}
	}
	return v, nil
}
