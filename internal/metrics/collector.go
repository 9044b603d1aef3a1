// Package metrics exports gvsd's counters to Prometheus: interface,
// mirror and span statistics, the connection tracker, flow table sizes,
// OVSDB transactions and clients, coverage counters and drops by cause. It reads them on each scrape from
// the same sources as `ovs-vsctl list interface` and `coverage/show`,
// through the small interfaces below, and keeps nothing between scrapes.
//
// Labels are names from the database (bridges, ports, interfaces,
// mirrors, span sessions and their destinations), flow table numbers,
// conntrack zones that have a limit of their own (at most 256) and
// protocol names, coverage counter names and a fixed set of
// causes and reasons: all bounded by the configuration or by the program,
// never by traffic (no per-flow or per-address label).
package metrics

import (
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"gvs/internal/coverage"
	"gvs/internal/ovsdb"
	"gvs/internal/vswitchd"
)

// Switch is what the collector reads from the running switch.
type Switch interface {
	InterfaceCounters() []vswitchd.InterfaceCounters
	MirrorCounters() []vswitchd.MirrorCounters
	FlowCounts() []vswitchd.BridgeFlows
}

// Database is the configuration database's transaction counters.
type Database interface {
	TxnStats() ovsdb.TxnStats
}

// Clients is what the OVSDB server holds for its clients.
type Clients interface {
	Clients() ovsdb.ClientStats
}

// Coverage is a set of coverage counters.
type Coverage interface {
	Totals() []coverage.Total
}

// Sources are where the collector reads; a nil source is left out (a
// gvsd that is a client of another OVSDB server serves no database).
type Sources struct {
	Switch    Switch
	Database  Database
	Clients   Clients
	Coverage  Coverage
	Conntrack Conntrack
	Spans     Spans
}

const namespace = "gvs"

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

var ifaceLabels = []string{"bridge", "port", "interface"}

// ifaceDescs are the interface counters, in the order of ifaceValues.
var ifaceDescs = []*prometheus.Desc{
	desc("interface_rx_packets_total", "Packets received on the interface.", ifaceLabels...),
	desc("interface_rx_bytes_total", "Bytes received on the interface.", ifaceLabels...),
	desc("interface_rx_dropped_total", "Received packets dropped by the interface.", ifaceLabels...),
	desc("interface_rx_errors_total", "Receive errors on the interface.", ifaceLabels...),
	desc("interface_tx_packets_total", "Packets sent on the interface.", ifaceLabels...),
	desc("interface_tx_bytes_total", "Bytes sent on the interface.", ifaceLabels...),
	desc("interface_tx_dropped_total", "Packets to send that the interface dropped.", ifaceLabels...),
	desc("interface_tx_errors_total", "Send errors on the interface.", ifaceLabels...),
}

func ifaceValues(c *vswitchd.InterfaceCounters) []uint64 {
	s := &c.Stats
	return []uint64{s.RxPackets, s.RxBytes, s.RxDropped, s.RxErrors, s.TxPackets, s.TxBytes, s.TxDropped, s.TxErrors}
}

var mirrorLabels = []string{"bridge", "mirror"}

// mirrorDescs are the mirror counters, in the order of mirrorValues.
var mirrorDescs = []*prometheus.Desc{
	desc("mirror_tx_packets_total", "Packets the mirror selected and copied.", mirrorLabels...),
	desc("mirror_tx_bytes_total", "Bytes of the packets the mirror copied, as received.", mirrorLabels...),
	desc("mirror_dropped_total", "Mirror copies dropped because the output could not keep up.", mirrorLabels...),
	desc("mirror_truncated_total", "Mirror copies cut to the mirror's snaplen.", mirrorLabels...),
}

func mirrorValues(m *vswitchd.MirrorCounters) []uint64 {
	return []uint64{m.TxPackets, m.TxBytes, m.Dropped, m.Truncated}
}

var (
	flowsDesc     = desc("flow_table_flows", "Flows in one OpenFlow table of a bridge (non-empty tables only).", "bridge", "table")
	flowLimitDesc = desc("flow_table_flows_limit", "The most flows all tables of a bridge may hold together.", "bridge")

	committedDesc = desc("ovsdb_transactions_committed_total", "OVSDB transactions that changed the database.")
	unchangedDesc = desc("ovsdb_transactions_unchanged_total", "OVSDB transactions that succeeded without a change (reads, waits).")
	refusedDesc   = desc("ovsdb_transactions_refused_total", "OVSDB transactions refused, by the error tag of the failed operation.", "reason")

	sessionsDesc = desc("ovsdb_sessions", "OVSDB client connections.")
	monitorsDesc = desc("ovsdb_monitors", "OVSDB monitors of all clients.")
	locksDesc    = desc("ovsdb_locks", "OVSDB lock names with an owner or a waiter.")
	parkedDesc   = desc("ovsdb_parked_transactions", "OVSDB transactions blocked in a wait with a timeout.")

	coverageDesc = desc("coverage_total", "Coverage counters, as ovs-appctl coverage/show shows them.", "name")
	dropsDesc    = desc("drops_total", "Packets dropped, by cause, summed over interfaces and mirrors; coverage counters named after a drop are causes too.", "cause")
)

// Collector is a prometheus.Collector over Sources.
type Collector struct {
	src Sources
}

// NewCollector returns a collector reading src.
func NewCollector(src Sources) *Collector { return &Collector{src: src} }

// Describe sends every metric the collector may produce.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range ifaceDescs {
		ch <- d
	}
	for _, d := range mirrorDescs {
		ch <- d
	}
	for _, d := range []*prometheus.Desc{flowsDesc, flowLimitDesc, committedDesc, unchangedDesc, refusedDesc,
		sessionsDesc, monitorsDesc, locksDesc, parkedDesc, coverageDesc, dropsDesc} {
		ch <- d
	}
	for _, d := range append(slices.Clone(ctDescs), spanDescs...) {
		ch <- d
	}
}

