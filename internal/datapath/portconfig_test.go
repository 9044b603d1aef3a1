package datapath_test

import (
	"testing"

	"gvs/internal/ofproto"
)

// TestPortConfigInvalidatesCache: the flows the datapath cached for a
// frame stop applying when a port's OpenFlow config bits change, and
// apply again when they are cleared, with no allocation per batch
// either way. On main there are no port config bits (no build there).
func TestPortConfigInvalidatesCache(t *testing.T) {
	ts := newTestSwitch(t, map[uint32]ofproto.PortVLAN{1: trunk(), 2: trunk(), 3: trunk()})
	th1 := ts.dp.NewTestThread(1)
	batch := [][]byte{frame(bcast, macA, -1, 46)}
	send := func(what string, want2, want3 int) {
		t.Helper()
		th1.Process(batch)
		th1.Process(batch) // the second from the cache
		if n := len(drain(ts.ports[2])); n != 2*want2 {
			t.Errorf("%s: port 2 got %d frames, want %d", what, n, 2*want2)
		}
		if n := len(drain(ts.ports[3])); n != 2*want3 {
			t.Errorf("%s: port 3 got %d frames, want %d", what, n, 2*want3)
		}
	}
	send("no bits", 1, 1)
	ts.br.SetPortConfig(2, ofproto.PortNoFwd)
	send("port 2 NO_FWD", 0, 1)
	ts.br.SetPortConfig(2, ofproto.PortNoFlood)
	send("port 2 NO_FLOOD", 0, 1)
	ts.br.SetPortConfig(2, 0)
	send("port 2 cleared", 1, 1)
	ts.br.SetPortConfig(1, ofproto.PortNoRecv)
	send("port 1 NO_RECV", 0, 0)
	if allocs := testing.AllocsPerRun(50, func() { th1.Process(batch) }); allocs != 0 {
		t.Errorf("%v allocations per batch dropped by NO_RECV", allocs)
	}
	ts.br.SetPortConfig(1, 0)
	send("port 1 cleared", 1, 1)
	ts.br.SetPortConfig(3, ofproto.PortNoFwd)
	th1.Process(batch)
	drain(ts.ports[2])
	if allocs := testing.AllocsPerRun(50, func() { th1.Process(batch) }); allocs != 0 {
		t.Errorf("%v allocations per batch with port 3 NO_FWD", allocs)
	}
	if n := len(drain(ts.ports[3])); n != 0 {
		t.Errorf("port 3 with NO_FWD got %d frames", n)
	}
}
