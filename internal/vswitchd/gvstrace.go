package vswitchd

import (
	"encoding/json"
	"fmt"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
)

// gvsTrace is gvs trace's control command, gvs/trace BRIDGE FLOW: the
// trace of ofproto/trace as JSON. A flow it cannot read is an error that
// marks the offending word; FLOW takes ports by name and gvs's
// ct_state=+trk,+new spelling.
func (sw *Switch) gvsTrace(args []string) (string, error) {
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := st.bridge(args[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	cfg := b.Config()
	byName, byNo, byDP := map[string]uint32{}, map[uint32]string{}, st.dpPortNames()
	for _, p := range cfg.Flood {
		byName[p.Name], byNo[p.OFPort] = p.OFPort, p.Name
	}
	m, err := flow.ParseMatchWith(args[1], flow.ParseOptions{LenientCtState: true,
		PortByName: func(n string) (uint32, bool) { no, ok := byName[n]; return no, ok }})
	if err != nil {
		return "", flow.PointAt(args[1], err)
	}
	if m.Mask().InPort == 0 {
		return "", fmt.Errorf("the packet needs an in_port (in_port=PORT): which port does it enter by?\n  %s", args[1])
	}
	portName := func(n uint32) (string, bool) { s, ok := byNo[n]; return s, ok }
	t := &ofproto.RecordTracer{PortName: portName}
	key := m.Value()
	x, final, err := b.Trace(key, t)
	if err != nil {
		return "", err
	}
	out := ofproto.TraceReport{Bridge: b.Name, Flow: m.Format(flow.FormatOptions{PortName: portName}), InPort: byNo[key.InPort], Steps: t.Steps,
		Megaflow: flow.NewMatch(key, x.Mask.Key).Format(flow.FormatOptions{}), DatapathActions: datapath.FormatActions(x.Actions, nil),
		Outputs: []string{}, Copies: []string{}}
	if final != key {
		mask := datapath.Key{Key: m.Mask()}
		mask.OrMask(&x.Mask.Key)
		out.Changed = flow.NewMatch(final, mask.Key).Format(flow.FormatOptions{PortName: portName})
	}
	for _, a := range x.Actions {
		switch {
		case a.Kind == datapath.ActUserspace:
			out.ToController = true
		case a.Kind != datapath.ActOutput:
		case a.Copy != nil:
			out.Copies = append(out.Copies, dpName(byDP, a.Port))
		default:
			out.Outputs = append(out.Outputs, dpName(byDP, a.Port))
		}
	}
	j, err := json.Marshal(out)
	return string(j), err
}

// dpName names a datapath port by its device, or its number for one
// that has none.
func dpName(byDP map[uint32]string, no uint32) string {
	if s, ok := byDP[no]; ok {
		return s
	}
	return fmt.Sprintf("datapath port %d", no)
}
