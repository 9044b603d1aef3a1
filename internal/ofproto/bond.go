package ofproto

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/vlog"
)

// A bond is a bridge port of several interfaces (members). Each member
// stays an OpenFlow port of its own, with its own number, as in OVS; NORMAL
// switching sees the bond as one port: it learns addresses on the bond,
// floods once through it, sends through one member chosen by the bond's
// mode, and takes frames in only where the mode allows (bondAdmits).

var bondLog = vlog.New("bond")

// bondRxDrops counts frames NORMAL dropped because they came in on a
// member that may not receive them (a backup member, a disabled one, a
// reflected broadcast); each bond also counts its own (Bond.RxDrops).
var bondRxDrops = coverage.New("bond_rx_drop")

// MaxBondMembers bounds the interfaces of one bond: OVS has no limit of
// its own, but a bond is a few uplinks, and the hash buckets of the
// balancing modes are spread over at most this many.
const MaxBondMembers = 32

// bondBuckets is how many hash buckets a balancing bond spreads its
// flows over, as OVS's 256.
const bondBuckets = 256

// BondMode is a Port's bond_mode.
type BondMode uint8

// The bond modes of ovs-vswitchd.conf.db(5).
const (
	BondActiveBackup BondMode = iota
	BondBalanceSLB
	BondBalanceTCP
)

// ParseBondMode reads a bond_mode; empty is OVS's default, active-backup.
func ParseBondMode(s string) (BondMode, bool) {
	switch s {
	case "", "active-backup":
		return BondActiveBackup, true
	case "balance-slb":
		return BondBalanceSLB, true
	case "balance-tcp":
		return BondBalanceTCP, true
	}
	return 0, false
}

func (m BondMode) String() string {
	switch m {
	case BondBalanceSLB:
		return "balance-slb"
	case BondBalanceTCP:
		return "balance-tcp"
	}
	return "active-backup"
}

// BondConfig is a bond's configuration from its Port row.
type BondConfig struct {
	Mode      BondMode
	UpDelay   time.Duration // bond_updelay
	DownDelay time.Duration // bond_downdelay
	Primary   string        // other_config:bond-primary, a member's name
	// RebalanceInterval is other_config:bond-rebalance-interval: how
	// often balance-slb and balance-tcp move hash buckets from the
	// busiest member to the idlest; 0 never.
	RebalanceInterval time.Duration
	// LACP is the Port's lacp column: "active", "passive", or off
	// (""). Until LACP is negotiated (see lacp.go) a bond with LACP
	// configured sends and takes nothing, as OVS's, unless
	// LACPFallbackAB (other_config:lacp-fallback-ab) makes it
	// active-backup.
	LACP           string
	LACPFallbackAB bool
	LACPFast       bool // other_config:lacp-time=fast
	// LACPSystemID is other_config:lacp-system-id; zero: the bridge's
	// address (see SetBridgeMAC), as in OVS.
	LACPSystemID [6]byte
	// LACPSystemPriority is other_config:lacp-system-priority; 0:
	// OVS's default for a bond, 65534.
	LACPSystemPriority uint16
	// LACPMembers holds each member's Interface other_config
	// lacp-port-id, lacp-port-priority and lacp-aggregation-key, by
	// interface name; a member not there, or a zero field, takes OVS's
	// default.
	LACPMembers map[string]LACPMemberConfig
	// HashBasis is other_config:bond-hash-basis, hashed with every
	// flow by balance-slb and balance-tcp.
	HashBasis uint32
}

// LACPMemberConfig is a bond member's LACP settings; 0 is the default
// (the member's OpenFlow port number as port id, priority 65535, the
// port id as aggregation key).
type LACPMemberConfig struct {
	PortID, PortPriority, Key uint16
}

// lacpStatus is bond/show's lacp_status, before negotiation.
func (c *BondConfig) lacpStatus() string {
	if c.LACP == "" || c.LACP == "off" {
		return "off"
	}
	return "configured"
}

