package connmgr

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	"gvs/internal/flow"
	"gvs/internal/openflow"
)

// Port numbers: the wire (openflow) keeps OpenFlow 1.3's 32-bit space,
// the flow model OpenFlow 1.0's 16 bits with reserved ports at 0xff00.
func toFlowPort(p uint32) uint32 {
	if p >= openflow.PortMax {
		return p & 0xffff
	}
	return p
}

func toWirePort(p uint32) uint32 {
	if p >= 0xff00 {
		return p | 0xffff0000
	}
	return p
}

// wireInfo maps an ovs-fields name to its NXM and OXM entries.
var nxmByName, oxmByName = map[string]*openflow.FieldInfo{}, map[string]*openflow.FieldInfo{}

func init() {
	for _, class := range []uint16{openflow.ClassNXM0, openflow.ClassNXM1, openflow.ClassOpenFlow, 0x8001} {
		for f := 0; f < 128; f++ {
			fi, ok := openflow.LookupField(class, uint8(f), 0)
			if !ok {
				continue
			}
			if class == openflow.ClassOpenFlow || class == 0x8001 {
				oxmByName[fi.FlowName] = fi
			} else if nxmByName[fi.FlowName] == nil {
				nxmByName[fi.FlowName] = fi
			}
		}
	}
	// A field with only an experimenter OXM header (tun_erspan_*, whose
	// ovs-fields(7) entry names no NXM header) goes to the wire with it
	// in NXM matches too, as OVS encodes it.
	for _, fi := range openflow.Fields() {
		if fi.Class != openflow.ClassExperimenter || fi.Experimenter != openflow.NXVendorID ||
			nxmByName[fi.FlowName] != nil || oxmByName[fi.FlowName] != nil {
			continue
		}
		fi, _ := openflow.LookupField(fi.Class, fi.Field, fi.Experimenter)
		nxmByName[fi.FlowName], oxmByName[fi.FlowName] = fi, fi
	}
}

// fullMask is the mask of a field whose value covers fewer bits than its
// wire bytes: a mask of exactly these bits is an exact match.
var fullMask = map[string]uint64{"ip_frag": 0x3, "nw_ecn": 0x3, "tcp_flags": 0xfff, "ipv6_label": 0xfffff,
	"nw_tos": 0xfc, "ct_state": 0xff, "icmp_type": 0xff, "icmp_code": 0xff, "icmpv6_type": 0xff, "icmpv6_code": 0xff}

