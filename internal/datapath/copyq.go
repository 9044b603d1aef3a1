package datapath

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// copyQueueDepth is how many mirror copies may wait for one destination.
const copyQueueDepth = 256

// copyQueue holds mirror copies for one destination port that may block
// (see Port.copiesInline) and sends them
// from its own goroutine. Receive threads only copy a frame into a free
// slot (or count a drop when there is none), so a slow or blocked
// destination costs the original traffic nothing but that memcpy.
//
// Slots [head, tail) (counted without end, used mod depth) are full.
// Producers fill the slot at tail under mu, which only they take; the
// sender works on the oldest slots and frees them by moving head, with
// no lock at all: a sender that runs at a low priority (see
// lowerCopySenderPriority) and is descheduled at any point never holds
// up the receive threads.
type copyQueue struct {
	dp   *Datapath
	port *Port
	// mu serialises producers (several receive threads may copy to one
	// port); tail and bigTail change only under it.
	mu    sync.Mutex
	tail  atomic.Uint64
	head  atomic.Uint64 // moved by the sender only
	bufs  [][]byte
	lens  []int
	orig  []int
	stats []*CopyStats // the mirror each copy is charged to
	// tuns: each copy's tunnel metadata (copied: the frame's own is
	// reused by its thread), for a flow-based tunnel port; hasTun says
	// which copies have some.
	tuns   []packet.TunnelMeta
	hasTun []bool
	wake   chan struct{}
	quit   chan struct{}

	batch *netdev.Batch // reused by the sender
	tx    netdev.Sender

	// A super-frame takes one slot, whose entry in supers says where the
	// frame is: in one of the big buffers, used in ring order like the
	// slots. The Sender cuts it into segments, each truncated to snaplen,
	// unless the port takes it whole.
	supers  []superCopy // by slot
	bigBufs [][]byte    // created with the first super-frame
	bigTail uint64      // under mu
	bigHead atomic.Uint64

	// A sender in SCHED_IDLE (idleTid, its thread) may get no CPU at
	// all on a host kept busy: a receive thread that adds a copy to a
	// queue whose sender has not progressed (sent a batch, or been given
	// copies in an empty queue: monotime progress) for copyStarve lifts
	// it to a nice value until its next batch is out (boosted), so that
	// copies, and anything waiting for that thread, are not held up
	// without bound.
	idleTid  atomic.Int32
	progress atomic.Int64
	boost    atomic.Int32 // boostOff, boostGoing or boostOn
	// starveTimer does the receive threads' check copyStarve after the
	// queue stopped being empty, so that copies that no traffic follows
	// (a ping's last) do not wait for an idle CPU without bound. Only
	// for queued (tunnel) ports, whose sender runs idle.
	starveTimer *time.Timer
}

// A boost's states: a receive thread moves boostOff to boostGoing, makes
// the system call, then sets boostOn; only then may the sender undo it
// (its system call, then boostOff). Each side acts only in the state the
// other left, so a sender that finishes a batch while a receive thread
// boosts it cannot put itself back in SCHED_IDLE before the boost lands
// and then stay boosted for good.
const (
	boostOff int32 = iota
	boostGoing
	boostOn
)

// copySupersPerBatch bounds the super-frames in one batch of the sender:
// each is cut into up to about 45 frames, so that a batch stays about a
// millisecond of work and its progress (see checkStarved) shows often.
const copySupersPerBatch = 2

// copyStarve is how long an idle sender with copies waiting may go
// without sending before a receive thread boosts it.
const copyStarve = 20 * time.Millisecond

// superCopiesDepth is how many super-frames may wait for one destination:
// two receive batches of them (4 MiB of buffers, made only for a
// destination that gets super-frames).
const superCopiesDepth = 2 * BatchSize

// superCopy is a queued super-frame; big < 0 marks an ordinary slot.
type superCopy struct {
	big     int
	size    int
	off     netdev.Offload
	snaplen uint32
}