// effective returns the mode the bond runs in and whether it may carry
// traffic at all: balance-tcp needs negotiated LACP, and so does any
// bond with LACP configured, unless it falls back to active-backup.
// Under b.mu.
func (b *Bond) effective() (BondMode, bool) {
	switch {
	case b.negotiated:
		return b.cfg.Mode, true
	case b.cfg.lacpStatus() == "configured":
		return BondActiveBackup, b.cfg.LACPFallbackAB
	}
	return b.cfg.Mode, b.cfg.Mode != BondBalanceTCP
}

// Bond is one bond's state. It lives as long as its Port row, so that the
// active member and the members' link states survive reconfigurations;
// Configure gives it its members of each new bridge configuration.
type Bond struct {
	Name string
	// RxDrops counts the frames NORMAL dropped on the bond's members
	// (see bondAdmits).
	RxDrops datapath.Counter

	mu      sync.Mutex // Configure, Run and the commands
	cfg     BondConfig
	members []*bondMember // in OpenFlow port order
	active  *bondMember
	// negotiated: LACP runs and a member's partner speaks it.
	negotiated bool
	st         atomic.Pointer[bondState]
	clock      func() time.Time // time.Now; tests set it
	// bridgeMAC is the address of the bridge's own port, the default
	// LACP system id (SetBridgeMAC).
	bridgeMAC [6]byte

	// assign is each hash bucket's member (nil: none), moved the
	// member rebalancing moved it to; load counts what each bucket
	// sent, loadSeen what it had counted at the last rebalancing (see
	// rebalance.go).
	assign        [bondBuckets]*bondMember
	moved         [bondBuckets]*bondMember
	load          [bondBuckets]datapath.Counter
	loadSeen      [bondBuckets]uint64
	lastLoad      [bondBuckets]uint64 // bytes of the last interval, for bond/show
	nextRebalance time.Time
}

// bondMember is a member's link state, under Bond.mu.
type bondMember struct {
	port    *Port
	carrier bool    // the link's state as last seen (may_enable)
	mac     [6]byte // the device's address, as last seen
	lacp    lacpMember
	enabled bool // whether the bond uses it: the carrier after the delays
	// delay is when a pending change of enabled (to carrier) happens;
	// zero when none is pending.
	delay time.Time
}

// bondState is what the packet path reads: immutable, swapped whole.
type bondState struct {
	mode BondMode
	dead bool                       // the bond sends and takes nothing (see Bond.effective)
	lacp map[uint32]datapath.Upcall // by member datapath port; nil: LACP off
	// negotiated: the partner speaks LACP, and takes care of loops: a
	// member that is enabled takes every frame.
	negotiated bool
	basis      uint32 // bond-hash-basis
	lead       uint32 // the datapath port NORMAL learns the bond's addresses on
	active     *Port  // nil: no member is enabled
	enabled    map[uint32]bool
	// buckets are the balancing modes' hash buckets, each the member
	// it sends through (nil: none is enabled).
	buckets [bondBuckets]*Port
}

// NewBond returns a bond with no members.
func NewBond(name string) *Bond {
	b := &Bond{Name: name, clock: time.Now}
	b.st.Store(&bondState{enabled: map[uint32]bool{}})
	return b
}

// Configure gives the bond its members (ports of the bridge's new
// configuration, each with Bond set to b) and its configuration. A
// member it already had keeps its link state; a new one starts disabled,
// as in OVS, until Run sees its carrier.
func (b *Bond) Configure(members []*Port, cfg BondConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := map[string]*bondMember{}
	for _, m := range b.members {
		old[m.port.Name] = m
	}
	sorted := append([]*Port(nil), members...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].OFPort < sorted[j].OFPort })
	var active string
	if b.active != nil {
		active = b.active.port.Name
	}
	b.members, b.active = b.members[:0], nil
	for _, p := range sorted {
		m := old[p.Name]
		if m == nil {
			m = &bondMember{}
		}
		m.port = p
		b.members = append(b.members, m)
		if p.Name == active {
			b.active = m
		}
	}
	oldPrimary := b.primary()
	b.cfg = cfg
	primaryChanged := oldPrimary != b.primary()
	// The active member may have left the bond; a new primary takes
	// over at once.
	b.choose(primaryChanged)
	b.publish()
}

