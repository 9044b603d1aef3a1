package netdev

import (
	"sync"
	"sync/atomic"

	"gvs/internal/packet"
)

// A tunnel port's receive queue: frames packed by their length.
//
// The underlay's reader decapsulates faster than a port's thread takes
// frames whenever that thread is descheduled, so the queue must hold a
// few milliseconds of traffic: at 2 Gbit/s of MTU frames, 1 ms is about
// 170 frames. A queue of fixed MaxFrame slots pays 9 KiB for each of
// them (2,048 slots: 19 MiB per port), so frames are packed one after
// another into one byte area instead, each in one piece (a frame that
// would run past the end starts again at the beginning), with a
// descriptor (where it ends, its length, its tunnel metadata) in a
// second ring. The queue is full when either ring is: the bytes bound
// memory, the descriptors bound how many tiny frames (TCP ACKs) wait.

const (
	// tunnelRxBytes is the frame bytes a port's receive queue holds:
	// about 2,700 MTU-size frames, 450 jumbo frames.
	tunnelRxBytes = 4 << 20
	// tunnelRxFrames is the most frames waiting in a port's receive
	// queue (a power of two, so that the counters may wrap).
	tunnelRxFrames = 4096
)

// rxRing passes frames from the underlay's reader and the native receive
// path (producers, serialised by a per-port mutex) to the port's thread
// (one consumer) without allocation.
type rxRing struct {
	putMu sync.Mutex // producers: the underlay's reader and native receive
	data  []byte     // tunnelRxBytes of packed frames
	descs []rxDesc   // tunnelRxFrames
	// head and tail count frames taken and put; freed is the byte
	// position up to which the consumer is done with data, end (the
	// producers', under putMu) where the last frame put ends. Byte
	// positions grow without wrapping; data's offset is their remainder.
	head, tail atomic.Uint32
	freed      atomic.Uint64
	end        uint64
	mask       uint32 // len(descs)-1: descs has a power-of-two length
	wake       chan struct{}
	gro        groJoiner // the consumer's
}

// rxDesc is one waiting frame: data[(end-n)%len(data):][:n].
type rxDesc struct {
	end  uint64
	n    uint32
	meta packet.TunnelMeta
}

func (r *rxRing) init() { r.initSize(tunnelRxBytes, tunnelRxFrames) }

// initSize makes a ring of bytes frame bytes and at most frames frames
// (a power of two, so that the counters may wrap).
func (r *rxRing) initSize(bytes, frames int) {
	r.data = make([]byte, bytes)
	r.descs = make([]rxDesc, frames)
	r.mask = uint32(frames - 1)
	r.wake = make(chan struct{}, 1)
}

// put copies frame and its metadata into the ring; false when it is
// full (of frames or of bytes) or the frame could never fit.
func (r *rxRing) put(frame []byte, md *packet.TunnelMeta) bool {
	return r.putParts(nil, frame, md)
}

// putParts is put for a frame given in two pieces, head then body.
func (r *rxRing) putParts(head, body []byte, md *packet.TunnelMeta) bool {
	r.putMu.Lock()
	defer r.putMu.Unlock()
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		return false
	}
	size := uint64(len(r.data))
	n := uint64(len(head) + len(body))
	start := r.end
	if off := start % size; off+n > size { // one piece: start again at 0
		start += size - off
	}
	if n > size || start+n-r.freed.Load() > size {
		return false
	}
	off := start % size
	copy(r.data[off+uint64(copy(r.data[off:off+n], head)):off+n], body)
	d := &r.descs[t&r.mask]
	d.end, d.n, d.meta = start+n, uint32(n), *md
	r.end = start + n
	r.tail.Store(t + 1)
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return true
}

// frame returns descriptor d's bytes.
func (r *rxRing) frame(d *rxDesc) []byte {
	off := (d.end - uint64(d.n)) % uint64(len(r.data))
	return r.data[off : off+uint64(d.n)]
}

// take copies waiting frames into bufs (and their metadata into tun, if
// not nil) and returns how many, and the tally of the frames received
// (segments, as they came). With join, consecutive segments of a flow
// with the same metadata are joined into super-frames, described in offs
// (which must then be as long as bufs); without, offs (if not nil) says
// every frame is whole.
func (r *rxRing) take(bufs [][]byte, sizes []int, offs []Offload, tun []packet.TunnelMeta, join bool) (int, batchCount) {
	h0, t := r.head.Load(), r.tail.Load()
	h := h0
	var c batchCount
	f := readFill{gro: &r.gro, bufs: bufs, sizes: sizes, offs: offs, tun: tun, join: join}
	for ; h != t; h++ {
		d := &r.descs[h&r.mask]
		frame := r.frame(d)
		if !f.add(frame, &d.meta) {
			break
		}
		c.add(len(frame), 0)
	}
	f.end()
	if h != h0 {
		r.freed.Store(r.descs[(h-1)&r.mask].end)
		r.head.Store(h)
	}
	return f.k, c
}

// readFill fills one read's buffers from queued frames, for both receive
// queues: with join, consecutive TCP segments of a flow with the same
// metadata are joined into one super-frame (described in offs);
// without, each frame is copied whole.
type readFill struct {
	gro   *groJoiner
	bufs  [][]byte
	sizes []int
	offs  []Offload
	tun   []packet.TunnelMeta
	join  bool
	k     int                // buffers filled
	cur   *packet.TunnelMeta // the metadata of the frame being joined
}

// add takes frame into the read, joined to the frame before it or in a
// buffer of its own. It returns false, frame not taken, when no buffer
// is left.
func (f *readFill) add(frame []byte, md *packet.TunnelMeta) bool {
	if f.cur != nil && *f.cur == *md && f.gro.join(frame) {
		return true
	}
	if f.k == len(f.bufs) {
		return false
	}
	f.end()
	k := f.k
	if f.join {
		f.sizes[k] = f.gro.start(f.bufs[k], frame)
		f.cur = md
	} else {
		f.sizes[k] = copy(f.bufs[k][:cap(f.bufs[k])], frame)
		if k < len(f.offs) {
			f.offs[k] = Offload{}
		}
	}
	if k < len(f.tun) {
		f.tun[k] = *md
	}
	f.k++
	return true
}

// end closes the super-frame being joined, if any.
func (f *readFill) end() {
	if f.cur != nil {
		f.sizes[f.k-1], f.offs[f.k-1] = f.gro.finish()
		f.cur = nil
	}
}
