package ofproto

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"gvs/internal/datapath"
)

// lacpBond is a bondBridge whose bond runs LACP (active, balance-tcp)
// with bc's LACP identities.
func lacpBond(t *testing.T, bc BondConfig) *bondBridge {
	t.Helper()
	bc.Mode, bc.LACP = BondBalanceTCP, "active"
	return newBondBridge(t, bc)
}

// slowIn hands slow protocols frame f, received on member in, to the
// bond as the datapath would: the translation must be one userspace
// action, whose upcall then runs.
func (bb *bondBridge) slowIn(t *testing.T, in uint32, f []byte) {
	t.Helper()
	outs, x := bb.send(in, f)
	if len(outs) != 0 || len(x.Actions) != 1 || x.Actions[0].Kind != datapath.ActUserspace {
		t.Fatalf("slow protocols frame translated to %s", datapath.FormatActions(x.Actions, nil))
	}
	x.Actions[0].Upcall.Upcall(f)
}

// markerRequestFrame is a Marker Information PDU from 02:00:00:00:77:01,
// requester port 0x0102, system 02:aa:bb:cc:dd:ee, transaction id
// 0x0a0b0c0d; its reserved octets hold junk, which the response must
// not echo.
func markerRequestFrame() []byte {
	f := []byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x77, 0x01, 0x88, 0x09,
		0x02, 0x01, // marker, version 1
		0x01, 0x10, // Marker Information, 16
		0x01, 0x02, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0a, 0x0b, 0x0c, 0x0d, 0x5a, 0x5a,
		0x00, 0x00} // terminator
	return append(f, bytes.Repeat([]byte{0x33}, 90)...)
}

// TestLACPMarkerAnswered: a marker request received on member m3 gets,
// at the bond's next run, a marker response out of m3, byte for byte
// 802.3ad's: from m3's address to the slow protocols address, TLV type
// 2, the requester's port, system and transaction id echoed, the rest
// zero. lacp/show-stats counts it in RX PDUs and RX Marker Request PDUs.
// A marker response received is counted and not answered. On main the
// request counted as a bad PDU and nothing answered it.
func TestLACPMarkerAnswered(t *testing.T) {
	bb := lacpBond(t, BondConfig{})
	bb.bond.LACPTx(bb.now) // the first LACPDUs, out of the way
	bb.slowIn(t, 3, markerRequestFrame())
	want := append([]byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, 2, 0, 0, 0, 9, 3, 0x88, 0x09,
		0x02, 0x01, 0x02, 0x10,
		0x01, 0x02, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x00,
		0x00, 0x00}, make([]byte, 90)...)
	var got [][]byte
	for _, f := range bb.bond.LACPTx(bb.now) {
		if f.DPPort != 3 {
			t.Fatalf("a frame went out of port %d: %x", f.DPPort, f.Frame)
		}
		got = append(got, f.Frame)
	}
	if len(got) != 1 || !bytes.Equal(got[0], want) {
		t.Fatalf("marker response:\n got %x\nwant %x", got, want)
	}
	if again := bb.bond.LACPTx(bb.now); len(again) != 0 {
		t.Fatalf("the response went twice: %x", again)
	}
	resp := append([]byte(nil), want...)
	resp[6+5] = 0x42 // the partner's answer to a request of ours
	bb.slowIn(t, 2, resp)
	if out := bb.bond.LACPTx(bb.now); len(out) != 0 {
		t.Fatalf("a marker response was answered: %x", out)
	}
	holdsAll(t, "lacp/show-stats", bb.bond.ShowLACPStats(),
		"member: m2:\n  TX PDUs: 1\n  RX PDUs: 1\n  RX Bad PDUs: 0\n  RX Marker Request PDUs: 1\n",
		"member: m3:\n  TX PDUs: 1\n  RX PDUs: 1\n  RX Bad PDUs: 0\n  RX Marker Request PDUs: 1\n")
}

