package metrics

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"gvs/internal/coverage"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
	"gvs/internal/vswitchd"
)

// fakeSwitch, fakeDB and fakeClients stand in for the daemon's sources.
type fakeSwitch struct {
	ifaces  []vswitchd.InterfaceCounters
	mirrors []vswitchd.MirrorCounters
	flows   []vswitchd.BridgeFlows
}

func (f *fakeSwitch) InterfaceCounters() []vswitchd.InterfaceCounters { return f.ifaces }
func (f *fakeSwitch) MirrorCounters() []vswitchd.MirrorCounters       { return f.mirrors }
func (f *fakeSwitch) FlowCounts() []vswitchd.BridgeFlows              { return f.flows }

type fakeDB struct{ s ovsdb.TxnStats }

func (f fakeDB) TxnStats() ovsdb.TxnStats { return f.s }

type fakeClients struct{ c ovsdb.ClientStats }

func (f fakeClients) Clients() ovsdb.ClientStats { return f.c }

func testSources() Sources {
	sw := &fakeSwitch{
		ifaces: []vswitchd.InterfaceCounters{
			{Bridge: "br0", Port: "p1", Interface: "p1", Stats: netdev.Stats{RxPackets: 10, RxBytes: 1000, RxDropped: 1, TxPackets: 20, TxBytes: 2000, TxDropped: 2, TxErrors: 3}},
			{Bridge: "br0", Port: "bond0", Interface: "eth1", Stats: netdev.Stats{RxPackets: 5, RxBytes: 500, RxErrors: 4}},
		},
		mirrors: []vswitchd.MirrorCounters{
			{Bridge: "br0", Mirror: "span", TxPackets: 7, TxBytes: 700, Dropped: 1, Truncated: 2},
			{Bridge: "br0", Mirror: "span", TxPackets: 1, TxBytes: 100}, // same name: summed
		},
		flows: []vswitchd.BridgeFlows{{Bridge: "br0", Tables: []ofproto.TableCount{{Table: 0, Flows: 3}, {Table: 7, Flows: 1}}, MaxFlows: 1000}},
	}
	refused := map[string]uint64{}
	for _, r := range ovsdb.RefusalReasons() {
		refused[r] = 0
	}
	refused["constraint violation"] = 2
	refused["I/O error"] = 1
	cov := coverage.NewRegistry()
	cov.New("bridge_panic")
	cov.New("ofconn_refused").Add(3)
	cov.New("datapath_queue_drop").Add(5)
	return Sources{
		Switch:   sw,
		Database: fakeDB{ovsdb.TxnStats{Committed: 4, Unchanged: 6, Refused: refused}},
		Clients:  fakeClients{ovsdb.ClientStats{Sessions: 2, Monitors: 3, Locks: 1, Parked: 0}},
		Coverage: cov,
	}
}

