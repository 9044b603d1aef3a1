package ofproto

import (
	"errors"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"gvs/internal/flow"
	"gvs/internal/packet"
)

// fakeClock is an injectable clock for timeouts and durations.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestTables(t *testing.T) (*Tables, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_000_000, 0)}
	return NewTables(TablesOptions{Now: clk.now}), clk
}

func mustFlow(t *testing.T, s string) *flow.Flow {
	t.Helper()
	f, err := flow.ParseFlow(s, flow.ParseOptions{})
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return f
}

func mustMatch(t *testing.T, s string) *flow.Match {
	t.Helper()
	m, err := flow.ParseMatch(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return m
}

func addFlows(t *testing.T, tb *Tables, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if err := tb.Add(mustFlow(t, l)); err != nil {
			t.Fatalf("add %s: %v", l, err)
		}
	}
}

// dumpText is what ovs-ofctl --no-stats dump-flows prints, one flow a line.
func dumpText(tb *Tables, sel Selector) []string {
	var out []string
	for _, fs := range tb.Dump(sel) {
		out = append(out, fs.Flow.String())
	}
	return out
}

var all = Selector{Table: TableAll, OutPort: flow.PortNone}

func checkDump(t *testing.T, tb *Tables, sel Selector, want ...string) {
	t.Helper()
	got := dumpText(tb, sel)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("dump:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBridgeTablesStartWithNormal(t *testing.T) {
	tb := NewBridgeTables(TablesOptions{})
	checkDump(t, tb, all, "priority=0 actions=NORMAL")
	var k packet.Key
	r := tb.Lookup(0, &k, nil)
	if r == nil || !reflect.DeepEqual(r.Actions(), []flow.Action{flow.Output{Port: flow.PortNormal}}) {
		t.Fatalf("table 0 lookup: %v", r)
	}
	if tb.Lookup(1, &k, nil) != nil {
		t.Fatal("table 1 is not empty")
	}
}

// TestDumpOrderAsOVS replays a sequence whose dump-flows output was taken
// from the real OVS 3.1: subtables by highest priority (ties: the one
// that reached it first), flows within a subtable by last add or modify.
func TestDumpOrderAsOVS(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb,
		"priority=5,in_port=2,actions=drop",
		"priority=10,ip,nw_src=10.0.0.1,actions=drop",
		"priority=20,ip,nw_src=10.0.0.2,actions=drop",
		"priority=10,ip,nw_src=10.0.0.3,actions=drop",
		"priority=50,in_port=1,actions=drop")
	checkDump(t, tb, all,
		"priority=5,in_port=2 actions=drop",
		"priority=50,in_port=1 actions=drop",
		"priority=10,ip,nw_src=10.0.0.1 actions=drop",
		"priority=20,ip,nw_src=10.0.0.2 actions=drop",
		"priority=10,ip,nw_src=10.0.0.3 actions=drop")
	addFlows(t, tb, "priority=10,ip,nw_src=10.0.0.1,actions=output:1")
	if _, err := tb.Modify(Modify{Selector: Selector{Table: TableAll, Match: mustMatch(t, "ip,nw_src=10.0.0.2")},
		Actions: []flow.Action{flow.Output{Port: 2}}}); err != nil {
		t.Fatal(err)
	}
	addFlows(t, tb, "priority=10,ip,nw_src=10.0.0.1,actions=output:3",
		"priority=30,ip,nw_src=10.0.0.1,actions=output:1",
		"priority=60,ip,nw_dst=10.0.0.1,actions=output:1",
		"priority=60,ip,nw_dst=10.0.0.1/24,actions=output:1",
		"priority=60,in_port=3,actions=output:1",
		"table=3,priority=60,in_port=3,actions=output:1",
		"table=1,priority=60,in_port=3,actions=output:1")
	checkDump(t, tb, all,
		"priority=60,ip,nw_dst=10.0.0.1 actions=output:1",
		"priority=60,ip,nw_dst=10.0.0.0/24 actions=output:1",
		"priority=5,in_port=2 actions=drop",
		"priority=50,in_port=1 actions=drop",
		"priority=60,in_port=3 actions=output:1",
		"priority=10,ip,nw_src=10.0.0.3 actions=drop",
		"priority=20,ip,nw_src=10.0.0.2 actions=output:2",
		"priority=10,ip,nw_src=10.0.0.1 actions=output:3",
		"priority=30,ip,nw_src=10.0.0.1 actions=output:1",
		"table=1, priority=60,in_port=3 actions=output:1",
		"table=3, priority=60,in_port=3 actions=output:1")
	// Of the overlapping priority-60 flows, the one listed first wins.
	k := packet.Key{InPort: 3, DlType: 0x0800, NwDst: [4]byte{10, 0, 0, 1}}
	if r := tb.Lookup(0, &k, nil); r == nil || r.Flow().String() != "priority=60,ip,nw_dst=10.0.0.1 actions=output:1" {
		t.Fatalf("tie: got %v", r.Flow())
	}
}