// TestLACPMalformedSlowFrames: slow protocols frames that are too short,
// of another subtype, with bad TLVs, tagged, or random, neither crash
// the bond nor change its partner nor get an answer; each counts as a
// bad PDU.
func TestLACPMalformedSlowFrames(t *testing.T) {
	bb := lacpBond(t, BondConfig{})
	bb.bond.LACPTx(bb.now)
	hdr := []byte{0x01, 0x80, 0xc2, 0x00, 0x00, 0x02, 0x02, 0, 0, 0, 0x77, 1, 0x88, 0x09}
	lacpdu := lacpPDU([6]byte{2, 0, 0, 0, 0x77, 1}, lacpInfo{sysPriority: 1, sysID: [6]byte{2, 1}, key: 5, portID: 1, state: lacpActivity}, lacpInfo{})
	marker := markerRequestFrame()
	with := func(f []byte, i int, v byte) []byte {
		f = append([]byte(nil), f...)
		f[i] = v
		return f
	}
	tagged := append(append(append([]byte(nil), hdr[:12]...), 0x81, 0x00, 0x00, 0x05), lacpdu[12:]...)
	bad := [][]byte{
		hdr,                      // nothing after the header
		append(hdr, 1),           // a subtype only
		append(hdr, 2, 1, 1),     // a marker cut short
		lacpdu[:14+40],           // a LACPDU cut in its partner TLV
		with(lacpdu, 14+2, 9),    // actor TLV of type 9
		with(lacpdu, 14+3, 200),  // actor TLV length 200
		with(lacpdu, 14+22, 0),   // partner TLV of type 0
		with(lacpdu, 14, 0),      // subtype 0
		with(lacpdu, 14, 3),      // subtype 3 (OAM)
		with(marker, 14+2, 7),    // marker TLV of type 7
		with(marker, 14+3, 0xff), // marker TLV length 255
		marker[:14+19],           // a marker without its terminator
		tagged,                   // a VLAN-tagged LACPDU
	}
	seed := uint32(1)
	for n := range 64 { // random bodies, of every length to 130
		f := append([]byte(nil), hdr...)
		for range 2 * n {
			seed = seed*1103515245 + 12345
			f = append(f, byte(seed>>16))
		}
		if len(f) > 14 && f[14] == slowLACP && len(f) >= 14+62 && f[16] == 1 && f[17] == 20 && f[36] == 2 && f[37] == 20 {
			continue // a valid LACPDU by chance
		}
		if len(f) >= 14+20 && f[14] == slowMarker && f[17] == markerInfoLen && (f[16] == 1 || f[16] == 2) {
			continue // a valid marker PDU by chance
		}
		bad = append(bad, f)
	}
	for _, f := range bad {
		bb.slowIn(t, 2, f)
	}
	if out := bb.bond.LACPTx(bb.now); len(out) != 0 {
		t.Fatalf("a malformed frame was answered: %x", out)
	}
	bb.bond.mu.Lock()
	l := bb.bond.members[0].lacp
	bb.bond.mu.Unlock()
	if l.partner != (lacpInfo{}) || !l.rxAt.IsZero() {
		t.Fatalf("a malformed frame set the partner: %+v", l.partner)
	}
	// A marker PDU of full length counts as a marker, not as bad, even
	// with a broken TLV (it is not answered), as OVS counts it.
	var markers uint64
	for _, f := range bad {
		if slowSubtype(f) == slowMarker && len(f) >= 14+lacpPDULen {
			markers++
		}
	}
	if markers == 0 {
		t.Fatal("no full-length malformed marker among the frames")
	}
	if l.rxPDUs != uint64(len(bad)) || l.rxBad != uint64(len(bad))-markers || l.rxMarker != markers {
		t.Fatalf("%d malformed frames, %d full-length markers: RX PDUs %d, RX Bad PDUs %d, RX Marker PDUs %d", len(bad), markers, l.rxPDUs, l.rxBad, l.rxMarker)
	}
	// The well-formed LACPDU still works after all that.
	bb.slowIn(t, 2, lacpdu)
	if show := bb.bond.ShowLACP(); !strings.Contains(show, "partner sys_id: 02:01:00:00:00:00") {
		t.Fatalf("a good LACPDU after bad ones was not taken:\n%s", show)
	}
}

// holdsAll fails the test unless text (what) holds every one of wants.
func holdsAll(t *testing.T, what, text string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Fatalf("%s lacks %q:\n%s", what, w, text)
		}
	}
}

// FuzzLACPUpcall: no slow protocols frame crashes the bond's upcall.
func FuzzLACPUpcall(f *testing.F) {
	f.Add(markerRequestFrame())
	f.Add(lacpPDU([6]byte{2}, lacpInfo{}, lacpInfo{}))
	f.Fuzz(func(t *testing.T, frame []byte) {
		b := NewBond("b")
		m := &bondMember{port: &Port{Name: "m", OFPort: 1, DPPort: 1}, carrier: true}
		b.members = []*bondMember{m}
		b.cfg.LACP = "active"
		lacpUpcall{b: b, m: m}.Upcall(frame)
		b.LACPTx(b.clock())
		_ = b.ShowLACP()
	})
}

