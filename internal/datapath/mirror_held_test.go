package datapath_test

import (
	"sync"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
)

// heldMemory is a memory port whose device can hold frames for one send,
// as a system port's transmit ring does: it counts the sends.
type heldMemory struct {
	*netdev.Memory
	mu    sync.Mutex // the port's copy sender kicks too
	held  [][]byte
	sends int
	// take, if > 0, is how many held frames a Kick sends at most (the
	// kernel's socket buffer fills); the rest stay held.
	take int // < 0: none at all
	// gate, if set, holds every Kick until it is closed: a kick run by
	// the caller itself then blocks it.
	gate chan struct{}
}

// state returns how many sends there were and how many frames are held.
func (h *heldMemory) state() (sends, held int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sends, len(h.held)
}

// waitSends waits, boundedly, for the n-th send.
func (h *heldMemory) waitSends(n int) int {
	for range 2000 {
		if s, _ := h.state(); s >= n {
			return s
		}
		time.Sleep(time.Millisecond)
	}
	s, _ := h.state()
	return s
}

func (*heldMemory) NonBlocking() {}

func (h *heldMemory) Transmit(b *netdev.Batch) (netdev.TxResult, error) {
	_, _ = h.TransmitHeld(b)
	h.Kick()
	return netdev.TxResult{Sent: b.Len()}, nil
}

func (h *heldMemory) TransmitHeld(b *netdev.Batch) (netdev.TxResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, f := range b.Frames {
		h.held = append(h.held, append([]byte(nil), f...))
	}
	return netdev.TxResult{Sent: b.Len()}, nil
}

func (h *heldMemory) DropHeld() netdev.TxResult {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.held)
	h.held = h.held[:0]
	return netdev.TxResult{HeldDropped: n}
}

func (h *heldMemory) Kick() netdev.TxResult {
	if h.gate != nil {
		<-h.gate
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.held) == 0 {
		return netdev.TxResult{}
	}
	n := len(h.held)
	if h.take > 0 {
		n = min(n, h.take)
	}
	if h.take >= 0 {
		h.sends++
		_ = h.Memory.WriteBatch(h.held[:n])
		h.held = append(h.held[:0], h.held[n:]...)
	}
	return netdev.TxResult{Held: len(h.held)}
}

// Mirror copies to a device that can hold them leave in one send for
// several receive batches: when the thread would wait for frames, and
// never later than a batch's worth of copies or 100 µs, when the port's
// copy sender sends them.
func TestMirrorCopiesHeldForOneSend(t *testing.T) {
	datapath.SetHeldMaxAgeForTest(t, time.Minute) // the age bound is checked last
	dest := &heldMemory{Memory: netdev.NewMemory("mh3", 256)}
	dp, _, mems := mirrorSwitch(t, dest, 0)
	th := dp.NewTestThread(1)
	for range 4 {
		th.Process(burst(2))
	}
	if got := len(drain(mems[2])); got != 8 {
		t.Fatalf("port 2 got %d originals, want 8 at once (originals are never held)", got)
	}
	if sends, held := dest.state(); sends != 0 || held != 8 {
		t.Fatalf("mirror port: %d sends, %d copies held after 4 small batches; want 0 sends, 8 held", sends, held)
	}
	th.BeforeWait()
	if sends, got := dest.waitSends(1), len(drain(dest.Memory)); sends != 1 || got != 8 {
		t.Fatalf("before waiting: %d sends carried %d copies, want 1 send of 8", sends, got)
	}

	// A batch's worth of copies is sent at once.
	th.Process(burst(20))
	th.Process(burst(20))
	if sends := dest.waitSends(2); sends != 2 {
		t.Fatalf("40 copies: %d sends, want a second one for the 40", sends)
	}
	if got := len(drain(dest.Memory)); got != 40 {
		t.Fatalf("40 copies: the second send carried %d", got)
	}

	// So is a copy held for longer than the age bound (100 µs).
	datapath.SetHeldMaxAgeForTest(t, 100*time.Microsecond)
	th.Process(burst(1))
	time.Sleep(time.Millisecond)
	th.Process(burst(1))
	if sends := dest.waitSends(3); sends != 3 {
		t.Fatalf("old copies: %d sends, want a third", sends)
	}
	if got := len(drain(dest.Memory)); got != 2 {
		t.Fatalf("old copies: the third send carried %d, want 2", got)
	}
}

// A thread about to wait leaves its held copies to another thread that
// holds copies on the same port: that one's send carries both, and the
// last holder to wait always sends.
func TestMirrorCopiesHeldLeftToOtherHolder(t *testing.T) {
	datapath.SetHeldMaxAgeForTest(t, time.Minute)
	dest := &heldMemory{Memory: netdev.NewMemory("mh3", 256)}
	dp, _, mems := mirrorSwitch(t, dest, 0)
	th1, th2 := dp.NewTestThread(1), dp.NewTestThread(2)
	th1.Process(burst(3))
	th2.Process([][]byte{frame(bcast, macB, -1, 46)})
	if sends, held := dest.state(); sends != 0 || held != 4 {
		t.Fatalf("%d sends, %d held; want 0 sends, 4 held", sends, held)
	}
	th2.BeforeWait() // thread 1 still holds copies there
	if sends, _ := dest.state(); sends != 0 {
		t.Fatalf("thread 2 sent although thread 1 holds copies on the port")
	}
	th1.BeforeWait() // the last holder
	if sends, got := dest.waitSends(1), len(drain(dest.Memory)); sends != 1 || got != 4 {
		t.Fatalf("%d sends carried %d copies, want 1 send of 4", sends, got)
	}
	drain(mems[1])
	drain(mems[2])

	// Alone, a thread about to wait has its own sent.
	th2.Process([][]byte{frame(bcast, macB, -1, 46)})
	th2.BeforeWait()
	if sends, got := dest.waitSends(2), len(drain(dest.Memory)); sends != 2 || got != 1 {
		t.Fatalf("alone: %d sends carried %d copies, want a second send of 1", sends, got)
	}
}

