//go:build linux

package netdev

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive ring of the system port: PACKET_RX_RING with TPACKET_V2.
//
// The kernel copies each frame into a slot of a ring shared with us, in
// the sending thread's softirq, and wakes us per frame; we copy the frame
// into the caller's buffer and hand the slot back at once, so no frame
// outlives its slot and the datapath keeps owning its buffers (they have
// headroom for pushed headers, and mirror and upcall queues may hold
// them). With frames waiting, a batch costs no system call at all.
//
// Why V2 rather than V3: a V3 ring wakes the reader once per block, when
// the block fills or its retire timer (1 ms at the least) fires, which
// would put milliseconds on a lone request/response; V2 wakes per frame,
// as recvmmsg does.
//
// Frames larger than a slot (GSO super-frames, jumbo frames in small
// slots): with PACKET_COPY_THRESH the kernel still takes a slot, marked
// TP_STATUS_COPY, and queues the whole frame on the socket, where
// recvmmsg reads it with its virtio header, in ring order.

const (
	// ringMemory is the ring's size per port at first, bounding what a
	// burst can queue: 1024 slots of 2 KiB for a 1500-byte MTU, 10 ms at
	// 100,000 frames a second. It is kernel memory, pinned, for every
	// system port; 8 MiB measured no better for a VM's port
	// (docs/PERFORMANCE.md).
	ringMemory = 2 << 20
	// ringMemoryMax is what a port's ring grows to, doubling each time
	// the kernel dropped frames for want of a slot (growRing): an
	// underlay port taking a tunnel's MTU-size segments at 280,000 a
	// second emptied 1024 slots in under 4 ms whenever its reader waited
	// for a CPU, and lost 3 % of them; 4096 slots lost none
	// (docs/PERFORMANCE.md). Only ports that overflow pay for it.
	ringMemoryMax = 8 << 20
	// ringBlock is the kernel's allocation unit; a slot never spans two.
	ringBlock = 64 << 10
	// Slot sizes: a power of two from ringSlotMin to ringSlotMax, the
	// smallest that holds the kernel's header and an MTU-size frame.
	ringSlotMin = 2048
	ringSlotMax = 16384
	// ringSlotOverhead is what the kernel puts in front of the frame in a
	// slot: tpacket2_hdr and sockaddr_ll aligned, then the virtio header.
	ringSlotOverhead = 96
)

// packetRing is the mapped ring and the slot to read next. Only the
// receiving goroutine uses it.
type packetRing struct {
	mem      []byte
	slotSize int
	slots    int
	head     int
	size     int // bytes mapped: ringMemory, or more once grown
}

// ringSlotSize is the slot size for an interface MTU: larger frames go
// through the socket queue (TP_STATUS_COPY).
func ringSlotSize(mtu int) int {
	size := ringSlotMin
	for size < ringSlotMax && size < ringSlotOverhead+ethHeaderLen+mtu {
		size *= 2
	}
	return size
}

