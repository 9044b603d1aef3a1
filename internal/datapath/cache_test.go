package datapath

import (
	"math/rand"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// cacheKey is a key on port in from src to dst.
func cacheKey(in uint32, src, dst byte) Key {
	var k Key
	k.InPort = in
	k.DlSrc = [6]byte{2, 0, 0, 0, 0, src}
	k.DlDst = [6]byte{2, 0, 0, 0, 0, dst}
	k.DlType = 0x0800
	return k
}

// xlateTo is a translation to port out that read in_port, dl_dst and,
// with src, dl_src.
func xlateTo(out uint32, src bool) *Xlate {
	x := &Xlate{Actions: []Action{Output(out)}}
	x.Mask.InPort = ^uint32(0)
	x.Mask.DlDst = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if src {
		x.Mask.DlSrc = x.Mask.DlDst
	}
	return x
}

func TestFlowCacheMaskedHitAndMiss(t *testing.T) {
	c := newFlowCache(100)
	k := cacheKey(1, 0xa, 0xb)
	if c.lookup(&k, 7, 0) != nil {
		t.Fatal("hit in an empty cache")
	}
	c.install(&k, xlateTo(2, false), 7, 0)
	other := cacheKey(1, 0xc, 0xb) // differs only where the mask does not look
	other.DlType = 0x86dd
	if f := c.lookup(&other, 7, 0); f == nil || f.actions[0].Port != 2 {
		t.Fatalf("key agreeing under the mask missed: %v", f)
	}
	for _, miss := range []Key{cacheKey(1, 0xa, 0xc), cacheKey(2, 0xa, 0xb)} {
		if c.lookup(&miss, 7, 0) != nil {
			t.Errorf("key %v differing under the mask hit", miss.DlDst)
		}
	}
	// A second mask: its own subtable, both found.
	k2 := cacheKey(1, 0xa, 0xd)
	c.install(&k2, xlateTo(3, true), 7, 0)
	if f := c.lookup(&k2, 7, 0); f == nil || f.actions[0].Port != 3 {
		t.Fatalf("flow of the second mask not found: %v", f)
	}
	if len(c.subtables) != 2 {
		t.Errorf("%d subtables, want 2", len(c.subtables))
	}
	if c.hits != 2 || c.misses != 3 {
		t.Errorf("hits %d misses %d, want 2 and 3", c.hits, c.misses)
	}
}

func TestFlowCacheGenerationAndExpiry(t *testing.T) {
	c := newFlowCache(100)
	k := cacheKey(1, 0xa, 0xb)
	c.install(&k, xlateTo(2, false), 7, 0)
	if c.lookup(&k, 8, 0) != nil {
		t.Fatal("a flow of generation 7 hit at generation 8")
	}
	if c.n != 0 || c.stale != 1 {
		t.Fatalf("stale flow not removed: %d flows, %d stale", c.n, c.stale)
	}
	x := xlateTo(2, false)
	x.TTL = time.Second
	c.install(&k, x, 8, 1000)
	if c.lookup(&k, 8, 1000+int64(time.Second)-1) == nil {
		t.Fatal("flow missed before its TTL")
	}
	if c.lookup(&k, 8, 1000+int64(time.Second)) != nil {
		t.Fatal("flow hit after its TTL")
	}
	x.NoCache = true
	if c.install(&k, x, 8, 0) != nil || c.lookup(&k, 8, 0) != nil {
		t.Fatal("a NoCache translation was cached")
	}
	wide := xlateTo(2, true)
	wide.Mask.IPv6Src = [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	wide.Mask.IPv6Dst, wide.Mask.NdTarget, wide.Mask.CtLabel = wide.Mask.IPv6Src, wide.Mask.IPv6Src, wide.Mask.IPv6Src
	wide.Mask.CtIPv6Src, wide.Mask.CtIPv6Dst = wide.Mask.IPv6Src, wide.Mask.IPv6Src
	if c.install(&k, wide, 8, 0) != nil {
		t.Fatal("a translation whose mask spans more than maxMaskWords words was cached")
	}
}

func TestFlowCacheLimitEvictsOldest(t *testing.T) {
	c := newFlowCache(3)
	for dst := byte(1); dst <= 5; dst++ {
		k := cacheKey(1, 0xa, dst)
		c.install(&k, xlateTo(uint32(dst), false), 1, 0)
	}
	if c.n != 3 || c.evictions != 2 {
		t.Fatalf("%d flows, %d evictions; want 3 and 2", c.n, c.evictions)
	}
	for dst := byte(1); dst <= 5; dst++ {
		k := cacheKey(1, 0xa, dst)
		if hit := c.lookup(&k, 1, 0) != nil; hit != (dst >= 3) {
			t.Errorf("dst %d: hit %v", dst, hit)
		}
	}
	c.limit = 0
	k := cacheKey(1, 0xa, 9)
	if c.install(&k, xlateTo(9, false), 1, 0) != nil {
		t.Error("a flow was cached with a limit of 0")
	}
}

// TestFlowCacheRandomized installs, expires and evicts at random and
// checks the cache against a model: the flows still in it are exactly
// the newest ones within the limit, each found with its own actions.
func TestFlowCacheRandomized(t *testing.T) {
	const limit = 40
	rng := rand.New(rand.NewSource(1))
	c := newFlowCache(limit)
	var order []byte // model: the live dsts, oldest first
	gen := uint64(1)
	for step := 0; step < 5000; step++ {
		if rng.Intn(500) == 0 {
			gen++
			order = nil
		}
		dst := byte(rng.Intn(200))
		k := cacheKey(1, 0xa, dst)
		f := c.lookup(&k, gen, 0)
		live := -1
		for i, d := range order {
			if d == dst {
				live = i
			}
		}
		if (f != nil) != (live >= 0) {
			t.Fatalf("step %d: dst %d hit %v, model says %v", step, dst, f != nil, live >= 0)
		}
		if f != nil {
			if f.actions[0].Port != uint32(dst) {
				t.Fatalf("step %d: dst %d got the actions of %d", step, dst, f.actions[0].Port)
			}
			continue
		}
		c.install(&k, xlateTo(uint32(dst), dst%2 == 0), gen, 0)
		order = append(order, dst)
		if len(order) > limit {
			order = order[1:]
		}
		if c.n > limit || c.n < len(order) {
			t.Fatalf("step %d: %d flows, model %d live (and stale ones up to %d)", step, c.n, len(order), limit)
		}
	}
	if len(c.order) > 4*(limit+16)+limit {
		t.Errorf("eviction order grew to %d entries", len(c.order))
	}
}

func TestFlowCacheHitDoesNotAllocate(t *testing.T) {
	c := newFlowCache(1000)
	keys := make([]Key, 100)
	for i := range keys {
		keys[i] = cacheKey(1, 0xa, byte(i))
		c.install(&keys[i], xlateTo(2, i%2 == 0), 1, 0)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		for i := range keys {
			if c.lookup(&keys[i], 1, 0) == nil {
				t.Fatal("miss")
			}
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per 100 hits", allocs)
	}
}

// BenchmarkFlowCacheHit is one lookup that hits, in a cache of 1,000
// flows over two masks.
func BenchmarkFlowCacheHit(b *testing.B) {
	c := newFlowCache(10000)
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = cacheKey(1, byte(i>>8), byte(i))
		c.install(&keys[i], xlateTo(2, i%2 == 0), 1, 0)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c.lookup(&keys[i%len(keys)], 1, 0) == nil {
			b.Fatal("miss")
		}
	}
}

// TestFlowCacheRebuildDoesNotAllocate checks that making every flow again
// after a generation change (a MAC learned, a flow added) reuses the
// stale flows instead of allocating.
func TestFlowCacheRebuildDoesNotAllocate(t *testing.T) {
	c := newFlowCache(1000)
	keys := make([]Key, 100)
	xs := make([]*Xlate, len(keys))
	for i := range keys {
		keys[i] = cacheKey(1, 0xa, byte(i))
		xs[i] = xlateTo(uint32(i), i%2 == 0)
		c.install(&keys[i], xs[i], 1, 0)
	}
	gen := uint64(1)
	if allocs := testing.AllocsPerRun(50, func() {
		gen++
		for i := range keys {
			if c.lookup(&keys[i], gen, 0) != nil {
				t.Fatal("stale flow hit")
			}
			c.install(&keys[i], xs[i], gen, 0)
		}
	}); allocs != 0 {
		t.Errorf("%v allocations to make 100 flows again", allocs)
	}
	if c.n != len(keys) || len(c.order)-c.head > 4*(len(keys)+16) {
		t.Errorf("%d flows, %d in eviction order", c.n, len(c.order)-c.head)
	}
}

// setFlowCacheBudget makes the flow caches' shared budget n bytes for
// the test.
func setFlowCacheBudget(t *testing.T, n int64) {
	old := flowMemBudget.Load()
	flowMemBudget.Store(n)
	t.Cleanup(func() { flowMemBudget.Store(old) })
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// xlateWide is a translation to port out with n actions, as a flood on
// a bridge of n ports makes.
func xlateWide(out uint32, n int) *Xlate {
	x := xlateTo(out, true)
	for i := 1; i < n; i++ {
		x.Actions = append(x.Actions, Output(uint32(i)))
	}
	return x
}

// TestFlowCachesShareAMemoryBudget fills many port threads' caches, each
// within its flow limit, and checks that together they hold no more
// than the shared budget: without it, 4,096 ports of 65,536 flows each
// held whatever a packet sender made them learn. A cache that comes
// when the budget is full gets its room back from the others at their
// next batch.
func TestFlowCachesShareAMemoryBudget(t *testing.T) {
	const budget = 4 << 20
	setFlowCacheBudget(t, budget)
	usedBefore := FlowCacheMemoryUsed() // by caches of other tests
	before := heapInUse()
	var caches []*flowCache
	for i := range 16 {
		c := newFlowCache(DefaultFlowLimit)
		caches = append(caches, c)
		for j := range 4000 {
			k := cacheKey(uint32(i), byte(j), byte(j>>8))
			c.install(&k, xlateWide(2, 16), 1, 0)
		}
	}
	grown := heapInUse() - before
	t.Logf("16 caches of 4000 flows: heap grew %d KiB, budget %d KiB, charged %d KiB",
		grown>>10, budget>>10, FlowCacheMemoryUsed()>>10)
	if grown > 2*budget {
		t.Errorf("the caches hold %d KiB, more than twice the %d KiB budget", grown>>10, budget>>10)
	}
	if used := FlowCacheMemoryUsed(); used > budget {
		t.Errorf("charged %d bytes, budget %d", used, budget)
	}

	// A newcomer is refused while the budget is full, and fits once the
	// others, over their share, trim at their next batch.
	late := newFlowCache(DefaultFlowLimit)
	k := cacheKey(99, 1, 1)
	if late.install(&k, xlateWide(2, 16), 1, 0) != nil && FlowCacheMemoryUsed() > budget {
		t.Errorf("a flow installed past the budget")
	}
	for _, c := range caches {
		c.trim()
	}
	for j := range 100 {
		k := cacheKey(99, byte(j), 2)
		if late.install(&k, xlateWide(2, 16), 1, 0) == nil {
			t.Fatalf("flow %d of a cache within its share refused after the others trimmed", j)
		}
	}
	late.release()
	for _, c := range caches {
		c.release()
	}
	if used := FlowCacheMemoryUsed(); used != usedBefore {
		t.Errorf("%d bytes still charged after every cache was released", used)
	}
	runtime.KeepAlive(caches)
}

// TestFlowCacheBudgetUnderParallelMisses: port threads installing flows
// at once each checked the shared budget and then charged their flow,
// so together they passed it by a flow or more each. The room is now
// reserved with a compare-and-swap, and a flow costs no more than its
// reservation: the charge never passes the budget, as each thread sees
// after each of its installs.
func TestFlowCacheBudgetUnderParallelMisses(t *testing.T) {
	const budget = 1 << 20
	limit := FlowCacheMemoryUsed() + budget // with other tests' caches
	setFlowCacheBudget(t, limit)
	var caches []*flowCache
	var worst atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		c := newFlowCache(DefaultFlowLimit)
		caches = append(caches, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20000 {
				k := cacheKey(uint32(i), byte(j), byte(j>>8))
				c.mu.Lock()
				c.install(&k, xlateWide(2, 1+j%16), 1, 0)
				c.mu.Unlock()
				if used := FlowCacheMemoryUsed(); used > limit {
					worst.CompareAndSwap(0, used)
				}
			}
		}()
	}
	wg.Wait()
	if w := worst.Load(); w > 0 {
		t.Errorf("the flow caches were charged %d bytes past the budget", w-limit)
	}
	for _, c := range caches {
		c.release()
	}
}
