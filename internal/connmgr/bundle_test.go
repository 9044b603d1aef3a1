package connmgr

import (
	"runtime"
	"testing"
	"time"

	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

func bundleFlowMod(t *testing.T, table uint8, prio uint16) []byte {
	t.Helper()
	b, err := openflow.Encode(openflow.Version14, 1, &openflow.FlowMod{TableID: table, Command: openflow.FlowAdd,
		Priority: prio, BufferID: openflow.NoBuffer, OutPort: openflow.PortAny, OutGroup: openflow.PortAny})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// wantError reads the next message and checks it is the error code.
func wantError(t *testing.T, f *fakeController, code openflow.ErrCode) {
	t.Helper()
	m := f.next()
	e, ok := m.(*openflow.ErrorMsg)
	if !ok || e.Err.Code != code {
		t.Fatalf("got %T %+v, want error %v", m, m, code)
	}
}

func wantControl(t *testing.T, f *fakeController, typ uint16) {
	t.Helper()
	m := f.next()
	if c, ok := m.(*openflow.BundleControl); !ok || c.Type != typ {
		t.Fatalf("got %T %+v, want bundle control type %d", m, m, typ)
	}
}

func flowsIn(s *Service, table uint8) int {
	return len(s.tables.Dump(ofproto.Selector{Table: table}))
}

// TestBundleAtomicAndBounded: a bundle's flow mods change nothing until
// its commit, every misuse gets its OFPBFC error, and what bundles hold
// is bounded and given back.
func TestBundleAtomicAndBounded(t *testing.T) {
	s, _ := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version13, openflow.Version14, openflow.Version15)})
	f := dialService(t, s, openflow.Version14)
	const flags = openflow.BundleAtomic | openflow.BundleOrdered
	ctl := func(id uint32, typ uint16) { f.send(&openflow.BundleControl{BundleID: id, Type: typ, Flags: flags}) }

	ctl(1, openflow.BundleOpenRequest)
	wantControl(t, f, openflow.BundleOpenReply)
	ctl(1, openflow.BundleOpenRequest)
	wantError(t, f, openflow.ErrBundleExist)
	f.send(&openflow.BundleAdd{BundleID: 1, Flags: flags, Message: bundleFlowMod(t, 3, 7)})
	f.send(&openflow.BundleAdd{BundleID: 1, Flags: openflow.BundleAtomic, Message: bundleFlowMod(t, 3, 8)})
	wantError(t, f, openflow.ErrBundleBadFlags)
	echo, _ := openflow.Encode(openflow.Version14, 1, &openflow.EchoRequest{})
	f.send(&openflow.BundleAdd{BundleID: 1, Flags: flags, Message: echo})
	wantError(t, f, openflow.ErrBundleMsgUnsup)
	otherXid, _ := openflow.Encode(openflow.Version14, 2, &openflow.BarrierRequest{})
	f.send(&openflow.BundleAdd{BundleID: 1, Flags: flags, Message: otherXid})
	wantError(t, f, openflow.ErrBundleMsgBadXid)
	f.send(&openflow.BarrierRequest{})
	if _, ok := f.next().(*openflow.BarrierReply); !ok {
		t.Fatal("no barrier reply")
	}
	if n := flowsIn(s, 3); n != 0 {
		t.Fatalf("%d flows in table 3 before the commit", n)
	}
	ctl(1, openflow.BundleCloseRequest)
	wantControl(t, f, openflow.BundleCloseReply)
	f.send(&openflow.BundleAdd{BundleID: 1, Flags: flags, Message: bundleFlowMod(t, 3, 9)})
	wantError(t, f, openflow.ErrBundleClosed)
	ctl(1, openflow.BundleCommitRequest)
	wantControl(t, f, openflow.BundleCommitReply)
	if n := flowsIn(s, 3); n != 1 {
		t.Fatalf("%d flows in table 3 after the commit, want 1", n)
	}
	ctl(1, openflow.BundleCommitRequest)
	wantError(t, f, openflow.ErrBundleBadID)
	f.send(&openflow.BundleControl{BundleID: 1, Type: 99, Flags: flags})
	wantError(t, f, openflow.ErrBundleBadType)

	// Bounded: bundles per connection, messages in them.
	for id := uint32(10); id < 10+maxBundles; id++ {
		ctl(id, openflow.BundleOpenRequest)
		wantControl(t, f, openflow.BundleOpenReply)
	}
	ctl(100, openflow.BundleOpenRequest)
	wantError(t, f, openflow.ErrBundleOutOfBundles)
	f.send(&openflow.BundleAdd{BundleID: 100, Flags: flags, Message: bundleFlowMod(t, 4, 1)})
	wantError(t, f, openflow.ErrBundleOutOfBundles)
	old := maxBundleMsgs
	maxBundleMsgs = 2
	defer func() { maxBundleMsgs = old }()
	f.send(&openflow.BundleAdd{BundleID: 10, Flags: flags, Message: bundleFlowMod(t, 4, 1)})
	f.send(&openflow.BundleAdd{BundleID: 11, Flags: flags, Message: bundleFlowMod(t, 4, 2)})
	f.send(&openflow.BundleAdd{BundleID: 10, Flags: flags, Message: bundleFlowMod(t, 4, 3)})
	wantError(t, f, openflow.ErrBundleMsgTooMany)
	ctl(10, openflow.BundleDiscardRequest)
	wantControl(t, f, openflow.BundleDiscardReply)
	f.send(&openflow.BundleAdd{BundleID: 12, Flags: flags, Message: bundleFlowMod(t, 4, 3)})
	f.send(&openflow.BarrierRequest{})
	if m, ok := f.next().(*openflow.BarrierReply); !ok {
		t.Fatalf("a discard gives its room back: got %+v", m)
	}
	if allBundleBytes.Load() == 0 {
		t.Fatal("open bundles hold no bytes in the shared count")
	}
	// A connection that ends gives back what its bundles held.
	f.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for allBundleBytes.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bundle bytes held after the connection ended", allBundleBytes.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := flowsIn(s, 4); n != 0 {
		t.Fatalf("%d flows in table 4 from uncommitted bundles", n)
	}
}