func TestAddReplacesKeepingCounters(t *testing.T) {
	tb, clk := newTestTables(t)
	addFlows(t, tb, "priority=5,ip,actions=drop")
	k := packet.Key{DlType: 0x0800}
	tb.Lookup(0, &k, nil).Account(3, 300, clk.now())
	clk.advance(2 * time.Second)
	gen := tb.Generation()
	addFlows(t, tb, "priority=5,ip,actions=output:1")
	if tb.Generation() == gen {
		t.Error("generation did not change")
	}
	fs := tb.Dump(all)
	if len(fs) != 1 || fs[0].Stats.Packets != 3 || fs[0].Stats.Bytes != 300 || fs[0].Stats.Duration != 0 {
		t.Fatalf("after replace: %+v", fs)
	}
	if fs[0].Flow.String() != "priority=5,ip actions=output:1" {
		t.Fatalf("flow %s", fs[0].Flow)
	}
	addFlows(t, tb, "reset_counts,priority=5,ip,actions=output:2")
	if p, b := tb.Lookup(0, &k, nil).Counters(); p != 0 || b != 0 || tb.NumFlows() != 1 {
		t.Fatalf("reset_counts kept %d packets %d bytes; %d flows", p, b, tb.NumFlows())
	}
}

func TestCheckOverlap(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb, "priority=5,ip,actions=drop")
	err := tb.Add(mustFlow(t, "check_overlap,priority=5,ip,nw_dst=1.1.1.1,actions=drop"))
	if !errors.Is(err, ErrOverlap) {
		t.Fatalf("overlapping add: %v", err)
	}
	// Same match replaces; other priority or disjoint match is no overlap.
	addFlows(t, tb, "check_overlap,priority=5,ip,actions=output:1",
		"check_overlap,priority=6,ip,nw_dst=1.1.1.1,actions=drop",
		"check_overlap,priority=5,arp,actions=drop")
	checkDump(t, tb, all,
		"check_overlap priority=6,ip,nw_dst=1.1.1.1 actions=drop",
		"check_overlap priority=5,ip actions=output:1",
		"check_overlap priority=5,arp actions=drop")
}

