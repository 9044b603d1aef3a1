//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fakeRing is a receive ring in ordinary memory, filled the way the
// kernel fills a TPACKET_V2 ring with PACKET_VNET_HDR.
type fakeRing struct {
	r    afpacketReader
	next int // the slot the "kernel" fills next
}

const fakeMac = 80 // where the kernel puts the frame in a slot, past the virtio header

func newFakeRing(t *testing.T, slots int) *fakeRing {
	t.Helper()
	f := &fakeRing{}
	f.r.init(&counters{})
	f.r.ring = &packetRing{mem: make([]byte, slots*ringSlotMin), slotSize: ringSlotMin, slots: slots}
	return f
}

func (f *fakeRing) hdr(i int) *unix.Tpacket2Hdr {
	return (*unix.Tpacket2Hdr)(unsafe.Pointer(&f.r.ring.mem[i*ringSlotMin]))
}

// put fills the next slot with frame (cut to snap bytes if snap >= 0)
// behind virtio header vh, with extra status bits.
func (f *fakeRing) put(frame []byte, vh vnetHdr, status uint32, snap int) {
	i := f.next
	f.next = (f.next + 1) % f.r.ring.slots
	base := f.r.ring.mem[i*ringSlotMin : (i+1)*ringSlotMin]
	clear(base)
	if snap < 0 {
		snap = len(frame)
	}
	copy(base[fakeMac:], frame[:snap])
	v := base[fakeMac-vnetHdrLen : fakeMac]
	v[0], v[1] = vh.flags, vh.gsoType
	binary.NativeEndian.PutUint16(v[4:], vh.gsoSize)
	binary.NativeEndian.PutUint16(v[6:], vh.csumStart)
	binary.NativeEndian.PutUint16(v[8:], vh.csumOffset)
	h := f.hdr(i)
	h.Len, h.Snaplen, h.Mac = uint32(len(frame)), uint32(snap), fakeMac
	h.Status = unix.TP_STATUS_USER | status
}

func (f *fakeRing) read(t *testing.T, n int) [][]byte {
	t.Helper()
	bufs, sizes := makeBufs(n)
	got, atCopy := f.r.ringDeliver(bufs, sizes, nil)
	if atCopy {
		t.Fatal("ringDeliver stopped at a TP_STATUS_COPY slot")
	}
	out := make([][]byte, got)
	for i := range out {
		out[i] = bufs[i][:sizes[i]]
	}
	f.r.publish()
	return out
}

func udpFrame(payload int) []byte {
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	return append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoUDP, 1, udpDatagram(patterned(payload)))...)
}

// Frames are copied out in ring order and their slots handed back; the
// reader follows the kernel around the end of the ring.
func TestRingFramesAndWrap(t *testing.T) {
	f := newFakeRing(t, 4)
	var want [][]byte
	for i := range 3 {
		want = append(want, udpFrame(20+i))
		f.put(want[i], vnetHdr{}, 0, -1)
	}
	got := f.read(t, 8)
	if len(got) != 3 {
		t.Fatalf("read %d frames, want 3", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d differs", i)
		}
	}
	for i := range 3 {
		if st := f.hdr(i).Status; st != unix.TP_STATUS_KERNEL {
			t.Errorf("slot %d status %#x after reading, want TP_STATUS_KERNEL", i, st)
		}
	}
	// Slots 3, 0, 1: across the end of the ring.
	want = want[:0]
	for i := range 3 {
		want = append(want, udpFrame(40+i))
		f.put(want[i], vnetHdr{}, 0, -1)
	}
	got = f.read(t, 2) // fewer buffers than frames: the rest waits
	got = append(got, f.read(t, 8)...)
	if len(got) != 3 {
		t.Fatalf("read %d frames after the wrap, want 3", len(got))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d after the wrap differs", i)
		}
	}
	if f.r.ring.head != 2 {
		t.Errorf("head at slot %d, want 2", f.r.ring.head)
	}
	if st := f.r.stats.snapshot(); st.RxPackets != 6 || st.RxDropped+st.RxErrors != 0 {
		t.Errorf("stats %+v, want 6 packets and nothing else", st)
	}
	if got := f.read(t, 8); len(got) != 0 {
		t.Errorf("read %d frames from an empty ring", len(got))
	}
}

