package conntrack

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"gvs/internal/packet"
)

const sec = int64(time.Second)

// TestS7Sequence: the eight packets of SCENARIOS.md S7 give the dump lines
// and states it shows.
func TestS7Sequence(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	now := int64(1000 * sec)
	steps := []struct {
		name   string
		left   bool
		frame  []byte
		state  string
		ctbits uint8
	}{
		{"syn", true, c.fromL(fSYN, nil, true), "SYN_SENT", StateTrk | StateNew},
		{"syn-ack", false, c.fromR(fSYN|fACK, nil, true), "ESTABLISHED", StateTrk | StateEst | StateRpl},
		{"ack", true, c.fromL(fACK, nil, true), "ESTABLISHED", StateTrk | StateEst},
		{"data", true, c.fromL(fPSH|fACK, []byte("x"), true), "ESTABLISHED", StateTrk | StateEst},
		{"data-ack", false, c.fromR(fACK, nil, true), "ESTABLISHED", StateTrk | StateEst | StateRpl},
		{"fin", true, c.fromL(fFIN|fACK, nil, true), "FIN_WAIT_1", StateTrk | StateEst},
		{"fin-ack", false, c.fromR(fFIN|fACK, nil, true), "LAST_ACK", StateTrk | StateEst | StateRpl},
		{"ack", true, c.fromL(fACK, nil, true), "TIME_WAIT", StateTrk | StateEst},
	}
	for i, st := range steps {
		now += sec / 10
		r := s7(t, tr, st.frame, st.left, now)
		if r.State != st.ctbits {
			t.Errorf("step %d %s: ct_state %s, want %s", i, st.name, stateString(r.State), stateString(st.ctbits))
		}
		want := "tcp,orig=(src=192.168.0.2,dst=10.0.0.2,sport=1024,dport=2048),reply=(src=10.0.0.2,dst=192.168.0.2,sport=2048,dport=1024),protoinfo=(state=" + st.state + ")"
		got := dumpLines(tr, now)
		if len(got) != 1 || got[0] != want {
			t.Errorf("step %d %s: dump %q, want %q", i, st.name, got, want)
		}
	}
}

// TestS7RetransmittedSYNIsNew: a SYN sent again before any answer is
// still +new, and the SYN-ACK of an unknown connection is +inv.
func TestS7RetransmittedSYNIsNew(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	syn := c.fromL(fSYN, nil, true)
	if r := s7(t, tr, syn, true, sec); r.State != StateTrk|StateNew {
		t.Fatalf("syn: %s", stateString(r.State))
	}
	if r := s7(t, tr, syn, true, 2*sec); r.State != StateTrk|StateNew {
		t.Fatalf("retransmitted syn: %s", stateString(r.State))
	}
	c2 := newConv()
	c2.rp = 4000
	if r := s7(t, tr, c2.fromR(fSYN|fACK, nil, true), false, 3*sec); r.State != StateTrk|StateInv {
		t.Fatalf("unsolicited syn-ack: %s, want +trk+inv", stateString(r.State))
	}
}

// TestUncommittedNotStored: ct without commit stores nothing.
func TestUncommittedNotStored(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	r := exec(t, tr, c.fromL(fSYN, nil, true), Action{}, sec)
	if r.State != StateTrk|StateNew || !r.OrigValid || r.OrigSport != 1024 || r.OrigDst != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("result %+v", r)
	}
	if n := len(dumpLines(tr, sec)); n != 0 {
		t.Fatalf("%d entries stored without commit", n)
	}
}