func TestModify(t *testing.T) {
	tb, clk := newTestTables(t)
	addFlows(t, tb, "cookie=0x12,priority=9,ip,nw_src=2.2.2.2,actions=output:2",
		"cookie=0x22,priority=9,ip,nw_src=2.2.2.3,actions=output:2",
		"table=1,priority=7,hard_timeout=30,tcp,nw_src=2.2.2.2,tp_dst=80,actions=output:2")
	out3 := []flow.Action{flow.Output{Port: 3}}
	// A cookie mask selects; it does not change the cookie.
	n, err := tb.Modify(Modify{Selector: Selector{Table: TableAll, Cookie: 0x2, CookieMask: 0xf}, Actions: out3})
	if err != nil || n != 2 {
		t.Fatalf("modify by cookie: %d %v", n, err)
	}
	checkDump(t, tb, Selector{Table: 0},
		"cookie=0x12, priority=9,ip,nw_src=2.2.2.2 actions=output:3",
		"cookie=0x22, priority=9,ip,nw_src=2.2.2.3 actions=output:3")
	// Non-strict: every flow the match covers, in every table; timeouts
	// stay, the new cookie applies.
	clk.advance(5 * time.Second)
	n, _ = tb.Modify(Modify{Selector: Selector{Table: TableAll, Match: mustMatch(t, "ip,nw_src=2.2.2.2")},
		Actions: []flow.Action{flow.Output{Port: 1}}, SetCookie: true, NewCookie: 0x99})
	if n != 2 {
		t.Fatalf("non-strict modify changed %d flows", n)
	}
	checkDump(t, tb, all,
		"cookie=0x22, priority=9,ip,nw_src=2.2.2.3 actions=output:3",
		"cookie=0x99, priority=9,ip,nw_src=2.2.2.2 actions=output:1",
		"cookie=0x99, table=1, hard_timeout=30, priority=7,tcp,nw_src=2.2.2.2,tp_dst=80 actions=output:1")
	if fs := tb.Dump(Selector{Table: 1}); fs[0].Stats.Duration != 5*time.Second || fs[0].Stats.HardAge != 0 {
		t.Errorf("modify: duration %v (want kept), hard_age %d (want restarted)", fs[0].Stats.Duration, fs[0].Stats.HardAge)
	}
	// Strict: exact match and priority only.
	strict := Selector{Table: 0, Match: mustMatch(t, "ip,nw_src=2.2.2.3"), Priority: 8, Strict: true}
	if n, _ := tb.Modify(Modify{Selector: strict, Actions: out3}); n != 0 {
		t.Fatalf("strict modify with another priority changed %d flows", n)
	}
	strict.Priority = 9
	if n, _ := tb.Modify(Modify{Selector: strict, Actions: nil}); n != 1 {
		t.Fatalf("strict modify changed %d flows", n)
	}
	checkDump(t, tb, Selector{Table: 0, Match: mustMatch(t, "ip,nw_src=2.2.2.3")},
		"cookie=0x22, priority=9,ip,nw_src=2.2.2.3 actions=drop")
}

func TestModifyAddsWhenNothingMatches(t *testing.T) {
	tb, _ := newTestTables(t)
	add := mustFlow(t, "priority=7,ip,nw_dst=1.2.3.5,actions=drop")
	m := Modify{Selector: Selector{Table: TableAll, Match: add.Match, Priority: 7, Strict: true}, AddIfNone: add}
	// With a cookie mask, or without AddIfNone (OpenFlow 1.1+), nothing is added.
	m.CookieMask = 0xf
	if n, _ := tb.Modify(m); n != 0 || tb.NumFlows() != 0 {
		t.Fatalf("cookie-masked modify added: %d", n)
	}
	if n, _ := tb.Modify(Modify{Selector: m.Selector}); n != 0 || tb.NumFlows() != 0 {
		t.Fatal("modify without AddIfNone added")
	}
	m.CookieMask = 0
	if n, err := tb.Modify(m); n != 1 || err != nil {
		t.Fatalf("OpenFlow 1.0 modify: %d %v", n, err)
	}
	checkDump(t, tb, all, "priority=7,ip,nw_dst=1.2.3.5 actions=drop")
}

