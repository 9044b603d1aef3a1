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
// the cache holds at most maxNeighbours entries, evicting the one closest
// to expiry when full.
//
// Readers (the tunnel ports' transmit paths) load an immutable map
// through one atomic pointer; a refresh of a known entry only moves its
// expiry (an atomic store), and only a new or changed entry copies the
// map, under the writers' mutex.

const (
	maxNeighbours = 4096
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

// NeighCache is a bounded, aging IP to MAC table.
type NeighCache struct {
	mu      sync.Mutex
	entries atomic.Pointer[map[netip.Addr]*neighEntry]
	aging   atomic.Int64 // nanoseconds
	now     func() time.Time
}

// NewNeighCache returns an empty cache with OVS's default aging.
func NewNeighCache() *NeighCache {
	c := &NeighCache{now: time.Now}
	m := map[netip.Addr]*neighEntry{}
	c.entries.Store(&m)
	c.aging.Store(int64(DefaultNeighAging * time.Second))
	return c
}

// tunnelNeighbours is gvsd's neighbour cache (one per process).
var tunnelNeighbours = NewNeighCache()

// TunnelNeighbours returns gvsd's tunnel neighbour cache.
func TunnelNeighbours() *NeighCache { return tunnelNeighbours }

// Lookup returns ip's MAC address if it is known and fresh. It does not
// allocate.
func (c *NeighCache) Lookup(ip netip.Addr) ([6]byte, bool) {
	e := (*c.entries.Load())[ip.Unmap()]
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
	if e := (*c.entries.Load())[ip]; e != nil && e.MAC == mac && e.Bridge == bridge {
		e.expires.Store(exp)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.entries.Load()
	m := make(map[netip.Addr]*neighEntry, len(old)+1)
	for k, e := range old {
		if e.expires.Load() >= now {
			m[k] = e
		}
	}
	delete(m, ip)
	if len(m) >= maxNeighbours {
		evictOldest(m)
	}
	e := &neighEntry{Neighbour: Neighbour{IP: ip, MAC: mac, Bridge: bridge}}
	e.expires.Store(exp)
	m[ip] = e
	c.entries.Store(&m)
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
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[netip.Addr]*neighEntry{}
	c.entries.Store(&m)
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
	for _, e := range *c.entries.Load() {
		if e.expires.Load() > limit {
			e.expires.Store(limit)
		}
	}
	return true
}

// Entries returns the fresh entries, sorted by address.
func (c *NeighCache) Entries() []Neighbour {
	now := c.now().UnixNano()
	var out []Neighbour
	for _, e := range *c.entries.Load() {
		if e.expires.Load() >= now {
			out = append(out, e.Neighbour)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out
}

// Len is the number of entries held (fresh or not yet swept).
func (c *NeighCache) Len() int { return len(*c.entries.Load()) }

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
