package vswitchd

import (
	"fmt"
	"strings"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
)

// ofprotoTrace is ovs-appctl ofproto/trace BRIDGE FLOW [-generate]: it
// translates a packet described by FLOW (ovs-ofctl match syntax, in_port
// by number or name) through the bridge's tables without forwarding
// anything, and prints each lookup, rule, action, NORMAL decision and
// mirror, then the datapath actions, in the shape OVS prints them. gvs
// never sends the packet, so -generate changes nothing.
func (sw *Switch) ofprotoTrace(args []string) (string, error) {
	if len(args) == 3 && args[2] != "-generate" {
		return "", fmt.Errorf("ofproto/trace: unexpected argument %q", args[2])
	}
	st := sw.state
	st.mu.Lock()
	defer st.mu.Unlock()
	b, err := st.bridge(args[0])
	if err != nil {
		return "", fmt.Errorf("%s: %w", args[0], err)
	}
	byName := map[string]uint32{}
	for _, p := range b.Config().Flood {
		byName[p.Name] = p.OFPort
	}
	m, err := flow.ParseMatchWith(args[1], flow.ParseOptions{
		PortByName: func(n string) (uint32, bool) { no, ok := byName[n]; return no, ok },
	})
	if err != nil {
		return "", fmt.Errorf("ofproto/trace: %s: %w", args[1], err)
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
	sb.WriteString(t.String())
	sb.WriteString("\nFinal flow: ")
	if final == key {
		sb.WriteString("unchanged")
	} else {
		mask := datapath.Key{Key: m.Mask()}
		mask.OrMask(&x.Mask.Key)
		sb.WriteString(flow.NewMatch(final, mask.Key).String())
	}
	mf := x.Mask.Key
	mf.RecircID = 0 // every translation reads it; a trace starts at recirc_id 0
	sb.WriteString("\nMegaflow: " + flow.NewMatch(key, mf).String())
	sb.WriteString("\nDatapath actions: " + datapath.FormatActions(x.Actions, nil) + "\n")
	return sb.String(), nil
}
