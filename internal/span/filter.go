package span

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"

	"gvs/internal/flow"
	"gvs/internal/packet"
)

// Direction says which packets of a source a session copies.
type Direction uint8

const (
	Both Direction = iota // what the interface receives and what it sends
	In                    // only what it receives
	Out                   // only what it sends
)

func (d Direction) String() string {
	switch d {
	case In:
		return "in"
	case Out:
		return "out"
	}
	return "both"
}

// ParseDirection reads "in", "out", "both" or "" (both).
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "", "both":
		return Both, nil
	case "in":
		return In, nil
	case "out":
		return Out, nil
	}
	return Both, fmt.Errorf("direction %q: in, out or both", s)
}

// packetOutgoing is the kernel's PACKET_OUTGOING packet type: a frame the
// interface sends, as an AF_PACKET socket sees it.
const packetOutgoing = 4

// Scratch memory the program's prologue fills for the rules to read.
const (
	mTCI      = iota // outer VLAN TCI in the key's form (VLANPresent set), 0 if untagged
	mInnerTCI        // inner VLAN TCI, same form
	mDlType          // ethertype after the tags (packet.Key.DlType)
	mL3              // offset of the IP or ARP header, 0 if its fields read as zero
	mL4              // offset of the transport header, 0 if its fields read as zero
	mNwProto         // IP protocol (IPv4) or next header (IPv6)
	mFrag            // packet.Key.NwFrag
	mArpOp           // ARP opcode as the key holds it (0 above 255)
)

// Compile turns rules into a classic BPF program for an AF_PACKET socket
// bound to a source: it returns snaplen (the bytes to keep) for a packet
// to copy and 0 for one to leave. No rules copies everything; with rules,
// the first that matches decides and a packet no rule matches is left.
//
// The program reads a VLAN tag either from the frame or, where the kernel
// took it out of the frame (VLAN offload), from the socket buffer's
// metadata, so that rules see tags as packet.Parse does.
func Compile(rules []Rule, dir Direction, snaplen uint32) ([]bpf.Instruction, error) {
	if snaplen == 0 || snaplen > MaxSnaplen {
		snaplen = DefaultSnap
	}
	p := newProg()
	direction(p, dir)
	if len(rules) == 0 {
		p.add(bpf.RetConstant{Val: snaplen})
		return p.resolve()
	}
	prologue(p)
	for i, r := range rules {
		if err := checkFilterable(r.Match, r.Text); err != nil {
			return nil, pointAt(r.Text, err)
		}
		end := fmt.Sprintf("rule%d", i)
		ruleChecks(p, r.Match, end)
		if r.Accept {
			p.add(bpf.RetConstant{Val: snaplen})
		} else {
			p.add(bpf.RetConstant{Val: 0})
		}
		p.label(end)
	}
	p.add(bpf.RetConstant{Val: 0})
	ins, err := p.resolve()
	if err != nil {
		return nil, err
	}
	if len(ins) > maxInstructions {
		return nil, fmt.Errorf("the rules compile to %d instructions, more than the kernel's %d: use fewer or simpler rules", len(ins), maxInstructions)
	}
	return ins, nil
}

// maxInstructions is the kernel's BPF_MAXINSNS for classic filters.
const maxInstructions = 4096

// direction leaves the packets of the other direction.
func direction(p *prog, dir Direction) {
	switch dir {
	case In:
		p.add(bpf.LoadExtension{Num: bpf.ExtType})
		p.jif(bpf.JumpEqual, packetOutgoing, "drop", "")
		p.ja("dir_ok")
		p.label("drop")
		p.add(bpf.RetConstant{Val: 0})
		p.label("dir_ok")
	case Out:
		p.add(bpf.LoadExtension{Num: bpf.ExtType})
		p.jif(bpf.JumpEqual, packetOutgoing, "dir_ok", "")
		p.add(bpf.RetConstant{Val: 0})
		p.label("dir_ok")
	}
}

