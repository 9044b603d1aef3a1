package netdev

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/packet"
)

// The tunnel neighbour cache, as OVS's tnl-neigh-cache: the MAC address
// of each next hop of natively sent tunnel packets, learned by snooping
// the ARP packets that reach a gvs internal port (and set by hand with
// tnl/neigh/set). Entries expire after the aging time unless seen again;
// the cache holds at most maxNeighbours entries, in neighShards shards by
// address, a full shard evicting its entry closest to expiry.
//
// Readers (the tunnel ports' transmit paths) load a shard's immutable map
// through one atomic pointer; a refresh of a known entry only moves its
// expiry (an atomic store), and only a new or changed entry copies its
// shard's map, under the shard's mutex. The shards keep that copy small:
// any host on a bridge can send ARP packets with new sender addresses,
// and copying one map of every entry for each cost about 250 µs and
// 330 KB of garbage per packet.

const (
	maxNeighbours = 4096
	// neighShards (a power of two) splits the cache so that learning a
	// new address copies at most maxNeighbours/neighShards entries.
	neighShards        = 128
	maxShardNeighbours = maxNeighbours / neighShards
	neighShardShift    = 64 - 7 // log2(neighShards)
	// DefaultNeighAging is OVS's default aging time, in seconds.
	DefaultNeighAging = 900
	maxNeighAging     = 3600
)

// Neighbour is one entry of the cache.
type Neighbour struct {
	IP     netip.Addr
	MAC    [6]byte
	Bridge string
}

type neighEntry struct {
	Neighbour
	expires atomic.Int64 // unix nanoseconds
}

// neighShard is one part of the cache: a copy-on-write map.
type neighShard struct {
	mu      sync.Mutex
	entries atomic.Pointer[map[netip.Addr]*neighEntry]
}

// NeighCache is a bounded, aging IP to MAC table.
type NeighCache struct {
	shards [neighShards]neighShard
	aging  atomic.Int64 // nanoseconds
	now    func() time.Time
}

// NewNeighCache returns an empty cache with OVS's default aging.
func NewNeighCache() *NeighCache {
	c := &NeighCache{now: time.Now}
	for i := range c.shards {
		m := map[netip.Addr]*neighEntry{}
		c.shards[i].entries.Store(&m)
	}
	c.aging.Store(int64(DefaultNeighAging * time.Second))
	return c
}

// shard is the shard that holds ip (already unmapped).
func (c *NeighCache) shard(ip netip.Addr) *neighShard {
	b := ip.As16()
	x := binary.LittleEndian.Uint64(b[:8]) ^ binary.LittleEndian.Uint64(b[8:])
	return &c.shards[(x*0x9e3779b97f4a7c15)>>neighShardShift]
}

// tunnelNeighbours is gvsd's neighbour cache (one per process).
var tunnelNeighbours = NewNeighCache()

// TunnelNeighbours returns gvsd's tunnel neighbour cache.
func TunnelNeighbours() *NeighCache { return tunnelNeighbours }

// Lookup returns ip's MAC address if it is known and fresh. It does not
// allocate.
func (c *NeighCache) Lookup(ip netip.Addr) ([6]byte, bool) {
	ip = ip.Unmap()
	e := (*c.shard(ip).entries.Load())[ip]
	if e == nil || c.now().UnixNano() > e.expires.Load() {
		return [6]byte{}, false
	}
	return e.MAC, true
}

// Set learns (or refreshes) ip's MAC address.
func (c *NeighCache) Set(bridge string, ip netip.Addr, mac [6]byte) {
	ip = ip.Unmap()
	now := c.now().UnixNano()
	exp := now + c.aging.Load()
	sh := c.shard(ip)
	if e := (*sh.entries.Load())[ip]; e != nil && e.MAC == mac && e.Bridge == bridge {
		e.expires.Store(exp)
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := *sh.entries.Load()
	m := make(map[netip.Addr]*neighEntry, len(old)+1)
	for k, e := range old {
		if e.expires.Load() >= now {
			m[k] = e
		}
	}
	delete(m, ip)
	if len(m) >= maxShardNeighbours {
		evictOldest(m)
	}
	e := &neighEntry{Neighbour: Neighbour{IP: ip, MAC: mac, Bridge: bridge}}
	e.expires.Store(exp)
	m[ip] = e
	sh.entries.Store(&m)
}

func evictOldest(m map[netip.Addr]*neighEntry) {
	var victim netip.Addr
	first := int64(-1)
	for k, e := range m {
		if x := e.expires.Load(); first < 0 || x < first {
			victim, first = k, x
		}
	}
	delete(m, victim)
}

// Flush forgets every entry.
func (c *NeighCache) Flush() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		m := map[netip.Addr]*neighEntry{}
		sh.entries.Store(&m)
		sh.mu.Unlock()
	}
}