// TestLACPIdentities: by default the actor is the bridge's address
// (SetBridgeMAC) with OVS 3.1's priorities, 65534 for the system and
// 65535 for ports, each member's OpenFlow port number as its port id and
// the key member's (the lowest) as the key; other_config's
// lacp-system-id, lacp-system-priority and the members' lacp-port-id,
// lacp-port-priority and lacp-aggregation-key replace them, in the
// LACPDUs sent and in lacp/show. On main the system id was the first
// member's address and the settings did not exist.
func TestLACPIdentities(t *testing.T) {
	bb := lacpBond(t, BondConfig{})
	bb.bond.SetBridgeMAC([6]byte{2, 0xbb, 0, 0, 0, 1})
	actors := func() map[uint32]lacpInfo {
		out := map[uint32]lacpInfo{}
		for _, f := range bb.bond.LACPTx(bb.now) {
			a, _, ok := parseLACPDU(f.Frame)
			if !ok {
				t.Fatalf("unparsable LACPDU %x", f.Frame)
			}
			out[f.DPPort] = a
		}
		return out
	}
	def := actors()
	for port, a := range def {
		want := lacpInfo{sysPriority: 65534, sysID: [6]byte{2, 0xbb, 0, 0, 0, 1}, key: 2, portPriority: 65535, portID: uint16(port)}
		a.state = 0
		if a != want {
			t.Fatalf("default actor of port %d: %+v, want %+v", port, a, want)
		}
	}
	if len(def) != 2 {
		t.Fatalf("LACPDUs out of %v", def)
	}
	holdsAll(t, "lacp/show", bb.bond.ShowLACP(), "  sys_id: 02:bb:00:00:00:01\n  sys_priority: 65534\n  aggregation key: 2\n",
		"member: m3: defaulted detached\n  port_id: 3\n  port_priority: 65535\n")

	bb.bond.Configure(bb.bond.ports(), BondConfig{Mode: BondBalanceTCP, LACP: "active",
		LACPSystemID: [6]byte{2, 0xcc, 0, 0, 0, 7}, LACPSystemPriority: 100,
		LACPMembers: map[string]LACPMemberConfig{"m2": {PortID: 20, PortPriority: 5, Key: 77}, "m3": {PortID: 30}}})
	got := actors()
	for port, want := range map[uint32]lacpInfo{
		2: {sysPriority: 100, sysID: [6]byte{2, 0xcc, 0, 0, 0, 7}, key: 77, portPriority: 5, portID: 20},
		3: {sysPriority: 100, sysID: [6]byte{2, 0xcc, 0, 0, 0, 7}, key: 77, portPriority: 65535, portID: 30},
	} {
		a := got[port]
		a.state = 0
		if a != want {
			t.Fatalf("configured actor of port %d: %+v, want %+v", port, a, want)
		}
	}
	holdsAll(t, "lacp/show", bb.bond.ShowLACP(), "  sys_id: 02:cc:00:00:00:07\n  sys_priority: 100\n  aggregation key: 77\n",
		"member: m2: defaulted detached\n  port_id: 20\n  port_priority: 5\n",
		"member: m3: defaulted detached\n  port_id: 30\n  port_priority: 65535\n",
		"  actor sys_id: 02:cc:00:00:00:07\n  actor sys_priority: 100\n  actor port_id: 30\n  actor port_priority: 65535\n  actor key: 77\n")
	// Without an aggregation key the key member's port id is the key.
	bb.bond.Configure(bb.bond.ports(), BondConfig{Mode: BondBalanceTCP, LACP: "active",
		LACPMembers: map[string]LACPMemberConfig{"m2": {PortID: 20}}})
	if show := bb.bond.ShowLACP(); !strings.Contains(show, "  aggregation key: 20\n") {
		t.Fatalf("lacp/show with m2's port id 20:\n%s", show)
	}
}

// bondFrame6 returns an IPv6/TCP frame from src to dst, between
// addresses 2001:db8::a and 2001:db8::<host>, with source port sport.
func bondFrame6(src, dst [6]byte, host byte, sport uint16) []byte {
	f := append(append([]byte{}, dst[:]...), src[:]...)
	f = binary.BigEndian.AppendUint16(f, 0x86dd)
	f = append(f, 0x60, 0, 0, 0, 0, 20, 6, 64)
	f = append(f, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a)
	f = append(f, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, host)
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], 80)
	l4[12] = 5 << 4
	return append(f, l4...)
}