// prologue reads the VLAN tags, the ethertype and where the L3 and L4
// headers start into scratch memory, as packet.Parse reads them.
func prologue(p *prog) {
	ld := func(off uint32, size int) bpf.Instruction { return bpf.LoadIndirect{Off: off, Size: size} }
	st := func(n int) bpf.Instruction { return bpf.StoreScratch{Src: bpf.RegA, N: n} }
	p.add(bpf.LoadConstant{Dst: bpf.RegA, Val: 0})
	for _, n := range []int{mTCI, mInnerTCI, mL3, mL4, mNwProto, mFrag, mArpOp} {
		p.add(st(n))
	}
	// X is the offset of the type field being read.
	p.add(bpf.LoadConstant{Dst: bpf.RegX, Val: 2 * packet.MACLen})
	p.add(bpf.LoadExtension{Num: bpf.ExtVLANTagPresent})
	p.jif(bpf.JumpEqual, 0, "tag1", "")
	p.add(bpf.LoadExtension{Num: bpf.ExtVLANTag}, bpf.ALUOpConstant{Op: bpf.ALUOpOr, Val: uint32(packet.VLANPresent)}, st(mTCI))
	p.ja("tag2")
	for i, slot := range []int{mTCI, mInnerTCI} {
		p.label(fmt.Sprintf("tag%d", i+1))
		p.add(ld(0, 2))
		p.jif(bpf.JumpEqual, uint32(packet.EtherTypeVLAN), fmt.Sprintf("istag%d", i+1), "")
		p.jif(bpf.JumpEqual, uint32(packet.EtherTypeQinQ), "", "type")
		p.label(fmt.Sprintf("istag%d", i+1))
		p.add(ld(2, 2), bpf.ALUOpConstant{Op: bpf.ALUOpOr, Val: uint32(packet.VLANPresent)}, st(slot),
			bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: packet.VLANTagLen}, bpf.TAX{})
	}
	p.label("type")
	p.add(ld(0, 2))
	p.jif(bpf.JumpGreaterOrEqual, uint32(packet.EtherTypeMin), "eth", "")
	// An 802.3 frame: only LLC/SNAP with organisation 0 carries a type.
	p.add(ld(2, 4))
	p.jif(bpf.JumpEqual, 0xaaaa0300, "", "none")
	p.add(ld(6, 2))
	p.jif(bpf.JumpEqual, 0, "", "none")
	p.add(ld(8, 2))
	p.jif(bpf.JumpGreaterOrEqual, uint32(packet.EtherTypeMin), "", "none")
	p.add(st(mDlType), bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 8}, bpf.TAX{}, bpf.LoadScratch{Dst: bpf.RegA, N: mDlType})
	p.ja("eth")
	p.label("none")
	p.add(bpf.LoadConstant{Dst: bpf.RegA, Val: uint32(packet.EtherTypeNone)}, st(mDlType))
	p.ja("rules")
	p.label("eth")
	p.add(st(mDlType), bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 2}, bpf.TAX{}, bpf.LoadScratch{Dst: bpf.RegA, N: mDlType})
	p.jif(bpf.JumpEqual, uint32(packet.EtherTypeIPv4), "ipv4", "")
	p.jif(bpf.JumpEqual, uint32(packet.EtherTypeIPv6), "ipv6", "")
	p.jif(bpf.JumpEqual, uint32(packet.EtherTypeARP), "arp", "")
	p.jif(bpf.JumpEqual, uint32(packet.EtherTypeRARP), "arp", "rules")

	p.label("ipv4")
	p.add(bpf.TXA{}, st(mL3), ld(9, 1), st(mNwProto), ld(6, 2))
	p.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x3fff})
	p.jif(bpf.JumpEqual, 0, "ipv4l4", "")
	p.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x1fff})
	p.jif(bpf.JumpEqual, 0, "", "later")
	p.add(bpf.LoadConstant{Dst: bpf.RegA, Val: uint32(packet.FragAny)}, st(mFrag))
	p.ja("ipv4l4")
	p.label("later")
	p.add(bpf.LoadConstant{Dst: bpf.RegA, Val: uint32(packet.FragAny | packet.FragLater)}, st(mFrag))
	p.ja("rules")
	p.label("ipv4l4")
	// L4 = L3 + 4*IHL.
	p.add(ld(0, 1), bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xf}, bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		bpf.ALUOpX{Op: bpf.ALUOpAdd}, bpf.TAX{})
	p.ja("l4")

	p.label("ipv6")
	// Extension headers are not walked: the next header is the protocol.
	p.add(bpf.TXA{}, st(mL3), ld(6, 1), st(mNwProto), bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: packet.IPv6Len}, bpf.TAX{})
	p.label("l4")
	// Only the protocols whose ports packet.Parse reads have an L4.
	p.add(bpf.LoadScratch{Dst: bpf.RegA, N: mNwProto})
	for _, proto := range []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoSCTP, packet.ProtoICMPv4, packet.ProtoICMPv6, packet.ProtoIGMP} {
		p.jif(bpf.JumpEqual, uint32(proto), "hasl4", "")
	}
	p.ja("rules")
	p.label("hasl4")
	p.add(bpf.TXA{}, st(mL4))
	p.ja("rules")

	p.label("arp")
	// Only Ethernet/IPv4 ARP has fields in the key.
	p.add(ld(0, 4))
	p.jif(bpf.JumpEqual, 0x00010800, "", "rules")
	p.add(ld(4, 2))
	p.jif(bpf.JumpEqual, 0x0604, "", "rules")
	p.add(bpf.TXA{}, st(mL3), ld(6, 2))
	p.jif(bpf.JumpGreaterThan, 0xff, "rules", "")
	p.add(st(mArpOp))
	p.label("rules")
}

