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

	// pending holds the frames queued for each output port in this batch.
	pending map[uint32]*outQueue
	touched []*outQueue
}

// maxVariants bounds the re-encoded copies of one frame per batch.
const maxVariants = 4

type outQueue struct {
	port   *Port
	frames [][]byte
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
			t.sendCopy(p, frame, o)
			continue
		}
		q := t.pending[o.Port]
		if q == nil {
			q = &outQueue{frames: make([][]byte, 0, BatchSize)}
			t.pending[o.Port] = q
		}
		if q.port != p {
			q.port = p
		}
		if len(q.frames) == 0 {
			t.touched = append(t.touched, q)
		}
		q.frames = append(q.frames, frame)
	}
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

// flush sends every queued frame, one WriteBatch per output port.
func (t *portThread) flush() {
	for _, q := range t.touched {
		q.port.txMu.Lock()
		_ = q.port.Dev.WriteBatch(q.frames)
		q.port.txMu.Unlock()
		clear(q.frames)
		q.frames = q.frames[:0]
	}
	clear(t.touched)
	t.touched = t.touched[:0]
}

// sendCopy hands a mirror copy to its destination's queue, truncated to
// the mirror's snaplen.
func (t *portThread) sendCopy(p *Port, frame []byte, o Output) {
	orig := len(frame)
	if o.Snaplen > 0 && int(o.Snaplen) < len(frame) {
		frame = frame[:o.Snaplen]
		o.Copy.Truncated.Add(1)
	}
	if !p.copyQueueFor().push(frame, orig, o.Copy) {
		o.Copy.Dropped.Add(1)
	}
}
