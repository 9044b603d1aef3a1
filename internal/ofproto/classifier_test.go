package ofproto

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"gvs/internal/flow"
	"gvs/internal/packet"
)

// keyGen draws keys and masks from small domains, so that random rules
// and random keys meet often.
type keyGen struct{ r *rand.Rand }

func (g keyGen) ip() [4]byte {
	return [4]byte{10, byte(g.r.IntN(3)), byte(g.r.IntN(3)), byte(g.r.IntN(4))}
}

func (g keyGen) key() packet.Key {
	var k packet.Key
	k.InPort = uint32(1 + g.r.IntN(3))
	k.DlType = []uint16{0x0800, 0x0806, 0x86dd}[g.r.IntN(3)]
	k.DlDst = [6]byte{0, 0, 0, 0, 0, byte(g.r.IntN(3))}
	k.NwProto = []uint8{6, 17}[g.r.IntN(2)]
	k.NwSrc, k.NwDst = g.ip(), g.ip()
	k.TpSrc = uint16(g.r.IntN(4))
	k.TpDst = uint16(80 + g.r.IntN(20))
	k.Regs[0] = uint32(g.r.IntN(2))
	k.Metadata = uint64(g.r.IntN(2))
	return k
}

func (g keyGen) prefix(bits int) [4]byte {
	m := uint32(0xffffffff) << (32 - bits)
	if bits == 0 {
		m = 0
	}
	return [4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}
}

