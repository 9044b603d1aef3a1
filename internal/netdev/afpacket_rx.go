//go:build linux

package netdev

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Receive side of the system port.
//
// One recvmmsg call fills up to afpacketBatch slots. Slot i scatters into
// three iovecs: the virtio header, the caller's bufs[i] (MaxFrame bytes),
// and a private overflow area that only a GSO super-frame reaches. Frames
// that fit are used in place. When a super-frame shows up, it and every
// later frame of the batch are moved into their slots' private buffers
// (the backlog, kept in arrival order) and handed out, segmented, by this
// and the following ReadBatch calls; no recvmmsg is issued until the
// backlog is empty.

const (
	afpacketBatch = 32
	// superFrameMax is the largest frame kept: a 64 KiB GSO packet plus
	// link headers. Anything larger is truncated by the kernel and dropped.
	superFrameMax = 65536 + 256
	ctrlWords     = 8 // 64 bytes of control data: room for PACKET_AUXDATA
)

type rxSlot struct {
	hdr  [vnetHdrLen]byte
	ctrl [ctrlWords]uint64 // uint64 for cmsghdr alignment
	iov  [3]unix.Iovec
	// big holds the part of a frame beyond MaxFrame, and the whole frame
	// (plus room for a VLAN tag) once the slot is in the backlog.
	big []byte
}

type afpacketReader struct {
	stats  *counters
	msgs   []unix.Mmsghdr
	slots  []rxSlot
	recvFn func(fd uintptr) bool
	want   int
	got    int
	err    error
	count  batchCount

	ring       *packetRing // nil: the port reads with recvmmsg only
	recvCopyFn func(fd uintptr)
	accounted  int // slots the last recvCopied accounted for
	waitFn     func(fd uintptr) bool
	woken      bool // waitFn has already parked once in this wait
	stalled    bool // the ring must be replaced (ringStalled)
	losing     bool // a slot said the kernel dropped frames: read the count
	grow       bool // the kernel dropped frames for want of a slot: a larger ring
	statsFn    func(fd uintptr)

	whole      bool  // the last arm was for ReadBatchOffload
	backlog    []int // slot indexes still to hand out, in order
	backlogPos int
	seg        segmenter

	// For tests and debugging: offload work done.
	checksumsFinished atomic.Uint64
	superFrames       atomic.Uint64 // segmented
	superFramesWhole  atomic.Uint64 // passed through by ReadBatchOffload
}

func (r *afpacketReader) init(stats *counters) {
	r.stats = stats
	r.msgs = make([]unix.Mmsghdr, afpacketBatch)
	r.slots = make([]rxSlot, afpacketBatch)
	r.backlog = make([]int, 0, afpacketBatch)
	for i := range r.slots {
		s := &r.slots[i]
		s.big = make([]byte, superFrameMax+vlanTagLen)
		s.iov[0].Base = &s.hdr[0]
		s.iov[0].SetLen(vnetHdrLen)
		s.iov[2].Base = &s.big[MaxFrame]
		s.iov[2].SetLen(superFrameMax - MaxFrame)
		r.msgs[i].Hdr.Iov = &s.iov[0]
		r.msgs[i].Hdr.SetIovlen(len(s.iov))
		r.msgs[i].Hdr.Control = (*byte)(unsafe.Pointer(&s.ctrl[0]))
	}
	r.recvFn = r.recv
	r.recvCopyFn = func(fd uintptr) { r.accounted = r.recvCopied(fd) }
	r.waitFn = r.waitRing
	r.statsFn = func(fd uintptr) { r.readDrops(fd) }
}

func (r *afpacketReader) publish() {
	r.stats.addRx(r.count)
	r.count = batchCount{}
}

func (r *afpacketReader) pending() bool {
	return r.seg.active() || r.backlogPos < len(r.backlog)
}

// arm points the slots at the caller's buffers for the next recvmmsg.
// With whole, the buffers are large enough for super-frames, and the
// overflow areas are not used.
func (r *afpacketReader) arm(bufs [][]byte, whole bool) {
	r.whole = whole
	for i, b := range bufs {
		s := &r.slots[i]
		s.iov[1].Base = &b[:MaxFrame][0]
		s.iov[1].SetLen(MaxFrame)
		s.iov[2].SetLen(superFrameMax - MaxFrame)
		if whole {
			s.iov[1].SetLen(superFrameMax)
			s.iov[2].SetLen(0)
		}
		r.msgs[i].Hdr.SetControllen(ctrlWords * 8)
		r.msgs[i].Hdr.Flags = 0
		r.msgs[i].Len = 0
	}
	r.want, r.got, r.err = len(bufs), 0, nil
}

