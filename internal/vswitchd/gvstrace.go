package vswitchd

import (
	"encoding/json"
	"fmt"
	"strings"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/packet"
)

// gvsTrace is gvs trace's control command, gvs/trace BRIDGE FLOW
// [ct-next=FLAGS]...: the trace of ofproto/trace as JSON, recirculated
// passes included (each assuming the ct_state of the next ct-next, or
// trk|new). A flow it cannot read is an error that marks the offending
// word; FLOW takes ports by name and gvs's ct_state=+trk,+new spelling.
func (sw *Switch) gvsTrace(args []string) (string, error) {
	var ctNext []uint8
	for _, a := range args[2:] {
		v, ok := strings.CutPrefix(a, "ct-next=")
		if !ok {
			return "", fmt.Errorf("%q: expected ct-next=FLAGS", a)
		}
		st, err := parseCtNext(v)
		if err != nil {
			return "", err
		}
		ctNext = append(ctNext, st)
	}
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := st.bridge(args[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	names := st.tracePortNames(b)
	m, err := flow.ParseMatchWith(args[1], flow.ParseOptions{LenientCtState: true,
		PortByName: func(n string) (uint32, bool) { no, ok := names.byName[n]; return no, ok }})
	if err != nil {
		return "", flow.PointAt(args[1], err)
	}
	if m.Mask().InPort == 0 {
		return "", fmt.Errorf("the packet needs an in_port (in_port=PORT): which port does it enter by?\n  %s", args[1])
	}
	t := &ofproto.RecordTracer{PortName: names.ofName}
	key := m.Value()
	x, final, err := b.Trace(key, t)
	if err != nil {
		return "", err
	}
	out := names.report(b.Name, key, m.Mask(), x, final, t)
	out.Flow = m.Format(flow.FormatOptions{PortName: names.ofName})
	queue := followRecirc(x, final, ctNext, 0)
	for n := 0; n < len(queue); n++ {
		r := queue[n]
		t := &ofproto.RecordTracer{PortName: names.ofName}
		rx, rfinal, err := ofproto.TraceResume(r.key, t)
		if err != nil {
			return "", err
		}
		name := b.Name
		if rb, ok := ofproto.BridgeOf(r.key.RecircID); ok {
			name = rb.Name
		}
		mask := m.Mask()
		mask.CtState = 0xff
		if r.key.CtZone != 0 {
			mask.CtZone = 0xffff
		}
		rep := names.report(name, r.key, mask, rx, rfinal, t)
		rep.Flow = flow.NewMatch(r.key, mask).Format(flow.FormatOptions{PortName: names.ofName})
		rep.Recirc, rep.CtState = fmt.Sprintf("%#x", r.key.RecircID), ctStateText(r.key.CtState)
		out.Resumed = append(out.Resumed, rep)
		if len(queue) < maxTracedRecircs {
			more := followRecirc(rx, rfinal, ctNext, len(queue))
			queue = append(queue, more[:min(len(more), maxTracedRecircs-len(queue))]...)
		}
	}
	j, err := json.Marshal(out)
	return string(j), err
}

// traceNames names a trace's ports: OpenFlow ports of the traced bridge
// by number and name, datapath ports by device.
type traceNames struct {
	byName map[string]uint32
	byNo   map[uint32]string
	byDP   map[uint32]string
}

func (st *datapathState) tracePortNames(b *ofproto.Bridge) *traceNames {
	n := &traceNames{byName: map[string]uint32{}, byNo: map[uint32]string{}, byDP: st.dpPortNames()}
	for _, p := range b.Config().Flood {
		n.byName[p.Name], n.byNo[p.OFPort] = p.OFPort, p.Name
	}
	return n
}

func (n *traceNames) ofName(no uint32) (string, bool) { s, ok := n.byNo[no]; return s, ok }

// report describes one traced pass.
func (n *traceNames) report(bridge string, key, given packet.Key, x *datapath.Xlate, final packet.Key, t *ofproto.RecordTracer) ofproto.TraceReport {
	out := ofproto.TraceReport{Bridge: bridge, InPort: n.byNo[key.InPort], Steps: t.Steps,
		Megaflow: flow.NewMatch(key, x.Mask.Key).Format(flow.FormatOptions{}), DatapathActions: datapath.FormatActions(x.Actions, nil),
		Outputs: []string{}, Copies: []string{}}
	if final != key {
		mask := datapath.Key{Key: given}
		mask.OrMask(&x.Mask.Key)
		out.Changed = flow.NewMatch(final, mask.Key).Format(flow.FormatOptions{PortName: n.ofName})
	}
	for _, a := range x.Actions {
		switch {
		case a.Kind == datapath.ActUserspace:
			out.ToController = true
		case a.Kind != datapath.ActOutput:
		case a.Copy != nil:
			out.Copies = append(out.Copies, dpName(n.byDP, a.Port))
		default:
			out.Outputs = append(out.Outputs, dpName(n.byDP, a.Port))
		}
	}
	return out
}

// dpName names a datapath port by its device, or its number for one
// that has none.
func dpName(byDP map[uint32]string, no uint32) string {
	if s, ok := byDP[no]; ok {
		return s
	}
	return fmt.Sprintf("datapath port %d", no)
}
