package ofproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// tcpFrame is an IPv4/TCP frame from src:sport to dst:dport.
func tcpFrame(src, dst [4]byte, sport, dport uint16) []byte {
	f := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0}
	f = append(f, 0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0)
	f = append(f, src[:]...)
	f = append(f, dst[:]...)
	l4 := make([]byte, 20)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], dport)
	l4[12] = 5 << 4
	return append(f, l4...)
}

func translateFrame(b *Bridge, in uint32, f []byte) *datapath.Xlate {
	pkt := &datapath.Packet{Frame: f, InPort: in}
	_ = packet.Parse(f, in, &pkt.Key.Key, &pkt.Off)
	x := &datapath.Xlate{}
	b.Translate(pkt, x)
	return x
}

// parseGroup builds a group from "type=T,bucket=ACTIONS;bucket=..." with
// weight:N and watch_port:N before a bucket's actions.
func parseGroup(t *testing.T, id uint32, typ uint8, buckets ...string) *GroupSpec {
	t.Helper()
	s := &GroupSpec{ID: id, Type: typ}
	for i, text := range buckets {
		bk := Bucket{ID: uint32(i), Weight: 1, WatchPort: WatchAny, WatchGroup: WatchAny}
		for {
			if rest, ok := strings.CutPrefix(text, "weight:"); ok {
				n, _, _ := strings.Cut(rest, ",")
				fmt.Sscan(n, &bk.Weight)
				text = rest[len(n)+1:]
			} else if rest, ok := strings.CutPrefix(text, "watch_port:"); ok {
				n, _, _ := strings.Cut(rest, ",")
				fmt.Sscan(n, &bk.WatchPort)
				text = rest[len(n)+1:]
			} else {
				break
			}
		}
		acts, err := flow.ParseActions(text, nil)
		if err != nil {
			t.Fatal(err)
		}
		bk.Actions = acts
		s.Buckets = append(s.Buckets, bk)
	}
	return s
}

func mustAddGroup(t *testing.T, b *Bridge, s *GroupSpec) {
	t.Helper()
	if err := b.Groups.Add(s); err != nil {
		t.Fatal(err)
	}
}

// TestGroupTypesTranslate: each group type's buckets become datapath
// actions, each bucket on a copy of the packet whose rewrites end with it.
func TestGroupTypesTranslate(t *testing.T) {
	for _, c := range []struct {
		name  string
		group *GroupSpec
		flow  string
		want  string
	}{
		{"all", parseGroup(t, 1, GroupAll, "output:2", "output:3"), "actions=group:1", "clone(2),clone(3)"},
		{"all keeps rewrites in their bucket", parseGroup(t, 1, GroupAll, "mod_dl_dst:02:00:00:00:00:99,output:2", "output:3"),
			"actions=group:1,output:4", "clone(set(eth(dst=02:00:00:00:00:99)),2),clone(3),4"},
		{"indirect", parseGroup(t, 1, GroupIndirect, "output:3"), "actions=group:1", "clone(3)"},
		{"fast_failover, first live", parseGroup(t, 1, GroupFastFailover, "watch_port:2,output:2", "watch_port:3,output:3"),
			"actions=group:1", "clone(2)"},
		{"bucket resubmits", parseGroup(t, 1, GroupAll, "resubmit(,1)"), "actions=group:1", "clone(4)"},
		{"group in a group", parseGroup(t, 1, GroupAll, "group:2"), "actions=group:1", "clone(clone(3))"},
		{"unsupported bucket drops all", parseGroup(t, 1, GroupAll, "output:2", "output:NXM_NX_PKT_MARK[0..15]"), "actions=group:1", "drop"},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := ofBridge(t)
			setLive(b, 2, 3)
			mustAddGroup(t, b, parseGroup(t, 2, GroupIndirect, "output:3"))
			addFlow(t, b, "table=1,actions=output:4")
			if err := b.Groups.Add(c.group); err != nil {
				t.Fatal(err)
			}
			addFlow(t, b, c.flow)
			x := translateFrame(b, 1, tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 80))
			if got := datapath.FormatActions(x.Actions, nil); got != c.want {
				t.Errorf("actions %s, want %s", got, c.want)
			}
		})
	}
}

// setLive marks ports as live for buckets that watch them, as the
// watcher would find them.
func setLive(b *Bridge, ports ...uint32) {
	live := map[uint32]bool{}
	for _, p := range ports {
		live[p] = true
	}
	b.Groups.live.Store(&live)
}

