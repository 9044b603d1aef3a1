package vswitchd

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
)

// Numbers from the database that size memory are checked twice: when a
// transaction writes them, so that the client is told (a constraint
// violation naming the key and its range), and where they are used,
// clamped, so that a database written before the check (or by another
// program) still starts. A check runs only when the value changes, so an
// old bad value does not block unrelated changes to its row.

const (
	// mac-table-size: the man page asks for at least 1; OVS then
	// forces the value into 10 .. 1,000,000, and so does gvs.
	defaultMACTableSize = 8192
	minMACTableSize     = 10
	// mac-aging-time: OVS forces it into 15 .. 3600 seconds.
	defaultMACAging = 300
	minMACAging     = 15
	maxMACAging     = 3600
)

// macTableSize reads Bridge other_config:mac-table-size.
func macTableSize(oc map[string]string) int {
	return clampedInt(oc["mac-table-size"], defaultMACTableSize, minMACTableSize, ofproto.MaxMACTableSize)
}

// macAgingTime reads Bridge other_config:mac-aging-time.
func macAgingTime(oc map[string]string) int {
	return clampedInt(oc["mac-aging-time"], defaultMACAging, minMACAging, maxMACAging)
}

// clampedInt parses s as an integer forced into lo .. hi; def when s is
// not a positive integer.
func clampedInt(s string, def, lo, hi int) int {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return def
	}
	return int(min(max(n, int64(lo)), int64(hi)))
}

// checkBridge refuses a Bridge row whose other_config:mac-table-size is
// not an integer from 1 to ofproto.MaxMACTableSize.
func checkBridge(t *ovsdb.Table, old, new *ovsdb.Row) error {
	if old == nil { // the name is immutable
		name, _ := new.Column(t, "name").Str()
		if err := checkBridgeName(name); err != nil {
			return err
		}
	}
	if err := checkSetSize(t, old, new, "controller", MaxControllers); err != nil {
		return err
	}
	if err := checkSetSize(t, old, new, "mirrors", MaxMirrors); err != nil {
		return err
	}
	return checkIntKey(t, old, new, "other_config", "mac-table-size", 1, ofproto.MaxMACTableSize)
}

// Counts of rows gvsd sets up for one row of the database, each with a
// cost beyond the row itself: a bridge has an OpenFlow socket, tables
// and a port; a controller a connection or a listening socket; a mirror
// is looked at for every new flow of packets. A transaction that grows a
// set past its limit fails; a database that holds more (written by
// another program) is applied up to the limit, and the remote checks log
// it.
const (
	MaxBridges     = 1024 // per Open_vSwitch row
	MaxControllers = 64   // per bridge
	MaxMirrors     = 32   // per bridge, as OVS
)

// checkSetSize refuses a set column that a change makes longer than max.
// A set that was that long already may stay (or shrink).
func checkSetSize(t *ovsdb.Table, old, new *ovsdb.Row, column string, max int) error {
	n := len(new.Column(t, column).Keys)
	if n <= max {
		return nil
	}
	if old != nil && n <= len(old.Column(t, column).Keys) {
		return nil
	}
	return fmt.Errorf("%s: %d rows, at most %d", column, n, max)
}

// checkBridgeName refuses a bridge name that could not name a file in
// the run directory: the bridge's OpenFlow socket is <rundir>/NAME.mgmt,
// created by gvsd as root.
func checkBridgeName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("bridge name %q: must not be empty or contain \"/\" or a NUL byte", name)
	}
	return nil
}

// checkOpenvSwitch refuses an other_config:flow-limit out of range, the
// number of flows each port thread's cache holds, and a datapath type
// gvs does not have.
func checkOpenvSwitch(t *ovsdb.Table, old, new *ovsdb.Row) error {
	if err := checkDatapaths(t, old, new); err != nil {
		return err
	}
	if err := checkSetSize(t, old, new, "bridges", MaxBridges); err != nil {
		return err
	}
	if err := checkIntKey(t, old, new, "other_config", "flow-limit", 0, datapath.MaxFlowLimit); err != nil {
		return err
	}
	if err := checkHWOffload(t, old, new); err != nil {
		return err
	}
	return checkIntKey(t, old, new, "other_config", busyPollKey, 0, maxBusyPollUS)
}

