package ofproto

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
)

// LACP (IEEE 802.3ad, as OVS speaks it): each member of a bond with
// lacp=active sends a LACPDU every second (fast, when the partner asks
// for it) or 30 s; LACPDUs received on a member are taken off the packet
// path (a userspace action, before any OpenFlow table, as in OVS) and
// record the partner. A member is current while the partner's LACPDUs
// keep coming (3 or 90 s), attached when its partner is the bond's
// partner, and usable once the partner says it is in sync. The bond is
// negotiated when a member is current.

var (
	lacpRxPDUs = coverage.New("lacp_rx_pdu")
	lacpRxBad  = coverage.New("lacp_rx_bad_pdu")
)

// lacpDst is the Slow Protocols multicast address LACPDUs go to.
var lacpDst = [6]byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02}

const (
	etherTypeSlow = 0x8809
	lacpPDULen    = 110 // the LACPDU after the Ethernet header

	// Actor and partner state bits.
	lacpActivity   = 0x01
	lacpTimeout    = 0x02
	lacpAggregate  = 0x04
	lacpSync       = 0x08
	lacpCollecting = 0x10
	lacpDistrib    = 0x20
	lacpDefaulted  = 0x40
	lacpExpired    = 0x80

	lacpFastTx = time.Second
	lacpSlowTx = 30 * time.Second
	lacpFastRx = 3 * time.Second
	lacpSlowRx = 90 * time.Second

	lacpSysPriority  = 65534 // OVS's default lacp-system-priority
	lacpPortPriority = 65535 // OVS's default lacp-port-priority
)

// lacpInfo is one side's information in a LACPDU.
type lacpInfo struct {
	sysPriority  uint16
	sysID        [6]byte
	key          uint16
	portPriority uint16
	portID       uint16
	state        uint8
}

// lacpMember is a member's LACP state, under Bond.mu (Upcall takes it).
type lacpMember struct {
	partner  lacpInfo
	rxAt     time.Time // when the last LACPDU came; zero: never
	txAt     time.Time // when the last one went
	attached bool
	sentInfo lacpInfo // the actor information last sent
	// statistics for lacp/show-stats
	txPDUs, rxPDUs, rxBad, expired, defaulted, carrierChanged uint64
	wasCurrent                                                bool
}

// lacpOn reports whether the bond runs LACP. Under b.mu.
func (b *Bond) lacpOn() bool { return b.cfg.LACP == "active" || b.cfg.LACP == "passive" }

// lacpRxTimeout is how long a member stays current without a LACPDU.
func (b *Bond) lacpRxTimeout() time.Duration {
	if b.cfg.LACPFast {
		return lacpFastRx
	}
	return lacpSlowRx
}

// current reports whether m's partner spoke recently enough. Under b.mu.
func (b *Bond) current(m *bondMember, now time.Time) bool {
	return !m.lacp.rxAt.IsZero() && now.Sub(m.lacp.rxAt) < b.lacpRxTimeout() && m.carrier
}

// lacpStatusText is m's status word in lacp/show. Under b.mu.
func (b *Bond) lacpStatusText(m *bondMember, now time.Time) string {
	switch {
	case b.current(m, now):
		return "current"
	case m.lacp.rxAt.IsZero():
		return "defaulted"
	}
	return "expired"
}

// lacpUpdate works out which members are attached and whether the bond
// is negotiated, at now. Under b.mu.
func (b *Bond) lacpUpdate(now time.Time) {
	var lead *bondMember
	for _, m := range b.members {
		cur := b.current(m, now)
		if m.lacp.wasCurrent && !cur {
			m.lacp.expired++
		}
		m.lacp.wasCurrent = cur
		if cur && lead == nil {
			lead = m
		}
	}
	b.negotiated = lead != nil
	for _, m := range b.members {
		m.lacp.attached = lead != nil && b.current(m, now) &&
			m.lacp.partner.sysID == lead.lacp.partner.sysID && m.lacp.partner.key == lead.lacp.partner.key &&
			(m == lead || m.lacp.partner.state&lacpAggregate != 0)
	}
}

// lacpMayEnable reports whether LACP lets m carry traffic. Under b.mu.
func (b *Bond) lacpMayEnable(m *bondMember) bool {
	if !b.lacpOn() {
		return true
	}
	if !b.negotiated {
		return b.cfg.LACPFallbackAB
	}
	return m.lacp.attached && m.lacp.partner.state&lacpSync != 0
}

