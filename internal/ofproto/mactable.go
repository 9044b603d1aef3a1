package ofproto

import (
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gvs/internal/budget"
	"gvs/internal/coverage"
	"gvs/internal/datapath"
)

// MACTable is a bridge's learning table: (MAC, VLAN) → port, with aging.
//
// It is read and written by every port thread of the bridge for every
// packet, so lookups and learning take no lock and allocate nothing: it is
// an open-addressing hash table of atomic words. Each slot has a sequence
// number that a writer makes odd, by compare-and-swap from the value it
// read (so writers of one slot exclude each other, and a writer that
// raced with another gives up), while it stores the key and the value,
// and even again afterwards. A reader that sees an odd sequence number, or
// a different one after its reads, treats the slot as a miss. A port is
// therefore only ever returned with the key it was stored with: a race
// costs a flood, never a delivery to another address's port.
//
// The table starts small and doubles as addresses are learned, up to
// twice its limit (mac-table-size). Resizing copies the live entries into
// a new slot array under a mutex that port threads only try, never wait
// for; a learning that races with a resize may be lost, and the next
// frame from that address learns it again.
type MACTable struct {
	tab    atomic.Pointer[macSlots]
	charge *macCharge // what tab holds of the shared budget
	mu     sync.Mutex // held to replace tab: growth, SetLimit, Flush, FlushPort
	epoch  time.Time
	aging  atomic.Int64 // seconds
	limit  atomic.Int64 // mac-table-size: entries beyond it are not learned
}

// macSlots is one generation of the table's slot array.
type macSlots struct {
	slots []macSlot
	mask  uint64
	count atomic.Int64 // slots holding a key
}

type macSlot struct {
	seq atomic.Uint64 // odd while a writer changes key and val
	key atomic.Uint64 // 1<<63 | vlan<<48 | mac; 0 for empty
	val atomic.Uint64 // port<<32 | valValid | seen; 0 for no entry
}

const (
	// probeLimit bounds the slots tried per lookup or insertion.
	probeLimit = 16
	// minSlots is the size of a new or flushed table.
	minSlots = 64
	// valValid marks a value that holds an entry; seen takes the 31
	// bits below it (seconds since the table's epoch, 68 years).
	valValid = 1 << 31
	seenMask = valValid - 1
)

// MACTableMemory bounds the slot arrays of all bridges' MAC tables
// together, in bytes: each table is bounded by its mac-table-size (at
// most a million entries, 48 MiB of slots), but 1,024 bridges of that
// would be 48 GiB. A table that would grow past it does not: it goes on
// learning into the room it has (and into expired entries' slots), and
// mac_learning_memory_full counts the refusals.
const MACTableMemory = 1 << 30

var (
	macMemBudget atomic.Int64 // MACTableMemory; a variable for tests
	macMemUsed   atomic.Int64
	macMemFull   = coverage.New("mac_learning_memory_full")
)

func init() { macMemBudget.Store(MACTableMemory) }

// macCharge is what one table's slot array holds of the shared budget;
// apart from the table, so that a cleanup gives it back once the table
// is garbage.
type macCharge struct{ bytes atomic.Int64 }

func slotsBytes(n int) int64 { return int64(n) * int64(unsafe.Sizeof(macSlot{})) }

// MACTableMemoryUsed returns what all MAC tables' slots hold.
func MACTableMemoryUsed() int64 { return macMemUsed.Load() }

// setTab replaces the table's slot array, charging the difference to
// the shared budget. The caller holds t.mu (or owns t).
func (t *MACTable) setTab(next *macSlots) {
	b := slotsBytes(len(next.slots))
	macMemUsed.Add(b - t.charge.bytes.Swap(b))
	t.tab.Store(next)
}

// MaxMACTableSize is the largest mac-table-size a table takes, the top
// of the range OVS forces the setting into; larger limits are clamped.
const MaxMACTableSize = 1000000

// NewMACTable returns a table for up to size entries (clamped to 1 ..
// MaxMACTableSize) with the given aging time in seconds. It allocates
// room for a few entries only, and grows as they are learned.
func NewMACTable(size int, agingSeconds int) *MACTable {
	t := &MACTable{epoch: time.Now(), charge: &macCharge{}}
	t.limit.Store(int64(clampSize(size)))
	t.aging.Store(int64(agingSeconds))
	t.setTab(newMACSlots(minSlots))
	runtime.AddCleanup(t, func(c *macCharge) { macMemUsed.Add(-c.bytes.Load()) }, t.charge)
	return t
}

func newMACSlots(n int) *macSlots {
	return &macSlots{slots: make([]macSlot, n), mask: uint64(n - 1)}
}

func clampSize(size int) int { return min(max(size, 1), MaxMACTableSize) }

// maxSlots is the size the table may grow to for limit entries: at most
// half full, so that probe sequences stay short.
func maxSlots(limit int64) int {
	n := minSlots
	for int64(n) < 2*limit {
		n *= 2
	}
	return n
}

// SetAging changes the aging time. Cached flows hold for the age their
// destinations had left, so they are made again.
func (t *MACTable) SetAging(seconds int) {
	if t.aging.Swap(int64(seconds)) != int64(seconds) {
		datapath.Invalidate()
	}
}

