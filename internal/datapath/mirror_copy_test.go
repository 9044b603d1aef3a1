package datapath_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// nonBlockingMemory is a memory port that declares, as a kernel device
// does, that its WriteBatch never waits.
type nonBlockingMemory struct{ *netdev.Memory }

func (nonBlockingMemory) NonBlocking() {}

// mirrorSwitch is a bridge with access ports 1 and 2 (VLAN 10), memory
// ports, and port 3, the output of a select_all mirror that keeps snaplen
// bytes.
func mirrorSwitch(t *testing.T, dest netdev.Netdev, snaplen uint32) (*datapath.Datapath, *ofproto.MirrorStats, map[uint32]*netdev.Memory) {
	t.Helper()
	mems := map[uint32]*netdev.Memory{1: netdev.NewMemory("mc1", 64), 2: netdev.NewMemory("mc2", 64)}
	dp, stats := mirrorSwitchOf(t, [3]netdev.Netdev{mems[1], mems[2], dest}, snaplen)
	return dp, stats, mems
}

// mirrorSwitchOf is mirrorSwitch with the ports' devices given.
func mirrorSwitchOf(t testing.TB, ports [3]netdev.Netdev, snaplen uint32) (*datapath.Datapath, *ofproto.MirrorStats) {
	t.Helper()
	dp, stats, _ := mirrorSwitchBridge(t, ports, snaplen)
	return dp, stats
}

// mirrorSwitchBridge is mirrorSwitchOf that also returns the bridge, the
// ports' translator.
func mirrorSwitchBridge(t testing.TB, ports [3]netdev.Netdev, snaplen uint32) (*datapath.Datapath, *ofproto.MirrorStats, *ofproto.Bridge) {
	t.Helper()
	stats := &ofproto.MirrorStats{}
	dp, br := mirrorSwitchWith(t, ports, func(out *ofproto.Port) []*ofproto.Mirror {
		return []*ofproto.Mirror{{Name: "m0", All: true, OutPort: out, OutVLAN: -1, Snaplen: snaplen, Stats: stats}}
	})
	return dp, stats, br
}

// mirrorSwitchWith is mirrorSwitchBridge with the mirrors that mirrors
// makes for output port 3.
func mirrorSwitchWith(t testing.TB, ports [3]netdev.Netdev, mirrors func(out *ofproto.Port) []*ofproto.Mirror) (*datapath.Datapath, *ofproto.Bridge) {
	t.Helper()
	dp, br := datapath.New(), ofproto.NewBridge("br", 1024, 300)
	bcfg := &ofproto.Config{Ports: map[uint32]*ofproto.Port{}}
	dcfg := &datapath.Config{Ports: map[uint32]*datapath.Port{}}
	for i, dev := range ports {
		no := uint32(i + 1)
		p := &ofproto.Port{Name: dev.Name(), OFPort: no, DPPort: no, VLAN: access(10), MirrorOut: no == 3}
		bcfg.Ports[no] = p
		bcfg.Flood = append(bcfg.Flood, p)
		dcfg.Ports[no] = &datapath.Port{No: no, Name: p.Name, Dev: dev, Translator: br}
		t.Cleanup(func() { dev.Close() })
	}
	bcfg.Mirrors = mirrors(bcfg.Ports[3])
	br.SetConfig(bcfg)
	dp.SetConfigForTest(dcfg)
	return dp, br
}

// burst is n broadcasts of 100 bytes from A.
func burst(n int) [][]byte {
	frames := make([][]byte, n)
	for i := range frames {
		frames[i] = frame(bcast, macA, -1, 86)
	}
	return frames
}

