package ofproto

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// conjKey4 is a TCP/IPv4 key from 10.0.0.src to 10.0.0.9, port dst,
// entering on port in.
func conjKey4(in uint32, src byte, dst uint16) packet.Key {
	return packet.Key{InPort: in, DlType: packet.EtherTypeIPv4, NwProto: 6, NwTTL: 64,
		NwSrc: [4]byte{10, 0, 0, src}, NwDst: [4]byte{10, 0, 0, 9}, TpSrc: 1000, TpDst: dst}
}

// lookupText is the text of the flow table 0 gives k ("" for a miss).
func lookupText(tb *Tables, k packet.Key) string {
	r := tb.Lookup(0, &k, nil)
	if r == nil {
		return ""
	}
	return r.Flow().String()
}

// neutronFlows is an allow list as Neutron's OVS firewall writes one:
// ip_src in {.1,.2} x tcp_dst in {22,80} -> conj_id 1 -> NORMAL.
var neutronFlows = []string{
	"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2)",
	"priority=10,ip,nw_src=10.0.0.2,actions=conjunction(1,1/2)",
	"priority=10,tcp,tp_dst=22,actions=conjunction(1,2/2)",
	"priority=10,tcp,tp_dst=80,actions=conjunction(1,2/2)",
	"priority=10,conj_id=1,tcp,actions=NORMAL",
	"priority=0,actions=drop",
}

func TestConjunctionTwoDimensions(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb, neutronFlows...)
	for _, src := range []byte{1, 2, 3} {
		for _, dst := range []uint16{22, 80, 443} {
			want := "priority=0 actions=drop"
			if src != 3 && dst != 443 {
				want = "priority=10,conj_id=1,tcp actions=NORMAL"
			}
			if got := lookupText(tb, conjKey4(1, src, dst)); got != want {
				t.Errorf("10.0.0.%d -> port %d: %q, want %q", src, dst, got, want)
			}
		}
	}
}

func TestConjunctionThreeDimensions(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb,
		"priority=10,in_port=1,actions=conjunction(7,3/3)",
		"priority=10,in_port=2,actions=conjunction(7,3/3)",
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(7,1/3)",
		"priority=10,ip,nw_src=10.0.0.2,actions=conjunction(7,1/3)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(7,2/3)",
		"conj_id=7,actions=output:4",
	)
	for _, in := range []uint32{1, 2, 3} {
		for _, src := range []byte{1, 2, 3} {
			for _, dst := range []uint16{22, 80} {
				want := ""
				if in != 3 && src != 3 && dst == 22 {
					want = "conj_id=7 actions=output:4"
				}
				if got := lookupText(tb, conjKey4(in, src, dst)); got != want {
					t.Errorf("in %d, 10.0.0.%d, port %d: %q, want %q", in, src, dst, got, want)
				}
			}
		}
	}
}

// TestConjunctionPriorities checks a conjunction against ordinary flows,
// as OVS 3.1's ofproto/trace answered for the same flows: a higher
// ordinary flow wins, an incomplete conjunction lets a lower one through.
func TestConjunctionPriorities(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb,
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(1,2/2)",
		"conj_id=1,actions=output:2",
		"priority=15,tcp,tp_dst=22,nw_dst=10.0.0.9,actions=output:3",
		"priority=5,tcp,actions=output:1",
	)
	k := conjKey4(2, 1, 22)
	if got := lookupText(tb, k); got != "priority=15,tcp,nw_dst=10.0.0.9,tp_dst=22 actions=output:3" {
		t.Errorf("higher ordinary flow: got %q", got)
	}
	k.NwDst[3] = 8
	if got := lookupText(tb, k); got != "conj_id=1 actions=output:2" {
		t.Errorf("complete conjunction: got %q", got)
	}
	k.NwSrc[3] = 2
	if got := lookupText(tb, k); got != "priority=5,tcp actions=output:1" {
		t.Errorf("incomplete conjunction: got %q", got)
	}
}

