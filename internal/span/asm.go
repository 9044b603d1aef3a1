package span

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// prog builds a classic BPF program with symbolic jump targets, resolved
// once the program is complete (classic BPF jumps are relative, and
// conditional ones reach at most 255 instructions ahead).
type prog struct {
	ins    []bpf.Instruction
	jumps  []jump
	labels map[string]int
}

// jump is a jump instruction waiting for its targets; "" means the next
// instruction.
type jump struct {
	at   int
	t, f string
}

func newProg() *prog { return &prog{labels: map[string]int{}} }

func (p *prog) add(ins ...bpf.Instruction) { p.ins = append(p.ins, ins...) }

// label names the next instruction.
func (p *prog) label(l string) { p.labels[l] = len(p.ins) }

// jif jumps to t if A cond val holds, to f otherwise.
func (p *prog) jif(cond bpf.JumpTest, val uint32, t, f string) {
	p.jumps = append(p.jumps, jump{at: len(p.ins), t: t, f: f})
	p.add(bpf.JumpIf{Cond: cond, Val: val})
}

// ja always jumps to l.
func (p *prog) ja(l string) {
	p.jumps = append(p.jumps, jump{at: len(p.ins), t: l})
	p.add(bpf.Jump{})
}

func (p *prog) skip(from int, l string) (uint32, error) {
	if l == "" {
		return 0, nil
	}
	to, ok := p.labels[l]
	if !ok {
		return 0, fmt.Errorf("filter: internal error: no label %q", l)
	}
	if to <= from {
		return 0, fmt.Errorf("filter: internal error: backward jump to %q", l)
	}
	return uint32(to - from - 1), nil
}

// resolve fills in every jump's distances.
func (p *prog) resolve() ([]bpf.Instruction, error) {
	for _, j := range p.jumps {
		t, err := p.skip(j.at, j.t)
		if err != nil {
			return nil, err
		}
		switch ins := p.ins[j.at].(type) {
		case bpf.Jump:
			ins.Skip = t
			p.ins[j.at] = ins
		case bpf.JumpIf:
			f, err := p.skip(j.at, j.f)
			if err != nil {
				return nil, err
			}
			if t > 255 || f > 255 {
				return nil, fmt.Errorf("filter: a rule compiles to more than 255 instructions")
			}
			ins.SkipTrue, ins.SkipFalse = uint8(t), uint8(f)
			p.ins[j.at] = ins
		}
	}
	return p.ins, nil
}
