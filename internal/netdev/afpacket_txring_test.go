//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakeTxKernel plays the kernel behind a transmit ring in ordinary
// memory: a flush takes the marked slots from its own head on, in order,
// and a direct send takes frames as sendmmsg would. It records what went
// out, and how.
type fakeTxKernel struct {
	ring  *txRing
	head  int
	busy  bool       // slots taken stay TP_STATUS_SENDING (no transmit completion)
	errno unix.Errno // a flush fails with this, taking nothing
	// take, if > 0, is how many slots a flush takes at most (a socket
	// buffer that fills); takeTotal, if > 0, how many in all.
	take, takeTotal, taken int
	flushes                int
	raw                    []bool   // each flush's raw flag
	sent                   []string // "ring:" or "direct:" and the frame's first byte, in order
	vnet                   [][]byte // each ring frame's virtio header
	frames                 [][]byte
}

func (k *fakeTxKernel) flushRing(raw bool) unix.Errno {
	k.flushes++
	k.raw = append(k.raw, raw)
	if k.errno != 0 {
		return k.errno
	}
	r := k.ring
	for n := 0; ; n++ {
		if (k.take > 0 && n == k.take) || (k.takeTotal > 0 && k.taken == k.takeTotal) {
			return 0 // the kernel returns what it took, or EAGAIN
		}
		base := k.head * r.slotSize
		h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&r.mem[base]))
		if atomic.LoadUint32(&h.Status) != unix.TP_STATUS_SEND_REQUEST {
			return 0
		}
		data := r.mem[base+txSlotData : base+txSlotData+int(h.Len)]
		k.vnet = append(k.vnet, bytes.Clone(data[:vnetHdrLen]))
		k.frames = append(k.frames, bytes.Clone(data[vnetHdrLen:]))
		k.sent = append(k.sent, fmt.Sprintf("ring:%d", data[vnetHdrLen]))
		st := uint32(unix.TP_STATUS_AVAILABLE)
		if k.busy {
			st = unix.TP_STATUS_SENDING
		}
		atomic.StoreUint32(&h.Status, st)
		k.head = (k.head + 1) % r.slots
		k.taken++
	}
}

func (k *fakeTxKernel) sendDirect(frames [][]byte, meta []FrameMeta) {
	for _, f := range frames {
		k.sent = append(k.sent, fmt.Sprintf("direct:%d", f[0]))
	}
}

func newFakeTx(t *testing.T, slots int) (*txRing, *fakeTxKernel) {
	t.Helper()
	r, err := newTxRing(make([]byte, slots*ringSlotMin), ringSlotMin)
	if err != nil {
		t.Fatal(err)
	}
	return r, &fakeTxKernel{ring: r}
}

// txFrame is a frame of n bytes whose first byte is id.
func txFrame(id byte, n int) []byte {
	f := patterned(n)
	f[0] = id
	return f
}

// A batch is copied into consecutive slots and flushed once; the ring
// wraps around its end, and each frame goes out intact behind a zero
// virtio header whose hdr_len covers it all.
func TestTxRingSlotsAndWrap(t *testing.T) {
	r, k := newFakeTx(t, 4)
	var count batchCount
	var want []string
	id := byte(0)
	for batch := range 3 {
		var frames [][]byte
		for range 3 {
			frames = append(frames, txFrame(id, 60+int(id)*100))
			want = append(want, fmt.Sprintf("ring:%d", id))
			id++
		}
		r.write(k, frames, nil, &count)
		if k.flushes != batch+1 {
			t.Fatalf("after batch %d: %d flushes, want one per batch", batch, k.flushes)
		}
	}
	if fmt.Sprint(k.sent) != fmt.Sprint(want) {
		t.Fatalf("sent %v, want %v", k.sent, want)
	}
	var bytesWant uint64
	for i, f := range k.frames {
		wantF := txFrame(byte(i), 60+i*100)
		bytesWant += uint64(len(wantF))
		if !bytes.Equal(f, wantF) {
			t.Errorf("frame %d differs from what was written", i)
		}
		v := k.vnet[i]
		if v[0] != 0 || v[1] != 0 || binary.NativeEndian.Uint16(v[2:]) != uint16(len(wantF)) || !bytes.Equal(v[4:], make([]byte, 6)) {
			t.Errorf("frame %d: virtio header %x, want zero but hdr_len %d", i, v, len(wantF))
		}
	}
	if count.packets != 9 || count.bytes != bytesWant || count.dropped+count.errors != 0 {
		t.Errorf("count %+v, want 9 packets of %d bytes", count, bytesWant)
	}
	if r.head != 9%4 {
		t.Errorf("head %d after 9 frames in 4 slots", r.head)
	}
}