// TestTCPRst: an RST ends an established connection in CLOSE (CLOSING in
// the dump), and one answering a SYN removes the entry at once.
func TestTCPRst(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	now := sec
	for _, f := range []struct {
		frame []byte
		left  bool
	}{{c.fromL(fSYN, nil, true), true}, {c.fromR(fSYN|fACK, nil, true), false}, {c.fromL(fACK, nil, true), true}, {c.fromL(fRST, nil, false), true}} {
		now += sec
		s7(t, tr, f.frame, f.left, now)
	}
	got := dumpLines(tr, now)
	if len(got) != 1 || !strings.HasSuffix(got[0], "protoinfo=(state=CLOSING)") {
		t.Fatalf("after rst: %q", got)
	}
	// Closed: expires after the kernel's 10 s.
	if n := tr.Sweep(now + 11*sec); n != 1 {
		t.Fatalf("sweep removed %d, want 1", n)
	}

	c2 := newConv()
	s7(t, tr, c2.fromL(fSYN, nil, true), true, now)
	r := s7(t, tr, c2.fromR(fRST|fACK, nil, false), false, now)
	if r.State != StateTrk|StateEst|StateRpl {
		t.Fatalf("rst answering syn: %s", stateString(r.State))
	}
	if got := dumpLines(tr, now); len(got) != 0 {
		t.Fatalf("entry left after rst answering syn: %q", got)
	}
}

// TestTCPLoosePickup: a bare ACK of an unknown connection is +new and,
// committed, ESTABLISHED.
func TestTCPLoosePickup(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	r := s7(t, tr, c.fromL(fACK, []byte("abc"), true), true, sec)
	if r.State != StateTrk|StateNew {
		t.Fatalf("bare ack: %s", stateString(r.State))
	}
	if got := dumpLines(tr, sec); len(got) != 1 || !strings.HasSuffix(got[0], "state=ESTABLISHED)") {
		t.Fatalf("dump %q", got)
	}
	if r := s7(t, tr, c.fromR(fACK, nil, true), false, sec); r.State != StateTrk|StateEst|StateRpl {
		t.Fatalf("answer: %s", stateString(r.State))
	}
}

// TestTCPInvalidFlags: flag combinations the kernel refuses are +inv and
// change nothing.
func TestTCPInvalidFlags(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	s7(t, tr, c.fromL(fSYN, nil, true), true, sec)
	for _, fl := range []uint16{fSYN | fFIN, 0, fFIN, fSYN | fRST, fFIN | fRST | fACK | fSYN} {
		if r := s7(t, tr, c.fromL(fl, nil, false), true, sec); r.State != StateTrk|StateInv {
			t.Errorf("flags %#x: %s, want +trk+inv", fl, stateString(r.State))
		}
	}
	if got := dumpLines(tr, sec); len(got) != 1 || !strings.HasSuffix(got[0], "state=SYN_SENT)") {
		t.Fatalf("dump %q", got)
	}
}

// TestTCPOutOfWindow: data far beyond the receiver's window is +inv.
func TestTCPOutOfWindow(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	now := sec
	s7(t, tr, c.fromL(fSYN, nil, true), true, now)
	s7(t, tr, c.fromR(fSYN|fACK, nil, true), false, now)
	s7(t, tr, c.fromL(fACK, nil, true), true, now)
	c.lseq += 10_000_000
	if r := s7(t, tr, c.fromL(fACK|fPSH, []byte("zz"), false), true, now); r.State != StateTrk|StateInv {
		t.Fatalf("out of window: %s", stateString(r.State))
	}
	// dpctl/ct-disable-tcp-seq-chk: the same segment is let through.
	tr.SetTCPSeqCheck(false)
	if r := s7(t, tr, c.fromL(fACK|fPSH, []byte("zz"), false), true, now); r.State != StateTrk|StateEst || tr.TCPSeqCheck() {
		t.Fatalf("out of window, sequence checks off: %s", stateString(r.State))
	}
	tr.SetTCPSeqCheck(true)
	c.lseq -= 10_000_000
	if r := s7(t, tr, c.fromL(fACK|fPSH, []byte("zz"), true), true, now); r.State != StateTrk|StateEst {
		t.Fatalf("in window: %s", stateString(r.State))
	}
	// Acking data the other side never sent is +inv; an ack far behind
	// is let through (ignored), as the kernel does.
	c.rseq += 200_000
	if r := s7(t, tr, c.fromL(fACK, nil, false), true, now); r.State != StateTrk|StateInv {
		t.Fatalf("ack of unseen data: %s", stateString(r.State))
	}
	c.rseq -= 400_000
	if r := s7(t, tr, c.fromL(fACK, nil, false), true, now); r.State != StateTrk|StateEst {
		t.Fatalf("overly delayed ack: %s", stateString(r.State))
	}
}

