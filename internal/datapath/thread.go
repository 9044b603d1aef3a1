package datapath

import (
	"errors"
	"log/slog"
	"time"

	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/packet"
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
	acts  Actions

	// scratch holds re-encoded copies of frames (a tag pushed or
	// removed), BatchSize*maxVariants of them, reused every batch.
	scratch [][]byte
	nextScr int
	now     int64 // monotime, read at most once per batch; 0: not yet

	// pending holds the frames queued for each output port in this batch.
	pending map[uint32]*outQueue
	touched []*outQueue

	// For a port that hands over super-frames whole (netdev.OffloadPort):
	// what each received frame leaves to do, and buffers for cutting a
	// super-frame for outputs that cannot take it whole.
	offloads []netdev.Offload
	segBufs  [][]byte
	seg      netdev.Segmenter
}

// maxVariants bounds the re-encoded copies of one frame per batch.
const maxVariants = 4

type outQueue struct {
	port    *Port
	frames  [][]byte
	offs    []netdev.Offload // per frame
	supers  int              // super-frames among frames
	touched bool             // in portThread.touched
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
		for range BatchSize {
			t.segBufs = append(t.segBufs, make([]byte, packet.Headroom+netdev.MaxFrame))
		}
	}
	for range BatchSize {
		t.bufs = append(t.bufs, make([]byte, packet.Headroom+frameSize))
	}
	for range BatchSize * maxVariants {
		t.scratch = append(t.scratch, make([]byte, packet.Headroom+netdev.MaxFrame))
	}
	t.acts.Outputs = make([]Output, 0, 64)
	return t
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
	for {
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
			slog.Warn("datapath: receive failed", "port", t.port.Name, "error", err)
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
		clear(q.frames)
		q.frames, q.offs = q.frames[:0], q.offs[:0]
		q.copies, q.charge, q.supers = 0, nil, 0
		q.touched = false
	}
	clear(t.touched)
	t.touched = t.touched[:0]
}

// read receives a batch, with super-frames whole from an OffloadPort.
func (t *portThread) read(rx [][]byte) (int, error) {
	if t.port.offload != nil {
		return t.port.offload.ReadBatchOffload(rx, t.sizes, t.offloads)
	}
	return t.port.Dev.ReadBatch(rx, t.sizes)
}

// processBatch translates and executes each frame, then flushes outputs.
func (t *portThread) processBatch(frames [][]byte) {
	cfg := t.dp.cfg.Load()
	tr := t.port.Translator
	t.nextScr = 0
	t.now = 0
	for i, f := range frames {
		t.pkt.Frame = f[:t.sizes[i]]
		t.pkt.InPort = t.port.No
		t.pkt.Offload = netdev.Offload{}
		if t.offloads != nil {
			t.pkt.Offload = t.offloads[i]
		}
		if len(t.pkt.Frame) < packet.EthernetLen {
			continue // not even an Ethernet header: nothing to switch on
		}
		// A parse error only means the key stops at the bad header; the
		// key is still valid and the frame is switched on it, as OVS does.
		_ = packet.Parse(t.pkt.Frame, t.port.No, &t.pkt.Key, &t.pkt.Off)
		t.acts.Reset()
		tr.Translate(&t.pkt, &t.acts)
		t.execute(cfg, &t.pkt, &t.acts)
	}
	t.flush()
}

// execute queues the packet on each output port in the encoding the port
// needs; frames already in that encoding are queued without copying.
func (t *portThread) execute(cfg *Config, pkt *Packet, acts *Actions) {
	for _, o := range acts.Outputs {
		p, ok := cfg.Ports[o.Port]
		if !ok {
			continue
		}
		if pkt.Offload.IsSuper() && !takesWhole(p, pkt, o) {
			t.cutSuper(p, pkt, o)
			continue
		}
		if frame := t.encode(pkt, o); frame != nil {
			countCopy(o.Copy, t.output(p, o, frame, pkt.Offload))
		}
	}
}

// copyFate is what became of a mirror copy on its way to a port.
type copyFate struct{ dropped, truncated bool }