// member returns the member named name, or nil. Under b.mu.
func (b *Bond) member(name string) *bondMember {
	for _, m := range b.members {
		if m.port.Name == name {
			return m
		}
	}
	return nil
}

// Run updates the members' link states at time now, as OVS does:
// carrier says whether a member's link is up (and its MAC address, for
// bond/show); a member whose state differs from what the bond uses is
// enabled after updelay or disabled after downdelay (an updelay is
// skipped when no member is enabled), and the active member chosen again
// if it must. It reports whether the bond changed, and returns the newly
// active member's name when the active member changed to another one
// ("" otherwise): OVS then sends learning packets through it.
func (b *Bond) Run(now time.Time, carrier func(p *Port) (up bool, mac [6]byte)) (changed bool, newActive string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	prev := b.active
	anyUp := false
	for _, m := range b.members {
		anyUp = anyUp || m.enabled
	}
	for _, m := range b.members {
		up, mac := carrier(m.port)
		m.mac = mac
		if up != m.carrier {
			bondLog.Info("member %s: link state %s", m.port.Name, upDown(up))
			m.carrier = up
			m.lacp.carrierChanged++
		}
	}
	wasNegotiated := b.negotiated
	b.lacpUpdate(now)
	for _, m := range b.members {
		up := m.carrier && b.lacpMayEnable(m) // OVS's may_enable
		switch {
		case m.enabled == up:
			if !m.delay.IsZero() {
				bondLog.Info("member %s: link state %s; cancelled the pending change", m.port.Name, upDown(up))
				m.delay = time.Time{}
			}
			continue
		case !m.delay.IsZero():
		default:
			d := b.cfg.DownDelay
			if up {
				d = b.cfg.UpDelay
			}
			if up && !anyUp && d > 0 {
				bondLog.Info("member %s: skipping %d ms updelay since no other member is enabled", m.port.Name, d.Milliseconds())
				d = 0
			} else if d > 0 {
				bondLog.Info("member %s: will be %s if it stays %s for %d ms", m.port.Name,
					map[bool]string{true: "enabled", false: "disabled"}[up], upDown(up), d.Milliseconds())
			}
			m.delay = now.Add(d)
		}
		if !now.Before(m.delay) {
			m.delay = time.Time{}
			b.enable(m, up)
			changed = true
		}
	}
	if b.rebalance(now) {
		b.publish()
	}
	if changed || b.negotiated != wasNegotiated {
		b.choose(false)
		b.publish()
	}
	if b.active != prev && b.active != nil {
		newActive = b.active.port.Name
	}
	return changed || b.active != prev, newActive
}