// full is the widest value each scratch slot holds: a mask that covers
// it needs no AND.
var full = map[int]uint32{mTCI: 0xffff, mInnerTCI: 0xffff, mDlType: 0xffff, mNwProto: 0xff, mFrag: 0xff, mArpOp: 0xff}

// ruleChecks emits the tests of one rule; a failed test jumps to fail.
func ruleChecks(p *prog, m *flow.Match, fail string) {
	v, k := m.Value(), m.Mask()
	ipv6 := v.DlType == packet.EtherTypeIPv6 && k.DlType == 0xffff
	arp := (v.DlType == packet.EtherTypeARP || v.DlType == packet.EtherTypeRARP) && k.DlType == 0xffff
	tcpudp := v.NwProto == packet.ProtoTCP || v.NwProto == packet.ProtoUDP || v.NwProto == packet.ProtoSCTP
	scratch := func(slot int, mask, val uint32) {
		if mask == 0 {
			return
		}
		p.add(bpf.LoadScratch{Dst: bpf.RegA, N: slot})
		and(p, mask, full[slot])
		p.jif(bpf.JumpEqual, val&mask, "", fail)
	}
	// Ethernet: always present.
	bytesCheck(p, 0, v.DlDst[:], k.DlDst[:], fail)
	bytesCheck(p, 6, v.DlSrc[:], k.DlSrc[:], fail)
	scratch(mTCI, uint32(k.VLANTCI), uint32(v.VLANTCI))
	scratch(mDlType, uint32(k.DlType), uint32(v.DlType))

	// L3 fields: where the key has no such header they read as zero.
	l3 := newLayer(p, mL3, fail)
	switch {
	case arp:
		scratch(mArpOp, uint32(k.ArpOp), uint32(v.ArpOp))
		l3.bytes(8, v.ArpSha[:], k.ArpSha[:])
		l3.bytes(14, v.ArpSpa[:], k.ArpSpa[:])
		l3.bytes(18, v.ArpTha[:], k.ArpTha[:])
		l3.bytes(24, v.ArpTpa[:], k.ArpTpa[:])
	case ipv6:
		l3.word(0, 0, 0xfffff, v.IPv6Label, k.IPv6Label)
		l3.word(0, 20, 0xff, uint32(v.NwTOS), uint32(k.NwTOS))
		l3.word(7, 0, 0xff, uint32(v.NwTTL), uint32(k.NwTTL))
		l3.bytes(8, v.IPv6Src[:], k.IPv6Src[:])
		l3.bytes(24, v.IPv6Dst[:], k.IPv6Dst[:])
	default:
		l3.word(1, 0, 0xff, uint32(v.NwTOS), uint32(k.NwTOS))
		l3.word(8, 0, 0xff, uint32(v.NwTTL), uint32(k.NwTTL))
		l3.bytes(12, v.NwSrc[:], k.NwSrc[:])
		l3.bytes(16, v.NwDst[:], k.NwDst[:])
	}
	l3.end()
	scratch(mNwProto, uint32(k.NwProto), uint32(v.NwProto))
	scratch(mFrag, uint32(k.NwFrag), uint32(v.NwFrag))

	l4 := newLayer(p, mL4, fail)
	if tcpudp {
		l4.word(0, 0, 0xffff, uint32(v.TpSrc), uint32(k.TpSrc))
		l4.word(2, 0, 0xffff, uint32(v.TpDst), uint32(k.TpDst))
	} else {
		l4.word(0, 0, 0xff, uint32(v.TpSrc), uint32(k.TpSrc))
		l4.word(1, 0, 0xff, uint32(v.TpDst), uint32(k.TpDst))
	}
	l4.word(12, 0, 0x0fff, uint32(v.TCPFlags), uint32(k.TCPFlags))
	l4.end()
}

