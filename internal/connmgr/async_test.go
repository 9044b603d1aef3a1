package connmgr

import (
	"testing"
	"time"

	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
	"gvs/internal/packet"
)

// TestGetAsyncDefaults checks the reply to OFPT_GET_ASYNC_REQUEST of a
// connection that set nothing: OVS 3.1's defaults, in the reasons each
// version names (a master gets packet-ins but invalid TTL, port status
// and its version's flow removals; a slave port status only).
// TestOpenFlowBadInput compares the same bytes with a running OVS.
func TestGetAsyncDefaults(t *testing.T) {
	s, _ := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version13, openflow.Version14, openflow.Version15)})
	for _, tc := range []struct {
		v             uint8
		master, slave openflow.AsyncMasks
	}{
		{openflow.Version13, openflow.AsyncMasks{0x3, 0x7, 0xf}, openflow.AsyncMasks{0, 0x7, 0}},
		{openflow.Version14, openflow.AsyncMasks{0x3b, 0x7, 0x3f}, openflow.AsyncMasks{0, 0x7, 0}},
		{openflow.Version15, openflow.AsyncMasks{0x3b, 0x7, 0x3f}, openflow.AsyncMasks{0, 0x7, 0}},
	} {
		f := dialService(t, s, tc.v)
		f.send(&openflow.GetAsyncRequest{})
		r, ok := f.next().(*openflow.GetAsyncReply)
		if !ok {
			t.Fatalf("version %#x: no get-async reply", tc.v)
		}
		if r.Master != tc.master || r.Slave != tc.slave {
			t.Errorf("version %#x: master %#x slave %#x, want %#x and %#x", tc.v, r.Master, r.Slave, tc.master, tc.slave)
		}
	}
}

// TestSetAsyncApplies checks that the masks a controller sets decide
// which packet-ins and flow-removed messages it gets, for its role, and
// that get-async reads them back: on the old code set-async was refused
// (OFPBRC_BAD_TYPE) and a slave never got a packet-in.
func TestSetAsyncApplies(t *testing.T) {
	path, ln := listenUnix(t)
	s, b := newTestService(t, &Info{FailMode: "secure", Controllers: []ControllerConfig{{Target: "unix:" + path}},
		Versions: openflow.VersionBitmap(openflow.Version13, openflow.Version14)})
	f := acceptController(t, ln, openflow.Version13)
	waitStatus(t, s, "connected", func(cs ControllerStatus) bool { return cs.Connected })
	sync := func() {
		t.Helper()
		f.send(&openflow.BarrierRequest{})
		if m, ok := f.next().(*openflow.BarrierReply); !ok {
			t.Fatalf("got %T, want the barrier reply", m)
		}
	}
	frame := make([]byte, 60)
	action := &ofproto.PacketIn{Reason: ofproto.ReasonAction, MaxLen: ofproto.NoBufferLen, InPort: 3}
	// gotPacketIn sends a packet-in and reports whether it arrived:
	// packet-ins have a queue of their own, so it may come before or
	// after the reply to a barrier sent next, or not at all.
	gotPacketIn := func() bool {
		t.Helper()
		s.PacketIn(action, frame)
		f.send(&openflow.BarrierRequest{})
		got, barrier := false, false
		for !got || !barrier {
			wait := 5 * time.Second
			if barrier {
				wait = 300 * time.Millisecond
			}
			_ = f.nc.SetReadDeadline(time.Now().Add(wait))
			msg, err := openflow.ReadMessage(f.nc, nil)
			if err != nil {
				if !barrier {
					t.Fatalf("no barrier reply: %v", err)
				}
				break
			}
			switch _, m, _ := openflow.Decode(msg); m.(type) {
			case *openflow.PacketIn:
				got = true
			case *openflow.BarrierReply:
				barrier = true
			default:
				t.Fatalf("unexpected %T", m)
			}
		}
		return got
	}
	sync()
	if !gotPacketIn() {
		t.Fatal("default: no packet-in for a controller action")
	}
	// Slave packet-ins on (action only), master ones off; flow removals
	// by delete off for the master.
	f.send(&openflow.SetAsync{Legacy: true, Props: []openflow.AsyncProp{
		{Kind: openflow.AsyncPacketIn, Slave: true, Mask: 1 << ofproto.ReasonAction},
		{Kind: openflow.AsyncPortStatus, Mask: 0x7},
		{Kind: openflow.AsyncFlowRemoved, Mask: 1 << ofproto.RemovedHardTimeout}}})
	f.send(&openflow.GetAsyncRequest{})
	r, ok := f.next().(*openflow.GetAsyncReply)
	if !ok {
		t.Fatal("no get-async reply")
	}
	if want := (openflow.AsyncMasks{0, 0x7, 0x2}); r.Master != want || r.Slave != (openflow.AsyncMasks{2}) {
		t.Fatalf("get-async after set-async: master %#x slave %#x", r.Master, r.Slave)
	}
	if gotPacketIn() {
		t.Error("a master with packet-ins off got one")
	}
	f.send(&openflow.RoleRequest{Role: roleSlave})
	if _, ok := f.next().(*openflow.RoleReply); !ok {
		t.Fatal("no role reply")
	}
	if !gotPacketIn() {
		t.Error("a slave with action packet-ins on got none")
	}
	f.send(&openflow.RoleRequest{Role: roleMaster})
	f.next()
	fl, err := flow.ParseFlow("priority=5,send_flow_rem,actions=drop", flow.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Tables.Add(fl); err != nil {
		t.Fatal(err)
	}
	s.flowsRemoved(s.tables.Delete(ofproto.Selector{Table: ofproto.TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})}))
	f.send(&openflow.BarrierRequest{})
	if m, ok := f.next().(*openflow.BarrierReply); !ok {
		t.Errorf("got %T before the barrier reply: a flow removal by delete the master turned off", m)
	}
}