func upDown(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

// enable enables or disables m. Under b.mu.
func (b *Bond) enable(m *bondMember, on bool) {
	m.enabled = on
	bondLog.Info("member %s: %s", m.port.Name, map[bool]string{true: "enabled", false: "disabled"}[on])
}

// primary is the bond-primary member's name: only an active-backup bond
// has one, as in OVS. Under b.mu.
func (b *Bond) primary() string {
	if b.cfg.Mode != BondActiveBackup {
		return ""
	}
	return b.cfg.Primary
}

// choose picks the active member: the primary when it is enabled and
// either force is set or the primary just became usable, else the
// current one while it is enabled, else the first enabled member.
// Under b.mu.
func (b *Bond) choose(force bool) {
	prev := b.active
	if p := b.member(b.primary()); p != nil && p.enabled && (force || prev == nil || !prev.enabled || prev != p) {
		// OVS goes back to the primary whenever it is up.
		b.active = p
	} else if b.active == nil || !b.active.enabled {
		b.active = nil
		for _, m := range b.members {
			if m.enabled {
				b.active = m
				break
			}
		}
	}
	if b.active != prev {
		if b.active != nil {
			bondLog.Info("bond %s: active member is now %s", b.Name, b.active.port.Name)
		} else {
			bondLog.Warn("bond %s: all members disabled", b.Name)
		}
	}
}

// publish makes the packet path see the bond's state, and makes the
// datapath translate again. Under b.mu.
func (b *Bond) publish() {
	s := &bondState{enabled: map[uint32]bool{}}
	var live bool
	s.mode, live = b.effective()
	s.dead = !live
	s.negotiated = b.negotiated
	s.basis = b.cfg.HashBasis
	if b.lacpOn() {
		s.lacp = map[uint32]datapath.Upcall{}
		for _, m := range b.members {
			s.lacp[m.port.DPPort] = lacpUpcall{b: b, m: m}
		}
	}
	for i, m := range b.members {
		if i == 0 {
			s.lead = m.port.DPPort
		}
		if m.enabled {
			s.enabled[m.port.DPPort] = true
		}
	}
	if b.active != nil {
		s.active = b.active.port
	}
	b.assignBuckets()
	for i, m := range b.assign {
		if m != nil {
			s.buckets[i] = m.port
		}
	}
	b.st.Store(s)
	datapath.Invalidate()
}

// SetActive makes the member named name the active one
// (bond/set-active-member).
func (b *Bond) SetActive(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.member(name)
	if m == nil {
		return errors.New("no such member")
	}
	if !m.enabled {
		return errors.New("cannot make disabled member active")
	}
	if b.active != m {
		b.active = m
		bondLog.Info("bond %s: active member is now %s", b.Name, name)
		b.publish()
	}
	return nil
}

// SetEnabled enables or disables the member named name
// (bond/enable-member, bond/disable-member); as in OVS, Run then brings
// it back to its link state after the bond's updelay or downdelay.
func (b *Bond) SetEnabled(name string, on bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.member(name)
	if m == nil {
		return errors.New("no such member")
	}
	if m.enabled != on {
		b.enable(m, on)
		b.choose(false)
		b.publish()
	}
	return nil
}

// Active returns the active member's name, "" when there is none.
func (b *Bond) Active() string {
	if p := b.st.Load().active; p != nil {
		return p.Name
	}
	return ""
}

// ActiveMAC returns the active member's MAC address as last seen, ""
// when no member is active.
func (b *Bond) ActiveMAC() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.active == nil {
		return ""
	}
	return net.HardwareAddr(b.active.mac[:]).String()
}

// Show describes the bond as OVS's bond/show does.
func (b *Bond) Show() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	fmt.Fprintf(&s, "---- %s ----\n", b.Name)
	fmt.Fprintf(&s, "bond_mode: %s\n", b.cfg.Mode)
	fmt.Fprintf(&s, "bond may use recirculation: no, Recirc-ID : -1\n")
	fmt.Fprintf(&s, "bond-hash-basis: %d\n", b.cfg.HashBasis)
	fmt.Fprintf(&s, "lb_output action: disabled, bond-id: -1\n")
	if b.cfg.Mode != BondActiveBackup {
		fmt.Fprintf(&s, "all members active: false\n")
	}
	fmt.Fprintf(&s, "updelay: %d ms\n", b.cfg.UpDelay.Milliseconds())
	fmt.Fprintf(&s, "downdelay: %d ms\n", b.cfg.DownDelay.Milliseconds())
	if b.cfg.Mode != BondActiveBackup {
		fmt.Fprintf(&s, "next rebalance: %d ms\n", max(0, b.nextRebalance.Sub(b.clock()).Milliseconds()))
	}
	lacpStatus := b.cfg.lacpStatus()
	if b.negotiated {
		lacpStatus = "negotiated"
	}
	fmt.Fprintf(&s, "lacp_status: %s\n", lacpStatus)
	fmt.Fprintf(&s, "lacp_fallback_ab: %t\n", b.cfg.LACPFallbackAB)
	primary := b.primary()
	if primary == "" {
		primary = "<none>"
	}
	fmt.Fprintf(&s, "active-backup primary: %s\n", primary)
	if b.active != nil {
		fmt.Fprintf(&s, "active member mac: %s(%s)\n", net.HardwareAddr(b.active.mac[:]), b.active.port.Name)
	} else {
		fmt.Fprintf(&s, "active member mac: 00:00:00:00:00:00(none)\n")
	}
	for _, m := range b.sortedMembers() {
		fmt.Fprintf(&s, "\nmember %s: %s\n", m.port.Name, map[bool]string{true: "enabled", false: "disabled"}[m.enabled])
		if m == b.active {
			fmt.Fprintf(&s, "  active member\n")
		}
		if !m.delay.IsZero() {
			verb := "downdelay"
			if !m.enabled {
				verb = "updelay"
			}
			fmt.Fprintf(&s, "  %s expires in %d ms\n", verb, max(0, m.delay.Sub(b.clock()).Milliseconds()))
		}
		fmt.Fprintf(&s, "  may_enable: %t\n", m.carrier && b.lacpMayEnable(m))
		b.showHashes(&s, m)
	}
	s.WriteString("\n") // OVS ends each bond with a blank line
	return s.String()
}