// and masks A unless the mask covers every bit the value can have.
func and(p *prog, mask, full uint32) {
	if mask != full {
		p.add(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask})
	}
}

// bytesCheck tests absolute bytes of the frame (the Ethernet header).
func bytesCheck(p *prog, off uint32, val, mask []byte, fail string) {
	for _, c := range chunks(val, mask) {
		p.add(bpf.LoadAbsolute{Off: off + c.off, Size: c.size})
		and(p, c.mask, c.full)
		p.jif(bpf.JumpEqual, c.val, "", fail)
	}
}

// chunk is up to four bytes of a field compared at once.
type chunk struct {
	off, val, mask, full uint32
	size                 int
}

// chunks splits a masked byte field into words, halfwords and bytes,
// leaving out the parts the mask ignores.
func chunks(val, mask []byte) []chunk {
	var cs []chunk
	for i := 0; i < len(val); {
		size := 4
		for size > len(val)-i {
			size /= 2
		}
		var c chunk
		c.off, c.size = uint32(i), size
		for j := range size {
			c.val = c.val<<8 | uint32(val[i+j]&mask[i+j])
			c.mask = c.mask<<8 | uint32(mask[i+j])
			c.full = c.full<<8 | 0xff
		}
		if c.mask != 0 {
			cs = append(cs, c)
		}
		i += size
	}
	return cs
}

// layer emits the tests of one header whose offset is in scratch slot:
// when the slot is 0 the header's fields read as zero, as in the key, so
// the tests hold only if zero satisfies them all.
type layer struct {
	p       *prog
	slot    int
	fail    string
	started bool
	zeroOK  bool
	label   string
}

var layerSeq int

func newLayer(p *prog, slot int, fail string) *layer {
	layerSeq++
	return &layer{p: p, slot: slot, fail: fail, zeroOK: true, label: fmt.Sprintf("%s_l%d_%d", fail, slot, layerSeq)}
}

func (l *layer) start() {
	if l.started {
		return
	}
	l.started = true
	l.p.add(bpf.LoadScratch{Dst: bpf.RegA, N: l.slot})
	l.p.jif(bpf.JumpEqual, 0, l.label+"_zero", "")
	l.p.add(bpf.TAX{})
}

// word tests the bits (A>>shift)&full of the halfword, byte or word at off
// (its size follows full) against val under mask.
func (l *layer) word(off, shift, full, val, mask uint32) {
	if mask == 0 {
		return
	}
	l.start()
	if val&mask != 0 {
		l.zeroOK = false
	}
	size := 4
	switch {
	case shift == 0 && full == 0xff:
		size = 1
	case shift == 0 && full <= 0xffff:
		size = 2
	}
	l.p.add(bpf.LoadIndirect{Off: off, Size: size})
	if shift != 0 {
		l.p.add(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: shift})
	}
	and(l.p, mask, map[int]uint32{1: 0xff, 2: 0xffff, 4: 0xffffffff}[size])
	l.p.jif(bpf.JumpEqual, val&mask, "", l.fail)
}

// bytes tests a byte field at off.
func (l *layer) bytes(off uint32, val, mask []byte) {
	for _, c := range chunks(val, mask) {
		l.start()
		if c.val != 0 {
			l.zeroOK = false
		}
		l.p.add(bpf.LoadIndirect{Off: off + c.off, Size: c.size})
		and(l.p, c.mask, c.full)
		l.p.jif(bpf.JumpEqual, c.val, "", l.fail)
	}
}

// end closes the layer: the zero case passes or fails as decided.
func (l *layer) end() {
	if !l.started {
		return
	}
	l.p.ja(l.label + "_done")
	l.p.label(l.label + "_zero")
	if !l.zeroOK {
		l.p.ja(l.fail)
	}
	l.p.label(l.label + "_done")
}

