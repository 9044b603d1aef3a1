package openflow

import "encoding/binary"

// Instruction is an OpenFlow 1.3 instruction. In OpenFlow 1.0, OVS puts
// the same meaning into the action list (WriteMetadata, Resubmit for
// goto_table); the flow model converts.
type Instruction interface {
	encodeInst(w *writer) error
}

type (
	GotoTable         struct{ Table uint8 }
	WriteMetadataInst struct{ Metadata, Mask uint64 }
	WriteActions      struct{ Actions []Action }
	ApplyActions      struct{ Actions []Action }
	ClearActions      struct{}
	Meter             struct{ MeterID uint32 }
)

const (
	ofpitGotoTable     = 1
	ofpitWriteMetadata = 2
	ofpitWriteActions  = 3
	ofpitApplyActions  = 4
	ofpitClearActions  = 5
	ofpitMeter         = 6
)

func (i GotoTable) encodeInst(w *writer) error {
	at := std(w, ofpitGotoTable)
	w.u8(i.Table)
	return end(w, at)
}

func (i WriteMetadataInst) encodeInst(w *writer) error {
	at := std(w, ofpitWriteMetadata)
	w.zeros(4)
	w.u64(i.Metadata)
	w.u64(i.Mask)
	return end(w, at)
}

func (i WriteActions) encodeInst(w *writer) error {
	return encodeActionInst(w, ofpitWriteActions, i.Actions)
}
func (i ApplyActions) encodeInst(w *writer) error {
	return encodeActionInst(w, ofpitApplyActions, i.Actions)
}

func encodeActionInst(w *writer, typ uint16, acts []Action) error {
	at := std(w, typ)
	w.zeros(4)
	if err := encodeActions(w, Version13, acts); err != nil {
		return err
	}
	return end(w, at)
}

func (i ClearActions) encodeInst(w *writer) error {
	at := std(w, ofpitClearActions)
	w.zeros(4)
	return end(w, at)
}

func (i Meter) encodeInst(w *writer) error {
	at := std(w, ofpitMeter)
	w.u32(i.MeterID)
	return end(w, at)
}

// EncodeInstructions appends an instruction list.
func EncodeInstructions(b []byte, insts []Instruction) ([]byte, error) {
	w := &writer{b: b}
	err := encodeInstructions(w, insts)
	return w.b, err
}

func encodeInstructions(w *writer, insts []Instruction) error {
	for _, i := range insts {
		if i == nil {
			return errorf(ErrInstUnknown, "nil instruction")
		}
		if err := i.encodeInst(w); err != nil {
			return err
		}
	}
	return nil
}

// DecodeInstructions reads an instruction list that fills b. Each kind
// may appear once, as OpenFlow requires.
func DecodeInstructions(b []byte) ([]Instruction, error) {
	var out []Instruction
	seen := map[uint16]bool{}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, errorf(ErrInstBadLen, "%d bytes left, too short for an instruction", len(b))
		}
		typ := binary.BigEndian.Uint16(b)
		n := int(binary.BigEndian.Uint16(b[2:]))
		if n%8 != 0 {
			// What OVS answers too: a length that is not a multiple
			// of 8 is a request problem before an instruction one.
			return nil, errorf(ErrBadLen, "instruction type %d has length %d, not a multiple of 8", typ, n)
		}
		if n < 8 || n > len(b) {
			return nil, errorf(ErrInstBadLen, "instruction type %d has length %d (%d bytes left)", typ, n, len(b))
		}
		if seen[typ] {
			return nil, errorf(ErrInstDup, "instruction type %d appears twice", typ)
		}
		seen[typ] = true
		in, err := decodeInstruction(typ, b[:n])
		if err != nil {
			return nil, err
		}
		out = append(out, in)
		b = b[n:]
	}
	return out, nil
}

func decodeInstruction(typ uint16, b []byte) (Instruction, error) {
	r := newReader(b[4:], ErrInstBadLen, "instruction")
	fixed := func(n int) error {
		if len(b) != n {
			return errorf(ErrInstBadLen, "instruction type %d has length %d, want %d", typ, len(b), n)
		}
		return nil
	}
	switch typ {
	case ofpitGotoTable:
		if err := fixed(8); err != nil {
			return nil, err
		}
		return GotoTable{Table: r.u8()}, nil
	case ofpitWriteMetadata:
		if err := fixed(24); err != nil {
			return nil, err
		}
		r.zeros(4)
		return WriteMetadataInst{Metadata: r.u64(), Mask: r.u64()}, nil
	case ofpitWriteActions, ofpitApplyActions:
		acts, err := decodeActions(b[8:], Version13, 0)
		if err != nil {
			return nil, err
		}
		if typ == ofpitWriteActions {
			return WriteActions{Actions: acts}, nil
		}
		return ApplyActions{Actions: acts}, nil
	case ofpitClearActions:
		if err := fixed(8); err != nil {
			return nil, err
		}
		return ClearActions{}, nil
	case ofpitMeter:
		if err := fixed(8); err != nil {
			return nil, err
		}
		return Meter{MeterID: r.u32()}, nil
	case 0xffff:
		return nil, errorf(ErrInstBadExperimenter, "experimenter instruction")
	}
	return nil, errorf(ErrInstUnknown, "unknown instruction type %d", typ)
}