// sortedMembers returns the members in name order. Under b.mu.
func (b *Bond) sortedMembers() []*bondMember {
	out := append([]*bondMember(nil), b.members...)
	sort.Slice(out, func(i, j int) bool { return out[i].port.Name < out[j].port.Name })
	return out
}

// LACPTx returns the LACPDUs due at now, each for one member.
func (b *Bond) LACPTx(now time.Time) []BondFrame {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lacpTx(now)
}

// Members returns the members' names in OpenFlow port order.
func (b *Bond) Members() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, len(b.members))
	for i, m := range b.members {
		out[i] = m.port.Name
	}
	return out
}

// Mode returns the bond's mode.
func (b *Bond) Mode() BondMode { return b.st.Load().mode }

// bondLead returns the port NORMAL learns p's addresses on: p, or for a
// member of a bond the bond's lead member.
func bondLead(cfg *Config, p *Port) *Port {
	if p.Bond == nil {
		return p
	}
	if l := cfg.Ports[p.Bond.st.Load().lead]; l != nil {
		return l
	}
	return p
}

// sameSwitchPort reports whether a and b are one port for NORMAL: the
// same port, or members of one bond.
func sameSwitchPort(a, b *Port) bool {
	return a == b || a.Bond != nil && a.Bond == b.Bond
}

// bondAdmits reports whether NORMAL takes a frame that came in on bond
// member in, as OVS does: a disabled member takes nothing; multicast and
// broadcast come in only on the active member; an active-backup bond
// takes frames on its active member only; a balance-slb bond drops a
// frame whose source it learned on another port (its own frame coming
// back), except a gratuitous ARP (the host moved). With LACP negotiated
// an enabled member takes every frame. A drop is counted.
func (b *Bridge) bondAdmits(x *xlate, cfg *Config, in *Port, f *frame, vlan uint16) bool {
	s := in.Bond.st.Load()
	ok := true
	switch {
	case s.dead, !s.enabled[in.DPPort]:
		ok = false
	case s.negotiated:
	case f.dst[0]&1 != 0 && s.active != in:
		ok = false
	case s.mode == BondActiveBackup && s.active != in:
		ok = false
	case s.mode == BondBalanceSLB:
		if port, found := b.lookup(x, f.src, vlan); found && port != s.lead && !isGratuitousARP(x) {
			ok = false
		}
	}
	if !ok {
		x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectCount, Counter: &in.Bond.RxDrops})
		if x.trace != nil {
			x.trace.Note(fmt.Sprintf("bond %s: member %s may not receive this frame, dropping", in.Bond.Name, in.Name), x.tnest)
		}
		bondRxDrops.Inc()
	}
	return ok
}

// isGratuitousARP reports whether the frame is an ARP announcing its
// sender's own address (a request or a reply whose sender and target
// addresses are equal); it reads the fields it looks at into the mask.
func isGratuitousARP(x *xlate) bool {
	k, m := x.key, &x.out.Mask
	m.DlType = 0xffff
	if k.DlType != 0x0806 {
		return false
	}
	m.ArpSpa, m.ArpTpa = [4]byte{0xff, 0xff, 0xff, 0xff}, [4]byte{0xff, 0xff, 0xff, 0xff}
	return k.ArpSpa == k.ArpTpa
}

