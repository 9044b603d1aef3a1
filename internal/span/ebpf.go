package span

import (
	"fmt"

	"github.com/cilium/ebpf/asm"
	"golang.org/x/net/bpf"
)

// The eBPF path: the same filter, run by a program attached at tc (TCX)
// instead of an AF_PACKET socket, which clones the selected packets to
// the dev: destinations itself (bpf_clone_redirect, what tc mirred does)
// and hands them to gvsd through a perf event array for the others
// (pcap, json, tunnels, dev: with a VLAN, snaplen).
// The program is the classic filter translated instruction by
// instruction, so that both paths select exactly the same packets, with
// an epilogue that counts and clones.

// Map names the program refers to; loading binds them to real maps.
const (
	statsMap   = "span_stats"   // per-CPU array, one entry: the counters below
	destsMap   = "span_dests"   // array, one entry: the dev: destinations' ifindexes
	samplesMap = "span_samples" // perf event array, one ring per CPU: the packets gvsd writes
)

// Counters in the stats map's value, in 64-bit words.
const (
	ctrSeen      = 0
	ctrSelected  = 1
	ctrSampleErr = 2 // samples the kernel could not hand to gvsd for another reason than a full ring
	ctrDests     = 3 // then sent and dropped of each destination
	statsWords   = ctrDests + 2*MaxDests
)

func ctrSent(i int) int    { return ctrDests + 2*i }
func ctrDropped(i int) int { return ctrDests + 2*i + 1 }

// Offsets in struct __sk_buff (include/uapi/linux/bpf.h).
const (
	skbLen         = 0
	skbMark        = 8
	skbVLANPresent = 20
	skbVLANTCI     = 24
	skbVLANProto   = 28
	skbIfindex     = 40
	skbData        = 76
	skbDataEnd     = 80
	skbGSOSize     = 176
)

// The record the program puts before each sampled packet (native byte
// order), and its offsets; decodeSample reads it.
const (
	recTime        = 0  // u64: bpf_ktime_get_ns, CLOCK_MONOTONIC
	recLen         = 8  // u32: the packet's length (skb->len)
	recIfindex     = 12 // u32: the device it was seen on
	recVLANPresent = 16 // u32: a VLAN tag is in the metadata, not the frame
	recVLANTCI     = 20 // u32
	recVLANProto   = 24 // u32: the tag's TPID, network order
	recGSOSize     = 28 // u32: a super-frame's segment size, 0 if it is not one
	recDir         = 32 // u32: In or Out, the attach point
	recCapLen      = 36 // u32: the packet's bytes that follow
	recSummed      = 40 // u32: skb->ip_summed (checksumPartial: the L4 checksum is not finished)
	recCsumStart   = 44 // u16: where the checksum's coverage starts, from the frame's first byte
	recCsumOffset  = 46 // u16: the checksum field, from there
	sampleRecLen   = 48
)

// checksumPartial is CHECKSUM_PARTIAL (include/linux/skbuff.h): the L4
// checksum field holds only the pseudo-header's sum; the device (or
// whoever segments the packet) finishes it from csum_start on.
const checksumPartial = 3

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
// loads, the map key, the packet's own mark while the clones carry
// --mark, and a sample's record.
const (
	stackScratch = -64 // M[n] at stackScratch + 4n
	stackLoad    = -72
	stackKey     = -80
	stackMark    = -88
	stackRec     = -136 // the sample's record, sampleRecLen bytes
)

// SkbCsum says where the running kernel keeps an skb's checksum state
// (struct sk_buff, from the kernel's BTF: __sk_buff does not have it),
// and which kfunc gives the program the sk_buff behind its context.
type SkbCsum struct {
	CastKfunc   int32 // BTF id of bpf_cast_to_kern_ctx
	Summed      int16 // offset of the byte that holds the ip_summed bit-field
	SummedShift uint8 // ip_summed's lowest bit in that byte
	// Offsets of the 16-bit fields csum_start and mac_header (offsets
	// from skb->head, which at tc is the frame's first byte plus
	// mac_header) and csum_offset.
	Start, Offset, MacHeader int16
}

// KernelClones says whether the kernel clones a destination's copies
// itself: a dev: destination without a VLAN, in a session that keeps whole
// packets. Every other destination is written by gvsd, from the samples
// the program hands it through the perf event array.
func (c *Config) KernelClones(d Dest) bool {
	return d.Kind == DestDev && d.VLAN < 0 && c.Snaplen == 0 && !c.Metadata
}

