package datapath

import (
	"errors"
	"strconv"
	"time"

	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/offload"
	"gvs/internal/packet"
	"gvs/internal/vlog"
)

// portThread receives on one port and executes what its bridge decides.
// All of its buffers are allocated once, so the packet path does not
// allocate.
type portThread struct {
	dp   *Datapath
	port *Port
	quit chan struct{}
	done chan struct{}

	bufs  [][]byte // receive buffers, with headroom for a VLAN tag
	sizes []int
	pkt   Packet
	cache *flowCache
	// The translation and executor state of each recirculation depth,
	// kept here so that nothing escapes per packet.
	xls    [maxRecircDepth + 1]Xlate
	levels [maxRecircDepth + 1]level
	// rawSent says that the packet's received frame itself is queued for
	// an output, so a NAT must rewrite a copy.
	rawSent bool

	// frameMem is the mapping bufs and scratch are in, given back when
	// the thread ends; nil if they are on the heap.
	frameMem []byte

	// scratch holds re-encoded copies of frames (a tag pushed or
	// removed), BatchSize*maxVariants of them, reused every batch.
	scratch [][]byte
	nextScr int
	now     int64 // monotime, read at most once per batch; 0: not yet

	// pending holds the frames queued for each output port in this batch.
	pending map[uint32]*outQueue
	touched []*outQueue
	// wakes: copy queues whose sender must be woken after the flush.
	wakes []*copyQueue

	// For a port that hands over super-frames whole (netdev.OffloadPort):
	// what each received frame leaves to do, and buffers for super-frames
	// that the actions change (made on first use; see materializeSuper).
	offloads []netdev.Offload
	superScr [][]byte
	nextSup  int
	superGen uint32 // counts reuses of superScr

	tx netdev.Sender // the one way out: cuts super-frames where needed

	// For a tunnel port: each received frame's tunnel metadata, and the
	// one of the frame being processed (nil for other ports).
	tun    []packet.TunnelMeta
	pktTun *packet.TunnelMeta

	// held lists the ports whose mirror copies this thread left in their
	// transmit rings (see holdCopies); heldN counts those copies, and
	// heldSince is when the oldest was held.
	held      []heldCopies
	heldN     int
	heldSince int64

	kops []offload.Op // scratch for a flow's kernel actions (offloadFlow)
}

// heldCopies is a port with mirror copies held in its transmit ring.
type heldCopies struct {
	port *Port
}

// Held mirror copies are sent, by the port's copy sender (see kick), when
// the thread is about to wait for frames, when heldMax of them wait, or
// when the oldest has waited heldMaxAge, whichever comes first. One
// send() (and its system call)
// then carries the copies of several receive batches: under a stream of
// small batches, a copy otherwise cost a send() of its own.
const heldMax = BatchSize

var heldMaxAge = 100 * time.Microsecond // a variable for tests

// superScratch is how many changed super-frames a thread holds before it
// sends what it has queued to reuse their buffers.
const superScratch = 8

// maxVariants bounds the re-encoded copies of one frame per batch.
const maxVariants = 4

type outQueue struct {
	port    *Port
	batch   *netdev.Batch
	touched bool // in portThread.touched
	// copies counts the mirror copies among frames; charge is the mirror
	// that device refusals of this batch are charged to.
	copies int
	charge *CopyStats
}

func newPortThread(dp *Datapath, p *Port) *portThread {
	t := &portThread{dp: dp, port: p, quit: make(chan struct{}), done: make(chan struct{}),
		sizes: make([]int, BatchSize), pending: map[uint32]*outQueue{}}
	frameSize := netdev.MaxFrame
	if p.offload != nil {
		frameSize = netdev.MaxSuperFrame
		t.offloads = make([]netdev.Offload, BatchSize)
	}
	if p.tunRx != nil {
		t.tun = make([]packet.TunnelMeta, BatchSize)
	}
	// The receive and scratch buffers are carved out of one block,
	// mapped outside the heap so that only what frames use of them is
	// resident (allocFrames).
	rxSize, scrSize := packet.Headroom+frameSize, packet.Headroom+netdev.MaxFrame
	mem, mapped := allocFrames(BatchSize*rxSize + BatchSize*maxVariants*scrSize)
	if mapped {
		t.frameMem = mem
	}
	for range BatchSize {
		t.bufs = append(t.bufs, mem[:rxSize:rxSize])
		mem = mem[rxSize:]
	}
	for range BatchSize * maxVariants {
		t.scratch = append(t.scratch, mem[:scrSize:scrSize])
		mem = mem[scrSize:]
	}
	t.xls[0].Actions = make([]Action, 0, 64)
	t.xls[0].Effects = make([]Effect, 0, 16)
	t.cache = newFlowCache(int(dp.flowLimit.Load()))
	return t
}

