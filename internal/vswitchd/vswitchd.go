package vswitchd

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
	"gvs/internal/vlog"
)

var (
	vswitchdLog = vlog.New("bridge")
	// statusRL limits the messages of a status write-back that fails
	// every second (a database that refuses writes).
	statusRL = vlog.NewRateLimit(5, time.Minute)
	// openFailRL: interfaces that cannot be set up, tried again at every
	// reconfiguration.
	openFailRL = vlog.NewRateLimit(20, time.Minute)

	ifaceOpenError   = coverage.New("bridge_iface_open_error") // shown in Interface.error
	mirrorBadFilter  = coverage.New("bridge_mirror_bad_filter")
	statusWriteError = coverage.New("bridge_status_write_error")
	// bridgePanics counts reconfigurations, statistics refreshes and interface
	// openings cut short by a bug; the switch goes on with the next one.
	bridgePanics = coverage.New("bridge_panic")
)

// Version is what gvsd reports as the Open vSwitch version it stands in
// for; OVS clients compare it to decide which features to use.
const Version = "3.1.0"

// Switch watches the Open_vSwitch database and applies each committed
// configuration, then acknowledges it by raising cur_cfg to next_cfg so
// that ovs-vsctl (without --no-wait) returns once the change is in effect.
type Switch struct {
	db      Database
	remote  remoteDatabase // db, when another server serves it; else nil
	checks  *remoteChecks  // the row checks a remote server cannot run
	changed chan struct{}
	state   *datapathState
	// ctlStatus is poked when a controller connects or disconnects.
	ctlStatus chan struct{}

	exitCleanup atomic.Bool // see SetExitCleanup

	needInit    atomic.Bool   // the remote database needs Init (again)
	applied     chan struct{} // closed once the first configuration is in effect
	appliedOnce sync.Once
}

// Database is where the switch reads its configuration and writes its
// status: gvsd's own *ovsdb.DB, or a replica of a database that another
// OVSDB server serves (idl.Replica), which also satisfies remoteDatabase.
type Database interface {
	Schema() *ovsdb.Schema
	Rows(table string) []*ovsdb.Row
	Snapshot(tables ...string) *ovsdb.Snapshot
	Transact(ops []any) []any
	OnCommit(fn func(*ovsdb.Commit))
}

// remoteDatabase is a Database served by another server. Its contents
// are current, and writes can succeed, only while it is Writable
// (connected, loaded, holding the ovs_vswitchd lock); until then the
// switch applies nothing, as ovs-vswitchd waits for its lock.
type remoteDatabase interface {
	Writable() bool
}

// rowChecks are the checks of values the database's types cannot express.
var rowChecks = []struct {
	table string
	check ovsdb.RowCheck
}{
	{"Mirror", checkMirror},
	{"Bridge", checkBridge},
	{"Interface", checkInterface},
	{"Port", checkPort},
	{"Open_vSwitch", checkOpenvSwitch},
}

// New returns a switch for db, which must have the Open_vSwitch schema.
// gvsd's own database refuses a transaction that fails a row check; a
// remote server cannot be asked to, so with one the switch checks the
// rows it applies and reports what fails (see remoteChecks).
func New(db Database) *Switch {
	sw := &Switch{db: db, changed: make(chan struct{}, 1), state: newDatapathState(), applied: make(chan struct{}),
		ctlStatus: make(chan struct{}, 1)}
	sw.state.onControllerStatus = func() {
		select {
		case sw.ctlStatus <- struct{}{}:
		default:
		}
	}
	db.OnCommit(func(c *ovsdb.Commit) {
		if touchesConfig(c) {
			sw.poke()
		}
	})
	if local, ok := db.(*ovsdb.DB); ok {
		for _, rc := range rowChecks {
			local.AddCheck(rc.table, rc.check)
		}
		// Span is gvs's own table: only gvsd's own database has it.
		local.AddCheck("Span", sw.state.spanCheck())
		local.AddTableCheck("Span", checkSpanLoops)
	}
	if remote, ok := db.(remoteDatabase); ok {
		sw.remote = remote
		sw.checks = newRemoteChecks()
		sw.needInit.Store(true)
	}
	sw.state.spanChanged = sw.poke
	return sw
}

// Reconfigure asks Run to apply the database again, as after a commit:
// for a remote database that has just been loaded again or whose lock was
// just granted. The root row is described again too, in case the server
// was given another database meanwhile.
func (sw *Switch) Reconfigure() {
	if sw.remote != nil {
		sw.needInit.Store(true)
	}
	sw.poke()
}

// writable reports whether the switch may apply the database and write
// to it now.
func (sw *Switch) writable() bool { return sw.remote == nil || sw.remote.Writable() }