func TestDelete(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb,
		"send_flow_rem,priority=9,ip,nw_src=2.2.2.2,actions=output:2",
		"cookie=0x5,priority=9,ip,nw_src=2.2.2.3,actions=output:1,output:3",
		"priority=8,ip,nw_src=2.2.2.3,actions=clone(output:3)",
		"priority=6,ip,nw_dst=1.1.1.1,actions=CONTROLLER:100",
		"table=2,priority=5,ip,actions=output:3")
	// out_port: flows with an output to the port (also in clone), every table.
	del := tb.Delete(Selector{Table: TableAll, OutPort: 3})
	if len(del) != 3 || del[0].Reason != RemovedDelete {
		t.Fatalf("out_port=3 deleted %d flows", len(del))
	}
	addFlows(t, tb, "cookie=0x5,priority=9,ip,nw_src=2.2.2.3,actions=output:1")
	if del := tb.Delete(Selector{Table: TableAll, OutPort: flow.PortController}); len(del) != 1 {
		t.Fatalf("out_port=CONTROLLER deleted %d flows", len(del))
	}
	// Cookie mask.
	if del := tb.Delete(Selector{Table: 0, Cookie: 0x4, CookieMask: 0xf, OutPort: flow.PortNone}); len(del) != 0 {
		t.Fatalf("cookie 0x4/0xf deleted %d", len(del))
	}
	// Strict needs the priority too.
	sel := Selector{Table: 0, Match: mustMatch(t, "ip,nw_src=2.2.2.2"), Priority: 8, Strict: true, OutPort: flow.PortNone}
	if del := tb.Delete(sel); len(del) != 0 {
		t.Fatalf("strict delete with another priority deleted %d", len(del))
	}
	sel.Priority = 9
	del = tb.Delete(sel)
	if len(del) != 1 || !del[0].Rule.Flow().Flags.SendFlowRem {
		t.Fatalf("strict delete: %+v", del)
	}
	// Non-strict: every flow at least as specific.
	gen := tb.Generation()
	if del := tb.Delete(Selector{Table: TableAll, Match: mustMatch(t, "ip"), OutPort: flow.PortNone}); len(del) != 1 {
		t.Fatalf("delete ip removed %d", len(del))
	}
	if tb.Generation() == gen || tb.NumFlows() != 0 {
		t.Fatalf("generation %d, %d flows left", tb.Generation(), tb.NumFlows())
	}
}

func TestDumpFilterAndAggregate(t *testing.T) {
	tb, clk := newTestTables(t)
	addFlows(t, tb,
		"priority=9,ip,nw_src=2.2.2.2,actions=output:1",
		"priority=9,tcp,nw_src=2.2.2.2,tp_dst=80,actions=output:2",
		"priority=9,arp,actions=output:2")
	checkDump(t, tb, Selector{Table: TableAll, Match: mustMatch(t, "tcp,nw_src=2.2.2.0/24")},
		"priority=9,tcp,nw_src=2.2.2.2,tp_dst=80 actions=output:2")
	checkDump(t, tb, Selector{Table: TableAll, Match: mustMatch(t, "ip")},
		"priority=9,ip,nw_src=2.2.2.2 actions=output:1",
		"priority=9,tcp,nw_src=2.2.2.2,tp_dst=80 actions=output:2")
	k := packet.Key{DlType: 0x0806}
	tb.Lookup(0, &k, nil).Account(2, 120, clk.now())
	k = packet.Key{DlType: 0x0800, NwSrc: [4]byte{2, 2, 2, 2}}
	tb.Lookup(0, &k, nil).Account(1, 60, clk.now())
	if a := tb.Aggregate(all); a != (AggregateStats{Packets: 3, Bytes: 180, Flows: 3}) {
		t.Fatalf("aggregate %+v", a)
	}
	if a := tb.Aggregate(Selector{Table: 0, OutPort: 2}); a != (AggregateStats{Packets: 2, Bytes: 120, Flows: 2}) {
		t.Fatalf("aggregate out_port=2 %+v", a)
	}
}

func TestExpire(t *testing.T) {
	tb, clk := newTestTables(t)
	addFlows(t, tb,
		"priority=1,idle_timeout=10,ip,actions=drop",
		"priority=2,hard_timeout=20,arp,actions=drop",
		"priority=3,idle_timeout=10,hard_timeout=15,ipv6,actions=drop",
		"priority=4,in_port=1,actions=drop")
	ip := packet.Key{DlType: 0x0800}
	clk.advance(9 * time.Second)
	tb.Lookup(0, &ip, nil).Account(1, 64, clk.now())
	clk.advance(2 * time.Second) // 11 s: ip was used at 9 s, ipv6 never
	exp := tb.Expire()
	if len(exp) != 1 || exp[0].Reason != RemovedIdleTimeout || exp[0].Rule.Priority() != 3 {
		t.Fatalf("at 11 s expired %+v", exp)
	}
	// Modify restarts the hard timeout of the arp flow.
	if _, err := tb.Modify(Modify{Selector: Selector{Table: 0, Match: mustMatch(t, "arp")}}); err != nil {
		t.Fatal(err)
	}
	clk.advance(9 * time.Second) // 20 s; ip idle since 9 s
	exp = tb.Expire()
	if len(exp) != 1 || exp[0].Reason != RemovedIdleTimeout || exp[0].Rule.Priority() != 1 {
		t.Fatalf("at 20 s expired %+v", exp)
	}
	clk.advance(11 * time.Second) // 31 s: 20 s after the modify
	exp = tb.Expire()
	if len(exp) != 1 || exp[0].Reason != RemovedHardTimeout || exp[0].Rule.Priority() != 2 {
		t.Fatalf("at 31 s expired %+v", exp)
	}
	checkDump(t, tb, all, "priority=4,in_port=1 actions=drop")
}

