package vswitchd

import (
	"fmt"
	"strings"

	"gvs/internal/conntrack"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/packet"
)

// ofprotoTrace is ovs-appctl ofproto/trace [--ct-next FLAGS]...
// BRIDGE FLOW [-generate]: it translates a packet described by FLOW
// (ovs-ofctl match syntax, in_port by number or name) through the
// bridge's tables without forwarding anything, and prints each lookup,
// rule, action, NORMAL decision and mirror, then the datapath actions,
// in the shape OVS prints them. A ct(table=N) action's recirculated pass
// is traced after it, assuming the ct_state that the next --ct-next
// gives (trk,new by default), as OVS does. gvs never sends the packet,
// so -generate changes nothing.
func (sw *Switch) ofprotoTrace(args []string) (string, error) {
	opts, args, err := parseTraceOptions(args)
	if err != nil {
		return "", fmt.Errorf("ofproto/trace: %w", err)
	}
	if len(args) != 2 {
		return "", fmt.Errorf("ofproto/trace: expected BRIDGE FLOW (got %d arguments besides options)", len(args))
	}
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := st.bridge(args[0])
	if err != nil {
		return "", fmt.Errorf("%s: unknown bridge", args[0]) // OVS's words
	}
	byName := map[string]uint32{}
	for _, p := range b.Config().Flood {
		byName[p.Name] = p.OFPort
	}
	m, err := flow.ParseMatchWith(args[1], flow.ParseOptions{
		PortByName: func(n string) (uint32, bool) { no, ok := byName[n]; return no, ok },
	})
	if err != nil {
		//lint:ignore ST1005 OVS's words, capital included, which scripts match
		return "", fmt.Errorf("Bad openflow flow syntax: %w", err) // err names the flow
	}
	if m.Mask().InPort == 0 {
		return "", fmt.Errorf("ofproto/trace: %s: the flow needs an in_port", args[1])
	}
	// Rules and actions print port numbers, like the Flow line.
	t := &ofproto.TextTracer{}
	key := m.Value()
	x, final, err := b.Trace(key, t)
	if err != nil {
		return "", fmt.Errorf("ofproto/trace: %w", err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "Flow: %s\n\n", m)
	writeTracePass(&sb, t, key, final, m.Mask(), x)
	queue := followRecirc(x, final, opts.ctNext, 0)
	for n := 0; n < len(queue); n++ {
		r := queue[n]
		fmt.Fprintf(&sb, "\n%s\nrecirc(%#x) - resume conntrack with %s\n%s\n\n", traceRule, r.key.RecircID, r.why, traceRule)
		t := &ofproto.TextTracer{}
		rx, rfinal, err := ofproto.TraceResume(r.key, t)
		if err != nil {
			fmt.Fprintf(&sb, "%v\n", err)
			continue
		}
		mask := m.Mask()
		mask.RecircID, mask.CtState = ^uint32(0), 0xff
		if r.key.CtZone != 0 {
			mask.CtZone = 0xffff
		}
		fmt.Fprintf(&sb, "Flow: %s\n\n", flow.NewMatch(r.key, mask))
		writeTracePass(&sb, t, r.key, rfinal, mask, rx)
		if len(queue) < maxTracedRecircs {
			more := followRecirc(rx, rfinal, opts.ctNext, len(queue))
			queue = append(queue, more[:min(len(more), maxTracedRecircs-len(queue))]...)
		}
	}
	return sb.String(), nil
}

// traceRule separates the passes of a trace.
var traceRule = strings.Repeat("=", 79)

// writeTracePass writes one pass: the tracer's steps, then the Final
// flow, Megaflow and Datapath actions lines.
func writeTracePass(sb *strings.Builder, t *ofproto.TextTracer, key, final packet.Key, given packet.Key, x *datapath.Xlate) {
	sb.WriteString(t.String())
	sb.WriteString("\nFinal flow: ")
	if final == key {
		sb.WriteString("unchanged")
	} else {
		mask := datapath.Key{Key: given}
		mask.OrMask(&x.Mask.Key)
		sb.WriteString(flow.NewMatch(final, mask.Key).String())
	}
	mf := x.Mask.Key
	if key.RecircID == 0 {
		mf.RecircID = 0 // every translation reads it; a trace starts at recirc_id 0
	}
	sb.WriteString("\nMegaflow: " + flow.NewMatch(key, mf).String())
	sb.WriteString("\nDatapath actions: " + datapath.FormatActions(x.Actions, nil) + "\n")
}

// traceOptions are ofproto/trace's options.
type traceOptions struct {
	ctNext []uint8 // ct_state for each recirculation, in order
}

// maxCtNext bounds the --ct-next options of one trace.
const maxCtNext = 16

// parseTraceOptions takes ofproto/trace's options out of args:
// --ct-next FLAGS (repeatable), and -generate/--generate anywhere.
func parseTraceOptions(args []string) (traceOptions, []string, error) {
	var o traceOptions
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-generate" || a == "--generate":
		case a == "--ct-next" || strings.HasPrefix(a, "--ct-next="):
			v, ok := strings.CutPrefix(a, "--ct-next=")
			if !ok {
				if i+1 >= len(args) {
					return o, nil, fmt.Errorf("--ct-next: missing flags (e.g. --ct-next trk,est)")
				}
				i++
				v = args[i]
			}
			st, err := parseCtNext(v)
			if err != nil {
				return o, nil, err
			}
			if len(o.ctNext) >= maxCtNext {
				return o, nil, fmt.Errorf("--ct-next: at most %d", maxCtNext)
			}
			o.ctNext = append(o.ctNext, st)
		case strings.HasPrefix(a, "--"):
			return o, nil, fmt.Errorf("%s: unknown option (gvs takes --ct-next and -generate)", a)
		default:
			rest = append(rest, a)
		}
	}
	return o, rest, nil
}