// TestTCPCloseFromRightAndSimultaneous: FIN from the reply side, and
// both sides closing at once.
func TestTCPCloseFromRightAndSimultaneous(t *testing.T) {
	for _, simul := range []bool{false, true} {
		tr := New(Config{})
		c := newConv()
		now := sec
		s7(t, tr, c.fromL(fSYN, nil, true), true, now)
		s7(t, tr, c.fromR(fSYN|fACK, nil, true), false, now)
		s7(t, tr, c.fromL(fACK, nil, true), true, now)
		var states []string
		step := func(f []byte, left bool) {
			s7(t, tr, f, left, now)
			l := dumpLines(tr, now)
			states = append(states, l[0][strings.LastIndex(l[0], "=")+1:len(l[0])-1])
		}
		if simul {
			fl := c.fromL(fFIN|fACK, nil, true)
			fr := c.fromR(fFIN|fACK, nil, true)
			step(fl, true)
			step(fr, false)
			step(c.fromL(fACK, nil, true), true)
			step(c.fromR(fACK, nil, true), false)
		} else {
			step(c.fromR(fFIN|fACK, nil, true), false)
			step(c.fromL(fACK, nil, true), true)
			step(c.fromL(fFIN|fACK, nil, true), true)
			step(c.fromR(fACK, nil, true), false)
		}
		want := "FIN_WAIT_1 CLOSE_WAIT LAST_ACK TIME_WAIT"
		if simul {
			want = "FIN_WAIT_1 LAST_ACK TIME_WAIT TIME_WAIT"
		}
		if got := strings.Join(states, " "); got != want {
			t.Errorf("simultaneous=%v: %s, want %s", simul, got, want)
		}
	}
}

// TestTCPReopenAfterClose: a new SYN on a connection in TIME_WAIT starts
// a new connection (+new, SYN_SENT).
func TestTCPReopenAfterClose(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	now := sec
	for _, f := range []struct {
		b    []byte
		left bool
	}{
		{c.fromL(fSYN, nil, true), true}, {c.fromR(fSYN|fACK, nil, true), false}, {c.fromL(fACK, nil, true), true},
		{c.fromL(fFIN|fACK, nil, true), true}, {c.fromR(fFIN|fACK, nil, true), false}, {c.fromL(fACK, nil, true), true},
	} {
		s7(t, tr, f.b, f.left, now)
	}
	c.lseq += 100000
	r := exec(t, tr, c.fromL(fSYN, nil, true), Action{Commit: true}, now)
	if r.State != StateTrk|StateNew {
		t.Fatalf("reopening syn: %s", stateString(r.State))
	}
	if got := dumpLines(tr, now); len(got) != 1 || !strings.HasSuffix(got[0], "state=SYN_SENT)") {
		t.Fatalf("dump %q", got)
	}
}

func udpFrame(src, dst string, sp, dp uint16) []byte {
	s := seg{src: netip.MustParseAddr(src), dst: netip.MustParseAddr(dst), sport: sp, dport: dp, proto: packet.ProtoUDP, payload: []byte("hi"), srcMAC: macL, dstMAC: macR}
	return s.frame()
}

