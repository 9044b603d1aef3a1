package ofproto

import (
	"sync/atomic"
	"time"

	"gvs/internal/flow"
)

// Rule is one flow in a table. Everything but its counters is immutable
// once the rule is in a table: modify-flows puts a new Rule in its place
// (sharing the counters unless reset_counts), so the packet path can read
// a rule's actions without a lock.
type Rule struct {
	match    *flow.Match
	priority uint16
	st       *subtable
	// conj is the flow's conjunction actions when it is a clause of
	// conjunctive matches (its actions are those and notes), else nil.
	conj []conjRef

	flow     *flow.Flow // Table, Priority, Cookie, timeouts, flags, match, actions
	created  int64      // unix nanoseconds of the add
	modified int64      // of the add or the last modify (hard_timeout and hard_age count from it)
	order    uint64     // dump order within the subtable: last add or modify
	stats    *ruleStats
}

// ruleStats are a rule's counters, updated by the packet path with
// atomic operations.
type ruleStats struct {
	packets, bytes atomic.Uint64
	used           atomic.Int64 // unix nanoseconds of the last packet (or of creation)
}

// Flow returns the rule's flow. The caller must not modify it.
func (r *Rule) Flow() *flow.Flow { return r.flow }

// Actions returns the rule's actions. The caller must not modify them.
func (r *Rule) Actions() []flow.Action { return r.flow.Actions }

// Priority returns the rule's priority.
func (r *Rule) Priority() uint16 { return r.priority }

// Account adds packets and bytes to the rule's counters and marks it used
// at now. It takes no lock and does not allocate. As in OVS, the
// no_packet_counts and no_byte_counts flags do not stop counting.
func (r *Rule) Account(packets, bytes uint64, now time.Time) {
	r.stats.packets.Add(packets)
	r.stats.bytes.Add(bytes)
	if ns := now.UnixNano(); ns > r.stats.used.Load() {
		r.stats.used.Store(ns)
	}
}

// Counters returns the rule's packet and byte counts.
func (r *Rule) Counters() (packets, bytes uint64) {
	return r.stats.packets.Load(), r.stats.bytes.Load()
}

// Stats returns what dump-flows prints about the rule at now.
func (r *Rule) Stats(now time.Time) flow.Stats {
	ns := now.UnixNano()
	p, b := r.Counters()
	return flow.Stats{
		Duration: time.Duration(max(ns-r.created, 0)),
		Packets:  p,
		Bytes:    b,
		IdleAge:  int(max(ns-r.stats.used.Load(), 0) / int64(time.Second)),
		HardAge:  int(max(ns-r.modified, 0) / int64(time.Second)),
	}
}

// outputsTo reports whether the actions send packets to port, as
// out_port selects flows: an output to it, or a controller action for
// the CONTROLLER port, also inside clone.
func outputsTo(acts []flow.Action, port uint32) bool {
	for _, a := range acts {
		switch a := a.(type) {
		case flow.Output:
			if a.Port == port {
				return true
			}
		case flow.Controller:
			if port == flow.PortController {
				return true
			}
		case flow.Clone:
			if outputsTo(a.Actions, port) {
				return true
			}
		}
	}
	return false
}