// match returns a random match: each field wildcarded, exact or (for
// addresses and ports) under a random prefix or mask.
func (g keyGen) match() *flow.Match {
	v, m := g.key(), packet.Key{}
	pick := func() bool { return g.r.IntN(3) == 0 }
	if pick() {
		m.InPort = ^uint32(0)
	}
	if pick() {
		m.DlType = 0xffff
	}
	if pick() {
		m.DlDst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	if pick() {
		m.NwProto = 0xff
	}
	if pick() {
		m.NwSrc = g.prefix([]int{8, 16, 24, 30, 32}[g.r.IntN(5)])
	}
	if pick() {
		m.NwDst = g.prefix([]int{8, 16, 24, 30, 32}[g.r.IntN(5)])
	}
	if pick() {
		m.TpSrc = 0xffff
	}
	if pick() {
		m.TpDst = []uint16{0xffff, 0xfff0, 0xfffc}[g.r.IntN(3)]
	}
	if pick() {
		m.Regs[0] = 1
	}
	if g.r.IntN(6) == 0 {
		m.Metadata = 1
	}
	return flow.NewMatch(v, m)
}

// refModel is the brute-force reference: every rule, checked one by one.
type refModel struct{ rules []*Rule }

// best returns the highest priority any rule matching k has, and those
// rules.
func (m *refModel) best(k *packet.Key) (int, []*Rule) {
	prio := -1
	var at []*Rule
	for _, r := range m.rules {
		if !r.match.Matches(k) {
			continue
		}
		switch p := int(r.priority); {
		case p > prio:
			prio, at = p, []*Rule{r}
		case p == prio:
			at = append(at, r)
		}
	}
	return prio, at
}

// firstInOrder returns which of rules the classifier's documented tie rule
// picks: the one in the subtable earliest in lookup order.
func firstInOrder(c *Classifier, rules []*Rule) *Rule {
	for _, st := range c.subtables() {
		for _, r := range rules {
			if r.st == st {
				return r
			}
		}
	}
	return nil
}

func newTestRule(m *flow.Match, prio uint16) *Rule {
	return &Rule{match: m, priority: prio, flow: &flow.Flow{Priority: prio, Match: m}, stats: &ruleStats{}}
}

// checkLookup compares one lookup with the reference, then checks that the
// returned wildcards suffice: keys that agree with k on them get the same
// rule from the classifier and from the reference.
func checkLookup(t *testing.T, c *Classifier, ref *refModel, g keyGen, k packet.Key) {
	t.Helper()
	var wc packet.Key
	got := c.Lookup(&k, &wc)
	prio, at := ref.best(&k)
	if prio < 0 {
		if got != nil {
			t.Fatalf("key %+v: got rule %s priority %d, reference has no match", k, got.match, got.priority)
		}
	} else {
		want := firstInOrder(c, at)
		if got != want {
			t.Fatalf("key %+v: got %v, want priority %d rule %s", k, describe(got), prio, want.match)
		}
	}
	kw, ww := words(&k), words(&wc)
	for range 8 {
		k2 := g.key()
		k2w := words(&k2)
		for i := range k2w {
			k2w[i] = kw[i]&ww[i] | k2w[i]&^ww[i]
		}
		if got2 := c.Lookup(&k2, nil); got2 != got {
			t.Fatalf("wildcards %+v too narrow: key %+v got %v, key %+v got %v", wc, k, describe(got), k2, describe(got2))
		}
		prio2, at2 := ref.best(&k2)
		if prio2 != prio || (prio >= 0 && firstInOrder(c, at2) != got) {
			t.Fatalf("wildcards too narrow: reference disagrees for %+v", k2)
		}
	}
}

func describe(r *Rule) string {
	if r == nil {
		return "no rule"
	}
	return fmt.Sprintf("%s priority %d", r.match, r.priority)
}

// TestClassifierMatchesReference inserts and removes random rules and
// checks random lookups, and their wildcards, against the brute-force
// reference.
func TestClassifierMatchesReference(t *testing.T) {
	for seed := range uint64(20) {
		g := keyGen{rand.New(rand.NewPCG(seed, 7))}
		c := NewClassifier()
		ref := &refModel{}
		for step := range 600 {
			if len(ref.rules) > 0 && g.r.IntN(4) == 0 {
				i := g.r.IntN(len(ref.rules))
				c.remove(ref.rules[i])
				ref.rules = append(ref.rules[:i], ref.rules[i+1:]...)
			} else {
				m, prio := g.match(), uint16(g.r.IntN(8))
				dup := false
				for _, r := range ref.rules {
					dup = dup || r.priority == prio && r.match.Equal(m)
				}
				if !dup {
					r := newTestRule(m, prio)
					c.insert(r)
					ref.rules = append(ref.rules, r)
				}
			}
			if c.Len() != len(ref.rules) {
				t.Fatalf("seed %d step %d: Len %d, reference %d", seed, step, c.Len(), len(ref.rules))
			}
			for range 4 {
				checkLookup(t, c, ref, g, g.key())
			}
		}
	}
}

// TestClassifierStagedWildcards checks that a miss in an early stage
// keeps the later stages' fields out of the wildcards.
func TestClassifierStagedWildcards(t *testing.T) {
	c := NewClassifier()
	m, err := flow.ParseMatch("tcp,nw_src=10.0.0.1,tp_dst=80")
	if err != nil {
		t.Fatal(err)
	}
	c.insert(newTestRule(m, 10))
	k := packet.Key{DlType: 0x0800, NwProto: 6, NwSrc: [4]byte{10, 0, 0, 2}, TpDst: 80}
	var wc packet.Key
	if r := c.Lookup(&k, &wc); r != nil {
		t.Fatalf("lookup matched %s", r.match)
	}
	if wc.TpDst != 0 {
		t.Errorf("an L3 miss unwildcarded tp_dst: %#x", wc.TpDst)
	}
	if wc.NwSrc != [4]byte{255, 255, 255, 255} || wc.DlType != 0xffff {
		t.Errorf("wildcards miss the fields that decided: %+v", wc)
	}
	k.NwSrc = [4]byte{10, 0, 0, 1}
	wc = packet.Key{}
	if r := c.Lookup(&k, &wc); r == nil || wc.TpDst != 0xffff {
		t.Errorf("hit: rule %v, tp_dst wildcard %#x", describe(r), wc.TpDst)
	}
}

// TestClassifierEarlyStop checks that a lookup that finds a rule of the
// highest priority does not look at lower subtables' fields.
func TestClassifierEarlyStop(t *testing.T) {
	c := NewClassifier()
	hi, _ := flow.ParseMatch("in_port=1")
	lo, _ := flow.ParseMatch("ip,nw_dst=10.0.0.0/8")
	c.insert(newTestRule(hi, 100))
	c.insert(newTestRule(lo, 50))
	k := packet.Key{InPort: 1, DlType: 0x0800, NwDst: [4]byte{10, 1, 1, 1}}
	var wc packet.Key
	if r := c.Lookup(&k, &wc); r == nil || r.priority != 100 {
		t.Fatalf("got %v", describe(r))
	}
	if wc.NwDst != [4]byte{} || wc.DlType != 0 {
		t.Errorf("looked past the best rule: %+v", wc)
	}
}

func TestClassifierLookupDoesNotAllocate(t *testing.T) {
	g := keyGen{rand.New(rand.NewPCG(1, 2))}
	c := NewClassifier()
	for i := range 500 {
		c.insert(newTestRule(g.match(), uint16(i)))
	}
	keys := make([]packet.Key, 64)
	for i := range keys {
		keys[i] = g.key()
	}
	var wc packet.Key
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		c.Lookup(&keys[i%len(keys)], &wc)
		c.Lookup(&keys[i%len(keys)], nil)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %.1f times per call", allocs)
	}
}

