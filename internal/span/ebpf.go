package span

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// The eBPF path: the same filter, run by a program attached at tc (TCX)
// instead of an AF_PACKET socket, which clones the selected packets to
// the dev: destinations itself (bpf_clone_redirect, what tc mirred does).
// The program is the classic filter translated instruction by
// instruction, so that both paths select exactly the same packets, with
// an epilogue that counts and clones.

// Map names the program refers to; loading binds them to real maps.
const (
	statsMap = "span_stats" // per-CPU array, one entry: the counters below
	destsMap = "span_dests" // array, one entry: the dev: destinations' ifindexes
)

// Counters in the stats map's value, in 64-bit words.
const (
	ctrSeen     = 0
	ctrSelected = 1
	ctrDests    = 2 // then sent and dropped of each destination
	statsWords  = ctrDests + 2*MaxDests
)

func ctrSent(i int) int    { return ctrDests + 2*i }
func ctrDropped(i int) int { return ctrDests + 2*i + 1 }

// Offsets in struct __sk_buff (include/uapi/linux/bpf.h).
const (
	skbMark        = 8
	skbVLANPresent = 20
	skbVLANTCI     = 24
	skbData        = 76
	skbDataEnd     = 80
)

// tcActUnspec is TC_ACT_UNSPEC (TCX_NEXT): the packet goes on as if no
// program had run. The program returns nothing else.
const tcActUnspec = -1

// Registers: the context, the classic machine's A and X, and the
// counters.
const (
	rCtx   = asm.R6
	rA     = asm.R7
	rX     = asm.R8
	rStats = asm.R9
)

// Stack: the classic scratch memory M[0..15] (4 bytes each), a buffer for
// loads, the map key, and the packet's own mark while the clones carry
// --mark.
const (
	stackScratch = -64 // M[n] at stackScratch + 4n
	stackLoad    = -72
	stackKey     = -80
	stackMark    = -88
)

// EBPFEligible says whether a session can take the eBPF path: every copy
// must be one the kernel clones as it is to a device (dev: without a
// VLAN, the whole packet). Other destinations need user space, which the
// AF_PACKET path feeds.
func EBPFEligible(c *Config) (bool, string) {
	if c.Metadata {
		return false, "metadata records are written by gvsd (AF_PACKET path)"
	}
	if c.Snaplen != 0 {
		return false, "snaplen cuts copies in gvsd (AF_PACKET path)"
	}
	for _, d := range c.Dests {
		switch {
		case d.Kind != DestDev:
			return false, fmt.Sprintf("destination %s is written by gvsd (AF_PACKET path)", d.Text)
		case d.VLAN >= 0:
			return false, fmt.Sprintf("destination %s pushes a VLAN tag in gvsd (AF_PACKET path)", d.Text)
		}
	}
	return true, ""
}

// EBPFProgram returns the tc program of a session that ebpfEligible
// accepts: it runs the rules on every packet of the interface and
// direction it is attached to, and clones the selected ones to each dev:
// destination, carrying mark if hasMark. It never changes or drops the
// original packet. ndests dev: destinations get counters and clones in
// the order of the destinations map.
func EBPFProgram(rules []Rule, ndests int, mark uint32, hasMark bool) (asm.Instructions, error) {
	if ndests > MaxDests {
		return nil, fmt.Errorf("%d destinations, at most %d", ndests, MaxDests)
	}
	// The direction is the attach point's: the classic program is
	// compiled for both.
	classic, err := Compile(rules, Both, 1)
	if err != nil {
		return nil, err
	}
	insns := prologueEBPF()
	body, selects, err := translate(classic)
	if err != nil {
		return nil, err
	}
	insns = append(insns, body...)
	if selects {
		insns = append(insns, epilogueEBPF(ndests, mark, hasMark)...)
	}
	return append(insns,
		asm.Mov.Imm(asm.R0, tcActUnspec).WithSymbol("pass"),
		asm.Return()), nil
}