// ctNextFlags are the ct_state flags --ct-next names.
var ctNextFlags = map[string]uint8{"new": conntrack.StateNew, "est": conntrack.StateEst, "rel": conntrack.StateRel,
	"rpl": conntrack.StateRpl, "inv": conntrack.StateInv, "trk": conntrack.StateTrk,
	"snat": conntrack.StateSNAT, "dnat": conntrack.StateDNAT}

// parseCtNext reads a comma-, space- or |-separated list of ct_state
// flags.
func parseCtNext(v string) (uint8, error) {
	var st uint8
	for _, w := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '|' }) {
		bit, ok := ctNextFlags[strings.TrimPrefix(w, "+")]
		if !ok {
			return 0, fmt.Errorf("--ct-next %q: unknown ct_state flag %q (trk, new, est, rel, rpl, inv, snat, dnat)", v, w)
		}
		st |= bit
	}
	if st == 0 {
		return 0, fmt.Errorf("--ct-next %q: no flags", v)
	}
	return st, nil
}

// ctStateText prints ct_state flags as OVS's trace does, in the order
// of their bits: new|trk, est|trk.
func ctStateText(st uint8) string {
	var names []string
	for _, n := range []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"} {
		if st&ctNextFlags[n] != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, "|")
}

// recircPass is one recirculation a trace follows.
type recircPass struct {
	key packet.Key // recirc_id and the assumed ct_* fields set
	why string     // which ct_state is assumed, and why
}

// maxTracedRecircs bounds the recirculations one trace follows, as the
// datapath bounds a packet's.
const maxTracedRecircs = 6

// followRecirc lists the recirculations of a traced pass, each with the
// key its resumed pass starts from: the headers as the pass left them,
// the zone of the ct action before it, and the ct_state that the next
// --ct-next gives (trk|new by default); seen counts the recirculations
// listed before, to pick the next --ct-next.
func followRecirc(x *datapath.Xlate, final packet.Key, ctNext []uint8, seen int) []*recircPass {
	var out []*recircPass
	zone := uint16(0)
	for _, a := range x.Actions {
		switch a.Kind {
		case datapath.ActCT:
			zone = a.CT.Zone
		case datapath.ActRecirc:
			k := final
			k.RecircID = uint32(a.Value)
			k.CtZone = zone
			st, why := conntrack.StateTrk|conntrack.StateNew, "default ct_state=trk|new (use --ct-next to customize)"
			if i := seen + len(out); i < len(ctNext) {
				st, why = ctNext[i], "ct_state="+ctStateText(ctNext[i])
			}
			k.CtState = st
			out = append(out, &recircPass{key: k, why: why})
		}
	}
	return out
}
