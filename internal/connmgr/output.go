package connmgr

import (
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/budget"
	"gvs/internal/coverage"
)

// A connection's messages are written by one goroutine of its own, from
// an ordered queue (replies, errors, flow-removed, echo probes) and from
// the packet-in channel. So a peer that does not read holds up only its
// own requests: a flow deletion that reports flow-removed messages to
// every connection, the expiry and the inactivity probes never wait for
// a peer's socket, and a write blocked writeTimeout drops the peer.
const (
	// writeTimeout bounds one write to a peer.
	writeTimeout = 10 * time.Second
	// outBudget bounds the bytes queued for one connection. A reply
	// waits for room (its own peer is the one not reading); an
	// asynchronous message over it is dropped and counted.
	outBudget = 4 << 20
)

// OutputMemory bounds the bytes queued for all OpenFlow connections of
// all bridges together (ordered messages and packet-ins): each is
// bounded (outBudget, pinQueue), but 1,024 bridges with 32 controller
// connections each, every one a peer that does not read, were hundreds
// of GiB. Past it a packet-in or an asynchronous message is dropped as
// past its connection's own bound, and a reply waits until its
// connection's queue is empty.
const OutputMemory = 256 << 20

var (
	outMemBudget atomic.Int64 // OutputMemory; a variable for tests
	outMemUsed   atomic.Int64
)

func init() { outMemBudget.Store(OutputMemory) }

// outCharge is what one connection's queues hold of the shared budget;
// apart from the connection, so that a cleanup gives back what is still
// queued once it is garbage.
type outCharge struct{ bytes atomic.Int64 }

func (ch *outCharge) add(n int) {
	ch.bytes.Add(int64(n))
	outMemUsed.Add(int64(n))
}

// reserve charges n bytes if the shared budget has room for them, and
// reports whether it did: a compare-and-swap, so that connections
// reserving at once do not pass the budget together.
func (ch *outCharge) reserve(n int) bool {
	if !budget.Reserve(&outMemUsed, int64(n), outMemBudget.Load()) {
		return false
	}
	ch.bytes.Add(int64(n))
	return true
}

// outMemFull says whether n more bytes would pass the shared budget.
func outMemFull(n int) bool { return outMemUsed.Load()+int64(n) > outMemBudget.Load() }

var (
	// asyncDrops counts flow-removed messages and echo probes dropped
	// because their connection's queue (or all connections' budget) was
	// full: only overflow.
	asyncDrops = coverage.New("ofconn_async_drop")
	// asyncClosed counts those not sent because their connection was
	// ending.
	asyncClosed = coverage.New("ofconn_async_closed")
	// dumpRefused counts flow dumps refused because the shared budget
	// could not take their snapshot of the flows.
	dumpRefused = coverage.New("ofconn_dump_refused")
)

// putResult says what became of messages given to outQueue.put.
type putResult uint8

const (
	putQueued putResult = iota
	putFull             // over the connection's or the shared budget
	putClosed           // the connection is ending
)

// outQueue is the ordered queue of a connection's messages.
type outQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond // signalled when the queue changes
	msgs   [][]byte
	bytes  int  // queued and being written
	closed bool // the connection is ending: queue nothing more
	broken bool // a write failed: nothing more is written
	wake   chan struct{}
	charge *outCharge
}

func (q *outQueue) init(charge *outCharge) {
	q.cond = sync.NewCond(&q.mu)
	q.wake = make(chan struct{}, 1)
	q.charge = charge
}

// put queues bs in order. A reply (wait) waits while the queue is over
// its budget, or the shared one is full, and not empty; another message
// is then dropped. It reports what became of the messages.
func (q *outQueue) put(wait bool, bs ...[]byte) putResult {
	n := 0
	for _, b := range bs {
		n += len(b)
	}
	q.mu.Lock()
	for wait && q.bytes > 0 && (q.bytes+n > outBudget || outMemFull(n)) && !q.closed && !q.broken {
		q.cond.Wait()
	}
	if q.closed || q.broken {
		q.mu.Unlock()
		return putClosed
	}
	if !wait && ((q.bytes > 0 && q.bytes+n > outBudget) || outMemFull(n)) {
		q.mu.Unlock()
		return putFull
	}
	q.msgs = append(q.msgs, bs...)
	q.bytes += n
	q.charge.add(n)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return putQueued
}

// take returns the queued messages, in order, and whether the queue is
// closed.
func (q *outQueue) take() ([][]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	bs := q.msgs
	q.msgs = nil
	return bs, q.closed
}

// written gives back the room of n bytes written (or dropped).
func (q *outQueue) written(n int) {
	q.mu.Lock()
	q.bytes -= n
	q.charge.add(-n)
	q.cond.Broadcast()
	q.mu.Unlock()
}

// close stops the queue; broken says a write failed, so that waiting
// replies give up.
func (q *outQueue) close(broken bool) {
	q.mu.Lock()
	q.closed = true
	q.broken = q.broken || broken
	q.cond.Broadcast()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// writer writes the connection's messages until the connection ends;
// what was queued before it ended is still written, within writeTimeout.
func (c *conn) writer() {
	defer close(c.wdone)
	var drainBy time.Time
	for {
		bs, closed := c.out.take()
		if closed && drainBy.IsZero() {
			drainBy = time.Now().Add(writeTimeout)
		}
		for i, b := range bs {
			if !c.write(b, drainBy) {
				rest := 0
				for _, r := range bs[i:] {
					rest += len(r)
				}
				c.out.written(rest)
				c.out.close(true)
				return
			}
			c.out.written(len(b))
		}
		if len(bs) > 0 {
			continue
		}
		if closed {
			return
		}
		select {
		case <-c.out.wake:
		case b := <-c.pin:
			ok := c.write(b, time.Time{})
			c.out.charge.add(-len(b))
			if !ok {
				c.out.close(true)
				return
			}
		}
	}
}

// write writes one message with a deadline; a failed write closes the
// connection, which ends its reader.
func (c *conn) write(b []byte, drainBy time.Time) bool {
	deadline := time.Now().Add(writeTimeout)
	if !drainBy.IsZero() && drainBy.Before(deadline) {
		deadline = drainBy
	}
	_ = c.nc.SetWriteDeadline(deadline)
	if _, err := c.nc.Write(b); err != nil {
		connLog.InfoRL(connErrRL, "bridge %s: OpenFlow connection: write: %v", c.s.name, err)
		c.nc.Close()
		return false
	}
	return true
}