// checkHWOffload refuses an other_config:hw-offload that is neither true
// nor false, and turning it on where the kernel refuses the fast path's
// program, with the kernel's reason: OVS would only log it.
func checkHWOffload(t *ovsdb.Table, old, new *ovsdb.Row) error {
	s, ok := new.Column(t, "other_config").StringMap()[hwOffloadKey]
	if !ok {
		return nil
	}
	if old != nil {
		if was, ok := old.Column(t, "other_config").StringMap()[hwOffloadKey]; ok && was == s {
			return nil
		}
	}
	on, err := parseHWOffload(s)
	if err != nil {
		return err
	}
	if on {
		if err := datapath.CheckOffload(); err != nil {
			return fmt.Errorf("other_config:%s=true: %v", hwOffloadKey, err)
		}
	}
	return nil
}

// hwOffloadKey turns the kernel fast path on (datapath.SetOffload), as
// it turns on OVS's flow offload to tc.
const hwOffloadKey = "hw-offload"

func parseHWOffload(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true":
		return true, nil
	case "false", "":
		return false, nil
	}
	return false, fmt.Errorf("other_config:%s=%s: must be true or false", hwOffloadKey, quoteShort(s))
}

// busyPollKey is the Open_vSwitch table's other_config key for the time
// (µs) a port thread spins on an idle system port before it sleeps. OVS
// has no such key (its userspace datapath's threads either poll always,
// as PMDs, or sleep); the gvs- prefix keeps it from meeting a future one.
const busyPollKey = "gvs-busy-poll-us"

// maxBusyPollUS is netdev.MaxBusyPoll in the key's unit.
const maxBusyPollUS = int64(netdev.MaxBusyPoll / time.Microsecond)

// checkInterface refuses a memory Interface whose options:depth is out
// of range, and an other_config:lacp-port-id, lacp-port-priority or
// lacp-aggregation-key out of ovs-vswitchd.conf.db(5)'s range (OVS takes
// its default instead).
func checkInterface(t *ovsdb.Table, old, new *ovsdb.Row) error {
	for _, k := range []string{"lacp-port-id", "lacp-port-priority", "lacp-aggregation-key"} {
		if err := checkIntKey(t, old, new, "other_config", k, 1, 65535); err != nil {
			return err
		}
	}
	typ, _ := new.Column(t, "type").Str()
	if typ != "memory" {
		return nil
	}
	if old != nil {
		if was, _ := old.Column(t, "type").Str(); was != typ {
			old = nil // the depth now sizes a port: check it even if unchanged
		}
	}
	return checkIntKey(t, old, new, "options", "depth", 1, netdev.MaxMemoryDepth)
}

// checkPort refuses a bond of more than ofproto.MaxBondMembers
// interfaces, an other_config:bond-rebalance-interval or
// lacp-system-priority out of OVS's documented range, a bond-hash-basis
// that is no 32-bit unsigned integer, and a lacp-system-id that is no
// nonzero Ethernet address (OVS turns the port's LACP off for that).
func checkPort(t *ovsdb.Table, old, new *ovsdb.Row) error {
	if err := checkSetSize(t, old, new, "interfaces", ofproto.MaxBondMembers); err != nil {
		return err
	}
	for _, k := range []struct {
		key    string
		lo, hi int64
	}{{"bond-rebalance-interval", 0, maxRebalanceMS}, {"lacp-system-priority", 1, 65535}, {"bond-hash-basis", 0, math.MaxUint32}} {
		if err := checkIntKey(t, old, new, "other_config", k.key, k.lo, k.hi); err != nil {
			return err
		}
	}
	s, ok := new.Column(t, "other_config").StringMap()[lacpSystemIDKey]
	if !ok {
		return nil
	}
	if old != nil {
		if was, ok := old.Column(t, "other_config").StringMap()[lacpSystemIDKey]; ok && was == s {
			return nil // unchanged
		}
	}
	_, err := parseLACPSystemID(s)
	return err
}

// checkIntKey refuses a new value of column:key that is not an integer
// from lo to hi. An unchanged value, or an absent one, passes.
func checkIntKey(t *ovsdb.Table, old, new *ovsdb.Row, column, key string, lo, hi int64) error {
	s, ok := new.Column(t, column).StringMap()[key]
	if !ok {
		return nil
	}
	if old != nil {
		if was, ok := old.Column(t, column).StringMap()[key]; ok && was == s {
			return nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err != nil || n < lo || n > hi {
		return fmt.Errorf("%s:%s=%s: must be an integer from %d to %d", column, key, quoteShort(s), lo, hi)
	}
	return nil
}