// The virtio header's partial checksum is finished, and a VLAN tag the
// kernel moved into the slot header is put back in the frame.
func TestRingVnetHeaderAndVLAN(t *testing.T) {
	f := newFakeRing(t, 4)
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	l4 := udpDatagram(patterned(30))
	binary.BigEndian.PutUint16(l4[6:], pseudoSum(src, dst, ipProtoUDP, len(l4)))
	frame := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoUDP, 1, l4)...)
	partial := vnetHdr{flags: vnetFlagNeedsCsum, csumStart: 34, csumOffset: 6}
	f.put(frame, partial, 0, -1)
	f.put(frame, partial, unix.TP_STATUS_VLAN_VALID|unix.TP_STATUS_VLAN_TPID_VALID, -1)
	h := f.hdr(1)
	h.Vlan_tci, h.Vlan_tpid = 0x2064, 0x88a8
	got := f.read(t, 8)
	if len(got) != 2 {
		t.Fatalf("read %d frames, want 2", len(got))
	}
	if ok, checked := l4ChecksumOK(got[0]); !ok || !checked {
		t.Error("partial checksum not finished")
	}
	tagged := got[1]
	if len(tagged) != len(frame)+vlanTagLen || binary.BigEndian.Uint16(tagged[12:]) != 0x88a8 || binary.BigEndian.Uint16(tagged[14:]) != 0x2064 {
		t.Fatalf("tag not restored: % x", tagged[:18])
	}
	if ok, checked := l4ChecksumOK(tagged); !ok || !checked {
		t.Error("partial checksum of the tagged frame not finished")
	}
	if f.r.checksumsFinished.Load() != 2 {
		t.Errorf("checksumsFinished = %d, want 2", f.r.checksumsFinished.Load())
	}
}

// A frame the kernel cut to the slot (tp_snaplen < tp_len, no copy on
// the socket queue) is dropped and counted; a slot whose header points
// outside it is an error; both slots are handed back.
func TestRingTruncatedAndMalformed(t *testing.T) {
	f := newFakeRing(t, 4)
	big := udpFrame(1500)
	f.put(big, vnetHdr{}, 0, 1000)
	f.put(udpFrame(10), vnetHdr{}, 0, -1)
	f.hdr(1).Mac = ringSlotMin - 10
	keep := udpFrame(11)
	f.put(keep, vnetHdr{}, 0, -1)
	got := f.read(t, 8)
	if len(got) != 1 || !bytes.Equal(got[0], keep) {
		t.Fatalf("read %d frames, want only the good one", len(got))
	}
	st := f.r.stats.snapshot()
	if st.RxPackets != 1 || st.RxDropped != 1 || st.RxErrors != 1 {
		t.Errorf("stats %+v, want 1 packet, 1 dropped (truncated), 1 error (malformed)", st)
	}
	if f.r.ring.head != 3 || f.hdr(0).Status != unix.TP_STATUS_KERNEL || f.hdr(1).Status != unix.TP_STATUS_KERNEL {
		t.Error("bad slots not handed back")
	}
}

// A slot marked TP_STATUS_COPY stops the batch before it and is left for
// the socket read that fetches its frame.
func TestRingStopsAtCopySlot(t *testing.T) {
	f := newFakeRing(t, 4)
	first := udpFrame(10)
	f.put(first, vnetHdr{}, 0, -1)
	f.put(udpFrame(1500), vnetHdr{}, unix.TP_STATUS_COPY, 100)
	bufs, sizes := makeBufs(8)
	n, atCopy := f.r.ringDeliver(bufs, sizes, nil)
	if n != 1 || !atCopy || !bytes.Equal(bufs[0][:sizes[0]], first) {
		t.Fatalf("ringDeliver = %d, %v; want the first frame, then a stop at the copy slot", n, atCopy)
	}
	if f.r.ring.head != 1 || f.hdr(1).Status&unix.TP_STATUS_USER == 0 {
		t.Error("copy slot released before its frame was read")
	}
}

