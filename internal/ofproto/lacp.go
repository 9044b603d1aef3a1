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
//
// The bond also answers 802.3ad Marker Protocol requests (slow protocols
// subtype 2): a member that receives a marker request sends the marker
// response back out of itself at the bond's next run (bondMonitorInterval
// in vswitchd), as 802.3ad's Marker Responder. OVS 3.1 only counts
// marker PDUs.

var (
	lacpRxPDUs = coverage.New("lacp_rx_pdu")
	lacpRxBad  = coverage.New("lacp_rx_bad_pdu")
	// lacpRxMarkers counts the marker requests answered.
	lacpRxMarkers = coverage.New("lacp_rx_marker_request")
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

	lacpSysPriority  = 65534 // OVS's default lacp-system-priority for a bond
	lacpPortPriority = 65535 // OVS's default lacp-port-priority

	slowLACP   = 1 // slow protocols subtypes
	slowMarker = 2

	markerRequest  = 1 // Marker Protocol TLV types
	markerResponse = 2
	markerInfoLen  = 16
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
	// marker is the marker response to send at the next lacpTx, when
	// markerDue: one per member, built without allocating by the
	// upcall.
	marker    [14 + lacpPDULen]byte
	markerDue bool
	// statistics for lacp/show-stats; rxPDUs counts every slow
	// protocols frame received, as OVS's.
	txPDUs, rxPDUs, rxBad, rxMarker, expired, defaulted, carrierChanged uint64
	wasCurrent                                                          bool
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
	a := lacpInfo{sysPriority: b.sysPriority(), sysID: b.sysID(), key: b.lacpKey(), portPriority: b.portPriority(m),
		portID: b.portID(m), state: lacpAggregate}
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

// sysID is the bond's LACP system id: other_config:lacp-system-id, else
// the bridge's address, as in OVS; before gvsd knows the bridge's
// address, its first member's. Under b.mu.
func (b *Bond) sysID() [6]byte {
	switch {
	case b.cfg.LACPSystemID != [6]byte{}:
		return b.cfg.LACPSystemID
	case b.bridgeMAC != [6]byte{}, len(b.members) == 0:
		return b.bridgeMAC
	}
	return b.members[0].mac
}

// sysPriority is the bond's LACP system priority. Under b.mu.
func (b *Bond) sysPriority() uint16 {
	if p := b.cfg.LACPSystemPriority; p != 0 {
		return p
	}
	return lacpSysPriority
}

// portID is m's LACP port id: its lacp-port-id, else its OpenFlow port
// number. Under b.mu.
func (b *Bond) portID(m *bondMember) uint16 {
	if id := b.cfg.LACPMembers[m.port.Name].PortID; id != 0 {
		return id
	}
	return uint16(m.port.OFPort)
}

// portPriority is m's LACP port priority. Under b.mu.
func (b *Bond) portPriority(m *bondMember) uint16 {
	if p := b.cfg.LACPMembers[m.port.Name].PortPriority; p != 0 {
		return p
	}
	return lacpPortPriority
}

// lacpKey is the bond's aggregation key, the same on every member, as in
// OVS: the lacp-aggregation-key of its key member (the one with the
// lowest OpenFlow port number; OVS's is the first it added), else that
// member's port id. Under b.mu.
func (b *Bond) lacpKey() uint16 {
	if len(b.members) == 0 {
		return 0
	}
	m := b.members[0]
	if k := b.cfg.LACPMembers[m.port.Name].Key; k != 0 {
		return k
	}
	return b.portID(m)
}

// SetBridgeMAC tells the bond its bridge's address, the default LACP
// system id.
func (b *Bond) SetBridgeMAC(mac [6]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bridgeMAC = mac
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
		if m.lacp.markerDue {
			m.lacp.markerDue = false
			if m.carrier {
				out = append(out, BondFrame{DPPort: m.port.DPPort, Frame: append([]byte(nil), m.lacp.marker[:]...)})
			}
		}
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
	if len(f) < 14+62 || binary.BigEndian.Uint16(f[12:]) != etherTypeSlow {
		return actor, partner, false
	}
	p := f[14:]
	if p[0] != slowLACP || p[2] != 1 || p[3] != 20 || p[22] != 2 || p[23] != 20 {
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

// slowSubtype returns the slow protocols subtype of an untagged frame,
// 0 when it is too short or of another Ethernet type.
func slowSubtype(f []byte) byte {
	if len(f) < 15 || binary.BigEndian.Uint16(f[12:]) != etherTypeSlow {
		return 0
	}
	return f[14]
}

// markerReply, for a Marker Protocol frame f (Ethernet header included,
// untagged), reports whether it is well formed and whether it is a
// request; for a request it writes into resp the response member src
// sends: the requester's port, system and transaction id echoed in a
// Marker Response Information TLV, everything reserved zero.
func markerReply(f []byte, src [6]byte, resp *[14 + lacpPDULen]byte) (ok, request bool) {
	// subtype, version, TLV type and length, 14 bytes of information,
	// the terminator TLV.
	if len(f) < 14+20 || slowSubtype(f) != slowMarker {
		return false, false
	}
	p := f[14:]
	if p[3] != markerInfoLen || p[2] != markerRequest && p[2] != markerResponse {
		return false, false
	}
	if p[2] != markerRequest {
		return true, false
	}
	*resp = [14 + lacpPDULen]byte{}
	copy(resp[:], lacpDst[:])
	copy(resp[6:], src[:])
	binary.BigEndian.PutUint16(resp[12:], etherTypeSlow)
	r := resp[14:]
	r[0], r[1], r[2], r[3] = slowMarker, 1, markerResponse, markerInfoLen
	copy(r[4:16], p[4:16]) // requester port, system, transaction id
	return true, true
}

// lacpUpcall takes a member's received LACPDUs off the packet path.
type lacpUpcall struct {
	b *Bond
	m *bondMember
}

// Upcall records the partner a LACPDU describes, or prepares the answer
// to a marker request. It runs on the port thread, for slow protocols
// frames only, and allocates nothing. Every frame counts in RX PDUs, a
// marker PDU of full length (110 bytes) also in RX Marker Request PDUs,
// and anything else that is not a LACPDU in RX Bad PDUs, as OVS counts
// them.
func (u lacpUpcall) Upcall(frame []byte) {
	u.b.mu.Lock()
	defer u.b.mu.Unlock()
	l := &u.m.lacp
	l.rxPDUs++
	if slowSubtype(frame) == slowMarker && len(frame) >= 14+lacpPDULen {
		// A PDU of full length counts as a marker, well formed or not,
		// and only well-formed requests are answered; a shorter one is
		// bad (below), as OVS counts them.
		l.rxMarker++
		if ok, request := markerReply(frame, u.m.mac, &l.marker); ok && request {
			lacpRxMarkers.Inc()
			l.markerDue = true
		}
		return
	}
	actor, _, ok := parseLACPDU(frame)
	if !ok {
		l.rxBad++
		lacpRxBad.Inc()
		return
	}
	lacpRxPDUs.Inc()
	l.partner = actor
	l.rxAt = u.b.clock()
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
	fmt.Fprintf(&s, "  sys_priority: %d\n", b.sysPriority())
	fmt.Fprintf(&s, "  aggregation key: %d\n", b.lacpKey())
	fmt.Fprintf(&s, "  lacp_time: %s\n", map[bool]string{true: "fast", false: "slow"}[b.cfg.LACPFast])
	for _, m := range b.sortedMembers() {
		fmt.Fprintf(&s, "\nmember: %s: %s %s\n", m.port.Name, b.lacpStatusText(m, now), map[bool]string{true: "attached", false: "detached"}[m.lacp.attached])
		fmt.Fprintf(&s, "  port_id: %d\n", b.portID(m))
		fmt.Fprintf(&s, "  port_priority: %d\n", b.portPriority(m))
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
		fmt.Fprintf(&s, "  TX PDUs: %d\n  RX PDUs: %d\n  RX Bad PDUs: %d\n  RX Marker Request PDUs: %d\n", l.txPDUs, l.rxPDUs, l.rxBad, l.rxMarker)
		fmt.Fprintf(&s, "  Link Expired: %d\n  Link Defaulted: %d\n  Carrier Status Changed: %d\n", l.expired, l.defaulted, l.carrierChanged)
	}
	return s.String()
}