// prologueEBPF zeroes the stack the classic program may read, finds the
// counters and counts the packet as seen.
func prologueEBPF() asm.Instructions {
	insns := asm.Instructions{asm.Mov.Reg(rCtx, asm.R1), asm.Mov.Imm(asm.R1, 0)}
	for off := stackMark; off < 0; off += 8 {
		insns = append(insns, asm.StoreMem(asm.RFP, int16(off), asm.R1, asm.DWord))
	}
	insns = append(insns, lookup(statsMap)...)
	insns = append(insns, asm.Mov.Reg(rStats, asm.R0))
	return append(insns, count(ctrSeen)...)
}

// lookup sets R0 to entry 0 of a map, leaving the program (the packet
// untouched) if there is none.
func lookup(m string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMapPtr(asm.R1, 0).WithReference(m),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stackKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
	}
}

// count adds one to a counter (per CPU: no atomics needed).
func count(word int) asm.Instructions {
	off := int16(8 * word)
	return asm.Instructions{
		asm.LoadMem(asm.R1, rStats, off, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(rStats, off, asm.R1, asm.DWord),
	}
}

// epilogueEBPF counts a selected packet and clones it to each
// destination, then leaves by "pass", which leaves the packet untouched.
func epilogueEBPF(ndests int, mark uint32, hasMark bool) asm.Instructions {
	insns := count(ctrSelected)
	insns[0] = insns[0].WithSymbol("selected")
	if ndests > 0 {
		insns = append(insns, lookup(destsMap)...)
		insns = append(insns, asm.Mov.Reg(rA, asm.R0)) // A is free now
		if hasMark {
			insns = append(insns,
				asm.LoadMem(asm.R1, rCtx, skbMark, asm.Word),
				asm.StoreMem(asm.RFP, stackMark, asm.R1, asm.Word),
				asm.Mov.Imm32(asm.R1, int32(mark)),
				asm.StoreMem(rCtx, skbMark, asm.R1, asm.Word))
		}
		for i := range ndests {
			drop, next := fmt.Sprintf("drop%d", i), fmt.Sprintf("next%d", i)
			insns = append(insns,
				asm.LoadMem(asm.R2, rA, int16(4*i), asm.Word),
				asm.JEq.Imm(asm.R2, 0, drop), // the device is not there
				asm.Mov.Reg(asm.R1, rCtx),
				asm.Mov.Imm(asm.R3, 0), // to the device's egress
				asm.FnCloneRedirect.Call(),
				asm.JNE.Imm(asm.R0, 0, drop))
			insns = append(insns, count(ctrSent(i))...)
			insns = append(insns, asm.Ja.Label(next))
			c := count(ctrDropped(i))
			c[0] = c[0].WithSymbol(drop)
			insns = append(insns, c...)
			insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol(next))
		}
		if hasMark {
			insns = append(insns,
				asm.LoadMem(asm.R1, asm.RFP, stackMark, asm.Word),
				asm.StoreMem(rCtx, skbMark, asm.R1, asm.Word))
		}
	}
	return append(insns, asm.Ja.Label("pass"))
}

// translate turns the classic filter into eBPF: A and X become 32-bit
// registers, M[] the stack, packet loads bpf_skb_load_bytes (a load past
// the end leaves the packet unselected, as in a classic filter), the
// VLAN extensions reads of __sk_buff, and "return N" a jump to selected
// (N > 0) or pass.
//
// The kernel refuses eBPF code that cannot run, which classic filters may
// hold (a rule's tests after one that always fails): it is left out.
// selects says whether any packet can be selected.
func translate(classic []bpf.Instruction) (insns asm.Instructions, selects bool, err error) {
	label := func(i int) string { return fmt.Sprintf("c%d", i) }
	reach := reachable(classic)
	for i, in := range classic {
		if !reach[i] {
			continue
		}
		if r, ok := in.(bpf.RetConstant); ok && r.Val != 0 {
			selects = true
		}
		one, err := translateOne(in, i, label)
		if err != nil {
			return nil, false, fmt.Errorf("filter instruction %d (%s): %w", i, in, err)
		}
		one[0] = one[0].WithSymbol(label(i))
		insns = append(insns, one...)
	}
	return insns, selects, nil
}