// A TCP super-frame small enough for a slot is cut into segments for
// ReadBatch, and passed whole to ReadBatchOffload.
func TestRingSuperFrameInSlot(t *testing.T) {
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	l4 := tcpSegment(1000, 0x10, patterned(1200))
	binary.BigEndian.PutUint16(l4[16:], pseudoSum(src, dst, ipProtoTCP, len(l4)))
	frame := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoTCP, 7, l4)...)
	h := vnetHdr{flags: vnetFlagNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: 500, csumStart: 34, csumOffset: 16}

	f := newFakeRing(t, 4)
	f.put(frame, h, 0, -1)
	bufs, sizes := makeBufs(8)
	n, _ := f.r.ringDeliver(bufs, sizes, nil)
	if n != 0 || !f.r.pending() {
		t.Fatalf("ringDeliver = %d, pending %v: want the super-frame handed to the segmenter", n, f.r.pending())
	}
	n = f.r.drain(bufs, sizes)
	if n != 3 {
		t.Fatalf("%d segments, want 3", n)
	}
	for i := range n {
		if ok, checked := l4ChecksumOK(bufs[i][:sizes[i]]); !ok || !checked {
			t.Errorf("segment %d: bad checksum", i)
		}
	}

	f = newFakeRing(t, 4)
	f.put(frame, h, 0, -1)
	bufs, sizes = makeBufsOf(8, MaxSuperFrame)
	offs := make([]Offload, 8)
	n, _ = f.r.ringDeliver(bufs, sizes, offs)
	if n != 1 || !bytes.Equal(bufs[0][:sizes[0]], frame) || !offs[0].IsSuper() {
		t.Fatalf("ringDeliver with offloads = %d (super %v): want the frame whole", n, offs[0].IsSuper())
	}
}

func TestRingSlotSize(t *testing.T) {
	for _, tc := range []struct{ mtu, want int }{
		{0, 2048}, {1500, 2048}, {1950, 4096}, {9000, 16384}, {65535, 16384},
	} {
		if got := ringSlotSize(tc.mtu); got != tc.want {
			t.Errorf("ringSlotSize(%d) = %d, want %d", tc.mtu, got, tc.want)
		}
	}
	if _, err := setupRing(-1, 3000); err == nil {
		t.Error("setupRing accepted a slot size that is not a power of two")
	}
}

func makeBufsOf(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, 0, size)
	}
	return bufs, make([]int, n)
}

// A wake-up that finds the ring empty reads the socket's statistics:
// drops with no frame put in the ring since the last read mean the
// kernel is stuck on a slot.
func TestRingStalled(t *testing.T) {
	for _, tc := range []struct {
		st   unix.TpacketStats
		want bool
	}{
		{unix.TpacketStats{}, false},
		{unix.TpacketStats{Packets: 10}, false},
		{unix.TpacketStats{Packets: 10, Drops: 3}, false}, // the ring was full for a while
		{unix.TpacketStats{Packets: 3, Drops: 3}, true},   // every frame since the last read dropped
	} {
		if got := ringStalled(tc.st); got != tc.want {
			t.Errorf("ringStalled(%+v) = %v, want %v", tc.st, got, tc.want)
		}
	}
}

// A system port reads through its ring, and still does after the ring
// was replaced (what a stalled ring gets).
func TestSystemRingReplaced(t *testing.T) {
	s := newSystemSetup(t)
	old := s.port.rd.ring
	if old == nil {
		t.Fatal("the system port has no receive ring")
	}
	if err := s.port.replaceRing(); err != nil {
		t.Fatalf("replaceRing: %v", err)
	}
	if s.port.rd.ring == nil || s.port.rd.ring == old || old.mem != nil {
		t.Fatal("ring not replaced, or the old one still mapped")
	}
	startFakeHost(t, s.port, macB, net.IPv4(198, 51, 100, 2))
	pingFrom(t, s.ns, "198.51.100.2", 2)
}