// TestBundleCommitFailsWhole: when one flow mod fails at commit, none
// stays, and the peer hears that message's error and OFPBFC_MSG_FAILED.
func TestBundleCommitFailsWhole(t *testing.T) {
	s, _ := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version15)})
	f := dialService(t, s, openflow.Version15)
	const flags = openflow.BundleAtomic
	mod := func(prio uint16, overlap bool) []byte {
		fm := &openflow.FlowMod{TableID: 5, Command: openflow.FlowAdd, Priority: prio, BufferID: openflow.NoBuffer}
		if overlap {
			// ip overlaps the catch-all of the same priority.
			ip, err := openflow.NewField("OXM_OF_ETH_TYPE", []byte{8, 0}, nil)
			if err != nil {
				t.Fatal(err)
			}
			fm.Flags, fm.Match = openflow.FlagCheckOverlap, []openflow.Field{ip}
		}
		b, err := openflow.Encode(openflow.Version15, 1, fm)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	f.send(&openflow.BundleAdd{BundleID: 7, Flags: flags, Message: mod(1, false)})
	f.send(&openflow.BundleAdd{BundleID: 7, Flags: flags, Message: mod(2, false)})
	f.send(&openflow.BundleAdd{BundleID: 7, Flags: flags, Message: mod(2, true)})
	f.send(&openflow.BundleControl{BundleID: 7, Type: openflow.BundleCommitRequest, Flags: flags})
	wantError(t, f, openflow.ErrFlowOverlap)
	wantError(t, f, openflow.ErrBundleMsgFailed)
	if n := flowsIn(s, 5); n != 0 {
		t.Fatalf("%d flows in table 5 after a failed commit", n)
	}
}

// TestBundleMemoryWithinItsLimit: what a bundle holds is charged as
// the memory it takes, not only its messages' bytes. A 56-byte flow mod
// held 968 bytes once decoded, so with the wire bytes alone the limit
// of all bundles let them hold 17 times as much.
func TestBundleMemoryWithinItsLimit(t *testing.T) {
	const limit = 4 << 20
	old := maxAllBundleBytes
	maxAllBundleBytes = limit
	defer func() { maxAllBundleBytes = old }()
	s, _ := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version14)})
	f := dialService(t, s, openflow.Version14)
	const flags = openflow.BundleAtomic | openflow.BundleOrdered
	f.send(&openflow.BundleControl{BundleID: 1, Type: openflow.BundleOpenRequest, Flags: flags})
	wantControl(t, f, openflow.BundleOpenReply)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	added := 0
	for i := range 200_000 {
		f.send(&openflow.BundleAdd{BundleID: 1, Flags: flags, Message: bundleFlowMod(t, 3, uint16(i))})
		if i%1000 != 999 {
			continue
		}
		// A barrier every thousand adds: an error before its reply
		// means the limit was reached.
		f.send(&openflow.BarrierRequest{})
		if m := f.next(); m != nil {
			if e, ok := m.(*openflow.ErrorMsg); ok {
				if e.Err.Code != openflow.ErrBundleMsgTooMany {
					t.Fatalf("error %v, want OFPBFC_MSG_TOO_MANY", e.Err.Code)
				}
				added = i
				break
			}
		}
	}
	if added == 0 {
		t.Fatal("200,000 flow mods added to a bundle without reaching the limit")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grew := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d flow mods added before the limit; heap grew %d KiB for a limit of %d KiB", added, grew>>10, limit>>10)
	if grew > 2*limit {
		t.Errorf("bundles grew the heap by %d KiB, limit %d KiB", grew>>10, limit>>10)
	}
}
