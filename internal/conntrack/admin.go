package conntrack

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"gvs/internal/packet"
)

// MaxZoneLimit bounds a zone's connection limit (the counters are 31 bits).
const MaxZoneLimit = 1<<31 - 1

// SetMaxConns sets the global limit on committed connections. Existing
// connections stay; new ones are refused while the table is at the limit.
func (t *Tracker) SetMaxConns(n uint32) { t.maxConns.Store(n) }

// SetTCPSeqCheck turns the TCP sequence (window) checks on or off; off,
// segments outside the window are no longer +inv, as with the kernel's
// nf_conntrack_tcp_be_liberal=1. They are on by default.
func (t *Tracker) SetTCPSeqCheck(on bool) { t.noSeqCheck.Store(!on) }

// TCPSeqCheck reports whether the TCP sequence checks are on.
func (t *Tracker) TCPSeqCheck() bool { return !t.noSeqCheck.Load() }

// MaxConns returns the global limit.
func (t *Tracker) MaxConns() uint32 { return t.maxConns.Load() }

// ZoneLimit is one zone's limit and its current connection count. The
// default limit (for zones without their own) has Default set.
type ZoneLimit struct {
	Default bool
	Zone    uint16
	Limit   uint32 // 0: unlimited
	Count   uint32
}

// SetZoneLimit sets the limit of one zone; 0 means unlimited (OVS's
// ct-set-limits zone=N,limit=0).
func (t *Tracker) SetZoneLimit(zone uint16, limit uint32) error {
	if limit > MaxZoneLimit {
		return fmt.Errorf("zone %d: limit %d exceeds the maximum %d", zone, limit, MaxZoneLimit)
	}
	t.updateLimits(func(l *limitCfg) { l.zones[zone] = limit })
	return nil
}

// SetDefaultZoneLimit sets the limit of zones that have none of their own.
func (t *Tracker) SetDefaultZoneLimit(limit uint32) error {
	if limit > MaxZoneLimit {
		return fmt.Errorf("default zone limit %d exceeds the maximum %d", limit, MaxZoneLimit)
	}
	t.updateLimits(func(l *limitCfg) { l.def = limit })
	return nil
}

// DelZoneLimit removes a zone's own limit: the default applies again.
func (t *Tracker) DelZoneLimit(zone uint16) {
	t.updateLimits(func(l *limitCfg) { delete(l.zones, zone) })
}

func (t *Tracker) updateLimits(f func(*limitCfg)) {
	for {
		old := t.limits.Load()
		n := &limitCfg{def: old.def, zones: maps.Clone(old.zones)}
		if n.zones == nil {
			n.zones = map[uint16]uint32{}
		}
		f(n)
		if t.limits.CompareAndSwap(old, n) {
			return
		}
	}
}

// ZoneLimits returns the default limit first, then the zones with their
// own limits in zone order, each with its connection count.
func (t *Tracker) ZoneLimits() []ZoneLimit {
	l := t.limits.Load()
	out := []ZoneLimit{{Default: true, Limit: l.def}}
	for _, z := range slices.Sorted(maps.Keys(l.zones)) {
		out = append(out, ZoneLimit{Zone: z, Limit: l.zones[z], Count: t.ZoneCount(z)})
	}
	return out
}

// ZoneCount returns the number of committed connections in a zone.
func (t *Tracker) ZoneCount(zone uint16) uint32 {
	return uint32(max(t.zoneCount[zone].Load(), 0))
}

// SetZoneTimeouts gives a zone its own timeouts (OVS's CT_Timeout_Policy);
// nil returns the zone to the defaults.
func (t *Tracker) SetZoneTimeouts(zone uint16, tm *Timeouts) {
	for {
		old := t.timeouts.Load()
		n := &timeoutCfg{def: old.def, zones: maps.Clone(old.zones)}
		if n.zones == nil {
			n.zones = map[uint16]*Timeouts{}
		}
		if tm == nil {
			delete(n.zones, zone)
		} else {
			c := *tm
			n.zones[zone] = &c
		}
		if t.timeouts.CompareAndSwap(old, n) {
			return
		}
	}
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	st := Stats{
		Conns:      uint64(max(t.count.Load(), 0)),
		ByProto:    map[string]uint64{},
		Committed:  t.committed.Load(),
		Expired:    t.expired.Load(),
		Invalid:    t.invalid.Load(),
		LimitDrops: t.limitDrop.Load(),
		NATFailed:  t.natFail.Load(),
	}
	for p := range t.byProto {
		if n := t.byProto[p].Load(); n > 0 {
			st.ByProto[protoName(uint8(p))] += uint64(n)
		}
	}
	return st
}

func protoName(p uint8) string {
	switch p {
	case packet.ProtoTCP:
		return "tcp"
	case packet.ProtoUDP:
		return "udp"
	case packet.ProtoICMPv4:
		return "icmp"
	case packet.ProtoICMPv6:
		return "icmpv6"
	case packet.ProtoSCTP:
		return "sctp"
	case 136:
		return "udplite"
	}
	return "other"
}

