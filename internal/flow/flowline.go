package flow

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Flow is one OpenFlow flow as ovs-ofctl add-flow writes it: where it
// goes, its flags and timeouts, its match and its actions.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	// CookieMask is the mask written after the cookie (cookie=0x1/0xff),
	// which del-flows and mod-flows use to select flows; 0 when none.
	CookieMask               uint64
	IdleTimeout, HardTimeout uint16
	Importance               uint16
	Flags                    FlowFlags
	Match                    *Match
	Actions                  []Action
}

// FlowFlags are the flow_mod flags ovs-ofctl spells as bare words.
type FlowFlags struct {
	SendFlowRem, CheckOverlap, ResetCounts, NoPacketCounts, NoByteCounts bool
}

// DefaultPriority is the priority of a flow that does not give one.
const DefaultPriority = 32768

// MaxFlowText bounds a flow line from outside.
const MaxFlowText = 2 * MaxActionsText

// flowFlagWords are the flags, in the order ovs-ofctl prints them.
var flowFlagWords = []struct {
	name string
	get  func(*FlowFlags) *bool
}{
	{"send_flow_rem", func(f *FlowFlags) *bool { return &f.SendFlowRem }},
	{"check_overlap", func(f *FlowFlags) *bool { return &f.CheckOverlap }},
	{"reset_counts", func(f *FlowFlags) *bool { return &f.ResetCounts }},
	{"no_packet_counts", func(f *FlowFlags) *bool { return &f.NoPacketCounts }},
	{"no_byte_counts", func(f *FlowFlags) *bool { return &f.NoByteCounts }},
}

// statsWords are what dump-flows prints about a flow's life; a pasted
// dump-flows line parses, and they are ignored, as ovs-ofctl does.
var statsWords = map[string]bool{"duration": true, "n_packets": true, "n_bytes": true, "idle_age": true, "hard_age": true}

// ParseFlow reads a flow in ovs-ofctl's add-flow syntax:
// "table=0, priority=50, ct_state=-trk, tcp, in_port=veth_l0, actions=ct(table=0)".
// The match and actions are those of ParseMatchWith and ParseActions;
// opts.PortByName resolves port names in both.
func ParseFlow(s string, opts ParseOptions) (*Flow, error) {
	if len(s) > MaxFlowText {
		return nil, &Error{Msg: fmt.Sprintf("flow too long (%d bytes, at most %d)", len(s), MaxFlowText)}
	}
	head, acts, ok := cutActions(s)
	if !ok {
		return nil, &Error{Field: "actions", Msg: "missing: a flow needs actions=... (actions=drop to drop)"}
	}
	f := &Flow{Priority: DefaultPriority}
	toks, err := tokenize(head, opts.LenientCtState)
	if err != nil {
		return nil, err
	}
	var match []string
	for _, t := range toks {
		handled, err := f.applyFlowWord(t)
		if err != nil {
			return nil, err
		}
		if !handled {
			match = append(match, t.text())
		}
	}
	if f.Match, err = ParseMatchWith(strings.Join(match, ","), opts); err != nil {
		return nil, err
	}
	if f.Actions, err = ParseActions(acts, opts.PortByName); err != nil {
		return nil, err
	}
	if err := checkActionPrereqs(f.Match, f.Actions); err != nil {
		return nil, err
	}
	return f, nil
}

// text writes a token back as key=value for the match parser.
func (t token) text() string {
	if !t.hasValue {
		return t.key
	}
	return t.key + "=" + t.value
}

// cutActions splits a flow at its "actions=" (or "actions:") item, which
// takes the rest of the line.
func cutActions(s string) (head, acts string, ok bool) {
	for i := 0; i+8 <= len(s); i++ {
		if (i == 0 || isDelim(s[i-1])) && s[i:i+7] == "actions" && (s[i+7] == '=' || s[i+7] == ':') {
			return s[:i], s[i+8:], true
		}
	}
	return s, "", false
}

// applyFlowWord handles the words that describe the flow rather than its
// match; it reports false for a match word.
func (f *Flow) applyFlowWord(t token) (bool, error) {
	for _, w := range flowFlagWords {
		if t.key == w.name {
			if t.hasValue {
				return true, &Error{Field: t.key, Value: t.value, Msg: "a flag takes no value"}
			}
			*w.get(&f.Flags) = true
			return true, nil
		}
	}
	if statsWords[t.key] {
		return true, nil
	}
	var dst *uint16
	switch t.key {
	case "table":
		v, err := parseTable(t.value)
		f.Table = v
		return true, wordError(t, err)
	case "cookie":
		return true, wordError(t, f.parseCookie(t.value))
	case "priority":
		dst = &f.Priority
	case "idle_timeout":
		dst = &f.IdleTimeout
	case "hard_timeout":
		dst = &f.HardTimeout
	case "importance":
		dst = &f.Importance
	case "out_port", "out_group":
		return true, &Error{Field: t.key, Value: t.value, Msg: "only for selecting flows to delete or dump, not in a flow"}
	default:
		return false, nil
	}
	if !t.hasValue || t.value == "" {
		return true, &Error{Field: t.key, Msg: "missing value"}
	}
	v, err := parseUint(t.value, 16)
	*dst = uint16(v)
	return true, wordError(t, widthError(err, 16))
}

