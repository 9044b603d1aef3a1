package connmgr

import (
	"fmt"
	"net"
	"testing"
	"time"

	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
	"gvs/internal/packet"
)

// dialService connects to a service's management socket and says hello
// in version v, reading the switch's hello.
func dialService(t *testing.T, s *Service, v uint8) *fakeController {
	t.Helper()
	nc, err := net.Dial("unix", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	f := &fakeController{t: t, nc: nc, v: v}
	f.send(&openflow.Hello{Versions: openflow.VersionBitmap(v)})
	if _, ok := f.next().(*openflow.Hello); !ok {
		t.Fatal("the switch's first message is not a hello")
	}
	return f
}

// TestSlowPeerDoesNotHoldFlowRemoval: a peer on the management socket
// that asks for asynchronous messages and never reads must not hold up
// the deletion of flows that report their removal (an ovs-ofctl
// del-flows, the once-a-second expiry), nor the inactivity probes that
// run with it: only its own messages wait or are dropped.
func TestSlowPeerDoesNotHoldFlowRemoval(t *testing.T) {
	s, b := newTestService(t, &Info{})
	const n = 20000 // far more flow-removed messages than a socket buffer holds
	for i := 0; i < n; i++ {
		f, err := flow.ParseFlow(fmt.Sprintf("priority=%d,reg0=%d,send_flow_rem,actions=drop", 1+i%100, i), flow.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tables.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	slow := dialService(t, s, openflow.Version10)
	slow.send(&openflow.SetConfig{MissSendLen: 128})
	// The slow peer's SetConfig has been handled once its echo is answered.
	slow.send(&openflow.EchoRequest{})
	if _, ok := slow.next().(*openflow.EchoReply); !ok {
		t.Fatal("no echo reply")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		all := ofproto.Selector{Table: ofproto.TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})}
		s.flowsRemoved(s.tables.Delete(all))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("deleting flows is stuck writing flow-removed messages to a peer that does not read")
	}
	// Another peer is still served.
	fast := dialService(t, s, openflow.Version13)
	fast.send(&openflow.EchoRequest{})
	if _, ok := fast.next().(*openflow.EchoReply); !ok {
		t.Fatal("no echo reply on another connection")
	}
}

// TestIdlePeersDoNotLockOutOfctl: MaxConns idle peers on the management
// socket (a hello, then nothing) refused every further connection, so
// ovs-ofctl was locked out for as long as they stayed. A new connection
// at the limit now takes the place of the service connection idle
// longest.
func TestIdlePeersDoNotLockOutOfctl(t *testing.T) {
	s, _ := newTestService(t, &Info{})
	idle := make([]*fakeController, MaxConns)
	for i := range idle {
		idle[i] = dialService(t, s, openflow.Version13)
	}
	for range 3 {
		f := dialService(t, s, openflow.Version13)
		f.send(&openflow.EchoRequest{})
		if _, ok := f.next().(*openflow.EchoReply); !ok {
			t.Fatal("no echo reply past the limit of idle connections")
		}
	}
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	if n > MaxConns {
		t.Fatalf("%d connections served, limit %d", n, MaxConns)
	}
	// The one idle longest went.
	_ = idle[0].nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := openflow.ReadMessage(idle[0].nc, nil); err == nil {
		t.Fatal("the connection idle longest is still served")
	}
}