// TestGroupStatsCount: the translation's effects count the packet in the
// group and in the bucket it went through.
func TestGroupStatsCount(t *testing.T) {
	b := ofBridge(t)
	mustAddGroup(t, b, parseGroup(t, 1, GroupAll, "output:2", "output:3"))
	mustAddGroup(t, b, parseGroup(t, 2, GroupSelect, "output:2", "output:3"))
	addFlow(t, b, "actions=group:1,group:2")
	f := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 80)
	x := translateFrame(b, 1, f)
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectCount {
			e.Counter.Packets.Add(1)
			e.Counter.Bytes.Add(uint64(len(f)))
		}
	}
	groups, stats := b.Groups.Stats(WatchAny)
	if len(groups) != 2 {
		t.Fatalf("%d groups", len(groups))
	}
	all, sel := stats[0], stats[1]
	if all.Packets != 1 || all.Bytes != uint64(len(f)) || all.Buckets[0].Packets != 1 || all.Buckets[1].Packets != 1 || all.RefCount != 1 {
		t.Errorf("all group: %+v", all)
	}
	if sel.Packets != 1 || sel.Buckets[0].Packets+sel.Buckets[1].Packets != 1 || sel.RefCount != 1 {
		t.Errorf("select group: %+v", sel)
	}
}

// TestSelectGroupSticksAndWeighs: a select group sends every packet of a
// connection, both ways, to one bucket, puts the fields it hashed in the
// mask, and spreads connections in proportion to the buckets' weights.
func TestSelectGroupSticksAndWeighs(t *testing.T) {
	b := ofBridge(t)
	mustAddGroup(t, b, parseGroup(t, 1, GroupSelect, "weight:1,output:2", "weight:3,output:3", "weight:0,output:4"))
	addFlow(t, b, "actions=group:1")
	counts := map[string]int{}
	const conns = 4000
	for i := range conns {
		src, dst := [4]byte{10, 0, byte(i >> 8), byte(i)}, [4]byte{10, 1, 0, 1}
		sport := uint16(1024 + i*7)
		x := translateFrame(b, 1, tcpFrame(src, dst, sport, 80))
		got := datapath.FormatActions(x.Actions, nil)
		for range 3 {
			if again := datapath.FormatActions(translateFrame(b, 1, tcpFrame(src, dst, sport, 80)).Actions, nil); again != got {
				t.Fatalf("connection %d went to %s, then %s", i, got, again)
			}
		}
		if back := datapath.FormatActions(translateFrame(b, 1, tcpFrame(dst, src, 80, sport)).Actions, nil); back != got {
			t.Fatalf("connection %d went to %s, its replies to %s", i, got, back)
		}
		m := x.Mask
		if m.NwSrc != [4]byte{255, 255, 255, 255} || m.NwDst != [4]byte{255, 255, 255, 255} || m.TpSrc != 0xffff || m.TpDst != 0xffff || m.NwProto != 0xff {
			t.Fatalf("mask %+v lacks the hashed fields", m)
		}
		counts[got]++
	}
	if counts["clone(4)"] != 0 {
		t.Errorf("a bucket of weight 0 got %d connections", counts["clone(4)"])
	}
	// weight 3 of 4: 3000 expected; 5 standard deviations (27) apart
	// is far beyond chance.
	if n := counts["clone(3)"]; n < 3000-140 || n > 3000+140 || counts["clone(2)"]+n != conns {
		t.Errorf("distribution %v, want about 1000 and 3000", counts)
	}
}