// actor is what m says of itself. Under b.mu.
func (b *Bond) actor(m *bondMember, now time.Time) lacpInfo {
	a := lacpInfo{sysPriority: lacpSysPriority, sysID: b.sysID(), key: b.lacpKey(), portPriority: lacpPortPriority,
		portID: uint16(m.port.OFPort), state: lacpAggregate}
	if b.cfg.LACP == "active" {
		a.state |= lacpActivity
	}
	if b.cfg.LACPFast {
		a.state |= lacpTimeout
	}
	if m.lacp.attached {
		a.state |= lacpSync | lacpCollecting | lacpDistrib
	}
	switch b.lacpStatusText(m, now) {
	case "defaulted":
		a.state |= lacpDefaulted
	case "expired":
		a.state |= lacpExpired
	}
	return a
}

// sysID is the bond's LACP system id: its lead member's address.
func (b *Bond) sysID() [6]byte {
	if len(b.members) == 0 {
		return [6]byte{}
	}
	return b.members[0].mac
}

// lacpKey is the bond's aggregation key: its lowest member port number.
func (b *Bond) lacpKey() uint16 {
	if len(b.members) == 0 {
		return 0
	}
	return uint16(b.members[0].port.OFPort)
}

// BondFrame is a frame a bond sends out of one member (a LACPDU).
type BondFrame struct {
	DPPort uint32
	Frame  []byte
}

// lacpTx returns the LACPDUs due at now. Under b.mu.
func (b *Bond) lacpTx(now time.Time) []BondFrame {
	if !b.lacpOn() {
		return nil
	}
	var out []BondFrame
	for _, m := range b.members {
		if !m.carrier {
			continue
		}
		if b.cfg.LACP == "passive" && m.lacp.partner.state&lacpActivity == 0 {
			continue // passive: speak only to an active partner
		}
		a := b.actor(m, now)
		every := lacpSlowTx
		if m.lacp.partner.state&lacpTimeout != 0 {
			every = lacpFastTx
		}
		if a == m.lacp.sentInfo && now.Sub(m.lacp.txAt) < every {
			continue
		}
		m.lacp.txAt, m.lacp.sentInfo = now, a
		m.lacp.txPDUs++
		out = append(out, BondFrame{DPPort: m.port.DPPort, Frame: lacpPDU(m.mac, a, m.lacp.partner)})
	}
	return out
}

// lacpPDU builds a LACPDU from src with actor and partner information.
func lacpPDU(src [6]byte, actor, partner lacpInfo) []byte {
	f := make([]byte, 14+lacpPDULen)
	copy(f, lacpDst[:])
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], etherTypeSlow)
	p := f[14:]
	p[0], p[1] = 1, 1 // subtype LACP, version 1
	putInfo := func(b []byte, typ byte, i lacpInfo) {
		b[0], b[1] = typ, 20
		binary.BigEndian.PutUint16(b[2:], i.sysPriority)
		copy(b[4:], i.sysID[:])
		binary.BigEndian.PutUint16(b[10:], i.key)
		binary.BigEndian.PutUint16(b[12:], i.portPriority)
		binary.BigEndian.PutUint16(b[14:], i.portID)
		b[16] = i.state
	}
	putInfo(p[2:], 1, actor)
	putInfo(p[22:], 2, partner)
	p[42], p[43] = 3, 16 // collector information
	// p[58], p[59]: the terminator, type 0 length 0, and zero padding.
	return f
}

// parseLACPDU reads the actor and partner of a LACPDU frame (Ethernet
// header included, untagged).
func parseLACPDU(f []byte) (actor, partner lacpInfo, ok bool) {
	if len(f) < 14+62 {
		return actor, partner, false
	}
	p := f[14:]
	if p[0] != 1 || p[2] != 1 || p[3] != 20 || p[22] != 2 || p[23] != 20 {
		return actor, partner, false
	}
	get := func(b []byte) lacpInfo {
		var i lacpInfo
		i.sysPriority = binary.BigEndian.Uint16(b[2:])
		copy(i.sysID[:], b[4:10])
		i.key = binary.BigEndian.Uint16(b[10:])
		i.portPriority = binary.BigEndian.Uint16(b[12:])
		i.portID = binary.BigEndian.Uint16(b[14:])
		i.state = b[16]
		return i
	}
	return get(p[2:]), get(p[22:]), true
}

// lacpUpcall takes a member's received LACPDUs off the packet path.
type lacpUpcall struct {
	b *Bond
	m *bondMember
}

// Upcall records the partner a LACPDU describes. It runs on the port
// thread, for LACPDUs only, and allocates nothing.
func (u lacpUpcall) Upcall(frame []byte) {
	actor, _, ok := parseLACPDU(frame)
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	if !ok {
		u.m.lacp.rxBad++
		lacpRxBad.Inc()
		return
	}
	lacpRxPDUs.Inc()
	u.m.lacp.rxPDUs++
	u.m.lacp.partner = actor
	u.m.lacp.rxAt = u.b.clock()
}

