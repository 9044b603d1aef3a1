package flow

import (
	"fmt"
	"strconv"
	"strings"
)

// Action is one OpenFlow action, as ovs-actions(7) describes it. A flow's
// actions are an ordered []Action; an empty list is "drop". The concrete
// types below are plain values: two action lists are the same actions
// when reflect.DeepEqual says so, which is what the round-trip tests use.
type Action interface {
	// format appends the action's text to b.
	format(b *strings.Builder, o FormatOptions)
}

// Output sends the packet to a port: an OpenFlow port number or one of
// the reserved ports PortNormal, PortFlood, PortAll, PortInPort,
// PortLocal, PortTable. (CONTROLLER is the Controller action.)
type Output struct{ Port uint32 }

// OutputReg sends the packet to the port number held in a subfield
// (output:NXM_NX_REG0[0..15]).
type OutputReg struct{ Src Subfield }

// Controller sends the packet to the OpenFlow controllers.
type Controller struct {
	MaxLen uint16 // bytes of the packet to send; 65535 for all
	Reason string // packet-in reason: "action" (the default), "no_match", ...
	ID     uint16 // controller id; 0 for all
	Pause  bool
}

// Resubmit looks the packet up again in Table (TableNone: the current
// table) as if it came in on InPort (PortInPort: its own in_port).
type Resubmit struct {
	InPort uint32
	Table  uint8
}

// TableNone is Resubmit.Table for "the table the rule is in".
const TableNone uint8 = 255

// GotoTable continues the pipeline in a later table (OpenFlow 1.1's
// instruction; gvs treats it as an action at the end of the list).
type GotoTable struct{ Table uint8 }

// SetVLANVID (mod_vlan_vid) sets the VID of the outer tag, pushing one if
// there is none.
type SetVLANVID struct{ VID uint16 }

// SetVLANPCP (mod_vlan_pcp) sets the priority of the outer tag, pushing
// one if there is none.
type SetVLANPCP struct{ PCP uint8 }

// StripVLAN removes the outer VLAN tag; Pop records that it was written
// pop_vlan, so that it prints back the same way.
type StripVLAN struct{ Pop bool }

// PushVLAN pushes a VLAN tag with the given TPID (0x8100 or 0x88a8).
type PushVLAN struct{ Ethertype uint16 }

// SetField writes a value, under a mask, into a whole field
// (set_field:VALUE[/MASK]->FIELD). Field is the canonical field name.
type SetField struct {
	Field string
	FieldValue
}

// Load writes an immediate value into a subfield
// (load:VALUE->DST[start..end]); Value is right-aligned, big-endian.
type Load struct {
	Dst   Subfield
	Value [16]byte
}

// Move copies one subfield into another of the same width.
type Move struct{ Src, Dst Subfield }

// SetEthAddr is mod_dl_src (Dst false) or mod_dl_dst (Dst true).
type SetEthAddr struct {
	Dst  bool
	Addr [6]byte
}

// SetIPv4Addr is mod_nw_src or mod_nw_dst.
type SetIPv4Addr struct {
	Dst  bool
	Addr [4]byte
}

// SetIPTOS (mod_nw_tos) sets the DSCP bits, written in their place in the
// TOS byte (a multiple of 4).
type SetIPTOS struct{ TOS uint8 }

// SetIPECN (mod_nw_ecn) sets the two ECN bits.
type SetIPECN struct{ ECN uint8 }

// SetIPTTL (mod_nw_ttl) sets the TTL or hop limit.
type SetIPTTL struct{ TTL uint8 }

// SetL4Port is mod_tp_src or mod_tp_dst.
type SetL4Port struct {
	Dst  bool
	Port uint16
}

// DecTTL decrements the TTL; a packet whose TTL runs out goes to the
// controllers with the given ids (none: the default controller).
type DecTTL struct{ IDs []uint16 }

// SetTunnel sets the tunnel id (set_tunnel, or set_tunnel64 if Wide).
type SetTunnel struct {
	ID   uint64
	Wide bool
}

// Note carries bytes that do nothing (note:de.ad.be.ef).
type Note struct{ Data []byte }

// Clone runs its actions on a copy of the packet; the original continues
// unchanged after it.
type Clone struct{ Actions []Action }

// CTClear forgets the packet's connection tracking state.
type CTClear struct{}

// Group runs the packet through the buckets of an OpenFlow group
// (group:ID), each on a copy of the packet, as ovs-actions(7) says.
type Group struct{ ID uint32 }

// FormatActions prints an action list as ovs-ofctl does: "drop" when
// empty, else the actions separated by commas.
func FormatActions(acts []Action, o FormatOptions) string {
	if len(acts) == 0 {
		return "drop"
	}
	var b strings.Builder
	formatList(&b, acts, o)
	return b.String()
}

func formatList(b *strings.Builder, acts []Action, o FormatOptions) {
	for i, a := range acts {
		if i > 0 {
			b.WriteByte(',')
		}
		a.format(b, o)
	}
}

