package ofproto

import (
	"encoding/binary"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// bondBridge is a bridge with port p1 (datapath and OpenFlow port 1), a
// bond "bond0" of members m2 and m3 (ports 2 and 3), and port p4, all
// access ports of VLAN 0; the bond's members have carrier as up says.
type bondBridge struct {
	b    *Bridge
	bond *Bond
	up   map[string]bool
	now  time.Time
}

func newBondBridge(t *testing.T, bc BondConfig) *bondBridge {
	t.Helper()
	bb := &bondBridge{b: NewBridge("br", 64, 300), bond: NewBond("bond0"), up: map[string]bool{"m2": true, "m3": true},
		now: time.Unix(1000, 0)}
	cfg := &Config{Ports: map[uint32]*Port{}}
	var members []*Port
	for i, n := range []string{"p1", "m2", "m3", "p4"} {
		p := &Port{Name: n, OFPort: uint32(i + 1), DPPort: uint32(i + 1), VLAN: trunks(true)}
		if n[0] == 'm' {
			p.Bond = bb.bond
			members = append(members, p)
		}
		cfg.Ports[p.DPPort] = p
		cfg.Flood = append(cfg.Flood, p)
	}
	bb.bond.clock = func() time.Time { return bb.now }
	bb.bond.Configure(members, bc)
	bb.b.SetConfig(cfg)
	bb.run()
	return bb
}

// run runs the bond's link monitoring at the bridge's clock.
func (bb *bondBridge) run() (bool, string) {
	return bb.bond.Run(bb.now, func(p *Port) (bool, [6]byte) { return bb.up[p.Name], [6]byte{2, 0, 0, 0, 9, byte(p.DPPort)} })
}

var (
	hostA = [6]byte{2, 0, 0, 0, 0, 0xa}
	hostB = [6]byte{2, 0, 0, 0, 0, 0xb}
	bcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
)

// frame returns an IPv4/TCP frame from src to dst with source port sport.
func bondFrame(src, dst [6]byte, sport uint16) []byte {
	f := append(append([]byte{}, dst[:]...), src[:]...)
	f = binary.BigEndian.AppendUint16(f, 0x0800)
	f = append(f, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2)
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], 80)
	l4[12] = 5 << 4
	return append(f, l4...)
}

// send translates frame f received on datapath port in and returns the
// datapath ports it goes out of, sorted, and the translation.
func (bb *bondBridge) send(in uint32, f []byte) ([]uint32, *datapath.Xlate) {
	pkt := &datapath.Packet{Frame: f, InPort: in}
	_ = packet.Parse(f, in, &pkt.Key.Key, &pkt.Off)
	x := &datapath.Xlate{}
	bb.b.Translate(pkt, x)
	var outs []uint32
	for _, o := range outputsOf(x.Actions) {
		outs = append(outs, o.Port)
	}
	sort.Slice(outs, func(i, j int) bool { return outs[i] < outs[j] })
	// Apply the learning, as the datapath would.
	for _, e := range x.Effects {
		switch e.Kind {
		case datapath.EffectLearn:
			e.Learner.Learn(e.MAC, e.VLAN, e.Port)
		case datapath.EffectCount:
			e.Counter.Packets.Add(1)
			e.Counter.Bytes.Add(uint64(len(f)))
		}
	}
	return outs, x
}

func samePorts(a []uint32, b ...uint32) bool { return slices.Equal(a, b) }

func countsDrop(x *datapath.Xlate, bond *Bond) bool {
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectCount && e.Counter == &bond.RxDrops {
			return true
		}
	}
	return false
}