// Collect reads every source once and sends its metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	drops := newSums()
	var cov []coverage.Total
	if c.src.Coverage != nil {
		cov = c.src.Coverage.Totals()
	}
	if c.src.Switch != nil {
		c.collectInterfaces(ch, drops)
		c.collectMirrors(ch, drops)
		c.collectFlows(ch)
	}
	if c.src.Conntrack != nil {
		collectConntrack(ch, c.src.Conntrack.ConntrackCounters())
	}
	if c.src.Spans != nil {
		collectSpans(ch, c.src.Spans.SpanCounters())
	}
	if c.src.Database != nil {
		collectTxns(ch, c.src.Database.TxnStats())
	}
	if c.src.Clients != nil {
		u := c.src.Clients.Clients()
		gauge(ch, sessionsDesc, float64(u.Sessions))
		gauge(ch, monitorsDesc, float64(u.Monitors))
		gauge(ch, locksDesc, float64(u.Locks))
		gauge(ch, parkedDesc, float64(u.Parked))
	}
	covSums := newSums()
	for _, t := range cov {
		covSums.add([]string{t.Name}, []uint64{t.Total})
		if isDropCounter(t.Name) {
			drops.add([]string{t.Name}, []uint64{t.Total})
		}
	}
	covSums.emit(ch, []*prometheus.Desc{coverageDesc})
	drops.emit(ch, []*prometheus.Desc{dropsDesc})
}

// The drop causes the interface and mirror counters add up to.
const (
	causeRxDropped  = "interface_rx_dropped"
	causeRxErrors   = "interface_rx_errors"
	causeTxDropped  = "interface_tx_dropped"
	causeTxErrors   = "interface_tx_errors"
	causeMirrorFull = "mirror_output_full"
)

func (c *Collector) collectInterfaces(ch chan<- prometheus.Metric, drops *sums) {
	ifaces := newSums()
	// The causes are always present, at zero if nothing dropped, so
	// that a rate over them starts from the first scrape.
	for _, cause := range []string{causeRxDropped, causeRxErrors, causeTxDropped, causeTxErrors, causeMirrorFull} {
		drops.add([]string{cause}, []uint64{0})
	}
	for _, ic := range c.src.Switch.InterfaceCounters() {
		ifaces.add([]string{ic.Bridge, ic.Port, ic.Interface}, ifaceValues(&ic))
		s := &ic.Stats
		drops.add([]string{causeRxDropped}, []uint64{s.RxDropped})
		drops.add([]string{causeRxErrors}, []uint64{s.RxErrors})
		drops.add([]string{causeTxDropped}, []uint64{s.TxDropped})
		drops.add([]string{causeTxErrors}, []uint64{s.TxErrors})
	}
	ifaces.emit(ch, ifaceDescs)
}

func (c *Collector) collectMirrors(ch chan<- prometheus.Metric, drops *sums) {
	mirrors := newSums()
	for _, m := range c.src.Switch.MirrorCounters() {
		mirrors.add([]string{m.Bridge, m.Mirror}, mirrorValues(&m))
		drops.add([]string{causeMirrorFull}, []uint64{m.Dropped})
	}
	mirrors.emit(ch, mirrorDescs)
}

func (c *Collector) collectFlows(ch chan<- prometheus.Metric) {
	for _, b := range c.src.Switch.FlowCounts() {
		for _, t := range b.Tables {
			gauge(ch, flowsDesc, float64(t.Flows), b.Bridge, strconv.Itoa(int(t.Table)))
		}
		gauge(ch, flowLimitDesc, float64(b.MaxFlows), b.Bridge)
	}
}

func collectTxns(ch chan<- prometheus.Metric, s ovsdb.TxnStats) {
	counter(ch, committedDesc, s.Committed)
	counter(ch, unchangedDesc, s.Unchanged)
	for _, r := range ovsdb.RefusalReasons() {
		counter(ch, refusedDesc, s.Refused[r], r)
	}
}

// isDropCounter says whether a coverage counter counts dropped packets,
// by the naming convention (`..._drop`, `drop_...`, `..._dropped`).
func isDropCounter(name string) bool {
	for _, w := range strings.Split(name, "_") {
		if w == "drop" || w == "dropped" || w == "drops" {
			return true
		}
	}
	return false
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v uint64, labels ...string) {
	send(ch, d, prometheus.CounterValue, float64(v), labels)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	send(ch, d, prometheus.GaugeValue, v, labels)
}

// send sends one metric, or an invalid one that names the problem (a
// label that is not UTF-8, say): the scrape reports it, the rest goes on.
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels []string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

// sums adds up counters by label values, in first-seen order: two
// mirrors of one bridge may share a name (the schema allows it), and one
// series per label set is what Prometheus accepts.
type sums struct {
	order  [][]string
	values map[string][]uint64
}

func newSums() *sums { return &sums{values: map[string][]uint64{}} }

func (s *sums) add(labels []string, vals []uint64) {
	key := strings.Join(labels, "\x00")
	have, ok := s.values[key]
	if !ok {
		s.order = append(s.order, labels)
		s.values[key] = append([]uint64(nil), vals...)
		return
	}
	for i, v := range vals {
		have[i] += v
	}
}

// emit sends one counter per desc (the i-th value to the i-th desc) for
// every label set.
func (s *sums) emit(ch chan<- prometheus.Metric, descs []*prometheus.Desc) {
	for _, labels := range s.order {
		vals := s.values[strings.Join(labels, "\x00")]
		for i, d := range descs {
			counter(ch, d, vals[i], labels...)
		}
	}
}