// TestUDP: unreplied then replied, with the kernel's timeouts (30 s, and
// 120 s once a replied flow lives past 2 s).
func TestUDP(t *testing.T) {
	tr := New(Config{})
	out := udpFrame("192.168.0.2", "10.0.0.2", 5000, 53)
	back := udpFrame("10.0.0.2", "192.168.0.2", 53, 5000)
	now := 100 * sec
	if r := exec(t, tr, out, Action{Commit: true}, now); r.State != StateTrk|StateNew {
		t.Fatalf("first: %s", stateString(r.State))
	}
	if r := exec(t, tr, out, Action{}, now+sec/2); r.State != StateTrk|StateNew {
		t.Fatalf("second unreplied: %s", stateString(r.State))
	}
	if r := exec(t, tr, back, Action{}, now+sec); r.State != StateTrk|StateEst|StateRpl {
		t.Fatalf("reply: %s", stateString(r.State))
	}
	if r := exec(t, tr, out, Action{}, now+3*sec); r.State != StateTrk|StateEst {
		t.Fatalf("after reply: %s", stateString(r.State))
	}
	want := "udp,orig=(src=192.168.0.2,dst=10.0.0.2,sport=5000,dport=53),reply=(src=10.0.0.2,dst=192.168.0.2,sport=53,dport=5000)"
	if got := dumpLines(tr, now+3*sec); len(got) != 1 || got[0] != want {
		t.Fatalf("dump %q, want %q", got, want)
	}
	// Stream: 120 s from the last packet.
	if n := tr.Sweep(now + 3*sec + 119*sec); n != 0 {
		t.Fatalf("stream expired early")
	}
	if n := tr.Sweep(now + 3*sec + 121*sec); n != 1 {
		t.Fatalf("stream did not expire")
	}
	// Unreplied: 30 s.
	exec(t, tr, out, Action{Commit: true}, now)
	if n := tr.Sweep(now + 29*sec); n != 0 {
		t.Fatal("unreplied expired early")
	}
	if n := tr.Sweep(now + 31*sec); n != 1 {
		t.Fatal("unreplied did not expire")
	}
}

func icmpFrame(src, dst string, typ, code uint8, id uint16, quote []byte) []byte {
	s := seg{src: netip.MustParseAddr(src), dst: netip.MustParseAddr(dst), icmpType: typ, icmpCode: code, icmpID: id, icmpQuote: quote, srcMAC: macL, dstMAC: macR}
	if s.src.Is4() {
		s.proto = packet.ProtoICMPv4
	} else {
		s.proto = packet.ProtoICMPv6
	}
	return s.frame()
}

// TestICMPEcho: echo request and reply, IPv4 and IPv6; a reply without a
// request is +inv.
func TestICMPEcho(t *testing.T) {
	tr := New(Config{})
	for _, fam := range []struct {
		a, b     string
		req, rep uint8
		name     string
	}{
		{"192.168.0.2", "10.0.0.2", 8, 0, "icmp"},
		{"fd00::2", "fd01::2", 128, 129, "icmpv6"},
	} {
		if r := exec(t, tr, icmpFrame(fam.a, fam.b, fam.rep, 0, 7, nil), Action{Commit: true}, sec); r.State != StateTrk|StateInv {
			t.Errorf("%s: lone reply %s", fam.name, stateString(r.State))
		}
		if r := exec(t, tr, icmpFrame(fam.a, fam.b, fam.req, 0, 7, nil), Action{Commit: true}, sec); r.State != StateTrk|StateNew {
			t.Errorf("%s: request %s", fam.name, stateString(r.State))
		}
		if r := exec(t, tr, icmpFrame(fam.b, fam.a, fam.rep, 0, 7, nil), Action{}, sec); r.State != StateTrk|StateEst|StateRpl {
			t.Errorf("%s: reply %s", fam.name, stateString(r.State))
		}
	}
	got := dumpLines(tr, sec)
	want := map[string]bool{
		// OVS 3.1 prints type and code without -m too.
		"icmp,orig=(src=192.168.0.2,dst=10.0.0.2,id=7,type=8,code=0),reply=(src=10.0.0.2,dst=192.168.0.2,id=7,type=0,code=0)": true,
		"icmpv6,orig=(src=fd00::2,dst=fd01::2,id=7,type=128,code=0),reply=(src=fd01::2,dst=fd00::2,id=7,type=129,code=0)":     true,
	}
	for _, l := range got {
		if !want[l] {
			t.Errorf("unexpected dump line %q", l)
		}
	}
	if len(got) != 2 {
		t.Errorf("dump %q", got)
	}
	var verbose []string
	tr.DumpAt(nil, true, sec, func(e Entry) {
		if e.Orig.Proto == packet.ProtoICMPv4 {
			verbose = append(verbose, FormatEntry(e, true))
		}
	})
	if len(verbose) != 1 || !strings.Contains(verbose[0], "id=7,type=8,code=0),reply=(src=10.0.0.2,dst=192.168.0.2,id=7,type=0,code=0),id=") ||
		!strings.Contains(verbose[0], "status=SEEN_REPLY|CONFIRMED") {
		t.Errorf("verbose %q", verbose)
	}
}

