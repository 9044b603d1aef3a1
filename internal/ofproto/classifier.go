package ofproto

import (
	"slices"
	"sort"
	"sync/atomic"
	"unsafe"

	"gvs/internal/packet"
)

// The classifier finds the highest-priority rule whose match a flow key
// satisfies, among rules with arbitrary masks. It is tuple-space search,
// as OVS's classifier: one subtable per distinct mask, each a hash table
// keyed by the key words under that mask, so that a lookup costs one hash
// probe per mask rather than one compare per rule. Subtables are searched
// in descending order of the highest priority they hold, and the search
// stops as soon as no later subtable can hold a better rule.
//
// Staged lookup: a subtable hashes the key in four stages (metadata, L2,
// L3, L4) and keeps the set of hashes of its rules' first stages; a key
// whose early stages match no rule leaves the subtable before its later
// fields are even read. That keeps the later fields out of the wildcard
// mask the lookup reports (an L3 miss does not make a cache entry depend
// on the TCP ports).
//
// Wildcards: Lookup ORs into a caller's mask every key bit it looked at.
// Any key that agrees with the looked-up key on those bits gets the same
// answer, which is what a megaflow cache entry keyed by the masked key
// needs. (OVS also narrows IP prefixes with tries; gvs does not yet, so
// a subtable with a /8 and a /24 looks at all 24 bits of a miss.)
//
// Concurrency: one writer at a time (Classifier serializes writers with
// its table's lock), any number of readers on the packet path that take
// no lock. Subtables' hash tables are cmaps (copy-on-write chains behind
// atomic pointers) and the ordered subtable list is an immutable slice
// published through an atomic pointer, rebuilt when a subtable appears,
// disappears or changes its highest priority. A writer inserts a rule
// into the stage sets before the rule map and removes it in the opposite
// order, and publishes a higher priority after the rule and a lower one
// before removing it, so a concurrent reader sees each change either not
// at all or entirely. Nothing is freed while a reader may hold it: the
// garbage collector does what RCU does in OVS.
//
// Ties: of two rules with the same priority that a key both matches, the
// one in the subtable that reached that priority first wins, which is
// the one dump-flows lists first (Table.Dump orders rules as OVS 3.1
// does). OpenFlow leaves this undefined; gvs makes it deterministic so
// that the same flows always forward the same way.

// keyWords is the size of packet.Key in 64-bit words.
const keyWords = int(unsafe.Sizeof(packet.Key{}) / 8)

// keyWordView is packet.Key seen as words. packet.Key starts with a uint64
// and has no padding (flow.keyWords checks the same).
type keyWordView = [keyWords]uint64

func words(k *packet.Key) *keyWordView { return (*keyWordView)(unsafe.Pointer(k)) }

// Lookup stages.
const (
	stageMeta = iota
	stageL2
	stageL3
	stageL4
	numStages
)

// wordStage is the stage each key word is hashed in: the latest stage of
// the fields it holds, so that a word is never read before the stage its
// fields belong to.
var wordStage = func() (st [keyWords]uint8) {
	var k packet.Key
	base := uintptr(unsafe.Pointer(&k))
	mark := func(stage uint8, ptr unsafe.Pointer, size uintptr) {
		off := uintptr(ptr) - base
		for w := off / 8; w <= (off+size-1)/8; w++ {
			st[w] = max(st[w], stage)
		}
	}
	// Metadata (tunnel, registers, conntrack, marks) is every word's
	// default; the packet's own fields follow.
	mark(stageL2, unsafe.Pointer(&k.MPLSLSE), unsafe.Sizeof(k.MPLSLSE))
	mark(stageL2, unsafe.Pointer(&k.VLANTCI), 2)
	mark(stageL2, unsafe.Pointer(&k.InnerVLANTCI), 2)
	mark(stageL2, unsafe.Pointer(&k.DlType), 2)
	mark(stageL2, unsafe.Pointer(&k.DlSrc), 12)
	mark(stageL3, unsafe.Pointer(&k.IPv6Label), 4)
	mark(stageL3, unsafe.Pointer(&k.ArpOp), 2)
	mark(stageL3, unsafe.Pointer(&k.NwProto), 4)
	mark(stageL3, unsafe.Pointer(&k.NwSrc), 8)
	mark(stageL3, unsafe.Pointer(&k.IPv6Src), 32)
	mark(stageL3, unsafe.Pointer(&k.ArpSha), 20)
	mark(stageL4, unsafe.Pointer(&k.TpSrc), 6)
	mark(stageL4, unsafe.Pointer(&k.NdTarget), 28)
	return st
}()

