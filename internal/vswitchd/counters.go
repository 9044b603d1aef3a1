package vswitchd

import (
	"sort"

	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// InterfaceCounters are one interface's statistics, read from its device
// as the Interface.statistics column is, with the names that identify it.
type InterfaceCounters struct {
	Bridge, Port, Interface string
	Stats                   netdev.Stats
}

// MirrorCounters are one mirror's statistics, as in Mirror.statistics.
type MirrorCounters struct {
	Bridge, Mirror                         string
	TxPackets, TxBytes, Dropped, Truncated uint64
}

// BridgeFlows are the flow counts of one bridge's OpenFlow tables.
type BridgeFlows struct {
	Bridge   string
	Tables   []ofproto.TableCount // non-empty tables only
	MaxFlows int
}

// InterfaceCounters returns the current counters of every interface that
// has a device, sorted by bridge and interface. They are read live, not
// from the database, so they do not wait for the next statistics refresh.
func (sw *Switch) InterfaceCounters() []InterfaceCounters {
	st := sw.state
	st.mu.Lock()
	out := make([]InterfaceCounters, 0, len(st.ifaces))
	for _, ifc := range st.ifaces {
		if ifc.dev == nil {
			continue
		}
		out = append(out, InterfaceCounters{Bridge: ifc.want.bridge, Port: ifc.want.port,
			Interface: ifc.want.name, Stats: ifc.dev.Stats()})
	}
	st.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Bridge != out[j].Bridge {
			return out[i].Bridge < out[j].Bridge
		}
		return out[i].Interface < out[j].Interface
	})
	return out
}

// MirrorCounters returns the counters of every mirror in effect (those
// that copy somewhere), sorted by bridge and mirror name.
func (sw *Switch) MirrorCounters() []MirrorCounters {
	var out []MirrorCounters
	for _, br := range sw.bridgeList() {
		cfg := br.Config()
		if cfg == nil {
			continue
		}
		for _, m := range cfg.Mirrors {
			if m.Stats == nil {
				continue
			}
			out = append(out, MirrorCounters{Bridge: br.Name, Mirror: m.Name,
				TxPackets: m.Stats.Packets.Load(), TxBytes: m.Stats.Bytes.Load(),
				Dropped: m.Stats.Copy.Dropped.Load(), Truncated: m.Stats.Copy.Truncated.Load()})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Bridge != out[j].Bridge {
			return out[i].Bridge < out[j].Bridge
		}
		return out[i].Mirror < out[j].Mirror
	})
	return out
}

// FlowCounts returns the flow counts of every bridge, sorted by name.
func (sw *Switch) FlowCounts() []BridgeFlows {
	var out []BridgeFlows
	for _, br := range sw.bridgeList() {
		tables, max := br.Tables.Counts()
		out = append(out, BridgeFlows{Bridge: br.Name, Tables: tables, MaxFlows: max})
	}
	return out
}

// bridgeList returns the bridges, sorted by name. The lock is held only
// to copy the list: each bridge's configuration and tables have their own.
func (sw *Switch) bridgeList() []*ofproto.Bridge {
	st := sw.state
	st.mu.Lock()
	out := make([]*ofproto.Bridge, 0, len(st.bridges))
	for _, br := range st.bridges {
		out = append(out, br)
	}
	st.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
