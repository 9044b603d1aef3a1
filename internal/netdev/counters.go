package netdev

import (
	"sync/atomic"
	"syscall"
)

// counters are a port's statistics. The port thread adds to them once per
// batch; Stats may read them from any goroutine.
type counters struct {
	rxPackets, rxBytes, rxDropped, rxErrors atomic.Uint64
	txPackets, txBytes, txDropped, txErrors atomic.Uint64
}

// batchCount is what one ReadBatch or WriteBatch call tallies locally
// before publishing it with a handful of atomic adds.
type batchCount struct {
	packets, bytes, dropped, errors uint64
}

// plus is the tally of both batches.
func (c batchCount) plus(o batchCount) batchCount {
	return batchCount{c.packets + o.packets, c.bytes + o.bytes, c.dropped + o.dropped, c.errors + o.errors}
}

func (c *counters) addRx(b batchCount) {
	addIfSet(&c.rxPackets, b.packets)
	addIfSet(&c.rxBytes, b.bytes)
	addIfSet(&c.rxDropped, b.dropped)
	addIfSet(&c.rxErrors, b.errors)
}

func (c *counters) addTx(b batchCount) {
	addIfSet(&c.txPackets, b.packets)
	addIfSet(&c.txBytes, b.bytes)
	addIfSet(&c.txDropped, b.dropped)
	addIfSet(&c.txErrors, b.errors)
}

// dropHeld moves frames that an earlier write counted as sent (held in
// a transmit ring) to the dropped count.
func (c *counters) dropHeld(b batchCount) {
	if b.packets == 0 {
		return
	}
	c.txPackets.Add(-b.packets)
	c.txBytes.Add(-b.bytes)
	c.txDropped.Add(b.packets)
}

// addIfSet skips the atomic add (a locked instruction) when there is
// nothing to add, which is the usual case for the drop and error counters.
func addIfSet(c *atomic.Uint64, v uint64) {
	if v != 0 {
		c.Add(v)
	}
}

func (c *counters) snapshot() Stats {
	return Stats{
		RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
		RxDropped: c.rxDropped.Load(), RxErrors: c.rxErrors.Load(),
		TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(),
		TxDropped: c.txDropped.Load(), TxErrors: c.txErrors.Load(),
	}
}

// add tallies one transmitted frame by the errno its send returned:
// malformed frames are errors, anything else refused is a drop.
func (b *batchCount) add(size int, errno syscall.Errno) {
	switch errno {
	case 0:
		b.packets++
		b.bytes += uint64(size)
	case syscall.EINVAL, syscall.EMSGSIZE, syscall.EFAULT:
		b.errors++
	default:
		b.dropped++
	}
}