// ToUserSpace says whether any destination needs the packets in gvsd.
func (c *Config) ToUserSpace() bool {
	for _, d := range c.Dests {
		if !c.KernelClones(d) {
			return true
		}
	}
	return false
}

// EBPFOptions say what the tc program does with a selected packet.
type EBPFOptions struct {
	// Clone lists the destinations (their indexes in the session, and
	// slots of the destinations map) the kernel clones the packet to.
	Clone   []int
	Mark    uint32
	HasMark bool // the clones carry Mark
	// Sample hands the packet, up to Snap bytes, to gvsd through the
	// perf event array, with a record of Dir.
	Sample bool
	Snap   uint32
	Dir    Direction
	// Csum, if set, has samples carry the packet's checksum state, so
	// that gvsd finishes partial checksums (nil: samples say
	// CHECKSUM_NONE).
	Csum *SkbCsum
}

// EBPFProgram returns the session's tc program for sources attached in
// direction dir (In or Out: the attach point, which the records of
// sampled packets carry).
func (c *Config) EBPFProgram(dir Direction) (asm.Instructions, error) {
	o := EBPFOptions{Mark: c.Mark, HasMark: c.HasMark, Sample: c.ToUserSpace(), Snap: c.sampleSnap(), Dir: dir}
	if o.Sample && !c.Metadata {
		// Copies of packets whose checksum the kernel left for the
		// device to finish would leave gvsd with a wrong one. Metadata
		// records carry no checksum.
		csum, err := kernelSkbCsum()
		if err != nil {
			return nil, fmt.Errorf("the eBPF program cannot tell which packets' checksums are partial, which gvsd must finish in its copies: %w", err)
		}
		o.Csum = csum
	}
	for i, d := range c.Dests {
		if c.KernelClones(d) {
			o.Clone = append(o.Clone, i)
		}
	}
	return EBPFProgram(c.FilterRules(), o)
}

// MaxSample bounds the bytes of a packet one perf sample carries: a perf
// record's size is 16 bits, and holds its header, the raw size, the
// record of sampleRecLen bytes and padding. A TCP super-frame of 64 KiB
// (GSO) fits.
const MaxSample = 65535 - 8 - 4 - sampleRecLen - 7

// sampleSnap is what a sample keeps of a packet.
func (c *Config) sampleSnap() uint32 {
	return min(c.snaplen(), MaxSample)
}

