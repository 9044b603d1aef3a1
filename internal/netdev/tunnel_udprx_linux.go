//go:build linux

package netdev

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// Received VXLAN and Geneve frames handed to the port's thread in the
// buffer the kernel filled, without a copy.
//
// A UDP underlay's reader receives into buffers of a pool (up to 64
// datagrams of one flow in each, joined by UDP GRO). A decapsulated frame
// of such a run is not copied into its port's queue: the queue holds
// where it lies, and the buffer goes back to the pool when every port's
// thread has taken what it lent them (the port's thread joins segments
// straight from it, tunnel_gro.go). A buffer holding one datagram (a lone
// segment, an ACK, a ping) would pin 64 KiB for a short frame, so such
// frames are copied, packed one after another into a pool buffer of
// their own, and the receive buffer is used again at once.
//
// Memory stays bounded: the pool has udpRxBufs buffers; a port's queue
// holds at most udpRxQueueLen frames and pins at most udpRxPins buffers,
// so one slow port cannot take every buffer from the other ports on the
// socket; beyond either limit its frames are dropped and counted, as a
// full queue's are. When the pool is empty the reader waits for a buffer
// (the kernel's socket buffer holds what arrives meanwhile), but only
// udpRxWait: ports whose threads stopped reading can hold the whole pool
// between them (udpRxBufs/udpRxPins of them), so the reader then reads
// into a spare buffer of its own and copies each frame into its port's
// ring (rxRing, as GRE's are), and the other ports on the socket still
// receive.

const (
	// udpRxBufs is how many receive buffers a UDP underlay lends: 12 MiB,
	// about 8 000 segments of 1 400 bytes in UDP GRO runs.
	udpRxBufs = 192
	// udpRxBufSize holds the largest joined buffer: a whole UDP payload.
	udpRxBufSize = groRecvBuf
	// udpRxQueueLen is how many frames wait for a port's thread.
	// With 1 024 frames and 24 buffers, a port's thread descheduled
	// under full-rate TCP (bench/tunnel.sh, VXLAN) dropped about 200 000
	// frames in a 5 s run; with 4 096 and 96, about 3 000.
	udpRxQueueLen = 4096
	// udpRxPins is how many of the pool's buffers one port's waiting
	// frames may hold: half the pool, so that one port that stops
	// reading leaves the other half to the others.
	udpRxPins = 96
	// readerHold is the reader's own count on a buffer it is filling or
	// dispatching: far more than the frames a buffer can lend, so that
	// the ports' threads cannot bring the count to zero before the
	// reader has added what it lent (one atomic add per buffer, not one
	// per frame).
	readerHold = 1 << 24
	// udpRxWait is how long the reader waits for a buffer of an empty
	// pool before it reads into its spare buffer: a port's thread
	// descheduled gives buffers back within it, one that stopped does
	// not.
	udpRxWait = 10 * time.Millisecond
)

// tunnelRxLent counts frames handed to a port's thread in the receive
// buffer itself; tunnelRxPacked those copied into a packed buffer.
var (
	tunnelRxLent   = coverage.New("tunnel_rx_lent")
	tunnelRxPacked = coverage.New("tunnel_rx_packed")
)

// rxPool is a UDP underlay's receive buffers with a count of the frames
// each still lends (plus readerHold while the reader has it).
type rxPool struct {
	bufs [][]byte
	refs []atomic.Int32
	free chan int32 // buffers no one holds; never blocks (capacity: all)
}

func newRxPool(n, size int) *rxPool {
	p := &rxPool{bufs: make([][]byte, n), refs: make([]atomic.Int32, n), free: make(chan int32, n)}
	for i := range p.bufs {
		p.bufs[i] = make([]byte, size)
		p.free <- int32(i)
	}
	return p
}

// get takes a free buffer, if there is one.
func (p *rxPool) get() (int32, bool) {
	select {
	case b := <-p.free:
		return b, true
	default:
		return -1, false
	}
}