// Limit returns the number of entries the table learns at most.
func (t *MACTable) Limit() int { return int(t.limit.Load()) }

// SetLimit changes the number of entries the table learns at most
// (clamped as in NewMACTable). Shrinking it below the number of entries
// evicts the least recently seen ones, and gives their memory back.
func (t *MACTable) SetLimit(size int) {
	size = clampSize(size)
	if int64(size) == t.limit.Swap(int64(size)) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tab := t.tab.Load()
	if tab.count.Load() > int64(size) || len(tab.slots) > maxSlots(int64(size)) {
		t.rebuild(tab, 0, size)
		datapath.Invalidate() // entries may have been evicted
	}
}

func macKey(mac [6]byte, vlan uint16) uint64 {
	return 1<<63 | uint64(vlan&0xfff)<<48 | uint64(mac[0])<<40 | uint64(mac[1])<<32 |
		uint64(mac[2])<<24 | uint64(mac[3])<<16 | uint64(mac[4])<<8 | uint64(mac[5])
}

func hashKey(k uint64) uint64 {
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	return k
}

func (t *MACTable) now() uint64 { return uint64(time.Since(t.epoch) / time.Second) }

func packVal(port uint32, now uint64) uint64 {
	return uint64(port)<<32 | valValid | now&seenMask
}

func age(val, now uint64) int64 { return int64((now - val) & seenMask) }

func (t *MACTable) expired(val, now uint64) bool {
	return val&valValid == 0 || age(val, now) > t.aging.Load()
}

// read returns the slot's key and value and the sequence number they
// go with; ok is false if a writer changed the slot meanwhile.
func (s *macSlot) read() (seq, key, val uint64, ok bool) {
	seq = s.seq.Load()
	key, val = s.key.Load(), s.val.Load()
	return seq, key, val, seq&1 == 0 && s.seq.Load() == seq
}

// write stores key and value if the slot is still as read with seq.
func (s *macSlot) write(seq, key, val uint64) bool {
	if !s.seq.CompareAndSwap(seq, seq+1) {
		return false
	}
	s.key.Store(key)
	s.val.Store(val)
	s.seq.Store(seq + 2)
	return true
}

// Learn records that mac on vlan was seen on port. When that changes
// where the address goes (a new or expired address, or one that moved),
// it invalidates the datapath's cached flows, which may flood to it or
// send it elsewhere; refreshing an address's age does not.
func (t *MACTable) Learn(mac [6]byte, vlan uint16, port uint32) {
	tab := t.tab.Load()
	if t.learn(tab, mac, vlan, port) {
		return
	}
	if t.grow(tab) {
		t.learn(t.tab.Load(), mac, vlan, port)
	}
}

// learn tries to record the entry in tab; false means tab needs to grow
// first.
func (t *MACTable) learn(tab *macSlots, mac [6]byte, vlan uint16, port uint32) bool {
	k := macKey(mac, vlan)
	now := t.now()
	v := packVal(port, now)
	h := hashKey(k)
	free, freeSeq, freeEmpty := -1, uint64(0), false
	for i := uint64(0); i < probeLimit; i++ {
		idx := (h + i) & tab.mask
		seq, sk, sv, ok := tab.slots[idx].read()
		if !ok {
			return true // another writer is on this chain: learn next time
		}
		if sk == k {
			if sv != v && tab.slots[idx].write(seq, k, v) &&
				(t.expired(sv, now) || uint32(sv>>32) != port) {
				datapath.Invalidate()
			}
			return true
		}
		if free < 0 && (sk == 0 || t.expired(sv, now)) {
			free, freeSeq, freeEmpty = int(idx), seq, sk == 0
		}
		if sk == 0 {
			break // the key cannot be further on
		}
	}
	if free < 0 {
		return len(tab.slots) >= maxSlots(t.limit.Load()) // full: not learned
	}
	if !freeEmpty {
		// Reusing an expired slot does not grow the table.
		if tab.slots[free].write(freeSeq, k, v) {
			datapath.Invalidate()
		}
		return true
	}
	return t.insert(tab, free, freeSeq, k, v)
}

// insert puts a new key into an empty slot, within the limit and the
// table's load factor; false means the table needs to grow first.
func (t *MACTable) insert(tab *macSlots, idx int, seq, k, v uint64) bool {
	limit := t.limit.Load()
	for {
		c := tab.count.Load()
		if c >= limit {
			return true // the table is full: not learned
		}
		if 2*(c+1) > int64(len(tab.slots)) && len(tab.slots) < maxSlots(limit) {
			return false
		}
		if tab.count.CompareAndSwap(c, c+1) {
			break
		}
	}
	if !tab.slots[idx].write(seq, k, v) {
		tab.count.Add(-1)
		return true
	}
	datapath.Invalidate()
	return true
}

