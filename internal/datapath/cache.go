package datapath

import (
	"cmp"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gvs/internal/budget"
	"gvs/internal/coverage"
	"gvs/internal/offload"
)

// The flow cache's counters, added once per batch so that port threads
// do not share a cache line per packet.
var (
	cacheHits      = coverage.New("datapath_flow_hit")
	cacheMisses    = coverage.New("datapath_flow_miss")
	cacheEvictions = coverage.New("datapath_flow_evict")
	cacheStale     = coverage.New("datapath_flow_stale")
	cacheUncached  = coverage.New("datapath_flow_uncacheable")
	cacheOverMem   = coverage.New("datapath_flow_memory_full")
)

// FlowCacheMemory is the memory all port threads' flow caches together
// may hold, in bytes as flowCost counts them: each cache is bounded by
// the flow limit, but 4,096 ports times a million flows of up to 8,192
// actions would be far more than a host has.
const FlowCacheMemory = 1 << 30

// The shared budget: flowMemBudget is FlowCacheMemory (a variable for
// tests), flowMemUsed what the caches hold (live flows and the ones kept
// for reuse), flowCaches how many caches share it. They are touched on
// a cache miss only, never on a hit.
var (
	flowMemBudget atomic.Int64
	flowMemUsed   atomic.Int64
	flowCaches    atomic.Int64
)

func init() { flowMemBudget.Store(FlowCacheMemory) }

// flowBaseCost is what a flow costs besides its action and effect
// lists: the flow, at most four subtable slots (a subtable is at most
// half full, and doubles) and four entries of the eviction order.
const flowBaseCost = int64(unsafe.Sizeof(cacheFlow{}) + 4*unsafe.Sizeof(slot{}) + 4*unsafe.Sizeof(orderEntry{}))

// flowCost is what f holds, counted against the shared budget.
func flowCost(f *cacheFlow) int64 {
	return flowBaseCost + int64(cap(f.actions))*int64(unsafe.Sizeof(Action{})) +
		int64(cap(f.effects))*int64(unsafe.Sizeof(Effect{}))
}

// FlowCacheMemoryUsed returns what the flow caches hold, for
// memory/show-style reports and tests.
func FlowCacheMemoryUsed() int64 { return flowMemUsed.Load() }

// DefaultFlowLimit is how many flows a port thread's cache holds unless
// the operator says otherwise (Open_vSwitch other_config:flow-limit): as
// many as a thread of OVS's userspace datapath keeps, a few MiB.
const DefaultFlowLimit = 65536

// MaxFlowLimit bounds the flow limit an operator may set.
const MaxFlowLimit = 1_000_000

// maxMaskWords bounds the 64-bit words of the key a cached flow's mask
// may look at (NORMAL looks at five or six); a translation that read
// more is used for its packet and not cached, which keeps a flow small
// and its compare short.
const maxMaskWords = 16

// maxMasks bounds the distinct masks (subtables) of one cache: each costs
// a probe per lookup, so a translation with a new mask past this is used
// for its packet and not cached.
const maxMasks = 64

// keyWords is the size of Key in 64-bit words.
const keyWords = int(unsafe.Sizeof(Key{}) / 8)

// A compile-time check that Key is a whole number of words.
var _ = [1]struct{}{}[unsafe.Sizeof(Key{})%8]

type keyView = [keyWords]uint64

func words(k *Key) *keyView { return (*keyView)(unsafe.Pointer(k)) }

// flowCache is one port thread's cache of translations, megaflow style:
// a translation is kept under its key masked with the bits it read, in
// the subtable of its mask; a packet is looked up in each subtable with
// its key masked by that subtable's mask. Only its thread looks up and
// installs; dumps and flushes from ovs-appctl take mu, which the thread
// holds while it processes a batch, so it is never contended on the
// packet path.
type flowCache struct {
	mu        sync.Mutex
	subtables []*subtable
	n         int
	limit     int
	lookups   int // until the next sort
	// order holds the flows in the order they were installed, for
	// eviction (oldest first) from head on; removed flows stay in it,
	// marked dead, until eviction reaches them or it is compacted.
	order []orderEntry
	head  int
	seq   uint64 // installations so far
	free  []*cacheFlow

	// touched holds the flows that matched packets in this batch and
	// account rules, to be accounted at its end; wall is the batch's
	// time for them, read when first needed.
	touched   []*cacheFlow
	wall      time.Time
	wallClock func() time.Time

	// charged is what this cache's flows (live and free) hold of the
	// shared budget; released, that the cache's thread is gone.
	charged  int64
	released bool

	// Counts since the last batch's flush to the coverage counters.
	hits, misses, evictions, stale, uncached, overMem uint64

	// kslots are the kernel fast path's mask slots of this cache's port
	// (see fastpath.go), by the subtable that has each; kreads and
	// kgone are pullKernel's lists, kept for reuse.
	kslots [offload.MaxMasks]*subtable
	kreads []kernelRead
	kgone  []*cacheFlow
}