func TestTableLimits(t *testing.T) {
	tb := NewTables(TablesOptions{MaxFlows: 2})
	addFlows(t, tb, "priority=1,actions=drop", "priority=2,actions=drop")
	if err := tb.Add(mustFlow(t, "priority=3,actions=drop")); !errors.Is(err, ErrTableFull) {
		t.Fatalf("third flow: %v", err)
	}
	// Replacing is no new flow.
	addFlows(t, tb, "priority=2,actions=output:1")
	f := mustFlow(t, "priority=3,actions=drop")
	f.Table = 255
	if err := tb.Add(f); !errors.Is(err, ErrBadTable) {
		t.Fatalf("table 255: %v", err)
	}
	var k packet.Key
	if tb.Lookup(255, &k, nil) != nil {
		t.Fatal("lookup in table 255")
	}
}

// TestTablesConcurrentAccounting updates counters from several goroutines
// while flows change; run with -race.
func TestTablesConcurrentAccounting(t *testing.T) {
	tb, _ := newTestTables(t)
	addFlows(t, tb, "priority=0,actions=NORMAL")
	done := make(chan struct{})
	go func() {
		defer close(done)
		now := time.Unix(1_000_000, 0)
		for range 20000 {
			var k packet.Key
			tb.Lookup(0, &k, nil).Account(1, 64, now)
		}
	}()
	for i := range 200 {
		addFlows(t, tb, "priority=5,ip,nw_src=10.0.0."+strconv.Itoa(i%250)+",actions=drop")
		tb.Modify(Modify{Selector: Selector{Table: 0, Match: mustMatch(t, "ip")}})
	}
	<-done
	if p, _ := tb.Lookup(0, &packet.Key{}, nil).Counters(); p != 20000 {
		t.Fatalf("counted %d packets, want 20000", p)
	}
}

func TestCountsListsNonEmptyTables(t *testing.T) {
	tb := NewBridgeTables(TablesOptions{MaxFlows: 10})
	for _, s := range []string{"table=3,priority=5,in_port=1,actions=drop", "table=3,priority=6,in_port=2,actions=drop"} {
		if err := tb.Add(mustFlow(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	counts, max := tb.Counts()
	want := []TableCount{{Table: 0, Flows: 1}, {Table: 3, Flows: 2}}
	if !reflect.DeepEqual(counts, want) || max != 10 {
		t.Errorf("Counts() = %v, %d; want %v, 10", counts, max, want)
	}
}

// TestTablesActionsBounded: the actions of a bridge's flows are bounded
// together (DefaultMaxActions), not only the flows: one flow-mod can hold
// thousands of actions, so a million flows could hold hundreds of GB.
// Over the bound an add or modify fails with ErrTableFull (the
// OFPFMFC_TABLE_FULL error OpenFlow clients get); deleting makes room.
func TestTablesActionsBounded(t *testing.T) {
	tb, _ := newTestTables(t)
	const per = 8000 // about what one 64 KiB flow-mod holds
	big := mustFlow(t, "actions=drop")
	for range per {
		big.Actions = append(big.Actions, flow.Output{Port: 1})
	}
	var added int
	for i := 0; i < 2*DefaultMaxActions/per; i++ {
		f := *big // the test's flows share one action list; the bound counts each
		f.Match = mustMatch(t, "reg0="+strconv.Itoa(i))
		if err := tb.Add(&f); err != nil {
			if !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), "actions") {
				t.Fatalf("flow %d: %v, want a table-full error about actions", i, err)
			}
			break
		}
		added++
	}
	if added*per > DefaultMaxActions || added == 0 {
		t.Fatalf("%d flows of %d actions added (bound %d actions)", added, per, DefaultMaxActions)
	}
	// A modify that would grow past the bound fails too; one that
	// shrinks works, and then there is room again.
	if _, err := tb.Modify(Modify{Selector: Selector{Table: TableAll, Match: mustMatch(t, "reg0=0")}, Actions: append(big.Actions, big.Actions...)}); !errors.Is(err, ErrTableFull) {
		t.Fatalf("modify to %d actions: %v, want ErrTableFull", 2*per, err)
	}
	if _, err := tb.Modify(Modify{Selector: Selector{Table: TableAll, Match: mustMatch(t, "reg0=0")}, Actions: mustFlow(t, "actions=drop").Actions}); err != nil {
		t.Fatal(err)
	}
	f := *big
	f.Match = mustMatch(t, "reg1=1")
	if err := tb.Add(&f); err != nil {
		t.Fatalf("add after a modify made room: %v", err)
	}
	tb.Delete(Selector{Table: TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})})
	if tb.nactions != 0 {
		t.Fatalf("%d actions counted in empty tables", tb.nactions)
	}
}