// Aging returns the aging time in seconds.
func (c *NeighCache) Aging() int { return int(c.aging.Load() / int64(time.Second)) }

// SetAging changes the aging time (1 to 3600 s, as OVS allows); entries
// learned before keep their expiry, but none outlives the new aging.
func (c *NeighCache) SetAging(secs int) bool {
	if secs < 1 || secs > maxNeighAging {
		return false
	}
	c.aging.Store(int64(secs) * int64(time.Second))
	limit := c.now().UnixNano() + int64(secs)*int64(time.Second)
	for i := range c.shards {
		for _, e := range *c.shards[i].entries.Load() {
			if e.expires.Load() > limit {
				e.expires.Store(limit)
			}
		}
	}
	return true
}

// Entries returns the fresh entries, sorted by address.
func (c *NeighCache) Entries() []Neighbour {
	now := c.now().UnixNano()
	var out []Neighbour
	for i := range c.shards {
		for _, e := range *c.shards[i].entries.Load() {
			if e.expires.Load() >= now {
				out = append(out, e.Neighbour)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// Len is the number of entries held (fresh or not yet swept).
func (c *NeighCache) Len() int {
	n := 0
	for i := range c.shards {
		n += len(*c.shards[i].entries.Load())
	}
	return n
}

// ParseARPNeighbour reads what an Ethernet frame teaches the cache: the
// sender of an IPv4-over-Ethernet ARP request or reply (OVS 3.1 learns
// from both: a host asking for the underlay address is a next hop too).
// Frames with a VLAN tag,
// senders with a multicast or zero MAC address or an unspecified,
// multicast or broadcast IP address teach nothing. It does not allocate.
func ParseARPNeighbour(frame []byte) (netip.Addr, [6]byte, bool) {
	if len(frame) < packet.EthernetLen+packet.ARPLen ||
		binary.BigEndian.Uint16(frame[12:14]) != packet.EtherTypeARP {
		return netip.Addr{}, [6]byte{}, false
	}
	a := packet.ARP(frame[packet.EthernetLen:])
	if !a.IsEthernetIPv4() {
		return netip.Addr{}, [6]byte{}, false
	}
	spa := a.SPA()
	if op := a.Op(); op != packet.ARPOpReply && op != packet.ARPOpRequest {
		return netip.Addr{}, [6]byte{}, false
	}
	mac, ip := a.SHA(), netip.AddrFrom4(spa)
	if mac[0]&1 != 0 || mac == [6]byte{} || ip.IsUnspecified() || ip.IsMulticast() || spa == [4]byte{255, 255, 255, 255} {
		return netip.Addr{}, [6]byte{}, false
	}
	return ip, mac, true
}

// BuildARPRequest writes a broadcast ARP request for target from
// (srcMAC, srcIP) into b (at least 42 bytes) and returns its length.
func BuildARPRequest(b []byte, srcMAC [6]byte, srcIP, target netip.Addr) int {
	const n = packet.EthernetLen + packet.ARPLen
	if len(b) < n || !srcIP.Is4() || !target.Is4() {
		return 0
	}
	e := packet.Ethernet(b)
	e.SetDst([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	e.SetSrc(srcMAC)
	e.SetType(packet.EtherTypeARP)
	a := packet.ARP(b[packet.EthernetLen:n])
	binary.BigEndian.PutUint16(a[0:], packet.ARPHardwareEth)
	binary.BigEndian.PutUint16(a[2:], packet.EtherTypeIPv4)
	a[4], a[5] = 6, 4
	a.SetOp(packet.ARPOpRequest)
	a.SetSHA(srcMAC)
	a.SetSPA(srcIP.As4())
	a.SetTHA([6]byte{})
	a.SetTPA(target.As4())
	return n
}
