package ofproto

import (
	"fmt"

	"gvs/internal/flow"
)

// TraceReport is what `gvs trace` shows: the ofproto/trace of a packet as
// data, with ports by name.
type TraceReport struct {
	Bridge string `json:"bridge"`
	// Flow is the packet as given, InPort the name of its port.
	Flow   string      `json:"flow"`
	InPort string      `json:"in_port"`
	Steps  []TraceStep `json:"steps"`
	// Changed lists the fields the actions rewrote (empty: none).
	Changed string `json:"changed,omitempty"`
	// Megaflow is what the datapath's cached flow for it matches.
	Megaflow string `json:"megaflow"`
	// DatapathActions are the actions, in datapath port numbers;
	// Outputs, Copies and ToController say the same in words: the
	// ports the packet leaves by, the ports mirror copies go to, and
	// whether the controllers get it.
	DatapathActions string   `json:"datapath_actions"`
	Outputs         []string `json:"outputs"`
	Copies          []string `json:"mirror_copies"`
	ToController    bool     `json:"to_controller"`
	// Recirc and CtState describe a pass that a ct(table=N) action
	// recirculated: its recirculation id and the ct_state the trace
	// assumed the tracker gave (ct_state=trk|new unless told otherwise).
	Recirc  string `json:"recirc,omitempty"`
	CtState string `json:"ct_state,omitempty"`
	// Resumed are the passes recirculated from this one, in order (only
	// in the first pass's report).
	Resumed []TraceReport `json:"resumed,omitempty"`
}

// TraceStep is one step of a recorded trace (gvs trace): what happened,
// at which resubmit depth.
type TraceStep struct {
	Depth int    `json:"depth"`
	Kind  string `json:"kind"` // bridge, rule, miss, action, note, mirror
	// Bridge names the bridge a "bridge" step enters.
	Bridge string `json:"bridge,omitempty"`
	// Table, Rule, Priority and Cookie describe a "rule" or "miss" step.
	Table    int    `json:"table"`
	Rule     string `json:"rule,omitempty"`
	Priority int    `json:"priority,omitempty"`
	Cookie   string `json:"cookie,omitempty"`
	// Text is the action, note or mirror name.
	Text string `json:"text,omitempty"`
}

// RecordTracer keeps a trace as steps, for gvs trace to explain.
type RecordTracer struct {
	Steps []TraceStep
	// PortName names OpenFlow ports in rules and actions; nil prints
	// numbers.
	PortName func(uint32) (string, bool)
}

func (t *RecordTracer) add(s TraceStep) { t.Steps = append(t.Steps, s) }

// Bridge implements Tracer.
func (t *RecordTracer) Bridge(b *Bridge, depth int) {
	t.add(TraceStep{Depth: depth, Kind: "bridge", Bridge: b.Name, Table: -1})
}

// Lookup implements Tracer.
func (t *RecordTracer) Lookup(table uint8, r *Rule, depth int) {
	if r == nil {
		t.add(TraceStep{Depth: depth, Kind: "miss", Table: int(table)})
		return
	}
	f := r.Flow()
	s := TraceStep{Depth: depth, Kind: "rule", Table: int(table), Priority: int(f.Priority),
		Rule: f.Match.Format(flow.FormatOptions{PortName: t.PortName})}
	if f.Cookie != 0 {
		s.Cookie = fmt.Sprintf("%#x", f.Cookie)
	}
	t.add(s)
}

// Action implements Tracer.
func (t *RecordTracer) Action(a flow.Action, depth int) {
	t.add(TraceStep{Depth: depth, Kind: "action", Table: -1,
		Text: flow.FormatActions([]flow.Action{a}, flow.FormatOptions{PortName: t.PortName})})
}

// Note implements Tracer.
func (t *RecordTracer) Note(msg string, depth int) {
	t.add(TraceStep{Depth: depth, Kind: "note", Table: -1, Text: msg})
}

// Mirror implements Tracer.
func (t *RecordTracer) Mirror(m *Mirror, depth int) {
	t.add(TraceStep{Depth: depth, Kind: "mirror", Table: -1, Text: m.Name})
}
