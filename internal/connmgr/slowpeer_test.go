package connmgr

import (
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
	"gvs/internal/packet"
)

// dialService connects to a service's management socket and says hello
// in version v, reading the switch's hello.
func dialService(t testing.TB, s *Service, v uint8) *fakeController {
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

// slowPeerWithRemovals gives b n flows that report their removal, and
// connects a peer to s that asks for asynchronous messages and then
// reads nothing.
func slowPeerWithRemovals(t *testing.T, s *Service, b *ofproto.Bridge, n int) {
	t.Helper()
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
}

// TestSlowPeerDoesNotHoldFlowRemoval: a peer on the management socket
// that asks for asynchronous messages and never reads must not hold up
// the deletion of flows that report their removal (an ovs-ofctl
// del-flows, the once-a-second expiry), nor the inactivity probes that
// run with it: only its own messages wait or are dropped.
func TestSlowPeerDoesNotHoldFlowRemoval(t *testing.T) {
	s, b := newTestService(t, &Info{})
	// Far more flow-removed messages than a socket buffer holds.
	slowPeerWithRemovals(t, s, b, 20000)
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

// queuedBytes returns what the connections of s have queued.
func queuedBytes(s *Service) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.out.mu.Lock()
		n += c.out.bytes
		c.out.mu.Unlock()
	}
	return n
}

// TestOutputBoundedAcrossBridges: each connection's queue is bounded
// (4 MiB), but a peer that does not read on each of 1,024 bridges'
// 32 controller connections held hundreds of GiB; what all connections
// queue is bounded together (OutputMemory), and past it flow-removed
// messages are dropped as overflow.
func TestOutputBoundedAcrossBridges(t *testing.T) {
	const budget = 1 << 20
	old := outMemBudget.Load()
	outMemBudget.Store(budget)
	t.Cleanup(func() { outMemBudget.Store(old) })
	drops := asyncDrops.Total()
	var services []*Service
	for i := range 4 {
		name := fmt.Sprintf("br%d", i)
		b := ofproto.NewBridge(name, 64, 300)
		s, err := Listen(filepath.Join(testRundir(t), name+".mgmt"), b, &Info{Versions: openflow.VersionBitmap(openflow.Version10)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		// More flow-removed messages (88 bytes each) than a queue holds.
		slowPeerWithRemovals(t, s, b, 50000)
		all := ofproto.Selector{Table: ofproto.TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})}
		s.flowsRemoved(s.tables.Delete(all))
		services = append(services, s)
	}
	// What is queued at one moment: summed bridge by bridge as they
	// were filled, a peer dropped by the write timeout meanwhile (the
	// steps take longer than it under -race) gave its share to the next.
	total := 0
	for _, s := range services {
		total += queuedBytes(s)
	}
	if used := outMemUsed.Load(); used > budget+64<<10 {
		t.Errorf("%d KiB charged to the shared budget, budget %d KiB", used>>10, budget>>10)
	}
	t.Logf("4 bridges with a peer that does not read: %d KiB queued, budget %d KiB", total>>10, budget>>10)
	if total > budget+64<<10 {
		t.Errorf("%d KiB queued for 4 peers, budget %d KiB", total>>10, budget>>10)
	}
	if asyncDrops.Total() == drops {
		t.Error("no flow-removed message counted as dropped past the budget")
	}
}

// TestAsyncToEndingConnNotADrop: an asynchronous message for a
// connection that is ending is not an overflow: ofconn_async_drop
// counts only those, ofconn_async_closed the others.
func TestAsyncToEndingConnNotADrop(t *testing.T) {
	s, _ := newTestService(t, &Info{})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	c := newConn(s, a)
	c.version = openflow.Version10
	c.out.close(false)
	drops, closed := asyncDrops.Total(), asyncClosed.Total()
	c.sendAsync(&openflow.EchoRequest{})
	if asyncDrops.Total() != drops {
		t.Error("a message for an ending connection counted as ofconn_async_drop")
	}
	if asyncClosed.Total() != closed+1 {
		t.Error("a message for an ending connection not counted as ofconn_async_closed")
	}
}

var dumpAll = &openflow.FlowStatsRequest{TableID: ofproto.TableAll, OutPort: openflow.PortAny, OutGroup: 0xffffffff}