// TestICMPErrorRelated: a port unreachable quoting a tracked UDP packet
// is +rel (+rpl: it travels in the reply direction); one quoting nothing
// tracked is +inv.
func TestICMPErrorRelated(t *testing.T) {
	tr := New(Config{})
	out := udpFrame("192.168.0.2", "10.0.0.2", 5000, 53)
	exec(t, tr, out, Action{Commit: true, SetMark: true, Mark: 9, MarkMask: ^uint32(0)}, sec)
	quote := out[14 : 14+28]
	r := exec(t, tr, icmpFrame("10.0.0.2", "192.168.0.2", 3, 3, 0, quote), Action{}, sec)
	if r.State != StateTrk|StateRel|StateRpl || r.Mark != 9 {
		t.Fatalf("icmp error: %s mark %d", stateString(r.State), r.Mark)
	}
	other := udpFrame("192.168.0.2", "10.0.0.2", 5001, 53)
	r = exec(t, tr, icmpFrame("10.0.0.2", "192.168.0.2", 3, 3, 0, other[14:14+28]), Action{}, sec)
	if r.State != StateTrk|StateInv {
		t.Fatalf("icmp error for nothing: %s", stateString(r.State))
	}
}

// TestZonesMarkLabel: zones keep identical tuples apart; mark and label
// set at commit come back with later packets and in the dump.
func TestZonesMarkLabel(t *testing.T) {
	tr := New(Config{})
	out := udpFrame("192.168.0.2", "10.0.0.2", 5000, 53)
	var label [16]byte
	label[15] = 0xab
	label[14] = 0x1
	exec(t, tr, out, Action{Zone: 1, Commit: true, SetMark: true, Mark: 5, MarkMask: 0xff}, sec)
	exec(t, tr, out, Action{Zone: 2, Commit: true, SetLabel: true, Label: label, LabelMask: [16]byte{14: 0xff, 15: 0xff}}, sec)
	if r := exec(t, tr, out, Action{Zone: 1}, sec); r.Mark != 5 || r.Label != ([16]byte{}) || r.Zone != 1 || r.State != StateTrk|StateNew {
		t.Fatalf("zone 1: %+v", r)
	}
	if r := exec(t, tr, out, Action{Zone: 2}, sec); r.Mark != 0 || r.Label != label {
		t.Fatalf("zone 2: %+v", r)
	}
	if r := exec(t, tr, out, Action{Zone: 3}, sec); r.State != StateTrk|StateNew || r.Mark != 0 {
		t.Fatalf("zone 3: %+v", r)
	}
	z := uint16(2)
	var got []string
	tr.DumpAt(&z, false, sec, func(e Entry) { got = append(got, FormatEntry(e, false)) })
	want := "udp,orig=(src=192.168.0.2,dst=10.0.0.2,sport=5000,dport=53),reply=(src=10.0.0.2,dst=192.168.0.2,sport=53,dport=5000),zone=2,labels=0x1ab"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("zone 2 dump %q, want %q", got, want)
	}
	if n := tr.Flush(&z, nil); n != 1 || len(dumpLines(tr, sec)) != 1 {
		t.Fatalf("flush zone 2: %d", n)
	}
}