// recv runs inside RawConn.Read; returning false parks the goroutine until
// the socket is readable.
func (r *afpacketReader) recv(fd uintptr) bool {
	for tries := 1; ; tries++ {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(r.want), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			r.got = int(n)
			return true
		case unix.EINTR:
		case unix.EINVAL:
			// The kernel could not describe a frame in a virtio header
			// (a GSO type such as tunnel GSO) and dropped it. Give up
			// after a batch's worth in a row, in case it means more.
			r.count.errors++
			if tries >= afpacketBatch {
				r.err = errno
				return true
			}
		case unix.EAGAIN, unix.ENETDOWN:
			// ENETDOWN is reported once when the interface goes down;
			// the socket resumes by itself when it comes back up.
			return false
		default:
			r.err = errno
			return true
		}
	}
}

// frameVerdict classifies what a slot received.
type frameVerdict int

const (
	frameOK        frameVerdict = iota
	frameDropped                // truncated or too large: RxDropped
	frameMalformed              // shorter than Ethernet: RxErrors
)

// slotFrame describes slot i after recvmmsg: its frame size, virtio header
// and the VLAN tag the kernel stripped, if any.
func (r *afpacketReader) slotFrame(i int) (size int, h vnetHdr, tpid, tci uint16, tagged bool, v frameVerdict) {
	m := &r.msgs[i]
	s := &r.slots[i]
	size = int(m.Len) - vnetHdrLen
	switch {
	case m.Hdr.Flags&unix.MSG_TRUNC != 0:
		return 0, h, 0, 0, false, frameDropped
	case size < ethHeaderLen:
		return 0, h, 0, 0, false, frameMalformed
	}
	h = decodeVnetHdr(s.hdr[:])
	tpid, tci, tagged = r.auxVLAN(i)
	return size, h, tpid, tci, tagged, frameOK
}

// auxVLAN finds the PACKET_AUXDATA control message of slot i and returns
// the VLAN tag it reports.
func (r *afpacketReader) auxVLAN(i int) (tpid, tci uint16, ok bool) {
	ctrl := unsafe.Slice((*byte)(unsafe.Pointer(&r.slots[i].ctrl[0])), ctrlWords*8)
	ctrl = ctrl[:min(int(r.msgs[i].Hdr.Controllen), len(ctrl))]
	for len(ctrl) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if cm.Len < unix.SizeofCmsghdr || int(cm.Len) > len(ctrl) {
			return 0, 0, false
		}
		if cm.Level == unix.SOL_PACKET && cm.Type == unix.PACKET_AUXDATA &&
			int(cm.Len) >= unix.CmsgLen(int(unsafe.Sizeof(unix.TpacketAuxdata{}))) {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID == 0 {
				return 0, 0, false
			}
			tpid = etherTypeVLAN
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = aux.Vlan_tpid
			}
			return tpid, aux.Vlan_tci, true
		}
		ctrl = ctrl[min(unix.CmsgSpace(int(cm.Len)-unix.SizeofCmsghdr), len(ctrl)):]
	}
	return 0, 0, false
}

// insertVLAN puts a tag back after the MAC addresses of the frame held in
// buf[:size]; buf must have 4 spare bytes.
func insertVLAN(buf []byte, size int, tpid, tci uint16) int {
	copy(buf[etherAddrsLen+vlanTagLen:size+vlanTagLen], buf[etherAddrsLen:size])
	binary.BigEndian.PutUint16(buf[etherAddrsLen:], tpid)
	binary.BigEndian.PutUint16(buf[etherAddrsLen+2:], tci)
	return size + vlanTagLen
}