// TestTablesBoundedAcrossBridges: each bridge's tables are bounded, but
// 1,024 bridges at their bounds were terabytes, so the flows and actions
// of all bridges are bounded together too (MaxAllFlows, MaxAllActions);
// a bridge made when the others hold them all still gets its NORMAL
// flow, and a bridge that goes away gives its flows back.
func TestTablesBoundedAcrossBridges(t *testing.T) {
	oldF, oldA := maxAllFlows.Load(), maxAllActions.Load()
	t.Cleanup(func() { maxAllFlows.Store(oldF); maxAllActions.Store(oldA) })
	base := AllFlows()
	maxAllFlows.Store(base + 1000)
	maxAllActions.Store(allActions.Load() + 1e6)
	var bridges []*Tables
	added := 0
	for b := range 8 {
		tb := NewBridgeTables(TablesOptions{})
		bridges = append(bridges, tb)
		for i := range 500 {
			f := mustFlow(t, "actions=output:1")
			f.Match = mustMatch(t, "reg0="+strconv.Itoa(i))
			err := tb.Add(f)
			if err != nil {
				if !errors.Is(err, ErrTableFull) || !strings.Contains(err.Error(), "all bridges") {
					t.Fatalf("bridge %d flow %d: %v, want a table-full error about all bridges", b, i, err)
				}
				break
			}
			added++
		}
	}
	if added > 1000 {
		t.Errorf("%d flows added to 8 bridges of 500, bound 1000", added)
	}
	if added < 1000-8 {
		t.Errorf("only %d flows added under a bound of 1000", added)
	}
	late := NewBridgeTables(TablesOptions{})
	if late.NumFlows() != 1 {
		t.Errorf("a bridge made when all flows are taken has %d flows, want its NORMAL flow", late.NumFlows())
	}
	// Actions: a modify that grows past the bound of all bridges fails.
	maxAllActions.Store(allActions.Load() + 10)
	big := mustFlow(t, "actions=output:1,output:2,output:3,output:4,output:5,output:6,output:7,output:8,output:9,output:10,output:11,output:12")
	if _, err := bridges[0].Modify(Modify{Selector: Selector{Table: TableAll, Match: mustMatch(t, "reg0=0")}, Actions: big.Actions}); !errors.Is(err, ErrTableFull) {
		t.Errorf("modify past all bridges' actions: %v, want ErrTableFull", err)
	}
	bridges[0].Delete(Selector{Table: TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})})
	if err := bridges[1].Add(mustFlow(t, "reg1=1,actions=drop")); err != nil {
		t.Errorf("add after another bridge's flows were deleted: %v", err)
	}
	runtime.KeepAlive(late)
	bridges, late = nil, nil
	collectUntil(func() bool { return AllFlows() <= base })
	if got := AllFlows(); got > base {
		t.Errorf("%d flows counted after the bridges went away (%d before)", got, base)
	}
}