// nxmCookie takes NXM_NX_COOKIE(_W) out of an NXM match: in OpenFlow
// 1.0 with Nicira extensions it is how a flow mod or a flow stats request
// selects flows by cookie (ovs-ofctl's cookie=VALUE/MASK), not a packet
// field. It returns the other fields, the cookie and its mask (all ones
// for an exact match, 0 when the match has none).
func nxmCookie(fs []openflow.Field) (rest []openflow.Field, cookie, mask uint64) {
	for i := range fs {
		fi, ok := fs[i].Info()
		if !ok || fi.FlowName != "cookie" {
			continue
		}
		cookie, mask = beUint64(fs[i].Value), ^uint64(0)
		if fs[i].Mask != nil {
			mask = beUint64(fs[i].Mask)
		}
		rest = append(append(make([]openflow.Field, 0, len(fs)-1), fs[:i]...), fs[i+1:]...)
		return rest, cookie & mask, mask
	}
	return fs, 0, 0
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// matchFromWire converts a decoded NXM/OXM match to the flow model.
func matchFromWire(fs []openflow.Field) (*flow.Match, error) {
	wfs := make([]flow.WireField, 0, len(fs))
	for i := range fs {
		wf, ok := wireField(&fs[i])
		if !ok {
			return nil, &openflow.Error{Code: openflow.ErrMatchBadField, Detail: "unknown field"}
		}
		wfs = append(wfs, wf)
	}
	m, err := flow.MatchFromWire(wfs)
	if err != nil {
		code := openflow.ErrMatchBadValue
		switch msg := err.Error(); {
		case strings.Contains(msg, "prerequisite") || strings.Contains(msg, "requires"):
			code = openflow.ErrMatchBadPrereq
		case strings.Contains(msg, "not supported"):
			code = openflow.ErrMatchBadField
		case strings.Contains(msg, "mask"):
			code = openflow.ErrMatchBadMask
		}
		return nil, &openflow.Error{Code: code, Detail: err.Error()}
	}
	return m, nil
}

// wireField converts one NXM/OXM entry to the flow model's form (OXM's
// in_port and ip_dscp as ovs-fields names them); ok false for a field
// gvs does not know.
func wireField(f *openflow.Field) (wf flow.WireField, ok bool) {
	fi, ok := f.Info()
	if !ok {
		return wf, false
	}
	wf = flow.WireField{Name: fi.FlowName}
	copy(wf.Value[16-len(f.Value):], f.Value)
	if f.Mask != nil {
		copy(wf.Mask[16-len(f.Mask):], f.Mask)
	} else {
		for j := 16 - fi.Len; j < 16; j++ {
			wf.Mask[j] = 0xff
		}
	}
	if wf.Name == "in_port_oxm" {
		wf.Name = "in_port"
		p := toFlowPort(uint32(wf.Value[12])<<24 | uint32(wf.Value[13])<<16 | uint32(wf.Value[14])<<8 | uint32(wf.Value[15]))
		wf.Value = [16]byte{14: byte(p >> 8), 15: byte(p)}
		wf.Mask = [16]byte{14: 0xff, 15: 0xff}
	}
	if wf.Name == "ip_dscp" { // OXM's DSCP is the TOS byte's upper six bits
		wf.Name = "nw_tos"
		wf.Value[15] <<= 2
		wf.Mask[15] = 0xff
	}
	return wf, true
}

// matchToWire converts a match to NXM (oxm false) or OXM entries.
func matchToWire(m *flow.Match, oxm bool) []openflow.Field {
	var out []openflow.Field
	for _, wf := range m.WireFields() {
		fi := nxmByName[wf.Name]
		if oxm {
			if o := oxmByName[wf.Name]; o != nil {
				fi = o
			}
			if wf.Name == "in_port" {
				fi = oxmByName["in_port_oxm"]
				p := toWirePort(uint32(wf.Value[14])<<8 | uint32(wf.Value[15]))
				wf.Value = [16]byte{12: byte(p >> 24), 13: byte(p >> 16), 14: byte(p >> 8), 15: byte(p)}
				wf.Mask = [16]byte{12: 0xff, 13: 0xff, 14: 0xff, 15: 0xff}
			}
		}
		if fi == nil {
			continue
		}
		f := openflow.Field{Class: fi.Class, Field: fi.Field, Experimenter: fi.Experimenter,
			Value: append([]byte(nil), wf.Value[16-fi.Len:]...)}
		mask := wf.Mask[16-fi.Len:]
		if fi.Maskable && !exactMask(wf.Name, mask) {
			f.Mask = append([]byte(nil), mask...)
		}
		out = append(out, f)
	}
	return out
}

func exactMask(name string, mask []byte) bool {
	if full, ok := fullMask[name]; ok {
		var v uint64
		for _, b := range mask {
			v = v<<8 | uint64(b)
		}
		return v == full
	}
	for _, b := range mask {
		if b != 0xff {
			return false
		}
	}
	return true
}

// subfieldFromNXM names the bits of an NXM header's field.
func subfieldFromNXM(hdr uint32, ofs, nbits uint16) (flow.Subfield, error) {
	fi, ok := openflow.LookupField(uint16(hdr>>16), uint8(hdr>>9&0x7f), 0)
	if !ok {
		return flow.Subfield{}, &openflow.Error{Code: openflow.ErrActBadArgument, Detail: fmt.Sprintf("unknown field 0x%08x", hdr)}
	}
	name := fi.FlowName
	if name == "in_port_oxm" {
		name = "in_port"
	}
	return flow.Subfield{Field: name, Start: ofs, Bits: nbits}, nil
}

func nxmHeader(sf flow.Subfield) (uint32, bool) {
	fi := nxmByName[sf.Field]
	if fi == nil {
		fi = oxmByName[sf.Field]
	}
	if fi == nil {
		return 0, false
	}
	return fi.Header(), true
}

var errUnsupportedAction = func(what string) error {
	return &openflow.Error{Code: openflow.ErrActBadType, Detail: what + " is not supported by gvs yet"}
}

// actionsFromWire converts decoded actions to the flow model.
func actionsFromWire(acts []openflow.Action, v uint8) ([]flow.Action, error) {
	out := make([]flow.Action, 0, len(acts))
	for _, a := range acts {
		fa, err := actionFromWire(a, v)
		if err != nil {
			return nil, err
		}
		out = append(out, fa)
	}
	return out, nil
}

func actionFromWire(a openflow.Action, v uint8) (flow.Action, error) {
	switch a := a.(type) {
	case *openflow.Output:
		return outputFromWire(a.Port, a.MaxLen), nil
	case openflow.Output:
		return outputFromWire(a.Port, a.MaxLen), nil
	}
	return actionFromWireValue(deref(a), v)
}

// deref turns pointer actions into values, whichever the decoder used.
func deref(a openflow.Action) openflow.Action {
	switch p := a.(type) {
	case *openflow.SetVLANVID:
		return *p
	case *openflow.SetVLANPCP:
		return *p
	case *openflow.PopVLAN:
		return *p
	case *openflow.PushVLAN:
		return *p
	case *openflow.SetDlAddr:
		return *p
	case *openflow.SetNwAddr:
		return *p
	case *openflow.SetNwTOS:
		return *p
	case *openflow.SetTpPort:
		return *p
	case *openflow.SetNwTTL:
		return *p
	case *openflow.DecNwTTL:
		return *p
	case *openflow.SetField:
		return *p
	case *openflow.Resubmit:
		return *p
	case *openflow.SetTunnel:
		return *p
	case *openflow.RegLoad:
		return *p
	case *openflow.RegMove:
		return *p
	case *openflow.Note:
		return *p
	case *openflow.OutputReg:
		return *p
	case *openflow.Controller:
		return *p
	case *openflow.CT:
		return *p
	case *openflow.NAT:
		return *p
	case *openflow.Clone:
		return *p
	case *openflow.CTClear:
		return *p
	case *openflow.Learn:
		return *p
	case *openflow.Conjunction:
	case *openflow.Group:
		return *p
	}
	return a
}

func outputFromWire(port uint32, maxLen uint16) flow.Action {
	if port == openflow.PortController {
		return flow.Controller{MaxLen: maxLen, Reason: "action"}
	}
	return flow.Output{Port: toFlowPort(port)}
}

func actionFromWireValue(a openflow.Action, v uint8) (flow.Action, error) {
	switch a := a.(type) {
	case openflow.SetVLANVID:
		return flow.SetVLANVID{VID: a.VID}, nil
	case openflow.SetVLANPCP:
		return flow.SetVLANPCP{PCP: a.PCP}, nil
	case openflow.PopVLAN:
		return flow.StripVLAN{Pop: v != openflow.Version10}, nil
	case openflow.PushVLAN:
		return flow.PushVLAN{Ethertype: a.EthType}, nil
	case openflow.SetDlAddr:
		return flow.SetEthAddr{Dst: a.Dst, Addr: a.Addr}, nil
	case openflow.SetNwAddr:
		return flow.SetIPv4Addr{Dst: a.Dst, Addr: a.Addr}, nil
	case openflow.SetNwTOS:
		return flow.SetIPTOS{TOS: a.TOS}, nil
	case openflow.SetTpPort:
		return flow.SetL4Port{Dst: a.Dst, Port: a.Port}, nil
	case openflow.SetNwTTL:
		return flow.SetIPTTL{TTL: a.TTL}, nil
	case openflow.DecNwTTL:
		return flow.DecTTL{}, nil
	case openflow.SetField:
		return setFieldFromWire(a.Field)
	case openflow.Resubmit:
		if a.CT {
			return nil, errUnsupportedAction("resubmit with ct")
		}
		t := a.Table
		if !a.WithTable {
			t = flow.TableNone
		}
		return flow.Resubmit{InPort: toFlowPort(a.InPort), Table: t}, nil
	case openflow.SetTunnel:
		return flow.SetTunnel{ID: a.ID, Wide: a.Is64}, nil
	case openflow.RegLoad:
		sf, err := subfieldFromNXM(a.Dst, a.OfsNbits>>6, a.OfsNbits&63+1)
		if err != nil {
			return nil, err
		}
		var val [16]byte
		for i := 0; i < 8; i++ {
			val[15-i] = byte(a.Value >> (8 * i))
		}
		return flow.Load{Dst: sf, Value: val}, nil
	case openflow.RegMove:
		src, err := subfieldFromNXM(a.Src, a.SrcOfs, a.NBits)
		if err != nil {
			return nil, err
		}
		dst, err := subfieldFromNXM(a.Dst, a.DstOfs, a.NBits)
		if err != nil {
			return nil, err
		}
		return flow.Move{Src: src, Dst: dst}, nil
	case openflow.Note:
		return flow.Note{Data: append([]byte(nil), a.Data...)}, nil
	case openflow.OutputReg:
		sf, err := subfieldFromNXM(a.Src, a.OfsNbits>>6, a.OfsNbits&63+1)
		if err != nil {
			return nil, err
		}
		return flow.OutputReg{Src: sf}, nil
	case openflow.Controller:
		return flow.Controller{MaxLen: a.MaxLen, ID: a.ControllerID, Reason: reasonName(a.Reason)}, nil
	case openflow.Clone:
		acts, err := actionsFromWire(a.Actions, v)
		return flow.Clone{Actions: acts}, err
	case openflow.CTClear:
		return flow.CTClear{}, nil
	case openflow.Group:
		if a.GroupID > flow.MaxGroupID {
			return nil, &openflow.Error{Code: openflow.ErrActBadOutGroup, Detail: fmt.Sprintf("group 0x%x is reserved", a.GroupID)}
		}
		return flow.Group{ID: a.GroupID}, nil
	case openflow.Learn:
		return learnFromWire(a.Body)
	case openflow.CT:
		return ctFromWire(a, v)
	case openflow.Conjunction:
		// The wire numbers the clause from 0, the text from 1.
		c := flow.Conjunction{ID: a.ID, Clause: a.Clause + 1, NClauses: a.NClauses}
		if a.Clause == 0xff || c.Check() != nil {
			return nil, &openflow.Error{Code: openflow.ErrActBadConjunction,
				Detail: fmt.Sprintf("conjunction(%d,%d/%d) (clause numbered from 0)", a.ID, a.Clause, a.NClauses)}
		}
		return c, nil
	}
	return nil, errUnsupportedAction(fmt.Sprintf("action %T", a))
}

var reasonNames = []string{"no_match", "action", "invalid_ttl", "action_set", "group", "packet_out"}

func reasonName(r uint8) string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "action"
}