// TestBondActiveBackup: the bond floods and sends through its active
// member only, learns on the bond, drops what its backup member
// receives (counting it), and fails over when the active member's
// carrier goes down.
func TestBondActiveBackup(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondActiveBackup})
	if got := bb.bond.Active(); got != "m2" {
		t.Fatalf("active member %q, want m2", got)
	}
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 2, 4) {
		t.Fatalf("broadcast from p1 went to %v, want the active member 2 and p4", outs)
	}
	// Received on the active member: learned on the bond, switched.
	if outs, _ := bb.send(2, bondFrame(hostB, hostA, 1)); !samePorts(outs, 1) {
		t.Fatalf("unicast from the bond to hostA went to %v, want 1", outs)
	}
	// Received on the backup member: dropped and counted.
	outs, x := bb.send(3, bondFrame(hostB, bcast, 1))
	if len(outs) != 0 || !countsDrop(x, bb.bond) {
		t.Fatalf("frame on the backup member went to %v (drop counted: %v), want a counted drop", outs, countsDrop(x, bb.bond))
	}
	// A frame from the bond never goes back into it.
	if outs, _ := bb.send(2, bondFrame(hostB, bcast, 1)); !samePorts(outs, 1, 4) {
		t.Fatalf("broadcast from the bond went to %v, want 1 and 4", outs)
	}
	if outs, _ := bb.send(1, bondFrame(hostA, hostB, 1)); !samePorts(outs, 2) {
		t.Fatalf("unicast to hostB (behind the bond) went to %v, want 2", outs)
	}
	// Failover.
	bb.up["m2"] = false
	bb.now = bb.now.Add(time.Millisecond)
	if changed, active := bb.run(); !changed || active != "m3" {
		t.Fatalf("carrier loss of the active member: changed %v, new active %q, want m3", changed, active)
	}
	if outs, _ := bb.send(1, bondFrame(hostA, hostB, 1)); !samePorts(outs, 3) {
		t.Fatalf("after failover, unicast to hostB went to %v, want 3", outs)
	}
	if outs, _ := bb.send(2, bondFrame(hostB, hostA, 1)); len(outs) != 0 {
		t.Fatalf("after failover, the disabled member still receives: %v", outs)
	}
	if outs, _ := bb.send(3, bondFrame(hostB, hostA, 1)); !samePorts(outs, 1) {
		t.Fatalf("after failover, the new active member does not receive: %v", outs)
	}
	// Both down: nothing goes out through the bond.
	bb.up["m3"] = false
	bb.run()
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 4) {
		t.Fatalf("with every member down, the broadcast went to %v, want 4 only", outs)
	}
}

// TestBondDelaysPrimaryAndCommands: downdelay and updelay hold a change
// of link state back; bond-primary wins whenever it is enabled;
// set-active-member refuses a disabled member; disable-member lasts until
// the updelay brings the member back, as in OVS.
func TestBondDelaysPrimaryAndCommands(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondActiveBackup, UpDelay: 100 * time.Millisecond,
		DownDelay: 200 * time.Millisecond, Primary: "m3"})
	if got := bb.bond.Active(); got != "m3" {
		t.Fatalf("active member %q, want the primary m3 (the updelay is skipped with no member enabled)", got)
	}
	// step runs the bond d later and checks the active member.
	step := func(d time.Duration, want, when string) {
		t.Helper()
		bb.now = bb.now.Add(d)
		bb.run()
		if got := bb.bond.Active(); got != want {
			t.Fatalf("active member %q %s, want %s", got, when, want)
		}
	}
	bb.up["m3"] = false
	step(10*time.Millisecond, "m3", "during the downdelay")
	step(200*time.Millisecond, "m2", "after the downdelay")
	bb.up["m3"] = true
	step(10*time.Millisecond, "m2", "during the primary's updelay")
	bb.now = bb.now.Add(100 * time.Millisecond)
	if _, active := bb.run(); active != "m3" {
		t.Fatalf("new active member %q after the primary's updelay, want m3", active)
	}
	if err := bb.bond.SetActive("m2"); err != nil {
		t.Fatal(err)
	}
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 2, 4) {
		t.Fatalf("after set-active-member m2, broadcast went to %v", outs)
	}
	if err := bb.bond.SetActive("nosuch"); err == nil || err.Error() != "no such member" {
		t.Errorf("set-active-member of a missing member: %v", err)
	}
	if err := bb.bond.SetEnabled("m3", false); err != nil {
		t.Fatal(err)
	}
	if err := bb.bond.SetActive("m3"); err == nil || err.Error() != "cannot make disabled member active" {
		t.Errorf("set-active-member of a disabled member: %v", err)
	}
	bb.now = bb.now.Add(time.Millisecond)
	bb.run()
	if err := bb.bond.SetActive("m3"); err == nil {
		t.Errorf("disable-member lasted less than the updelay")
	}
	bb.now = bb.now.Add(100 * time.Millisecond)
	bb.run()
	if err := bb.bond.SetActive("m3"); err != nil {
		t.Errorf("the updelay did not bring the disabled member back: %v", err)
	}
}

