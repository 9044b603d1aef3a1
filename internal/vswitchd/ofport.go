package vswitchd

import (
	"sort"

	"gvs/internal/ovsdb"
)

// LocalPort is the OpenFlow port number of a bridge's own internal port.
const LocalPort = 65534

// ofportOps returns the updates that give every interface of every bridge
// an OpenFlow port number: 65534 for the bridge's own port, the
// ofport_request when it is free, otherwise the lowest free number.
// Numbers already assigned are kept, so they are stable across changes.
func ofportOps(snap *ovsdb.Snapshot) []any {
	var ops []any
	for bu := range snap.Tables["Bridge"] {
		ops = append(ops, bridgeOfportOps(snap, bu)...)
	}
	return ops
}

func bridgeOfportOps(snap *ovsdb.Snapshot, bridge ovsdb.UUID) []any {
	bname, _ := get(snap, "Bridge", bridge, "name").Str()
	used := map[int64]bool{}
	var pending []ovsdb.UUID
	for _, iface := range bridgeInterfaces(snap, bridge) {
		if n, ok := get(snap, "Interface", iface, "ofport").Int(); ok && n > 0 {
			used[n] = true
			continue
		}
		pending = append(pending, iface)
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].String() < pending[j].String() })
	var ops []any
	next := int64(1)
	for _, iface := range pending {
		name, _ := get(snap, "Interface", iface, "name").Str()
		var n int64
		req, hasReq := get(snap, "Interface", iface, "ofport_request").Int()
		switch {
		case name == bname:
			n = LocalPort
		case hasReq && req > 0 && !used[req]:
			n = req
		default:
			for used[next] {
				next++
			}
			n = next
		}
		used[n] = true
		ops = append(ops, map[string]any{
			"op": "update", "table": "Interface",
			"where": []any{[]any{"_uuid", "==", []any{"uuid", iface.String()}}},
			"row":   map[string]any{"ofport": n},
		})
	}
	return ops
}

// bridgeInterfaces lists the interfaces of all ports of a bridge.
func bridgeInterfaces(snap *ovsdb.Snapshot, bridge ovsdb.UUID) []ovsdb.UUID {
	var out []ovsdb.UUID
	for _, p := range get(snap, "Bridge", bridge, "ports").UUIDs() {
		out = append(out, get(snap, "Port", p, "interfaces").UUIDs()...)
	}
	return out
}

func get(snap *ovsdb.Snapshot, table string, u ovsdb.UUID, column string) ovsdb.Datum {
	d, _ := snap.Get(table, u, column)
	return d
}