// A destination that never waits gets its copies in the receiving
// thread's own batch: they are there when Process returns, and what the
// device refuses is charged to the mirror, never to the originals.
func TestMirrorCopiesInlineToNonBlockingDevice(t *testing.T) {
	datapath.SetCopyPauseForTest(t, 50*time.Millisecond) // longer than the checks below take
	dest := netdev.NewMemory("mc3", 4)                   // room for 4 copies only
	dp, stats, mems := mirrorSwitch(t, nonBlockingMemory{dest}, 60)
	th := dp.NewTestThread(1)
	th.Process(burst(10))

	if got := len(drain(mems[2])); got != 10 {
		t.Fatalf("port 2 got %d originals, want 10", got)
	}
	copies := drain(dest)
	if len(copies) != 4 {
		t.Fatalf("mirror output got %d copies, want the 4 it has room for", len(copies))
	}
	for _, c := range copies {
		if len(c) != 60 {
			t.Fatalf("copy of %d bytes, want 60 (snaplen)", len(c))
		}
	}
	if d, tr := stats.Copy.Dropped.Load(), stats.Copy.Truncated.Load(); d != 6 || tr != 10 {
		t.Fatalf("mirror counted %d dropped, %d truncated; want 6 and 10", d, tr)
	}
	if p := stats.Packets.Load(); p != 10 {
		t.Fatalf("mirror counted %d packets, want 10", p)
	}

	// The refusal pauses copies to that device for a moment: a batch
	// right after it loses its copies without trying the device, which
	// has room again, and the originals still go.
	th.Process(burst(2))
	if got, d := len(drain(dest)), stats.Copy.Dropped.Load(); got != 0 || d != 8 {
		t.Fatalf("during the pause: %d copies sent, %d dropped in all; want 0 and 8", got, d)
	}
	if got := len(drain(mems[2])); got != 2 {
		t.Fatalf("port 2 got %d originals during the pause, want 2", got)
	}
	time.Sleep(60 * time.Millisecond)
	th.Process(burst(2))
	if got := len(drain(dest)); got != 2 {
		t.Fatalf("after the pause the mirror output got %d copies, want 2", got)
	}
}

// A destination that may block (a pcap file) gets its copies through a
// copy queue with a sender of its own.
func TestMirrorCopiesQueuedToBlockingDevice(t *testing.T) {
	dest := netdev.NewMemory("mc3", 64)
	dp, stats, mems := mirrorSwitch(t, dest, 0)
	dp.NewTestThread(1).Process(burst(10))

	if got := len(drain(mems[2])); got != 10 {
		t.Fatalf("port 2 got %d originals, want 10", got)
	}
	for i := range 10 {
		c, ok := dest.Next(5 * time.Second)
		if !ok {
			t.Fatalf("copy %d never reached the mirror output", i)
		}
		if len(c) != 100 {
			t.Fatalf("copy of %d bytes, want the whole 100-byte frame", len(c))
		}
	}
	if d := stats.Copy.Dropped.Load(); d != 0 {
		t.Fatalf("mirror counted %d drops with room for every copy", d)
	}
}

// slowTunnel stands for a tunnel port whose sends take long (every frame
// a trip through the kernel's IP output): it never refuses a frame, as
// the raw socket does not, but each send waits until release is closed.
// It counts, as a tunnel port does, the copies the datapath dropped for
// it (netdev.CopyQueued).
type slowTunnel struct {
	*netdev.Memory
	release chan struct{}
	dropped atomic.Uint64
}

func (*slowTunnel) NonBlocking()              {}
func (s *slowTunnel) CountTxDropped(n uint64) { s.dropped.Add(n) }

func (s *slowTunnel) Transmit(b *netdev.Batch) (netdev.TxResult, error) {
	<-s.release
	return s.Memory.Transmit(b)
}

func (s *slowTunnel) WriteBatch(frames [][]byte) error {
	<-s.release
	return s.Memory.WriteBatch(frames)
}

func (s *slowTunnel) Stats() netdev.Stats {
	st := s.Memory.Stats()
	st.TxDropped += s.dropped.Load()
	return st
}