// TestForce: ct(commit,force) on a packet of the reply direction ends the
// connection and starts a new one in that direction.
func TestForce(t *testing.T) {
	tr := New(Config{})
	out := udpFrame("192.168.0.2", "10.0.0.2", 5000, 53)
	back := udpFrame("10.0.0.2", "192.168.0.2", 53, 5000)
	exec(t, tr, out, Action{Commit: true}, sec)
	r := exec(t, tr, back, Action{Commit: true, Force: true}, sec)
	if r.State != StateTrk|StateNew || r.OrigSrc != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("force: %s %v", stateString(r.State), r.OrigSrc)
	}
	got := dumpLines(tr, sec)
	if len(got) != 1 || !strings.HasPrefix(got[0], "udp,orig=(src=10.0.0.2") {
		t.Fatalf("dump %q", got)
	}
	// Without force the reply direction is just +est+rpl.
	if r := exec(t, tr, out, Action{Commit: true}, sec); r.State != StateTrk|StateEst|StateRpl {
		t.Fatalf("no force: %s", stateString(r.State))
	}
}

// TestLimits: a zone limit of N refuses the N+1st connection and counts
// it, while the first N keep working; the global limit likewise.
func TestLimits(t *testing.T) {
	tr := New(Config{})
	if err := tr.SetZoneLimit(4, 2); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := exec(t, tr, udpFrame("192.168.0.2", "10.0.0.2", uint16(6000+i), 53), Action{Zone: 4, Commit: true}, sec)
		if (i == 2) != r.LimitDrop {
			t.Fatalf("conn %d: LimitDrop %v", i, r.LimitDrop)
		}
	}
	if r := exec(t, tr, udpFrame("10.0.0.2", "192.168.0.2", 53, 6000), Action{Zone: 4}, sec); r.State != StateTrk|StateEst|StateRpl {
		t.Fatalf("existing conn at limit: %s", stateString(r.State))
	}
	if st := tr.Stats(); st.LimitDrops != 1 || st.Conns != 2 || st.ByProto["udp"] != 2 {
		t.Fatalf("stats %+v", st)
	}
	zl := tr.ZoneLimits()
	if len(zl) != 2 || !zl[0].Default || zl[1].Zone != 4 || zl[1].Limit != 2 || zl[1].Count != 2 {
		t.Fatalf("zone limits %+v", zl)
	}
	tr.DelZoneLimit(4)
	if r := exec(t, tr, udpFrame("192.168.0.2", "10.0.0.2", 7000, 53), Action{Zone: 4, Commit: true}, sec); r.LimitDrop {
		t.Fatal("limit still applied after DelZoneLimit")
	}
	tr.SetMaxConns(3)
	if r := exec(t, tr, udpFrame("192.168.0.2", "10.0.0.2", 7001, 53), Action{Commit: true}, sec); !r.LimitDrop {
		t.Fatal("global limit not applied")
	}
	if err := tr.SetZoneLimit(1, 1<<31); err == nil {
		t.Fatal("oversized limit accepted")
	}
}