// TestConjunctionFallsThrough checks an incomplete conjunction and one
// without its conj_id flow, as OVS 3.1 answered: the search for conj_id
// takes any ordinary flow (the catch-all) when there is one, else goes
// on to the lower conjunction.
func TestConjunctionFallsThrough(t *testing.T) {
	lower := []string{
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(2,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(2,2/2)",
		"priority=5,ip,nw_src=10.0.0.1,actions=conjunction(3,1/2)",
		"priority=5,tcp,tp_dst=22,actions=conjunction(3,2/2)",
		"conj_id=3,actions=output:1",
	}
	tb, _ := newTestTables(t)
	addFlows(t, tb, lower...)
	if got := lookupText(tb, conjKey4(2, 1, 22)); got != "conj_id=3 actions=output:1" {
		t.Errorf("no conj_id=2 flow, no catch-all: got %q, want the lower conjunction's", got)
	}
	addFlows(t, tb, "priority=0,actions=output:3")
	if got := lookupText(tb, conjKey4(2, 1, 22)); got != "priority=0 actions=output:3" {
		t.Errorf("no conj_id=2 flow, a catch-all: got %q, want the catch-all", got)
	}
	addFlows(t, tb, "conj_id=2,actions=output:4")
	if got := lookupText(tb, conjKey4(2, 1, 22)); got != "conj_id=2 actions=output:4" {
		t.Errorf("with conj_id=2: got %q", got)
	}
	// Incomplete at 10 (port 23 has no clause): clause flows of 10 and 5
	// alike are incomplete, the catch-all answers.
	if got := lookupText(tb, conjKey4(2, 1, 23)); got != "priority=0 actions=output:3" {
		t.Errorf("incomplete: got %q", got)
	}
	// Deleting a clause flow makes the conjunction incomplete.
	tb.Delete(Selector{Table: 0, Match: mustMatch(t, "tcp,tp_dst=22"), Priority: 10, Strict: true})
	if got := lookupText(tb, conjKey4(2, 1, 22)); got != "conj_id=3 actions=output:1" {
		t.Errorf("after deleting a clause of 2: got %q", got)
	}
}

// TestConjunctionSharedClauses checks clause flows in several
// conjunctions, and OVS 3.1's answers for mismatched n and for a
// single flow holding every clause.
func TestConjunctionSharedClauses(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb,
		// A: {1,2} x {22}; B: {2,3} x {80}: 10.0.0.2 is in both.
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(10,1/2)",
		"priority=10,ip,nw_src=10.0.0.2,actions=conjunction(10,1/2),note:aa,conjunction(11,1/2)",
		"priority=10,ip,nw_src=10.0.0.3,actions=conjunction(11,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(10,2/2)",
		"priority=10,tcp,tp_dst=80,actions=conjunction(11,2/2)",
		"conj_id=10,actions=output:1",
		"conj_id=11,actions=output:2",
		"priority=0,actions=drop",
	)
	for _, c := range []struct {
		src  byte
		dst  uint16
		want string
	}{
		{1, 22, "conj_id=10 actions=output:1"}, {2, 22, "conj_id=10 actions=output:1"},
		{2, 80, "conj_id=11 actions=output:2"}, {3, 80, "conj_id=11 actions=output:2"},
		{1, 80, "priority=0 actions=drop"}, {3, 22, "priority=0 actions=drop"},
	} {
		if got := lookupText(tb, conjKey4(4, c.src, c.dst)); got != c.want {
			t.Errorf("10.0.0.%d port %d: %q, want %q", c.src, c.dst, got, c.want)
		}
	}

	tb, _ = newTestTables(t)
	addFlows(t, tb,
		"priority=10,ip,nw_src=10.0.0.1,actions=conjunction(7,1/2)",
		"priority=10,tcp,tp_dst=22,actions=conjunction(7,2/3)",
		"conj_id=7,actions=output:2")
	if got := lookupText(tb, conjKey4(1, 1, 22)); got != "" {
		t.Errorf("clauses of different n completed each other: %q", got)
	}
	addFlows(t, tb, "priority=10,tcp,tp_src=1000,actions=conjunction(7,2/2)")
	if got := lookupText(tb, conjKey4(1, 1, 22)); got != "conj_id=7 actions=output:2" {
		t.Errorf("with a clause 2/2: %q", got)
	}

	tb, _ = newTestTables(t)
	addFlows(t, tb, "priority=10,ip,actions=conjunction(8,1/2),conjunction(8,2/2)", "conj_id=8,actions=output:2")
	if got := lookupText(tb, conjKey4(1, 1, 22)); got != "" {
		t.Errorf("a lone flow with both clauses matched: %q", got)
	}
	addFlows(t, tb, "priority=10,tcp,actions=conjunction(9,1/2)")
	if got := lookupText(tb, conjKey4(1, 1, 22)); got != "conj_id=8 actions=output:2" {
		t.Errorf("with another clause flow beside it: %q", got)
	}
}