// A super-frame that fits a slot keeps its virtio header, so the kernel
// segments it.
func TestTxRingVnetHeader(t *testing.T) {
	r, k := newFakeTx(t, 4)
	off := Offload{h: vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: 700, csumStart: 34, csumOffset: 16}, ecn: true}
	frames := [][]byte{txFrame(1, 1500), txFrame(2, 100)}
	meta := []FrameMeta{{Off: off}, {}}
	var count batchCount
	r.write(k, frames, meta, &count)
	if len(k.vnet) != 2 {
		t.Fatalf("%d frames sent, want 2", len(k.vnet))
	}
	var want [vnetHdrLen]byte
	off.encode(want[:])
	binary.NativeEndian.PutUint16(want[2:], 1500)
	if !bytes.Equal(k.vnet[0], want[:]) {
		t.Errorf("super-frame's header %x, want %x", k.vnet[0], want)
	}
	if h := decodeVnetHdr(k.vnet[1]); h.isGSO() || h.needsCsum() {
		t.Errorf("plain frame's header %x says there is work left", k.vnet[1])
	}
}

// Frames too large for a slot go out directly, after the frames queued
// before them and before those behind them.
func TestTxRingOversizeInOrder(t *testing.T) {
	r, k := newFakeTx(t, 8)
	big := ringSlotMin - txSlotData - vnetHdrLen + 1
	frames := [][]byte{txFrame(1, 100), txFrame(2, 200), txFrame(3, big), txFrame(4, 60000), txFrame(5, 100), txFrame(6, big), txFrame(7, 64)}
	var count batchCount
	r.write(k, frames, make([]FrameMeta, len(frames)), &count)
	want := "[ring:1 ring:2 direct:3 direct:4 ring:5 direct:6 ring:7]"
	if fmt.Sprint(k.sent) != want {
		t.Errorf("sent %v, want %s", k.sent, want)
	}
	// The direct sends count themselves (sendmmsg's writer); the ring
	// counts its own four.
	if count.packets != 4 {
		t.Errorf("ring counted %d packets, want 4", count.packets)
	}
}

// A frame larger than the device's MTU (that is not a super-frame) goes
// through sendmmsg, whose MTU check refuses it, even when it fits a slot;
// a super-frame of that size stays in the ring.
func TestTxRingOverMTUDirect(t *testing.T) {
	r, k := newFakeTx(t, 8)
	r.maxPlain = 1518
	frames := [][]byte{txFrame(1, 1518), txFrame(2, 1519), txFrame(3, 1519)}
	meta := make([]FrameMeta, len(frames))
	meta[2].Off = Offload{h: vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 1000}}
	var count batchCount
	r.write(k, frames, meta, &count)
	if want := "[ring:1 direct:2 ring:3]"; fmt.Sprint(k.sent) != want {
		t.Errorf("sent %v, want %s", k.sent, want)
	}
}

// When the kernel frees no slot (no transmit completion), the writer
// fills the ring, waits a bounded while, and drops the rest of its batch.
func TestTxRingFull(t *testing.T) {
	r, k := newFakeTx(t, 4)
	k.busy = true
	var frames [][]byte
	for i := range 7 {
		frames = append(frames, txFrame(byte(i), 80))
	}
	var count batchCount
	start := time.Now()
	r.write(k, frames, nil, &count)
	if count.packets != 4 || count.dropped != 3 {
		t.Errorf("count %+v, want 4 sent and 3 dropped", count)
	}
	if len(k.sent) != 4 {
		t.Errorf("kernel took %d frames, want the 4 that fit", len(k.sent))
	}
	if k.flushes > txRingWaitRounds+3 || time.Since(start) > time.Second {
		t.Errorf("%d flushes in %v: the wait is not bounded", k.flushes, time.Since(start))
	}
	// Transmit completions free the slots: the next batch goes out.
	for i := range 4 {
		atomic.StoreUint32(r.statusAt(i), unix.TP_STATUS_AVAILABLE)
	}
	k.busy = false
	count = batchCount{}
	r.write(k, frames[:2], nil, &count)
	if count.packets != 2 || count.dropped != 0 {
		t.Errorf("after completions: count %+v, want 2 sent", count)
	}
}