// EBPFProgram returns the tc program for the rules: it runs them on
// every packet of the interface and direction it is attached to, and
// clones the selected ones to the destinations o.Clone names (counting
// each clone sent or lost), and samples them to gvsd if o.Sample. It
// never changes or drops the original packet.
func EBPFProgram(rules []Rule, o EBPFOptions) (asm.Instructions, error) {
	if len(o.Clone) > MaxDests {
		return nil, fmt.Errorf("%d destinations, at most %d", len(o.Clone), MaxDests)
	}
	for _, i := range o.Clone {
		if i < 0 || i >= MaxDests {
			return nil, fmt.Errorf("destination %d: at most %d", i, MaxDests)
		}
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
		insns = append(insns, epilogueEBPF(o)...)
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

// epilogueEBPF counts a selected packet, clones it to each destination
// of o.Clone and samples it if o.Sample, then leaves by "pass", which
// leaves the packet untouched.
func epilogueEBPF(o EBPFOptions) asm.Instructions {
	insns := count(ctrSelected)
	insns[0] = insns[0].WithSymbol("selected")
	if len(o.Clone) > 0 {
		insns = append(insns, clones(o)...)
	}
	if o.Sample {
		insns = append(insns, sample(o.Snap, o.Dir, o.Csum)...)
	}
	return append(insns, asm.Ja.Label("pass"))
}

// clones clones the packet to each destination of o.Clone that is
// there, carrying o.Mark if o.HasMark.
func clones(o EBPFOptions) asm.Instructions {
	insns := lookup(destsMap)
	insns = append(insns, asm.Mov.Reg(rA, asm.R0)) // A is free now
	if o.HasMark {
		insns = append(insns,
			asm.LoadMem(asm.R1, rCtx, skbMark, asm.Word),
			asm.StoreMem(asm.RFP, stackMark, asm.R1, asm.Word),
			asm.Mov.Imm32(asm.R1, int32(o.Mark)),
			asm.StoreMem(rCtx, skbMark, asm.R1, asm.Word))
	}
	for _, i := range o.Clone {
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
	if o.HasMark {
		insns = append(insns,
			asm.LoadMem(asm.R1, asm.RFP, stackMark, asm.Word),
			asm.StoreMem(rCtx, skbMark, asm.R1, asm.Word))
	}
	return insns
}

// sample writes the packet's record on the stack and hands it, with the
// packet's first min(len, snap) bytes, to the perf event array on this
// CPU (bpf_perf_event_output on an skb: the upper 32 bits of the flags
// are how many bytes of the packet to copy). A full ring is counted by
// perf itself (lost samples, which gvsd reads); any other failure in
// ctrSampleErr.
func sample(snap uint32, dir Direction, csum *SkbCsum) asm.Instructions {
	rec := func(off int16) int16 { return stackRec + off }
	insns := asm.Instructions{
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, rec(recTime), asm.R0, asm.DWord),
	}
	for _, f := range []struct{ skb, rec int16 }{
		{skbLen, recLen}, {skbIfindex, recIfindex}, {skbVLANPresent, recVLANPresent},
		{skbVLANTCI, recVLANTCI}, {skbVLANProto, recVLANProto}, {skbGSOSize, recGSOSize},
	} {
		insns = append(insns,
			asm.LoadMem(asm.R1, rCtx, f.skb, asm.Word),
			asm.StoreMem(asm.RFP, rec(f.rec), asm.R1, asm.Word))
	}
	insns = append(insns, checksumState(csum, rec)...)
	insns = append(insns,
		asm.Mov.Imm32(asm.R1, int32(dir)),
		asm.StoreMem(asm.RFP, rec(recDir), asm.R1, asm.Word),
		// The bytes to copy: min(len, snap).
		asm.LoadMem(asm.R1, rCtx, skbLen, asm.Word),
		asm.JLE.Imm32(asm.R1, int32(snap), "caplen"),
		asm.Mov.Imm32(asm.R1, int32(snap)),
		asm.StoreMem(asm.RFP, rec(recCapLen), asm.R1, asm.Word).WithSymbol("caplen"),
		asm.Mov.Reg(asm.R3, asm.R1),
		asm.LSh.Imm(asm.R3, 32),
		asm.Mov.Imm32(asm.R2, -1), // BPF_F_CURRENT_CPU: zero-extended, the low 32 bits
		asm.Or.Reg(asm.R3, asm.R2),
		asm.Mov.Reg(asm.R1, rCtx),
		asm.LoadMapPtr(asm.R2, 0).WithReference(samplesMap),
		asm.Mov.Reg(asm.R4, asm.RFP),
		asm.Add.Imm(asm.R4, stackRec),
		asm.Mov.Imm(asm.R5, sampleRecLen),
		asm.FnPerfEventOutput.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.JEq.Imm(asm.R0, -int32(errENOSPC), "pass"), // lost: perf counts it
	)
	return append(insns, count(ctrSampleErr)...)
}

// checksumState writes the packet's checksum state into the record:
// ip_summed, and csum_start (from the frame's first byte: at tc,
// skb->data is the MAC header) and csum_offset, read from the sk_buff
// that bpf_cast_to_kern_ctx gives (the verifier checks each read against
// the kernel's BTF); zeros (CHECKSUM_NONE) with no csum.
func checksumState(csum *SkbCsum, rec func(int16) int16) asm.Instructions {
	if csum == nil {
		return asm.Instructions{
			asm.StoreImm(asm.RFP, rec(recSummed), 0, asm.Word),
			asm.StoreImm(asm.RFP, rec(recCsumStart), 0, asm.Word)}
	}
	return asm.Instructions{
		asm.Mov.Reg(asm.R1, rCtx),
		kfuncCall(csum.CastKfunc),
		asm.LoadMem(asm.R1, asm.R0, csum.Summed, asm.Byte),
		asm.RSh.Imm32(asm.R1, int32(csum.SummedShift)),
		asm.And.Imm32(asm.R1, 3),
		asm.StoreMem(asm.RFP, rec(recSummed), asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, csum.Start, asm.Half),
		asm.LoadMem(asm.R2, asm.R0, csum.MacHeader, asm.Half),
		asm.Sub.Reg32(asm.R1, asm.R2),
		asm.StoreMem(asm.RFP, rec(recCsumStart), asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.R0, csum.Offset, asm.Half),
		asm.StoreMem(asm.RFP, rec(recCsumOffset), asm.R1, asm.Half),
	}
}

// kfuncCall calls the kernel function of BTF id (in vmlinux's BTF).
func kfuncCall(id int32) asm.Instruction {
	return asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Src: asm.PseudoKfuncCall, Constant: int64(id)}
}

// errENOSPC is what bpf_perf_event_output returns when the ring is full.
const errENOSPC = 28

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