// A packet-out's mirror copies to a device that can hold them are sent
// by the packet-out itself: its executor has no loop that would send
// them later, and while it counted as a holder of the port, a port
// thread about to wait left its own copies there to it, for ever.
func TestMirrorCopiesHeldByPacketOutAreSent(t *testing.T) {
	datapath.SetHeldMaxAgeForTest(t, time.Minute)
	dest := &heldMemory{Memory: netdev.NewMemory("mh3", 256)}
	mems := [2]*netdev.Memory{netdev.NewMemory("mh1", 64), netdev.NewMemory("mh2", 64)}
	dp, _, br := mirrorSwitchBridge(t, [3]netdev.Netdev{mems[0], mems[1], dest}, 0)
	if err := dp.Execute(frame(bcast, macA, -1, 86), 1, br); err != nil {
		t.Fatal(err)
	}
	if got := len(drain(mems[1])); got != 1 {
		t.Fatalf("port 2 got %d originals of the packet-out, want 1", got)
	}
	if sends, got := dest.waitSends(1), len(drain(dest.Memory)); sends != 1 || got != 1 {
		t.Fatalf("packet-out: %d sends carried %d copies, want 1 send of its copy", sends, got)
	}

	th := dp.NewTestThread(1)
	th.Process(burst(2))
	th.BeforeWait() // no other holder: the thread sends its copies
	if sends, got := dest.waitSends(2), len(drain(dest.Memory)); sends != 2 || got != 2 {
		t.Fatalf("after a packet-out: %d sends carried %d copies of the thread's, want a second send of 2", sends, got)
	}
}

// A thread about to wait, the last to hold copies on the port, leaves
// their send (and the kernel's work for each copy in it: the device's
// transmit, the receiver's input) to the port's copy sender rather than
// making it itself before it waits: the thread then takes the next
// frames at once, on this core or the other, while the sender works.
func TestMirrorCopiesOfAnIdleThreadSentByTheCopySender(t *testing.T) {
	datapath.SetHeldMaxAgeForTest(t, time.Minute)
	dest := &heldMemory{Memory: netdev.NewMemory("mi3", 256), gate: make(chan struct{})}
	dp, _, mems := mirrorSwitch(t, dest, 0)
	th := dp.NewTestThread(1)
	th.Process(burst(3))
	done := make(chan struct{})
	go func() {
		th.BeforeWait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		close(dest.gate) // let the thread's own kick finish
		<-done
		t.Fatal("the thread about to wait sent its held copies itself")
	}
	close(dest.gate)
	if sends, got := dest.waitSends(1), len(drain(dest.Memory)); sends != 1 || got != 3 {
		t.Fatalf("copy sender: %d sends carried %d copies, want 1 send of 3", sends, got)
	}
	// Copies held after the hand-off follow the handed-off ones.
	th.Process(burst(2))
	th.BeforeWait()
	if sends, got := dest.waitSends(2), len(drain(dest.Memory)); sends != 2 || got != 2 {
		t.Fatalf("second hand-off: %d sends carried %d copies, want a second send of 2", sends, got)
	}
	drain(mems[1])
	drain(mems[2])
}

// Copies a kick leaves held, because the kernel had no socket buffer for
// them, are sent by the port's copy sender, which tries again until all
// are out: nothing else might ever send them (they used to wait for the
// port's next write).
func TestMirrorCopiesLeftByAKickAreSent(t *testing.T) {
	datapath.SetHeldMaxAgeForTest(t, time.Minute)
	dest := &heldMemory{Memory: netdev.NewMemory("mk3", 256), take: 1}
	dp, stats, _ := mirrorSwitch(t, dest, 0)
	th := dp.NewTestThread(1)
	th.Process(burst(3))
	th.BeforeWait() // the thread's kick sends one copy
	deadline := time.Now().Add(5 * time.Second)
	got := 0
	for got < 3 && time.Now().Before(deadline) {
		if _, ok := dest.Next(100 * time.Millisecond); ok {
			got++
		}
	}
	if _, held := dest.state(); got != 3 || held != 0 {
		t.Fatalf("%d of 3 copies sent, %d still held", got, held)
	}
	if d := stats.Copy.Dropped.Load(); d != 0 {
		t.Fatalf("mirror charged %d drops", d)
	}
}

// Copies the kernel keeps refusing are, after a bounded number of tries,
// taken back and charged to the mirror as dropped.
func TestMirrorCopiesRefusedByKicksAreDropped(t *testing.T) {
	datapath.SetHeldMaxAgeForTest(t, time.Minute)
	dest := &heldMemory{Memory: netdev.NewMemory("mk3", 256), take: -1}
	dp, stats, _ := mirrorSwitch(t, dest, 0)
	th := dp.NewTestThread(1)
	th.Process(burst(3))
	th.BeforeWait()
	deadline := time.Now().Add(5 * time.Second)
	for stats.Copy.Dropped.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, held := dest.state(); held != 0 || stats.Copy.Dropped.Load() != 3 {
		t.Fatalf("%d copies still held, mirror charged %d drops; want none held, 3 dropped", held, stats.Copy.Dropped.Load())
	}
}