func newCopyQueue(dp *Datapath, p *Port) *copyQueue {
	q := &copyQueue{dp: dp, port: p, wake: make(chan struct{}, 1), quit: make(chan struct{}),
		lens: make([]int, copyQueueDepth), orig: make([]int, copyQueueDepth), stats: make([]*CopyStats, copyQueueDepth),
		tuns: make([]packet.TunnelMeta, copyQueueDepth), hasTun: make([]bool, copyQueueDepth),
		batch: netdev.NewBatch(BatchSize)}
	q.supers = make([]superCopy, copyQueueDepth)
	for i := range q.supers {
		q.supers[i].big = -1
	}
	if p.queued != nil {
		q.starveTimer = time.AfterFunc(time.Hour, q.starveCheck)
		q.starveTimer.Stop()
	}
	dp.wg.Add(1)
	go q.run()
	return q
}

// copiesInline reports whether mirror copies to p are sent by the
// receiving thread itself, in its batch for p: true when p's device never
// waits (netdev.NonBlocking), since a full device then costs the sender
// one refused system call and nothing more; false when the device's
// sends are dear even so (netdev.CopyQueued: a tunnel), whose copies
// are queued and, when the queue is full, dropped and counted in the
// port's tx_dropped as well as the mirror's.
func (p *Port) copiesInline() bool { return p.inline }

// countCopyDrop counts a copy that found p's copy queue full in p's
// tx_dropped, when its device counts such drops (netdev.CopyQueued): as
// the frames it would have been on the wire, the unit of tx_packets.
func (p *Port) countCopyDrop(frame []byte, off netdev.Offload) {
	if p.queued != nil {
		p.queued.CountTxDropped(uint64(netdev.Segments(frame, off)))
	}
}

// copyPause is how long inline copies to a port are dropped at once after
// its device refused some: a destination that cannot keep up then costs
// the receiving threads one failed system call per pause, not one per
// batch. A destination that is fast but overflowed for an instant loses
// at most this long of copies.
var copyPause = 100 * time.Microsecond // a variable for tests

// pauseCopies stops inline copies to p for copyPause from now.
func (p *Port) pauseCopies(now int64) {
	p.copyPauseUntil.Store(now + int64(copyPause))
}

// copiesPaused reports whether inline copies to p are being dropped.
func (p *Port) copiesPaused(now int64) bool {
	return now < p.copyPauseUntil.Load()
}

// epoch anchors monotime.
var epoch = time.Now()

// monotime is a monotonic clock in nanoseconds.
func monotime() int64 { return int64(time.Since(epoch)) }

// Monotime is the datapath's clock, in nanoseconds: the time ActCT gives
// the connection tracker, which must count its timeouts on the same one.
func Monotime() int64 { return monotime() }

// copyQueueFor returns p's copy queue, creating it on first use; nil
// once p has left the datapath (a thread may still be finishing a batch
// for it), so no sender is started that nobody would stop.
func (p *Port) copyQueueFor(dp *Datapath) *copyQueue {
	if q := p.copies.Load(); q != nil {
		return q
	}
	p.copyMu.Lock()
	defer p.copyMu.Unlock()
	if q := p.copies.Load(); q != nil || p.copiesStopped {
		return q
	}
	q := newCopyQueue(dp, p)
	p.copies.Store(q)
	return q
}

// startCopies lets p have a copy queue again (p is in the datapath).
func (p *Port) startCopies() {
	p.copyMu.Lock()
	defer p.copyMu.Unlock()
	p.copiesStopped = false
}

func (p *Port) stopCopies() {
	p.copyMu.Lock()
	defer p.copyMu.Unlock()
	p.copiesStopped = true
	if q := p.copies.Swap(nil); q != nil {
		close(q.quit)
	}
}

