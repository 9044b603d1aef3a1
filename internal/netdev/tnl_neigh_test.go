package netdev

import (
	"net/netip"
	"runtime"
	"testing"
	"time"

	"gvs/internal/packet"
)

func arpFrame(op uint16, sha [6]byte, spa, tpa [4]byte) []byte {
	f := make([]byte, packet.EthernetLen+packet.ARPLen)
	e := packet.Ethernet(f)
	e.SetDst([6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	e.SetSrc(sha)
	e.SetType(packet.EtherTypeARP)
	a := packet.ARP(f[packet.EthernetLen:])
	BuildARPRequest(f, sha, netip.AddrFrom4(spa), netip.AddrFrom4(tpa))
	a.SetOp(op)
	return f
}

var nbMAC = [6]byte{0x02, 0, 0, 0, 0, 0xa}

func TestParseARPNeighbour(t *testing.T) {
	spa, tpa := [4]byte{172, 21, 12, 9}, [4]byte{172, 21, 12, 8}
	reply := arpFrame(packet.ARPOpReply, nbMAC, spa, tpa)
	ip, mac, ok := ParseARPNeighbour(reply)
	if !ok || ip != netip.AddrFrom4(spa) || mac != nbMAC {
		t.Fatalf("reply: %v %v %v", ip, mac, ok)
	}
	if ip, _, ok := ParseARPNeighbour(arpFrame(packet.ARPOpRequest, nbMAC, spa, tpa)); !ok || ip != netip.AddrFrom4(spa) {
		t.Error("a request did not teach its sender, as OVS 3.1's cache learns it")
	}
	if _, _, ok := ParseARPNeighbour(arpFrame(3, nbMAC, spa, tpa)); ok {
		t.Error("a RARP request taught the cache")
	}
	if ip, _, ok := ParseARPNeighbour(arpFrame(packet.ARPOpRequest, nbMAC, spa, spa)); !ok || ip != netip.AddrFrom4(spa) {
		t.Error("a gratuitous ARP taught nothing")
	}
	for name, f := range map[string][]byte{
		"multicast sender": arpFrame(packet.ARPOpReply, [6]byte{1, 0, 0x5e, 0, 0, 1}, spa, tpa),
		"zero sender":      arpFrame(packet.ARPOpReply, [6]byte{}, spa, tpa),
		"zero IP":          arpFrame(packet.ARPOpReply, nbMAC, [4]byte{}, tpa),
		"broadcast IP":     arpFrame(packet.ARPOpReply, nbMAC, [4]byte{255, 255, 255, 255}, tpa),
		"truncated":        reply[:40],
		"not ARP":          append([]byte{}, reply[:12]...),
	} {
		if _, _, ok := ParseARPNeighbour(f); ok {
			t.Errorf("%s: learned", name)
		}
	}
	bad := append([]byte{}, reply...)
	bad[packet.EthernetLen+5] = 16 // protocol length
	if _, _, ok := ParseARPNeighbour(bad); ok {
		t.Error("an ARP packet that is not Ethernet/IPv4 taught the cache")
	}
}

func TestNeighCacheAging(t *testing.T) {
	c := NewNeighCache()
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ip := mustAddr("172.21.12.9")
	c.Set("ul", ip, nbMAC)
	if m, ok := c.Lookup(ip); !ok || m != nbMAC {
		t.Fatal("just learned, not found")
	}
	now = now.Add(899 * time.Second)
	c.Set("ul", ip, nbMAC) // seen again: refreshed
	now = now.Add(899 * time.Second)
	if _, ok := c.Lookup(ip); !ok {
		t.Error("a refreshed entry expired")
	}
	now = now.Add(2 * time.Second)
	if _, ok := c.Lookup(ip); ok {
		t.Error("an entry outlived the aging time")
	}
	if len(c.Entries()) != 0 {
		t.Error("tnl/neigh/show would list an expired entry")
	}
	c.Set("ul", ip, nbMAC)
	if !c.SetAging(10) || c.Aging() != 10 {
		t.Fatal("SetAging(10)")
	}
	now = now.Add(11 * time.Second)
	if _, ok := c.Lookup(ip); ok {
		t.Error("an entry outlived a shorter aging time set after it was learned")
	}
	if c.SetAging(0) || c.SetAging(3601) {
		t.Error("aging out of 1..3600 accepted")
	}
	c.Set("ul", ip, nbMAC)
	c.Flush()
	if _, ok := c.Lookup(ip); ok {
		t.Error("found after a flush")
	}
}

func TestNeighCacheBounded(t *testing.T) {
	c := NewNeighCache()
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	first := netip.AddrFrom4([4]byte{10, 0, 0, 0})
	n := 4 * maxNeighbours
	for i := range n {
		now = now.Add(time.Millisecond)
		c.Set("ul", netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), nbMAC)
	}
	if got := c.Len(); got > maxNeighbours || got < maxNeighbours/2 {
		t.Errorf("cache holds %d entries, want at most the bound %d (and most of it used)", got, maxNeighbours)
	}
	if _, ok := c.Lookup(first); ok {
		t.Error("the oldest entry was kept when the cache overflowed")
	}
	if _, ok := c.Lookup(netip.AddrFrom4([4]byte{10, byte((n - 1) >> 16), byte((n - 1) >> 8), byte(n - 1)})); !ok {
		t.Error("the newest entry is missing")
	}
}

// Any host on a bridge can send ARP packets with ever new sender
// addresses: learning one must cost little, also with the cache full.
// Copying the whole cache for each cost about 330 KB and 250 µs.
func TestNeighCacheLearningCostBounded(t *testing.T) {
	c := NewNeighCache()
	for i := range 2 * maxNeighbours {
		c.Set("ul", netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), nbMAC)
	}
	const sets = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range sets {
		c.Set("ul", netip.AddrFrom4([4]byte{11, 0, byte(i >> 8), byte(i)}), nbMAC)
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / sets; per > 16<<10 {
		t.Errorf("learning a new neighbour in a full cache allocates %d bytes, want at most 16 KiB", per)
	}
}

func TestNeighLookupDoesNotAllocate(t *testing.T) {
	c := NewNeighCache()
	ip := mustAddr("172.21.12.9")
	c.Set("ul", ip, nbMAC)
	if n := testing.AllocsPerRun(100, func() { c.Lookup(ip); c.Set("ul", ip, nbMAC) }); n != 0 {
		t.Errorf("Lookup and a refresh allocate %v times", n)
	}
}

// FuzzParseARPNeighbour: no input panics, and whatever is learned is a
// unicast sender of a well-formed Ethernet/IPv4 ARP packet.
func FuzzParseARPNeighbour(f *testing.F) {
	f.Add(arpFrame(packet.ARPOpReply, nbMAC, [4]byte{172, 21, 12, 9}, [4]byte{172, 21, 12, 8}))
	f.Add(arpFrame(packet.ARPOpRequest, nbMAC, [4]byte{172, 21, 12, 9}, [4]byte{172, 21, 12, 9}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ip, mac, ok := ParseARPNeighbour(b)
		if !ok {
			return
		}
		if len(b) < packet.EthernetLen+packet.ARPLen || mac[0]&1 != 0 || !ip.Is4() || ip.IsUnspecified() {
			t.Fatalf("learned %v %v from %x", ip, mac, b)
		}
		c := NewNeighCache()
		c.Set("ul", ip, mac)
		if m, ok := c.Lookup(ip); !ok || m != mac {
			t.Fatal("learned entry not found")
		}
	})
}
