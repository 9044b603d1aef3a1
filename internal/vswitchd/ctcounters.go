package vswitchd

import (
	"sort"

	"gvs/internal/conntrack"
)

// ConntrackCounters are the connection tracker's counters and the zones
// that have a limit of their own (the only zones counted apart, so that
// the number of zones reported is bounded by the configuration).
type ConntrackCounters struct {
	Stats    conntrack.Stats
	MaxConns uint32
	Zones    []conntrack.ZoneLimit // zones with their own limit, default first
}

// ConntrackCounters reads the tracker's counters.
func (sw *Switch) ConntrackCounters() ConntrackCounters {
	ct := sw.state.ct
	return ConntrackCounters{Stats: ct.Stats(), MaxConns: ct.MaxConns(), Zones: ct.ZoneLimits()}
}

// SpanCounters are one span session's statistics, as in Span.statistics.
type SpanCounters struct {
	Span                       string
	Seen, Selected             uint64
	Dropped, Truncated, Errors uint64 // Dropped: before any destination
	Dests                      []SpanDestCounters
}

// SpanDestCounters are one destination's copies sent and lost.
type SpanDestCounters struct {
	Dest          string
	Sent, Dropped uint64
}

// SpanCounters returns the statistics of every running span session,
// sorted by name.
func (sw *Switch) SpanCounters() []SpanCounters {
	st := sw.state
	st.mu.Lock()
	var out []SpanCounters
	for name, l := range st.spans {
		if l.s == nil {
			continue
		}
		s := l.s.Status().Stats
		c := SpanCounters{Span: name, Seen: s.Seen, Selected: s.Selected, Dropped: s.Dropped,
			Truncated: s.Truncated, Errors: s.Errors}
		for _, d := range s.Dests {
			c.Dests = append(c.Dests, SpanDestCounters{Dest: d.Dest, Sent: d.Sent, Dropped: d.Dropped})
		}
		out = append(out, c)
	}
	st.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Span < out[j].Span })
	return out
}