// configTables are the tables the switch reads its configuration from.
var configTables = []string{"Open_vSwitch", "Bridge", "Port", "Interface", "Mirror", "Controller", "Span",
	"Datapath", "CT_Zone", "CT_Timeout_Policy"}

// touchesConfig reports whether a commit changed a table the switch reads,
// so that unrelated writes (Manager, QoS, ...) cost it nothing; nor do
// its own statistics writes, every stats-update-interval, which change
// nothing it reads (applying them would make every cached flow stale,
// and move every flow of the kernel fast path back through gvsd).
func touchesConfig(c *ovsdb.Commit) bool {
	for _, ch := range c.Changes {
		for _, t := range configTables {
			if ch.Table.Name == t && !statisticsOnly(ch) {
				return true
			}
		}
	}
	return false
}

// statisticsOnly reports whether ch updated a row's statistics column
// and nothing else.
func statisticsOnly(ch ovsdb.Change) bool {
	if ch.Old == nil || ch.New == nil {
		return false
	}
	stats, ok := ch.Table.ByName["statistics"]
	if !ok {
		return false
	}
	for _, col := range ch.Table.Columns {
		if col == stats || col.Name == "_version" {
			continue
		}
		a, _ := ch.Old.Get(ch.Table, col.Name)
		b, _ := ch.New.Get(ch.Table, col.Name)
		if !a.Equal(b) {
			return false
		}
	}
	return true
}

func (sw *Switch) poke() {
	select {
	case sw.changed <- struct{}{}:
	default:
	}
}

// Init makes sure the root Open_vSwitch row exists and describes this
// daemon, as ovs-vswitchd does when it starts.
func (sw *Switch) Init() error {
	iftypes := append(netdev.Types(), "patch")
	rows := sw.db.Rows("Open_vSwitch")
	ops := []any{}
	row := map[string]any{
		"ovs_version":    Version,
		"db_version":     sw.db.Schema().Version,
		"datapath_types": set("netdev", "system"),
		"iface_types":    set(iftypes...),
	}
	if len(rows) == 0 {
		ops = append(ops, map[string]any{"op": "insert", "table": "Open_vSwitch", "row": row})
	} else {
		ops = append(ops, map[string]any{"op": "update", "table": "Open_vSwitch", "where": []any{}, "row": row})
	}
	return checkResults(sw.db.Transact(ops))
}

func set(items ...string) []any {
	elems := make([]any, len(items))
	for i, s := range items {
		elems[i] = s
	}
	return []any{"set", elems}
}

// checkResults turns a failed transaction's result array into an error.
func checkResults(results []any) error {
	for _, r := range results {
		if m, ok := r.(map[string]any); ok && m["error"] != nil {
			return fmt.Errorf("database: %v: %v", m["error"], m["details"])
		}
	}
	return nil
}

// SetCaptureDir sets gvsd's capture directory, the only place where pcap
// ports may write (see netdev.PrepareCaptureDir). Call it before Run;
// without it, pcap ports are refused.
func (sw *Switch) SetCaptureDir(dir string) {
	sw.state.mu.Lock()
	sw.state.captureDir = dir
	sw.state.mu.Unlock()
	sw.state.spanCaptureDir.Store(&dir)
}

// SetExitCleanup says what the coming exit does to internal ports: with
// cleanup (`ovs-appctl exit --cleanup`) they are deleted; without (SIGTERM,
// `ovs-appctl exit`) they stay, with their namespace and addresses, for
// the next gvsd to re-attach, as OVS leaves them.
func (sw *Switch) SetExitCleanup(cleanup bool) { sw.exitCleanup.Store(cleanup) }

// Run applies configurations, and refreshes statistics, until ctx ends.
func (sw *Switch) Run(ctx context.Context) {
	sw.poke()
	interval := defaultStatsInterval
	stats := time.NewTimer(interval)
	defer stats.Stop()
	for {
		select {
		case <-ctx.Done():
			sw.state.close(sw.exitCleanup.Load())
			return
		case <-sw.changed:
			guard.Call(vswitchdLog, bridgePanics, "reconfiguring", sw.reconcile)
			if i := sw.statsInterval(); i != interval {
				interval = i
				stats.Reset(interval)
			}
		case <-stats.C:
			guard.Call(vswitchdLog, bridgePanics, "refreshing statistics", sw.refreshStats)
			guard.Call(vswitchdLog, bridgePanics, "writing controller status", sw.writeControllerStatus)
			stats.Reset(interval)
		case <-sw.ctlStatus:
			guard.Call(vswitchdLog, bridgePanics, "writing controller status", sw.writeControllerStatus)
		}
	}
}