// orderEntry is a flow in the eviction order, as installed the seq'th
// time: a flow removed and reused since is another flow, and the entry
// is stale.
type orderEntry struct {
	f   *cacheFlow
	seq uint64
}

func (e orderEntry) live() bool { return e.f != nil && !e.f.dead && e.f.seq == e.seq }

// key returns f's masked key, for dumps.
func (f *cacheFlow) key() Key {
	var k Key
	kw := words(&k)
	for i, w := range f.st.idx {
		kw[w] = f.vals[i]
	}
	return k
}

// subtable holds the flows of one mask, in an open-addressing table with
// linear probing, keyed by a hash of the masked words.
type subtable struct {
	mask  Key
	idx   []uint16 // the words of the mask that are not zero
	mwrd  []uint64 // their mask values
	slots []slot
	n     int
	hits  uint64 // since the subtables were last sorted
	// kmask is the kernel's mask slot plus one (0: none), kflows how
	// many of its flows are in the kernel.
	kmask, kflows int
}

// slot is one place of a subtable: the flow's hash is beside the pointer
// so that probing past other flows does not touch them.
type slot struct {
	hash uint64
	f    *cacheFlow
}

// sortEvery is how many lookups go by between sorting the subtables by
// their hits, so that the masks most packets have are tried first.
const sortEvery = 4096

// cacheFlow is one cached translation.
type cacheFlow struct {
	st      *subtable
	hash    uint64
	vals    [maxMaskWords]uint64 // the masked key words; [:len(st.idx)], parallel to st.idx
	actions []Action
	effects []Effect
	gen     uint64
	expires int64 // monotime; 0: only the generation ends it
	created int64
	dead    bool
	seq     uint64 // of its installation, see orderEntry
	cost    int64  // charged to the shared budget, see flowCost
	// pinned counts the executions of its actions under way (a
	// recirculation runs within one): a flow removed meanwhile is not
	// reused, so that its action list stays as it is.
	pinned int
	// accounts says the flow has effects applied once a batch;
	// touched, that it is in the cache's touched list; accPackets and
	// accBytes are what its rules and counters have been told of so far.
	accounts, touched    bool
	accPackets, accBytes uint64

	// Plain fields, not atomics: the port thread holds the cache's lock
	// for a whole batch, and dumps read them under it too, so a hit costs
	// no locked instruction.
	packets, bytes uint64
	used           int64 // monotime of the last hit; 0: never

	// kf is the flow's copy in the kernel fast path, of port kport;
	// kPackets and kBytes are its kernel counters already taken into
	// packets and bytes.
	kf               offload.Flow
	kport            *offload.Port
	kPackets, kBytes uint64
}

func newFlowCache(limit int) *flowCache {
	c := &flowCache{limit: limit}
	flowCaches.Add(1)
	c.wallClock = func() time.Time {
		if c.wall.IsZero() {
			c.wall = time.Now()
		}
		return c.wall
	}
	return c
}

// touch notes that f matched a packet of this batch.
func (c *flowCache) touch(f *cacheFlow) {
	if f.accounts && !f.touched {
		f.touched = true
		c.touched = append(c.touched, f)
	}
}

// account tells the rules of the flows this batch touched what they
// matched, once per flow.
func (c *flowCache) account() {
	for i, f := range c.touched {
		c.accountFlow(f)
		f.touched = false
		c.touched[i] = nil
	}
	c.touched = c.touched[:0]
	c.wall = time.Time{}
}