// hashWord folds one masked key word into a running hash.
func hashWord(h, v uint64) uint64 {
	h ^= v
	h *= 0x9e3779b97f4a7c15
	return h ^ h>>32
}

const hashBasis = 0x5bd1e9955bd1e995

// subtable holds the rules of one mask.
type subtable struct {
	mask packet.Key
	// idx and maskw are the mask's non-zero words in stage order, and
	// stageEnd[s] is where stage s ends in them. nstages counts the stages
	// up to the last one with a word; a mask with none has nstages 0.
	idx      []uint8
	maskw    []uint64
	stageEnd [numStages]uint8
	nstages  int
	// stageSets[s] holds the hashes of the rules' stages 0..s, for every
	// stage but the last; stageRefs counts rules per hash (writer only).
	stageSets [numStages - 1]*cmap
	stageRefs [numStages - 1]map[uint64]int
	rules     *cmap

	// Writer only: rules per priority, the highest one, and when it
	// was reached (for the order of ties).
	nrules   int
	prioRefs map[uint16]int
	maxPrio  uint16
	maxSince uint64
	created  uint64
}

func newSubtable(mask *packet.Key, seq uint64) *subtable {
	st := &subtable{mask: *mask, rules: newCmap(), prioRefs: map[uint16]int{}, created: seq}
	mw := words(&st.mask)
	for s := range uint8(numStages) {
		for i, w := range mw {
			if w != 0 && wordStage[i] == s {
				st.idx = append(st.idx, uint8(i))
				st.maskw = append(st.maskw, w)
				st.nstages = int(s) + 1
			}
		}
		st.stageEnd[s] = uint8(len(st.idx))
	}
	for s := 0; s+1 < st.nstages; s++ {
		st.stageSets[s] = newCmap()
		st.stageRefs[s] = map[uint64]int{}
	}
	return st
}

// hashes returns the masked key's hash after each stage and its words
// under the mask, for the writer.
func (st *subtable) hashes(k *packet.Key) (hs [numStages]uint64, vals []uint64) {
	kw := words(k)
	h := uint64(hashBasis)
	i := 0
	for s := 0; s < st.nstages; s++ {
		for ; i < int(st.stageEnd[s]); i++ {
			v := kw[st.idx[i]] & st.maskw[i]
			vals = append(vals, v)
			h = hashWord(h, v)
		}
		hs[s] = h
	}
	if st.nstages == 0 {
		hs[0] = h
	}
	return hs, vals
}

func (st *subtable) fullHash(hs *[numStages]uint64) uint64 {
	return hs[max(st.nstages-1, 0)]
}

// find returns the node for vals, writer side.
func (st *subtable) find(h uint64, vals []uint64) *cmapNode {
	for n := st.rules.first(h); n != nil; n = n.nextWith() {
		if slices.Equal(n.vals, vals) {
			return n
		}
	}
	return nil
}

// lookup returns the node of the subtable's rules that k matches (its
// rules are in descending priority), and ORs into wc the mask words it
// looked at. It does not allocate.
func (st *subtable) lookup(kw, wc *keyWordView) *cmapNode {
	h := uint64(hashBasis)
	i := 0
	for s := 0; s < st.nstages; s++ {
		end := int(st.stageEnd[s])
		for ; i < end; i++ {
			h = hashWord(h, kw[st.idx[i]]&st.maskw[i])
		}
		if s+1 < st.nstages && st.stageSets[s].first(h) == nil {
			st.unwildcard(wc, end)
			return nil
		}
	}
	st.unwildcard(wc, len(st.idx))
	for n := st.rules.first(h); n != nil; n = n.nextWith() {
		if st.equalMasked(kw, n.vals) {
			return n
		}
	}
	return nil
}

func (st *subtable) unwildcard(wc *keyWordView, end int) {
	for i := range end {
		wc[st.idx[i]] |= st.maskw[i]
	}
}