// grow doubles tab unless another thread is resizing the table or
// already did; it reports whether tab was replaced.
func (t *MACTable) grow(tab *macSlots) bool {
	if !t.mu.TryLock() {
		return false
	}
	defer t.mu.Unlock()
	if t.tab.Load() != tab || len(tab.slots) >= maxSlots(t.limit.Load()) {
		return false
	}
	// Reserved first, so that bridges growing at once cannot pass the
	// budget together; setTab charges the new slots, and the
	// reservation is given back.
	grow := slotsBytes(len(tab.slots))
	if !budget.Reserve(&macMemUsed, grow, macMemBudget.Load()) {
		macMemFull.Inc()
		return false
	}
	t.rebuild(tab, 2*len(tab.slots), int(t.limit.Load()))
	macMemUsed.Add(-grow)
	return true
}

// rebuild replaces tab by a new slot array of at least size slots that
// holds its live entries, the keep most recently seen ones if there are
// more. The caller holds t.mu.
func (t *MACTable) rebuild(tab *macSlots, size, keep int) {
	now := t.now()
	entries := t.live(tab, now, nil)
	if len(entries) > keep {
		sort.Slice(entries, func(i, j int) bool { return age(entries[i].val, now) < age(entries[j].val, now) })
		entries = entries[:keep]
	}
	size = max(size, maxSlots(int64(len(entries))))
	next := newMACSlots(size)
	for _, e := range entries {
		h := hashKey(e.key)
		for i := uint64(0); i < probeLimit; i++ {
			s := &next.slots[(h+i)&next.mask]
			if s.key.Load() == 0 {
				s.key.Store(e.key)
				s.val.Store(e.val)
				next.count.Add(1)
				break
			}
		}
	}
	t.setTab(next)
}

type rawEntry struct{ key, val uint64 }

// live appends the unexpired entries of tab to out.
func (t *MACTable) live(tab *macSlots, now uint64, out []rawEntry) []rawEntry {
	for i := range tab.slots {
		k, v, ok := readStable(&tab.slots[i])
		if ok && k != 0 && !t.expired(v, now) {
			out = append(out, rawEntry{k, v})
		}
	}
	return out
}

// readStable reads a slot for a slow-path caller, waiting out a writer
// (which holds a slot for two stores only).
func readStable(s *macSlot) (key, val uint64, ok bool) {
	for range 1000 {
		if _, k, v, ok := s.read(); ok {
			return k, v, true
		}
		runtime.Gosched()
	}
	return 0, 0, false
}

// Lookup returns the port where mac on vlan was last seen.
func (t *MACTable) Lookup(mac [6]byte, vlan uint16) (uint32, bool) {
	port, _, ok := t.lookupTTL(mac, vlan)
	return port, ok
}

// lookupTTL is Lookup that also says how long the entry has left before
// it expires, unless it is seen again.
func (t *MACTable) lookupTTL(mac [6]byte, vlan uint16) (uint32, time.Duration, bool) {
	tab := t.tab.Load()
	k := macKey(mac, vlan)
	h := hashKey(k)
	now := t.now()
	for i := uint64(0); i < probeLimit; i++ {
		_, sk, v, ok := tab.slots[(h+i)&tab.mask].read()
		if !ok || sk == 0 {
			return 0, 0, false
		}
		if sk != k {
			continue
		}
		if t.expired(v, now) {
			return 0, 0, false
		}
		// It expires once a whole second past seen+aging has begun.
		end := t.epoch.Add(time.Duration((v&seenMask)+uint64(t.aging.Load())+1) * time.Second)
		return uint32(v >> 32), max(time.Until(end), time.Millisecond), true
	}
	return 0, 0, false
}

// Flush forgets every entry.
func (t *MACTable) Flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.setTab(newMACSlots(minSlots))
	datapath.Invalidate()
}

// FlushPort forgets the entries of one port (it went away).
func (t *MACTable) FlushPort(port uint32) {
	t.mu.Lock() // so that no resize copies an entry being cleared
	defer t.mu.Unlock()
	tab := t.tab.Load()
	for i := range tab.slots {
		s := &tab.slots[i]
		for {
			seq, k, v, ok := s.read()
			if ok && (k == 0 || v&valValid == 0 || uint32(v>>32) != port || s.write(seq, k, 0)) {
				break
			}
			runtime.Gosched() // a writer holds the slot for two stores
		}
	}
	datapath.Invalidate()
}

// MACEntry is one learned address, for fdb/show.
type MACEntry struct {
	Port uint32
	VLAN uint16
	MAC  [6]byte
	Age  int // seconds since last seen
}

// Entries lists the live entries, sorted by port, VLAN, MAC.
func (t *MACTable) Entries() []MACEntry {
	now := t.now()
	var out []MACEntry
	for _, r := range t.live(t.tab.Load(), now, nil) {
		e := MACEntry{Port: uint32(r.val >> 32), VLAN: uint16(r.key >> 48 & 0xfff), Age: int(age(r.val, now))}
		for j := 0; j < 6; j++ {
			e.MAC[j] = byte(r.key >> (40 - 8*j))
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Port != b.Port {
			return a.Port < b.Port
		}
		if a.VLAN != b.VLAN {
			return a.VLAN < b.VLAN
		}
		return string(a.MAC[:]) < string(b.MAC[:])
	})
	return out
}