func reasonCode(s string) uint8 {
	for i, n := range reasonNames {
		if n == s {
			return uint8(i)
		}
	}
	return 1
}

func setFieldFromWire(f openflow.Field) (flow.Action, error) {
	fi, ok := f.Info()
	if !ok {
		return nil, &openflow.Error{Code: openflow.ErrActBadSetType, Detail: "unknown field"}
	}
	sf := flow.SetField{Field: fi.FlowName}
	copy(sf.Value[16-len(f.Value):], f.Value)
	if f.Mask != nil {
		copy(sf.Mask[16-len(f.Mask):], f.Mask)
	} else {
		for j := 16 - fi.Len; j < 16; j++ {
			sf.Mask[j] = 0xff
		}
	}
	if sf.Field == "in_port_oxm" {
		return nil, &openflow.Error{Code: openflow.ErrActBadSetType, Detail: "set_field to in_port"}
	}
	return sf, nil
}

// Nicira ct and nat flags (nicira-ext.h).
const (
	ctCommit = 1 << 0
	ctForce  = 1 << 1

	natSrc        = 1 << 0
	natDst        = 1 << 1
	natPersistent = 1 << 2
	natHash       = 1 << 3
	natRandom     = 1 << 4
)

func ctFromWire(a openflow.CT, v uint8) (flow.Action, error) {
	ct := flow.CT{Commit: a.Flags&ctCommit != 0, Force: a.Flags&ctForce != 0, Table: a.RecircTable, Zone: a.Zone}
	if ct.Force && !ct.Commit {
		return nil, &openflow.Error{Code: openflow.ErrActBadArgument, Detail: "ct: force without commit"}
	}
	if a.ZoneSrc != 0 {
		// As OVS: a zone read from a field is exactly 16 bits wide.
		if n := a.Zone&63 + 1; n != 16 {
			return nil, &openflow.Error{Code: openflow.ErrActBadSetLen, Detail: fmt.Sprintf("ct: zone n_bits %d not within valid range [16..16]", n)}
		}
		sf, err := subfieldFromNXM(a.ZoneSrc, a.Zone>>6, a.Zone&63+1)
		if err != nil {
			return nil, err
		}
		ct.ZoneSrc, ct.Zone = sf, 0
	}
	switch a.Alg {
	case 0:
	case 21:
		ct.Alg = "ftp"
	case 69:
		ct.Alg = "tftp"
	default:
		return nil, &openflow.Error{Code: openflow.ErrActBadArgument, Detail: fmt.Sprintf("ct alg %d", a.Alg)}
	}
	for _, inner := range a.Actions {
		if n, ok := deref(inner).(openflow.NAT); ok {
			if err := checkNAT(n); err != nil {
				return nil, err
			}
			if !ct.Commit && (n.Flags != 0 || n.RangePresent&natRangeAddrs != 0) {
				return nil, errCTNeedsCommit
			}
			ct.NAT = natFromWire(n)
			continue
		}
		if !ct.Commit {
			return nil, errCTNeedsCommit
		}
		fa, err := actionFromWire(inner, v)
		if err != nil {
			return nil, err
		}
		ct.Exec = append(ct.Exec, fa)
	}
	return ct, nil
}

