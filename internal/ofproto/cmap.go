package ofproto

import "sync/atomic"

// cmap is a hash map from a 64-bit hash to chains of immutable nodes, for
// one writer and any number of readers that take no lock. It is the
// classifier's building block (a subtable's rules, a stage's hashes).
//
// Readers load the bucket array and a bucket's head through atomic
// pointers and walk a chain whose nodes never change once published. The
// writer never edits a published node: it prepends new nodes, and to
// change or unlink a node it copies the nodes in front of it and swaps
// the bucket's head. Growing builds a new array of fresh chains and
// swaps the array. A reader therefore sees each bucket either before or
// after a change, never half of one; the garbage collector frees what no
// reader holds any more, which is what makes this simpler than OVS's RCU.
type cmap struct {
	tab atomic.Pointer[cmapTable]
	n   int // nodes; the writer's only
}

type cmapTable struct {
	buckets []atomic.Pointer[cmapNode]
	mask    uint64
}

// cmapNode is one entry: a subtable's rules that share one masked key
// (vals, highest priority first), or a bare hash for a stage set.
type cmapNode struct {
	hash  uint64
	vals  []uint64
	rules []*Rule
	next  *cmapNode
}

const cmapMinBuckets = 4

func newCmap() *cmap {
	m := &cmap{}
	m.tab.Store(&cmapTable{buckets: make([]atomic.Pointer[cmapNode], cmapMinBuckets), mask: cmapMinBuckets - 1})
	return m
}

// bucketOf spreads the hash before masking it, so that hashes that
// differ only in their high bits still land apart.
func bucketOf(h, mask uint64) uint64 { return (h ^ h>>29 ^ h>>47) & mask }

// first returns the first node with hash h, for the reader.
func (m *cmap) first(h uint64) *cmapNode {
	t := m.tab.Load()
	for n := t.buckets[bucketOf(h, t.mask)].Load(); n != nil; n = n.next {
		if n.hash == h {
			return n
		}
	}
	return nil
}

// nextWith returns the node after n with the same hash.
func (n *cmapNode) nextWith() *cmapNode {
	for o := n.next; o != nil; o = o.next {
		if o.hash == n.hash {
			return o
		}
	}
	return nil
}

// insert publishes a new node; the writer's only.
func (m *cmap) insert(n *cmapNode) {
	t := m.tab.Load()
	if m.n >= len(t.buckets) {
		t = m.grow(t)
	}
	b := &t.buckets[bucketOf(n.hash, t.mask)]
	n.next = b.Load()
	b.Store(n)
	m.n++
}

// replace swaps old, which must be in the map, for nw (nil to remove it).
func (m *cmap) replace(old, nw *cmapNode) {
	t := m.tab.Load()
	b := &t.buckets[bucketOf(old.hash, t.mask)]
	head := old.next
	if nw != nil {
		nw.next = head
		head = nw
	} else {
		m.n--
	}
	// Copy the nodes in front of old, back to front, onto the new tail.
	var front []*cmapNode
	for n := b.Load(); n != old; n = n.next {
		front = append(front, n)
	}
	for i := len(front) - 1; i >= 0; i-- {
		c := *front[i]
		c.next = head
		head = &c
	}
	b.Store(head)
}

// grow doubles the bucket array with fresh chains and publishes it.
func (m *cmap) grow(old *cmapTable) *cmapTable {
	size := len(old.buckets) * 2
	t := &cmapTable{buckets: make([]atomic.Pointer[cmapNode], size), mask: uint64(size - 1)}
	for i := range old.buckets {
		for n := old.buckets[i].Load(); n != nil; n = n.next {
			c := *n
			b := &t.buckets[bucketOf(c.hash, t.mask)]
			c.next = b.Load()
			b.Store(&c)
		}
	}
	m.tab.Store(t)
	return t
}

// each calls fn for every node; the writer's only.
func (m *cmap) each(fn func(*cmapNode)) {
	t := m.tab.Load()
	for i := range t.buckets {
		for n := t.buckets[i].Load(); n != nil; n = n.next {
			fn(n)
		}
	}
}
