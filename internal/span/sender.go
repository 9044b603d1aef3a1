package span

import (
	"fmt"
	"sync/atomic"
	"time"
)

// sender drains one destination's queue into it.
type sender struct {
	s    *Session
	dest Dest
	q    *queue
	out  output

	// kernel: the tc program clones the copies to this destination
	// itself; its sender has work only on the AF_PACKET path.
	kernel bool

	// live is the open output, for Session.Close to interrupt a write
	// the sender is stuck in (run sets it with out).
	live atomic.Pointer[liveOutput]

	sent, refused atomic.Uint64
	err           atomic.Pointer[string]
	kick          chan struct{}
	nextOpen      time.Time // used by run only
}

// output is a destination's writing end. write takes a batch of copies
// and reports how many it could not deliver.
type output interface {
	// write delivers a batch: how many it could not deliver, and an
	// error if the destination is gone (the sender reopens it later).
	write(items []*item) (failed int, gone error)
	close()
}

// liveOutput boxes an output for an atomic pointer.
type liveOutput struct{ out output }

// interrupter is an output whose interrupt, safe while a write runs on
// another goroutine, closes it and ends that write (a pcap port's Close
// does, for a FIFO whose reader stalled).
type interrupter interface {
	interrupt()
}

// setOut makes out the open output (nil: none).
func (d *sender) setOut(out output) {
	d.out = out
	if out == nil {
		d.live.Store(nil)
		return
	}
	d.live.Store(&liveOutput{out})
}

// interrupt ends a write the sender is stuck in, if its output can.
func (d *sender) interrupt() {
	if l := d.live.Load(); l != nil {
		if i, ok := l.out.(interrupter); ok {
			i.interrupt()
		}
	}
}

// batchMax is how many queued copies a sender writes at once.
const batchMax = 64

func newSender(s *Session, d Dest) *sender {
	return &sender{s: s, dest: d, q: newQueue(queueLen), kick: make(chan struct{}, 1)}
}

func (d *sender) setErr(e string) {
	if e == "" {
		if d.err.Swap(nil) != nil {
			d.s.changed()
		}
		return
	}
	if old := d.err.Swap(&e); old == nil || *old != e {
		d.s.changed()
	}
}

func (d *sender) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// run opens the destination (retrying while it cannot) and writes
// copies; while it is not open, copies are dropped and counted.
func (d *sender) run() {
	defer func() {
		if d.out != nil {
			d.out.close()
		}
	}()
	batch := make([]*item, 0, batchMax)
	retry := time.NewTicker(retryInterval)
	defer retry.Stop()
	for {
		var it *item
		select {
		case it = <-d.q.full:
		case <-d.kick:
		case <-retry.C:
		case <-d.s.stop:
			return
		}
		if d.s.closed.Load() {
			return
		}
		if d.out == nil && time.Now().After(d.nextOpen) {
			d.open()
		}
		if it == nil {
			continue
		}
		batch = d.collect(append(batch[:0], it))
		d.deliver(batch)
		for _, b := range batch {
			d.q.put(b)
		}
	}
}

// open opens the destination, or records why it cannot.
func (d *sender) open() {
	out, err := openOutput(d.s, d.dest)
	if err != nil {
		d.setErr(err.Error())
		d.nextOpen = time.Now().Add(retryInterval)
		return
	}
	d.setOut(out)
	d.setErr("")
}

// collect adds the copies already waiting to batch, up to batchMax.
func (d *sender) collect(batch []*item) []*item {
	for len(batch) < batchMax {
		select {
		case more := <-d.q.full:
			batch = append(batch, more)
		default:
			return batch
		}
	}
	return batch
}

// deliver writes a batch, counting what was sent and what was lost.
func (d *sender) deliver(batch []*item) {
	failed := len(batch)
	if d.out != nil {
		var gone error
		if failed, gone = d.out.write(batch); gone != nil {
			d.out.close()
			d.setOut(nil)
			d.setErr(fmt.Sprintf("destination %s: %v", d.dest.Text, gone))
			d.nextOpen = time.Now().Add(retryInterval)
		} else {
			d.showFault()
		}
	}
	d.sent.Add(uint64(len(batch) - failed))
	d.refused.Add(uint64(failed))
}

// faulter is an output that stays open while its writes fail (a file on
// a full disk) and says why.
type faulter interface {
	fault() string
}

// showFault puts why the open destination's writes fail in Span.error,
// or clears it once they work again.
func (d *sender) showFault() {
	f, ok := d.out.(faulter)
	if !ok {
		return
	}
	if why := f.fault(); why != "" {
		d.setErr(fmt.Sprintf("destination %s: %s", d.dest.Text, why))
	} else {
		d.setErr("")
	}
}

// openOutput opens a destination of any kind.
func openOutput(s *Session, d Dest) (output, error) {
	var out output
	var err error
	switch d.Kind {
	case DestDev:
		out, err = openDev(s, d)
	case DestPcap:
		out, err = openPcap(s, d)
	case DestJSON:
		out, err = openJSON(s, d)
	case DestTunnel:
		out, err = openTunnel(s, d)
	default:
		err = fmt.Errorf("unknown kind")
	}
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", d.Text, err)
	}
	return out, nil
}