// errCTNeedsCommit is OVS's answer to a ct without commit that would set
// anything: only a bare nat (apply the connection's translation) may go
// without it.
var errCTNeedsCommit = &openflow.Error{Code: openflow.ErrActBadArgument,
	Detail: "ct: actions other than nat without arguments require commit"}

const natRangeAddrs = openflow.NATRangeIPv4Min | openflow.NATRangeIPv4Max | openflow.NATRangeIPv6Min | openflow.NATRangeIPv6Max

// checkNAT refuses what OVS refuses in a nat action: src and dst
// together, hash and random together, unknown flags, a maximum without
// its minimum, a range whose maximum is below its minimum, and IPv4 and
// IPv6 addresses mixed.
func checkNAT(n openflow.NAT) error {
	bad := func(what string) error {
		return &openflow.Error{Code: openflow.ErrActBadArgument, Detail: "nat: " + what}
	}
	const v4 = openflow.NATRangeIPv4Min | openflow.NATRangeIPv4Max
	const v6 = openflow.NATRangeIPv6Min | openflow.NATRangeIPv6Max
	r := n.RangePresent
	switch {
	case n.Flags&^(natSrc|natDst|natPersistent|natHash|natRandom) != 0:
		return bad(fmt.Sprintf("unknown flags %#x", n.Flags))
	case n.Flags&natSrc != 0 && n.Flags&natDst != 0:
		return bad("src and dst together")
	case n.Flags&natHash != 0 && n.Flags&natRandom != 0:
		return bad("hash and random together")
	case r&v4 != 0 && r&v6 != 0:
		return bad("IPv4 and IPv6 addresses together")
	case r&openflow.NATRangeIPv4Max != 0 && r&openflow.NATRangeIPv4Min == 0,
		r&openflow.NATRangeIPv6Max != 0 && r&openflow.NATRangeIPv6Min == 0,
		r&openflow.NATRangeProtoMax != 0 && r&openflow.NATRangeProtoMin == 0:
		return bad("a range maximum without its minimum")
	case r&openflow.NATRangeIPv4Max != 0 && bytes.Compare(n.IPv4Max[:], n.IPv4Min[:]) < 0,
		r&openflow.NATRangeIPv6Max != 0 && bytes.Compare(n.IPv6Max[:], n.IPv6Min[:]) < 0,
		r&openflow.NATRangeProtoMax != 0 && n.ProtoMax < n.ProtoMin:
		return bad("a range whose maximum is below its minimum")
	}
	return nil
}

