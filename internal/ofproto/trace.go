package ofproto

import (
	"fmt"
	"strings"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// Tracer watches a translation, for ofproto/trace. Translation calls it
// only when one is set (a nil check on the packet path, nothing more).
// depth is the resubmit nesting, for indentation.
type Tracer interface {
	// Bridge says the frame enters bridge b (again across a patch).
	Bridge(b *Bridge, depth int)
	// Lookup reports the rule table id matched, nil for a miss.
	Lookup(table uint8, r *Rule, depth int)
	// Action reports an action about to run.
	Action(a flow.Action, depth int)
	// Note reports a decision in words (NORMAL's learned port or
	// flood, a drop and why).
	Note(msg string, depth int)
	// Mirror reports a mirror that selected the packet.
	Mirror(m *Mirror, depth int)
}

// Trace translates a packet with key key (its in_port an OpenFlow port
// of the bridge) as if it had entered the bridge, telling t each step,
// and returns the translation and the key as the tables left it. No side
// effect is applied: nothing is learned, no counter moves.
func (b *Bridge) Trace(key packet.Key, t Tracer) (*datapath.Xlate, packet.Key, error) {
	cfg := b.cfg.Load()
	var in *Port
	for _, p := range cfg.Flood {
		if p.OFPort == key.InPort {
			in = p
		}
	}
	if in == nil {
		return nil, key, fmt.Errorf("%s: no port with OpenFlow number %d", b.Name, key.InPort)
	}
	return b.trace(key, t, cfg, in, nil)
}

// TraceResume traces the pass of a packet that a ct(table=N) action
// recirculated: key.RecircID names the point the first pass froze at,
// and its ct_* fields are what the tracker is assumed to report (the
// trace never runs the tracker). The bridge and input port come from the
// frozen state; key.InPort is ignored.
func TraceResume(key packet.Key, t Tracer) (*datapath.Xlate, packet.Key, error) {
	fz, ok := thaw(key.RecircID)
	if !ok {
		return nil, key, fmt.Errorf("recirc(%#x): no such recirculation point", key.RecircID)
	}
	cfg := fz.bridge.cfg.Load()
	in, ok := cfg.Ports[fz.inDP]
	if !ok {
		return nil, key, fmt.Errorf("recirc(%#x): the port the packet entered by is gone", key.RecircID)
	}
	return fz.bridge.trace(key, t, cfg, in, &fz)
}

// BridgeOf returns the bridge a recirculation id resumes in.
func BridgeOf(recircID uint32) (*Bridge, bool) {
	fz, ok := thaw(recircID)
	return fz.bridge, ok
}

// trace runs a traced translation from the start of the pipeline or,
// with fz, from where it froze.
func (b *Bridge) trace(key packet.Key, t Tracer, cfg *Config, in *Port, fz *frozen) (*datapath.Xlate, packet.Key, error) {
	out := &datapath.Xlate{}
	x := &xlate{trace: t, out: out}
	k := key
	k.InPort = in.DPPort
	x.key = &k
	out.Mask.InPort = ^uint32(0)
	depth := 0
	if fz != nil {
		out.Mask.RecircID = ^uint32(0)
		depth = fz.depth
	}
	limit := cfg.vlanLimit()
	maskVLANs(&out.Mask, limit)
	for i, tci := range []uint16{key.VLANTCI, key.InnerVLANTCI}[:limit] {
		if tci&packet.VLANPresent == 0 {
			break
		}
		x.base[i] = packet.VLANHeader{TPID: packet.EtherTypeVLAN, TCI: packet.WireTCI(tci) &^ dei}
		x.nbase++
	}
	x.cur, x.ncur = x.base, x.nbase
	b.pipelineFrom(x, cfg, in, frame{src: k.DlSrc, dst: k.DlDst, vlans: x.base}, depth, fz)
	if checkSize(x); x.aborted {
		out.Actions = out.Actions[:0]
		t.Note("packet dropped: unsupported action, too many resubmits or too many datapath actions", 0)
	}
	return out, x.final, nil
}

// TextTracer writes a trace in the shape of OVS's ofproto/trace.
type TextTracer struct {
	strings.Builder
	// PortName names OpenFlow ports in actions; nil prints numbers.
	PortName func(uint32) (string, bool)
}

func (t *TextTracer) indent(depth int) { t.WriteString(strings.Repeat("    ", depth)) }

// Bridge implements Tracer.
func (t *TextTracer) Bridge(b *Bridge, depth int) {
	t.indent(depth)
	head := fmt.Sprintf("bridge(%q)", b.Name)
	t.WriteString(head + "\n")
	t.indent(depth)
	t.WriteString(strings.Repeat("-", len(head)) + "\n") // underlined, as OVS does
}

// Lookup implements Tracer.
func (t *TextTracer) Lookup(table uint8, r *Rule, depth int) {
	t.indent(depth)
	if r == nil {
		fmt.Fprintf(t, "%2d. No match.\n", table)
		t.indent(depth)
		t.WriteString("    drop\n")
		return
	}
	f := r.Flow()
	m := f.Match.Format(flow.FormatOptions{PortName: t.PortName})
	if m != "" {
		m += ", "
	}
	fmt.Fprintf(t, "%2d. %spriority %d", table, m, f.Priority)
	if f.Cookie != 0 {
		fmt.Fprintf(t, ", cookie %#x", f.Cookie)
	}
	t.WriteByte('\n')
}

// Action implements Tracer.
func (t *TextTracer) Action(a flow.Action, depth int) {
	t.indent(depth)
	t.WriteString("    ")
	t.WriteString(flow.FormatActions([]flow.Action{a}, flow.FormatOptions{PortName: t.PortName}))
	t.WriteByte('\n')
}

// Note implements Tracer.
func (t *TextTracer) Note(msg string, depth int) {
	t.indent(depth)
	t.WriteString("     -> ")
	t.WriteString(msg)
	t.WriteByte('\n')
}

// Mirror implements Tracer.
func (t *TextTracer) Mirror(m *Mirror, depth int) {
	t.indent(depth)
	fmt.Fprintf(t, "    mirror %s\n", m.Name)
}