// TestConjunctionMaskProperty is the property a megaflow needs: any key
// that agrees with a looked-up key on the wildcards Lookup reported gets
// the same flow. A mask too wide (a clause's field left out) fails it.
func TestConjunctionMaskProperty(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb, neutronFlows...)
	addFlows(t, tb,
		"priority=20,in_port=3,ip,nw_src=10.0.0.1,actions=conjunction(2,1/2)",
		"priority=20,udp,tp_dst=53,actions=conjunction(2,2/2)",
		"conj_id=2,actions=output:3",
		"priority=5,udp,actions=output:4",
	)
	rng := rand.New(rand.NewSource(1))
	random := func() packet.Key {
		k := conjKey4(uint32(1+rng.Intn(3)), byte(1+rng.Intn(3)), []uint16{22, 53, 80, 443}[rng.Intn(4)])
		if rng.Intn(2) == 0 {
			k.NwProto = 17
		}
		k.NwDst[3] = byte(8 + rng.Intn(2))
		k.TpSrc = uint16(1000 + rng.Intn(2))
		return k
	}
	// mutate draws b again field by field, each with probability 1/3.
	fields := []func(b, r *packet.Key){
		func(b, r *packet.Key) { b.InPort = r.InPort },
		func(b, r *packet.Key) { b.NwSrc = r.NwSrc },
		func(b, r *packet.Key) { b.NwDst = r.NwDst },
		func(b, r *packet.Key) { b.NwProto = r.NwProto },
		func(b, r *packet.Key) { b.TpSrc = r.TpSrc },
		func(b, r *packet.Key) { b.TpDst = r.TpDst },
	}
	mutate := func(a packet.Key) packet.Key {
		b, r := a, random()
		for _, set := range fields {
			if rng.Intn(3) == 0 {
				set(&b, &r)
			}
		}
		return b
	}
	compared := 0
	for range 20000 {
		a := random()
		b := mutate(a)
		var wc packet.Key
		ra := tb.Lookup(0, &a, &wc)
		aw, bw, mw := words(&a), words(&b), words(&wc)
		same := true
		for i := range aw {
			if (aw[i]^bw[i])&mw[i] != 0 {
				same = false
			}
		}
		if !same {
			continue
		}
		compared++
		if rb := tb.Lookup(0, &b, nil); rb != ra {
			show := func(k packet.Key) string {
				return fmt.Sprintf("in_port=%d,nw_proto=%d,nw_src=%v,nw_dst=%v,tp_src=%d,tp_dst=%d", k.InPort, k.NwProto, k.NwSrc, k.NwDst, k.TpSrc, k.TpDst)
			}
			t.Fatalf("keys agreeing on the wildcards get different flows:\n%s -> %v\n%s -> %v", show(a), describe(ra), show(b), describe(rb))
		}
	}
	if compared < 1000 {
		t.Fatalf("only %d pairs agreed on the wildcards", compared)
	}
	// The allowed pair's wildcards hold both dimensions' fields.
	k := conjKey4(1, 1, 22)
	var wc packet.Key
	tb.Lookup(0, &k, &wc)
	if wc.NwSrc != [4]byte{255, 255, 255, 255} || wc.TpDst != 0xffff {
		t.Errorf("wildcards of a conjunctive match: nw_src %v tp_dst %#x, want both exact", wc.NwSrc, wc.TpDst)
	}
}

// TestTranslateMaskPropertyWithConjunction is the mask property through
// Translate, with a conjunction deciding between NORMAL and drop.
func TestTranslateMaskPropertyWithConjunction(t *testing.T) {
	b, nports := propBridge(t, 2)
	addFlow(t, b, "priority=100,ip,nw_src=10.0.0.1,actions=conjunction(5,1/2)")
	addFlow(t, b, "priority=100,tcp,tp_dst=80,actions=conjunction(5,2/2)")
	addFlow(t, b, "priority=100,udp,tp_dst=81,actions=conjunction(5,2/2)")
	addFlow(t, b, "conj_id=5,actions=drop")
	checkMaskPairs(t, b, nports, 5)
	// The conjunction decides: 10.0.0.1 to port 80 is dropped, 10.0.0.2
	// is switched.
	in := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}
	out := in
	out.nwSrc = 2
	if _, x := translateSpec(b, in); len(x.Actions) != 0 {
		t.Errorf("10.0.0.1 port 80 not dropped: %s", datapath.FormatActions(x.Actions, nil))
	}
	if _, x := translateSpec(b, out); len(x.Actions) == 0 {
		t.Error("10.0.0.2 port 80 dropped too")
	}
}