// TestBondBalanceSLB: sources spread over both members by hash; a
// failed member's sources move; broadcasts come in on the active member
// only; a frame whose source was learned on another port is dropped
// (the bond's own frame reflected), except a gratuitous ARP.
func TestBondBalanceSLB(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondBalanceSLB})
	used := map[uint32]bool{}
	for i := range 32 {
		src := [6]byte{2, 0, 0, 1, 0, byte(i)}
		outs, _ := bb.send(1, bondFrame(src, bcast, 1))
		if len(outs) != 2 || outs[1] != 4 || (outs[0] != 2 && outs[0] != 3) {
			t.Fatalf("broadcast from %v went to %v, want one member and 4", src, outs)
		}
		used[outs[0]] = true
		again, _ := bb.send(1, bondFrame(src, bcast, 2))
		if again[0] != outs[0] {
			t.Fatalf("one source went out of members %d and %d", outs[0], again[0])
		}
	}
	if !used[2] || !used[3] {
		t.Fatalf("32 sources used members %v, want both", used)
	}
	// Broadcast on the member that is not active: dropped.
	active := uint32(2)
	if bb.bond.Active() == "m3" {
		active = 3
	}
	if outs, x := bb.send(5-active, bondFrame(hostB, bcast, 1)); len(outs) != 0 || !countsDrop(x, bb.bond) {
		t.Fatalf("broadcast on the inactive member went to %v", outs)
	}
	// Unicast on either member is taken.
	if outs, _ := bb.send(5-active, bondFrame(hostB, hostA, 1)); len(outs) == 0 {
		t.Fatalf("unicast on the inactive member went to %v", outs)
	}
	// hostA was learned on p1: its frame coming back on the bond is dropped.
	bb.send(1, bondFrame(hostA, bcast, 1))
	if outs, _ := bb.send(active, bondFrame(hostA, bcast, 1)); len(outs) != 0 {
		t.Fatalf("reflected frame of hostA went to %v", outs)
	}
	garp := append(append([]byte{}, bcast[:]...), hostA[:]...)
	garp = append(garp, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1)
	garp = append(garp, hostA[:]...)
	garp = append(garp, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1)
	if outs, _ := bb.send(active, garp); !samePorts(outs, 1, 4) {
		t.Fatalf("gratuitous ARP of a moved host went to %v, want 1 and 4", outs)
	}
	// Member failure: every source goes out of the other.
	bb.up["m2"] = false
	bb.run()
	for i := range 32 {
		if outs, _ := bb.send(4, bondFrame([6]byte{2, 0, 0, 1, 0, byte(i)}, bcast, 1)); !samePorts(outs, 1, 3) {
			t.Fatalf("with m2 down, broadcast went to %v, want 1 and 3", outs)
		}
	}
}

// TestBondBalanceTCPAndLACP: balance-tcp spreads TCP connections by
// their ports once it may carry traffic; without negotiated LACP (gvs
// does not speak it) a balance-tcp bond, and any bond with lacp
// configured, sends and takes nothing, unless lacp-fallback-ab makes it
// active-backup, as OVS's with a partner that does not answer.
func TestBondBalanceTCPAndLACP(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondBalanceTCP})
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 4) {
		t.Fatalf("balance-tcp without LACP sent through the bond: %v", outs)
	}
	if outs, _ := bb.send(2, bondFrame(hostB, hostA, 1)); len(outs) != 0 {
		t.Fatalf("balance-tcp without LACP took a frame: %v", outs)
	}
	bb.bond.Configure(bb.bond.ports(), BondConfig{Mode: BondBalanceTCP, LACP: "active"})
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 4) {
		t.Fatalf("lacp configured, not negotiated, no fallback: sent through the bond: %v", outs)
	}
	bb.bond.Configure(bb.bond.ports(), BondConfig{Mode: BondBalanceTCP, LACP: "active", LACPFallbackAB: true})
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 2, 4) {
		t.Fatalf("lacp-fallback-ab: broadcast went to %v, want the active member and 4", outs)
	}
	// The hash itself: connections spread over both members, each
	// connection on one, and the L4 ports are in the mask.
	st := &bondState{mode: BondBalanceTCP, lead: 2, enabled: map[uint32]bool{2: true, 3: true}}
	for i := range st.buckets {
		st.buckets[i] = bb.b.Config().Ports[uint32(2+i%2)]
	}
	bb.bond.st.Store(st)
	bb.b.MACs.Learn(hostB, 0, 2) // behind the bond
	used := map[uint32]bool{}
	for sport := uint16(1000); sport < 1032; sport++ {
		outs, x := bb.send(1, bondFrame(hostA, hostB, sport))
		if len(outs) != 1 {
			t.Fatalf("connection from port %d went to %v", sport, outs)
		}
		if x.Mask.TpSrc != 0xffff || x.Mask.NwSrc != [4]byte{0xff, 0xff, 0xff, 0xff} {
			t.Fatalf("the L4 hash's fields are not in the mask: %+v", x.Mask.Key)
		}
		used[outs[0]] = true
	}
	if !used[2] || !used[3] {
		t.Fatalf("32 connections used members %v, want both", used)
	}
}

