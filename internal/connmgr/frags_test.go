package connmgr

import (
	"testing"

	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// TestFragModeIsTheBridges checks that the fragment mode set by one
// connection is what every other connection reads (ovs-ofctl set-frags
// then get-frags over two connections, as against OVS), that it reaches
// the bridge, that miss_send_len stays each connection's own, and that
// reassemble leaves the mode as it was. On the old code, which kept the
// flags per connection, the second connection read normal.
func TestFragModeIsTheBridges(t *testing.T) {
	s, b := newTestService(t, &Info{})
	a := dialService(t, s, openflow.Version13)
	c := dialService(t, s, openflow.Version10)
	getConfig := func(f *fakeController) *openflow.GetConfigReply {
		t.Helper()
		f.send(&openflow.GetConfigRequest{})
		r, ok := f.next().(*openflow.GetConfigReply)
		if !ok {
			t.Fatal("no get-config reply")
		}
		return r
	}
	// set-config has no reply: a barrier on the setting connection says
	// it was applied before the other connection reads (each connection
	// has its own goroutine).
	setConfig := func(f *fakeController, m *openflow.SetConfig) {
		t.Helper()
		f.send(m)
		f.send(&openflow.BarrierRequest{})
		if r, ok := f.next().(*openflow.BarrierReply); !ok {
			t.Fatalf("got %T, want the barrier reply", r)
		}
	}
	setConfig(a, &openflow.SetConfig{Flags: uint16(ofproto.FragDrop), MissSendLen: 200})
	if r := getConfig(c); r.Flags != uint16(ofproto.FragDrop) || r.MissSendLen != 0 {
		t.Errorf("other connection reads flags %#x miss_send_len %d, want drop (1) and its own 0", r.Flags, r.MissSendLen)
	}
	if r := getConfig(a); r.Flags != uint16(ofproto.FragDrop) || r.MissSendLen != 200 {
		t.Errorf("setting connection reads flags %#x miss_send_len %d, want 1 and 200", r.Flags, r.MissSendLen)
	}
	if b.FragMode() != ofproto.FragDrop {
		t.Errorf("bridge mode %v, want drop", b.FragMode())
	}
	setConfig(c, &openflow.SetConfig{Flags: uint16(ofproto.FragReassemble)})
	if r := getConfig(a); r.Flags != uint16(ofproto.FragDrop) {
		t.Errorf("after reassemble: flags %#x, want drop kept", r.Flags)
	}
	setConfig(c, &openflow.SetConfig{Flags: uint16(ofproto.FragNXMatch)})
	if r := getConfig(a); r.Flags != uint16(ofproto.FragNXMatch) {
		t.Errorf("after nx-match: flags %#x", r.Flags)
	}
}
