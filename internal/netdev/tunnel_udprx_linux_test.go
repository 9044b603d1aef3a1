//go:build linux

package netdev

import (
	"bytes"
	"testing"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// lendRun puts frames into buffer b of pool (one after another, as a
// UDP GRO read lays them out, without outer headers) and lends each to
// queue q, as the reader does; it returns how many q took.
func lendRun(t *testing.T, pool *rxPool, b int32, seq uint64, frames [][]byte, md *packet.TunnelMeta, qs ...*udpRxQueue) int {
	t.Helper()
	pool.hold(b)
	lent, off := 0, 0
	for _, f := range frames {
		n := copy(pool.bufs[b][off:], f)
		for _, q := range qs {
			if q.put(b, int32(off), int32(n), seq, md) {
				lent++
			}
		}
		off += n
	}
	if pool.unhold(b, lent) {
		pool.free <- b
	}
	return lent
}

func freeBuffers(p *rxPool) int { return len(p.free) }

// TestUDPRxQueueJoinsInPlace: segments lent from a receive buffer are
// joined by the port's thread into one super-frame, the same one
// rxRing's copy gives, and the buffer goes back to the pool when taken.
func TestUDPRxQueueJoinsInPlace(t *testing.T) {
	pool := newRxPool(4, udpRxBufSize)
	q := newUDPRxQueue(pool)
	in := buildAll(groRun(20, 1400))
	md := packet.TunnelMeta{ID: 16}
	b, _ := pool.get()
	if got := lendRun(t, pool, b, 1, in, &md, q); got != len(in) {
		t.Fatalf("queue took %d of %d frames", got, len(in))
	}
	if freeBuffers(pool) != 3 || pool.refs[b].Load() != int32(len(in)) {
		t.Fatalf("before take: %d buffers free, %d frames lent from the used one", freeBuffers(pool), pool.refs[b].Load())
	}
	bufs, sizes, offs, tun := [][]byte{make([]byte, MaxSuperFrame), make([]byte, MaxSuperFrame)}, make([]int, 2), make([]Offload, 2), make([]packet.TunnelMeta, 2)
	k, c := q.take(bufs, sizes, offs, tun, true)
	want, wantOffs := groTake(t, in, nil, 2)
	if k != 1 || !bytes.Equal(bufs[0][:sizes[0]], want[0]) || offs[0] != wantOffs[0] || tun[0] != md {
		t.Errorf("took %d frames (%d bytes, %+v), want one of %d bytes (%+v), as from the ring", k, sizes[0], offs[0].h, len(want[0]), wantOffs[0].h)
	}
	if c.packets != uint64(len(in)) {
		t.Errorf("counted %d segments, want %d", c.packets, len(in))
	}
	if freeBuffers(pool) != 4 || q.pins.Load() != 0 {
		t.Errorf("after take: %d of 4 buffers free, %d pinned", freeBuffers(pool), q.pins.Load())
	}
}

// TestUDPRxBufferSharedByPorts: a buffer whose frames went to two ports
// is free only when both ports' threads took theirs; a closed port gives
// its share back and takes no more.
func TestUDPRxBufferSharedByPorts(t *testing.T) {
	pool := newRxPool(2, udpRxBufSize)
	q1, q2 := newUDPRxQueue(pool), newUDPRxQueue(pool)
	md := packet.TunnelMeta{ID: 1}
	b, _ := pool.get()
	lendRun(t, pool, b, 1, buildAll(groRun(3, 500)), &md, q1, q2)
	bufs, sizes := [][]byte{make([]byte, MaxFrame), make([]byte, MaxFrame), make([]byte, MaxFrame)}, make([]int, 3)
	if k, _ := q1.take(bufs, sizes, nil, nil, false); k != 3 {
		t.Fatalf("q1 took %d frames, want 3", k)
	}
	if freeBuffers(pool) != 1 {
		t.Fatalf("%d buffers free with q2's frames waiting, want 1", freeBuffers(pool))
	}
	q2.close()
	if freeBuffers(pool) != 2 {
		t.Errorf("%d buffers free after q2 closed, want 2", freeBuffers(pool))
	}
	b, _ = pool.get()
	if got := lendRun(t, pool, b, 2, buildAll(groRun(1, 500)), &md, q2); got != 0 {
		t.Errorf("a closed queue took %d frames", got)
	}
	if freeBuffers(pool) != 2 {
		t.Errorf("%d buffers free after a refused lend, want 2", freeBuffers(pool))
	}
}

// TestUDPRxQueuePinLimit: one port's waiting frames hold at most
// udpRxPins buffers; more frames of a buffer it already holds still go
// in.
func TestUDPRxQueuePinLimit(t *testing.T) {
	pool := newRxPool(udpRxPins+2, udpRxBufSize)
	q := newUDPRxQueue(pool)
	md := packet.TunnelMeta{}
	f := buildAll(groRun(1, 200))
	for i := range udpRxPins {
		b, _ := pool.get()
		if lendRun(t, pool, b, uint64(i+1), f, &md, q) != 1 {
			t.Fatalf("buffer %d refused", i)
		}
	}
	b, _ := pool.get()
	pool.hold(b)
	if q.put(b, 0, int32(len(f[0])), udpRxPins+1, &md) {
		t.Errorf("a frame from buffer %d was queued", udpRxPins+1)
	}
	if !q.put(b-1, 512, int32(len(f[0])), udpRxPins, &md) {
		t.Errorf("a second frame of the last buffer held was refused")
	}
	pool.refs[b-1].Add(1)
	if pool.unhold(b, 0) {
		pool.free <- b
	}
	bufs, sizes := make([][]byte, udpRxPins+1), make([]int, udpRxPins+1)
	for i := range bufs {
		bufs[i] = make([]byte, MaxFrame)
	}
	if k, _ := q.take(bufs, sizes, nil, nil, false); k != udpRxPins+1 {
		t.Errorf("took %d frames, want %d", k, udpRxPins+1)
	}
	if freeBuffers(pool) != udpRxPins+2 {
		t.Errorf("%d of %d buffers free after take", freeBuffers(pool), udpRxPins+2)
	}
}

// TestUDPRxPackedCopies: lone datagrams are copied one after another into
// one packed buffer (the receive buffer is kept by the reader), and a
// full packed buffer is replaced.
func TestUDPRxPackedCopies(t *testing.T) {
	var r udpReader
	r.init(2)
	q := newUDPRxQueue(r.pool)
	md := packet.TunnelMeta{}
	frame := innerTestFrame(1400)
	per := udpRxBufSize / 1400 // frames that fit one packed buffer (8-byte aligned: 1400 is)
	for i := range per + 1 {
		if handled, ok := r.copyIn(q, frame, &md); !handled || !ok {
			t.Fatalf("frame %d: handled %v, queued %v", i, handled, ok)
		}
	}
	if used := udpRxBufs - freeBuffers(r.pool); used != 2 {
		t.Errorf("%d buffers in use for %d frames of 1400 bytes, want 2", used, per+1)
	}
	bufs, sizes := make([][]byte, per+1), make([]int, per+1)
	for i := range bufs {
		bufs[i] = make([]byte, MaxFrame)
	}
	k, _ := q.take(bufs, sizes, nil, nil, false)
	if k != per+1 || !bytes.Equal(bufs[k-1][:sizes[k-1]], frame) {
		t.Fatalf("took %d frames, want %d, the same as sent", k, per+1)
	}
	if used := udpRxBufs - freeBuffers(r.pool); used != 1 {
		t.Errorf("%d buffers in use after take, want 1 (the packed buffer being filled)", used)
	}
	r.close()
	if freeBuffers(r.pool) != udpRxBufs {
		t.Errorf("%d of %d buffers free after the reader closed", freeBuffers(r.pool), udpRxBufs)
	}
}

// TestUDPRxNoAllocation: lending and taking with joining allocate
// nothing.
func TestUDPRxNoAllocation(t *testing.T) {
	pool := newRxPool(4, udpRxBufSize)
	q := newUDPRxQueue(pool)
	in := buildAll(groRun(40, 1448))
	md := packet.TunnelMeta{ID: 16}
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = make([]byte, MaxSuperFrame)
	}
	sizes, offs, tun := make([]int, 4), make([]Offload, 4), make([]packet.TunnelMeta, 4)
	seq := uint64(0)
	allocs := testing.AllocsPerRun(20, func() {
		seq++
		b, _ := pool.get()
		lendRun(t, pool, b, seq, in, &md, q)
		q.take(bufs, sizes, offs, tun, true)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}

// TestTunnelUDPRunLentInPlace: a VXLAN port's segments that arrive as
// one UDP GRO run reach its thread in the buffer the kernel filled, not
// copied into a queue; its frames join, and the buffer returns to the
// pool.
func TestTunnelUDPRunLentInPlace(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	c := func(name string) uint64 { n, _ := coverage.Default.Lookup(name); return n.Total() }
	lent0 := c("tunnel_rx_lent")
	a, b := tunnelPair(t, ns, "vxlan", map[string]string{"key": "16", "csum": "true"})
	in := buildAll(groRun(8, 1000))
	p := sendAndAwait(t, ns, a, b, in) // one UDP GSO send: one UDP GRO read
	if got := c("tunnel_rx_lent") - lent0; got != uint64(len(in)) {
		t.Errorf("%d segments lent, want %d", got, len(in))
	}
	q := p.udp
	lentFrom := q.ents[q.head.Load()%udpRxQueueLen].buf
	for h := q.head.Load(); h != q.tail.Load(); h++ {
		e := &q.ents[h%udpRxQueueLen]
		if e.buf != lentFrom {
			t.Fatalf("frame %d lies in buffer %d, frame 0 in %d: not one receive buffer", h, e.buf, lentFrom)
		}
		if got := q.pool.bufs[e.buf][e.off : e.off+e.n]; !bytes.Equal(got, in[h-q.head.Load()]) {
			t.Fatalf("frame %d in the receive buffer differs from the one sent", h)
		}
	}
	bufs, sizes, offs := [][]byte{make([]byte, MaxSuperFrame)}, []int{0}, []Offload{{}}
	if k, err := p.ReadBatchOffload(bufs, sizes, offs); err != nil || k != 1 || Segments(bufs[0][:sizes[0]], offs[0]) != len(in) {
		t.Fatalf("read %d frames (%v), want one super-frame of %d segments", k, err, len(in))
	}
	if n := q.pool.refs[lentFrom].Load(); n != 0 {
		t.Errorf("the receive buffer still lends %d frames after the read", n)
	}
}

// BenchmarkTunnelUDPRxLend: 40 segments of one flow (about a UDP GRO read's
// worth) lent from a receive buffer and joined by the port's thread;
// ns/op is per segment, to set beside BenchmarkTunnelGROTake/join (the
// same segments copied into the ring first). The segments are laid into
// the buffer once, as the kernel would have.
func BenchmarkTunnelUDPRxLend(b *testing.B) {
	in := buildAll(groRun(40, 1448))
	pool := newRxPool(4, udpRxBufSize)
	q := newUDPRxQueue(pool)
	for i := range pool.bufs {
		off := 0
		for _, f := range in {
			off += copy(pool.bufs[i][off:], f)
		}
	}
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = make([]byte, MaxSuperFrame)
	}
	sizes, offs := make([]int, 4), make([]Offload, 4)
	md := packet.TunnelMeta{ID: 16}
	b.SetBytes(int64(len(in[0])))
	b.ReportAllocs()
	b.ResetTimer()
	seq := uint64(0)
	for i := 0; i < b.N; i += len(in) {
		seq++
		buf, _ := pool.get()
		pool.hold(buf)
		off := 0
		for _, f := range in {
			q.put(buf, int32(off), int32(len(f)), seq, &md)
			off += len(f)
		}
		if pool.unhold(buf, len(in)) {
			pool.free <- buf
		}
		q.take(bufs, sizes, offs, nil, true)
	}
}

// TestTunnelUDPSlowPortDoesNotStarveOthers: a VXLAN port whose thread
// does not read holds at most udpRxPins receive buffers, its further
// frames are dropped and counted, and another port on the same UDP
// socket still receives.
func TestTunnelUDPSlowPortDoesNotStarveOthers(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	slowA, slowB := tunnelPair(t, ns, "vxlan", map[string]string{"key": "16", "csum": "true"})
	open := func(name, local, remote string) Netdev {
		dev, err := openIn(t, ns, Config{Name: name, Type: "vxlan", Options: map[string]string{"local_ip": local, "remote_ip": remote, "key": "17", "csum": "true"}})
		if err != nil {
			t.Fatal(err)
		}
		return dev
	}
	fastA, fastB := open("tnlc", "127.0.0.1", "127.0.0.2"), open("tnld", "127.0.0.2", "127.0.0.1")
	run := buildAll(groRun(8, 1000))
	const sends = udpRxPins + 16
	inNetns(t, ns, func() {
		for range sends { // one UDP GRO read, one receive buffer, each
			if err := slowA.WriteBatch(run); err != nil {
				t.Error(err)
			}
			time.Sleep(time.Millisecond) // the reader takes each send alone
		}
	})
	slow := slowB.(*tunnelPort)
	for i := 0; slow.Stats().RxDropped == 0; i++ {
		if i == 100 {
			t.Fatalf("no frame dropped after %d runs to a port that does not read (%d waiting, %d buffers held)", sends, slow.rxWaiting(), slow.udp.pins.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pins := slow.udp.pins.Load(); pins != udpRxPins {
		t.Errorf("the slow port holds %d buffers, want %d", pins, udpRxPins)
	}
	fast := sendAndAwait(t, ns, fastA, fastB, run)
	bufs, sizes, offs := [][]byte{make([]byte, MaxSuperFrame)}, []int{0}, []Offload{{}}
	if k, err := fast.ReadBatchOffload(bufs, sizes, offs); err != nil || k != 1 || Segments(bufs[0][:sizes[0]], offs[0]) != len(run) {
		t.Errorf("the other port read %d frames (%v), want one of %d segments", k, err, len(run))
	}
}

// sendAndAwait sends frames through tunnel port from, inside ns, and
// waits (up to 2 s) until all of them wait in the queue of port to.
func sendAndAwait(t *testing.T, ns string, from, to Netdev, frames [][]byte) *tunnelPort {
	t.Helper()
	inNetns(t, ns, func() {
		if err := from.WriteBatch(frames); err != nil {
			t.Error(err)
		}
	})
	p := to.(*tunnelPort)
	for i := 0; p.rxWaiting() < len(frames); i++ {
		if i == 200 {
			t.Fatalf("%d of %d segments arrived", p.rxWaiting(), len(frames))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// TestUDPRxStuckPortsDoNotStopTheReader: ports whose threads stopped
// reading (each at its udpRxPins) can together hold every buffer of the
// pool; the reader then waits udpRxWait, not until one of them reads
// (every other port on the socket starved), and reads into a spare
// buffer, copying frames into the ports' rings.
func TestUDPRxStuckPortsDoNotStopTheReader(t *testing.T) {
	u := &underlay{key: underlayKey{udpPort: 4789}, quit: make(chan struct{})}
	u.initBuffers()
	r := u.udp
	var stuck []*udpRxQueue
	for range udpRxBufs/udpRxPins + 1 {
		stuck = append(stuck, newUDPRxQueue(r.pool))
	}
	md := packet.TunnelMeta{}
	frame := innerTestFrame(1400)
	for round := 0; len(r.pool.free) > 0 || r.fill() > 0; round++ {
		if round > 1000 {
			t.Fatal("the stuck ports never held every buffer")
		}
		for i := range r.fill() {
			b := r.begin(i)
			q := stuck[(round*tunnelBatch+i)%len(stuck)]
			for off := 0; off+len(frame) <= 40*len(frame); off += len(frame) {
				copy(b[off:], frame)
				r.lend(q, i, off, len(frame), &md)
			}
			r.done(i)
		}
	}
	done := make(chan bool, 1)
	go func() { done <- u.setUDPBuffers() }()
	select {
	case ok := <-done:
		if !ok || u.vlen == 0 {
			t.Fatalf("with every buffer lent the reader stopped: ok %v, %d messages to read", ok, u.vlen)
		}
	case <-time.After(2 * time.Second):
		close(u.quit)
		<-done
		t.Fatal("with every buffer lent to ports that do not read, the reader waits for one: every port on the socket is starved")
	}
	// A frame read meanwhile is copied into its port's ring, not lent.
	var p tunnelPort
	p.rx.init()
	p.udp = newUDPRxQueue(r.pool)
	u.queueUDP(&p, 0, true, 0, frame, &md)
	if p.rx.tail.Load() != 1 || p.udp.tail.Load() != 0 || p.stats.rxDropped.Load() != 0 {
		t.Errorf("frame read with the pool empty: %d in the ring, %d lent, %d dropped; want it in the ring",
			p.rx.tail.Load(), p.udp.tail.Load(), p.stats.rxDropped.Load())
	}
}
