package vswitchd

import (
	"fmt"
	"sort"
	"strconv"

	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
)

// wantMirror is a Mirror row as the database describes it. Ports are
// named by Port row UUID.
type wantMirror struct {
	uuid     ovsdb.UUID
	name     string
	all      bool
	src, dst []ovsdb.UUID
	vlans    []int64
	outPort  *ovsdb.UUID
	outVLAN  int64
	snaplen  int64
	filter   string
}

// readMirrors reads the mirrors of a bridge.
func readMirrors(snap *ovsdb.Snapshot, bu ovsdb.UUID) []*wantMirror {
	var out []*wantMirror
	for _, mu := range get(snap, "Bridge", bu, "mirrors").UUIDs() {
		m := &wantMirror{uuid: mu, outVLAN: -1}
		m.name, _ = get(snap, "Mirror", mu, "name").Str()
		m.all, _ = get(snap, "Mirror", mu, "select_all").Bool()
		m.src = get(snap, "Mirror", mu, "select_src_port").UUIDs()
		m.dst = get(snap, "Mirror", mu, "select_dst_port").UUIDs()
		m.vlans = get(snap, "Mirror", mu, "select_vlan").Ints()
		if ports := get(snap, "Mirror", mu, "output_port").UUIDs(); len(ports) == 1 {
			m.outPort = &ports[0]
		}
		if v, ok := get(snap, "Mirror", mu, "output_vlan").Int(); ok {
			m.outVLAN = v
		}
		m.snaplen, _ = get(snap, "Mirror", mu, "snaplen").Int()
		m.filter, _ = get(snap, "Mirror", mu, "filter").Str()
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out[:min(len(out), MaxMirrors)] // the check refuses more, but not a remote server's
}

// buildMirrors turns a bridge's mirror rows into translation mirrors,
// marking output ports as reserved. byPortRow maps Port row UUIDs to the
// bridge's translation ports. Stats carry over from the previous
// configuration, by Mirror row, while the mirror stays in effect. A
// mirror that cannot copy anywhere (no output, or an output port that is
// gone) is left out, as OVS 3.1 leaves it out: its counters are forgotten
// and its statistics column is no longer written, so it keeps the last
// counters (or none); if it copies again, it counts from zero.
func (st *datapathState) buildMirrors(b *wantBridge, byPortRow map[ovsdb.UUID]*ofproto.Port) []*ofproto.Mirror {
	var out []*ofproto.Mirror
	byName := map[string]*ofproto.Port{}
	for _, p := range byPortRow {
		byName[p.Name] = p
	}
	for _, w := range b.mirrors {
		m := &ofproto.Mirror{Name: w.name, All: w.all, OutVLAN: int(w.outVLAN), Snaplen: uint32(w.snaplen),
			Src: portSet(w.src, byPortRow), Dst: portSet(w.dst, byPortRow)}
		if len(w.vlans) > 0 {
			m.VLANs = &ofproto.VLANSet{}
			for _, v := range w.vlans {
				m.VLANs.Add(uint16(v))
			}
		}
		if w.outPort != nil {
			m.OutPort = byPortRow[*w.outPort]
		}
		filter, err := compileFilter(w.filter, byName)
		if err != nil {
			// Filters are checked when the transaction commits, so this
			// only happens to a database written by something else.
			mirrorBadFilter.Inc()
			vswitchdLog.Warn("bridge %s: mirror %s disabled: bad filter: %v", b.name, w.name, err)
			continue
		}
		m.Filter = filter
		if m.OutPort == nil && m.OutVLAN < 0 {
			continue // copies nowhere
		}
		if m.OutPort != nil {
			m.OutPort.MirrorOut = true
		}
		m.Stats = st.mirrorStats(w.uuid)
		out = append(out, m)
	}
	return out
}

func portSet(rows []ovsdb.UUID, byPortRow map[ovsdb.UUID]*ofproto.Port) map[uint32]bool {
	set := map[uint32]bool{}
	for _, u := range rows {
		if p := byPortRow[u]; p != nil {
			set[p.DPPort] = true
		}
	}
	return set
}

// mirrorStats returns the counters of a mirror row, creating them the
// first time.
func (st *datapathState) mirrorStats(u ovsdb.UUID) *ofproto.MirrorStats {
	s, ok := st.mirrorStat[u]
	if !ok {
		s = &ofproto.MirrorStats{}
		st.mirrorStat[u] = s
	}
	st.liveMirrors[u] = true
	return s
}

// mirrorStatsOps writes Mirror.statistics for every mirror in effect.
func (st *datapathState) mirrorStatsOps(snap *ovsdb.Snapshot) []any {
	var ops []any
	for u, s := range st.mirrorStat {
		if _, ok := snap.Tables["Mirror"][u]; !ok {
			continue
		}
		stats := map[string]uint64{
			"tx_packets": s.Packets.Load(), "tx_bytes": s.Bytes.Load(),
			"tx_dropped": s.Copy.Dropped.Load(), "tx_truncated": s.Copy.Truncated.Load(),
		}
		if sameStats(get(snap, "Mirror", u, "statistics"), stats) {
			continue
		}
		ops = append(ops, updateRow("Mirror", u, map[string]any{"statistics": statsMap(stats)}))
	}
	return ops
}

func statsMap(stats map[string]uint64) []any {
	pairs := make([]any, 0, len(stats))
	for k, v := range stats {
		pairs = append(pairs, []any{k, int64(v)})
	}
	return []any{"map", pairs}
}

// compileFilter turns a Mirror.filter into a match. An empty filter
// (nil) selects everything. Port names in in_port are resolved with ports
// (name → OpenFlow and datapath numbers); with ports nil any name is
// accepted, which is what the commit-time check needs.
func compileFilter(s string, ports map[string]*ofproto.Port) (*flow.Match, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > flow.MaxFlowText {
		// As long as the flow text of appctl and span rules may be.
		return nil, fmt.Errorf("too long (%d bytes, at most %d)", len(s), flow.MaxFlowText)
	}
	byName := func(string) (uint32, bool) { return 0, true }
	if ports != nil {
		byName = func(name string) (uint32, bool) {
			p, ok := ports[name]
			if !ok {
				return 0, false
			}
			return p.OFPort, true
		}
	}
	m, err := flow.ParseMatchWith(s, flow.ParseOptions{PortByName: byName, LenientCtState: true})
	if err != nil {
		return nil, err
	}
	return toDatapathPorts(m, ports)
}

// toDatapathPorts rewrites an in_port match from the OpenFlow number the
// user wrote to the datapath number that packet keys carry.
func toDatapathPorts(m *flow.Match, ports map[string]*ofproto.Port) (*flow.Match, error) {
	mask := m.Mask()
	if mask.InPort == 0 || ports == nil {
		return m, nil
	}
	value := m.Value()
	for _, p := range ports {
		if p.OFPort == value.InPort {
			value.InPort = p.DPPort
			return flow.NewMatch(value, mask), nil
		}
	}
	return nil, fmt.Errorf("in_port=%d: no such port on the bridge", value.InPort)
}

// checkMirror refuses a Mirror row whose filter does not parse, so that
// the client that wrote it gets the error (OVS only logs it).
func checkMirror(t *ovsdb.Table, old, new *ovsdb.Row) error {
	filter, _ := new.Column(t, "filter").Str()
	if old != nil {
		if was, _ := old.Column(t, "filter").Str(); was == filter {
			return nil
		}
	}
	if _, err := compileFilter(filter, nil); err != nil {
		return fmt.Errorf("invalid filter %s: %v", quoteShort(filter), err)
	}
	return nil
}

// quoteShort quotes s, or its first 64 bytes and how long it is, so
// that an error about a long value stays short.
func quoteShort(s string) string {
	if len(s) <= 64 {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:64], len(s))
}
