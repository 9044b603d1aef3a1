package flow

import (
	"fmt"
	"strings"

	"gvs/internal/packet"
)

// matchView answers the questions prerequisites ask about a match being
// built: is eth_type exactly this, is nw_proto exactly that.
type matchView struct {
	value, mask *packet.Key
}

func (v matchView) exact(s slot) (uint64, bool) {
	if !isOnes(v.mask, s) {
		return 0, false
	}
	return getUint(v.value, s), true
}

func (v matchView) dlTypeIs(types ...uint64) bool {
	t, ok := v.exact(sDlType)
	if !ok {
		return false
	}
	for _, want := range types {
		if t == want {
			return true
		}
	}
	return false
}

func (v matchView) isIPv4() bool { return v.dlTypeIs(ethIPv4) }
func (v matchView) isIPv6() bool { return v.dlTypeIs(ethIPv6) }
func (v matchView) isIP() bool   { return v.dlTypeIs(ethIPv4, ethIPv6) }
func (v matchView) isARP() bool  { return v.dlTypeIs(ethARP, ethRARP) }

func (v matchView) protoIs(proto uint64) bool {
	p, ok := v.exact(sNwProto)
	return ok && p == proto && v.isIP()
}

// hasPorts: TCP, UDP and SCTP ports, and ICMP type and code, share the
// key's TpSrc/TpDst, so any of them allows any of those names, as in
// OVS, which keys them by the flow's protocol rather than by name.
func (v matchView) hasPorts() bool {
	return v.protoIs(protoTCP) || v.protoIs(protoUDP) || v.protoIs(protoSCTP) ||
		(v.isIPv4() && v.protoIs(protoICMP)) || (v.isIPv6() && v.protoIs(protoICMPv6))
}

// ndType returns the neighbor discovery message type (135 solicitation,
// 136 advertisement) the match is limited to, or 0.
func (v matchView) ndType() uint64 {
	if !v.isIPv6() || !v.protoIs(protoICMPv6) {
		return 0
	}
	typ, ok := v.exact(sTpSrc)
	// A code other than 0 is no ND message; a wildcarded one is fine.
	if !ok || getUint(v.value, sTpDst) != 0 {
		return 0
	}
	if typ == uint64(packet.ICMPv6NeighborSolicit) || typ == uint64(packet.ICMPv6NeighborAdvert) {
		return typ
	}
	return 0
}

// ctValid: the conntrack original-direction fields exist only for a
// tracked, valid connection, which the match must require: one of
// +new, +est, +rel, +rpl, +snat, +dnat, or +trk together with -inv.
func (v matchView) ctValid() bool {
	st, m := getUint(v.value, sCtState), getUint(v.mask, sCtState)
	if st&(csNew|csEst|csRel|csRpl|csSNAT|csDNAT) != 0 {
		return true
	}
	return st&csTrk != 0 && m&csInv != 0 && st&csInv == 0
}

// prereq is what a slot needs, and how to say so.
type prereq struct {
	ok   func(matchView) bool
	need string // completes "<field> applies only to ..."
	eg   string // a shorthand to suggest
}

var prereqs = map[slot]prereq{
	sNwSrc:     {matchView.ipOrARP, "IPv4 and ARP packets", "ip"},
	sNwDst:     {matchView.ipOrARP, "IPv4 and ARP packets", "ip"},
	sNwProto:   {func(v matchView) bool { return v.isIP() || v.isARP() }, "IP and ARP packets", "ip"},
	sIPv6Src:   {matchView.isIPv6, "IPv6 packets", "ipv6"},
	sIPv6Dst:   {matchView.isIPv6, "IPv6 packets", "ipv6"},
	sIPv6Label: {matchView.isIPv6, "IPv6 packets", "ipv6"},
	sNwTOS:     {matchView.isIP, "IP packets", "ip"},
	sNwTTL:     {matchView.isIP, "IP packets", "ip"},
	sNwFrag:    {matchView.isIP, "IP packets", "ip"},
	sTpSrc:     {matchView.hasPorts, "tcp, udp, sctp, icmp and icmp6 packets", "tcp"},
	sTpDst:     {matchView.hasPorts, "tcp, udp, sctp, icmp and icmp6 packets", "tcp"},
	sTCPFlags:  {func(v matchView) bool { return v.protoIs(protoTCP) }, "TCP packets", "tcp"},
	sArpSha: {func(v matchView) bool { return v.isARP() || v.ndType() == uint64(packet.ICMPv6NeighborSolicit) },
		"ARP packets (arp_sha) and ND neighbor solicitations (nd_sll)", "arp"},
	sArpTha: {func(v matchView) bool { return v.isARP() || v.ndType() == uint64(packet.ICMPv6NeighborAdvert) },
		"ARP packets (arp_tha) and ND neighbor advertisements (nd_tll)", "arp"},
	sNdTarget: {func(v matchView) bool { return v.ndType() != 0 },
		"ND messages (icmp6 with icmp_type=135 or 136, icmp_code 0)", "icmp6,icmp_type=135"},
	sMPLS:      {func(v matchView) bool { return v.dlTypeIs(ethMPLS, ethMPLSM) }, "MPLS packets", "mpls"},
	sCtNwSrc:   {func(v matchView) bool { return v.ctValid() && v.isIPv4() }, ctNeed + " of IPv4 packets", ctEg + ",ip"},
	sCtNwDst:   {func(v matchView) bool { return v.ctValid() && v.isIPv4() }, ctNeed + " of IPv4 packets", ctEg + ",ip"},
	sCtIPv6Src: {func(v matchView) bool { return v.ctValid() && v.isIPv6() }, ctNeed + " of IPv6 packets", ctEg + ",ipv6"},
	sCtIPv6Dst: {func(v matchView) bool { return v.ctValid() && v.isIPv6() }, ctNeed + " of IPv6 packets", ctEg + ",ipv6"},
	sCtNwProto: {matchView.ctValid, ctNeed, ctEg},
	sCtTpSrc:   {matchView.ctTransport, ctNeed + " with ct_nw_proto given", ctEg + ",ct_nw_proto=6"},
	sCtTpDst:   {matchView.ctTransport, ctNeed + " with ct_nw_proto given", ctEg + ",ct_nw_proto=6"},
}