// TestLimitRecirculated: through S7's flows (ct(table=0), then
// ct(commit) of the recirculated +new packet) a commit at the zone's
// limit is refused with the same result as a fresh packet's, and counted
// once; a retransmitted SYN of a connection committed before the limit
// was reached is not refused, nor are connections of another zone.
func TestLimitRecirculated(t *testing.T) {
	tr := New(Config{})
	if err := tr.SetZoneLimit(0, 1); err != nil {
		t.Fatal(err)
	}
	first := newConv()
	syn := first.fromL(packet.TCPFlagSYN, nil, false)
	if r := s7(t, tr, syn, true, sec); r.Drop || r.State != StateTrk|StateNew {
		t.Fatalf("first SYN: %s drop %v", stateString(r.State), r.Drop)
	}
	flood := newConv()
	flood.lp = 4000
	fsyn := flood.fromL(packet.TCPFlagSYN, nil, false)
	fresh := exec(t, tr, fsyn, Action{Commit: true}, sec)
	recirc := s7(t, tr, fsyn, true, sec)
	if !recirc.Drop || !recirc.LimitDrop || recirc != fresh {
		t.Fatalf("refused commit after recirculation:\n%+v\nwant\n%+v", recirc, fresh)
	}
	if st := tr.Stats(); st.LimitDrops != 2 || st.Conns != 1 {
		t.Fatalf("stats %+v, want 2 refused commits and 1 connection", st)
	}
	// The first connection's SYN again: +new, but it exists.
	if r := s7(t, tr, syn, true, 2*sec); r.Drop || r.State != StateTrk|StateNew {
		t.Fatalf("retransmitted SYN at the limit: %s drop %v", stateString(r.State), r.Drop)
	}
	var key packet.Key
	var off packet.Offsets
	if err := packet.Parse(fsyn, 1, &key, &off); err != nil {
		t.Fatal(err)
	}
	r := tr.Execute(fsyn, &key, &off, &Action{Zone: 3}, sec)
	key.CtState, key.CtZone = r.State, r.Zone
	if r = tr.Execute(fsyn, &key, &off, &Action{Zone: 3, Commit: true}, sec); r.Drop {
		t.Fatal("zone 0's limit refused a commit in zone 3")
	}
	if n := tr.ZoneCount(3); n != 1 {
		t.Fatalf("zone 3 holds %d connections, want 1", n)
	}
}

// TestNoAllocSYNFlood: a SYN flood's packet refused at the limit through
// S7's flows allocates nothing.
func TestNoAllocSYNFlood(t *testing.T) {
	tr, frame, key, off := synFlood(t)
	track, commit := Action{}, Action{Commit: true}
	n := testing.AllocsPerRun(1000, func() {
		key.CtState, key.CtZone = 0, 0
		r := tr.Execute(frame, key, off, &track, 2*sec)
		key.CtState, key.CtZone = r.State, r.Zone
		if r = tr.Execute(frame, key, off, &commit, 2*sec); !r.LimitDrop {
			t.Fatalf("not refused: %s", stateString(r.State))
		}
	})
	if n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}

// TestFlushTuple removes one connection by its original tuple.
func TestFlushTuple(t *testing.T) {
	tr := New(Config{})
	exec(t, tr, udpFrame("192.168.0.2", "10.0.0.2", 5000, 53), Action{Commit: true}, sec)
	exec(t, tr, udpFrame("192.168.0.2", "10.0.0.2", 5001, 53), Action{Commit: true}, sec)
	tu := Tuple{Src: netip.MustParseAddr("192.168.0.2"), Dst: netip.MustParseAddr("10.0.0.2"), Proto: packet.ProtoUDP, SrcPort: 5001, DstPort: 53}
	if n := tr.Flush(nil, &tu); n != 1 {
		t.Fatalf("flush tuple removed %d", n)
	}
	if n := tr.Flush(nil, nil); n != 1 {
		t.Fatalf("flush all removed %d", n)
	}
}

// TestFragmentsInvalid: IP fragments are not reassembled; they are +inv.
func TestFragmentsInvalid(t *testing.T) {
	tr := New(Config{})
	f := udpFrame("192.168.0.2", "10.0.0.2", 5000, 53)
	f[14+6] = 0x20 // MF
	f[14+10], f[14+11] = 0, 0
	if r := exec(t, tr, f, Action{Commit: true}, sec); r.State != StateTrk|StateInv {
		t.Fatalf("fragment: %s", stateString(r.State))
	}
}