// Sweep removes the connections whose timeout passed at now and returns
// how many. The packet path also drops an expired connection when it
// meets one, so Sweep only bounds the memory that idle connections hold;
// it locks one shard at a time.
func (t *Tracker) Sweep(now int64) int {
	n := 0
	for i := range t.shards {
		n += t.sweepShard(i, now, nil)
	}
	t.expired.Add(uint64(n))
	t.sweepExpectations(now)
	return n
}

// sweepShard removes from shard si the expired connections and, when
// match is not nil, those it selects. A NATed connection whose reply
// entry lives in a lower shard that is busy is left for the next sweep,
// as taking that lock while holding this one could deadlock.
func (t *Tracker) sweepShard(si int, now int64, match func(*conn) bool) int {
	s := &t.shards[si]
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, ch := range s.chunks {
		for j := range ch {
			c := &ch[j]
			if c.expires == 0 {
				continue
			}
			if !((match == nil && c.expires <= now) || (match != nil && match(c))) {
				continue
			}
			rs := int(c.rshard)
			if rs != si {
				if rs < si {
					if !t.shards[rs].mu.TryLock() {
						continue
					}
				} else {
					t.shards[rs].mu.Lock()
				}
			}
			t.removeLocked(si, uint32(k)<<chunkBits|uint32(j), c)
			if rs != si {
				t.shards[rs].mu.Unlock()
			}
			n++
		}
	}
	return n
}

// StartSweeper runs Sweep every interval with the time clock gives,
// until the returned stop function is called.
func (t *Tracker) StartSweeper(interval time.Duration, clock func() int64) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				t.Sweep(clock())
			}
		}
	}()
	return func() { close(done); <-finished }
}

// Flush removes connections: all of them, those of one zone, or (with
// tuple) the one whose original direction is tuple, in zone or, with a
// nil zone, in zone 0 (as dpctl/flush-conntrack). It returns how many.
func (t *Tracker) Flush(zone *uint16, tuple *Tuple) int {
	var want conn
	if tuple != nil {
		if !tuple.Src.IsValid() || !tuple.Dst.IsValid() || tuple.Src.Is4() != tuple.Dst.Is4() {
			return 0
		}
		z := uint16(0)
		if zone != nil {
			z = *zone
		}
		want = connFromTuple(tuple, z)
	}
	match := func(c *conn) bool {
		if tuple != nil {
			return c.zone == want.zone && c.proto == want.proto && c.isV6() == want.isV6() && c.tup[0] == want.tup[0]
		}
		return zone == nil || c.zone == *zone
	}
	n := 0
	for i := range t.shards {
		n += t.sweepShard(i, 0, match)
	}
	return n
}

// FlushMatching removes the connections of zone (all zones with nil)
// whose original direction matches orig and whose reply direction
// matches reply, where a zero field (an invalid address, protocol, port,
// ICMP id, type or code 0) or a nil tuple matches anything: the
// partial tuples of dpctl/flush-conntrack. It returns how many.
func (t *Tracker) FlushMatching(zone *uint16, orig, reply *Tuple) int {
	match := func(c *conn) bool {
		if zone != nil && c.zone != *zone {
			return false
		}
		v6 := c.isV6()
		return tupleMatches(orig, publicTuple(&c.tup[0], c.proto, v6)) && tupleMatches(reply, publicTuple(&c.tup[1], c.proto, v6))
	}
	n := 0
	for i := range t.shards {
		n += t.sweepShard(i, 0, match)
	}
	return n
}

func tupleMatches(want *Tuple, got Tuple) bool {
	if want == nil {
		return true
	}
	addr := func(w, g netip.Addr) bool { return !w.IsValid() || w == g }
	num := func(w, g uint16) bool { return w == 0 || w == g }
	return addr(want.Src, got.Src) && addr(want.Dst, got.Dst) && (want.Proto == 0 || want.Proto == got.Proto) &&
		num(want.SrcPort, got.SrcPort) && num(want.DstPort, got.DstPort) && num(want.ICMPID, got.ICMPID) &&
		num(uint16(want.ICMPType), uint16(got.ICMPType)) && num(uint16(want.ICMPCode), uint16(got.ICMPCode))
}

func connFromTuple(u *Tuple, zone uint16) conn {
	var c conn
	c.zone = zone
	c.proto = u.Proto
	src, dst := u.Src.Unmap(), u.Dst.Unmap()
	if src.Is6() {
		c.status |= stV6
		c.tup[0].src, c.tup[0].dst = src.As16(), dst.As16()
	} else {
		s4, d4 := src.As4(), dst.As4()
		copy(c.tup[0].src[:], s4[:])
		copy(c.tup[0].dst[:], d4[:])
	}
	if isICMP(u.Proto) {
		c.tup[0].sport = u.ICMPID
		c.tup[0].dport = uint16(u.ICMPType)<<8 | uint16(u.ICMPCode)
	} else {
		c.tup[0].sport, c.tup[0].dport = u.SrcPort, u.DstPort
	}
	return c
}