// accountFlow tells f's rules what f matched since it last did.
func (c *flowCache) accountFlow(f *cacheFlow) { c.accountEffects(f, true) }

// accountEffects is accountFlow, learning MAC addresses only if learn
// says so.
func (c *flowCache) accountEffects(f *cacheFlow, learn bool) {
	p, b := f.packets, f.bytes
	dp, db := p-f.accPackets, b-f.accBytes
	if dp == 0 {
		return
	}
	f.accPackets, f.accBytes = p, b
	now := c.wallClock()
	for i := range f.effects {
		switch e := &f.effects[i]; e.Kind {
		case EffectAccount:
			e.Accounter.Account(dp, db, now)
		case EffectCount:
			e.Counter.Packets.Add(dp)
			e.Counter.Bytes.Add(db)
		case EffectLearn:
			if learn {
				e.Learner.Learn(e.MAC, e.VLAN, e.Port)
			}
		}
	}
}

// hashWords hashes the words of k that s's mask selects.
func (s *subtable) hashWords(kw *keyView) uint64 {
	h := uint64(len(s.idx))
	for i, w := range s.idx {
		h ^= kw[w] & s.mwrd[i]
		h = bits.RotateLeft64(h*0x9e3779b97f4a7c15, 31)
	}
	// A final mix, so that every bit of the key reaches the low bits
	// that pick the slot.
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}

func (f *cacheFlow) matches(kw *keyView) bool {
	s := f.st
	for i, w := range s.idx {
		if kw[w]&s.mwrd[i] != f.vals[i] {
			return false
		}
	}
	return true
}

// lookup returns the flow that k belongs to, or nil. A flow made before
// generation gen, or past its expiry at now, is removed and not returned.
func (c *flowCache) lookup(k *Key, gen uint64, now int64) *cacheFlow {
	if c.lookups++; c.lookups >= sortEvery {
		c.sortSubtables()
	}
	kw := words(k)
	for _, s := range c.subtables {
		if s.n == 0 {
			continue
		}
		h := s.hashWords(kw)
		mask := uint64(len(s.slots) - 1)
		for i := h & mask; ; i = (i + 1) & mask {
			sl := &s.slots[i]
			if sl.f == nil {
				break
			}
			if sl.hash != h || !sl.f.matches(kw) {
				continue
			}
			f := sl.f
			if f.gen != gen || (f.expires != 0 && now >= f.expires) {
				c.remove(f)
				c.stale++
				break
			}
			s.hits++
			c.hits++
			return f
		}
	}
	c.misses++
	return nil
}

// sortSubtables puts the subtables with the most hits first.
func (c *flowCache) sortSubtables() {
	c.lookups = 0
	slices.SortStableFunc(c.subtables, func(a, b *subtable) int { return cmp.Compare(b.hits, a.hits) })
	for _, s := range c.subtables {
		s.hits = 0
	}
}

// install caches translation x of key k, made at generation gen, and
// returns the new flow; nil when x is not to be cached.
func (c *flowCache) install(k *Key, x *Xlate, gen uint64, now int64) *cacheFlow {
	if x.NoCache || c.limit <= 0 {
		c.uncached++
		return nil
	}
	s := c.subtableFor(&x.Mask)
	if s == nil {
		c.uncached++
		return nil
	}
	for c.n >= c.limit {
		c.evictOldest()
	}
	need := flowBaseCost + int64(len(x.Actions))*int64(unsafe.Sizeof(Action{})) +
		int64(len(x.Effects))*int64(unsafe.Sizeof(Effect{}))
	if !c.makeRoom(need) {
		c.overMem++
		c.uncached++
		return nil
	}
	f := c.newFlow()
	f.st, f.gen, f.created, f.dead = s, gen, now, false
	f.expires = 0
	if x.TTL > 0 {
		f.expires = now + int64(x.TTL)
	}
	kw := words(k)
	for i, w := range s.idx {
		f.vals[i] = kw[w] & s.mwrd[i]
	}
	f.hash = s.hashWords(kw)
	f.actions = copyExact(f.actions, x.Actions)
	f.effects = copyExact(f.effects, x.Effects)
	c.charge(f, need)
	f.accounts, f.touched, f.accPackets, f.accBytes = false, false, 0, 0
	for i := range f.effects {
		k := f.effects[i].Kind
		f.accounts = f.accounts || k == EffectAccount || k == EffectCount || k == EffectLearn
	}
	f.packets, f.bytes, f.used = 0, 0, 0
	s.insert(f)
	c.n++
	c.seq++
	f.seq = c.seq
	c.order = append(c.order, orderEntry{f: f, seq: f.seq})
	c.compactOrder()
	return f
}