func natFromWire(n openflow.NAT) *flow.NAT {
	out := &flow.NAT{Persistent: n.Flags&natPersistent != 0, Hash: n.Flags&natHash != 0, Random: n.Flags&natRandom != 0}
	switch {
	case n.Flags&natSrc != 0:
		out.Kind = "src"
	case n.Flags&natDst != 0:
		out.Kind = "dst"
	}
	if n.RangePresent&openflow.NATRangeIPv4Min != 0 {
		out.AddrMin = netip.AddrFrom4(n.IPv4Min)
	}
	if n.RangePresent&openflow.NATRangeIPv4Max != 0 {
		out.AddrMax = netip.AddrFrom4(n.IPv4Max)
	}
	if n.RangePresent&openflow.NATRangeIPv6Min != 0 {
		out.AddrMin = netip.AddrFrom16(n.IPv6Min)
	}
	if n.RangePresent&openflow.NATRangeIPv6Max != 0 {
		out.AddrMax = netip.AddrFrom16(n.IPv6Max)
	}
	out.PortMin, out.PortMax = n.ProtoMin, n.ProtoMax
	return out
}

// instructionsFromWire converts OpenFlow 1.3 instructions: apply-actions
// and goto-table, which is all a flow of the model holds.
func instructionsFromWire(insts []openflow.Instruction) ([]flow.Action, error) {
	var out []flow.Action
	var gotoTable *flow.GotoTable
	for _, in := range insts {
		switch in := in.(type) {
		case openflow.ApplyActions:
			acts, err := actionsFromWire(in.Actions, openflow.Version13)
			if err != nil {
				return nil, err
			}
			out = append(out, acts...)
		case *openflow.ApplyActions:
			acts, err := actionsFromWire(in.Actions, openflow.Version13)
			if err != nil {
				return nil, err
			}
			out = append(out, acts...)
		case openflow.GotoTable:
			gotoTable = &flow.GotoTable{Table: in.Table}
		case *openflow.GotoTable:
			gotoTable = &flow.GotoTable{Table: in.Table}
		default:
			return nil, &openflow.Error{Code: openflow.ErrInstUnsupported, Detail: fmt.Sprintf("instruction %T is not supported by gvs yet", in)}
		}
	}
	if gotoTable != nil {
		out = append(out, *gotoTable)
	}
	return out, nil
}

