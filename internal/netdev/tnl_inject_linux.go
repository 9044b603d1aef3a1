//go:build linux

package netdev

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// Native tunnel sends handed straight to the internal port's reader.
//
// A natively routed tunnel packet enters the underlay bridge as if the
// host had sent it through the internal port `ul` (tnl_native_linux.go).
// Writing it into the TAP with AF_PACKET and reading it back costs two
// kernel crossings and an skb per frame, about 40 % of a sending gvsd's
// CPU in a GRE run; so a tunnel port queues the encapsulated frames for
// the port's own reader instead, which takes them before it reads the
// device, and the bridge forwards them exactly as before. As with OVS's
// native tunnelling, the kernel device (and a capture on it) no longer
// sees them. The queue is the packed ring of tunnel receive
// (tunnel_rxring.go): producers are the tunnel ports' writers, under its
// mutex; the consumer is the internal port's reader.
//
// The reader waits for the device in Go's netpoller; a writer that
// finds it waiting there (parked) wakes it by making its read deadline
// pass. A frame queued after the reader's last look is never stranded:
// the reader marks itself parked before it looks at the queue a last
// time, and a writer looks at the mark after it queued.

const (
	// nativeInjectBytes and nativeInjectFrames bound what a native
	// underlay's queue holds: about 2,800 MTU frames, 10 ms of a GRE
	// run's segments, as much as a tunnel port's receive queue
	// (tunnelRxBytes): with 1,024 frames, a sender that outran the
	// reader for more than the 5 ms it waits dropped 16-170 frames per
	// 5 s run. Heap memory, made on first use, for internal ports that
	// carry native tunnels only.
	nativeInjectBytes  = 4 << 20
	nativeInjectFrames = 4096
)

// tunnelNativeQueueFull counts native tunnel frames dropped because the
// internal port's reader had fallen behind.
var tunnelNativeQueueFull = coverage.New("tunnel_native_queue_full")

// nativeInjectWait is how long a tunnel port waits for room in a full
// queue before it drops the frame: the reader runs the underlay bridge
// and sends out of the physical port, the costlier half, so a sender
// that outruns it waits (as a write into the kernel would have taken
// that time) instead of encapsulating frames only to drop them; a reader
// that stopped costs a batch at most this long. A few milliseconds: a
// runnable thread waits that long for a CPU on a busy host (1 ms lost
// frames in a GRE run on 2 busy CPUs). A variable for tests.
var nativeInjectWait = 5 * time.Millisecond

// nativeInject is an internal port's queue of native tunnel frames.
type nativeInject struct {
	ring   rxRing
	parked atomic.Bool // the reader waits in the netpoller
	wake   func()
	full   atomic.Bool   // a sender waits for room
	room   chan struct{} // the reader made room
}

// injector returns d's queue, made on first use; nil when d has no
// reader to take frames from it (then frames go through the device).
func (d *nativeDev) injector() *nativeInject {
	if d == nil || d.wakeReader == nil {
		return nil
	}
	if q := d.inject.Load(); q != nil {
		return q
	}
	q := &nativeInject{wake: d.wakeReader, room: make(chan struct{}, 1)}
	q.ring.initSize(nativeInjectBytes, nativeInjectFrames)
	q.ring.wake = nil // the reader waits in the netpoller, not on the channel
	// The reader may be waiting already, without having seen the queue:
	// the first signal wakes it.
	q.parked.Store(true)
	if !d.inject.CompareAndSwap(nil, q) {
		return d.inject.Load()
	}
	return q
}

// signal wakes the reader if it waits; writers call it after a batch.
func (q *nativeInject) signal() {
	if q.parked.Load() && q.parked.CompareAndSwap(true, false) {
		q.wake()
	}
}

// waiting reports whether frames wait in the queue.
func (q *nativeInject) waiting() bool { return q.ring.tail.Load() != q.ring.head.Load() }