// newFlow returns a flow from the free list, or a new one.
func (c *flowCache) newFlow() *cacheFlow {
	if n := len(c.free); n > 0 {
		f := c.free[n-1]
		c.free[n-1] = nil
		c.free = c.free[:n-1]
		return f
	}
	return &cacheFlow{}
}

// subtableFor returns the subtable of mask m, making it if there is room.
func (c *flowCache) subtableFor(m *Key) *subtable {
	for _, s := range c.subtables {
		if s.mask == *m {
			return s
		}
	}
	if len(c.subtables) >= maxMasks {
		// Subtables left empty by removals make room for new masks.
		c.dropEmptySubtables()
		if len(c.subtables) >= maxMasks {
			return nil
		}
	}
	s := &subtable{mask: *m, slots: make([]slot, 8)}
	for i, w := range words(m) {
		if w != 0 {
			s.idx = append(s.idx, uint16(i))
			s.mwrd = append(s.mwrd, w)
		}
	}
	if len(s.idx) > maxMaskWords {
		return nil
	}
	c.subtables = append(c.subtables, s)
	return s
}

func (c *flowCache) dropEmptySubtables() {
	kept := c.subtables[:0]
	for _, s := range c.subtables {
		if s.n > 0 {
			kept = append(kept, s)
		}
	}
	clear(c.subtables[len(kept):])
	c.subtables = kept
}

// insert puts f into s, growing s to keep it at most half full.
func (s *subtable) insert(f *cacheFlow) {
	if 2*(s.n+1) > len(s.slots) {
		old := s.slots
		s.slots = make([]slot, 2*len(old))
		for _, g := range old {
			if g.f != nil {
				s.place(g.f)
			}
		}
	}
	s.place(f)
	s.n++
}

func (s *subtable) place(f *cacheFlow) {
	mask := uint64(len(s.slots) - 1)
	i := f.hash & mask
	for s.slots[i].f != nil {
		i = (i + 1) & mask
	}
	s.slots[i] = slot{hash: f.hash, f: f}
}