// actionsToWire converts the model's actions for a reply; goto_table
// comes back separately for OpenFlow 1.3's instruction.
func actionsToWire(acts []flow.Action, v uint8) ([]openflow.Action, *uint8) {
	if v == openflow.Version10 {
		acts = flow.OpenFlow10Actions(acts)
	}
	out := make([]openflow.Action, 0, len(acts))
	var gotoTable *uint8
	for _, a := range acts {
		if g, ok := a.(flow.GotoTable); ok {
			t := g.Table
			gotoTable = &t
			continue
		}
		if wa := actionToWire(a, v); wa != nil {
			out = append(out, wa)
		}
	}
	return out, gotoTable
}

func actionToWire(a flow.Action, v uint8) openflow.Action {
	switch a := a.(type) {
	case flow.Output:
		return &openflow.Output{Port: toWirePort(a.Port)}
	case flow.Controller:
		if a.ID == 0 && (a.Reason == "" || a.Reason == "action") && !a.Pause {
			return &openflow.Output{Port: openflow.PortController, MaxLen: a.MaxLen}
		}
		return &openflow.Controller{MaxLen: a.MaxLen, ControllerID: a.ID, Reason: reasonCode(a.Reason)}
	case flow.SetVLANVID:
		return &openflow.SetVLANVID{VID: a.VID}
	case flow.SetVLANPCP:
		return &openflow.SetVLANPCP{PCP: a.PCP}
	case flow.StripVLAN:
		return &openflow.PopVLAN{}
	case flow.PushVLAN:
		return &openflow.PushVLAN{EthType: a.Ethertype}
	case flow.SetEthAddr:
		return &openflow.SetDlAddr{Dst: a.Dst, Addr: a.Addr}
	case flow.SetIPv4Addr:
		return &openflow.SetNwAddr{Dst: a.Dst, Addr: a.Addr}
	case flow.SetIPTOS:
		return &openflow.SetNwTOS{TOS: a.TOS}
	case flow.SetL4Port:
		return &openflow.SetTpPort{Dst: a.Dst, Port: a.Port}
	case flow.SetIPTTL:
		return &openflow.SetNwTTL{TTL: a.TTL}
	case flow.DecTTL:
		return &openflow.DecNwTTL{}
	case flow.SetField:
		fi := oxmByName[a.Field]
		if fi == nil {
			fi = nxmByName[a.Field]
		}
		if fi == nil {
			return nil
		}
		f := openflow.Field{Class: fi.Class, Field: fi.Field, Experimenter: fi.Experimenter,
			Value: append([]byte(nil), a.Value[16-fi.Len:]...)}
		if m := a.Mask[16-fi.Len:]; !exactMask(a.Field, m) {
			f.Mask = append([]byte(nil), m...)
		}
		return &openflow.SetField{Field: f}
	case flow.Resubmit:
		return &openflow.Resubmit{InPort: toWirePort(a.InPort), Table: a.Table, WithTable: a.Table != flow.TableNone}
	case flow.SetTunnel:
		return &openflow.SetTunnel{ID: a.ID, Is64: a.Wide}
	case flow.Load:
		hdr, ok := nxmHeader(a.Dst)
		if !ok {
			return nil
		}
		var val uint64
		for _, b := range a.Value[8:] {
			val = val<<8 | uint64(b)
		}
		return &openflow.RegLoad{OfsNbits: a.Dst.Start<<6 | (a.Dst.Bits - 1), Dst: hdr, Value: val}
	case flow.Move:
		src, ok1 := nxmHeader(a.Src)
		dst, ok2 := nxmHeader(a.Dst)
		if !ok1 || !ok2 {
			return nil
		}
		return &openflow.RegMove{NBits: a.Src.Bits, SrcOfs: a.Src.Start, DstOfs: a.Dst.Start, Src: src, Dst: dst}
	case flow.Note:
		return &openflow.Note{Data: a.Data}
	case flow.OutputReg:
		hdr, ok := nxmHeader(a.Src)
		if !ok {
			return nil
		}
		return &openflow.OutputReg{OfsNbits: a.Src.Start<<6 | (a.Src.Bits - 1), Src: hdr}
	case flow.Clone:
		inner, _ := actionsToWire(a.Actions, v)
		return &openflow.Clone{Actions: inner}
	case flow.CTClear:
		return &openflow.CTClear{}
	case flow.Group:
		return &openflow.Group{GroupID: a.ID}
	case flow.Learn:
		if la, ok := learnToWire(a); ok {
			return la
		}
		return nil
	case flow.CT:
		return ctToWire(a, v)
	case flow.Conjunction:
		return &openflow.Conjunction{ID: a.ID, Clause: a.Clause - 1, NClauses: a.NClauses}
	}
	return nil
}