func wordError(t token, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Field: t.key, Value: t.value, Msg: err.Error()}
}

func (f *Flow) parseCookie(s string) error {
	vs, ms, hasMask, err := splitMask(s)
	if err != nil {
		return err
	}
	if f.Cookie, err = parseUint(vs, 64); err != nil {
		return widthError(err, 64)
	}
	if hasMask {
		if f.CookieMask, err = parseUint(ms, 64); err != nil {
			return fmt.Errorf("mask: %w", widthError(err, 64))
		}
		f.Cookie &= f.CookieMask
	}
	return nil
}

// String prints the flow as ovs-ofctl --no-stats dump-flows does, which
// add-flow reads back.
func (f *Flow) String() string { return f.Format(FormatOptions{}) }

// Format is String with options.
func (f *Flow) Format(o FormatOptions) string {
	var b strings.Builder
	if f.Cookie != 0 || f.CookieMask != 0 {
		b.WriteString("cookie=" + f.cookieText() + ", ")
	}
	if f.Table != 0 {
		fmt.Fprintf(&b, "table=%d, ", f.Table)
	}
	f.formatTail(&b, nil, o)
	return b.String()
}

func (f *Flow) cookieText() string {
	text := "0x" + strconv.FormatUint(f.Cookie, 16)
	if f.CookieMask != 0 {
		text += "/0x" + strconv.FormatUint(f.CookieMask, 16)
	}
	return text
}

// Stats are what dump-flows prints about a flow's life. IdleAge and
// HardAge are in seconds, -1 when the OpenFlow version does not report
// them (OpenFlow 1.1 and later).
type Stats struct {
	Duration         time.Duration
	Packets, Bytes   uint64
	IdleAge, HardAge int
}

// FormatStats prints the flow as a line of ovs-ofctl dump-flows (without
// the leading space ovs-ofctl puts before each flow).
func (f *Flow) FormatStats(s Stats, o FormatOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cookie=%s, duration=%s, table=%d, n_packets=%d, n_bytes=%d, ",
		f.cookieText(), formatDuration(s.Duration), f.Table, s.Packets, s.Bytes)
	f.formatTail(&b, &s, o)
	return b.String()
}

// formatTail prints timeouts, flags, importance, ages, priority, match
// and actions, in ovs-ofctl's order.
func (f *Flow) formatTail(b *strings.Builder, s *Stats, o FormatOptions) {
	if f.IdleTimeout != 0 {
		fmt.Fprintf(b, "idle_timeout=%d, ", f.IdleTimeout)
	}
	if f.HardTimeout != 0 {
		fmt.Fprintf(b, "hard_timeout=%d, ", f.HardTimeout)
	}
	for _, w := range flowFlagWords {
		if *w.get(&f.Flags) {
			b.WriteString(w.name + " ")
		}
	}
	if f.Importance != 0 {
		fmt.Fprintf(b, "importance=%d, ", f.Importance)
	}
	if s != nil && s.IdleAge >= 0 {
		fmt.Fprintf(b, "idle_age=%d, ", s.IdleAge)
	}
	if s != nil && s.HardAge >= 0 && time.Duration(s.HardAge)*time.Second != s.Duration.Truncate(time.Second) {
		fmt.Fprintf(b, "hard_age=%d, ", s.HardAge)
	}
	match := ""
	if f.Match != nil {
		match = f.Match.Format(o)
	}
	if f.Priority != DefaultPriority {
		match = strings.TrimSuffix("priority="+strconv.Itoa(int(f.Priority))+","+match, ",")
	}
	if match != "" {
		b.WriteString(match + " ")
	}
	b.WriteString("actions=" + FormatActions(f.Actions, o))
}

// formatDuration prints seconds with three decimals when the time is a
// whole number of milliseconds (as OVS's always is), nine otherwise, and
// none for whole seconds.
func formatDuration(d time.Duration) string {
	sec, nsec := d/time.Second, d%time.Second
	switch {
	case nsec == 0:
		return fmt.Sprintf("%ds", sec)
	case nsec%time.Millisecond == 0:
		return fmt.Sprintf("%d.%03ds", sec, nsec/time.Millisecond)
	}
	return fmt.Sprintf("%d.%09ds", sec, nsec)
}