// push queues a copy of frame, whose original length was orig. It reports
// false when the queue is full. wake says that the sender must be woken
// (see publish) once the caller's batch is out.
func (q *copyQueue) push(frame []byte, orig int, stats *CopyStats, tun *packet.TunnelMeta) (ok, wake bool) {
	q.mu.Lock()
	t := q.tail.Load()
	if t-q.head.Load() >= copyQueueDepth {
		q.mu.Unlock()
		return false, false
	}
	if q.bufs == nil {
		// Made on the first copy queued: a system port's queue may only
		// ever serve to send held copies (kickSoon).
		for range copyQueueDepth {
			q.bufs = append(q.bufs, make([]byte, netdev.MaxFrame+packet.Headroom))
		}
	}
	i := int(t % copyQueueDepth)
	q.lens[i] = copy(q.bufs[i], frame)
	q.orig[i] = orig
	q.stats[i] = stats
	q.setTun(i, tun)
	q.supers[i].big = -1
	return true, q.publish(t)
}

// pushSuper queues a super-frame, to be cut by the sender into segments
// of at most snaplen bytes (0: whole). It reports false when the queue is
// full, and whether to wake the sender, as push. The big buffers are made
// on the first super-frame, an allocation that happens once per
// destination.
func (q *copyQueue) pushSuper(frame []byte, off netdev.Offload, snaplen uint32, stats *CopyStats, tun *packet.TunnelMeta) (ok, wake bool) {
	q.mu.Lock()
	t := q.tail.Load()
	if t-q.head.Load() >= copyQueueDepth || q.bigTail-q.bigHead.Load() >= superCopiesDepth || len(frame) > netdev.MaxSuperFrame {
		q.mu.Unlock()
		return false, false
	}
	if q.bigBufs == nil {
		for range superCopiesDepth {
			q.bigBufs = append(q.bigBufs, make([]byte, netdev.MaxSuperFrame))
		}
	}
	i := int(t % copyQueueDepth)
	big := int(q.bigTail % superCopiesDepth)
	q.supers[i] = superCopy{big: big, size: copy(q.bigBufs[big], frame), off: off, snaplen: snaplen}
	q.stats[i] = stats
	q.setTun(i, tun)
	q.bigTail++
	return true, q.publish(t)
}

// setTun keeps slot i's tunnel metadata (nil: none).
func (q *copyQueue) setTun(i int, tun *packet.TunnelMeta) {
	q.hasTun[i] = tun != nil
	if tun != nil {
		q.tuns[i] = *tun
	}
}

// batchTun gives the batch's last frame slot i's tunnel metadata, which a
// flow-based tunnel port sends by.
func (q *copyQueue) batchTun(i int) {
	m := &q.batch.Meta[q.batch.Len()-1]
	m.Tun = nil
	if q.hasTun[i] {
		m.Tun = &q.tuns[i]
	}
}

// publish makes the filled slot t the sender's, unlocks q and reports
// whether the queue was empty, so that the sender needs waking.
//
// The sender drains the queue before it sleeps again, so it needs a
// wake-up only when the queue goes from empty to not empty. The sender
// moves head before it looks at tail again, and a producer moves tail
// before it looks at head, so one of the two sees the other's move: the
// sender finds the new slot, or the producer finds the queue empty and
// wakes it (at worst once too often).
//
// The receive thread wakes it (wakeSender) once its batch is written:
// the sender then finds a batch of copies to send in one system call
// rather than one or two, and the mirrored frames leave first. No other
// producer wakes it meanwhile (the queue is not empty), so the wake-up
// must never be lost.
func (q *copyQueue) publish(t uint64) bool {
	q.tail.Store(t + 1)
	wasEmpty := q.head.Load() == t
	q.mu.Unlock()
	return wasEmpty
}

// wakeSender wakes the sender if it sleeps, and has the starve timer
// check on it.
func (q *copyQueue) wakeSender() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if q.starveTimer != nil {
		q.starveTimer.Reset(copyStarve)
	}
}

