package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"gvs/internal/conntrack"
	"gvs/internal/vswitchd"
)

type fakeConntrack struct{ c vswitchd.ConntrackCounters }

func (f fakeConntrack) ConntrackCounters() vswitchd.ConntrackCounters { return f.c }

type fakeSpans []vswitchd.SpanCounters

func (f fakeSpans) SpanCounters() []vswitchd.SpanCounters { return f }

// TestConntrackAndSpanMetrics: the tracker's connections by protocol
// (every protocol present), commits, limit drops, invalid packets and
// zone limits; each span session's counters and its destinations'.
func TestConntrackAndSpanMetrics(t *testing.T) {
	src := Sources{
		Conntrack: fakeConntrack{vswitchd.ConntrackCounters{MaxConns: 3000000,
			Stats: conntrack.Stats{Conns: 3, ByProto: map[string]uint64{"tcp": 2, "udp": 1}, Committed: 9,
				Expired: 6, Invalid: 4, LimitDrops: 2, NATFailed: 1},
			Zones: []conntrack.ZoneLimit{{Default: true, Limit: 100}, {Zone: 5, Limit: 1, Count: 1}}}},
		Spans: fakeSpans{{Span: "web", Seen: 100, Selected: 40, Dropped: 1, Truncated: 2, Errors: 0,
			Dests: []vswitchd.SpanDestCounters{{Dest: "pcap:/x", Sent: 39, Dropped: 1}, {Dest: "dev:eth9", Sent: 40}}}},
	}
	c := NewCollector(src)
	want := `
# HELP gvs_conntrack_connections Connections in the connection tracker, by protocol.
# TYPE gvs_conntrack_connections gauge
gvs_conntrack_connections{proto="icmp"} 0
gvs_conntrack_connections{proto="icmpv6"} 0
gvs_conntrack_connections{proto="other"} 0
gvs_conntrack_connections{proto="sctp"} 0
gvs_conntrack_connections{proto="tcp"} 2
gvs_conntrack_connections{proto="udp"} 1
gvs_conntrack_connections{proto="udplite"} 0
# HELP gvs_conntrack_commits_total Connections committed since gvsd started.
# TYPE gvs_conntrack_commits_total counter
gvs_conntrack_commits_total 9
# HELP gvs_conntrack_invalid_total Packets the tracker found invalid (ct_state +inv).
# TYPE gvs_conntrack_invalid_total counter
gvs_conntrack_invalid_total 4
# HELP gvs_conntrack_limit_drops_total Commits refused by the global or a zone's connection limit (the packet is dropped).
# TYPE gvs_conntrack_limit_drops_total counter
gvs_conntrack_limit_drops_total 2
# HELP gvs_conntrack_zone_connections Connections of a zone that has a limit of its own.
# TYPE gvs_conntrack_zone_connections gauge
gvs_conntrack_zone_connections{zone="5"} 1
# HELP gvs_conntrack_zone_connections_limit A zone's connection limit (0: unlimited); zone="default" for zones without their own.
# TYPE gvs_conntrack_zone_connections_limit gauge
gvs_conntrack_zone_connections_limit{zone="5"} 1
gvs_conntrack_zone_connections_limit{zone="default"} 100
# HELP gvs_span_selected_packets_total Packets a span session's rules selected.
# TYPE gvs_span_selected_packets_total counter
gvs_span_selected_packets_total{span="web"} 40
# HELP gvs_span_seen_packets_total Packets of a span session's sources, in the session's directions.
# TYPE gvs_span_seen_packets_total counter
gvs_span_seen_packets_total{span="web"} 100
# HELP gvs_span_sent_packets_total Copies a span session sent to a destination.
# TYPE gvs_span_sent_packets_total counter
gvs_span_sent_packets_total{destination="dev:eth9",span="web"} 40
gvs_span_sent_packets_total{destination="pcap:/x",span="web"} 39
# HELP gvs_span_destination_dropped_packets_total Copies lost at a span destination (queue full or refused).
# TYPE gvs_span_destination_dropped_packets_total counter
gvs_span_destination_dropped_packets_total{destination="dev:eth9",span="web"} 0
gvs_span_destination_dropped_packets_total{destination="pcap:/x",span="web"} 1
`
	names := []string{"gvs_conntrack_connections", "gvs_conntrack_commits_total", "gvs_conntrack_invalid_total",
		"gvs_conntrack_limit_drops_total", "gvs_conntrack_zone_connections", "gvs_conntrack_zone_connections_limit",
		"gvs_span_selected_packets_total", "gvs_span_seen_packets_total", "gvs_span_sent_packets_total",
		"gvs_span_destination_dropped_packets_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestConntrackZoneSeriesBounded: however many zones have a limit, at
// most maxZoneSeries are reported apart.
func TestConntrackZoneSeriesBounded(t *testing.T) {
	zones := []conntrack.ZoneLimit{{Default: true}}
	for z := range 5000 {
		zones = append(zones, conntrack.ZoneLimit{Zone: uint16(z), Limit: 10})
	}
	c := NewCollector(Sources{Conntrack: fakeConntrack{vswitchd.ConntrackCounters{Zones: zones}}})
	if n := testutil.CollectAndCount(c, "gvs_conntrack_zone_connections"); n != maxZoneSeries {
		t.Errorf("%d zone series, want %d", n, maxZoneSeries)
	}
}

// TestSpanSeriesBounded: at most maxSpanSeries sessions are reported.
func TestSpanSeriesBounded(t *testing.T) {
	var spans fakeSpans
	for i := range 1000 {
		spans = append(spans, vswitchd.SpanCounters{Span: strings.Repeat("s", 1+i%60) + string(rune('a'+i%26)) + strings.Repeat("x", i/26)})
	}
	if n := testutil.CollectAndCount(NewCollector(Sources{Spans: spans}), "gvs_span_seen_packets_total"); n != maxSpanSeries {
		t.Errorf("%d span series, want %d", n, maxSpanSeries)
	}
}