// Frames the kernel drops because the ring is full are counted in
// RxDropped: the frames that land afterwards carry TP_STATUS_LOSING,
// which makes the reader fetch the socket's drop count.
func TestSystemRingCountsDrops(t *testing.T) {
	near, far := systemLoop(t)
	defer watchdog(t, 30*time.Second, near, far)()
	frames := testFrames(32)
	for range 2 * ringMemory / ringSlotMin / len(frames) {
		if err := far.WriteBatch(frames); err != nil {
			t.Fatal(err)
		}
	}
	bufs, sizes := makeBufs(64)
	for i := 0; i < 300 && near.Stats().RxDropped == 0; i++ {
		if err := far.WriteBatch(frames[:16]); err != nil {
			t.Fatal(err)
		}
		if _, err := near.ReadBatch(bufs, sizes); err != nil {
			t.Fatal(err)
		}
	}
	slots := uint64(ringMemory / ringSlotMin)
	if st := near.Stats(); st.RxDropped < slots*9/10 || st.RxPackets < slots*9/10 {
		t.Errorf("stats %+v: want about %d frames dropped and at least as many received", st, slots)
	}
}

// A ring the kernel overflowed grows, doubling up to ringMemoryMax, at a
// moment it is empty; the frames it dropped are counted, and frames keep
// coming through the larger ring.
func TestSystemRingGrowsAfterDrops(t *testing.T) {
	near, far := systemLoop(t)
	defer watchdog(t, 60*time.Second, near, far)()
	p := near.(*afpacketPort)
	frames := testFrames(32)
	bufs, sizes := makeBufs(64)
	overflow := func() {
		t.Helper()
		dropped := p.Stats().RxDropped
		for range 2 * p.rd.ring.size / ringSlotMin / len(frames) {
			if err := far.WriteBatch(frames); err != nil {
				t.Fatal(err)
			}
		}
		// Read until the drops are counted and the ring is empty.
		for i := 0; i < 1000 && (p.Stats().RxDropped == dropped || p.RxReady()); i++ {
			if err := far.WriteBatch(frames[:1]); err != nil {
				t.Fatal(err)
			}
			if _, err := near.ReadBatch(bufs, sizes); err != nil {
				t.Fatal(err)
			}
		}
		if p.Stats().RxDropped == dropped {
			t.Fatal("no frames dropped: the ring did not overflow")
		}
	}
	grown := ringGrown.Total()
	for _, want := range []int{4 << 20, ringMemoryMax, ringMemoryMax} {
		overflow()
		// The next read, once the ring is empty, swaps it.
		if err := far.WriteBatch(frames[:1]); err != nil {
			t.Fatal(err)
		}
		if _, err := near.ReadBatch(bufs, sizes); err != nil {
			t.Fatal(err)
		}
		if got := p.rd.ring.size; got != want {
			t.Fatalf("ring of %d bytes after an overflow, want %d", got, want)
		}
	}
	if n := ringGrown.Total() - grown; n != 2 {
		t.Errorf("netdev_afpacket_ring_grown counted %d growths, want 2", n)
	}
	for range 4 {
		if err := far.WriteBatch(frames); err != nil {
			t.Fatal(err)
		}
	}
	got := 0
	for got < 4*len(frames) {
		n, err := near.ReadBatch(bufs, sizes)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
}

// Copy slots in a row are counted, so that their frames come off the
// socket queue in one recvmmsg, also across the end of the ring.
func TestRingCopySlots(t *testing.T) {
	f := newFakeRing(t, 4)
	f.put(udpFrame(10), vnetHdr{}, 0, -1)
	f.put(udpFrame(10), vnetHdr{}, 0, -1)
	f.read(t, 8)
	for range 3 { // slots 2, 3 and 0
		f.put(udpFrame(1500), vnetHdr{}, unix.TP_STATUS_COPY, 100)
	}
	f.put(udpFrame(10), vnetHdr{}, 0, -1)
	if n := f.r.ring.copySlots(8); n != 3 {
		t.Errorf("copySlots = %d, want 3", n)
	}
	if n := f.r.ring.copySlots(2); n != 2 {
		t.Errorf("copySlots(2) = %d, want 2", n)
	}
}