// TestFastFailoverFollowsLink: when the watched port's link goes down,
// the watcher sees it within its interval, invalidates the cached
// translations, and the group uses its next bucket; back up, the first.
func TestFastFailoverFollowsLink(t *testing.T) {
	b := ofBridge(t)
	cfg := *b.Config()
	devs := map[uint32]*netdev.Memory{}
	cfg.Flood = nil
	for _, p := range b.Config().Flood {
		np := *p
		m := netdev.NewMemory(p.Name, 8)
		devs[p.OFPort], np.Dev = m, m
		cfg.Flood = append(cfg.Flood, &np)
	}
	b.SetConfig(&cfg)
	mustAddGroup(t, b, parseGroup(t, 1, GroupFastFailover, "watch_port:2,output:2", "watch_port:3,output:3"))
	defer b.Groups.Close()
	addFlow(t, b, "actions=group:1")
	f := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 80)
	wait := func(want string) {
		t.Helper()
		gen := datapath.Generation()
		deadline := time.Now().Add(3 * time.Second)
		for {
			got := datapath.FormatActions(translateFrame(b, 1, f).Actions, nil)
			if got == want {
				if datapath.Generation() == gen {
					t.Errorf("switched to %s without invalidating cached translations", want)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("actions %s, want %s", got, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := datapath.FormatActions(translateFrame(b, 1, f).Actions, nil); got != "clone(2)" {
		t.Fatalf("both up: %s", got)
	}
	devs[2].SetLinkUp(false)
	wait("clone(3)")
	devs[3].SetLinkUp(false)
	wait("drop")
	devs[2].SetLinkUp(true)
	wait("clone(2)")
}

// TestGroupModInvalidatesCache: every change of a group makes cached
// translations stale.
func TestGroupModInvalidatesCache(t *testing.T) {
	b := ofBridge(t)
	for _, op := range []func() error{
		func() error { return b.Groups.Add(parseGroup(t, 1, GroupAll, "output:2")) },
		func() error { return b.Groups.Modify(parseGroup(t, 1, GroupAll, "output:3"), false) },
		func() error {
			return b.Groups.InsertBuckets(1, BucketLast, parseGroup(t, 1, GroupAll, "", "output:4").Buckets[1:])
		},
		func() error { return b.Groups.RemoveBuckets(1, BucketFirst) },
		func() error { b.Groups.Delete(1); return nil },
	} {
		gen := datapath.Generation()
		if err := op(); err != nil {
			t.Fatal(err)
		}
		if datapath.Generation() == gen {
			t.Errorf("a group change left the cache generation at %d", gen)
		}
	}
}

// TestGroupDeleteRemovesFlows: deleting a group deletes the flows that
// name it, inside clone too, as OVS does; others stay.
func TestGroupDeleteRemovesFlows(t *testing.T) {
	b := ofBridge(t)
	mustAddGroup(t, b, parseGroup(t, 1, GroupAll, "output:2"))
	mustAddGroup(t, b, parseGroup(t, 2, GroupAll, "output:3"))
	addFlow(t, b, "priority=1,actions=group:1")
	addFlow(t, b, "priority=2,actions=clone(group:1)")
	addFlow(t, b, "priority=3,actions=group:2")
	removed := b.Groups.Delete(1)
	if len(removed) != 2 || removed[0].Reason != RemovedGroupDelete {
		t.Fatalf("removed %+v", removed)
	}
	if n := b.Tables.NumFlows(); n != 1 {
		t.Errorf("%d flows left, want 1", n)
	}
	if b.Groups.Exists(1) || !b.Groups.Exists(2) {
		t.Errorf("groups left: %v", b.Groups.List(WatchAny))
	}
	b.Groups.Delete(0xfffffffc) // OFPG_ALL
	if b.Tables.NumFlows() != 0 || b.Groups.Len() != 0 {
		t.Errorf("delete all left %d flows, %d groups", b.Tables.NumFlows(), b.Groups.Len())
	}
}

// TestGroupChecksAndLimits: what a group mod may not do.
func TestGroupChecksAndLimits(t *testing.T) {
	b := ofBridge(t)
	mustAddGroup(t, b, parseGroup(t, 1, GroupAll, "output:2"))
	many := make([]string, MaxBuckets+1)
	for i := range many {
		many[i] = "output:2"
	}
	for _, c := range []struct {
		name string
		op   func() error
		want error
	}{
		{"exists", func() error { return b.Groups.Add(parseGroup(t, 1, GroupAll, "output:2")) }, ErrGroupExists},
		{"modify unknown", func() error { return b.Groups.Modify(parseGroup(t, 9, GroupAll), false) }, ErrGroupUnknown},
		{"reserved id", func() error { return b.Groups.Add(parseGroup(t, 0xfffffffc, GroupAll)) }, ErrGroupInvalid},
		{"bad type", func() error { return b.Groups.Add(parseGroup(t, 3, 7)) }, ErrGroupInvalid},
		{"indirect with two buckets", func() error { return b.Groups.Add(parseGroup(t, 3, GroupIndirect, "output:2", "output:3")) }, ErrGroupInvalid},
		{"watch in an all group", func() error { return b.Groups.Add(parseGroup(t, 3, GroupAll, "watch_port:2,output:2")) }, ErrGroupWatch},
		{"too many buckets", func() error { return b.Groups.Add(parseGroup(t, 3, GroupAll, many...)) }, ErrBucketTooMany},
		{"loop to itself", func() error { return b.Groups.Add(parseGroup(t, 3, GroupAll, "group:3")) }, ErrGroupLoop},
		{"loop through another", func() error { return b.Groups.Modify(parseGroup(t, 1, GroupAll, "group:4"), false) }, nil},
		{"loop closed", func() error { return b.Groups.Add(parseGroup(t, 4, GroupAll, "clone(group:1)")) }, ErrGroupLoop},
		{"unknown bucket", func() error { return b.Groups.RemoveBuckets(1, 77) }, ErrBucketUnknown},
		{"bucket id twice", func() error {
			return b.Groups.InsertBuckets(1, BucketFirst, parseGroup(t, 1, GroupAll, "output:3").Buckets)
		}, ErrBucketExists},
	} {
		if err := c.op(); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// A chain of MaxGroupDepth groups is fine, one more is not.
	for i := uint32(10); i < 10+MaxGroupDepth-1; i++ {
		mustAddGroup(t, b, parseGroup(t, i, GroupAll, fmt.Sprintf("group:%d", i+1)))
	}
	mustAddGroup(t, b, parseGroup(t, 10+MaxGroupDepth-1, GroupAll, "output:2"))
	if err := b.Groups.Add(parseGroup(t, 9, GroupAll, "group:10")); !errors.Is(err, ErrGroupChain) {
		t.Errorf("a chain of %d groups: %v", MaxGroupDepth+1, err)
	}
	b.Groups.max = b.Groups.Len()
	if err := b.Groups.Add(parseGroup(t, 50, GroupAll)); !errors.Is(err, ErrGroupTooMany) {
		t.Errorf("past the group limit: %v", err)
	}
	// The actions of all buckets together are bounded too.
	big := make([]string, MaxBuckets)
	for i := range big {
		big[i] = strings.Repeat("output:2,", 255) + "output:2"
	}
	var err error
	for id := uint32(100); err == nil && id < 200; id++ {
		b.Groups.max = MaxGroups
		err = b.Groups.Add(parseGroup(t, id, GroupAll, big...))
	}
	if !errors.Is(err, ErrBucketTooMany) || !strings.Contains(err.Error(), "actions in the bridge's buckets") {
		t.Errorf("past the bridge's bucket actions: %v", err)
	}
	if err := b.Groups.CheckActions([]flow.Action{flow.Clone{Actions: []flow.Action{flow.Group{ID: 99}}}}); !errors.Is(err, ErrBadOutGroup) {
		t.Errorf("a flow to a missing group: %v", err)
	}
}

// TestGroupTranslateAllocatesNothing: translating through groups, once
// warm, allocates no more than translating a plain output (the
// translation's own baseline, one allocation today).
func TestGroupTranslateAllocatesNothing(t *testing.T) {
	allocs := func(flowText string) float64 {
		b := ofBridge(t)
		mustAddGroup(t, b, parseGroup(t, 1, GroupAll, "output:2", "output:3"))
		mustAddGroup(t, b, parseGroup(t, 2, GroupSelect, "output:2", "output:3"))
		mustAddGroup(t, b, parseGroup(t, 3, GroupFastFailover, "watch_port:2,output:2"))
		addFlow(t, b, flowText)
		f := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 1000, 80)
		pkt := &datapath.Packet{Frame: f, InPort: 1}
		_ = packet.Parse(f, 1, &pkt.Key.Key, &pkt.Off)
		x := &datapath.Xlate{}
		b.Translate(pkt, x)
		return testing.AllocsPerRun(100, func() {
			x.Actions, x.Effects = x.Actions[:0], x.Effects[:0]
			b.Translate(pkt, x)
		})
	}
	base := allocs("actions=output:2")
	if n := allocs("actions=group:1,group:2,group:3"); n > base {
		t.Errorf("%v allocations per translation through groups, %v without", n, base)
	}
}

// TestSelectGroupHashFields: with selection_method=hash,fields(ip_src),
// connections from one source share a bucket whatever their ports, the
// mask holds ip_src (and not the ports), and sources spread.
func TestSelectGroupHashFields(t *testing.T) {
	b := ofBridge(t)
	spec := parseGroup(t, 1, GroupSelect, "output:2", "output:3")
	spec.HashFields = &packet.Key{NwSrc: [4]byte{255, 255, 255, 255}}
	mustAddGroup(t, b, spec)
	addFlow(t, b, "actions=group:1")
	buckets := map[string]int{}
	for src := range 64 {
		var first string
		for port := range 8 {
			x := translateFrame(b, 1, tcpFrame([4]byte{10, 0, 1, byte(src)}, [4]byte{10, 1, 0, 1}, uint16(2000+port*13), 80))
			got := datapath.FormatActions(x.Actions, nil)
			if port == 0 {
				first = got
				buckets[got]++
				if x.Mask.NwSrc != [4]byte{255, 255, 255, 255} || x.Mask.TpSrc != 0 {
					t.Fatalf("mask %+v: want ip_src and not the ports", x.Mask.Key)
				}
			} else if got != first {
				t.Fatalf("source %d went to %s and %s", src, first, got)
			}
		}
	}
	if len(buckets) != 2 || buckets["clone(2)"] < 16 || buckets["clone(3)"] < 16 {
		t.Errorf("64 sources spread %v", buckets)
	}
}