// defaultStatsInterval is OVS's default other_config:stats-update-interval.
const defaultStatsInterval = 5 * time.Second

// minStatsInterval is the shortest refresh gvs accepts. OVS refuses less
// than 5 s; gvs allows 1 s so that operators (and tests) see counters move
// sooner. See docs/COMPATIBILITY.md.
const minStatsInterval = time.Second

// maxStatsIntervalMs is the longest refresh: OVS reads the setting as a
// C int of milliseconds (about 24 days).
const maxStatsIntervalMs = 1<<31 - 1

// statsInterval reads other_config:stats-update-interval (milliseconds).
func (sw *Switch) statsInterval() time.Duration {
	for _, r := range sw.db.Rows("Open_vSwitch") {
		oc := r.Column(sw.db.Schema().Tables["Open_vSwitch"], "other_config").StringMap()
		if ms, err := strconv.ParseInt(oc["stats-update-interval"], 10, 64); err == nil {
			// Bounded before the conversion, which would overflow.
			return time.Duration(min(max(ms, minStatsInterval.Milliseconds()), maxStatsIntervalMs)) * time.Millisecond
		}
	}
	return defaultStatsInterval
}

func (sw *Switch) refreshStats() {
	if !sw.writable() {
		return
	}
	snap := sw.db.Snapshot(configTables...)
	if ops, fifos := staleCaptureOps(snap); len(ops) > 0 {
		if err := checkResults(sw.db.Transact(ops)); err != nil {
			vswitchdLog.WarnRL(statusRL, "cannot remove a stale capture mirror: %v", err)
		} else {
			sw.removeStaleFIFOs(fifos)
		}
	}
	if ops := sw.state.statsOps(snap); len(ops) > 0 {
		if err := checkResults(sw.db.Transact(ops)); err != nil {
			statusWriteError.Inc()
			vswitchdLog.WarnRL(statusRL, "cannot write interface statistics: %v", err)
		}
	}
	// The status a reconfiguration writes (link_state and the like)
	// too: a statistics write no longer brings one about.
	if ops := sw.state.statusOps(sw.db.Snapshot(configTables...)); len(ops) > 0 {
		if err := checkResults(sw.db.Transact(ops)); err != nil {
			statusWriteError.Inc()
			vswitchdLog.WarnRL(statusRL, "cannot write back interface status: %v", err)
		}
	}
}

func (sw *Switch) reconcile() {
	if !sw.writable() {
		return
	}
	if sw.needInit.Swap(false) {
		// ovs-vswitchd describes itself in the root row once it holds
		// the lock; gvsd's own database gets that from Init at startup.
		if err := sw.Init(); err != nil {
			sw.needInit.Store(true)
			vswitchdLog.ErrRL(statusRL, "cannot write the Open_vSwitch row: %v", err)
			return
		}
	}
	snap := sw.db.Snapshot(configTables...)
	if sw.checks != nil {
		sw.state.setViolations(sw.checks.run(snap))
	}
	sw.state.apply(snap)
	sw.acknowledge(snap)
	sw.writeControllerStatus()
	sw.appliedOnce.Do(func() { close(sw.applied) })
}

// Applied is closed once Run has applied the database's configuration
// for the first time: the moment ovs-vswitchd --detach lets its caller go.
func (sw *Switch) Applied() <-chan struct{} { return sw.applied }

// acknowledge raises cur_cfg to the next_cfg that the applied snapshot
// asked for.
func (sw *Switch) acknowledge(snap *ovsdb.Snapshot) {
	if ops := sw.state.statusOps(snap); len(ops) > 0 {
		if err := checkResults(sw.db.Transact(ops)); err != nil {
			statusWriteError.Inc()
			vswitchdLog.ErrRL(statusRL, "cannot write back interface status: %v", err)
		}
	}
	for u := range snap.Tables["Open_vSwitch"] {
		next, _ := snap.Get("Open_vSwitch", u, "next_cfg")
		cur, _ := snap.Get("Open_vSwitch", u, "cur_cfg")
		n, _ := next.Int()
		c, _ := cur.Int()
		if n == c {
			continue
		}
		err := checkResults(sw.db.Transact([]any{map[string]any{
			"op": "update", "table": "Open_vSwitch",
			"where": []any{[]any{"_uuid", "==", []any{"uuid", u.String()}}},
			"row":   map[string]any{"cur_cfg": n},
		}}))
		if err != nil {
			statusWriteError.Inc()
			vswitchdLog.ErrRL(statusRL, "cannot acknowledge configuration %d: %v", n, err)
		}
	}
}