// TestSetAsyncBadInput checks the errors of malformed asynchronous
// configurations, as OVS 3.1 sends them: a fixed body of the wrong
// length is OFPBRC_BAD_LEN; in 1.4 a property with reasons its version
// lacks is OFPACFC_INVALID, one of an unknown type OFPACFC_UNSUPPORTED
// and one of the wrong length OFPBPC_BAD_LEN (one past the message's
// end OFPBRC_BAD_LEN), an experimenter's OFPBPC_BAD_EXP_TYPE. Reasons a 1.3 body
// lacks are dropped, not refused.
func TestSetAsyncBadInput(t *testing.T) {
	s, _ := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version13, openflow.Version14)})
	cases := []struct {
		v    uint8
		body []byte // after the header
		want string
	}{
		{openflow.Version13, make([]byte, 20), "OFPBRC_BAD_LEN"},
		{openflow.Version13, append(make([]byte, 24), 0, 0, 0, 0), "OFPBRC_BAD_LEN"},
		{openflow.Version14, []byte{0, 1, 0, 8, 0, 0, 0, 0x40}, "OFPACFC_INVALID"},
		{openflow.Version14, []byte{0, 12, 0, 8, 0, 0, 0, 1}, "OFPACFC_UNSUPPORTED"},
		{openflow.Version14, []byte{0, 1, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, "OFPBPC_BAD_LEN"},
		{openflow.Version14, []byte{0, 1, 0, 8, 0, 0}, "OFPBRC_BAD_LEN"},
		{openflow.Version14, []byte{0xff, 0xff, 0, 16, 0, 0, 0x23, 0x20, 0, 0, 0, 1, 0, 0, 0, 1}, "OFPBPC_BAD_EXP_TYPE"},
	}
	for _, tc := range cases {
		f := dialService(t, s, tc.v)
		msg := append([]byte{tc.v, 28, 0, byte(8 + len(tc.body)), 0, 0, 0, 9}, tc.body...)
		if _, err := f.nc.Write(msg); err != nil {
			t.Fatal(err)
		}
		e, ok := f.next().(*openflow.ErrorMsg)
		if !ok {
			t.Errorf("version %#x body %x: no error", tc.v, tc.body)
			continue
		}
		if got := e.Err.Code.String(); got != tc.want {
			t.Errorf("version %#x body %x: %s, want %s", tc.v, tc.body, got, tc.want)
		}
	}
	// Unknown reasons in a 1.3 body are dropped.
	f := dialService(t, s, openflow.Version13)
	f.send(&openflow.SetAsync{Legacy: true, Props: []openflow.AsyncProp{{Kind: openflow.AsyncPacketIn, Mask: 0xff}}})
	f.send(&openflow.GetAsyncRequest{})
	_ = f.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r, ok := f.next().(*openflow.GetAsyncReply); !ok || r.Master[openflow.AsyncPacketIn] != 0x7 {
		t.Errorf("after a 1.3 mask of 0xff: %+v, want packet-in 0x7", r)
	}
}