// A device that is down takes nothing: the queued frames are dropped
// and their slots are the writer's again.
func TestTxRingDeviceDown(t *testing.T) {
	r, k := newFakeTx(t, 4)
	k.errno = unix.ENETDOWN
	var count batchCount
	r.write(k, [][]byte{txFrame(1, 100), txFrame(2, 100), txFrame(3, 5)}, nil, &count)
	if count.packets != 0 || count.bytes != 0 || count.dropped != 2 || count.errors != 1 {
		t.Errorf("count %+v, want 2 dropped and the runt frame an error", count)
	}
	if r.head != 0 || !r.free() {
		t.Errorf("head %d, free %v: the slots were not taken back", r.head, r.free())
	}
	k.errno = 0
	count = batchCount{}
	r.write(k, [][]byte{txFrame(4, 100)}, nil, &count)
	if fmt.Sprint(k.sent) != "[ring:4]" || count.packets != 1 {
		t.Errorf("after the device came back: sent %v, count %+v", k.sent, count)
	}
}

func TestTxRingLimits(t *testing.T) {
	for _, c := range []struct{ mem, slot int }{{4096, 1000}, {4096, 1024}, {2048 * 3, 4096}, {0, 2048}, {1 << 20, 32768}} {
		if _, err := newTxRing(make([]byte, c.mem), c.slot); err == nil {
			t.Errorf("memory %d, slot %d: no error", c.mem, c.slot)
		}
	}
	r, _ := newFakeTx(t, 2)
	if !r.fits(ringSlotMin-txSlotData-vnetHdrLen) || r.fits(ringSlotMin-txSlotData-vnetHdrLen+1) {
		t.Error("fits is off by one")
	}
}

// A system port sends through its transmit ring: a batch arrives at the
// veth's other end in order and intact, and is counted.
func TestSystemTxRing(t *testing.T) {
	s := newSystemSetup(t)
	if s.port.wr.ring == nil {
		t.Fatal("the port has no transmit ring")
	}
	peer, err := openIn(t, s.ns, Config{Name: s.peer})
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for i := range 40 {
		f := ethernet(macB, macA, 0x88b5) // local experimental EtherType
		frames = append(frames, append(f, txFrame(byte(i), 46+i*30)...))
	}
	arrived := make(chan []byte, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		bufs, sizes := makeBufs(64)
		for {
			n, err := peer.ReadBatch(bufs, sizes)
			if err != nil {
				return
			}
			for i := range n {
				f := bufs[i][:sizes[i]]
				if len(f) >= ethHeaderLen && binary.BigEndian.Uint16(f[12:]) == 0x88b5 {
					arrived <- bytes.Clone(f)
				}
			}
		}
	}()
	defer func() { peer.Close(); <-done }()
	if err := s.port.WriteBatch(frames); err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	timeout := time.After(5 * time.Second)
	for len(got) < len(frames) {
		select {
		case f := <-arrived:
			got = append(got, f)
		case <-timeout:
			t.Fatalf("peer received %d of %d frames", len(got), len(frames))
		}
	}
	if len(got) != len(frames) {
		t.Fatalf("peer received %d of %d frames", len(got), len(frames))
	}
	for i := range got {
		if !bytes.Equal(got[i], frames[i]) {
			t.Errorf("frame %d arrived changed or out of order", i)
		}
	}
	if st := s.port.Stats(); st.TxPackets != uint64(len(frames)) || st.TxDropped+st.TxErrors != 0 {
		t.Errorf("stats %+v: want %d sent", st, len(frames))
	}
}

