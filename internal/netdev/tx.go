package netdev

import "gvs/internal/packet"

// The one output path. Everything the datapath sends to a port, originals
// and mirror copies alike, goes through a Sender: it hands super-frames
// whole to ports that take them, cuts them for the others (and truncates
// the cut segments to a mirror's snaplen), and reports what became of
// the batch, so that no caller has to decide about segmentation or read
// a port's statistics before and after a write. OVS's netdev_send plays
// the same role.

// TxResult is what became of the frames of one batch write, segments
// counted one by one.
type TxResult struct {
	Sent    int // handed to the device
	Dropped int // refused or malformed: counted in TxDropped or TxErrors
	// HeldDropped counts frames that an earlier TransmitHeld left held
	// (and reported as sent), which this call's send had to drop: the
	// device went down, or the kernel kept refusing them. They are
	// counted in TxDropped, and no longer in TxPackets. Sent and Dropped
	// are about this call's own frames only.
	HeldDropped int
	// Held counts the frames a HeldTransmitter holds after this call:
	// TransmitHeld's, and any the kernel had no socket buffer for (of
	// this call or earlier ones), which stay queued. Only a later
	// Transmit or Kick sends them, so the caller must see that one comes.
	Held int
}

func (r *TxResult) add(o TxResult) {
	r.Sent += o.Sent
	r.Dropped += o.Dropped
	r.HeldDropped += o.HeldDropped
	r.Held = o.Held // the latest call's
}

func (b batchCount) result() TxResult {
	return TxResult{Sent: int(b.packets), Dropped: int(b.dropped + b.errors)}
}

// Batch is a batch of frames for one port, with what is left to do on
// each. Its slices grow on first use and are reused after Reset, so a
// batch that is kept allocates nothing per packet.
type Batch struct {
	Frames [][]byte
	Meta   []FrameMeta // per frame
	supers int
	snaps  bool
}

// FrameMeta is what a Batch knows about one of its frames.
type FrameMeta struct {
	Off  Offload // a super-frame's unfinished work, or zero
	Orig int     // the length before truncation; <= len(frame): whole
	// Snap, for a super-frame, cuts it into segments of at most this many
	// bytes (a mirror's snaplen); 0 keeps them whole.
	Snap uint32
	// Tun is the frame's tunnel metadata, which a tunnel port whose
	// options say "flow" sends by; nil for none. It points at data the
	// datapath shares read-only among every frame of a flow.
	Tun *packet.TunnelMeta
}

// NewBatch returns a batch with room for n frames.
func NewBatch(n int) *Batch {
	return &Batch{Frames: make([][]byte, 0, n), Meta: make([]FrameMeta, 0, n)}
}

// Add appends frame, with its length before truncation (orig) and, for
// a super-frame, the length to cut its segments to (snap).
func (b *Batch) Add(frame []byte, off Offload, orig int, snap uint32) {
	b.Frames = append(b.Frames, frame)
	b.Meta = append(b.Meta, FrameMeta{Off: off, Orig: orig, Snap: snap})
	if off.IsSuper() {
		b.supers++
		b.snaps = b.snaps || snap > 0
	}
}

// Origs returns each frame's length before truncation, for
// OrigLenWriter. It allocates: only older drivers need it.
func (b *Batch) Origs() []int {
	o := make([]int, b.Len())
	for i, m := range b.Meta {
		o[i] = m.Orig
	}
	return o
}

// Len is the number of frames in b.
func (b *Batch) Len() int { return len(b.Frames) }

// Supers is the number of super-frames in b.
func (b *Batch) Supers() int { return b.supers }

// Reset empties b, dropping its references to the frames.
func (b *Batch) Reset() {
	clear(b.Frames)
	b.Frames, b.Meta = b.Frames[:0], b.Meta[:0]
	b.supers, b.snaps = 0, false
}

// Transmitter is a Netdev whose batch write reports what became of the
// batch. Transmit gets super-frames only if the port takes them
// (SuperFrameTaker); it counts what it refuses in the port's TxDropped or
// TxErrors as well as in the result. Like WriteBatch, it never waits long.
type Transmitter interface {
	Transmit(b *Batch) (TxResult, error)
}

// HeldTransmitter is a Transmitter that can leave a batch queued in
// the kernel's transmit ring without the system call that sends it, so
// that several batches (mirror copies, for one) go in one send: Kick
// sends what is held, and any Transmit sends it too. The caller that
// holds frames must Kick before it waits, so none is held for long. Like
// Transmit, neither may be called concurrently on one port.
type HeldTransmitter interface {
	Transmitter
	TransmitHeld(b *Batch) (TxResult, error)
	// Kick returns, as HeldDropped, the held frames it dropped (the
	// device is down), and as Held those the kernel had no socket
	// buffer for, which stay held for the next Kick.
	Kick() TxResult
	// DropHeld takes back the frames held, and returns them as
	// HeldDropped: for a caller whose Kicks the kernel keeps refusing.
	DropHeld() TxResult
}

// RxReadier is a Netdev that can tell, without a system call, whether
// ReadBatch would return at once.
type RxReadier interface {
	RxReady() bool
}

// SuperFrameTaker is a Transmitter that may take super-frames whole, the
// kernel or the NIC behind it cutting them.
type SuperFrameTaker interface {
	TakesSuperFrames() bool
}