// delete takes f out of s's slots, shifting back the flows after it so
// that no probe sequence is broken.
func (s *subtable) delete(f *cacheFlow) {
	mask := uint64(len(s.slots) - 1)
	i := f.hash & mask
	for s.slots[i].f != f {
		if s.slots[i].f == nil {
			return // not here (cannot happen)
		}
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; s.slots[j].f != nil; j = (j + 1) & mask {
		home := s.slots[j].hash & mask
		// The flow at j may fill the hole at i unless its home lies
		// cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = slot{}
	s.n--
}

// remove takes f out of the cache and recycles it at once, so that a
// generation change (every flow made again) allocates nothing: its entry
// in the eviction order goes stale with it (see orderEntry).
func (c *flowCache) remove(f *cacheFlow) {
	if f.dead {
		return
	}
	c.unoffload(f)
	if f.touched {
		// Its packets of this batch are accounted now, before it is
		// reused.
		c.accountFlow(f)
		f.touched = false
		c.touched = slices.DeleteFunc(c.touched, func(g *cacheFlow) bool { return g == f })
	}
	f.st.delete(f)
	f.dead = true
	c.n--
	if len(c.free) < maxFree && f.pinned == 0 {
		f.st = nil
		c.free = append(c.free, f)
	} else {
		c.uncharge(f)
	}
}

// charge counts what f holds now against the shared budget, in place
// of the reserved bytes makeRoom took for it: what f grew by is at most
// that (copyExact), so the budget is never passed.
func (c *flowCache) charge(f *cacheFlow, reserved int64) {
	cost := flowCost(f)
	d := cost - f.cost
	f.cost = cost
	c.charged += d
	flowMemUsed.Add(d - reserved)
}

// copyExact copies src into dst, growing dst to exactly len(src) if it
// is too small, so that a flow's lists cost no more than makeRoom
// reserved for them (append would round the capacity up).
func copyExact[T any](dst, src []T) []T {
	if cap(dst) < len(src) {
		dst = make([]T, len(src))
	}
	dst = dst[:len(src)]
	copy(dst, src)
	return dst
}

// uncharge gives back what f held: it is left to the garbage collector.
func (c *flowCache) uncharge(f *cacheFlow) {
	c.charged -= f.cost
	flowMemUsed.Add(-f.cost)
	f.cost = 0
}

// fairShare is the part of the shared budget each cache may keep when
// the budget is full.
func fairShare() int64 { return flowMemBudget.Load() / max(flowCaches.Load(), 1) }

// makeRoom makes room in the shared budget for a flow that needs need
// bytes: by dropping the flows kept for reuse, and, while this cache
// holds more than its fair share, by evicting its oldest flows. A cache
// within its share whose flow does not fit is refused: the caches above
// theirs shrink at their next batch (trim), so one port's many flows
// cannot keep the others' out for long.
//
// The room is reserved (budget.Reserve), so port threads adding at once
// cannot pass the budget together; charge turns the reservation into
// the flow's cost.
func (c *flowCache) makeRoom(need int64) bool {
	for !budget.Reserve(&flowMemUsed, need, flowMemBudget.Load()) {
		if len(c.free) > 0 {
			c.dropFree()
			continue
		}
		if c.n == 0 || c.charged+need <= fairShare() {
			return false
		}
		c.evictOldest()
	}
	return true
}

// trim, called at the start of a batch, shrinks a cache that holds more
// than its fair share while the shared budget is full.
func (c *flowCache) trim() {
	if flowMemUsed.Load() < flowMemBudget.Load()-flowMemBudget.Load()/16 {
		return
	}
	c.dropFree()
	for share := fairShare(); c.charged > share && c.n > 0; {
		c.evictOldest()
		c.dropFree()
	}
}

// dropFree leaves the flows kept for reuse to the garbage collector.
func (c *flowCache) dropFree() {
	for i, f := range c.free {
		c.uncharge(f)
		c.free[i] = nil
	}
	c.free = c.free[:0]
}

// release gives back all the cache holds, when its thread ends.
func (c *flowCache) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	c.flush()
	flowCaches.Add(-1)
}

// maxFree bounds the flows kept for reuse.
const maxFree = 1024

// evictOldest removes the oldest live flow.
func (c *flowCache) evictOldest() {
	for c.head < len(c.order) {
		e := c.order[c.head]
		c.order[c.head] = orderEntry{}
		c.head++
		if e.live() {
			c.remove(e.f)
			c.evictions++
			break
		}
	}
	c.compactOrder()
}

// compactOrder drops the evicted prefix and stale entries from order once
// they are most of it, so that it stays proportional to the live flows.
func (c *flowCache) compactOrder() {
	if 2*c.head < len(c.order) && len(c.order) < 4*(c.n+16) {
		return
	}
	kept := c.order[:0]
	for _, e := range c.order[c.head:] {
		if e.live() {
			kept = append(kept, e)
		}
	}
	clear(c.order[len(kept):])
	c.order, c.head = kept, 0
}

// flush removes every flow.
func (c *flowCache) flush() {
	c.forgetKernel()
	c.subtables = nil
	c.order, c.head, c.n = nil, 0, 0
	c.free = nil
	// The flows are the garbage collector's now (a flow pinned by an
	// execution under way too: it is not reused).
	flowMemUsed.Add(-c.charged)
	c.charged = 0
}

// reportCounts adds the batch's counts to the coverage counters.
func (c *flowCache) reportCounts() {
	if c.hits != 0 {
		cacheHits.Add(c.hits)
	}
	if c.misses != 0 {
		cacheMisses.Add(c.misses)
	}
	if c.evictions != 0 {
		cacheEvictions.Add(c.evictions)
	}
	if c.stale != 0 {
		cacheStale.Add(c.stale)
	}
	if c.uncached != 0 {
		cacheUncached.Add(c.uncached)
	}
	if c.overMem != 0 {
		cacheOverMem.Add(c.overMem)
	}
	c.hits, c.misses, c.evictions, c.stale, c.uncached, c.overMem = 0, 0, 0, 0, 0, 0
}