// injectNative encapsulates frames into Ethernet frames for the route's
// next hop and queues them for the internal port's reader.
func (w *tunnelWriter) injectNative(q *nativeInject, frames [][]byte, ts uint32, mac [6]byte, s *nativeState) {
	h := w.hdrs[0][:]
	e := packet.Ethernet(h)
	e.SetDst(mac)
	e.SetSrc(s.mac)
	e.SetType(packet.EtherTypeIPv4)
	if w.opts.v6 {
		e.SetType(packet.EtherTypeIPv6)
	}
	var none packet.TunnelMeta
	sent, gaveUp := 0, false // after one wait in vain, the batch's rest is dropped at once
	for _, f := range frames {
		if len(f) < packet.EthernetLen {
			w.count.errors++
			continue
		}
		n, err := w.encap.Build(h[packet.EthernetLen:], f, ts)
		if err != nil || (s.mtu > 0 && n+len(f) > s.mtu) {
			tunnelTooBig.Inc()
			w.count.dropped++
			continue
		}
		if !q.ring.putParts(h[:packet.EthernetLen+n], f, &none) && (gaveUp || !w.waitRoom(q, h[:packet.EthernetLen+n], f, &none)) {
			gaveUp = true
			tunnelNativeQueueFull.Inc()
			w.count.dropped++
			continue
		}
		w.count.add(len(f), 0)
		sent++
	}
	tunnelNativeTx.Add(uint64(sent))
	q.signal()
}

// waitRoom waits up to nativeInjectWait for the reader to make room in
// the full queue, then queues the frame; false if it still does not fit.
func (w *tunnelWriter) waitRoom(q *nativeInject, head, body []byte, md *packet.TunnelMeta) bool {
	q.full.Store(true)
	if q.ring.putParts(head, body, md) { // the reader took frames meanwhile
		return true
	}
	if q.parked.CompareAndSwap(true, false) {
		q.wake()
	}
	if w.nat.wait == nil {
		w.nat.wait = time.NewTimer(nativeInjectWait)
	} else {
		w.nat.wait.Reset(nativeInjectWait)
	}
	select {
	case <-q.room:
		w.nat.wait.Stop()
	case <-w.nat.wait.C:
	}
	return q.ring.putParts(head, body, md)
}

// madeRoom tells a sender waiting for room (waitRoom) that there is.
func (q *nativeInject) madeRoom() {
	if q.full.Load() && q.full.CompareAndSwap(true, false) {
		select {
		case q.room <- struct{}{}:
		default:
		}
	}
}

// wakeReader makes a reader that waits in the netpoller return (its read
// deadline passes); read sees the deadline error and looks again.
func (p *tapPort) wakeReader() { p.file.SetReadDeadline(time.Unix(1, 0)) }

// woken reports whether err is the wake-up of wakeReader, and clears the
// deadline for the next wait.
func (p *tapPort) woken(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	p.file.SetReadDeadline(time.Time{})
	return true
}

// takeInjected moves queued native tunnel frames into the batch, as
// complete frames received from the device.
func (r *tapReader) takeInjected() {
	if r.native == nil {
		return
	}
	q := r.native.inject.Load()
	if q == nil || r.got == len(r.bufs) {
		return
	}
	q.parked.Store(false)
	if !q.waiting() {
		return
	}
	k, c := q.ring.take(r.bufs[r.got:], r.sizes[r.got:], from(r.offs, r.got), nil, false)
	r.got += k
	r.count = r.count.plus(c)
	q.madeRoom()
}

// park marks the reader as about to wait and takes what was queued
// meanwhile; true when there is nothing to take (wait).
func (r *tapReader) park() bool {
	if r.native == nil {
		return true
	}
	q := r.native.inject.Load()
	if q == nil {
		return true
	}
	q.parked.Store(true)
	if !q.waiting() {
		return true
	}
	r.takeInjected()
	return r.got == 0
}