func (a Output) format(b *strings.Builder, o FormatOptions) {
	if a.Port >= PortInPort && a.Port < PortNone {
		b.WriteString(FormatPort(a.Port, nil))
		return
	}
	b.WriteString("output:" + FormatPort(a.Port, o.PortName))
}

func (a OutputReg) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString("output:" + a.Src.String())
}

func (a Controller) format(b *strings.Builder, _ FormatOptions) {
	if a.Reason == "action" && a.ID == 0 && !a.Pause {
		fmt.Fprintf(b, "CONTROLLER:%d", a.MaxLen)
		return
	}
	var parts []string
	if a.Reason != "action" {
		parts = append(parts, "reason="+a.Reason)
	}
	if a.MaxLen != 0xffff {
		parts = append(parts, fmt.Sprintf("max_len=%d", a.MaxLen))
	}
	if a.ID != 0 {
		parts = append(parts, fmt.Sprintf("id=%d", a.ID))
	}
	if a.Pause {
		parts = append(parts, "pause")
	}
	b.WriteString("controller(" + strings.Join(parts, ",") + ")")
}

func (a Resubmit) format(b *strings.Builder, o FormatOptions) {
	if a.InPort != PortInPort && a.Table == TableNone {
		b.WriteString("resubmit:" + FormatPort(a.InPort, o.PortName))
		return
	}
	b.WriteString("resubmit(")
	if a.InPort != PortInPort {
		b.WriteString(FormatPort(a.InPort, o.PortName))
	}
	b.WriteByte(',')
	if a.Table != TableNone {
		b.WriteString(strconv.Itoa(int(a.Table)))
	}
	b.WriteByte(')')
}

func (a GotoTable) format(b *strings.Builder, _ FormatOptions) {
	fmt.Fprintf(b, "goto_table:%d", a.Table)
}

func (a SetVLANVID) format(b *strings.Builder, _ FormatOptions) {
	fmt.Fprintf(b, "mod_vlan_vid:%d", a.VID)
}

func (a SetVLANPCP) format(b *strings.Builder, _ FormatOptions) {
	fmt.Fprintf(b, "mod_vlan_pcp:%d", a.PCP)
}

func (a StripVLAN) format(b *strings.Builder, _ FormatOptions) {
	if a.Pop {
		b.WriteString("pop_vlan")
	} else {
		b.WriteString("strip_vlan")
	}
}

func (a PushVLAN) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString("push_vlan:" + cHex(uint64(a.Ethertype)))
}

func (a SetField) format(b *strings.Builder, o FormatOptions) {
	b.WriteString("set_field:" + formatFieldValue(a.Field, a.FieldValue, o.PortName) + "->" + a.Field)
}

func (a Load) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString("load:" + hex128(a.Value[:]) + "->" + a.Dst.String())
}

func (a Move) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString("move:" + a.Src.String() + "->" + a.Dst.String())
}

func (a SetEthAddr) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString(pick(a.Dst, "mod_dl_dst:", "mod_dl_src:") + formatMAC(a.Addr[:]))
}

func (a SetIPv4Addr) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString(pick(a.Dst, "mod_nw_dst:", "mod_nw_src:") + formatIPv4Masked(a.Addr, []byte{0xff, 0xff, 0xff, 0xff}))
}

func (a SetIPTOS) format(b *strings.Builder, _ FormatOptions) { fmt.Fprintf(b, "mod_nw_tos:%d", a.TOS) }
func (a SetIPECN) format(b *strings.Builder, _ FormatOptions) { fmt.Fprintf(b, "mod_nw_ecn:%d", a.ECN) }
func (a SetIPTTL) format(b *strings.Builder, _ FormatOptions) { fmt.Fprintf(b, "mod_nw_ttl:%d", a.TTL) }

func (a SetL4Port) format(b *strings.Builder, _ FormatOptions) {
	fmt.Fprintf(b, "%s%d", pick(a.Dst, "mod_tp_dst:", "mod_tp_src:"), a.Port)
}

func (a DecTTL) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString("dec_ttl")
	if len(a.IDs) == 0 {
		return
	}
	b.WriteByte('(')
	for i, id := range a.IDs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(id)))
	}
	b.WriteByte(')')
}

func (a SetTunnel) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString(pick(a.Wide, "set_tunnel64:", "set_tunnel:") + cHex(a.ID))
}

func (a Note) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString("note:")
	for i, c := range a.Data {
		if i > 0 {
			b.WriteByte('.')
		}
		fmt.Fprintf(b, "%02x", c)
	}
}

func (a Clone) format(b *strings.Builder, o FormatOptions) {
	b.WriteString("clone(" + FormatActions(a.Actions, o) + ")")
}

func (CTClear) format(b *strings.Builder, _ FormatOptions) { b.WriteString("ct_clear") }

func (a Group) format(b *strings.Builder, _ FormatOptions) {
	b.WriteString("group:" + strconv.FormatUint(uint64(a.ID), 10))
}

func pick(cond bool, yes, no string) string {
	if cond {
		return yes
	}
	return no
}