// checkFilterable refuses match fields the kernel filter cannot test,
// naming the field and why.
func checkFilterable(m *flow.Match, text string) error {
	k := m.Mask()
	// What the filter tests.
	k.DlSrc, k.DlDst, k.VLANTCI, k.DlType = [6]byte{}, [6]byte{}, 0, 0
	k.NwSrc, k.NwDst, k.IPv6Src, k.IPv6Dst, k.IPv6Label = [4]byte{}, [4]byte{}, [16]byte{}, [16]byte{}, 0
	k.NwProto, k.NwTOS, k.NwTTL, k.NwFrag = 0, 0, 0, 0
	k.TpSrc, k.TpDst, k.TCPFlags = 0, 0, 0
	k.ArpOp, k.ArpSpa, k.ArpTpa, k.ArpSha, k.ArpTha = 0, [4]byte{}, [4]byte{}, [6]byte{}, [6]byte{}
	if k == (packet.Key{}) {
		return nil
	}
	for _, u := range unfilterable {
		if u.set(&k) {
			return &flow.Error{Field: firstWord(text, u.prefixes), Msg: u.why}
		}
	}
	return &flow.Error{Msg: "a field the span filter cannot test"}
}

// unfilterable names, for each kind of field the filter cannot test, the
// field a message names and why.
var unfilterable = []struct {
	prefixes []string // the names of such fields start so
	why      string
	set      func(k *packet.Key) bool
}{
	{[]string{"ct_"}, "connection tracking fields (ct_*) need conntrack, which sees packets only inside a bridge; a span filter cannot test them",
		func(k *packet.Key) bool {
			return k.CtState != 0 || k.CtZone != 0 || k.CtMark != 0 || k.CtLabel != [16]byte{} || k.CtNwProto != 0 ||
				k.CtTpSrc != 0 || k.CtTpDst != 0 || k.CtNwSrc != [4]byte{} || k.CtNwDst != [4]byte{} ||
				k.CtIPv6Src != [16]byte{} || k.CtIPv6Dst != [16]byte{}
		}},
	{[]string{"in_port"}, "a span selects its interfaces with --source, not in_port", func(k *packet.Key) bool { return k.InPort != 0 }},
	{[]string{"tun_"}, "tunnel metadata (tun_*) exists only for packets a gvs tunnel port received",
		func(k *packet.Key) bool {
			return k.TunID != 0 || k.TunSrc != [4]byte{} || k.TunDst != [4]byte{} || k.TunIPv6Src != [16]byte{} ||
				k.TunIPv6Dst != [16]byte{} || k.TunFlags != 0 || k.TunTOS != 0 || k.TunTTL != 0 || k.TunGBPID != 0 ||
				k.TunGBPFlag != 0 || k.TunErspanIdx != 0 || k.TunErspanVer != 0 || k.TunErspanDir != 0 || k.TunErspanHWID != 0
		}},
	{[]string{"metadata", "reg", "xreg", "xxreg", "pkt_mark", "recirc_id", "dp_hash"}, "pipeline state (metadata, registers, pkt_mark, recirc_id, dp_hash) exists only inside a bridge",
		func(k *packet.Key) bool {
			return k.Metadata != 0 || k.Regs != [packet.NumRegs]uint32{} || k.PktMark != 0 || k.RecircID != 0 || k.DpHash != 0
		}},
	{[]string{"mpls"}, "MPLS fields are not supported by the span filter", func(k *packet.Key) bool { return k.MPLSLSE != [packet.MaxMPLSLabels]uint32{} }},
	{[]string{"nd_"}, "neighbor discovery fields (nd_*) are not supported by the span filter",
		func(k *packet.Key) bool {
			return k.NdTarget != [16]byte{} || k.NdSll != [6]byte{} || k.NdTll != [6]byte{}
		}},
	{[]string{"vlan_tci2", "dl_vlan2", "vlan_vid2"}, "the inner VLAN tag is not supported by the span filter", func(k *packet.Key) bool { return k.InnerVLANTCI != 0 }},
}

// firstWord returns the first field name in a rule that starts with one
// of prefixes, or the first prefix.
func firstWord(text string, prefixes []string) string {
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		name, _, _ := strings.Cut(w, "=")
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return name
			}
		}
	}
	return prefixes[0]
}

// Disassemble prints a program one instruction a line, numbered, for
// gvs span show --bpf.
func Disassemble(ins []bpf.Instruction) string {
	var b strings.Builder
	for i, in := range ins {
		fmt.Fprintf(&b, "%4d  %s\n", i, in)
	}
	return b.String()
}