// starveCheck runs on the starve timer: while copies wait, it boosts a
// sender that has made no progress for copyStarve, or looks again when
// it would have.
func (q *copyQueue) starveCheck() {
	if q.tail.Load() == q.head.Load() {
		return
	}
	now := monotime()
	if wait := int64(copyStarve) - (now - q.progress.Load()); wait > 0 {
		q.starveTimer.Reset(time.Duration(wait))
		return
	}
	q.checkStarved(now)
}

// run sends copies until the queue is stopped. After a panic (a driver
// bug) it drops what was queued, charging the mirrors, and goes on.
func (q *copyQueue) run() {
	defer q.dp.wg.Done()
	if q.port.queued != nil {
		q.progress.Store(monotime())
		q.idleTid.Store(int32(lowerCopySenderPriority()))
	}
	if q.starveTimer != nil {
		defer q.starveTimer.Stop()
	}
	for !q.loop() {
		q.dropAll()
	}
}

// loop is the sender's loop; true when stopped, false after a panic.
func (q *copyQueue) loop() (stopped bool) {
	defer guard.Recover(dpLog, threadPanics, "port "+q.port.Name+": mirror copy sender")
	for {
		select {
		case <-q.quit:
			return true
		case <-q.wake:
		}
		q.kickHeld()
		for q.sendSome() {
		}
	}
}

// kickSoon asks the sender to send the copies that port threads hold in
// the port's transmit ring (see portThread.kick). The send, with the
// kernel's work for every copy in it, then runs on this goroutine,
// which may run on another core than the thread that made the copies.
func (q *copyQueue) kickSoon() {
	select {
	case q.wake <- struct{}{}:
	default: // a wake-up is pending: its kick comes after our copies
	}
}

// kickHeld sends the copies held in the port's transmit ring, if any.
// Copies the kernel has no socket buffer for stay held: it tries again,
// yielding and then pausing between tries, a bounded number of times,
// then drops them (counted in the port's tx_dropped and the mirror's),
// so that no copy waits in the ring with no send to come.
func (q *copyQueue) kickHeld() {
	if q.port.held == nil {
		return
	}
	for round := 0; q.kickOnce(round == heldKickRounds) > 0; round++ {
		if round < heldKickRounds/2 {
			runtime.Gosched()
		} else {
			time.Sleep(heldKickPause)
		}
	}
}

// heldKickRounds and heldKickPause bound the tries of kickHeld: at most
// about a millisecond in all.
const (
	heldKickRounds = 16
	heldKickPause  = 100 * time.Microsecond
)

// kickOnce kicks the port's held copies, or drops them (drop), under the
// port's transmit lock, and returns how many are still held.
func (q *copyQueue) kickOnce(drop bool) int {
	q.port.txMu.Lock()
	defer q.port.txMu.Unlock()
	if drop {
		q.port.chargeDrops(q.port.held.DropHeld(), 0, nil)
		return 0
	}
	res := q.port.held.Kick()
	q.port.chargeDrops(res, 0, nil)
	return res.Held
}

// dropAll empties the queue, counting every copy in it as dropped. It
// runs on the sender, the only one that moves head.
func (q *copyQueue) dropAll() {
	h, t := q.head.Load(), q.tail.Load()
	supers := uint64(0)
	for ; h != t; h++ {
		i := int(h % copyQueueDepth)
		if c := q.stats[i]; c != nil {
			c.Dropped.Add(1)
		}
		if c := q.supers[i]; c.big >= 0 {
			q.port.countCopyDrop(q.bigBufs[c.big][:c.size], c.off)
			supers++
		} else {
			q.port.countCopyDrop(nil, netdev.Offload{})
		}
	}
	q.bigHead.Add(supers)
	q.head.Store(t)
	q.batch.Reset()
}