// reachable marks the instructions some path from the first reaches
// (classic jumps go forward only, so one pass does).
func reachable(classic []bpf.Instruction) []bool {
	reach := make([]bool, len(classic)+1)
	reach[0] = true
	mark := func(i int) {
		if i < len(reach) {
			reach[i] = true
		}
	}
	for i, in := range classic {
		if !reach[i] {
			continue
		}
		switch in := in.(type) {
		case bpf.Jump:
			mark(i + 1 + int(in.Skip))
		case bpf.JumpIf:
			mark(i + 1 + int(in.SkipTrue))
			mark(i + 1 + int(in.SkipFalse))
		case bpf.RetConstant, bpf.RetA:
		default:
			mark(i + 1)
		}
	}
	return reach[:len(classic)]
}

func reg(r bpf.Register) asm.Register {
	if r == bpf.RegX {
		return rX
	}
	return rA
}

func scratchOff(n int) int16 { return int16(stackScratch + 4*n) }

var aluOps = map[bpf.ALUOp]asm.ALUOp{
	bpf.ALUOpAdd: asm.Add, bpf.ALUOpSub: asm.Sub, bpf.ALUOpMul: asm.Mul, bpf.ALUOpDiv: asm.Div,
	bpf.ALUOpOr: asm.Or, bpf.ALUOpAnd: asm.And, bpf.ALUOpShiftLeft: asm.LSh, bpf.ALUOpShiftRight: asm.RSh,
	bpf.ALUOpMod: asm.Mod, bpf.ALUOpXor: asm.Xor,
}

var jumpOps = map[bpf.JumpTest]asm.JumpOp{
	bpf.JumpEqual: asm.JEq, bpf.JumpNotEqual: asm.JNE, bpf.JumpGreaterThan: asm.JGT, bpf.JumpLessThan: asm.JLT,
	bpf.JumpGreaterOrEqual: asm.JGE, bpf.JumpLessOrEqual: asm.JLE, bpf.JumpBitsSet: asm.JSet,
}

func translateOne(in bpf.Instruction, i int, label func(int) string) (asm.Instructions, error) {
	switch in := in.(type) {
	case bpf.LoadConstant:
		return asm.Instructions{asm.Mov.Imm32(reg(in.Dst), int32(in.Val))}, nil
	case bpf.LoadScratch:
		return asm.Instructions{asm.LoadMem(reg(in.Dst), asm.RFP, scratchOff(in.N), asm.Word)}, nil
	case bpf.StoreScratch:
		return asm.Instructions{asm.StoreMem(asm.RFP, scratchOff(in.N), reg(in.Src), asm.Word)}, nil
	case bpf.LoadAbsolute:
		return loadPacket(i, in.Off, false, in.Size)
	case bpf.LoadIndirect:
		return loadPacket(i, in.Off, true, in.Size)
	case bpf.LoadExtension:
		switch in.Num {
		case bpf.ExtVLANTagPresent:
			return asm.Instructions{asm.LoadMem(rA, rCtx, skbVLANPresent, asm.Word)}, nil
		case bpf.ExtVLANTag:
			return asm.Instructions{asm.LoadMem(rA, rCtx, skbVLANTCI, asm.Word)}, nil
		}
		return nil, fmt.Errorf("no eBPF translation")
	case bpf.ALUOpConstant:
		op, ok := aluOps[in.Op]
		if !ok {
			return nil, fmt.Errorf("no eBPF translation")
		}
		return asm.Instructions{op.Imm32(rA, int32(in.Val))}, nil
	case bpf.ALUOpX:
		op, ok := aluOps[in.Op]
		if !ok {
			return nil, fmt.Errorf("no eBPF translation")
		}
		return asm.Instructions{op.Reg32(rA, rX)}, nil
	case bpf.TAX:
		return asm.Instructions{asm.Mov.Reg32(rX, rA)}, nil
	case bpf.TXA:
		return asm.Instructions{asm.Mov.Reg32(rA, rX)}, nil
	case bpf.Jump:
		return asm.Instructions{asm.Ja.Label(label(i + 1 + int(in.Skip)))}, nil
	case bpf.JumpIf:
		t, f := label(i+1+int(in.SkipTrue)), label(i+1+int(in.SkipFalse))
		op, ok := jumpOps[in.Cond]
		if in.Cond == bpf.JumpBitsNotSet {
			op, ok, t, f = asm.JSet, true, f, t
		}
		if !ok {
			return nil, fmt.Errorf("no eBPF translation")
		}
		insns := asm.Instructions{op.Imm32(rA, int32(in.Val), t)}
		if f != label(i+1) {
			insns = append(insns, asm.Ja.Label(f))
		}
		return insns, nil
	case bpf.RetConstant:
		if in.Val == 0 {
			return asm.Instructions{asm.Ja.Label("pass")}, nil
		}
		return asm.Instructions{asm.Ja.Label("selected")}, nil
	}
	return nil, fmt.Errorf("no eBPF translation")
}

