package openflow

import "testing"

// TestEncodeRepliesSkipsTooBigEntry: a flow whose 1.3 entry no message
// can hold is left out of the reply (as OVS leaves it out), the others
// are sent, and EncodeReplies, which cannot leave anything out, fails.
func TestEncodeRepliesSkipsTooBigEntry(t *testing.T) {
	outs := make([]Action, 4091)
	for i := range outs {
		outs[i] = &Output{Port: 1}
	}
	r := &FlowStatsReply{Flows: []FlowStats{
		{TableID: 1, Priority: 1},
		{TableID: 5, Priority: 5, Instructions: []Instruction{ApplyActions{Actions: outs}}},
		{TableID: 2, Priority: 2},
	}}
	bs, skipped, err := EncodeRepliesSkipping(Version13, 9, r)
	if err != nil || skipped != 1 {
		t.Fatalf("skipped %d, err %v; want 1, nil", skipped, err)
	}
	var got []uint8
	for _, b := range bs {
		_, m, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m.(*FlowStatsReply).Flows {
			got = append(got, f.TableID)
		}
	}
	if len(got) != 2 || got[0] != 1 || got[1] != 2 {
		t.Errorf("tables in the reply: %v, want [1 2]", got)
	}
	if _, err := EncodeReplies(Version13, 9, r); err == nil {
		t.Errorf("EncodeReplies left an entry out without an error")
	}
	// In 1.0 with NXM the same flow fits (8-byte outputs).
	r.NXM = true
	r.Flows[1].Actions, r.Flows[1].Instructions = outs, nil
	if _, skipped, err := EncodeRepliesSkipping(Version10, 9, r); err != nil || skipped != 0 {
		t.Errorf("1.0: skipped %d, err %v", skipped, err)
	}
}