// addDumpFlows gives b n flows with a few actions each.
func addDumpFlows(t testing.TB, b *ofproto.Bridge, n int) {
	t.Helper()
	for i := range n {
		f, err := flow.ParseFlow(fmt.Sprintf("priority=%d,ip,reg0=%d,nw_dst=10.%d.%d.0/24,actions=load:0x%x->NXM_NX_REG1[],mod_nw_tos:8,output:%d",
			1+i%100, i, i>>8&255, i&255, i, 1+i%7), flow.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Tables.Add(f); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFlowDumpsBoundedByOutputBudget: a flow dump was encoded whole and
// queued at once when its connection's queue was empty, outside both
// the connection's 4 MiB and the shared budget: peers that ask for
// dumps of a large table and do not read held a whole dump each. A dump
// is now streamed as its peer reads, its snapshot of the flows charged
// to the shared budget, so gvsd's heap grows by about the budget,
// whatever the number of such peers; and a peer that reads still gets
// every flow.
func TestFlowDumpsBoundedByOutputBudget(t *testing.T) {
	const budget = 8 << 20
	old := outMemBudget.Load()
	outMemBudget.Store(budget)
	t.Cleanup(func() { outMemBudget.Store(old) })
	s, b := newTestService(t, &Info{})
	const nflows = 30000
	addDumpFlows(t, b, nflows)
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before := heap()
	const peers = 8
	for range peers {
		slow := dialService(t, s, openflow.Version13)
		slow.send(dumpAll) // and never read
	}
	// The dumps are taken and queued (or wait for room): nothing queued
	// changes any more.
	last, stable := int64(-1), 0
	for deadline := time.Now().Add(10 * time.Second); stable < 5 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if used := outMemUsed.Load(); used == last && used > 0 {
			stable++
		} else {
			last, stable = used, 0
		}
	}
	grown := int64(heap()) - int64(before)
	t.Logf("%d peers dumping %d flows without reading: heap grew %d KiB, %d KiB charged, budget %d KiB",
		peers, nflows, grown>>10, outMemUsed.Load()>>10, budget>>10)
	// Beyond the budget, per connection: one message waiting for room,
	// the one being encoded (its buffer up to 128 KiB), a batch of
	// flows, its 64 KiB read buffer: about 300 KiB, with room for the
	// race detector's noise (the old code grew by 36 MiB here).
	if limit := int64(budget + peers*768<<10); grown > limit {
		t.Errorf("%d peers dumping without reading grew the heap by %d KiB, more than the budget (%d KiB) allows",
			peers, grown>>10, budget>>10)
	}
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close() // the slow peers go: their dumps end
	}
	s.mu.Unlock()
	// A peer that reads gets every flow, in messages flagged "more"
	// but the last.
	fast := dialService(t, s, openflow.Version13)
	fast.send(dumpAll)
	got := 0
	for {
		r, ok := fast.next().(*openflow.FlowStatsReply)
		if !ok {
			t.Fatal("the dump's reply is not a flow stats reply")
		}
		got += len(r.Flows)
		if r.Flags&openflow.ReplyMore == 0 {
			break
		}
	}
	if want := b.Tables.NumFlows(); got != want {
		t.Errorf("a dump read to its end has %d flows, want %d", got, want)
	}
}

// TestFlowDumpRefusedPastTheBudget: a dump whose snapshot of the flows
// the shared budget cannot take is refused with an OpenFlow error
// (OFPBRC_EPERM) that says why, not queued past the budget.
func TestFlowDumpRefusedPastTheBudget(t *testing.T) {
	old := outMemBudget.Load()
	outMemBudget.Store(256 << 10)
	t.Cleanup(func() { outMemBudget.Store(old) })
	s, b := newTestService(t, &Info{})
	addDumpFlows(t, b, 10000) // a snapshot of about 700 KiB
	refused := dumpRefused.Total()
	f := dialService(t, s, openflow.Version13)
	f.send(dumpAll)
	e, ok := f.next().(*openflow.ErrorMsg)
	if !ok || e.Err.Code != openflow.ErrEPerm {
		t.Fatalf("a dump past the budget: %#v, want an OFPBRC_EPERM error", e)
	}
	if dumpRefused.Total() != refused+1 {
		t.Error("the refused dump is not counted as ofconn_dump_refused")
	}
}