func (st *subtable) equalMasked(kw *keyWordView, vals []uint64) bool {
	if len(vals) != len(st.idx) {
		return false
	}
	for i, v := range vals {
		if kw[st.idx[i]]&st.maskw[i] != v {
			return false
		}
	}
	return true
}

// subEntry is one subtable in the published lookup order, with the
// highest priority it held when the order was published.
type subEntry struct {
	st      *subtable
	maxPrio uint16
}

// Classifier is one OpenFlow table's rules. Its writers must be
// serialized by the caller (Table does); Lookup may run concurrently with
// them and with itself.
type Classifier struct {
	order  atomic.Pointer[[]subEntry]
	byMask map[packet.Key]*subtable
	seq    uint64
	n      int
	// conjFlows counts the clause flows' conjunction actions by id
	// (writer only).
	conjFlows map[uint32]int
}

// NewClassifier returns an empty classifier.
func NewClassifier() *Classifier {
	c := &Classifier{byMask: map[packet.Key]*subtable{}}
	c.order.Store(&[]subEntry{})
	return c
}

// Len returns the number of rules.
func (c *Classifier) Len() int { return c.n }

// Lookup returns the highest-priority rule that k matches, or nil, and
// ORs into wc (if not nil) the key bits that decided it. It takes no lock
// and does not allocate.
func (c *Classifier) Lookup(k, wc *packet.Key) *Rule {
	var scratch packet.Key
	if wc == nil {
		wc = &scratch
	}
	kw, ww := words(k), words(wc)
	order := *c.order.Load()
	var best *Rule
	for i, e := range order {
		if best != nil && e.maxPrio <= best.priority {
			break
		}
		n := e.st.lookup(kw, ww)
		if n == nil {
			continue
		}
		if r := n.rules[0]; best == nil || r.priority > best.priority {
			if r.conj != nil {
				// A clause of a conjunctive match: conj.go takes over.
				return c.lookupConj(k, wc, order, i, best, n)
			}
			best = r
		}
	}
	return best
}

// next returns a new sequence number for ordering.
func (c *Classifier) next() uint64 {
	c.seq++
	return c.seq
}

// insert adds r, whose match and priority no rule in c has. Writer only.
func (c *Classifier) insert(r *Rule) {
	mask := r.match.Mask()
	st := c.byMask[mask]
	if st == nil {
		st = newSubtable(&mask, c.next())
		c.byMask[mask] = st
	}
	r.conj = ruleConj(r)
	c.conjCount(r.conj, 1)
	value := r.match.Value()
	hs, vals := st.hashes(&value)
	for s := 0; s+1 < st.nstages; s++ {
		if st.stageRefs[s][hs[s]]++; st.stageRefs[s][hs[s]] == 1 {
			st.stageSets[s].insert(&cmapNode{hash: hs[s]})
		}
	}
	h := st.fullHash(&hs)
	if n := st.find(h, vals); n != nil {
		rules := insertByPriority(n.rules, r)
		st.rules.replace(n, &cmapNode{hash: h, vals: n.vals, rules: rules})
	} else {
		st.rules.insert(&cmapNode{hash: h, vals: vals, rules: []*Rule{r}})
	}
	r.st = st
	st.nrules++
	st.prioRefs[r.priority]++
	c.n++
	if st.nrules == 1 || r.priority > st.maxPrio {
		st.maxPrio = r.priority
		st.maxSince = c.next()
		c.reorder(st, false)
	}
}

// insertByPriority returns a new list with r in priority order (after
// the rules of its priority). Readers may hold the old list, so it is
// copied; once, since one match can have 65,536 priorities, and a list
// that long copied twice per insert made adding them take seconds.
func insertByPriority(rules []*Rule, r *Rule) []*Rule {
	i, _ := slices.BinarySearchFunc(rules, r.priority, func(o *Rule, p uint16) int {
		if o.priority >= p {
			return -1
		}
		return 1
	})
	out := make([]*Rule, len(rules)+1)
	copy(out, rules[:i])
	out[i] = r
	copy(out[i+1:], rules[i:])
	return out
}