// setupRing asks the kernel for a ring of slotSize slots on fd and maps
// it. It must run before bind, after PACKET_VNET_HDR.
func setupRing(fd, slotSize int) (*packetRing, error) {
	if slotSize < ringSlotMin || slotSize > ringSlotMax || ringBlock%slotSize != 0 {
		return nil, fmt.Errorf("ring slot size %d: must be a power of two from %d to %d", slotSize, ringSlotMin, ringSlotMax)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V2); err != nil {
		return nil, fmt.Errorf("PACKET_VERSION: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_COPY_THRESH, 1); err != nil {
		return nil, fmt.Errorf("PACKET_COPY_THRESH: %w", err)
	}
	return mapRing(fd, slotSize, ringMemory)
}

// mapRing creates a ring of size bytes on fd and maps it.
func mapRing(fd, slotSize, size int) (*packetRing, error) {
	req := unix.TpacketReq{
		Block_size: ringBlock,
		Block_nr:   uint32(size / ringBlock),
		Frame_size: uint32(slotSize),
		Frame_nr:   uint32(size / slotSize),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, fmt.Errorf("PACKET_RX_RING: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		_ = unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &unix.TpacketReq{})
		return nil, fmt.Errorf("mmap of the receive ring: %w", err)
	}
	return &packetRing{mem: mem, slotSize: slotSize, slots: size / slotSize, size: size}, nil
}

// remapRing replaces the ring on fd by a fresh one of size bytes and
// empties the socket queue, whose frames belonged to slots of the old
// ring (or arrived while there was none); it returns how many frames it
// threw away, for the caller to count. On error the port is left
// without a ring, reading with recvmmsg.
func remapRing(fd int, old *packetRing, scratch []byte, size int) (*packetRing, int, error) {
	old.unmap()
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &unix.TpacketReq{}); err != nil {
		return nil, 0, fmt.Errorf("PACKET_RX_RING (free): %w", err)
	}
	lost := 0
	for range 4 * old.size / ringSlotMin {
		if _, _, err := unix.Recvfrom(fd, scratch, unix.MSG_DONTWAIT); err != nil {
			break
		}
		lost++
	}
	ring, err := mapRing(fd, old.slotSize, size)
	return ring, lost, err
}

// ringStalled tells, from PACKET_STATISTICS read (and so reset) at a
// wake-up that found the ring empty, whether the kernel dropped frames
// and put none in the ring since the last read although the ring had
// room: a V2 ring stays stuck that way once the kernel fails to write a
// slot's virtio header (a GSO type the header cannot describe), since
// it keeps that slot claimed. Replacing the ring is the way out.
func ringStalled(st unix.TpacketStats) bool {
	return st.Drops > 0 && st.Packets == st.Drops
}

func (g *packetRing) unmap() {
	if g != nil && g.mem != nil {
		_ = unix.Munmap(g.mem)
		g.mem = nil
	}
}

func (g *packetRing) status() *uint32 {
	return (*uint32)(unsafe.Pointer(&g.mem[g.head*g.slotSize]))
}

// headStatus is the head slot's tp_status; TP_STATUS_USER set means the
// kernel has filled it for us.
func (g *packetRing) headStatus() uint32 { return atomic.LoadUint32(g.status()) }

func (g *packetRing) ready() bool { return g.headStatus()&unix.TP_STATUS_USER != 0 }

// release hands the head slot back to the kernel and moves on.
func (g *packetRing) release() {
	atomic.StoreUint32(g.status(), unix.TP_STATUS_KERNEL)
	if g.head++; g.head == g.slots {
		g.head = 0
	}
}

// ringFrame is what the head slot holds.
type ringFrame struct {
	frame     []byte // in the ring
	vnet      []byte // its virtio header, in the ring
	tpid, tci uint16
	tagged    bool
}

// frame reads the head slot's header. The kernel wrote it, but a slot
// that points outside itself is reported, not followed.
func (g *packetRing) frame() (f ringFrame, v frameVerdict) {
	off := g.head * g.slotSize
	h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&g.mem[off]))
	mac, snap := int(h.Mac), int(h.Snaplen)
	switch {
	case mac < unix.SizeofTpacket2Hdr+vnetHdrLen || mac+snap > g.slotSize:
		return f, frameMalformed
	case h.Snaplen < h.Len: // cut to the slot, and the kernel had no room to queue it whole
		return f, frameDropped
	case snap < ethHeaderLen:
		return f, frameMalformed
	}
	f.frame = g.mem[off+mac : off+mac+snap]
	f.vnet = g.mem[off+mac-vnetHdrLen : off+mac]
	if h.Status&unix.TP_STATUS_VLAN_VALID != 0 {
		f.tagged, f.tpid, f.tci = true, etherTypeVLAN, h.Vlan_tci
		if h.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			f.tpid = h.Vlan_tpid
		}
	}
	return f, frameOK
}

// ringDeliver moves ready frames from the ring into bufs and returns how
// many. It stops early when the head slot's frame is on the socket queue
// (atCopy: the slot is left for readCopied) or when a super-frame starts
// being segmented (r.pending()).
func (r *afpacketReader) ringDeliver(bufs [][]byte, sizes []int, offs []Offload) (out int, atCopy bool) {
	g := r.ring
	for out < len(bufs) {
		st := g.headStatus()
		switch {
		case st&unix.TP_STATUS_USER == 0:
			return out, false
		case st&unix.TP_STATUS_COPY != 0:
			return out, true
		case st&unix.TP_STATUS_LOSING != 0:
			r.losing = true
		}
		var off *Offload
		if offs != nil {
			off = &offs[out]
		}
		if r.takeSlot(bufs[out], &sizes[out], off) {
			out++
		}
		if r.pending() {
			return out, false
		}
	}
	return out, false
}

