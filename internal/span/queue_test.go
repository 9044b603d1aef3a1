package span

import "testing"

// retained is the memory a destination's queue keeps in its copies'
// buffers.
func (q *queue) retainedForTest() int {
	n := 0
	for range queueLen {
		it := q.get()
		if it == nil {
			break
		}
		n += cap(it.buf)
		defer q.put(it)
	}
	return n
}

// A destination that keeps up with 64 KiB super-frames reuses a few
// buffers: the queue must not grow all queueLen of them to the largest
// copy (64 MiB a destination, 512 MiB a session).
func TestSpanQueueKeepsFewBuffersWarm(t *testing.T) {
	q := newQueue(queueLen)
	frame := make([]byte, 65000)
	for range 4 * queueLen {
		it := q.get()
		if it == nil {
			t.Fatal("a destination that keeps up lost a copy")
		}
		it.fill(q, frame)
		q.full <- it
		q.put(<-q.full)
	}
	if got := q.retainedForTest(); got > 1<<20 {
		t.Errorf("the queue keeps %d bytes of buffers for a destination that keeps up, want at most 1 MiB", got)
	}
}

// A destination that falls behind holds at most maxQueueBytes of copies'
// buffers, whatever their size; the copies beyond are lost and counted.
func TestSpanQueueBytesBounded(t *testing.T) {
	q := newQueue(queueLen)
	frame := make([]byte, 65000)
	taken := 0
	for range queueLen {
		it := q.get()
		if it == nil {
			break
		}
		if !it.fill(q, frame) {
			q.put(it)
			continue
		}
		taken++
		q.full <- it
	}
	if taken == 0 || taken == queueLen {
		t.Errorf("%d of %d large copies queued, want some, bounded by the bytes", taken, queueLen)
	}
	if q.dropped.Load() != uint64(queueLen-taken) {
		t.Errorf("%d copies counted lost, want %d", q.dropped.Load(), queueLen-taken)
	}
	for range taken {
		q.put(<-q.full)
	}
	if got := q.retainedForTest(); got > maxQueueBytes {
		t.Errorf("the queue keeps %d bytes of buffers, want at most %d", got, maxQueueBytes)
	}
}

// The bytes bound is on the copies a destination holds, not on the
// largest burst it ever met: once a backlog of 32 KiB copies (which
// grew buffers up to the bound) has drained, a larger copy must still
// find a buffer. Before, the budget never came back and every copy
// larger than the buffers already grown was lost for good, the queue
// empty.
func TestSpanQueueBytesComeBackAfterBacklog(t *testing.T) {
	q := newQueue(queueLen)
	mid := make([]byte, 32<<10)
	var backlog []*item
	for range queueLen {
		it := q.get()
		if it == nil {
			break
		}
		if !it.fill(q, mid) {
			q.put(it)
			break
		}
		backlog = append(backlog, it)
	}
	for _, it := range backlog { // the destination catches up
		q.put(it)
	}
	big := make([]byte, 64<<10)
	for i := range 16 {
		it := q.get()
		if it == nil {
			t.Fatal("no free item with the queue empty")
		}
		ok := it.fill(q, big)
		q.put(it)
		if !ok {
			t.Fatalf("copy %d of 64 KiB lost with the queue empty (%d bytes of buffers counted)", i, q.bytes.Load())
		}
	}
	if got := q.retainedForTest(); got > maxQueueBytes {
		t.Errorf("the queue keeps %d bytes of buffers, want at most %d", got, maxQueueBytes)
	}
}