// A mirror into a tunnel that cannot keep up costs the mirrored
// traffic's thread nothing: it hands copies to the tunnel's copy queue
// and goes on, and what the queue has no room for is dropped and counted
// in the tunnel port's tx_dropped (and the mirror's), so that every copy
// is either sent or counted there.
func TestMirrorIntoSlowTunnelDoesNotWait(t *testing.T) {
	const batches, per = 20, 32
	dest := &slowTunnel{Memory: netdev.NewMemory("mst3", 4096), release: make(chan struct{})}
	out := netdev.NewMemory("mst2", 4096)
	dp, stats := mirrorSwitchOf(t, [3]netdev.Netdev{netdev.NewMemory("mst1", 64), out, dest}, 0)
	var once sync.Once
	release := func() { once.Do(func() { close(dest.release) }) }
	t.Cleanup(release) // before the ports close (cleanups run last first)

	th := dp.NewTestThread(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range batches {
			th.Process(burst(per))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the mirrored traffic's thread waited for the slow tunnel")
	}
	if got := len(drain(out)); got != batches*per {
		t.Fatalf("port 2 got %d originals, want %d", got, batches*per)
	}
	dropped := dest.Stats().TxDropped
	if dropped == 0 {
		t.Fatal("the tunnel port's tx_dropped counted no copies, though it took none")
	}
	if d := stats.Copy.Dropped.Load(); d != dropped {
		t.Fatalf("mirror counted %d dropped, tunnel port's tx_dropped %d", d, dropped)
	}

	release()
	sent := 0
	for deadline := time.Now().Add(10 * time.Second); sent+int(dropped) < batches*per && time.Now().Before(deadline); {
		if _, ok := dest.Next(100 * time.Millisecond); ok {
			sent++
		}
	}
	if sent+int(dropped) != batches*per {
		t.Fatalf("%d copies sent and %d dropped, want %d in all", sent, dropped, batches*per)
	}
	// The device counts a batch once all of it is queued: the last
	// frames may be read before.
	st := dest.Stats()
	for deadline := time.Now().Add(5 * time.Second); st.TxPackets < uint64(sent) && time.Now().Before(deadline); st = dest.Stats() {
		time.Sleep(time.Millisecond)
	}
	if st.TxPackets != uint64(sent) {
		t.Fatalf("tunnel port's tx_packets %d, want the %d copies sent", st.TxPackets, sent)
	}
}

// Two receive threads copy into one tunnel port's queue at once while
// its sender drains it with no lock (the race detector watches): every
// copy is sent or counted as dropped, in the tunnel port's tx_dropped
// and the mirror's, none twice.
func TestMirrorCopyQueueTwoProducers(t *testing.T) {
	const batches, per = 200, 32
	dest := &slowTunnel{Memory: netdev.NewMemory("mtp3", batches*per*2), release: make(chan struct{})}
	close(dest.release) // sends do not wait
	dp, stats := mirrorSwitchOf(t, [3]netdev.Netdev{netdev.NewMemory("mtp1", batches*per), netdev.NewMemory("mtp2", batches*per), dest}, 0)
	var wg sync.WaitGroup
	for _, in := range []uint32{1, 2} {
		th := dp.NewTestThread(in)
		wg.Go(func() {
			for range batches {
				th.Process(burst(per))
			}
		})
	}
	wg.Wait()
	want := uint64(2 * batches * per)
	var st netdev.Stats
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st = dest.Stats(); st.TxPackets+st.TxDropped >= want {
			break
		}
	}
	if st.TxPackets+st.TxDropped != want {
		t.Fatalf("%d copies sent and %d dropped, want %d in all", st.TxPackets, st.TxDropped, want)
	}
	if d := stats.Copy.Dropped.Load(); d != st.TxDropped {
		t.Errorf("mirror counted %d dropped, tunnel port's tx_dropped %d", d, st.TxDropped)
	}
	if got := uint64(len(drain(dest.Memory))); got != st.TxPackets {
		t.Errorf("%d copies reached the device, tx_packets %d", got, st.TxPackets)
	}
}

// batchTunnel is a tunnel-like port (its copies are queued) that records
// how many frames each Transmit carried.
type batchTunnel struct {
	*netdev.Memory
	mu    sync.Mutex
	sizes []int
}

func (*batchTunnel) NonBlocking()          {}
func (*batchTunnel) CountTxDropped(uint64) {}

func (b *batchTunnel) Transmit(bt *netdev.Batch) (netdev.TxResult, error) {
	b.mu.Lock()
	b.sizes = append(b.sizes, bt.Len())
	b.mu.Unlock()
	return b.Memory.Transmit(bt)
}