// ports returns the bond's member ports.
func (b *Bond) ports() []*Port {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*Port, len(b.members))
	for i, m := range b.members {
		out[i] = m.port
	}
	return out
}

// TestBondOpenFlowOutputToMember: output:N of a member sends on that
// member whatever the bond's state, as in OVS: each member is an
// OpenFlow port of its own.
func TestBondOpenFlowOutputToMember(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondActiveBackup})
	addFlow(t, bb.b, "priority=10,in_port=1,actions=output:3")
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 3) {
		t.Fatalf("output:3 (the backup member) went to %v", outs)
	}
}

// TestBondTranslateAllocs: NORMAL through a bond allocates nothing once
// warm. The bridge has no tables: a pass through them allocates its
// context already (on main too), which is not the bond's doing.
func TestBondTranslateAllocs(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondBalanceSLB})
	bb.b.Tables = nil
	bb.b.MACs.Learn(hostB, 0, 2)
	pkt := bb.noAllocs(t, bondFrame(hostA, hostB, 1), 1, "")
	bb.noAllocs(t, pkt.Frame, 3, " received on a member")
}

// noAllocs fails the test if translating frame f received on port in
// allocates, once warm; it returns the packet.
func (bb *bondBridge) noAllocs(t *testing.T, f []byte, in uint32, what string) *datapath.Packet {
	t.Helper()
	pkt := &datapath.Packet{Frame: f, InPort: in}
	_ = packet.Parse(f, in, &pkt.Key.Key, &pkt.Off)
	x := &datapath.Xlate{}
	run := func() {
		x.Actions, x.Effects = x.Actions[:0], x.Effects[:0]
		bb.b.Translate(pkt, x)
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per translation%s", n, what)
	}
	return pkt
}

// TestBondLACPNegotiates: two bonds running LACP whose LACPDUs reach each
// other (each member's to the peer member) become negotiated, their
// members current and attached, and then carry balance-tcp traffic; a
// received LACPDU is taken by the bond (a userspace action, nothing
// switched). When the partner falls silent its members expire and the
// bond carries nothing again.
func TestBondLACPNegotiates(t *testing.T) {
	lc := BondConfig{Mode: BondBalanceTCP, LACP: "active", LACPFast: true}
	a := newBondBridge(t, lc)
	b := newBondBridge(t, lc)
	peer := map[uint32]*Port{}
	for _, n := range []uint32{2, 3} {
		peer[n] = b.b.Config().Ports[n]
	}
	deliver := func(from, to *bondBridge) {
		for _, f := range from.bond.LACPTx(from.now) {
			outs, x := to.send(f.DPPort, f.Frame) // member N is wired to the peer's member N
			if len(outs) != 0 || len(x.Actions) != 1 || x.Actions[0].Kind != datapath.ActUserspace {
				t.Fatalf("LACPDU translated to %s", datapath.FormatActions(x.Actions, nil))
			}
			x.Actions[0].Upcall.Upcall(f.Frame)
		}
	}
	for range 4 {
		a.now, b.now = a.now.Add(time.Second), b.now.Add(time.Second)
		deliver(a, b)
		deliver(b, a)
		a.run()
		b.run()
	}
	for _, bb := range []*bondBridge{a, b} {
		show := bb.bond.ShowLACP()
		for _, want := range []string{"status: active negotiated", "member: m2: current attached", "member: m3: current attached",
			"actor state: activity timeout aggregation synchronized collecting distributing\n"} {
			if !strings.Contains(show, want) {
				t.Fatalf("lacp/show lacks %q:\n%s", want, show)
			}
		}
		if s := bb.bond.Show(); !strings.Contains(s, "lacp_status: negotiated") || !strings.Contains(s, "member m3: enabled") {
			t.Fatalf("bond/show:\n%s", s)
		}
	}
	a.b.MACs.Learn(hostB, 0, 2)
	if outs, _ := a.send(1, bondFrame(hostA, hostB, 1)); len(outs) != 1 || outs[0] != 2 && outs[0] != 3 {
		t.Fatalf("negotiated balance-tcp sent to %v", outs)
	}
	// A negotiated bond takes frames on every enabled member.
	if outs, _ := a.send(3, bondFrame(hostB, bcast, 1)); !samePorts(outs, 1, 4) {
		t.Fatalf("broadcast on a member of a negotiated bond went to %v", outs)
	}
	// The partner falls silent: after 3 s (fast) nothing is current.
	a.now = a.now.Add(4 * time.Second)
	a.run()
	if show := a.bond.ShowLACP(); !strings.Contains(show, "member: m2: expired detached") || strings.Contains(show, "negotiated") {
		t.Fatalf("after the partner fell silent:\n%s", show)
	}
	if outs, _ := a.send(1, bondFrame(hostA, hostB, 1)); len(outs) != 0 {
		t.Fatalf("balance-tcp without negotiated LACP sent to %v", outs)
	}
}