func ctToWire(a flow.CT, v uint8) openflow.Action {
	ct := &openflow.CT{RecircTable: a.Table, Zone: a.Zone}
	if a.Commit {
		ct.Flags |= ctCommit
	}
	if a.Force {
		ct.Flags |= ctForce
	}
	if a.ZoneSrc.Field != "" {
		if hdr, ok := nxmHeader(a.ZoneSrc); ok {
			ct.ZoneSrc, ct.Zone = hdr, a.ZoneSrc.Start<<6|(a.ZoneSrc.Bits-1)
		}
	}
	switch a.Alg {
	case "ftp":
		ct.Alg = 21
	case "tftp":
		ct.Alg = 69
	}
	if a.NAT != nil {
		ct.Actions = append(ct.Actions, natToWire(a.NAT))
	}
	inner, _ := actionsToWire(a.Exec, v)
	ct.Actions = append(ct.Actions, inner...)
	return ct
}

func natToWire(n *flow.NAT) openflow.Action {
	out := &openflow.NAT{ProtoMin: n.PortMin, ProtoMax: n.PortMax}
	switch n.Kind {
	case "src":
		out.Flags |= natSrc
	case "dst":
		out.Flags |= natDst
	}
	if n.Persistent {
		out.Flags |= natPersistent
	}
	if n.Hash {
		out.Flags |= natHash
	}
	if n.Random {
		out.Flags |= natRandom
	}
	if n.AddrMin.Is4() {
		out.IPv4Min, out.RangePresent = n.AddrMin.As4(), out.RangePresent|openflow.NATRangeIPv4Min
	} else if n.AddrMin.Is6() {
		out.IPv6Min, out.RangePresent = n.AddrMin.As16(), out.RangePresent|openflow.NATRangeIPv6Min
	}
	if n.AddrMax.Is4() {
		out.IPv4Max, out.RangePresent = n.AddrMax.As4(), out.RangePresent|openflow.NATRangeIPv4Max
	} else if n.AddrMax.Is6() {
		out.IPv6Max, out.RangePresent = n.AddrMax.As16(), out.RangePresent|openflow.NATRangeIPv6Max
	}
	if n.PortMin != 0 {
		out.RangePresent |= openflow.NATRangeProtoMin
	}
	if n.PortMax != 0 {
		out.RangePresent |= openflow.NATRangeProtoMax
	}
	return out
}