// countCopy charges what became of one packet's copy to its mirror.
func countCopy(c *CopyStats, f copyFate) {
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
func (t *portThread) output(p *Port, o Output, frame []byte, off netdev.Offload) (fate copyFate) {
	if o.Copy != nil {
		orig := len(frame)
		if o.Snaplen > 0 && int(o.Snaplen) < len(frame) {
			frame, fate.truncated = frame[:o.Snaplen], true
		}
		if !p.copiesInline() {
			q := p.copyQueueFor(t.dp)
			fate.dropped = q == nil || !q.push(frame, orig, o.Copy)
			return fate
		}
		if p.copiesPaused(t.clock()) {
			fate.dropped = true
			return fate
		}
	}
	q := t.outQueue(o.Port, p)
	q.frames = append(q.frames, frame)
	q.offs = append(q.offs, off)
	if off.IsSuper() {
		q.supers++
	}
	if o.Copy != nil {
		q.copies++
		q.charge = o.Copy
	}
	return fate
}

// cutSuper sends a super-frame that p cannot take whole in wire-size
// segments. A mirror copy for p's copy queue goes there whole, and the
// queue's sender cuts it: a batch of super-frames cut here would be far
// more copies than the queue has slots.
func (t *portThread) cutSuper(p *Port, pkt *Packet, o Output) {
	if o.Copy != nil && !p.copiesInline() && !o.VLAN.Changes() {
		t.queueSuperCopy(p, pkt, o)
		return
	}
	t.sendSegments(p, pkt, o)
}

// queueSuperCopy hands a mirror copy of a super-frame, whole, to p's copy
// queue.
func (t *portThread) queueSuperCopy(p *Port, pkt *Packet, o Output) {
	fate := copyFate{truncated: o.Snaplen > 0 && int(o.Snaplen) < netdev.FirstSegmentLen(pkt.Frame, pkt.Offload)}
	q := p.copyQueueFor(t.dp)
	fate.dropped = q == nil || !q.pushSuper(pkt.Frame, pkt.Offload, o.Snaplen, o.Copy)
	countCopy(o.Copy, fate)
}

// takesWhole reports whether the super-frame in pkt can go to p as it is:
// p passes super-frames through, and o neither re-encodes its VLAN nor
// truncates it.
func takesWhole(p *Port, pkt *Packet, o Output) bool {
	if p.offload == nil || o.VLAN.Changes() {
		return false
	}
	return o.Copy == nil || (p.copiesInline() && (o.Snaplen == 0 || int(o.Snaplen) >= len(pkt.Frame)))
}

// sendSegments sends a super-frame to an output that cannot take it
// whole, cut into wire-size frames. They go out at once, a chunk at a
// time, after what is already queued for p, so that p's order is kept.
func (t *portThread) sendSegments(p *Port, pkt *Packet, o Output) {
	q := t.outQueue(o.Port, p)
	t.flushQueue(q)
	if !t.seg.Start(pkt.Frame, pkt.Offload) {
		// The receiving port only hands over super-frames it checked
		// can be cut; a copy is counted as lost all the same.
		countCopy(o.Copy, copyFate{dropped: o.Copy != nil})
		return
	}
	encode := o.VLAN.Changes()
	var fate copyFate // of the packet's copy: counted once, as the packet is
	for more := true; more; {
		for _, buf := range t.segBufs {
			size := t.seg.Next(buf[packet.Headroom:])
			if more = size > 0; !more {
				break
			}
			frame := buf[packet.Headroom : packet.Headroom+size]
			if encode {
				frame = reencode(buf, frame, &o.VLAN)
			}
			if frame != nil {
				f := t.output(p, o, frame, netdev.Offload{})
				fate.dropped, fate.truncated = fate.dropped || f.dropped, fate.truncated || f.truncated
			}
		}
		t.flushQueue(q)
	}
	if o.Copy != nil {
		countCopy(o.Copy, fate)
	}
}

// outQueue returns this batch's queue of frames for port p, numbered no.
func (t *portThread) outQueue(no uint32, p *Port) *outQueue {
	q := t.pending[no]
	if q == nil {
		q = &outQueue{frames: make([][]byte, 0, BatchSize), offs: make([]netdev.Offload, 0, BatchSize)}
		t.pending[no] = q
	}
	q.port = p
	if !q.touched {
		q.touched = true
		t.touched = append(t.touched, q)
	}
	return q
}

// encode returns the frame with the VLAN headers that o asks for.
func (t *portThread) encode(pkt *Packet, o Output) []byte {
	if !o.VLAN.Changes() {
		return pkt.Frame
	}
	if t.nextScr >= len(t.scratch) || len(pkt.Frame) > netdev.MaxFrame {
		return nil // more re-encodings than budgeted in this batch: drop
	}
	dst := t.scratch[t.nextScr]
	t.nextScr++
	body := dst[packet.Headroom : packet.Headroom+len(pkt.Frame)]
	copy(body, pkt.Frame)
	return reencode(dst, body, &o.VLAN)
}

// reencode applies e to frame, which lies in buf with headroom in front,
// in place; nil if there is no room.
func reencode(buf, frame []byte, e *VLANEdit) []byte {
	for range e.Pop {
		frame = packet.PopVLAN(frame)
	}
	for i := min(int(e.NPush), len(e.Push)) - 1; i >= 0; i-- {
		h := e.Push[i]
		out, err := packet.PushVLAN(buf, frame, h.TPID, h.TCI)
		if err != nil {
			return nil
		}
		frame = out
	}
	return frame
}

// flush sends every queued frame, one WriteBatch per output port.
func (t *portThread) flush() {
	for _, q := range t.touched {
		t.flushQueue(q)
		q.touched = false
	}
	clear(t.touched)
	t.touched = t.touched[:0]
}

// flushQueue sends q's frames. Mirror copies that the device refuses (its
// queue is full) are charged to the mirror as drops; when originals and
// copies share a batch, the copies are assumed lost first.
func (t *portThread) flushQueue(q *outQueue) {
	if len(q.frames) == 0 {
		return
	}
	t.writeQueue(q)
	clear(q.frames)
	q.frames, q.offs = q.frames[:0], q.offs[:0]
	q.copies, q.charge, q.supers = 0, nil, 0
}

// writeQueue writes q's frames under the port's transmit lock, which a
// panicking driver must not leave held.
func (t *portThread) writeQueue(q *outQueue) {
	q.port.txMu.Lock()
	defer q.port.txMu.Unlock()
	var before uint64
	if q.copies > 0 {
		before = deviceDrops(q.port.Dev)
	}
	if q.supers > 0 && q.port.offload != nil {
		_ = q.port.offload.WriteBatchOffload(q.frames, q.offs)
	} else {
		_ = q.port.Dev.WriteBatch(q.frames)
	}
	if q.copies > 0 {
		if lost := deviceDrops(q.port.Dev) - before; lost > 0 {
			q.charge.Dropped.Add(min(lost, uint64(q.copies)))
			q.port.pauseCopies(monotime()) // now: a batch that cut super-frames may have taken long
		}
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