// release gives back n of buffer b's frames; the last one frees it.
func (p *rxPool) release(b, n int32) {
	if b >= 0 && n > 0 && p.refs[b].Add(-n) == 0 {
		p.free <- b
	}
}

// hold marks buffer b as the reader's, before it lends any frame of it.
func (p *rxPool) hold(b int32) { p.refs[b].Store(readerHold) }

// unhold drops the reader's hold on b after it lent lent frames of it;
// true when no frame of b is lent any more and the reader may keep it.
func (p *rxPool) unhold(b int32, lent int) bool {
	return p.refs[b].Add(int32(lent)-readerHold) == 0
}

// udpRxEntry is a frame waiting in a port's queue: where it lies in the
// pool and its tunnel metadata.
type udpRxEntry struct {
	buf, off, n int32
	// first: the first frame of its buffer in this queue (the buffer
	// counts against the port's pins until it is taken).
	first bool
	md    packet.TunnelMeta
}

// udpRxQueue passes frames lent from a UDP underlay's pool to a port's
// thread: one producer (the underlay's reader), one consumer (the port's
// thread).
type udpRxQueue struct {
	pool *rxPool

	mu      sync.Mutex // the producer, and close
	closed  bool
	lastSeq uint64 // the buffer use the last frame put came from

	ents       []udpRxEntry
	head, tail atomic.Uint32
	pins       atomic.Int32 // entries with first in the queue
	wake       chan struct{}

	takeMu sync.Mutex // the consumer, and close's drain
	gro    groJoiner
}

func newUDPRxQueue(pool *rxPool) *udpRxQueue {
	return &udpRxQueue{pool: pool, ents: make([]udpRxEntry, udpRxQueueLen), wake: make(chan struct{}, 1)}
}