// TakesSuperFrames reports whether dev's Transmit takes super-frames.
func TakesSuperFrames(dev Netdev) bool {
	s, ok := dev.(SuperFrameTaker)
	_, tx := dev.(Transmitter)
	return ok && tx && s.TakesSuperFrames()
}

// senderBufs is how many segments a Sender cuts before writing them.
const senderBufs = 64

// Sender writes batches to ports. It keeps the buffers for cutting
// super-frames (made on the first super-frame that needs cutting), so a
// Sender belongs to one goroutine at a time.
type Sender struct {
	seg  Segmenter
	bufs [][]byte
	out  Batch
}

// Send writes b to dev: super-frames whole where dev takes them and no
// snaplen applies, cut everywhere else; a super-frame that cannot be cut
// is dropped and counted in the result. b is left as it was.
func (s *Sender) Send(dev Netdev, b *Batch) (TxResult, error) {
	return s.send(target{dev: dev}, b, b.supers > 0 && TakesSuperFrames(dev))
}

// SendTo writes b with t, which takes no super-frames: every one is cut
// first. It is Send for a transmitter that is no port (a span session's
// tunnel destination).
func (s *Sender) SendTo(t Transmitter, b *Batch) (TxResult, error) {
	return s.send(target{t: t}, b, false)
}

// target is where a Sender writes: a port, or a bare Transmitter. It is
// passed by value, so that neither Send nor SendTo allocates.
type target struct {
	dev Netdev
	t   Transmitter
}

// runKeeper is a Transmitter that sends the segments of a super-frame
// best in one write (a UDP tunnel port sends them in one GSO send).
type runKeeper interface {
	keepsSegmentRuns() bool
}

// keepsRuns reports whether t's port or transmitter is a runKeeper that
// wants it.
func (t target) keepsRuns() bool {
	var k runKeeper
	var ok bool
	if t.t != nil {
		k, ok = t.t.(runKeeper)
	} else {
		k, ok = t.dev.(runKeeper)
	}
	return ok && k.keepsSegmentRuns()
}

func (t target) transmit(b *Batch) (TxResult, error) {
	if t.t != nil {
		return t.t.Transmit(b)
	}
	return transmit(t.dev, b)
}

// send writes b to to; whole says that to takes super-frames whole.
func (s *Sender) send(to target, b *Batch, whole bool) (TxResult, error) {
	if b.supers == 0 || (whole && !b.snaps) {
		return to.transmit(b)
	}
	if s.bufs == nil {
		s.bufs = make([][]byte, senderBufs)
		for i := range s.bufs {
			s.bufs[i] = make([]byte, MaxFrame)
		}
		s.out = *NewBatch(senderBufs)
	}
	var res TxResult
	var firstErr error
	used := 0
	keep := to.keepsRuns()
	flush := func() {
		if s.out.Len() > 0 {
			r, err := to.transmit(&s.out)
			res.add(r)
			if firstErr == nil {
				firstErr = err
			}
		}
		s.out.Reset()
		used = 0
	}
	for i, f := range b.Frames {
		m := &b.Meta[i]
		off, snap := m.Off, m.Snap
		if !off.IsSuper() || (whole && snap == 0) {
			if s.out.Len() == senderBufs {
				flush()
			}
			s.out.Add(f, off, m.Orig, 0)
			s.out.Meta[s.out.Len()-1].Tun = m.Tun
			continue
		}
		if !s.seg.Start(f, off) {
			res.Dropped++
			continue
		}
		// A super-frame's segments go out in one write where they fit
		// one, for a port that sends a run of them at once (a tunnel's
		// UDP GSO); other ports get full writes, fewer system calls.
		if left := s.seg.Left(); keep && s.out.Len()+left > senderBufs && left <= senderBufs {
			flush()
		}
		for {
			if used == len(s.bufs) || s.out.Len() == senderBufs {
				flush()
			}
			n := s.seg.Next(s.bufs[used])
			if n == 0 {
				break
			}
			seg := s.bufs[used][:n]
			if snap > 0 && int(snap) < n {
				seg = seg[:snap]
			}
			s.out.Add(seg, Offload{}, n, 0)
			s.out.Meta[s.out.Len()-1].Tun = m.Tun
			used++
		}
	}
	flush()
	return res, firstErr
}

// transmit writes b with dev's Transmit. A driver without one (written
// against the older interface) gets WriteBatch, or WriteBatchOrig where
// truncation must be recorded, and its result is read from its counters,
// which the caller's transmit lock keeps to this batch.
func transmit(dev Netdev, b *Batch) (TxResult, error) {
	if t, ok := dev.(Transmitter); ok {
		return t.Transmit(b)
	}
	before := dev.Stats()
	var err error
	if w, ok := dev.(OrigLenWriter); ok {
		err = w.WriteBatchOrig(b.Frames, b.Origs())
	} else {
		err = dev.WriteBatch(b.Frames)
	}
	after := dev.Stats()
	lost := int((after.TxDropped + after.TxErrors) - (before.TxDropped + before.TxErrors))
	lost = min(max(lost, 0), b.Len())
	return TxResult{Sent: b.Len() - lost, Dropped: lost}, err
}
