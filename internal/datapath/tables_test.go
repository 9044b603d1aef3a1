package datapath_test

import (
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
)

// TestFlowChangeAppliesToNextPacket checks that a flow added to table 0
// after packets of a flow were cached applies to the very next packet,
// and that the rule that sent packets to NORMAL counts every one of
// them, cache hits included.
func TestFlowChangeAppliesToNextPacket(t *testing.T) {
	ts := newTestSwitch(t, map[uint32]ofproto.PortVLAN{1: access(10), 2: access(10)})
	th := ts.dp.NewTestThread(1)
	batch := make([][]byte, datapath.BatchSize)
	for i := range batch {
		batch[i] = frame(bcast, macA, -1, 46)
	}
	th.Process(batch)
	th.Process(batch)
	if got := len(drain(ts.ports[2])); got != 2*datapath.BatchSize {
		t.Fatalf("%d frames forwarded, want %d", got, 2*datapath.BatchSize)
	}
	var normal *ofproto.Rule
	for _, fs := range ts.br.Tables.Dump(ofproto.Selector{Table: ofproto.TableAll}) {
		normal = fs.Rule
	}
	if p, b := normal.Counters(); p != 2*datapath.BatchSize || b != uint64(2*datapath.BatchSize*len(batch[0])) {
		t.Errorf("NORMAL rule counted %d packets, %d bytes; want %d, %d", p, b, 2*datapath.BatchSize, 2*datapath.BatchSize*len(batch[0]))
	}

	f, err := flow.ParseFlow("priority=10,dl_src=02:00:00:00:00:0a,actions=drop", flow.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.br.Tables.Add(f); err != nil {
		t.Fatal(err)
	}
	th.Process(batch[:1])
	if got := drain(ts.ports[2]); len(got) != 0 {
		t.Fatalf("%d frames forwarded after a drop flow was added", len(got))
	}
}