// bondOutput returns the member of out's bond NORMAL sends the frame
// through (nil: none, the bond has no enabled member), or out itself for
// a port that is no bond's member: active-backup sends through the
// active member, balance-slb hashes the source address and VLAN, and
// balance-tcp the IP addresses and L4 ports (the source address and VLAN
// for frames that are not IP).
func bondOutput(x *xlate, out *Port, f *frame, vlan uint16) *Port {
	if out.Bond == nil {
		return out
	}
	s := out.Bond.st.Load()
	if s.dead {
		return nil
	}
	switch s.mode {
	case BondBalanceSLB, BondBalanceTCP:
		var h uint32
		if s.mode == BondBalanceSLB {
			h = slbHash(s.basis, f.src, vlan) % bondBuckets
		} else {
			h = l4Hash(s.basis, x, f, vlan) % bondBuckets
		}
		// The bucket's load, for rebalancing (see rebalance.go).
		x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectCount, Counter: &out.Bond.load[h]})
		return s.buckets[h]
	}
	return s.active
}

// The bond hashes are FNV-1a, seeded with the bond-hash-basis so that a
// new basis moves flows between buckets, as OVS's does.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

// fnvSeed starts a hash with basis.
func fnvSeed(basis uint32) uint32 {
	h := uint32(fnvOffset)
	for i := 0; i < 32; i += 8 {
		h = (h ^ basis>>i&0xff) * fnvPrime
	}
	return h
}

// fnvBytes adds b to hash h.
func fnvBytes(h uint32, b []byte) uint32 {
	for _, c := range b {
		h = (h ^ uint32(c)) * fnvPrime
	}
	return h
}

// fnv16 adds v to hash h, high byte first.
func fnv16(h uint32, v uint16) uint32 {
	h = (h ^ uint32(v>>8)) * fnvPrime
	return (h ^ uint32(v&0xff)) * fnvPrime
}

// slbHash hashes a source address and VLAN with the basis.
func slbHash(basis uint32, mac [6]byte, vlan uint16) uint32 {
	h := fnvBytes(fnvSeed(basis), mac[:])
	h = (h ^ uint32(vlan&0xff)) * fnvPrime
	h = (h ^ uint32(vlan>>8)) * fnvPrime
	return h ^ h>>16
}

// l4Hash hashes an IP frame's addresses (IPv4 or IPv6), protocol (the
// IPv6 next header after extension headers) and, for TCP, UDP and SCTP,
// its ports, with the basis, marking them read; other frames hash as
// balance-slb's.
func l4Hash(basis uint32, x *xlate, f *frame, vlan uint16) uint32 {
	k, m := x.key, &x.out.Mask
	m.DlType = 0xffff
	h := fnvSeed(basis)
	switch k.DlType {
	case 0x0800:
		all4 := [4]byte{0xff, 0xff, 0xff, 0xff}
		m.NwSrc, m.NwDst = all4, all4
		h = fnvBytes(fnvBytes(h, k.NwSrc[:]), k.NwDst[:])
	case 0x86dd:
		var all16 [16]byte
		for i := range all16 {
			all16[i] = 0xff
		}
		m.IPv6Src, m.IPv6Dst = all16, all16
		h = fnvBytes(fnvBytes(h, k.IPv6Src[:]), k.IPv6Dst[:])
	default:
		return slbHash(basis, f.src, vlan)
	}
	m.NwProto = 0xff
	h = (h ^ uint32(k.NwProto)) * fnvPrime
	if k.NwProto == 6 || k.NwProto == 17 || k.NwProto == 132 {
		m.TpSrc, m.TpDst = 0xffff, 0xffff
		h = fnv16(fnv16(h, k.TpSrc), k.TpDst)
	}
	return h ^ h>>16
}