// TestBondActiveMemberLeaves: when the active member leaves the bond (a
// reconfiguration), another enabled member becomes active at once.
func TestBondActiveMemberLeaves(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondActiveBackup})
	if bb.bond.Active() != "m2" {
		t.Fatalf("active %q", bb.bond.Active())
	}
	bb.bond.Configure(bb.bond.ports()[1:], BondConfig{Mode: BondActiveBackup})
	if got := bb.bond.Active(); got != "m3" {
		t.Fatalf("active member %q after m2 left, want m3", got)
	}
}

// TestBondRebalance: every bond-rebalance-interval a balance-slb bond
// moves a bucket from the member that sent the most to the one that sent
// the least, when that narrows the gap; bond/show lists the buckets'
// loads.
func TestBondRebalance(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondBalanceSLB, RebalanceInterval: 10 * time.Second})
	// Two sources whose buckets are on the same member.
	var srcs [][6]byte
	var on uint32
	for i := 0; len(srcs) < 2 && i < 256; i++ {
		src := [6]byte{2, 0, 0, 2, 0, byte(i)}
		outs, _ := bb.send(1, bondFrame(src, bcast, 1))
		if on == 0 {
			on = outs[0]
		}
		if outs[0] == on && slbHash(0, src, 0)%bondBuckets != slbHash(0, srcs0(srcs), 0)%bondBuckets {
			srcs = append(srcs, src)
		}
	}
	for range 100 {
		bb.send(1, bondFrame(srcs[0], bcast, 1))
		bb.send(1, bondFrame(srcs[1], bcast, 1))
	}
	bb.now = bb.now.Add(10 * time.Second)
	bb.run()
	seen := map[uint32]bool{}
	for _, src := range srcs {
		outs, _ := bb.send(1, bondFrame(src, bcast, 1))
		seen[outs[0]] = true
	}
	if len(seen) != 2 {
		t.Fatalf("after rebalancing, two busy sources of member %d go out of %v, want both members", on, seen)
	}
	if show := bb.bond.Show(); !strings.Contains(show, " kB load\n") || !strings.Contains(show, "next rebalance: 10000 ms") {
		t.Fatalf("bond/show:\n%s", show)
	}
}

// srcs0 is the first of srcs, or a zero address.
func srcs0(srcs [][6]byte) [6]byte {
	if len(srcs) == 0 {
		return [6]byte{0xff}
	}
	return srcs[0]
}

// TestBondMirrorOutput: a mirror whose output_port is a bond sends its
// copies out of the bond's active member, whichever member the
// configuration named.
func TestBondMirrorOutput(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondActiveBackup})
	cfg := *bb.b.Config()
	m3 := cfg.Ports[3]
	cfg.Mirrors = []*Mirror{{Name: "m", Src: map[uint32]bool{1: true}, OutPort: m3, OutVLAN: -1, Stats: &MirrorStats{}}}
	cfg.Ports[2].MirrorOut, m3.MirrorOut = true, true
	bb.b.SetConfig(&cfg)
	if outs, _ := bb.send(1, bondFrame(hostA, bcast, 1)); !samePorts(outs, 2, 4) {
		t.Fatalf("broadcast from a mirrored port went to %v, want p4 and the copy out of the active member 2", outs)
	}
}
