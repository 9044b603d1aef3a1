package datapath

import (
	"errors"
	"log/slog"
	"time"

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
}

// maxVariants bounds the re-encoded copies of one frame per batch.
const maxVariants = 4

type outQueue struct {
	port   *Port
	frames [][]byte
	// copies counts the mirror copies among frames; charge is the mirror
	// that device refusals of this batch are charged to.
	copies int
	charge *CopyStats
}

func newPortThread(dp *Datapath, p *Port) *portThread {
	t := &portThread{dp: dp, port: p, quit: make(chan struct{}), done: make(chan struct{}),
		sizes: make([]int, BatchSize), pending: map[uint32]*outQueue{}}
	for range BatchSize {
		t.bufs = append(t.bufs, make([]byte, packet.Headroom+netdev.MaxFrame))
	}
	for range BatchSize * maxVariants {
		t.scratch = append(t.scratch, make([]byte, packet.Headroom+netdev.MaxFrame))
	}
	t.acts.Outputs = make([]Output, 0, 64)
	return t
}

func (t *portThread) stop() {
	close(t.quit)
	// The owner closes the netdev, which unblocks ReadBatch; don't wait
	// here for the thread, since the close may come after SetConfig.
}

func (t *portThread) run() {
	defer close(t.done)
	rx := make([][]byte, BatchSize)
	for i := range rx {
		rx[i] = t.bufs[i][packet.Headroom:]
	}
	for {
		n, err := t.port.Dev.ReadBatch(rx, t.sizes)
		select {
		case <-t.quit:
			return
		default:
		}
		if err != nil {
			if errors.Is(err, netdev.ErrClosed) {
				return
			}
			slog.Warn("datapath: receive failed", "port", t.port.Name, "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		t.processBatch(rx[:n])
	}
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
		if len(t.pkt.Frame) < packet.EthernetLen {
			continue // not even an Ethernet header: nothing to switch on
		}
		// A parse error only means the key stops at the bad header; the
		// key is still valid and the frame is switched on it, as OVS does.
		_ = packet.Parse(t.pkt.Frame, t.port.No, &t.pkt.Key, &t.pkt.Off)
		t.acts.Reset()
		tr.Translate(&t.pkt, &t.acts)
		t.execute(cfg, t.bufs[i], &t.pkt, &t.acts)
	}
	t.flush()
}

// execute queues the packet on each output port in the encoding the port
// needs; frames already in that encoding are queued without copying.
func (t *portThread) execute(cfg *Config, buf []byte, pkt *Packet, acts *Actions) {
	_ = buf
	for _, o := range acts.Outputs {
		p, ok := cfg.Ports[o.Port]
		if !ok {
			continue
		}
		frame := t.encode(pkt, o)
		if frame == nil {
			continue
		}
		if o.Copy != nil {
			orig := len(frame)
			frame = t.truncate(frame, o)
			if !p.copiesInline() {
				t.queueCopy(p, frame, orig, o.Copy)
				continue
			}
			if p.copiesPaused(t.clock()) {
				o.Copy.Dropped.Add(1)
				continue
			}
		}
		q := t.outQueue(o.Port, p)
		q.frames = append(q.frames, frame)
		if o.Copy != nil {
			q.copies++
			q.charge = o.Copy
		}
	}
}

// outQueue returns this batch's queue of frames for port p, numbered no.
func (t *portThread) outQueue(no uint32, p *Port) *outQueue {
	q := t.pending[no]
	if q == nil {
		q = &outQueue{frames: make([][]byte, 0, BatchSize)}
		t.pending[no] = q
	}
	q.port = p
	if len(q.frames) == 0 {
		t.touched = append(t.touched, q)
	}
	return q
}

// encode returns the frame with the VLAN header that o asks for.
func (t *portThread) encode(pkt *Packet, o Output) []byte {
	inTagged := pkt.Key.VLANTCI&packet.VLANPresent != 0 && pkt.Off.VLAN != 0
	wantTCI := uint16(o.PCP)<<packet.VLANPCPShift | o.VID
	if !o.Tagged && !inTagged {
		return pkt.Frame
	}
	if o.Tagged && inTagged && packet.WireTCI(pkt.Key.VLANTCI) == wantTCI && outerTPID(pkt.Frame) == packet.EtherTypeVLAN {
		return pkt.Frame
	}
	if t.nextScr >= len(t.scratch) {
		return nil // more re-encodings than budgeted in this batch: drop
	}
	dst := t.scratch[t.nextScr]
	t.nextScr++
	body := dst[packet.Headroom : packet.Headroom+len(pkt.Frame)]
	copy(body, pkt.Frame)
	if inTagged {
		body = packet.PopVLAN(body)
	}
	if !o.Tagged {
		return body
	}
	out, err := packet.PushVLAN(dst, body, packet.EtherTypeVLAN, wantTCI)
	if err != nil {
		return nil
	}
	return out
}

func outerTPID(frame []byte) uint16 {
	return uint16(frame[12])<<8 | uint16(frame[13])
}

// flush sends every queued frame, one WriteBatch per output port. Mirror
// copies that the device refuses (its queue is full) are charged to the
// mirror as drops; when originals and copies share a batch, the copies
// are assumed lost first.
func (t *portThread) flush() {
	for _, q := range t.touched {
		q.port.txMu.Lock()
		if q.copies == 0 {
			_ = q.port.Dev.WriteBatch(q.frames)
		} else {
			before := deviceDrops(q.port.Dev)
			_ = q.port.Dev.WriteBatch(q.frames)
			if lost := deviceDrops(q.port.Dev) - before; lost > 0 {
				q.charge.Dropped.Add(min(lost, uint64(q.copies)))
				q.port.pauseCopies(t.clock())
			}
		}
		q.port.txMu.Unlock()
		clear(q.frames)
		q.frames = q.frames[:0]
		q.copies, q.charge = 0, nil
	}
	clear(t.touched)
	t.touched = t.touched[:0]
}

// clock returns monotime, read once per batch: that is precise enough
// for copy pauses.
func (t *portThread) clock() int64 {
	if t.now == 0 {
		t.now = monotime()
	}
	return t.now
}

// truncate cuts a mirror copy to the mirror's snaplen.
func (t *portThread) truncate(frame []byte, o Output) []byte {
	if o.Snaplen > 0 && int(o.Snaplen) < len(frame) {
		o.Copy.Truncated.Add(1)
		return frame[:o.Snaplen]
	}
	return frame
}

// queueCopy hands a mirror copy, whose original length was orig, to its
// destination's queue.
func (t *portThread) queueCopy(p *Port, frame []byte, orig int, charge *CopyStats) {
	if !p.copyQueueFor().push(frame, orig, charge) {
		charge.Dropped.Add(1)
	}
}
