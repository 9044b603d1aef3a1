package ofproto

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Rebalancing, as OVS's balance-slb and balance-tcp bonds do it: every
// bond-rebalance-interval, hash buckets move from the member that sent
// the most bytes in the interval to the one that sent the least, each
// move only when it narrows the gap between them.

// assignBuckets gives every bucket its member: the one rebalancing moved
// it to while that member is enabled, else the enabled members in turn
// (bucket i to the i mod n-th), so that a member coming back gets its
// share at once. Under b.mu.
func (b *Bond) assignBuckets() {
	var on []*bondMember
	for _, m := range b.members {
		if m.enabled {
			on = append(on, m)
		}
	}
	for i := range b.assign {
		switch m := b.moved[i]; {
		case m != nil && m.enabled && b.isMember(m):
			b.assign[i] = m
		case len(on) == 0:
			b.moved[i], b.assign[i] = nil, nil
		default:
			b.moved[i], b.assign[i] = nil, on[i%len(on)]
		}
	}
}

// isMember reports whether m is one of the bond's members. Under b.mu.
func (b *Bond) isMember(m *bondMember) bool {
	for _, x := range b.members {
		if x == m {
			return true
		}
	}
	return false
}

// maxRebalanceMoves bounds the bucket moves of one rebalancing.
const maxRebalanceMoves = bondBuckets

// rebalance moves buckets between enabled members by the load of the
// interval that ended at now, and reports whether it moved any. Under
// b.mu.
func (b *Bond) rebalance(now time.Time) bool {
	if b.cfg.RebalanceInterval <= 0 {
		return false
	}
	if b.nextRebalance.IsZero() || now.Before(b.nextRebalance) {
		if b.nextRebalance.IsZero() {
			b.nextRebalance = now.Add(b.cfg.RebalanceInterval)
		}
		return false
	}
	b.nextRebalance = now.Add(b.cfg.RebalanceInterval)
	for i := range b.load {
		n := b.load[i].Bytes.Load()
		b.lastLoad[i], b.loadSeen[i] = n-b.loadSeen[i], n
	}
	if mode, live := b.effective(); !live || mode == BondActiveBackup {
		return false
	}
	memberLoad := map[*bondMember]uint64{}
	var on []*bondMember
	for _, m := range b.members {
		if m.enabled {
			on = append(on, m)
			memberLoad[m] = 0
		}
	}
	if len(on) < 2 {
		return false
	}
	for i, m := range b.assign {
		if m != nil {
			memberLoad[m] += b.lastLoad[i]
		}
	}
	moved := false
	for range maxRebalanceMoves {
		sort.SliceStable(on, func(i, j int) bool { return memberLoad[on[i]] > memberLoad[on[j]] })
		from, to := on[0], on[len(on)-1]
		gap := memberLoad[from] - memberLoad[to]
		// The bucket of from whose move narrows the gap the most: a
		// load under the gap, as close to half of it as can be.
		best := -1
		for i, m := range b.assign {
			l := b.lastLoad[i]
			if m != from || l == 0 || l >= gap {
				continue
			}
			if best < 0 || absDiff(2*l, gap) < absDiff(2*b.lastLoad[best], gap) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		bondLog.Info("bond %s: shift %d kB of load (with hash %d) from %s to %s", b.Name, b.lastLoad[best]/1024, best, from.port.Name, to.port.Name)
		b.assign[best], b.moved[best] = to, to
		memberLoad[from] -= b.lastLoad[best]
		memberLoad[to] += b.lastLoad[best]
		moved = true
	}
	return moved
}

func absDiff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// showHashes writes bond/show's lines of m's buckets with load in the
// last interval. Under b.mu.
func (b *Bond) showHashes(s *strings.Builder, m *bondMember) {
	for i, a := range b.assign {
		if a == m && b.lastLoad[i] > 0 {
			fmt.Fprintf(s, "  hash %d: %d kB load\n", i, b.lastLoad[i]/1024)
		}
	}
}