// sendSome sends up to a batch of the oldest copies; it reports whether
// it sent anything. A batch holds the copies of one mirror only, so that
// what the device refuses of it is charged to that mirror: copies of two
// mirrors share a port's queue only when both mirrors output there.
func (q *copyQueue) sendSome() bool {
	head := q.head.Load()
	k := min(q.tail.Load()-head, BatchSize)
	if k == 0 {
		return false
	}
	q.batch.Reset()
	supers := uint64(0)
	charge := q.stats[head%copyQueueDepth]
	for j := range k {
		i := int((head + j) % copyQueueDepth)
		if q.stats[i] != charge {
			k = j // another mirror's: in the next batch
			break
		}
		if c := q.supers[i]; c.big >= 0 {
			if supers == copySupersPerBatch {
				k = j // the rest in the next batch
				break
			}
			q.batch.Add(q.bigBufs[c.big][:c.size], c.off, c.size, c.snaplen)
			q.batchTun(i)
			supers++
			continue
		}
		q.batch.Add(q.bufs[i][:q.lens[i]], netdev.Offload{}, q.orig[i], 0)
		q.batchTun(i)
	}
	q.write(charge)
	// The slots and big buffers are free once written: big buffers are
	// used in slot order, so the first supers of them are these.
	q.bigHead.Add(supers)
	q.head.Store(head + k)
	q.sent()
	return true
}

// sent records the sender's progress after a batch, and puts a boosted
// sender back in SCHED_IDLE.
func (q *copyQueue) sent() {
	q.progress.Store(monotime())
	if q.boost.Load() == boostOn {
		q.unboost()
	}
}

// checkStarved is called by a receive thread whose copy found copies
// waiting (or no room), at monotime now: it boosts an idle sender that
// has sent nothing for copyStarve, once until the sender has sent a
// batch.
func (q *copyQueue) checkStarved(now int64) {
	tid := q.idleTid.Load()
	if tid == 0 || now-q.progress.Load() < int64(copyStarve) || q.boost.Load() != boostOff ||
		!q.boost.CompareAndSwap(boostOff, boostGoing) {
		return
	}
	copySenderBoosts.Inc()
	if err := boostPolicy(int(tid)); err != nil {
		dpLog.WarnRL(copyRL, "port %s: mirror copy sender: cannot raise its priority: %v", q.port.Name, err)
	}
	q.boost.Store(boostOn)
}

// unboost puts the sender, which a receive thread boosted, back in
// SCHED_IDLE.
func (q *copyQueue) unboost() {
	if err := setIdlePolicy(0); err != nil {
		dpLog.WarnRL(copyRL, "port %s: mirror copy sender: cannot lower its priority: %v", q.port.Name, err)
	}
	q.boost.Store(boostOff)
}

// write sends the batch. Copies that the device refuses (a full device
// queue: the kernel answers ENOBUFS) are lost for the same reason as
// copies the queue had no room for, so they are charged to the mirror's
// dropped count too.
func (q *copyQueue) write(charge *CopyStats) {
	if q.batch.Len() == 0 {
		return
	}
	defer q.batch.Reset()
	_, err := q.writeLocked(charge)
	if err != nil {
		copySendError.Inc()
		dpLog.DbgRL(copyRL, "port %s: mirror copies not sent: %v", q.port.Name, err)
	}
}

// writeLocked writes the batch under the port's transmit lock, which a
// panicking driver must not leave held, and charges what the device
// refused to the mirror.
func (q *copyQueue) writeLocked(charge *CopyStats) (netdev.TxResult, error) {
	q.port.txMu.Lock()
	defer q.port.txMu.Unlock()
	res, err := q.tx.Send(q.port.Dev, q.batch)
	if res.Dropped > 0 && charge != nil {
		charge.Dropped.Add(uint64(res.Dropped))
	}
	// Its own drops are charged above, copy by copy: only the held
	// frames' are left to chargeDrops.
	q.port.chargeDrops(netdev.TxResult{HeldDropped: res.HeldDropped, Held: res.Held}, 0, nil)
	return res, err
}
