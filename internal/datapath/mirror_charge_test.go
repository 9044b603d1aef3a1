package datapath_test

import (
	"sync"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// refusingTunnel is a port whose copies are queued (netdev.CopyQueued),
// as a tunnel's are, and whose device refuses every frame; each send
// waits until release is closed, so that copies pile up in the queue.
type refusingTunnel struct {
	*netdev.Memory
	release chan struct{}
}

func (*refusingTunnel) NonBlocking()          {}
func (*refusingTunnel) CountTxDropped(uint64) {}

func (r *refusingTunnel) Transmit(b *netdev.Batch) (netdev.TxResult, error) {
	<-r.release
	return netdev.TxResult{Dropped: b.Len()}, nil
}

// The copy sender charges each mirror with the drops of its own copies,
// even when one batch of the sender carries copies of two mirrors that
// share an output port (it used to charge the whole batch's to the
// first copy's mirror).
func TestCopySenderChargesEachMirrorItsDrops(t *testing.T) {
	dest := &refusingTunnel{Memory: netdev.NewMemory("mch3", 64), release: make(chan struct{})}
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(dest.release) }) })
	m1, m2 := &ofproto.MirrorStats{}, &ofproto.MirrorStats{}
	dp, _ := mirrorSwitchWith(t, [3]netdev.Netdev{netdev.NewMemory("mch1", 64), netdev.NewMemory("mch2", 64), dest},
		func(out *ofproto.Port) []*ofproto.Mirror {
			return []*ofproto.Mirror{
				{Name: "m1", Src: map[uint32]bool{1: true}, OutPort: out, OutVLAN: -1, Stats: m1},
				{Name: "m2", Src: map[uint32]bool{2: true}, OutPort: out, OutVLAN: -1, Stats: m2},
			}
		})
	th1, th2 := dp.NewTestThread(1), dp.NewTestThread(2)
	// Copies of m1, m2, m1 in the queue, while the sender waits in its
	// first send.
	th1.Process(burst(4))
	th2.Process(burst(4))
	th1.Process(burst(4))
	release.Do(func() { close(dest.release) })
	deadline := time.Now().Add(5 * time.Second)
	for m1.Copy.Dropped.Load()+m2.Copy.Dropped.Load() < 12 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if d1, d2 := m1.Copy.Dropped.Load(), m2.Copy.Dropped.Load(); d1 != 8 || d2 != 4 {
		t.Fatalf("mirror m1 charged %d drops and m2 %d, want 8 and 4", d1, d2)
	}
}

// downHeld is a held-copies device that went down: a write takes none of
// its own frames and drops the copies held before it (HeldDropped), as
// a system port's transmit ring does when its flush meets ENETDOWN.
type downHeld struct {
	*heldMemory
}

func (d *downHeld) TransmitHeld(b *netdev.Batch) (netdev.TxResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.take >= 0 { // up: hold, as heldMemory does
		for _, f := range b.Frames {
			d.held = append(d.held, append([]byte(nil), f...))
		}
		return netdev.TxResult{Sent: b.Len(), Held: len(d.held)}, nil
	}
	n := len(d.held)
	d.held = d.held[:0]
	return netdev.TxResult{Dropped: b.Len(), HeldDropped: n}, nil
}

// Copies held for one mirror that a later write of another mirror's
// copies drops are charged to the mirror whose copies they were, as
// COMPATIBILITY says (the copies last held before that write), not to
// the mirror of the write that met the drop.
func TestHeldCopiesDroppedAreChargedToTheirMirror(t *testing.T) {
	if d1, d2 := heldMirrorsDropped(t, "mhd", nil); d1 != 4 || d2 != 3 {
		t.Fatalf("mirror m1 charged %d drops and m2 %d, want 4 and 3", d1, d2)
	}
}

// A mirror deleted while its copies are held is charged nothing more
// once the datapath forgets its counters (ForgetCopyStats, which the
// reconfiguration calls): a drop of the held frames is counted in the
// port's tx_dropped only, not in counters of a row that is gone.
func TestHeldCopiesOfADeletedMirrorAreNotCharged(t *testing.T) {
	forget := func(dp *datapath.Datapath, m1 *ofproto.MirrorStats) { dp.ForgetCopyStats(&m1.Copy) }
	if d1, d2 := heldMirrorsDropped(t, "mhf", forget); d1 != 0 || d2 != 3 {
		t.Fatalf("deleted mirror m1 charged %d drops and m2 %d, want 0 and 3", d1, d2)
	}
}

// heldMirrorsDropped holds 4 copies of mirror m1 (of port 1) in port 3's
// device, runs between (if set), takes the device down and has port 2's
// thread send 3 copies of mirror m2 there: they are refused, and m1's
// held ones dropped. It returns the drops charged to m1 and to m2.
func heldMirrorsDropped(t *testing.T, prefix string, between func(*datapath.Datapath, *ofproto.MirrorStats)) (d1, d2 uint64) {
	t.Helper()
	datapath.SetHeldMaxAgeForTest(t, time.Minute)
	dest := &downHeld{&heldMemory{Memory: netdev.NewMemory(prefix+"3", 256)}}
	m1, m2 := &ofproto.MirrorStats{}, &ofproto.MirrorStats{}
	dp, _ := mirrorSwitchWith(t, [3]netdev.Netdev{netdev.NewMemory(prefix+"1", 64), netdev.NewMemory(prefix+"2", 64), dest},
		func(out *ofproto.Port) []*ofproto.Mirror {
			return []*ofproto.Mirror{
				{Name: "m1", Src: map[uint32]bool{1: true}, OutPort: out, OutVLAN: -1, Stats: m1},
				{Name: "m2", Src: map[uint32]bool{2: true}, OutPort: out, OutVLAN: -1, Stats: m2},
			}
		})
	th1, th2 := dp.NewTestThread(1), dp.NewTestThread(2)
	th1.Process(burst(4))
	if _, held := dest.state(); held != 4 {
		t.Fatalf("%d copies held, want m1's 4", held)
	}
	if between != nil {
		between(dp, m1)
	}
	dest.mu.Lock()
	dest.take = -1 // the device goes down
	dest.mu.Unlock()
	th2.Process(burst(3))
	return m1.Copy.Dropped.Load(), m2.Copy.Dropped.Load()
}
