package main

import (
	"strings"
	"testing"

	"gvs/internal/flow"
)

// TestFlowsPointAt checks that a flow gvs cannot read is shown with the
// offending word marked: an unknown field, a bad mask, a field without
// its prerequisite.
func TestFlowsPointAt(t *testing.T) {
	for _, c := range []struct{ text, word string }{
		{"priority=5, tcp, tp_dts=80, actions=drop", "tp_dts=80"},
		{"priority=5,ip,nw_src=10.0.0.0/33,actions=drop", "nw_src=10.0.0.0/33"},
		{"priority=5,tp_dst=80,actions=drop", "tp_dst=80"},
	} {
		_, err := flow.ParseFlow(c.text, flow.ParseOptions{LenientCtState: true})
		if err == nil {
			t.Errorf("%q parsed", c.text)
			continue
		}
		lines := strings.Split(pointAt(c.text, err).Error(), "\n")
		if len(lines) != 3 {
			t.Errorf("%q: no mark:\n%s", c.text, strings.Join(lines, "\n"))
			continue
		}
		at := strings.Index(c.text, c.word)
		want := "  " + strings.Repeat(" ", at) + strings.Repeat("^", len(c.word))
		if lines[1] != "  "+c.text || lines[2] != want {
			t.Errorf("%q: marked\n%s\n%s\nwant\n%s", c.text, lines[1], lines[2], want)
		}
	}
	// The tutorials' spelling is read.
	for _, text := range []string{"ct_state=+trk,+new,tcp,actions=drop", "tcp,ct_state=+trk,+new,actions=ct(commit),output:2"} {
		if _, err := flow.ParseFlow(text, flow.ParseOptions{LenientCtState: true}); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
}