// without returns a new list of the rules but r, copied once (see
// insertByPriority).
func without(rules []*Rule, r *Rule) []*Rule {
	i := slices.Index(rules, r)
	out := make([]*Rule, 0, len(rules)-1)
	out = append(out, rules[:i]...)
	return append(out, rules[i+1:]...)
}

// highestBelow is the highest priority of st's rules, all of which are
// below p: found by stepping down from p or by walking the priorities
// held, whichever is shorter, so that deleting a match's rules from the
// highest priority down (each removal a new maximum) costs each removal
// the gap to the next priority, not a walk of all of them.
func (st *subtable) highestBelow(p uint16) uint16 {
	for q, steps := int(p)-1, 0; q >= 0 && steps < len(st.prioRefs); q, steps = q-1, steps+1 {
		if st.prioRefs[uint16(q)] > 0 {
			return uint16(q)
		}
	}
	highest := uint16(0)
	for q := range st.prioRefs {
		highest = max(highest, q)
	}
	return highest
}

// replace puts nw in the place of old, which has the same match and
// priority. Writer only.
func (c *Classifier) replace(old, nw *Rule) {
	st := old.st
	value := old.match.Value()
	hs, vals := st.hashes(&value)
	h := st.fullHash(&hs)
	n := st.find(h, vals)
	rules := slices.Clone(n.rules)
	for i := range rules {
		if rules[i] == old {
			rules[i] = nw
		}
	}
	nw.st = st
	nw.conj = ruleConj(nw)
	c.conjCount(old.conj, -1)
	c.conjCount(nw.conj, 1)
	st.rules.replace(n, &cmapNode{hash: h, vals: n.vals, rules: rules})
}

// remove takes r out. Writer only.
func (c *Classifier) remove(r *Rule) {
	st := r.st
	c.conjCount(r.conj, -1)
	st.nrules--
	c.n--
	if st.prioRefs[r.priority]--; st.prioRefs[r.priority] == 0 {
		delete(st.prioRefs, r.priority)
	}
	if st.nrules == 0 {
		delete(c.byMask, st.mask)
		c.reorder(st, true)
	} else if r.priority == st.maxPrio && st.prioRefs[r.priority] == 0 {
		st.maxPrio = st.highestBelow(r.priority)
		st.maxSince = c.next()
		c.reorder(st, false)
	}
	value := r.match.Value()
	hs, vals := st.hashes(&value)
	h := st.fullHash(&hs)
	n := st.find(h, vals)
	if len(n.rules) == 1 {
		st.rules.replace(n, nil)
	} else {
		st.rules.replace(n, &cmapNode{hash: h, vals: n.vals, rules: without(n.rules, r)})
	}
	for s := 0; s+1 < st.nstages; s++ {
		if st.stageRefs[s][hs[s]]--; st.stageRefs[s][hs[s]] == 0 {
			delete(st.stageRefs[s], hs[s])
			st.stageSets[s].replace(st.stageSets[s].first(hs[s]), nil)
		}
	}
}

// reorder publishes the lookup order (highest priority first, and of
// equal ones the subtable that reached it first) with st moved to where
// its highest priority, just reached, now puts it: after every subtable
// of that priority, which all reached it before. Or without st, when it
// is gone. The order is copied once, not sorted again: with thousands
// of masks in a table, sorting them for each flow added made adding
// them quadratic with a large constant (20,000 masks took 30 s).
func (c *Classifier) reorder(st *subtable, gone bool) {
	old := *c.order.Load()
	order := make([]subEntry, 0, len(old)+1)
	for _, e := range old {
		if e.st != st {
			order = append(order, e)
		}
	}
	if !gone {
		i := sort.Search(len(order), func(i int) bool { return order[i].maxPrio < st.maxPrio })
		order = slices.Insert(order, i, subEntry{st: st, maxPrio: st.maxPrio})
	}
	c.order.Store(&order)
}

// subtables returns the subtables in lookup order, writer side.
func (c *Classifier) subtables() []*subtable {
	order := *c.order.Load()
	out := make([]*subtable, len(order))
	for i, e := range order {
		out[i] = e.st
	}
	return out
}

// rulesOf returns a subtable's rules, writer side.
func (st *subtable) allRules() []*Rule {
	var out []*Rule
	st.rules.each(func(n *cmapNode) { out = append(out, n.rules...) })
	return out
}