// TestConjunctionCounts checks that the conj_id flow counts a packet
// and the clause flows do not, as in OVS (ovs-fields(7)).
func TestConjunctionCounts(t *testing.T) {
	b := ofBridge(t)
	addFlow(t, b, "priority=10,ip,nw_src=10.0.0.1,actions=conjunction(1,1/2)")
	addFlow(t, b, "priority=10,tcp,tp_dst=80,actions=conjunction(1,2/2)")
	addFlow(t, b, "conj_id=1,actions=output:2")
	_, x := translateSpec(b, frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80})
	if got := datapath.FormatActions(x.Actions, nil); got != "2" {
		t.Fatalf("actions %s, want 2", got)
	}
	var counted []string
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectAccount {
			counted = append(counted, e.Accounter.(*Rule).Flow().String())
		}
	}
	if want := []string{"conj_id=1 actions=output:2"}; !reflect.DeepEqual(counted, want) {
		t.Errorf("counted %q, want %q", counted, want)
	}
}

func TestConjunctionBadFlowsAndLimits(t *testing.T) {
	tb, _ := newTestTables(t)
	err := tb.Add(mustFlowActions(t, "priority=1,actions=note:aa", "conjunction(1,1/2)", "output:2"))
	if !errors.Is(err, ErrBadConjunction) {
		t.Errorf("conjunction with output: %v, want ErrBadConjunction", err)
	}
	defer func(a, b, c int) { maxConjPerFlow, maxConjIDs, maxClausesPerID = a, b, c }(maxConjPerFlow, maxConjIDs, maxClausesPerID)
	maxConjPerFlow, maxConjIDs, maxClausesPerID = 2, 3, 2
	addFlows(t, tb, "priority=1,ip,actions=conjunction(1,1/2),conjunction(2,1/2)",
		"priority=1,tcp,actions=conjunction(1,2/2)")
	for _, c := range []struct{ flow, want string }{
		{"priority=1,udp,actions=conjunction(5,1/2),conjunction(6,1/2),conjunction(7,1/2)", "3 conjunction actions in one flow, at most 2"},
		{"priority=1,udp,actions=conjunction(1,2/2)", "conjunction 1: 3 clause actions, at most 2"},
		{"priority=1,udp,actions=conjunction(3,1/2),conjunction(4,1/2)", "4 conjunction ids, at most 3"},
	} {
		err := tb.Add(mustFlow(t, c.flow))
		if !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.flow, err, c.want)
		}
	}
	// Replacing a clause flow in place reuses its room; so does modify.
	addFlows(t, tb, "priority=1,tcp,actions=conjunction(1,2/2),conjunction(3,2/2)")
	if _, err := tb.Modify(Modify{Selector: Selector{Table: 0, Match: mustMatch(t, "udp")}, Actions: mustFlow(t, "actions=conjunction(1,1/2)").Actions}); err != nil {
		t.Errorf("modify selecting nothing: %v", err)
	}
	// tcp's ids 1 and 3 become 8 and 9: 1 stays (ip's), 4 ids.
	if _, err := tb.Modify(Modify{Selector: Selector{Table: 0, Match: mustMatch(t, "tcp"), Strict: true, Priority: 1}, Actions: mustFlow(t, "actions=conjunction(9,2/2),conjunction(8,2/2)").Actions}); !errors.Is(err, ErrTableFull) {
		t.Errorf("modify past the id limit: %v", err)
	}
	// Modify turns a clause flow into an ordinary one and back.
	addFlows(t, tb, "conj_id=1,actions=output:3")
	if _, err := tb.Modify(Modify{Selector: Selector{Table: 0, Match: mustMatch(t, "tcp"), Strict: true, Priority: 1}, Actions: mustFlow(t, "actions=output:4").Actions}); err != nil {
		t.Fatal(err)
	}
	if got := lookupText(tb, conjKey4(1, 1, 22)); got != "priority=1,tcp actions=output:4" {
		t.Errorf("after modify to output:4: %q", got)
	}
	if _, err := tb.Modify(Modify{Selector: Selector{Table: 0, Match: mustMatch(t, "tcp"), Strict: true, Priority: 1}, Actions: mustFlow(t, "actions=conjunction(1,2/2)").Actions}); err != nil {
		t.Fatal(err)
	}
	if got := lookupText(tb, conjKey4(1, 1, 22)); got != "conj_id=1 actions=output:3" {
		t.Errorf("after modify back to a clause: %q", got)
	}
}

