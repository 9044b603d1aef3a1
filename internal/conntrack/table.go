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

// lookup finds the connection one of whose directions is tup.
func (s *shard) lookup(h uint64, zone uint16, proto uint8, v6 bool, tup *ctuple) (uint32, *conn, int) {
	if len(s.index) == 0 {
		return 0, nil, 0
	}
	mask := uint32(len(s.index) - 1)
	h32 := uint32(h)
	for i := h32 & mask; ; i = (i + 1) & mask {
		sl := &s.index[i]
		if sl.ref == 0 {
			return 0, nil, 0
		}
		if sl.hash != h32 {
			continue
		}
		ci := sl.ref>>1 - 1
		dir := int(sl.ref & 1)
		c := s.conn(ci)
		if c.zone == zone && c.proto == proto && c.isV6() == v6 && c.tup[dir] == *tup {
			return ci, c, dir
		}
	}
}

// alloc returns a free connection slot.
func (s *shard) alloc() uint32 {
	if n := len(s.free); n > 0 {
		i := s.free[n-1]
		s.free = s.free[:n-1]
		return i
	}
	i := uint32(len(s.chunks)) << chunkBits
	s.chunks = append(s.chunks, new([chunkSize]conn))
	for j := uint32(chunkSize - 1); j > 0; j-- {
		s.free = append(s.free, i+j)
	}
	return i
}

// insert adds both directions of connection ci to the index.
func (s *shard) insert(ci uint32, h0, h1 uint64) {
	if (s.used+2)*4 > len(s.index)*3 {
		s.grow()
	}
	s.put(uint32(h0), (ci+1)<<1)
	s.put(uint32(h1), (ci+1)<<1|1)
	s.n++
}

func (s *shard) put(h32, ref uint32) {
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
			s.put(sl.hash, sl.ref)
		}
	}
}

// remove deletes connection ci from the index and frees its slot.
func (s *shard) remove(ci uint32, h0, h1 uint64) {
	s.unput(uint32(h0), (ci+1)<<1)
	s.unput(uint32(h1), (ci+1)<<1|1)
	*s.conn(ci) = conn{}
	s.free = append(s.free, ci)
	s.n--
	if s.n == 0 && len(s.index) > minIndex*64 {
		// A shard that emptied gives its index back.
		s.index = nil
		s.used = 0
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