// TestClassifierConcurrentReaders runs lock-free lookups while a writer
// adds and removes rules: every lookup must return a rule that matches
// the key, never less than the permanent rules guarantee. Run with -race.
func TestClassifierConcurrentReaders(t *testing.T) {
	c := NewClassifier()
	catchAll := newTestRule(flow.NewMatch(packet.Key{}, packet.Key{}), 0)
	c.insert(catchAll)
	pinned, _ := flow.ParseMatch("ip,nw_src=10.0.0.0/8")
	c.insert(newTestRule(pinned, 5))
	var stop atomic.Bool
	var wg sync.WaitGroup
	var failures atomic.Int64
	for reader := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := keyGen{rand.New(rand.NewPCG(uint64(reader), 9))}
			for n := 0; !stop.Load() || n < 1000; n++ {
				k := g.key()
				k.DlType = 0x0800
				r := c.Lookup(&k, nil)
				if r == nil || !r.match.Matches(&k) || r.priority < 5 {
					failures.Add(1)
				}
			}
		}()
	}
	g := keyGen{rand.New(rand.NewPCG(3, 4))}
	var live []*Rule
	for i := range 3000 {
		if len(live) > 50 || (len(live) > 0 && i%3 == 0) {
			j := g.r.IntN(len(live))
			c.remove(live[j])
			live = append(live[:j], live[j+1:]...)
			continue
		}
		r := newTestRule(g.match(), uint16(10+i))
		c.insert(r)
		live = append(live, r)
	}
	stop.Store(true)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d lookups returned a wrong rule during updates", n)
	}
}

// TestClassifierOrderKeptInPlace: the lookup order, now moved one
// subtable at a time instead of sorted again, always holds every
// subtable once, by highest priority and then by when it was reached;
// and each match's rules stay in priority order as they come and go.
func TestClassifierOrderKeptInPlace(t *testing.T) {
	g := keyGen{rand.New(rand.NewPCG(3, 11))}
	c := NewClassifier()
	var rules []*Rule
	seen := map[string]bool{}
	for step := range 3000 {
		if len(rules) > 0 && g.r.IntN(3) == 0 {
			i := g.r.IntN(len(rules))
			c.remove(rules[i])
			delete(seen, fmt.Sprint(rules[i].match, rules[i].priority))
			rules = append(rules[:i], rules[i+1:]...)
		} else {
			m, prio := g.match(), uint16(g.r.IntN(40))
			if id := fmt.Sprint(m, prio); !seen[id] {
				seen[id] = true
				r := newTestRule(m, prio)
				c.insert(r)
				rules = append(rules, r)
			}
		}
		order := *c.order.Load()
		if len(order) != len(c.byMask) {
			t.Fatalf("step %d: %d subtables in the order, %d held", step, len(order), len(c.byMask))
		}
		for i, e := range order {
			if c.byMask[e.st.mask] != e.st || e.maxPrio != e.st.maxPrio {
				t.Fatalf("step %d: entry %d is stale (priority %d, subtable's %d)", step, i, e.maxPrio, e.st.maxPrio)
			}
			if i > 0 {
				p := order[i-1]
				if p.maxPrio < e.maxPrio || p.maxPrio == e.maxPrio && p.st.maxSince > e.st.maxSince {
					t.Fatalf("step %d: entry %d (priority %d, since %d) after (%d, %d)", step, i, e.maxPrio, e.st.maxSince, p.maxPrio, p.st.maxSince)
				}
			}
			e.st.rules.each(func(n *cmapNode) {
				for j := 1; j < len(n.rules); j++ {
					if n.rules[j-1].priority <= n.rules[j].priority {
						t.Fatalf("step %d: a match's rules out of priority order: %d then %d", step, n.rules[j-1].priority, n.rules[j].priority)
					}
				}
			})
		}
	}
}