// mustFlowActions builds a flow past the parser's own check (which
// refuses a conjunction beside other actions), as a controller's flow
// mod could reach the tables.
func mustFlowActions(t *testing.T, base string, acts ...string) *flow.Flow {
	t.Helper()
	f := mustFlow(t, base)
	for _, a := range acts {
		f.Actions = append(f.Actions, mustFlow(t, "actions="+a).Actions...)
	}
	return f
}

func TestConjunctionLookupDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random")
	}
	tb, _ := newTestTables(t)
	addFlows(t, tb, neutronFlows...)
	keys := []packet.Key{conjKey4(1, 1, 22), conjKey4(1, 3, 22), conjKey4(1, 1, 443)}
	for _, k := range keys {
		tb.Lookup(0, &k, nil)
	}
	var wc packet.Key
	allocs := testing.AllocsPerRun(1000, func() {
		for i := range keys {
			tb.Lookup(0, &keys[i], &wc)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per lookup round", allocs)
	}
}

// BenchmarkClassifierConjunction is a lookup in a Neutron-style allow
// list: 200 source addresses x 50 ports as 250 clause flows (the 10,000
// flows it replaces), half the keys allowed, above a catch-all.
func BenchmarkClassifierConjunction(b *testing.B) {
	tb := NewTables(TablesOptions{})
	add := func(s string) {
		f, err := flow.ParseFlow(s, flow.ParseOptions{})
		if err == nil {
			err = tb.Add(f)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	for i := range 200 {
		add(fmt.Sprintf("priority=10,ip,nw_src=10.1.%d.%d,actions=conjunction(1,1/2)", i/100, i%100+1))
	}
	for p := range 50 {
		add(fmt.Sprintf("priority=10,tcp,tp_dst=%d,actions=conjunction(1,2/2)", 1000+p))
	}
	add("priority=10,conj_id=1,tcp,actions=NORMAL")
	add("priority=0,actions=drop")
	keys := make([]packet.Key, 4096)
	r := rand.New(rand.NewSource(1))
	for i := range keys {
		k := conjKey4(1, 0, uint16(1000+r.Intn(100)))
		n := r.Intn(200)
		k.NwSrc = [4]byte{10, 1, byte(n / 100), byte(n%100 + 1)}
		keys[i] = k
	}
	b.ReportAllocs()
	var wc packet.Key
	for i := 0; b.Loop(); i++ {
		wc = packet.Key{}
		if tb.Lookup(0, &keys[i&4095], &wc) == nil {
			b.Fatal("miss")
		}
	}
}

// TestConjunctionConcurrentLookups looks keys up while clause flows come
// and go (run with -race): a lookup sees a table before or after each
// change, never a torn clause.
func TestConjunctionConcurrentLookups(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb, neutronFlows...)
	stop := make(chan struct{})
	done := make(chan string)
	go func() {
		keys := []packet.Key{conjKey4(1, 1, 22), conjKey4(1, 2, 80), conjKey4(1, 3, 22)}
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- ""
				return
			default:
			}
			k := keys[i%len(keys)]
			got := lookupText(tb, k)
			if got != "priority=10,conj_id=1,tcp actions=NORMAL" && got != "priority=0 actions=drop" {
				done <- got
				return
			}
		}
	}()
	for i := range 300 {
		src := fmt.Sprintf("priority=10,ip,nw_src=10.0.0.%d", 1+i%2)
		tb.Delete(Selector{Table: 0, Match: mustMatch(t, src[strings.Index(src, ",")+1:]), Priority: 10, Strict: true})
		addFlows(t, tb, src+",actions=conjunction(1,1/2)")
	}
	close(stop)
	if got := <-done; got != "" {
		t.Fatalf("a lookup during changes found %q", got)
	}
}
