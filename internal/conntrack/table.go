package conntrack

import "sync"

// The table is split into shards, each with its own lock, index and slab
// of connections, so that port threads working on different connections
// rarely meet on a lock. Both directions of a connection hash to the same
// shard (see Tracker.hash).
//
// A shard's index is an open-addressing hash table (linear probing,
// backward-shift deletion, no tombstones) of 8-byte slots: 32 bits of
// hash and a reference to a connection and its direction. Connections
// live in fixed-size chunks that never move, hold no pointers (the GC
// does not scan them) and are reused through a free list. This keeps a
// connection near 200 bytes and a lookup at one probe sequence whatever
// the table's size.

const (
	chunkBits = 8
	chunkSize = 1 << chunkBits
	minIndex  = 16
)

type islot struct {
	hash uint32
	ref  uint32 // (connection index+1)<<1 | direction; 0: empty
}

type shard struct {
	mu     sync.Mutex
	index  []islot
	used   int // occupied index slots
	chunks []*[chunkSize]conn
	free   []uint32
	n      int // live connections
	_      [40]byte
}

func (s *shard) conn(i uint32) *conn {
	return &s.chunks[i>>chunkBits][i&(chunkSize-1)]
}

// Index references: the connection's slot in its home shard, the home
// shard and the direction. A connection's two index entries live in the
// shards their tuples hash to; without NAT that is the same shard (the
// hash is symmetric), with NAT it may be another one.
const (
	refShardBits = 8
	maxShards    = 1 << refShardBits
	maxPerShard  = 1<<(32-refShardBits-1) - 2
)

func makeRef(ci uint32, home, dir int) uint32 {
	return (ci+1)<<(refShardBits+1) | uint32(home)<<1 | uint32(dir)
}

func refParts(ref uint32) (ci uint32, home, dir int) {
	return ref>>(refShardBits+1) - 1, int(ref >> 1 & (maxShards - 1)), int(ref & 1)
}

// lockSet is the set of shards an operation holds, locked in ascending
// order (the one order every path takes, so that none deadlocks).
type lockSet struct {
	n   int
	idx [4]int
}

func (l *lockSet) has(si int) bool {
	for i := 0; i < l.n; i++ {
		if l.idx[i] == si {
			return true
		}
	}
	return false
}

// add inserts si (kept sorted); false when the set is full.
func (l *lockSet) add(si int) bool {
	if l.has(si) {
		return true
	}
	if l.n == len(l.idx) {
		return false
	}
	i := l.n
	for i > 0 && l.idx[i-1] > si {
		l.idx[i] = l.idx[i-1]
		i--
	}
	l.idx[i] = si
	l.n++
	return true
}

func (t *Tracker) lockAll(l *lockSet) {
	if l.n == 1 {
		t.shards[l.idx[0]].mu.Lock()
		return
	}
	for i := 0; i < l.n; i++ {
		t.shards[l.idx[i]].mu.Lock()
	}
}

func (t *Tracker) unlockAll(l *lockSet) {
	if l.n == 1 {
		t.shards[l.idx[0]].mu.Unlock()
		return
	}
	for i := l.n - 1; i >= 0; i-- {
		t.shards[l.idx[i]].mu.Unlock()
	}
}

// found is a lookup's answer.
type found struct {
	c    *conn
	ci   uint32
	home int
	dir  int
	// need is a shard whose lock the lookup needs to check a candidate
	// (-1: none): the caller takes it and looks up again.
	need int
}

// lookup finds in shard si the connection one of whose directions is
// tup. It reads only connections in shards of held.
func (t *Tracker) lookup(si int, h uint64, zone uint16, proto uint8, v6 bool, tup *ctuple, held *lockSet) found {
	s := &t.shards[si]
	if len(s.index) == 0 {
		return found{need: -1}
	}
	mask := uint32(len(s.index) - 1)
	h32 := uint32(h)
	for i := h32 & mask; ; i = (i + 1) & mask {
		sl := &s.index[i]
		if sl.ref == 0 {
			return found{need: -1}
		}
		if sl.hash != h32 {
			continue
		}
		ci, home, dir := refParts(sl.ref)
		if !held.has(home) {
			return found{need: home}
		}
		c := t.shards[home].conn(ci)
		if c.zone == zone && c.proto == proto && c.isV6() == v6 && c.tup[dir] == *tup {
			return found{c: c, ci: ci, home: home, dir: dir, need: -1}
		}
	}
}

// alloc returns a free connection slot; false when the shard is full.
func (s *shard) alloc() (uint32, bool) {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i, true
	}
	i := uint32(len(s.chunks)) << chunkBits
	if i+chunkSize > maxPerShard {
		return 0, false
	}
	s.chunks = append(s.chunks, new([chunkSize]conn))
	for j := uint32(chunkSize - 1); j > 0; j-- {
		s.free = append(s.free, i+j)
	}
	return i, true
}

// put adds one index entry.
func (s *shard) put(h32, ref uint32) {
	if (s.used+1)*4 > len(s.index)*3 {
		s.grow()
	}
	s.putNoGrow(h32, ref)
}

func (s *shard) putNoGrow(h32, ref uint32) {
	mask := uint32(len(s.index) - 1)
	i := h32 & mask
	for s.index[i].ref != 0 {
		i = (i + 1) & mask
	}
	s.index[i] = islot{hash: h32, ref: ref}
	s.used++
}

func (s *shard) grow() {
	old := s.index
	size := len(old) * 2
	if size < minIndex {
		size = minIndex
	}
	s.index = make([]islot, size)
	s.used = 0
	for _, sl := range old {
		if sl.ref != 0 {
			s.putNoGrow(sl.hash, sl.ref)
		}
	}
}

// release frees connection slot ci.
func (s *shard) release(ci uint32) {
	*s.conn(ci) = conn{}
	s.free = append(s.free, ci)
	s.n--
}

// shrink gives an emptied shard's index back.
func (s *shard) shrink() {
	if s.n == 0 && s.used == 0 && len(s.index) > minIndex*64 {
		s.index = nil
	}
}

func (s *shard) unput(h32, ref uint32) {
	if len(s.index) == 0 {
		return
	}
	mask := uint32(len(s.index) - 1)
	i := h32 & mask
	for {
		if s.index[i].ref == 0 {
			return // not present: nothing to do
		}
		if s.index[i].ref == ref {
			break
		}
		i = (i + 1) & mask
	}
	// Backward-shift deletion: move later members of the probe run into
	// the hole when their home slot allows it.
	for {
		s.index[i] = islot{}
		j := i
		for {
			j = (j + 1) & mask
			if s.index[j].ref == 0 {
				s.used--
				return
			}
			home := s.index[j].hash & mask
			// Can the entry at j move to i? Only if its home is not in
			// the cyclic range (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j)) {
				s.index[i] = s.index[j]
				i = j
				break
			}
		}
	}
}