// put queues frame [off, off+n) of buffer buf, which the reader filled
// for the seq'th time (seq tells one use of a buffer from the next), and
// wakes the consumer; false when the queue is full, holds its share of
// buffers, or is closed (the caller then counts the frame dropped and
// does not count it lent).
func (q *udpRxQueue) put(buf, off, n int32, seq uint64, md *packet.TunnelMeta) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := q.tail.Load()
	if q.closed || t-q.head.Load() >= udpRxQueueLen {
		return false
	}
	first := seq != q.lastSeq
	if first {
		if q.pins.Load() >= udpRxPins {
			return false
		}
		q.pins.Add(1)
		q.lastSeq = seq
	}
	e := &q.ents[t%udpRxQueueLen]
	e.buf, e.off, e.n, e.first, e.md = buf, off, n, first, *md
	q.tail.Store(t + 1)
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take moves waiting frames into bufs (and their metadata into tun, if
// not nil) as rxRing.take does, joining segments straight from the
// pool's buffers with join, and gives the buffers back.
func (q *udpRxQueue) take(bufs [][]byte, sizes []int, offs []Offload, tun []packet.TunnelMeta, join bool) (int, batchCount) {
	q.takeMu.Lock()
	defer q.takeMu.Unlock()
	h, t := q.head.Load(), q.tail.Load()
	var c batchCount
	f := readFill{gro: &q.gro, bufs: bufs, sizes: sizes, offs: offs, tun: tun, join: join}
	rel, reln := int32(-1), int32(0)
	for ; h != t; h++ {
		e := &q.ents[h%udpRxQueueLen]
		frame := q.pool.bufs[e.buf][e.off : e.off+e.n]
		if !f.add(frame, &e.md) {
			break
		}
		c.add(len(frame), 0)
		if e.first {
			q.pins.Add(-1)
		}
		if e.buf != rel {
			q.pool.release(rel, reln)
			rel, reln = e.buf, 0
		}
		reln++
	}
	f.end()
	q.pool.release(rel, reln)
	q.head.Store(h)
	return f.k, c
}

// close refuses further frames and gives back the buffers of those
// still waiting.
func (q *udpRxQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.takeMu.Lock()
	defer q.takeMu.Unlock()
	h, t := q.head.Load(), q.tail.Load()
	for ; h != t; h++ {
		e := &q.ents[h%udpRxQueueLen]
		if e.first {
			q.pins.Add(-1)
		}
		q.pool.release(e.buf, 1)
	}
	q.head.Store(h)
}

// udpReader is a UDP underlay's receive state: which pool buffer each
// receive message reads into (-1: none yet), the packed buffer that
// lone datagrams are copied into, and how many frames each lends.
type udpReader struct {
	pool  *rxPool
	slot  []int32
	seq   []uint64 // which use of its buffer each message holds
	next  uint64   // the next buffer use's number
	lent  int      // frames lent from the message being dispatched
	pack  int32    // the packed buffer, -1 if none
	packN int32    // bytes used in it
	packL int      // frames lent from it
	packS uint64   // its use's number
	// spare is read into, one message at a time, while the pool is
	// empty (copying): its frames are copied into the ports' rings.
	spare   []byte
	copying bool
	wait    *time.Timer // udpRxWait, stopped when not waiting
}

func (r *udpReader) init(msgs int) {
	r.pool = newRxPool(udpRxBufs, udpRxBufSize)
	r.slot = make([]int32, msgs)
	r.seq = make([]uint64, msgs)
	for i := range r.slot {
		r.slot[i] = -1
	}
	r.pack = -1
	r.next = 1
	r.spare = make([]byte, udpRxBufSize)
	r.wait = time.NewTimer(udpRxWait)
	r.wait.Stop()
}

// fill gives the first messages a buffer each and returns how many have
// one: those are read into. Zero when the pool is empty.
func (r *udpReader) fill() int {
	for i, b := range r.slot {
		if b >= 0 {
			continue
		}
		if b, ok := r.pool.get(); ok {
			r.slot[i] = b
			continue
		}
		return i
	}
	return len(r.slot)
}

// begin starts dispatching message i: its buffer is held by the reader
// until done.
func (r *udpReader) begin(i int) []byte {
	b := r.slot[i]
	r.pool.hold(b)
	r.seq[i], r.next, r.lent = r.next, r.next+1, 0
	return r.pool.bufs[b]
}

// done ends message i's dispatch: a buffer none of whose frames are lent
// stays the message's; otherwise the message takes a new one next time.
func (r *udpReader) done(i int) {
	if !r.pool.unhold(r.slot[i], r.lent) {
		r.slot[i] = -1
	}
}

// lend queues inner, at offset off in message i's buffer, for port q.
func (r *udpReader) lend(q *udpRxQueue, i int, off, n int, md *packet.TunnelMeta) bool {
	if !q.put(r.slot[i], int32(off), int32(n), r.seq[i], md) {
		return false
	}
	r.lent++
	tunnelRxLent.Inc()
	return true
}

// copyIn copies inner into the packed buffer and queues it for q;
// handled is false when no packed buffer is free (the caller lends the
// frame instead), ok whether q took it.
func (r *udpReader) copyIn(q *udpRxQueue, inner []byte, md *packet.TunnelMeta) (handled, ok bool) {
	if r.pack >= 0 && int(r.packN)+len(inner) > udpRxBufSize {
		r.retirePack()
	}
	if r.pack < 0 {
		b, got := r.pool.get()
		if !got {
			return false, false
		}
		r.pool.hold(b)
		r.pack, r.packN, r.packL, r.packS, r.next = b, 0, 0, r.next, r.next+1
	}
	off := r.packN
	n := copy(r.pool.bufs[r.pack][off:], inner)
	if !q.put(r.pack, off, int32(n), r.packS, md) {
		return true, false
	}
	r.packN += int32(n+7) &^ 7 // the next frame starts aligned
	r.packL++
	tunnelRxPacked.Inc()
	return true, true
}

// retirePack lets the packed buffer go back to the pool once its frames
// are taken.
func (r *udpReader) retirePack() {
	if r.pack >= 0 && r.pool.unhold(r.pack, r.packL) {
		r.pool.free <- r.pack
	}
	r.pack = -1
}

// close gives back the buffers the reader holds.
func (r *udpReader) close() {
	r.retirePack()
	for i, b := range r.slot {
		if b >= 0 {
			r.pool.free <- b
			r.slot[i] = -1
		}
	}
}

// setUDPBuffers points the receive messages at pool buffers, waiting
// udpRxWait for one when the pool is empty, then one message at the
// spare buffer (waiting longer would wait for ports' threads that may
// never read); false when the underlay is closing.
func (u *underlay) setUDPBuffers() bool {
	r := u.udp
	n := r.fill()
	if n == 0 {
		r.wait.Reset(udpRxWait)
		select {
		case b := <-r.pool.free:
			r.wait.Stop()
			r.slot[0] = b
			n = r.fill()
		case <-r.wait.C:
		case <-u.quit:
			r.wait.Stop()
			return false
		}
	}
	r.copying = n == 0
	if r.copying {
		u.iovs[0].Base = &r.spare[0]
		u.iovs[0].SetLen(len(r.spare))
		u.vlen = 1
		return true
	}
	for i := range n {
		u.iovs[i].Base = &r.pool.bufs[r.slot[i]][0]
		u.iovs[i].SetLen(udpRxBufSize)
	}
	u.vlen = n
	return true
}

// dispatchUDP decapsulates the datagrams of message i (one, or a run
// joined by UDP GRO) and queues each inner frame for its port: lent in
// place from a run, copied into the packed buffer when alone.
func (u *underlay) dispatchUDP(i int) {
	m := &u.msgs[i]
	r := u.udp
	b := r.spare
	if !r.copying {
		b = r.begin(i)
		defer r.done(i)
	}
	b = b[:min(int(m.Len), len(b))]
	ctrl := u.ctrl[i][:min(int(m.Hdr.Controllen), len(u.ctrl[i]))]
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
		tunnelTooBig.Inc()
		return
	}
	if m.Hdr.Flags&unix.MSG_CTRUNC != 0 { // the datagrams' size may be lost
		tunnelMalformed.Inc()
		return
	}
	src, dst := u.addresses(i)
	outer := cmsgOuter(ctrl)
	size := groSize(ctrl)
	run := size > 0 && size < len(b)
	if run {
		tunnelGROReads.Inc()
	}
	var md packet.TunnelMeta
	off := 0
	for first, rest := nextDatagram(b, size); ; first, rest = nextDatagram(rest, size) {
		if p, inner := u.demux(first, src, dst, outer, &md); p != nil {
			u.queueUDP(p, i, run, off+inner, first[inner:], &md)
		}
		if len(rest) == 0 {
			return
		}
		off += len(first)
	}
}

// queueUDP queues a decapsulated frame, at offset off of message i's
// buffer, for port p.
func (u *underlay) queueUDP(p *tunnelPort, i int, run bool, off int, inner []byte, md *packet.TunnelMeta) {
	if u.udp.copying { // read into the spare buffer, used again next read
		p.deliver(inner, md)
		return
	}
	if len(inner) > MaxFrame {
		p.stats.rxErrors.Add(1)
		tunnelTooBig.Inc()
		return
	}
	if p.udp == nil { // not attached yet
		p.stats.rxDropped.Add(1)
		return
	}
	ok := false
	handled := false
	if !run {
		handled, ok = u.udp.copyIn(p.udp, inner, md)
	}
	if !handled {
		ok = u.udp.lend(p.udp, i, off, len(inner), md)
	}
	if !ok {
		p.stats.rxDropped.Add(1)
	}
}