const (
	ctNeed = "tracked, valid connections (ct_state with +trk-inv, +new, +est, +rel, +rpl, +snat or +dnat)"
	ctEg   = "ct_state=+trk-inv"
)

func (v matchView) ipOrARP() bool { return v.isIPv4() || v.isARP() }

func (v matchView) ctTransport() bool {
	_, ok := v.exact(sCtNwProto)
	return v.ctValid() && ok
}

// checkPrereqs checks every slot the text mentioned, even with "*", since
// ovs-fields(7) asks prerequisites of a wildcarded field too.
func (p *parser) checkPrereqs() error {
	v := matchView{&p.value, &p.mask}
	for s := range numSlots {
		m := p.mentioned[s]
		pr, has := prereqs[s]
		if m == nil || !has || pr.ok(v) {
			continue
		}
		example := pr.eg + "," + m.field
		if m.value != "" {
			example += "=" + m.value
		}
		return &Error{Field: m.field, Value: m.value, Msg: fmt.Sprintf(
			"prerequisites not met: %s applies only to %s; say which in the match (e.g. %s)",
			m.field, pr.need, example)}
	}
	return nil
}

// finish checks prerequisites and moves the fields that share a slot in
// OpenFlow 1.0 terms into the key members the packet parser fills.
func (p *parser) finish() error {
	if err := p.checkPrereqs(); err != nil {
		return err
	}
	if err := p.checkICMP(); err != nil {
		return err
	}
	v := matchView{&p.value, &p.mask}
	if v.isARP() {
		moveSlot(&p.value, &p.mask, sNwSrc, sArpSpa)
		moveSlot(&p.value, &p.mask, sNwDst, sArpTpa)
		moveSlot(&p.value, &p.mask, sNwProto, sArpOp)
		if getUint(&p.mask, sArpOp) != 0 {
			// The key's ArpOp is 16 bits but never above 255.
			setUint(&p.mask, sArpOp, 0xffff)
		}
	}
	switch v.ndType() {
	case uint64(packet.ICMPv6NeighborSolicit):
		moveSlot(&p.value, &p.mask, sArpSha, sNdSll)
	case uint64(packet.ICMPv6NeighborAdvert):
		moveSlot(&p.value, &p.mask, sArpTha, sNdTll)
	}
	return nil
}

// checkICMP: in an ICMP match the port fields hold the 8-bit type and
// code, which OpenFlow cannot mask (ovs-ofctl would quietly turn
// icmp,tp_dst=0x100/0xff00 into icmp_code=0).
func (p *parser) checkICMP() error {
	v := matchView{&p.value, &p.mask}
	if !(v.isIPv4() && v.protoIs(protoICMP)) && !(v.isIPv6() && v.protoIs(protoICMPv6)) {
		return nil
	}
	for _, s := range []slot{sTpSrc, sTpDst} {
		m, val := getUint(&p.mask, s), getUint(&p.value, s)
		men := p.mentioned[s]
		if men == nil {
			men = &mention{field: "tp_src"}
		}
		switch {
		case m != 0 && m != 0xffff:
			return &Error{Field: men.field, Value: men.value, Msg: "ICMP type and code cannot be masked"}
		case val > 0xff:
			return &Error{Field: men.field, Value: men.value, Msg: "value too large: ICMP type and code are 8 bits (at most 255)"}
		}
	}
	return nil
}

// checkActionPrereqs refuses actions that read or write a field the match
// does not guarantee the packet has (set_field:80->tcp_dst in a flow that
// does not say tcp), as OVS does with OFPBAC_MATCH_INCONSISTENT. The
// OpenFlow 1.0 style mod_* actions are not checked, as in OVS: they do
// nothing to a packet without the field. ct needs an IP match.
func checkActionPrereqs(m *Match, acts []Action) error {
	v := matchView{&m.value, &m.mask}
	for _, a := range acts {
		var read, written []string
		switch a := a.(type) {
		case SetField:
			written = []string{a.Field}
		case Load:
			written = []string{a.Dst.Field}
		case Move:
			read, written = []string{a.Src.Field}, []string{a.Dst.Field}
		case OutputReg:
			read = []string{a.Src.Field}
		case Learn:
			for _, s := range a.Specs {
				if s.Src.Field != "" {
					read = append(read, s.Src.Field)
				}
			}
		case Clone:
			if err := checkActionPrereqs(m, a.Actions); err != nil {
				return err
			}
		case CT:
			if !v.isIP() {
				return actionPrereqError(a, "ct", "IP packets", "ip")
			}
			if a.ZoneSrc.Field != "" {
				read = []string{a.ZoneSrc.Field}
			}
		}
		for _, name := range append(read, written...) {
			f := fields[name]
			if f == nil {
				continue
			}
			if pr, ok := prereqs[f.slot]; ok && !pr.ok(v) {
				return actionPrereqError(a, name, pr.need, pr.eg)
			}
		}
	}
	return nil
}

func actionPrereqError(a Action, field, need, eg string) error {
	var b strings.Builder
	a.format(&b, FormatOptions{})
	key, val, _ := cutAction(b.String())
	return &Error{Field: key, Value: val, Msg: fmt.Sprintf(
		"prerequisites not met: %s applies only to %s; say which in the match (e.g. %s)", field, need, eg)}
}