// TestCollectorExposition compares the collector's exposition, for fake
// sources, with the expected text, and lints it.
func TestCollectorExposition(t *testing.T) {
	c := NewCollector(testSources())
	want := `
# HELP gvs_coverage_total Coverage counters, as ovs-appctl coverage/show shows them.
# TYPE gvs_coverage_total counter
gvs_coverage_total{name="bridge_panic"} 0
gvs_coverage_total{name="datapath_queue_drop"} 5
gvs_coverage_total{name="ofconn_refused"} 3
# HELP gvs_drops_total Packets dropped, by cause, summed over interfaces and mirrors; coverage counters named after a drop are causes too.
# TYPE gvs_drops_total counter
gvs_drops_total{cause="datapath_queue_drop"} 5
gvs_drops_total{cause="interface_rx_dropped"} 1
gvs_drops_total{cause="interface_rx_errors"} 4
gvs_drops_total{cause="interface_tx_dropped"} 2
gvs_drops_total{cause="interface_tx_errors"} 3
gvs_drops_total{cause="mirror_output_full"} 1
# HELP gvs_flow_table_flows Flows in one OpenFlow table of a bridge (non-empty tables only).
# TYPE gvs_flow_table_flows gauge
gvs_flow_table_flows{bridge="br0",table="0"} 3
gvs_flow_table_flows{bridge="br0",table="7"} 1
# HELP gvs_flow_table_flows_limit The most flows all tables of a bridge may hold together.
# TYPE gvs_flow_table_flows_limit gauge
gvs_flow_table_flows_limit{bridge="br0"} 1000
# HELP gvs_interface_rx_bytes_total Bytes received on the interface.
# TYPE gvs_interface_rx_bytes_total counter
gvs_interface_rx_bytes_total{bridge="br0",interface="eth1",port="bond0"} 500
gvs_interface_rx_bytes_total{bridge="br0",interface="p1",port="p1"} 1000
# HELP gvs_interface_rx_dropped_total Received packets dropped by the interface.
# TYPE gvs_interface_rx_dropped_total counter
gvs_interface_rx_dropped_total{bridge="br0",interface="eth1",port="bond0"} 0
gvs_interface_rx_dropped_total{bridge="br0",interface="p1",port="p1"} 1
# HELP gvs_interface_rx_errors_total Receive errors on the interface.
# TYPE gvs_interface_rx_errors_total counter
gvs_interface_rx_errors_total{bridge="br0",interface="eth1",port="bond0"} 4
gvs_interface_rx_errors_total{bridge="br0",interface="p1",port="p1"} 0
# HELP gvs_interface_rx_packets_total Packets received on the interface.
# TYPE gvs_interface_rx_packets_total counter
gvs_interface_rx_packets_total{bridge="br0",interface="eth1",port="bond0"} 5
gvs_interface_rx_packets_total{bridge="br0",interface="p1",port="p1"} 10
# HELP gvs_interface_tx_bytes_total Bytes sent on the interface.
# TYPE gvs_interface_tx_bytes_total counter
gvs_interface_tx_bytes_total{bridge="br0",interface="eth1",port="bond0"} 0
gvs_interface_tx_bytes_total{bridge="br0",interface="p1",port="p1"} 2000
# HELP gvs_interface_tx_dropped_total Packets to send that the interface dropped.
# TYPE gvs_interface_tx_dropped_total counter
gvs_interface_tx_dropped_total{bridge="br0",interface="eth1",port="bond0"} 0
gvs_interface_tx_dropped_total{bridge="br0",interface="p1",port="p1"} 2
# HELP gvs_interface_tx_errors_total Send errors on the interface.
# TYPE gvs_interface_tx_errors_total counter
gvs_interface_tx_errors_total{bridge="br0",interface="eth1",port="bond0"} 0
gvs_interface_tx_errors_total{bridge="br0",interface="p1",port="p1"} 3
# HELP gvs_interface_tx_packets_total Packets sent on the interface.
# TYPE gvs_interface_tx_packets_total counter
gvs_interface_tx_packets_total{bridge="br0",interface="eth1",port="bond0"} 0
gvs_interface_tx_packets_total{bridge="br0",interface="p1",port="p1"} 20
# HELP gvs_mirror_dropped_total Mirror copies dropped because the output could not keep up.
# TYPE gvs_mirror_dropped_total counter
gvs_mirror_dropped_total{bridge="br0",mirror="span"} 1
# HELP gvs_mirror_truncated_total Mirror copies cut to the mirror's snaplen.
# TYPE gvs_mirror_truncated_total counter
gvs_mirror_truncated_total{bridge="br0",mirror="span"} 2
# HELP gvs_mirror_tx_bytes_total Bytes of the packets the mirror copied, as received.
# TYPE gvs_mirror_tx_bytes_total counter
gvs_mirror_tx_bytes_total{bridge="br0",mirror="span"} 800
# HELP gvs_mirror_tx_packets_total Packets the mirror selected and copied.
# TYPE gvs_mirror_tx_packets_total counter
gvs_mirror_tx_packets_total{bridge="br0",mirror="span"} 8
# HELP gvs_ovsdb_locks OVSDB lock names with an owner or a waiter.
# TYPE gvs_ovsdb_locks gauge
gvs_ovsdb_locks 1
# HELP gvs_ovsdb_monitors OVSDB monitors of all clients.
# TYPE gvs_ovsdb_monitors gauge
gvs_ovsdb_monitors 3
# HELP gvs_ovsdb_parked_transactions OVSDB transactions blocked in a wait with a timeout.
# TYPE gvs_ovsdb_parked_transactions gauge
gvs_ovsdb_parked_transactions 0
# HELP gvs_ovsdb_sessions OVSDB client connections.
# TYPE gvs_ovsdb_sessions gauge
gvs_ovsdb_sessions 2
# HELP gvs_ovsdb_transactions_committed_total OVSDB transactions that changed the database.
# TYPE gvs_ovsdb_transactions_committed_total counter
gvs_ovsdb_transactions_committed_total 4
# HELP gvs_ovsdb_transactions_unchanged_total OVSDB transactions that succeeded without a change (reads, waits).
# TYPE gvs_ovsdb_transactions_unchanged_total counter
gvs_ovsdb_transactions_unchanged_total 6
`
	// The refusal reasons are many; they are checked on their own below.
	names := []string{"gvs_coverage_total", "gvs_drops_total", "gvs_flow_table_flows", "gvs_flow_table_flows_limit",
		"gvs_interface_rx_bytes_total", "gvs_interface_rx_dropped_total", "gvs_interface_rx_errors_total",
		"gvs_interface_rx_packets_total", "gvs_interface_tx_bytes_total", "gvs_interface_tx_dropped_total",
		"gvs_interface_tx_errors_total", "gvs_interface_tx_packets_total", "gvs_mirror_dropped_total",
		"gvs_mirror_truncated_total", "gvs_mirror_tx_bytes_total", "gvs_mirror_tx_packets_total",
		"gvs_ovsdb_locks", "gvs_ovsdb_monitors", "gvs_ovsdb_parked_transactions", "gvs_ovsdb_sessions",
		"gvs_ovsdb_transactions_committed_total", "gvs_ovsdb_transactions_unchanged_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	refused := `
# HELP gvs_ovsdb_transactions_refused_total OVSDB transactions refused, by the error tag of the failed operation.
# TYPE gvs_ovsdb_transactions_refused_total counter
`
	for _, r := range ovsdb.RefusalReasons() {
		n := map[string]int{"constraint violation": 2, "I/O error": 1}[r]
		refused += fmt.Sprintf("gvs_ovsdb_transactions_refused_total{reason=%q} %d\n", r, n)
	}
	if err := testutil.CollectAndCompare(c, strings.NewReader(refused), "gvs_ovsdb_transactions_refused_total"); err != nil {
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

// TestCollectorLeavesOutMissingSources: a gvsd without its own database
// exports the switch's counters only, and nothing fails.
func TestCollectorLeavesOutMissingSources(t *testing.T) {
	src := testSources()
	src.Database, src.Clients = nil, nil
	n := testutil.CollectAndCount(NewCollector(src), "gvs_ovsdb_sessions", "gvs_ovsdb_transactions_committed_total")
	if n != 0 {
		t.Errorf("%d OVSDB series without a database, want 0", n)
	}
	if n := testutil.CollectAndCount(NewCollector(src), "gvs_interface_rx_packets_total"); n != 2 {
		t.Errorf("%d interface series, want 2", n)
	}
}

// TestCardinalityBounded: the number of series depends on the
// configuration (interfaces, mirrors, non-empty tables) and on the
// program (coverage counters, causes, reasons), never on traffic: a
// switch that forwarded many packets, held many flows and refused
// transactions for many different reasons exports exactly as many series
// as its configuration implies.
func TestCardinalityBounded(t *testing.T) {
	const bridges, portsPerBridge, mirrorsPerBridge, covCounters = 3, 20, 2, 30
	sw := &fakeSwitch{}
	for b := range bridges {
		br := fmt.Sprintf("br%d", b)
		for p := range portsPerBridge {
			name := fmt.Sprintf("%s-p%d", br, p)
			sw.ifaces = append(sw.ifaces, vswitchd.InterfaceCounters{Bridge: br, Port: name, Interface: name,
				Stats: netdev.Stats{RxPackets: 1 << 40, RxBytes: 1 << 50, RxDropped: 12345}})
		}
		for m := range mirrorsPerBridge {
			sw.mirrors = append(sw.mirrors, vswitchd.MirrorCounters{Bridge: br, Mirror: fmt.Sprintf("m%d", m), TxPackets: 1 << 40})
		}
		// A million flows in one table are one series.
		sw.flows = append(sw.flows, vswitchd.BridgeFlows{Bridge: br, Tables: []ofproto.TableCount{{Table: 0, Flows: 1_000_000}}, MaxFlows: 1_000_000})
	}
	cov := coverage.NewRegistry()
	for i := range covCounters {
		cov.New(fmt.Sprintf("event_%d", i)).Add(uint64(i) * 1000)
	}
	// Refusals under tags no reason lists all count as "other".
	var db ovsdb.TxnStats
	db.Refused = map[string]uint64{}
	for _, r := range ovsdb.RefusalReasons() {
		db.Refused[r] = 1000
	}
	src := Sources{Switch: sw, Database: fakeDB{db}, Clients: fakeClients{ovsdb.ClientStats{Sessions: 1000}}, Coverage: cov}

	got := testutil.CollectAndCount(NewCollector(src))
	ifaceSeries := bridges * portsPerBridge * len(ifaceDescs)
	mirrorSeries := bridges * mirrorsPerBridge * len(mirrorDescs)
	flowSeries := bridges * 2 // one table, and the limit
	ovsdbSeries := 2 + len(ovsdb.RefusalReasons()) + 4
	dropSeries := 5 // interface and mirror causes; no coverage counter here is a drop
	want := ifaceSeries + mirrorSeries + flowSeries + ovsdbSeries + covCounters + dropSeries
	if got != want {
		t.Errorf("%d series, want %d from the configuration alone", got, want)
	}
	for _, name := range []string{"gvs_ovsdb_transactions_refused_total", "gvs_drops_total"} {
		if n := testutil.CollectAndCount(NewCollector(src), name); n > len(ovsdb.RefusalReasons())+dropSeries {
			t.Errorf("%s has %d series", name, n)
		}
	}
}

// TestInvalidLabelDoesNotPanic: a name that is not UTF-8 (the database
// refuses them, but the collector must not trust that) makes one invalid
// metric, reported by the scrape, and the other series still come out.
func TestInvalidLabelDoesNotPanic(t *testing.T) {
	sw := &fakeSwitch{ifaces: []vswitchd.InterfaceCounters{{Bridge: "br0", Port: "\xff", Interface: "\xff"}, {Bridge: "br0", Port: "ok", Interface: "ok"}}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(Sources{Switch: sw}))
	mfs, err := reg.Gather()
	if err == nil {
		t.Error("no error for a label that is not UTF-8")
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() == "gvs_interface_rx_packets_total" {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					found = found || (l.GetName() == "interface" && l.GetValue() == "ok")
				}
			}
		}
	}
	if !found {
		t.Error("the valid interface's series is missing")
	}
}

func TestIsDropCounter(t *testing.T) {
	for name, want := range map[string]bool{"datapath_queue_drop": true, "drop_bad_vlan": true, "mirror_dropped": true,
		"bridge_panic": false, "ofconn_refused": false, "dropout": false, "backdrop_x": false} {
		if got := isDropCounter(name); got != want {
			t.Errorf("isDropCounter(%q) = %v, want %v", name, got, want)
		}
	}
}
