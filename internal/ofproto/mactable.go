package ofproto

import (
	"sort"
	"sync/atomic"
	"time"
)

// MACTable is a bridge's learning table: (MAC, VLAN) → port, with aging.
//
// It is read and written by every port thread of the bridge for every
// packet, so it takes no lock: it is an open-addressing hash table of
// atomic 64-bit words. An entry is two words, a key (MAC and VLAN) and a
// value (port, last-seen second, and a check of the key), written value
// last; a reader that sees a value whose check does not match the key it
// found treats the slot as a miss, so a torn read can cost a flood, never a
// wrong delivery to another MAC's port.
type MACTable struct {
	slots []macSlot
	mask  uint64
	epoch time.Time
	aging atomic.Int64 // seconds
	limit int          // mac-table-size: entries beyond it are not learned
	count atomic.Int64
}

type macSlot struct {
	key atomic.Uint64 // 1<<63 | vlan<<48 | mac; 0 for empty
	val atomic.Uint64 // port<<32 | seen(seconds since epoch)&0xffffff<<8 | check
}

// probeLimit bounds the slots tried per lookup or insertion.
const probeLimit = 16

// NewMACTable returns a table for up to size entries with the given aging
// time in seconds.
func NewMACTable(size int, agingSeconds int) *MACTable {
	n := 64
	for n < 2*size {
		n *= 2
	}
	t := &MACTable{slots: make([]macSlot, n), mask: uint64(n - 1), epoch: time.Now(), limit: size}
	t.aging.Store(int64(agingSeconds))
	return t
}

// SetAging changes the aging time.
func (t *MACTable) SetAging(seconds int) { t.aging.Store(int64(seconds)) }

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

func packVal(port uint32, seen uint64, key uint64) uint64 {
	return uint64(port)<<32 | (seen&0xffffff)<<8 | hashKey(key)>>56
}

func (t *MACTable) expired(val, now uint64) bool {
	seen := val >> 8 & 0xffffff
	return (now-seen)&0xffffff > uint64(t.aging.Load())
}

// Learn records that mac on vlan was seen on port.
func (t *MACTable) Learn(mac [6]byte, vlan uint16, port uint32) {
	k := macKey(mac, vlan)
	now := t.now()
	h := hashKey(k)
	free := -1
	for i := uint64(0); i < probeLimit; i++ {
		s := &t.slots[(h+i)&t.mask]
		sk := s.key.Load()
		if sk == k {
			v := packVal(port, now, k)
			if s.val.Load() != v {
				s.val.Store(v)
			}
			return
		}
		if free < 0 && (sk == 0 || t.expired(s.val.Load(), now)) {
			free = int((h + i) & t.mask)
		}
	}
	if free < 0 {
		return
	}
	s := &t.slots[free]
	if s.key.Load() == 0 {
		// A new slot: the table grows. Reusing an expired one does not.
		if int(t.count.Load()) >= t.limit {
			return
		}
		t.count.Add(1)
	}
	s.key.Store(k)
	s.val.Store(packVal(port, now, k))
}

// Lookup returns the port where mac on vlan was last seen.
func (t *MACTable) Lookup(mac [6]byte, vlan uint16) (uint32, bool) {
	k := macKey(mac, vlan)
	h := hashKey(k)
	now := t.now()
	for i := uint64(0); i < probeLimit; i++ {
		s := &t.slots[(h+i)&t.mask]
		sk := s.key.Load()
		if sk == 0 {
			return 0, false
		}
		if sk != k {
			continue
		}
		v := s.val.Load()
		if v&0xff != hashKey(k)>>56 || t.expired(v, now) {
			return 0, false
		}
		return uint32(v >> 32), true
	}
	return 0, false
}

// Flush forgets every entry.
func (t *MACTable) Flush() {
	for i := range t.slots {
		t.slots[i].key.Store(0)
		t.slots[i].val.Store(0)
	}
	t.count.Store(0)
}

// FlushPort forgets the entries of one port (it went away).
func (t *MACTable) FlushPort(port uint32) {
	for i := range t.slots {
		s := &t.slots[i]
		if s.key.Load() != 0 && uint32(s.val.Load()>>32) == port {
			s.val.Store(0)
		}
	}
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
	for i := range t.slots {
		s := &t.slots[i]
		k, v := s.key.Load(), s.val.Load()
		if k == 0 || v == 0 || t.expired(v, now) || v&0xff != hashKey(k)>>56 {
			continue
		}
		e := MACEntry{Port: uint32(v >> 32), VLAN: uint16(k >> 48 & 0xfff), Age: int((now - (v >> 8 & 0xffffff)) & 0xffffff)}
		for j := 0; j < 6; j++ {
			e.MAC[j] = byte(k >> (40 - 8*j))
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