// freeFrameMem gives the thread's frame buffers back once it has ended
// (nothing refers to them then: a batch's outputs are written or copied
// before the next read).
func (t *portThread) freeFrameMem() {
	if t.frameMem != nil {
		freeFrames(t.frameMem)
		t.frameMem, t.bufs, t.scratch = nil, nil, nil
	}
}

func (t *portThread) stop() {
	close(t.quit)
	// The owner closes the netdev, which unblocks ReadBatch; Datapath.Close
	// waits for the thread to see it.
}

// run receives and processes batches until the thread is stopped or its
// port is closed. A panic (a driver or translation bug) restarts the
// loop after a pause that grows while the panics repeat, so one bad port
// or packet can neither take the switch down nor spin a core.
func (t *portThread) run() {
	defer t.dp.wg.Done()
	defer close(t.done)
	defer t.cache.release()
	defer t.freeFrameMem()
	pause := restartPause
	for !t.loop() {
		t.discardPending()
		select {
		case <-t.quit:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxRestartPause)
	}
}

// restartPause and maxRestartPause bound how soon a port thread restarts
// after a panic.
const (
	restartPause    = 10 * time.Millisecond
	maxRestartPause = time.Second
)

// loop is the thread's receive loop; it returns true when the thread is
// done, false after a panic.
func (t *portThread) loop() (done bool) {
	defer guard.Recover(dpLog, threadPanics, "port "+t.port.Name+": port thread")
	rx := make([][]byte, BatchSize)
	for i := range rx {
		rx[i] = t.bufs[i][packet.Headroom:]
	}
	defer t.kickHeld(false)
	for {
		if t.heldN > 0 && !t.rxReady() {
			t.kickHeld(true)
		}
		n, err := t.read(rx)
		select {
		case <-t.quit:
			return true
		default:
		}
		if err != nil {
			if errors.Is(err, netdev.ErrClosed) {
				return true
			}
			rxError.Inc()
			dpLog.WarnRL(rxFailRL, "port %s: receive failed: %v", t.port.Name, err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.processBatch(rx[:n])
	}
}

// discardPending forgets the output queued by a batch that a panic cut
// short.
func (t *portThread) discardPending() {
	for _, q := range t.touched {
		q.batch.Reset()
		q.copies, q.charge = 0, nil
		q.touched = false
	}
	clear(t.touched)
	t.touched = t.touched[:0]
	t.wakeCopySenders() // the copies queued are sent all the same
}

// read receives a batch, with super-frames whole from an OffloadPort,
// and tunnel metadata from a TunnelReader.
func (t *portThread) read(rx [][]byte) (int, error) {
	if t.port.tunOff != nil {
		return t.port.tunOff.ReadBatchTunnelOffload(rx, t.sizes, t.offloads, t.tun)
	}
	if t.port.offload != nil {
		return t.port.offload.ReadBatchOffload(rx, t.sizes, t.offloads)
	}
	if t.port.tunRx != nil {
		return t.port.tunRx.ReadBatchTunnel(rx, t.sizes, t.tun)
	}
	return t.port.Dev.ReadBatch(rx, t.sizes)
}

// rxReady reports whether the thread's next read returns without
// waiting; false when the port cannot tell.
func (t *portThread) rxReady() bool {
	return t.port.rxReady != nil && t.port.rxReady.RxReady()
}

// processBatch looks each frame up in the flow cache, translating and
// installing it on a miss, applies its side effects and executes its
// actions, then flushes outputs.
func (t *portThread) processBatch(frames [][]byte) {
	cfg := t.dp.cfg.Load()
	t.nextScr, t.nextSup = 0, 0
	t.now = 0
	t.processFrames(cfg, frames)
	t.flush()
	if t.heldN >= heldMax || (t.heldN > 0 && t.clock()-t.heldSince >= int64(heldMaxAge)) {
		t.kickHeld(false)
	}
}

// processFrames runs frames through the cache and the executor, holding
// the cache's lock (which only dumps contend for) but not while the
// batch is written out, which may wait for a device.
func (t *portThread) processFrames(cfg *Config, frames [][]byte) {
	t.cache.mu.Lock()
	defer t.cache.mu.Unlock()
	t.cache.limit = int(t.dp.flowLimit.Load())
	t.cache.trim()
	for i, f := range frames {
		t.pkt.Frame = f[:t.sizes[i]]
		t.pkt.InPort = t.port.No
		t.pkt.Offload = netdev.Offload{}
		if t.offloads != nil {
			t.pkt.Offload = t.offloads[i]
		}
		if t.tun != nil {
			t.pktTun = &t.tun[i]
		}
		if len(t.pkt.Frame) < packet.EthernetLen {
			continue // not even an Ethernet header: nothing to switch on
		}
		t.processPacket(cfg)
	}
	t.cache.account()
	t.cache.reportCounts()
}

// processPacket handles t.pkt: a cache hit costs a lookup, a miss a
// translation and an install.
func (t *portThread) processPacket(cfg *Config) {
	pkt := &t.pkt
	// A parse error only means the key stops at the bad header; the
	// key is still valid and the frame is switched on it, as OVS does.
	_ = packet.Parse(pkt.Frame, t.port.No, &pkt.Key.Key, &pkt.Off)
	if t.pktTun != nil {
		t.pktTun.ToKey(&pkt.Key.Key) // tun_id, tun_src, tun_dst: OpenFlow matches them
	}
	pkt.Key.VLANTPID = vlanTPIDs(pkt.Frame, &pkt.Off)
	t.rawSent = false
	t.runPacket(cfg, pkt, 0)
}

// runPacket looks pkt up in the cache, translating and installing it on
// a miss, applies the side effects and executes the actions; level is
// the recirculation depth (0 for a received packet).
func (t *portThread) runPacket(cfg *Config, pkt *Packet, level int) {
	now := t.clock()
	// The generation is read before translating, so that a change made
	// while the translation runs leaves its flow stale.
	gen := generation.Load()
	var acts []Action
	var effects []Effect
	f := t.cache.lookup(&pkt.Key, gen, now)
	hit := f != nil
	if hit {
		f.packets++
		f.bytes += uint64(len(pkt.Frame))
		f.used = now
		acts, effects = f.actions, f.effects
	} else {
		xl := &t.xls[level]
		xl.Reset()
		t.port.Translator.Translate(pkt, xl)
		if f = t.cache.install(&pkt.Key, xl, gen, now); f != nil {
			f.packets, f.bytes, f.used = 1, uint64(len(pkt.Frame)), now
			if level == 0 && t.port.fast.Load() != nil {
				t.offloadFlow(cfg, f)
			}
		}
		acts, effects = xl.Actions, xl.Effects
		if dpLog.Enabled(vlog.Dbg) {
			t.logMiss(xl, f != nil)
		}
	}
	if f != nil {
		t.cache.touch(f)
		// A recirculation below may evict f; pinned keeps its action
		// list from being reused while it runs.
		f.pinned++
	}
	for i := range effects {
		effects[i].apply(len(pkt.Frame), f != nil, hit, t.cache.wallClock)
	}
	t.execute(cfg, pkt, acts, level)
	if f != nil {
		f.pinned--
	}
}

// logMiss says at debug level what a flow cache miss translated to, so
// that `vlog/set datapath:dbg` shows the slow path at work.
func (t *portThread) logMiss(xl *Xlate, installed bool) {
	what := "not cached"
	if installed {
		what = "cached"
	}
	dpLog.DbgRL(missRL, "port %s: flow cache miss (%s): actions:%s", t.port.Name, what,
		FormatActions(xl.Actions, func(no uint32) string { return strconv.FormatUint(uint64(no), 10) }))
}

// vlanTPIDs returns the TPIDs of the VLAN headers Parse found.
func vlanTPIDs(frame []byte, off *packet.Offsets) (tp [packet.MaxVLANs]uint16) {
	pos := int(off.VLAN)
	for i := 0; i < int(off.NumVLANs) && i < len(tp) && pos > 0 && pos+2 <= len(frame); i++ {
		tp[i] = uint16(frame[pos])<<8 | uint16(frame[pos+1])
		pos += packet.VLANTagLen
	}
	return tp
}

// copyFate is what became of a mirror copy on its way to a port.
type copyFate struct{ dropped, truncated bool }

// countCopy charges what became of one packet's copy to its mirror.
func countCopy(c *CopyStats, f copyFate) {
	if c == nil {
		return
	}
	if f.dropped {
		c.Dropped.Add(1)
	}
	if f.truncated {
		c.Truncated.Add(1)
	}
}

// output queues frame for port p; a mirror copy is truncated first, and
// goes through p's copy queue when p may block. It reports what became of
// a copy; device refusals come later, when the queue is flushed.
//
// A super-frame is queued whole, with the snaplen to cut its segments to:
// the port's Sender cuts it if the port cannot take it whole.
func (t *portThread) output(p *Port, o outArgs, frame []byte, off netdev.Offload) (fate copyFate) {
	orig, snap := len(frame), uint32(0)
	if off.IsSuper() {
		snap = o.trunc
		fate.truncated = snap > 0 && int(snap) < netdev.FirstSegmentLen(frame, off)
	} else if o.trunc > 0 && int(o.trunc) < len(frame) {
		frame, fate.truncated = frame[:o.trunc], true
	}
	if o.copy != nil {
		if !p.copiesInline() {
			q := p.copyQueueFor(t.dp)
			ok, wake := false, false
			if q != nil && off.IsSuper() {
				ok, wake = q.pushSuper(frame, off, snap, o.copy, o.tun)
			} else if q != nil {
				ok, wake = q.push(frame, orig, o.copy, o.tun)
			}
			if wake { // the queue was empty: the copy waits from now
				q.progress.Store(t.clock())
				t.wakes = append(t.wakes, q)
			} else if q != nil {
				q.checkStarved(t.clock())
			}
			fate.dropped = !ok
			if fate.dropped && q != nil {
				p.countCopyDrop(frame, off)
			}
			return fate
		}
		if p.copiesPaused(t.clock()) {
			fate.dropped = true
			return fate
		}
	}
	q := t.outQueue(o.port, p)
	q.batch.Add(frame, off, orig, snap)
	q.batch.Meta[q.batch.Len()-1].Tun = o.tun
	if o.copy != nil {
		q.copies++
		q.charge = o.copy
	}
	return fate
}

// outQueue returns this batch's queue of frames for port p, numbered no.
func (t *portThread) outQueue(no uint32, p *Port) *outQueue {
	q := t.pending[no]
	if q == nil {
		q = &outQueue{batch: netdev.NewBatch(BatchSize)}
		t.pending[no] = q
	}
	q.port = p
	if !q.touched {
		q.touched = true
		t.touched = append(t.touched, q)
	}
	return q
}

// flush sends every queued frame, one WriteBatch per output port, then
// wakes the copy senders that have copies waiting.
func (t *portThread) flush() {
	for _, q := range t.touched {
		t.flushQueue(q)
		q.touched = false
	}
	clear(t.touched)
	t.touched = t.touched[:0]
	t.wakeCopySenders()
}

// wakeCopySenders wakes the copy queues' senders that this batch's copies
// found asleep.
func (t *portThread) wakeCopySenders() {
	for _, q := range t.wakes {
		q.wakeSender()
	}
	clear(t.wakes)
	t.wakes = t.wakes[:0]
}

// flushQueue sends q's frames. Mirror copies that the device refuses (its
// queue is full) are charged to the mirror as drops; when originals and
// copies share a batch, the copies are assumed lost first.
func (t *portThread) flushQueue(q *outQueue) {
	if q.batch.Len() == 0 {
		return
	}
	if !t.holdCopies(q) {
		t.writeQueue(q)
	}
	q.batch.Reset()
	q.copies, q.charge = 0, nil
}

// holdCopies writes q's frames into its port's transmit ring without
// sending them, when they are all mirror copies (none a super-frame) and
// the port's device can hold them (netdev.HeldTransmitter); the thread
// kicks them later (see heldMax). Originals are never held: their
// latency matters.
func (t *portThread) holdCopies(q *outQueue) bool {
	h := q.port.held
	if h == nil || q.copies != q.batch.Len() || q.batch.Supers() > 0 {
		return false
	}
	q.port.txMu.Lock()
	defer q.port.txMu.Unlock()
	res, _ := h.TransmitHeld(q.batch)
	// Held copies this write dropped were the last holder's mirror's:
	// charge them before these copies become the ones held.
	q.port.chargeDrops(res, q.copies, q.charge)
	q.port.heldCharge = q.charge
	if t.heldN == 0 {
		t.heldSince = t.clock()
	}
	t.heldN += q.batch.Len()
	for _, hc := range t.held {
		if hc.port == q.port {
			return true
		}
	}
	q.port.holders++
	t.held = append(t.held, heldCopies{port: q.port})
	return true
}

// kickHeld sends the copies held in transmit rings; idle says that the
// thread is about to wait, so that it may leave a port's copies to
// another thread that holds some there too.
func (t *portThread) kickHeld(idle bool) {
	for i, hc := range t.held {
		t.kick(hc, idle)
		t.held[i] = heldCopies{}
	}
	t.held = t.held[:0]
	t.heldN = 0
}

// kick has hc's held copies sent, under its port's transmit lock,
// unless the thread is about to wait and another thread holds copies
// there: that one has every held slot of the ring sent, ours too,
// within its own bounds, or leaves them to the last holder when it
// waits in turn. (Under the lock, a holder's hand-off and its leaving
// are one step, so the last holder always has them sent.) A direction
// that carries only ACKs then does not pay a send() per copy of an ACK.
//
// The send is the port's copy sender's, busy thread or idle: the
// copies' kernel work (the device's transmit of each, and the
// receiver's input, which a veth runs inside the send) then runs on
// another goroutine, on the other core if one is free, and the thread
// takes its next frames at once. Only when the port has no copy sender
// (it is being removed) does the thread send itself.
func (t *portThread) kick(hc heldCopies, idle bool) {
	p := hc.port
	p.txMu.Lock()
	defer p.txMu.Unlock()
	p.holders--
	if idle && p.holders > 0 {
		return
	}
	if q := p.copyQueueFor(t.dp); q != nil {
		q.kickSoon()
		return
	}
	res := p.held.Kick()
	p.chargeDrops(res, 0, nil)
	p.retryHeld(t.dp, res)
}

// writeQueue writes q's frames under the port's transmit lock, which a
// panicking driver must not leave held.
func (t *portThread) writeQueue(q *outQueue) {
	q.port.txMu.Lock()
	defer q.port.txMu.Unlock()
	res, _ := t.tx.Send(q.port.Dev, q.batch)
	q.port.chargeDrops(res, q.copies, q.charge)
	if q.port.held != nil {
		q.port.retryHeld(t.dp, res)
	}
}

// retryHeld has p's copy sender send again the frames that a write to p
// left held because the kernel had no socket buffer for them: nothing
// else may come to send them. The caller holds p.txMu.
func (p *Port) retryHeld(dp *Datapath, res netdev.TxResult) {
	if res.Held == 0 || p.holders > 0 { // a holder sends them within its bounds
		return
	}
	if q := p.copyQueueFor(dp); q != nil {
		q.kickSoon()
	}
}

// chargeDrops charges the mirror copies a write to p dropped: of the
// write's own frames, up to copies of them to charge (the copies are
// assumed lost first), and the held copies it dropped to the mirror of
// the copies last held (heldCharge), which a write that leaves nothing
// held ends. Inline copies to p then pause. The caller holds p.txMu.
func (p *Port) chargeDrops(res netdev.TxResult, copies int, charge *CopyStats) {
	own := min(res.Dropped, copies)
	if own > 0 && charge != nil { // no atomic add per batch when nothing dropped
		charge.Dropped.Add(uint64(own))
	}
	if res.HeldDropped > 0 && p.heldCharge != nil {
		p.heldCharge.Dropped.Add(uint64(res.HeldDropped))
	}
	if res.Held == 0 {
		p.heldCharge = nil // frames held later are no copies of it
	}
	if own > 0 || res.HeldDropped > 0 {
		p.pauseCopies(monotime()) // now: a batch that cut super-frames may have taken long
	}
}

// clock returns monotime, read once per batch: that is precise enough
// for copy pauses.
func (t *portThread) clock() int64 {
	if t.now == 0 {
		t.now = monotime()
	}
	return t.now
}