// TestIPv6TCP: the S7 handshake over IPv6.
func TestIPv6TCP(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	c.l, c.r = netip.MustParseAddr("fd00::2"), netip.MustParseAddr("fd01::2")
	s7(t, tr, c.fromL(fSYN, nil, true), true, sec)
	s7(t, tr, c.fromR(fSYN|fACK, nil, true), false, sec)
	r := s7(t, tr, c.fromL(fACK, nil, true), true, sec)
	if r.State != StateTrk|StateEst {
		t.Fatalf("ack: %s", stateString(r.State))
	}
	want := "tcp,orig=(src=fd00::2,dst=fd01::2,sport=1024,dport=2048),reply=(src=fd01::2,dst=fd00::2,sport=2048,dport=1024),protoinfo=(state=ESTABLISHED)"
	if got := dumpLines(tr, sec); len(got) != 1 || got[0] != want {
		t.Fatalf("dump %q", got)
	}
}

// TestManyConnsIndex exercises index growth and backward-shift deletion.
func TestManyConnsIndex(t *testing.T) {
	tr := New(Config{Shards: 2})
	const n = 5000
	frames := make([][]byte, n)
	for i := range n {
		frames[i] = udpFrame(fmt.Sprintf("10.%d.%d.1", i>>8, i&255), "10.0.0.2", uint16(i), 53)
		exec(t, tr, frames[i], Action{Commit: true}, sec)
	}
	if st := tr.Stats(); st.Conns != n {
		t.Fatalf("%d conns", st.Conns)
	}
	// Remove every other one by expiring half: re-touch the odd ones.
	for i := 1; i < n; i += 2 {
		exec(t, tr, frames[i], Action{}, 20*sec)
	}
	if got := tr.Sweep(40 * sec); got != n/2 {
		t.Fatalf("swept %d", got)
	}
	if st := tr.Stats(); st.Conns != n/2 {
		t.Fatalf("%d conns after sweep", st.Conns)
	}
	for i := range n {
		back := udpFrame("10.0.0.2", fmt.Sprintf("10.%d.%d.1", i>>8, i&255), 53, uint16(i))
		r := exec(t, tr, back, Action{}, 41*sec)
		want := i%2 == 1
		if (r.State&StateRpl != 0) != want {
			t.Fatalf("conn %d: %s, stored %v", i, stateString(r.State), want)
		}
	}
}

// TestZoneTimeouts: a zone's own timeouts (CT_Timeout_Policy) apply to
// its connections only.
func TestZoneTimeouts(t *testing.T) {
	tr := New(Config{})
	tm := DefaultTimeouts()
	tm.UDP = 5 * sec
	tr.SetZoneTimeouts(7, &tm)
	out := udpFrame("192.168.0.2", "10.0.0.2", 5000, 53)
	exec(t, tr, out, Action{Zone: 7, Commit: true}, sec)
	exec(t, tr, out, Action{Zone: 8, Commit: true}, sec)
	if n := tr.Sweep(7 * sec); n != 1 {
		t.Fatalf("swept %d, want the zone-7 connection only", n)
	}
	tr.SetZoneTimeouts(7, nil)
	exec(t, tr, out, Action{Zone: 7, Commit: true}, 10*sec)
	if n := tr.Sweep(16 * sec); n != 0 {
		t.Fatalf("zone 7 kept its own timeout after reset")
	}
}

// TestFormatVerboseAndStats: the -m and -s forms of a TCP entry.
func TestFormatVerboseAndStats(t *testing.T) {
	tr := New(Config{})
	c := newConv()
	s7(t, tr, c.fromL(fSYN, nil, true), true, sec)
	var e Entry
	tr.DumpAt(nil, true, sec, func(x Entry) { e = x })
	got := FormatEntryStats(e, true, true)
	want := fmt.Sprintf("tcp,orig=(src=192.168.0.2,dst=10.0.0.2,sport=1024,dport=2048),reply=(src=10.0.0.2,dst=192.168.0.2,sport=2048,dport=1024),id=%d,status=CONFIRMED,timeout=120,protoinfo=(state_orig=SYN_SENT,state_reply=SYN_SENT,flags_orig=,flags_reply=)", e.ID)
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	e.Mark, e.Zone = 7, 3
	if got := FormatEntry(e, false); !strings.Contains(got, "),zone=3,mark=7,protoinfo=(state=SYN_SENT)") {
		t.Fatalf("got %s", got)
	}
}
