package ofproto

import (
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// packetOutActions translates a packet-out of s's frame that entered on
// OpenFlow port inPort with the actions of text.
func packetOutActions(t *testing.T, b *Bridge, inPort uint32, text string, s frameSpec) (string, error) {
	t.Helper()
	acts, err := flow.ParseActions(text, nil)
	if err != nil {
		t.Fatalf("%s: %v", text, err)
	}
	tr, dp, err := b.PacketOut(inPort, acts)
	if err != nil {
		return "", err
	}
	pkt := &datapath.Packet{Frame: s.bytes(), InPort: dp}
	_ = packet.Parse(pkt.Frame, dp, &pkt.Key.Key, &pkt.Off)
	x := &datapath.Xlate{}
	tr.Translate(pkt, x)
	return datapath.FormatActions(x.Actions, nil), nil
}

// TestPacketOutThroughPipeline checks that a packet-out's actions act as
// a rule's: resubmit and TABLE reach the flow tables with the packet-out's
// in_port, outputs to that port need IN_PORT, NORMAL from the
// controller (no port) drops as in OVS, and an unknown port or an action
// gvs cannot execute is an error.
func TestPacketOutThroughPipeline(t *testing.T) {
	b := ofBridge(t)
	addFlow(t, b, "in_port=1,actions=output:2")
	addFlow(t, b, "in_port=CONTROLLER,actions=output:4")
	addFlow(t, b, "table=1,in_port=1,actions=output:3,output:1")
	s := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}
	for _, tc := range []struct {
		in         uint32
		acts, want string
	}{
		{1, "resubmit(,1)", "3"},
		{1, "table", "2"},
		{flow.PortController, "table", "4"},
		{flow.PortController, "output:1,output:3", "1,3"},
		{1, "output:1,IN_PORT", "1"},
		{1, "NORMAL", "2,3,4,5"},
		{flow.PortController, "NORMAL", "drop"},
		{1, "mod_dl_dst:02:00:00:00:00:99,resubmit(,1)", "set(eth(dst=02:00:00:00:00:99)),3"},
	} {
		got, err := packetOutActions(t, b, tc.in, tc.acts, s)
		if err != nil || got != tc.want {
			t.Errorf("in_port=%d actions=%s: %s %v, want %s", tc.in, tc.acts, got, err, tc.want)
		}
	}
	if _, err := packetOutActions(t, b, 9, "output:2", s); err == nil {
		t.Error("a packet-out from a port the bridge does not have was accepted")
	}
	if _, err := packetOutActions(t, b, 1, "output:NXM_NX_PKT_MARK[0..15]", s); err == nil {
		t.Error("a packet-out with an action gvs cannot execute was accepted")
	}
}