// deliver turns the slots filled by recvmmsg into output frames, mostly in
// place, and returns how many. Dropped frames leave gaps that later frames
// are moved down to fill.
func (r *afpacketReader) deliver(bufs [][]byte, sizes []int, offs []Offload) int {
	out := 0
	for i := 0; i < r.got; i++ {
		size, h, tpid, tci, tagged, v := r.slotFrame(i)
		if v == frameOK && r.whole && h.isGSO() && passThrough(bufs[i][:size], h, tagged, false) {
			r.tally(frameOK, size)
			if out != i {
				copy(bufs[out][:size], bufs[i][:size])
			}
			sizes[out], offs[out] = size, Offload{h: h, ecn: r.slots[i].hdr[1]&vnetGSOECN != 0}
			r.superFramesWhole.Add(1)
			out++
			continue
		}
		if v == frameOK && (h.isGSO() || size > MaxFrame) {
			r.stash(i, bufs)
			return out + r.drain(bufs[out:], sizes[out:])
		}
		if v == frameOK {
			size, v = r.finish(bufs[i], size, h, tpid, tci, tagged)
		}
		if !r.tally(v, size) {
			continue
		}
		if out != i {
			copy(bufs[out][:size], bufs[i][:size])
		}
		sizes[out] = size
		out++
	}
	return out
}

// finish completes a wire-size frame held in buf[:size]: its checksum,
// then its VLAN tag (the checksum offsets refer to the untagged frame).
func (r *afpacketReader) finish(buf []byte, size int, h vnetHdr, tpid, tci uint16, tagged bool) (int, frameVerdict) {
	if !h.finish(buf[:size]) {
		return 0, frameMalformed
	}
	if h.needsCsum() {
		r.checksumsFinished.Add(1)
	}
	if tagged {
		if size+vlanTagLen > MaxFrame {
			return 0, frameDropped
		}
		size = insertVLAN(buf[:cap(buf)], size, tpid, tci)
	}
	return size, frameOK
}

// tally counts one frame by its verdict and reports whether it is kept.
func (r *afpacketReader) tally(v frameVerdict, size int) bool {
	switch v {
	case frameDropped:
		r.count.dropped++
	case frameMalformed:
		r.count.errors++
	default:
		r.count.packets++
		r.count.bytes += uint64(size)
		return true
	}
	return false
}

// stash moves slots [first, got) into the backlog: the head of each frame
// is copied from the caller's buffer next to its overflow part.
func (r *afpacketReader) stash(first int, bufs [][]byte) {
	r.backlog, r.backlogPos = r.backlog[:0], 0
	for i := first; i < r.got; i++ {
		size := int(r.msgs[i].Len) - vnetHdrLen
		head := MaxFrame // the part of the frame in the caller's buffer
		if r.whole {
			head = superFrameMax
		}
		if size > 0 {
			copy(r.slots[i].big[:min(size, head)], bufs[i][:min(size, head)])
		}
		r.backlog = append(r.backlog, i)
	}
}

// drain hands out backlog frames and segments of the current super-frame.
func (r *afpacketReader) drain(bufs [][]byte, sizes []int) int {
	out := 0
	for out < len(bufs) {
		if r.seg.active() {
			sizes[out] = r.seg.emit(bufs[out])
			r.tally(frameOK, sizes[out])
			out++
			continue
		}
		if r.backlogPos == len(r.backlog) {
			break
		}
		i := r.backlog[r.backlogPos]
		r.backlogPos++
		if size, ok := r.unstash(i); ok {
			sizes[out] = copy(bufs[out][:size], r.slots[i].big)
			out++
		}
	}
	return out
}

// unstash prepares backlog slot i. A wire-size frame is finished and its
// size returned for copying out; a super-frame is given to the segmenter.
func (r *afpacketReader) unstash(i int) (int, bool) {
	size, h, tpid, tci, tagged, v := r.slotFrame(i)
	big := r.slots[i].big
	if v == frameOK && h.isGSO() {
		shift := 0
		if tagged {
			size, shift = insertVLAN(big, size, tpid, tci), vlanTagLen
		}
		if r.seg.start(big[:size], h, shift) {
			r.superFrames.Add(1)
		} else {
			r.count.dropped++
		}
		return 0, false
	}
	if v == frameOK && size > MaxFrame {
		v = frameDropped
	}
	if v == frameOK {
		size, v = r.finish(big, size, h, tpid, tci, tagged)
	}
	if v == frameOK && size > MaxFrame {
		v = frameDropped
	}
	return size, r.tally(v, size)
}
