package vswitchd

import (
	"encoding/json"
	"sort"

	"gvs/internal/conntrack"
)

// MaxConntrackView bounds the connections one gvs/conntrack reply
// lists; the reply says how many matched in all.
const MaxConntrackView = 10000

// gvsConntrack is gvs conntrack's control command: the tracked
// connections that the filters (conntrack.ParseFilter) select, as JSON,
// in zone, protocol and address order.
func (sw *Switch) gvsConntrack(args []string) (string, error) {
	f, err := conntrack.ParseFilter(args)
	if err != nil {
		return "", err
	}
	rep := conntrack.Report{Connections: []conntrack.View{}}
	sw.state.ct.Dump(f.Zone, true, func(e conntrack.Entry) {
		v := conntrack.NewView(e)
		if !f.Match(&e, &v) {
			return
		}
		rep.Matched++
		if len(rep.Connections) < MaxConntrackView {
			rep.Connections = append(rep.Connections, v)
		}
	})
	rep.Truncated = rep.Matched > len(rep.Connections)
	sort.SliceStable(rep.Connections, func(i, j int) bool {
		a, b := &rep.Connections[i], &rep.Connections[j]
		if a.Zone != b.Zone {
			return a.Zone < b.Zone
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if a.Orig.Src != b.Orig.Src {
			return a.Orig.Src < b.Orig.Src
		}
		if a.Orig.Dst != b.Orig.Dst {
			return a.Orig.Dst < b.Orig.Dst
		}
		return a.Orig.Sport < b.Orig.Sport
	})
	j, err := json.Marshal(rep)
	return string(j), err
}