// heldLoop is systemLoop's two ends, with the near one's held transmit
// and the far one's RxReady.
func heldLoop(t *testing.T) (near, far Netdev, h HeldTransmitter, r RxReadier) {
	t.Helper()
	near, far = systemLoop(t)
	h, ok := near.(HeldTransmitter)
	r, rok := far.(RxReadier)
	if !ok || !rok {
		t.Fatalf("system port: HeldTransmitter %v, RxReadier %v", ok, rok)
	}
	return near, far, h, r
}

// plainBatch is a batch of frames without offloads, each whole.
func plainBatch(frames [][]byte) *Batch {
	b := NewBatch(len(frames))
	for _, f := range frames {
		b.Add(f, Offload{}, len(f), 0)
	}
	return b
}

// Frames that TransmitHeld leaves in the transmit ring reach the link
// only with Kick; the far end's RxReady sees them then, without a read.
func TestTxRingHeldUntilKick(t *testing.T) {
	near, far, h, r := heldLoop(t)
	frames := testFrames(3)
	if res, err := h.TransmitHeld(plainBatch(frames)); err != nil || res.Sent != 3 {
		t.Fatalf("TransmitHeld: %+v, %v", res, err)
	}
	time.Sleep(20 * time.Millisecond)
	if r.RxReady() {
		t.Fatal("a held frame reached the far end before Kick")
	}
	if res := h.Kick(); res.Dropped != 0 {
		t.Fatalf("Kick dropped %d", res.Dropped)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !r.RxReady() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	bufs, sizes := makeBufs(8)
	defer watchdog(t, 5*time.Second, near, far)()
	if !readTestFrames(far, bufs, sizes, 3) {
		t.Fatal("held frames lost")
	}
	if st := near.Stats(); st.TxPackets != 3 || st.TxDropped != 0 {
		t.Fatalf("stats %+v: want 3 sent", st)
	}
}

// DropHeld takes back what TransmitHeld left in a system port's ring:
// the frames never reach the far end, leave the sent counts for
// tx_dropped, and a Kick after it has nothing left to send.
func TestSystemDropHeld(t *testing.T) {
	near, _, h, r := heldLoop(t)
	if res, err := h.TransmitHeld(plainBatch(testFrames(3))); err != nil || res.Sent != 3 || res.Held != 3 {
		t.Fatalf("TransmitHeld: %+v, %v", res, err)
	}
	if res := h.DropHeld(); res.HeldDropped != 3 || res.Held != 0 {
		t.Fatalf("DropHeld: %+v, want 3 dropped and none held", res)
	}
	if res := h.Kick(); res != (TxResult{}) {
		t.Fatalf("Kick after DropHeld: %+v, want nothing", res)
	}
	time.Sleep(20 * time.Millisecond)
	if r.RxReady() {
		t.Fatal("a dropped held frame reached the far end")
	}
	if st := near.Stats(); st.TxPackets != 0 || st.TxDropped != 3 {
		t.Fatalf("stats %+v: want 3 dropped, none sent", st)
	}
}

// Held frames that a later write finds the device down for are dropped,
// and reported apart from the write's own frames: the write's count
// never goes below zero (its Sent used to go negative), and the held
// ones, which an earlier call reported as sent, are in lost.
func TestTxRingHeldDroppedApart(t *testing.T) {
	r, k := newFakeTx(t, 8)
	var held batchCount
	r.writeHeld(k, [][]byte{txFrame(1, 100), txFrame(2, 100), txFrame(3, 100)}, nil, &held)
	if held.packets != 3 {
		t.Fatalf("held count %+v, want 3", held)
	}
	k.errno = unix.ENETDOWN
	var count batchCount
	r.write(k, [][]byte{txFrame(4, 60)}, nil, &count)
	if count.packets != 0 || count.bytes != 0 || count.dropped != 1 {
		t.Errorf("the write's count %+v, want its one frame dropped", count)
	}
	if res := count.result(); res.Sent != 0 || res.Dropped != 1 {
		t.Errorf("the write's result %+v, want 0 sent and 1 dropped", res)
	}
	if lost := r.takeLost(); lost.packets != 3 || lost.bytes != 300 {
		t.Errorf("held frames lost %+v, want 3 of 100 bytes", lost)
	}
	if lost := r.takeLost(); lost.packets != 0 {
		t.Errorf("lost not reset: %+v", lost)
	}
	if r.head != 0 || r.queued != 0 || !r.free() {
		t.Errorf("head %d, queued %d: the slots were not taken back", r.head, r.queued)
	}
	// A kick of held frames (flushHeld) reports them all as lost.
	k.errno = 0
	held = batchCount{}
	r.writeHeld(k, [][]byte{txFrame(5, 80), txFrame(6, 80)}, nil, &held)
	k.errno = unix.ENODEV
	var kicked batchCount
	r.flushHeld(k, &kicked)
	if kicked != (batchCount{}) {
		t.Errorf("a kick counted %+v in its own count", kicked)
	}
	if lost := r.takeLost(); lost.packets != 2 || lost.bytes != 160 {
		t.Errorf("kicked frames lost %+v, want 2 of 80 bytes", lost)
	}
}

// Frames a flush leaves (the kernel's socket buffer is full) stay
// queued, so that the port reports them held and a Kick (flushHeld)
// sends them: they used to be forgotten by the ring, and a Kick found
// nothing to send.
func TestTxRingPartialFlushStaysQueued(t *testing.T) {
	r, k := newFakeTx(t, 8)
	k.take = 1
	var count batchCount
	r.write(k, [][]byte{txFrame(1, 100), txFrame(2, 100), txFrame(3, 100)}, nil, &count)
	if fmt.Sprint(k.sent) != "[ring:1]" || r.queued != 2 || count.packets != 3 {
		t.Fatalf("sent %v, queued %d, count %+v: want frame 1 sent, 2 queued", k.sent, r.queued, count)
	}
	var kicked batchCount
	r.flushHeld(k, &kicked)
	r.flushHeld(k, &kicked)
	if fmt.Sprint(k.sent) != "[ring:1 ring:2 ring:3]" || r.queued != 0 {
		t.Fatalf("after two kicks: sent %v, queued %d", k.sent, r.queued)
	}
	if kicked != (batchCount{}) || r.takeLost() != (batchCount{}) {
		t.Errorf("kicks counted %+v", kicked)
	}
}

// Held frames that the kernel keeps refusing are taken back (dropHeld)
// and counted as lost; the next frame goes into the first slot taken
// back, where the kernel looks next.
func TestTxRingDropHeld(t *testing.T) {
	r, k := newFakeTx(t, 8)
	var held batchCount
	r.writeHeld(k, [][]byte{txFrame(1, 100), txFrame(2, 100)}, nil, &held)
	k.take, k.takeTotal = 1, 1
	var kicked batchCount
	r.flushHeld(k, &kicked)
	if fmt.Sprint(k.sent) != "[ring:1]" || r.queued != 1 {
		t.Fatalf("sent %v, queued %d", k.sent, r.queued)
	}
	r.dropHeld(&kicked)
	if lost := r.takeLost(); lost.packets != 1 || lost.bytes != 100 || kicked != (batchCount{}) {
		t.Errorf("lost %+v, kick count %+v: want frame 2 lost", lost, kicked)
	}
	if r.queued != 0 || !r.free() {
		t.Fatalf("queued %d: frames left marked", r.queued)
	}
	k.take, k.takeTotal = 0, 0
	var count batchCount
	r.write(k, [][]byte{txFrame(4, 60)}, nil, &count)
	if fmt.Sprint(k.sent) != "[ring:1 ring:4]" || count.packets != 1 {
		t.Errorf("after the buffer drained: sent %v, count %+v", k.sent, count)
	}
}

// A flush is a raw system call only when every frame it carries is small
// (64-byte UDP, TCP ACKs): one MTU-size frame or super-frame among them,
// held ones included, makes it an ordinary call, and the next flush is
// judged by its own frames.
func TestTxRingRawFlushOnlyForSmallFrames(t *testing.T) {
	r, k := newFakeTx(t, 16)
	super := Offload{h: vnetHdr{gsoType: vnetGSOTCPv4, gsoSize: 100}}
	var count batchCount
	small := func() []byte { return txFrame(1, 64) }
	steps := []struct {
		name   string
		frames [][]byte
		meta   []FrameMeta
		hold   bool
		want   string // raw flags of the flushes this step makes
	}{
		{"64-byte frames", [][]byte{small(), small(), txFrame(2, rawSendFrameMax)}, nil, false, "[true]"},
		{"one MTU-size frame among small ones", [][]byte{small(), txFrame(3, 1514), small()}, nil, false, "[false]"},
		{"small frames after a large batch", [][]byte{small()}, nil, false, "[true]"},
		{"one byte over the bound", [][]byte{txFrame(4, rawSendFrameMax+1)}, nil, false, "[false]"},
		{"a small super-frame", [][]byte{small()}, []FrameMeta{{Off: super}}, false, "[false]"},
		{"a large frame held", [][]byte{txFrame(5, 1000)}, nil, true, "[]"},
		{"small frames flushed with the held large one", [][]byte{small()}, nil, false, "[false]"},
		{"small frames after that", [][]byte{small(), small()}, nil, false, "[true]"},
	}
	for _, s := range steps {
		k.raw = nil
		if s.hold {
			r.writeHeld(k, s.frames, s.meta, &count)
		} else {
			r.write(k, s.frames, s.meta, &count)
		}
		if got := fmt.Sprint(k.raw); got != s.want {
			t.Errorf("%s: flushes raw %s, want %s", s.name, got, s.want)
		}
	}
	if count.dropped+count.errors != 0 {
		t.Errorf("count %+v: nothing should be lost", count)
	}
}

// A flush the device refused (down) takes the frames back; the frames
// queued after it are judged alone.
func TestTxRingRawFlushAfterRefusal(t *testing.T) {
	r, k := newFakeTx(t, 8)
	var count batchCount
	k.errno = unix.ENETDOWN
	r.write(k, [][]byte{txFrame(1, 1500)}, nil, &count)
	k.errno, k.raw = 0, nil
	r.write(k, [][]byte{txFrame(2, 64)}, nil, &count)
	if fmt.Sprint(k.raw) != "[true]" {
		t.Errorf("flushes raw %v after a refused large frame, want [true]", k.raw)
	}
}

// A batch of small TCP segments (bare ACKs) is not short kernel work: the
// receiver's input of an ACK may send the data it clocks out, inside the
// same send(). So a flush with a TCP segment in it is an ordinary system
// call, over IPv4 or IPv6, tagged or not; small UDP and other small
// frames stay raw.
func TestTxRingRawFlushNotForTCP(t *testing.T) {
	src4, dst4 := net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2)
	src6, dst6 := net.ParseIP("fd00::1"), net.ParseIP("fd00::2")
	ack4 := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src4, dst4, ipProtoTCP, 1, tcpSegment(1, 0x10, nil))...)
	ack6 := append(ethernet(macA, macB, etherTypeIPv6), ipv6Packet(src6, dst6, ipProtoTCP, tcpSegment(1, 0x10, nil))...)
	tagged := append(ethernet(macA, macB, etherTypeVLAN), 0, 10)
	tagged = binary.BigEndian.AppendUint16(tagged, etherTypeIPv4)
	tagged = append(tagged, ipv4Packet(src4, dst4, ipProtoTCP, 1, tcpSegment(1, 0x10, nil))...)
	udp4 := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src4, dst4, ipProtoUDP, 1, udpDatagram(make([]byte, 18)))...)
	udp6 := append(ethernet(macA, macB, etherTypeIPv6), ipv6Packet(src6, dst6, ipProtoUDP, udpDatagram(make([]byte, 18)))...)
	for _, tc := range []struct {
		name   string
		frames [][]byte
		raw    bool
	}{
		{"UDP over IPv4", [][]byte{udp4, udp4}, true},
		{"UDP over IPv6", [][]byte{udp6}, true},
		{"an ARP-sized frame", [][]byte{txFrame(1, 60)}, true},
		{"a TCP ACK over IPv4", [][]byte{udp4, ack4}, false},
		{"a TCP ACK over IPv6", [][]byte{ack6}, false},
		{"a tagged TCP ACK", [][]byte{tagged}, false},
		{"a truncated IPv4 header", [][]byte{ack4[:ethHeaderLen+9]}, true},
	} {
		r, k := newFakeTx(t, 8)
		var count batchCount
		r.write(k, tc.frames, nil, &count)
		if len(k.raw) != 1 || k.raw[0] != tc.raw {
			t.Errorf("%s: flushes raw %v, want [%v]", tc.name, k.raw, tc.raw)
		}
	}
}