// The copy sender is woken once the receive thread's batch is written,
// not at its first copy: it finds the batch's copies all queued and sends
// them in one Transmit (one sendmmsg for a tunnel), after the originals.
func TestMirrorCopiesSentInBatches(t *testing.T) {
	dest := &batchTunnel{Memory: netdev.NewMemory("mcb3", 4096)}
	dp, _ := mirrorSwitchOf(t, [3]netdev.Netdev{netdev.NewMemory("mcb1", 64), netdev.NewMemory("mcb2", 4096), dest}, 0)
	th := dp.NewTestThread(1)
	for round := range 3 {
		th.Process(burst(datapath.BatchSize))
		for i := range datapath.BatchSize {
			if _, ok := dest.Next(5 * time.Second); !ok {
				t.Fatalf("round %d: copy %d never came", round, i)
			}
		}
		dest.mu.Lock()
		sizes := append([]int(nil), dest.sizes...)
		dest.sizes = dest.sizes[:0]
		dest.mu.Unlock()
		if len(sizes) != 1 || sizes[0] != datapath.BatchSize {
			t.Errorf("round %d: the copies went out in batches of %v, want one of %d", round, sizes, datapath.BatchSize)
		}
	}
}

// A tunnel's copy sender (SCHED_IDLE) that has not sent its waiting
// copies for CopyStarve, though the queue is far from full (a mirror of
// little traffic on a busy host), is boosted by the next copy: a copy
// waits for it a bounded time. Here the sender is held in its send.
func TestStarvedCopySenderBoosted(t *testing.T) {
	dest := &slowTunnel{Memory: netdev.NewMemory("msb3", 64), release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(dest.release) }) }
	t.Cleanup(release)
	dp, _ := mirrorSwitchOf(t, [3]netdev.Netdev{netdev.NewMemory("msb1", 64), netdev.NewMemory("msb2", 64), dest}, 0)
	th := dp.NewTestThread(1)
	before := datapath.CopySenderBoosts()
	start := time.Now()
	th.Process(burst(1)) // the sender takes it and waits in Transmit
	th.Process(burst(1)) // within CopyStarve: no boost
	if n := datapath.CopySenderBoosts() - before; n != 0 && time.Since(start) < datapath.CopyStarve {
		t.Fatalf("boosted %d times before the sender starved", n)
	}
	time.Sleep(2 * datapath.CopyStarve)
	th.Process(burst(1))
	th.Process(burst(1)) // boosted already: once
	if n := datapath.CopySenderBoosts() - before; n != 1 {
		t.Fatalf("datapath_mirror_copy_sender_boost counted %d, want 1", n)
	}
	release()
	for i := range 4 {
		if _, ok := dest.Next(5 * time.Second); !ok {
			t.Fatalf("copy %d never left", i)
		}
	}
}

// A copy that waits for a starved idle sender is not held up without
// bound when no more traffic comes to boost the sender: a timer does it
// (the last copy of a ping on a busy host waited for seconds before).
func TestStarvedCopySenderBoostedWithoutTraffic(t *testing.T) {
	dest := &slowTunnel{Memory: netdev.NewMemory("msb6", 64), release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(dest.release) }) }
	t.Cleanup(release)
	dp, _ := mirrorSwitchOf(t, [3]netdev.Netdev{netdev.NewMemory("msb4", 64), netdev.NewMemory("msb5", 64), dest}, 0)
	th := dp.NewTestThread(1)
	before := datapath.CopySenderBoosts()
	th.Process(burst(1)) // the sender takes it and waits in Transmit; nothing follows
	deadline := time.Now().Add(20 * datapath.CopyStarve)
	for datapath.CopySenderBoosts() == before && time.Now().Before(deadline) {
		time.Sleep(datapath.CopyStarve / 4)
	}
	if n := datapath.CopySenderBoosts() - before; n != 1 {
		t.Fatalf("datapath_mirror_copy_sender_boost counted %d with no traffic after the copy, want 1", n)
	}
	release()
	if _, ok := dest.Next(5 * time.Second); !ok {
		t.Fatal("the copy never left")
	}
}