// takeSlot copies the head slot's frame into buf, finished as ReadBatch
// promises, or hands a super-frame to the segmenter; then it releases
// the slot. It reports whether buf holds a frame.
func (r *afpacketReader) takeSlot(buf []byte, size *int, off *Offload) bool {
	g := r.ring
	f, v := g.frame()
	if v != frameOK {
		g.release()
		r.tally(v, 0)
		return false
	}
	h := decodeVnetHdr(f.vnet)
	n := len(f.frame)
	if h.isGSO() {
		if off != nil && n <= cap(buf) {
			copy(buf[:n], f.frame)
			if passThrough(buf[:n], h, f.tagged, false) {
				*off = Offload{h: h, ecn: f.vnet[1]&vnetGSOECN != 0}
				g.release()
				r.superFramesWhole.Add(1)
				*size = n
				return r.tally(frameOK, n)
			}
		}
		r.startSegments(f, h)
		return false
	}
	if n > MaxFrame {
		g.release()
		return r.tally(frameDropped, 0)
	}
	copy(buf[:n], f.frame)
	g.release()
	n, v = r.finish(buf, n, h, f.tpid, f.tci, f.tagged)
	*size = n
	return r.tally(v, n)
}

// startSegments copies a super-frame out of the ring, with its VLAN tag
// put back, for the segmenter, and releases its slot. The first slot's
// private buffer is free: nothing is in the backlog while the ring is read.
func (r *afpacketReader) startSegments(f ringFrame, h vnetHdr) {
	big := r.slots[0].big
	n := copy(big[:superFrameMax], f.frame)
	r.ring.release()
	shift := 0
	if f.tagged {
		n, shift = insertVLAN(big, n, f.tpid, f.tci), vlanTagLen
	}
	if r.seg.start(big[:n], h, shift) {
		r.superFrames.Add(1)
	} else {
		r.count.dropped++
	}
}

// waitRing runs inside RawConn.Read: false parks the goroutine until the
// socket signals. A wake-up without a frame is an error report (ENETDOWN
// when the interface goes down): reading SO_ERROR clears it, as recvmmsg
// would, so that it does not fail the next send instead.
func (r *afpacketReader) waitRing(fd uintptr) bool {
	if r.ring.ready() {
		return true
	}
	if !r.woken {
		r.woken = true
		return false
	}
	_, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
	if r.readDrops(fd) {
		r.stalled = true
		return true
	}
	return false
}

// readDrops adds the frames the kernel dropped for want of a free slot
// (or of anything else) since the last read to RxDropped, and reports
// whether the counts say the ring is stalled.
func (r *afpacketReader) readDrops(fd uintptr) (stalled bool) {
	st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return false
	}
	r.count.dropped += uint64(st.Drops)
	if ringStalled(*st) {
		return true
	}
	if st.Drops > 0 && r.ring != nil && r.ring.size < ringMemoryMax {
		r.grow = true // at the next moment the ring is empty (growRing)
	}
	return false
}

// copySlots counts the TP_STATUS_COPY slots in a row from the head, up
// to max: their frames are the next ones on the socket queue.
func (g *packetRing) copySlots(max int) int {
	i, n := g.head, 0
	for n < max {
		st := atomic.LoadUint32((*uint32)(unsafe.Pointer(&g.mem[i*g.slotSize])))
		if st&unix.TP_STATUS_USER == 0 || st&unix.TP_STATUS_COPY == 0 {
			break
		}
		n++
		if i++; i == g.slots {
			i = 0
		}
	}
	return n
}

// recvCopied reads the frames that r.want TP_STATUS_COPY slots
// announced from the socket queue (armed by the caller), in one
// recvmmsg. It never waits: the kernel queued each frame before it
// marked its slot. It returns how many slots the call accounted for:
// the frames received, or the one frame the kernel could not hand over
// (counted here).
func (r *afpacketReader) recvCopied(fd uintptr) int {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.want), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			r.got = int(n)
			if r.got == 0 { // not for a non-empty queue; never loop on it
				r.count.dropped++
				return 1
			}
			return r.got
		case unix.EINTR:
		case unix.EAGAIN:
			r.count.dropped++ // announced but gone: count it, do not wait
			return 1
		default:
			// EINVAL: the kernel could not describe the frame in a
			// virtio header and dropped it (when frames before it in
			// the same call were received, the error comes with the
			// next call, for this frame's slot).
			r.count.errors++
			return 1
		}
	}
}