// loadPacket loads size bytes at off (plus X if indirect) into A, in
// host order: straight from the packet when they are in its linear part
// (the common case: headers), with bpf_skb_load_bytes otherwise.
func loadPacket(i int, off uint32, indirect bool, size int) (asm.Instructions, error) {
	var sz asm.Size
	switch size {
	case 1:
		sz = asm.Byte
	case 2:
		sz = asm.Half
	case 4:
		sz = asm.Word
	default:
		return nil, fmt.Errorf("load of %d bytes", size)
	}
	if off > maxLoadOff {
		return nil, fmt.Errorf("load at offset %d", off)
	}
	slow, done := fmt.Sprintf("c%d_slow", i), fmt.Sprintf("c%d_done", i)
	var insns asm.Instructions
	if directLoads {
		insns = directLoad(off, indirect, sz, slow, done)
	}
	if indirect {
		insns = append(insns, asm.Mov.Reg32(asm.R2, rX).WithSymbol(slow), asm.Add.Imm32(asm.R2, int32(off)))
	} else {
		insns = append(insns, asm.Mov.Imm32(asm.R2, int32(off)).WithSymbol(slow))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, rCtx),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, stackLoad),
		asm.Mov.Imm(asm.R4, int32(size)),
		asm.FnSkbLoadBytes.Call(),
		asm.JNE.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(rA, asm.RFP, stackLoad, sz))
	insns = append(insns, toHost(sz)...)
	return append(insns, asm.Mov.Reg32(rA, rA).WithSymbol(done)), nil
}

// directLoad reads the packet's linear part, jumping to slow if the
// bytes are not all there.
func directLoad(off uint32, indirect bool, sz asm.Size, slow, done string) asm.Instructions {
	var insns asm.Instructions
	if indirect {
		// The verifier lets only a bounded offset move a packet pointer.
		insns = append(insns, asm.Mov.Reg32(asm.R3, rX), asm.JGT.Imm(asm.R3, maxLoadOff, slow))
	}
	insns = append(insns,
		asm.LoadMem(asm.R1, rCtx, skbData, asm.Word),
		asm.LoadMem(asm.R2, rCtx, skbDataEnd, asm.Word))
	if indirect {
		insns = append(insns, asm.Add.Reg(asm.R1, asm.R3))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R4, asm.R1),
		asm.Add.Imm(asm.R4, int32(off)+int32(sz.Sizeof())),
		asm.JGT.Reg(asm.R4, asm.R2, slow),
		asm.LoadMem(rA, asm.R1, int16(off), sz))
	insns = append(insns, toHost(sz)...)
	return append(insns, asm.Ja.Label(done))
}

// directLoads is off only in tests of the bpf_skb_load_bytes path, which
// test runs (whose packets are all linear) would not otherwise take.
var directLoads = true

// maxLoadOff bounds the offsets of direct loads (the classic filter's
// are headers, a few hundred bytes at most).
const maxLoadOff = 0x7fff

// toHost turns a big-endian value just loaded into A into host order.
func toHost(sz asm.Size) asm.Instructions {
	if sz == asm.Byte {
		return nil
	}
	return asm.Instructions{asm.HostTo(asm.BE, rA, sz)}
}