// lacpRx, for a frame received on bond member in, hands a LACPDU to the
// member's LACP when the bond runs it and reports whether it did: the
// frame goes no further, as in OVS. It reads the destination address and
// Ethernet type into the mask.
func lacpRx(in *Port, pkt *datapath.Packet, out *datapath.Xlate) bool {
	s := in.Bond.st.Load()
	if s.lacp == nil {
		return false
	}
	out.Mask.DlDst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	out.Mask.DlType = 0xffff
	u, ok := s.lacp[in.DPPort]
	if !ok || pkt.Key.DlDst != lacpDst || pkt.Key.DlType != etherTypeSlow {
		return false
	}
	out.Actions = append(out.Actions, datapath.Userspace(u))
	return true
}

// stateText names LACP state bits as lacp/show does.
func stateText(s uint8) string {
	var w []string
	for _, b := range []struct {
		bit  uint8
		name string
	}{{lacpActivity, "activity"}, {lacpTimeout, "timeout"}, {lacpAggregate, "aggregation"}, {lacpSync, "synchronized"},
		{lacpCollecting, "collecting"}, {lacpDistrib, "distributing"}, {lacpDefaulted, "defaulted"}, {lacpExpired, "expired"}} {
		if s&b.bit != 0 {
			w = append(w, b.name)
		}
	}
	return strings.Join(w, " ")
}

// LACPOn reports whether the bond runs LACP (lacp/show lists it).
func (b *Bond) LACPOn() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lacpOn()
}

// ShowLACP describes the bond's LACP as OVS's lacp/show does.
func (b *Bond) ShowLACP() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock()
	var s strings.Builder
	fmt.Fprintf(&s, "---- %s ----\n", b.Name)
	status := b.cfg.LACP
	if b.negotiated {
		status += " negotiated"
	}
	fmt.Fprintf(&s, "  status: %s\n", status)
	sys := b.sysID()
	fmt.Fprintf(&s, "  sys_id: %s\n", net.HardwareAddr(sys[:]))
	fmt.Fprintf(&s, "  sys_priority: %d\n", lacpSysPriority)
	fmt.Fprintf(&s, "  aggregation key: %d\n", b.lacpKey())
	fmt.Fprintf(&s, "  lacp_time: %s\n", map[bool]string{true: "fast", false: "slow"}[b.cfg.LACPFast])
	for _, m := range b.sortedMembers() {
		fmt.Fprintf(&s, "\nmember: %s: %s %s\n", m.port.Name, b.lacpStatusText(m, now), map[bool]string{true: "attached", false: "detached"}[m.lacp.attached])
		fmt.Fprintf(&s, "  port_id: %d\n", m.port.OFPort)
		fmt.Fprintf(&s, "  port_priority: %d\n", lacpPortPriority)
		fmt.Fprintf(&s, "  may_enable: %t\n", m.carrier && b.lacpMayEnable(m))
		a := b.actor(m, now)
		for _, side := range []struct {
			name string
			i    lacpInfo
		}{{"actor", a}, {"partner", m.lacp.partner}} {
			fmt.Fprintf(&s, "\n  %s sys_id: %s\n", side.name, net.HardwareAddr(side.i.sysID[:]))
			fmt.Fprintf(&s, "  %s sys_priority: %d\n", side.name, side.i.sysPriority)
			fmt.Fprintf(&s, "  %s port_id: %d\n", side.name, side.i.portID)
			fmt.Fprintf(&s, "  %s port_priority: %d\n", side.name, side.i.portPriority)
			fmt.Fprintf(&s, "  %s key: %d\n", side.name, side.i.key)
			fmt.Fprintf(&s, "  %s state: %s\n", side.name, stateText(side.i.state))
		}
	}
	return s.String()
}

// ShowLACPStats gives the bond's LACP counters as OVS's
// lacp/show-stats does.
func (b *Bond) ShowLACPStats() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	fmt.Fprintf(&s, "---- %s statistics ----\n", b.Name)
	for _, m := range b.sortedMembers() {
		l := &m.lacp
		fmt.Fprintf(&s, "\nmember: %s:\n", m.port.Name)
		fmt.Fprintf(&s, "  TX PDUs: %d\n  RX PDUs: %d\n  RX Bad PDUs: %d\n  RX Marker Request PDUs: 0\n", l.txPDUs, l.rxPDUs, l.rxBad)
		fmt.Fprintf(&s, "  Link Expired: %d\n  Link Defaulted: %d\n  Carrier Status Changed: %d\n", l.expired, l.defaulted, l.carrierChanged)
	}
	return s.String()
}