// balancedBond makes bb's bond a balance-tcp (or slb) one whose hash
// buckets alternate between m2 and m3, with basis, and hostB behind it.
func (bb *bondBridge) balanced(mode BondMode, basis uint32) {
	st := &bondState{mode: mode, lead: 2, enabled: map[uint32]bool{2: true, 3: true}, basis: basis}
	for i := range st.buckets {
		st.buckets[i] = bb.b.Config().Ports[uint32(2+i%2)]
	}
	bb.bond.st.Store(st)
	bb.b.MACs.Learn(hostB, 0, 2)
}

// TestBondBalanceTCPIPv6: balance-tcp spreads IPv6 connections between
// the same two hosts (one source MAC) over both members, by addresses,
// next header and ports, with those in the mask; each connection stays
// on one member. On main every IPv6 frame hashed by its source MAC and
// VLAN, so all went through one member.
func TestBondBalanceTCPIPv6(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondBalanceTCP})
	bb.balanced(BondBalanceTCP, 0)
	used := map[uint32]int{}
	for sport := uint16(1000); sport < 1032; sport++ {
		var first uint32
		for i := range 2 {
			outs, x := bb.send(1, bondFrame6(hostA, hostB, 2, sport))
			if len(outs) != 1 {
				t.Fatalf("connection from port %d went to %v", sport, outs)
			}
			if x.Mask.TpSrc != 0xffff || x.Mask.IPv6Src[0] != 0xff || x.Mask.IPv6Dst[15] != 0xff || x.Mask.NwProto != 0xff {
				t.Fatalf("the IPv6 hash's fields are not in the mask: %+v", x.Mask.Key)
			}
			if i == 1 && outs[0] != first {
				t.Fatalf("connection from port %d moved from %d to %d", sport, first, outs[0])
			}
			first = outs[0]
		}
		used[first]++
	}
	if used[2] == 0 || used[3] == 0 {
		t.Fatalf("32 IPv6 connections used members %v, want both", used)
	}
	// Addresses alone spread too (one source port, many hosts).
	used = map[uint32]int{}
	for host := byte(1); host < 33; host++ {
		outs, _ := bb.send(1, bondFrame6(hostA, hostB, host, 1000))
		used[outs[0]]++
	}
	if used[2] == 0 || used[3] == 0 {
		t.Fatalf("IPv6 to 32 addresses used members %v, want both", used)
	}
}

// TestBondHashBasis: bond-hash-basis is hashed with every flow, so
// another basis sends some flows through the other member, in
// balance-tcp (IPv4 and IPv6) and balance-slb; bond/show prints it. On
// main the basis was ignored (and bond/show said 0).
func TestBondHashBasis(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondBalanceTCP, HashBasis: 4000000000})
	if s := bb.bond.Show(); !strings.Contains(s, "bond-hash-basis: 4000000000\n") {
		t.Fatalf("bond/show:\n%s", s)
	}
	for _, c := range []struct {
		name  string
		mode  BondMode
		frame func(i int) []byte
	}{
		{"balance-tcp IPv4", BondBalanceTCP, func(i int) []byte { return bondFrame(hostA, hostB, uint16(1000+i)) }},
		{"balance-tcp IPv6", BondBalanceTCP, func(i int) []byte { return bondFrame6(hostA, hostB, 2, uint16(1000+i)) }},
		{"balance-slb", BondBalanceSLB, func(i int) []byte { return bondFrame([6]byte{2, 0, 0, 1, 0, byte(i)}, hostB, 1) }},
	} {
		outs := func(basis uint32) []uint32 {
			bb.balanced(c.mode, basis)
			var o []uint32
			for i := range 32 {
				got, _ := bb.send(1, c.frame(i))
				o = append(o, got...)
			}
			return o
		}
		a, b := outs(0), outs(12345)
		if len(a) != 32 || len(b) != 32 {
			t.Fatalf("%s: outputs %v and %v", c.name, a, b)
		}
		moved := 0
		for i := range a {
			if a[i] != b[i] {
				moved++
			}
		}
		if moved == 0 {
			t.Errorf("%s: basis 12345 sent all 32 flows where basis 0 did", c.name)
		}
	}
}

// TestBondTranslateIPv6Allocs: balance-tcp of an IPv6 frame allocates
// nothing once warm (a guard: main allocated nothing either, hashing it
// by MAC).
func TestBondTranslateIPv6Allocs(t *testing.T) {
	bb := newBondBridge(t, BondConfig{Mode: BondBalanceTCP})
	bb.b.Tables = nil
	bb.balanced(BondBalanceTCP, 7)
	bb.noAllocs(t, bondFrame6(hostA, hostB, 2, 1000), 1, " of IPv6")
}
