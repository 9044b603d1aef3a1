//go:build linux

package datapath

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// policyOf reads thread tid's scheduling policy and nice value.
func policyOf(t *testing.T, tid int) (uint32, int32) {
	t.Helper()
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		t.Fatal(err)
	}
	return a.Policy, a.Nice
}

// A tunnel's copy sender runs in SCHED_IDLE; a receive thread that finds
// its queue full after copyStarve without progress lifts it to nice 10,
// once, and the sender goes back to SCHED_IDLE after its next batch. A
// sender that progressed recently is left alone.
func TestCopySenderIdleAndBoost(t *testing.T) {
	q := &copyQueue{port: &Port{Name: "tq"}}
	tids, back, after := make(chan int), make(chan struct{}), make(chan uint32, 1)
	go func() {
		tids <- lowerCopySenderPriority() // this goroutine's thread is the sender's
		<-back
		q.unboost()
		a, err := unix.SchedGetAttr(0, 0)
		if err != nil {
			a = &unix.SchedAttr{Policy: ^uint32(0)}
		}
		after <- a.Policy
	}()
	tid := <-tids
	if tid == 0 {
		t.Fatal("the copy sender is not in SCHED_IDLE")
	}
	if p, _ := policyOf(t, tid); p != unix.SCHED_IDLE {
		t.Fatalf("sender policy %d, want SCHED_IDLE", p)
	}
	q.idleTid.Store(int32(tid))
	now := monotime()
	q.progress.Store(now)
	q.checkStarved(now + int64(copyStarve/2))
	if p, _ := policyOf(t, tid); p != unix.SCHED_IDLE || q.boost.Load() == boostOn {
		t.Fatalf("a sender that progressed %v ago was boosted (policy %d)", copyStarve/2, p)
	}
	before := copySenderBoosts.Total()
	q.checkStarved(now + int64(2*copyStarve))
	q.checkStarved(now + int64(3*copyStarve))
	if p, nice := policyOf(t, tid); p != unix.SCHED_NORMAL || nice != copySenderBoostNice || q.boost.Load() != boostOn {
		t.Fatalf("starved sender: policy %d nice %d boosted %v, want SCHED_NORMAL nice %d", p, nice, q.boost.Load() == boostOn, copySenderBoostNice)
	}
	if n := copySenderBoosts.Total() - before; n != 1 {
		t.Errorf("datapath_mirror_copy_sender_boost counted %d, want 1", n)
	}
	close(back)
	select {
	case p := <-after:
		if p != unix.SCHED_IDLE || q.boost.Load() == boostOn {
			t.Errorf("after its batch the sender has policy %d, boosted %v; want SCHED_IDLE, not boosted", p, q.boost.Load() == boostOn)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sender goroutine did not finish")
	}
}

// The sender takes at most copySupersPerBatch super-frames per batch
// (each becomes dozens of frames), so that its progress shows at least
// every millisecond or so of work and a busy but working idle sender is
// not taken for a starved one.
func TestCopySenderBatchesFewSuperFrames(t *testing.T) {
	dp := New()
	p := &Port{Name: "tsf", Dev: netdev.NewMemory("tsf", 64)}
	q := &copyQueue{dp: dp, port: p, wake: make(chan struct{}, 1), quit: make(chan struct{}),
		lens: make([]int, copyQueueDepth), orig: make([]int, copyQueueDepth), stats: make([]*CopyStats, copyQueueDepth),
		tuns: make([]packet.TunnelMeta, copyQueueDepth), hasTun: make([]bool, copyQueueDepth),
		batch: netdev.NewBatch(BatchSize), supers: make([]superCopy, copyQueueDepth)}
	for range copyQueueDepth {
		q.bufs = append(q.bufs, make([]byte, netdev.MaxFrame+packet.Headroom))
	}
	super := make([]byte, 3000) // its slot marks it a super-frame; the content does not matter here
	for range 5 {
		if ok, _ := q.pushSuper(super, netdev.Offload{}, 0, nil, nil); !ok {
			t.Fatal("no room for a super-frame")
		}
	}
	if ok, _ := q.push(make([]byte, 100), 100, nil, nil); !ok {
		t.Fatal("no room for a frame")
	}
	for _, want := range []uint64{2, 4, 6} {
		if !q.sendSome() {
			t.Fatal("nothing sent")
		}
		if h := q.head.Load(); h != want {
			t.Fatalf("head at %d after a batch, want %d", h, want)
		}
	}
	if q.bigHead.Load() != 5 {
		t.Fatalf("big buffers freed up to %d, want 5", q.bigHead.Load())
	}
}

// A receive thread that boosts a starved sender while the sender, done
// with a late batch, puts itself back in SCHED_IDLE, must not leave it
// boosted for good: the sender's next batch ends the boost.
func TestCopySenderBoostRacingItsBatch(t *testing.T) {
	q := &copyQueue{port: &Port{Name: "tq"}}
	tids, batch, done, quit := make(chan int), make(chan struct{}, 1), make(chan uint32, 1), make(chan struct{})
	defer close(quit)
	go func() {
		tids <- lowerCopySenderPriority() // this goroutine's thread is the sender's
		for {
			select {
			case <-batch:
			case <-quit:
				return
			}
			q.sent()
			a, err := unix.SchedGetAttr(0, 0)
			if err != nil {
				a = &unix.SchedAttr{Policy: ^uint32(0)}
			}
			done <- a.Policy
		}
	}()
	tid := <-tids
	if tid == 0 {
		t.Fatal("the copy sender is not in SCHED_IDLE")
	}
	q.idleTid.Store(int32(tid))
	q.progress.Store(monotime() - int64(2*copyStarve))
	// The receive thread decides to boost; before its system call, the
	// sender finishes a batch.
	real := boostPolicy
	boostPolicy = func(tid int) error {
		batch <- struct{}{}
		select {
		case <-done:
		case <-time.After(10 * time.Second): // an idle thread on a saturated host
			t.Fatal("the sender goroutine did not finish its batch")
		}
		return real(tid)
	}
	defer func() { boostPolicy = real }()
	q.checkStarved(monotime())
	boostPolicy = real
	// The sender's next batch.
	batch <- struct{}{}
	select {
	case p := <-done:
		if p != unix.SCHED_IDLE {
			pol, nice := policyOf(t, tid)
			t.Fatalf("after its next batch the sender has policy %d nice %d; want SCHED_IDLE", pol, nice)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the sender goroutine did not answer")
	}
}
