package span

import (
	"sync"
	"sync/atomic"
)

// queueLen is how many copies wait for one destination's sender. A
// destination that falls this far behind loses copies (counted) rather
// than hold up the reader, and with it every other destination.
const queueLen = 1024

// maxQueueBytes bounds the memory one destination's copies keep in their
// buffers: a buffer grows to the largest copy it carried (a super-frame
// is up to 64 KiB), so queueLen of them could hold 64 MiB. A copy that
// would take the queue past it, even once the free items' buffers are
// given up (reclaim), is lost and counted, as when the queue is full.
const maxQueueBytes = 8 << 20

// minItemBuf is the smallest buffer a copy gets: an MTU-size frame fits.
const minItemBuf = 2048

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
// the reader takes a free item or counts a drop, never waits. The free
// list is a stack, so that a destination that keeps up reuses the few
// buffers it has warmed instead of growing every item's in turn.
type queue struct {
	mu      sync.Mutex
	free    []*item
	freeCap int64 // the capacity of the free items' buffers (guarded by mu)
	full    chan *item
	bytes   atomic.Int64 // the capacity of every item's buffer
	dropped atomic.Uint64
}

func newQueue(n int) *queue {
	q := &queue{free: make([]*item, 0, n), full: make(chan *item, n)}
	for range n {
		q.free = append(q.free, &item{})
	}
	return q
}

// get returns a free item, or nil (and counts a drop) if the destination
// has queueLen copies waiting.
func (q *queue) get() *item {
	q.mu.Lock()
	n := len(q.free)
	if n == 0 {
		q.mu.Unlock()
		q.dropped.Add(1)
		return nil
	}
	it := q.free[n-1]
	q.free = q.free[:n-1]
	q.freeCap -= int64(cap(it.buf))
	q.mu.Unlock()
	return it
}

// put gives an item back to the free list.
func (q *queue) put(it *item) {
	q.mu.Lock()
	q.free = append(q.free, it)
	q.freeCap += int64(cap(it.buf))
	q.mu.Unlock()
}

// reclaim frees the buffers of free items, the coldest (the bottom of
// the stack) first, until grow more bytes fit under maxQueueBytes: the
// buffers a drained backlog grew would otherwise keep the bound used up
// for good, and every copy larger than they are would be lost with the
// queue empty. It walks the free list only when it holds enough.
func (q *queue) reclaim(grow int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.freeCap < grow {
		return
	}
	for _, it := range q.free {
		if q.bytes.Load()+grow <= maxQueueBytes {
			return
		}
		if c := int64(cap(it.buf)); c > 0 {
			it.buf = nil
			q.freeCap -= c
			q.bytes.Add(-c)
		}
	}
}

// fill copies frame into it, growing its buffer only the first time a
// copy this large passes; false (a drop, counted) if the buffer would
// take the queue's buffers past maxQueueBytes.
func (it *item) fill(q *queue, frame []byte) bool {
	if c := cap(it.buf); c < len(frame) {
		grow := int64(max(len(frame), minItemBuf) - c)
		if q.bytes.Load()+grow > maxQueueBytes {
			q.reclaim(grow)
		}
		if q.bytes.Add(grow) > maxQueueBytes {
			q.bytes.Add(-grow)
			q.dropped.Add(1)
			return false
		}
		it.buf = make([]byte, len(frame), max(len(frame), minItemBuf))
	}
	it.buf = it.buf[:len(frame)]
	copy(it.buf, frame)
	return true
}
