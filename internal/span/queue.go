package span

import "sync/atomic"

// queueLen is how many copies wait for one destination's sender. A
// destination that falls this far behind loses copies (counted) rather
// than hold up the reader, and with it every other destination.
const queueLen = 1024

// item is one copy on its way to a destination. Its buffer is reused, so
// a steady flow of copies allocates nothing.
type item struct {
	buf      []byte
	vnet     [vnetHdrLen]byte // the kernel's offload header, for dev: sends
	orig     int              // the packet's length before snaplen cut it
	ts       int64            // receive time, Unix nanoseconds
	src      int              // index of the source in the session
	outgoing bool             // the source sent it (rather than received it)
}

// queue is a bounded queue of copies with a free list of the same size:
// the reader takes a free item or counts a drop, never waits.
type queue struct {
	free, full chan *item
	dropped    atomic.Uint64
}

func newQueue(n int) *queue {
	q := &queue{free: make(chan *item, n), full: make(chan *item, n)}
	for range n {
		q.free <- &item{}
	}
	return q
}

// get returns a free item, or nil (and counts a drop) if the destination
// has queueLen copies waiting.
func (q *queue) get() *item {
	select {
	case it := <-q.free:
		return it
	default:
		q.dropped.Add(1)
		return nil
	}
}

// fill copies frame into it, growing its buffer only the first time a
// copy this large passes.
func (it *item) fill(frame []byte) {
	if cap(it.buf) < len(frame) {
		it.buf = make([]byte, len(frame), max(len(frame), 2048))
	}
	it.buf = it.buf[:len(frame)]
	copy(it.buf, frame)
}
