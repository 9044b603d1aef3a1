package metrics

import (
	"slices"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"gvs/internal/vswitchd"
)

// Conntrack is the connection tracker's counters.
type Conntrack interface {
	ConntrackCounters() vswitchd.ConntrackCounters
}

// Spans is the span sessions' statistics.
type Spans interface {
	SpanCounters() []vswitchd.SpanCounters
}

// ctProtos are the protocol label values of gvs_conntrack_connections,
// always all present (at zero) so that the series do not come and go.
var ctProtos = []string{"tcp", "udp", "icmp", "icmpv6", "sctp", "udplite", "other"}

// maxZoneSeries bounds the zones reported apart: zones with a limit of
// their own, which the configuration sets, but a limit on its labels
// does not depend on the operator's restraint.
const maxZoneSeries = 256

var (
	ctConnsDesc     = desc("conntrack_connections", "Connections in the connection tracker, by protocol.", "proto")
	ctMaxConnsDesc  = desc("conntrack_connections_limit", "The most connections the tracker holds (dpctl/ct-set-maxconns).")
	ctCommitsDesc   = desc("conntrack_commits_total", "Connections committed since gvsd started.")
	ctExpiredDesc   = desc("conntrack_expired_total", "Connections removed when their timeout passed.")
	ctInvalidDesc   = desc("conntrack_invalid_total", "Packets the tracker found invalid (ct_state +inv).")
	ctLimitDesc     = desc("conntrack_limit_drops_total", "Commits refused by the global or a zone's connection limit (the packet is dropped).")
	ctNATFailDesc   = desc("conntrack_nat_failed_total", "NAT commits that found no free address and port.")
	ctZoneConnsDesc = desc("conntrack_zone_connections", "Connections of a zone that has a limit of its own.", "zone")
	ctZoneLimitDesc = desc("conntrack_zone_connections_limit", "A zone's connection limit (0: unlimited); zone=\"default\" for zones without their own.", "zone")

	spanSeenDesc      = desc("span_seen_packets_total", "Packets of a span session's sources, in the session's directions.", "span")
	spanSelectedDesc  = desc("span_selected_packets_total", "Packets a span session's rules selected.", "span")
	spanDroppedDesc   = desc("span_dropped_packets_total", "Selected packets a span session lost before any destination (kernel buffer full).", "span")
	spanTruncDesc     = desc("span_truncated_packets_total", "Span copies cut to the session's snaplen.", "span")
	spanErrorsDesc    = desc("span_errors_total", "Frames the kernel could not hand over to a span session.", "span")
	spanSentDesc      = desc("span_sent_packets_total", "Copies a span session sent to a destination.", "span", "destination")
	spanDestDropsDesc = desc("span_destination_dropped_packets_total", "Copies lost at a span destination (queue full or refused).", "span", "destination")
)

var ctDescs = []*prometheus.Desc{ctConnsDesc, ctMaxConnsDesc, ctCommitsDesc, ctExpiredDesc, ctInvalidDesc,
	ctLimitDesc, ctNATFailDesc, ctZoneConnsDesc, ctZoneLimitDesc}

var spanDescs = []*prometheus.Desc{spanSeenDesc, spanSelectedDesc, spanDroppedDesc, spanTruncDesc, spanErrorsDesc,
	spanSentDesc, spanDestDropsDesc}

func collectConntrack(ch chan<- prometheus.Metric, c vswitchd.ConntrackCounters) {
	for _, p := range ctProtos {
		gauge(ch, ctConnsDesc, float64(c.Stats.ByProto[p]), p)
	}
	gauge(ch, ctMaxConnsDesc, float64(c.MaxConns))
	counter(ch, ctCommitsDesc, c.Stats.Committed)
	counter(ch, ctExpiredDesc, c.Stats.Expired)
	counter(ch, ctInvalidDesc, c.Stats.Invalid)
	counter(ch, ctLimitDesc, c.Stats.LimitDrops)
	counter(ch, ctNATFailDesc, c.Stats.NATFailed)
	n := 0
	for _, z := range c.Zones {
		if z.Default {
			gauge(ch, ctZoneLimitDesc, float64(z.Limit), "default")
			continue
		}
		if n++; n > maxZoneSeries {
			continue
		}
		zone := strconv.Itoa(int(z.Zone))
		gauge(ch, ctZoneConnsDesc, float64(z.Count), zone)
		gauge(ch, ctZoneLimitDesc, float64(z.Limit), zone)
	}
}

// maxSpanSeries bounds the span sessions reported (each has at most
// span.MaxDests destinations): sessions are configuration, but a limit
// on the labels does not depend on it.
const maxSpanSeries = 256

func collectSpans(ch chan<- prometheus.Metric, spans []vswitchd.SpanCounters) {
	for _, s := range spans[:min(len(spans), maxSpanSeries)] {
		counter(ch, spanSeenDesc, s.Seen, s.Span)
		counter(ch, spanSelectedDesc, s.Selected, s.Span)
		counter(ch, spanDroppedDesc, s.Dropped, s.Span)
		counter(ch, spanTruncDesc, s.Truncated, s.Span)
		counter(ch, spanErrorsDesc, s.Errors, s.Span)
		dests := slices.Clone(s.Dests)
		slices.SortFunc(dests, func(a, b vswitchd.SpanDestCounters) int {
			if a.Dest < b.Dest {
				return -1
			}
			if a.Dest > b.Dest {
				return 1
			}
			return 0
		})
		for _, d := range dests {
			counter(ch, spanSentDesc, d.Sent, s.Span, d.Dest)
			counter(ch, spanDestDropsDesc, d.Dropped, s.Span, d.Dest)
		}
	}
}
