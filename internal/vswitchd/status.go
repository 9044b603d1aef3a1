package vswitchd

import (
	"unicode/utf8"

	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
)

// statusOps returns the updates that write each interface's state back to
// its row, leaving out values that are already there so that an idle
// switch commits nothing. It ends the reconciliation's reads of Info.
func (st *datapathState) statusOps(snap *ovsdb.Snapshot) []any {
	st.mu.Lock()
	defer st.mu.Unlock()
	defer func() { st.infos = nil }()
	var ops []any
	for _, ifc := range st.ifaces {
		u := ifc.want.ifaceUUID
		if _, ok := snap.Tables["Interface"][u]; !ok {
			continue
		}
		row := map[string]any{}
		setIfChanged(snap, u, row, "ofport", intSet(ifc.ofport))
		setIfChanged(snap, u, row, "error", stringSet(st.errorFor(ifc)))
		if ifc.dev != nil {
			info := st.devInfo(ifc)
			if !info.Stale {
				setIfChanged(snap, u, row, "mac_in_use", stringSet(info.MAC.String()))
				setIfChanged(snap, u, row, "ifindex", intSet(int64(info.Ifindex)))
				setIfChanged(snap, u, row, "mtu", intSet(int64(info.MTU)))
				setIfChanged(snap, u, row, "link_state", stringSet(upDown(info.LinkUp)))
				setIfChanged(snap, u, row, "admin_state", stringSet(upDown(info.AdminUp)))
			}
		}
		if len(row) > 0 {
			ops = append(ops, updateRow("Interface", u, row))
		}
	}
	return append(ops, st.spanStatusOps(snap)...)
}

// errorFor is an interface's Interface.error: why its configuration
// failed, else a rule it breaks, else why its device's writes fail now
// (a pcap file on a full disk). The caller holds st.mu.
func (st *datapathState) errorFor(ifc *iface) string {
	if e := ifc.errorText(); e != "" {
		return cutError(e)
	}
	if e := st.violations[ifc.want.ifaceUUID]; e != "" {
		return cutError(e)
	}
	if f, ok := ifc.dev.(netdev.Faulter); ok {
		return cutError(f.Fault())
	}
	return ""
}

// maxErrorText bounds an error gvsd writes into the database: errors
// quote values a client wrote, which may be megabytes, and one status
// transaction carries every interface's.
const maxErrorText = 1024

// cutError cuts e to maxErrorText bytes, on a character boundary, and
// says it was cut.
func cutError(e string) string {
	if len(e) <= maxErrorText {
		return e
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(e[cut]) {
		cut--
	}
	return e[:cut] + " [cut]"
}

func (ifc *iface) errorText() string {
	if ifc.err != "" {
		return ifc.err
	}
	return ifc.want.vlanErr
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "down"
}

// intSet is an optional integer column value; 0 means "empty" only for
// columns where 0 is not a real value, which is not the case here, so an
// explicit empty value is never produced.
func intSet(v int64) []any { return []any{"set", []any{v}} }

// stringSet is an optional string column value, empty for "".
func stringSet(s string) []any {
	if s == "" {
		return []any{"set", []any{}}
	}
	return []any{"set", []any{s}}
}

// setIfChanged puts column=value into row if the snapshot holds another
// value.
func setIfChanged(snap *ovsdb.Snapshot, u ovsdb.UUID, row map[string]any, column string, value []any) {
	have, _ := snap.Get("Interface", u, column)
	elems := value[1].([]any)
	if have.Len() == len(elems) {
		same := true
		for i, e := range elems {
			switch x := e.(type) {
			case int64:
				v, _ := have.Int()
				same = same && v == x && i == 0
			case string:
				v, _ := have.Str()
				same = same && v == x && i == 0
			}
		}
		if same {
			return
		}
	}
	row[column] = value
}

func updateRow(table string, u ovsdb.UUID, row map[string]any) map[string]any {
	return map[string]any{
		"op": "update", "table": table,
		"where": []any{[]any{"_uuid", "==", []any{"uuid", u.String()}}},
		"row":   row,
	}
}

// statsOps returns the updates that refresh Interface.statistics.
func (st *datapathState) statsOps(snap *ovsdb.Snapshot) []any {
	st.mu.Lock()
	defer st.mu.Unlock()
	var ops []any
	for _, ifc := range st.ifaces {
		u := ifc.want.ifaceUUID
		if _, ok := snap.Tables["Interface"][u]; !ok || ifc.dev == nil {
			continue
		}
		s := ifc.dev.Stats()
		stats := map[string]uint64{
			"rx_packets": s.RxPackets, "rx_bytes": s.RxBytes, "rx_dropped": s.RxDropped, "rx_errors": s.RxErrors,
			"tx_packets": s.TxPackets, "tx_bytes": s.TxBytes, "tx_dropped": s.TxDropped, "tx_errors": s.TxErrors,
		}
		row := map[string]any{}
		if !sameStats(get(snap, "Interface", u, "statistics"), stats) {
			row["statistics"] = statsMap(stats)
		}
		// A device's write failures come and go without a
		// reconfiguration: look at them with the statistics.
		if _, ok := ifc.dev.(netdev.Faulter); ok {
			setIfChanged(snap, u, row, "error", stringSet(st.errorFor(ifc)))
		}
		if len(row) > 0 {
			ops = append(ops, updateRow("Interface", u, row))
		}
	}
	ops = append(ops, st.spanStatusOps(snap)...)
	ops = append(ops, st.bondStatsOps(snap)...)
	return append(ops, st.mirrorStatsOps(snap)...)
}

func sameStats(have ovsdb.Datum, want map[string]uint64) bool {
	if have.Len() != len(want) {
		return false
	}
	for i, k := range have.Keys {
		ks, _ := k.(string)
		v, _ := have.Values[i].(int64)
		if w, ok := want[ks]; !ok || uint64(v) != w {
			return false
		}
	}
	return true
}
