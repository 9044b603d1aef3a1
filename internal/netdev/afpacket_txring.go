//go:build linux

package netdev

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Transmit ring of the system port: PACKET_TX_RING with TPACKET_V2, on a
// second packet socket bound to the same interface (protocol 0: it
// receives nothing). A socket with a transmit ring sends only from the
// ring, so frames too large for a slot go out through the receiving
// socket's sendmmsg instead, in their place in the batch: the ring is
// flushed before them.
//
// A batch is copied into consecutive slots, each frame behind its virtio
// header, and one send() with no data hands them all to the kernel. The
// header's hdr_len is the whole frame, so the kernel copies each frame
// into the packet's linear part rather than pointing the packet at the
// ring's pages: a veth hands our packet to its peer and releases the
// slot at once, and the peer's sockets could still be reading the pages
// when we write the slot again.

const (
	// txRingMemory bounds the transmit ring per port: 512 slots of 2 KiB
	// at MTU 1500, pinned kernel memory.
	txRingMemory = 1 << 20
	// txSlotData is where the kernel reads a slot's data: behind the
	// tpacket2_hdr, aligned (TPACKET_ALIGN), without PACKET_TX_HAS_OFF.
	txSlotData = 32
	// txRingWaitRounds bounds how often a writer facing a full ring
	// yields for the kernel to free a slot before it drops the rest of
	// its batch: a device's transmit completions, not ours, free slots.
	txRingWaitRounds = 64
	// rawSendFrameMax is the largest frame a flush may carry and still
	// be a raw system call (txRing.shortFlush): a send()'s kernel work is
	// the receiver's input of each frame, run in the send's softirq, and
	// for frames this small (64-byte UDP, ARP, ICMP) it is short.
	rawSendFrameMax = 256
)

// txRing is the mapped transmit ring and the slot to fill next. Only the
// transmitting goroutine uses it.
type txRing struct {
	mem      []byte
	slotSize int
	slots    int
	head     int
	queued   int // slots filled since the last flush, ending at head
	// prior is how many of the queued slots (the oldest) earlier calls
	// left held (TransmitHeld), whose frames they reported as sent; lost
	// counts those of them a flush then dropped, for the port to take
	// back out of its sent count (takeLost).
	prior int
	lost  batchCount
	// queuedMax is the largest frame among the queued ones (a
	// super-frame or a TCP segment counts as larger than any), for
	// shortFlush.
	queuedMax int
	// maxPlain is the largest frame that is not a super-frame the ring
	// takes (the device's MTU and an Ethernet header with one VLAN tag;
	// 0: no limit). The ring path skips the kernel's MTU check, so a
	// larger frame goes through sendmmsg, whose refusal is counted.
	maxPlain int
}

// newTxRing makes a ring over mem (the mapping, or a test's memory).
func newTxRing(mem []byte, slotSize int) (*txRing, error) {
	if slotSize < ringSlotMin || slotSize > ringSlotMax || slotSize&(slotSize-1) != 0 || len(mem) < slotSize || len(mem)%slotSize != 0 {
		return nil, fmt.Errorf("transmit ring: slot size %d and memory %d: want a power of two from %d to %d dividing the memory", slotSize, len(mem), ringSlotMin, ringSlotMax)
	}
	return &txRing{mem: mem, slotSize: slotSize, slots: len(mem) / slotSize}, nil
}

func (t *txRing) statusAt(i int) *uint32 {
	return (*uint32)(unsafe.Pointer(&t.mem[i*t.slotSize]))
}

// free reports whether the head slot is the writer's to fill.
func (t *txRing) free() bool {
	return atomic.LoadUint32(t.statusAt(t.head)) == unix.TP_STATUS_AVAILABLE
}

// fits reports whether a frame of n bytes fits a slot behind its header
// (and its length fits the header's 16-bit hdr_len).
func (t *txRing) fits(n int) bool {
	return n <= t.slotSize-txSlotData-vnetHdrLen && n <= 0xffff
}

// put copies frame into the head slot behind the virtio header that off
// describes and marks it for sending. The caller checked free and fits.
func (t *txRing) put(frame []byte, off Offload) {
	base := t.head * t.slotSize
	vh := t.mem[base+txSlotData : base+txSlotData+vnetHdrLen]
	if off.IsSuper() {
		off.encode(vh)
	} else {
		clear(vh)
	}
	// hdr_len: the linear part the kernel copies the frame into (see
	// the comment at the top).
	binary.NativeEndian.PutUint16(vh[2:], uint16(len(frame)))
	copy(t.mem[base+txSlotData+vnetHdrLen:base+t.slotSize], frame)
	h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&t.mem[base]))
	h.Len = uint32(vnetHdrLen + len(frame))
	atomic.StoreUint32(&h.Status, unix.TP_STATUS_SEND_REQUEST)
	if t.head++; t.head == t.slots {
		t.head = 0
	}
	t.queued++
	n := len(frame)
	if off.IsSuper() || carriesTCP(frame) {
		n = MaxSuperFrame
	}
	t.queuedMax = max(t.queuedMax, n)
}

// carriesTCP reports whether frame is a TCP segment over IPv4 or IPv6
// (no extension headers walked). Even a bare ACK's input at the
// receiver may send the data it clocks out, inside the same softirq:
// its kernel work is not short.
func carriesTCP(frame []byte) bool {
	off, etherType, ok := l3Offset(frame)
	if !ok {
		return false
	}
	switch etherType {
	case etherTypeIPv4:
		return off+ipv4HeaderLen <= len(frame) && frame[off+9] == ipProtoTCP
	case etherTypeIPv6:
		return off+ipv6HeaderLen <= len(frame) && frame[off+6] == ipProtoTCP
	}
	return false
}

// shortFlush reports whether every queued frame is small and none is
// TCP, so that the send() flushing them may be a raw system call. A raw
// call spares the runtime's entersyscall (which wakes Go's sysmon
// thread, 10 % of gvsd's CPU under 64-byte UDP) but keeps the thread's
// P for the whole call: with MTU-size frames, or ACKs that clock out
// more data, the send's softirq runs the receiver's TCP for tens of
// microseconds, and the other direction's thread, woken meanwhile,
// waited for that P (TCP -8 % with every send raw, docs/PERFORMANCE.md).
func (t *txRing) shortFlush() bool {
	return t.queuedMax <= rawSendFrameMax
}

// drop takes back the n newest queued frames, which the kernel did not
// take (the device is down or gone, or its socket buffer stayed full),
// and counts them as dropped: those this call put in count, whose sent
// count they leave, and those earlier calls left held in t.lost.
func (t *txRing) drop(n int, count *batchCount) {
	mine := t.queued - t.prior
	for i := range n {
		if t.head--; t.head < 0 {
			t.head = t.slots - 1
		}
		h := (*unix.Tpacket2Hdr)(unsafe.Pointer(&t.mem[t.head*t.slotSize]))
		size := uint64(int(h.Len) - vnetHdrLen)
		atomic.StoreUint32(&h.Status, unix.TP_STATUS_AVAILABLE)
		if i < mine {
			count.packets--
			count.bytes -= size
			count.dropped++
		} else {
			t.lost.packets++
			t.lost.bytes += size
		}
	}
	t.queued -= n
	t.prior = min(t.prior, t.queued)
	if t.queued == 0 {
		t.queuedMax = 0
	}
}

// untaken is how many of the queued slots, the newest, a flush left
// marked: the kernel takes them in order and stops at the first it has
// no socket buffer for.
func (t *txRing) untaken() int {
	n, i := 0, t.head
	for n < t.queued {
		if i--; i < 0 {
			i = t.slots - 1
		}
		if atomic.LoadUint32(t.statusAt(i)) != unix.TP_STATUS_SEND_REQUEST {
			break
		}
		n++
	}
	return n
}

// takeLost returns, and forgets, the held frames that flushes dropped
// since the last call: earlier calls reported them as sent.
func (t *txRing) takeLost() batchCount {
	l := t.lost
	t.lost = batchCount{}
	return l
}

// txRingIO is what the ring writer needs from the port: the send() that
// flushes the ring (a raw system call when raw is set), and sendmmsg for
// the frames that fit no slot.
type txRingIO interface {
	flushRing(raw bool) unix.Errno
	sendDirect(frames [][]byte, meta []FrameMeta)
}

// write writes frames (with meta, or nil for plain frames) through
// t, the ones too large for a slot through io.sendDirect in their place,
// and counts what became of them in count.
func (t *txRing) write(io txRingIO, frames [][]byte, meta []FrameMeta, count *batchCount) {
	t.writeHeld(io, frames, meta, count)
	t.flush(io, count)
}

// writeHeld is write without the final send(): the frames put in slots
// stay marked until the next flush, this writer's or another's.
func (t *txRing) writeHeld(io txRingIO, frames [][]byte, meta []FrameMeta, count *batchCount) {
	t.prior = t.queued
	for i := 0; i < len(frames); {
		f := frames[i]
		if len(f) < ethHeaderLen {
			count.errors++
			i++
			continue
		}
		if t.direct(frames, meta, i) {
			t.flush(io, count)
			j := i + 1
			for j < len(frames) && t.direct(frames, meta, j) {
				j++
			}
			io.sendDirect(frames[i:j], metaRange(meta, i, j))
			i = j
			continue
		}
		if !t.free() && !t.waitFree(io, count) {
			count.dropped += uint64(len(frames) - i)
			break
		}
		var off Offload
		if meta != nil {
			off = meta[i].Off
		}
		t.put(f, off)
		count.add(len(f), 0)
		i++
	}
}

// direct reports whether frame i goes through sendmmsg: too large for a
// slot, or larger than the device's MTU without being a super-frame.
func (t *txRing) direct(frames [][]byte, meta []FrameMeta, i int) bool {
	n := len(frames[i])
	if !t.fits(n) {
		return true
	}
	super := meta != nil && meta[i].Off.IsSuper()
	return t.maxPlain > 0 && n > t.maxPlain && !super
}

func metaRange(meta []FrameMeta, i, j int) []FrameMeta {
	if meta == nil {
		return nil
	}
	return meta[i:j]
}

// flush hands the queued slots to the kernel. Frames it could not take
// for want of socket buffer stay marked and queued, for the next flush
// (a Kick: the port reports them held, so that its caller sends them
// later); if the device is down or gone it took none, and they are
// dropped.
func (t *txRing) flush(io txRingIO, count *batchCount) {
	if t.queued == 0 {
		return
	}
	switch io.flushRing(t.shortFlush()) {
	case unix.ENETDOWN, unix.ENXIO, unix.ENODEV:
		t.drop(t.queued, count)
		return
	}
	left := t.untaken()
	t.prior = max(0, t.prior-(t.queued-left)) // the oldest went first
	t.queued = left
	if t.queued == 0 {
		t.queuedMax = 0
	}
}

// flushHeld is flush for Kick, which puts no frames of its own: every
// frame queued was left held by an earlier call.
func (t *txRing) flushHeld(io txRingIO, count *batchCount) {
	t.prior = t.queued
	t.flush(io, count)
}

// dropHeld takes back every queued frame, which earlier calls left held,
// and counts them in t.lost.
func (t *txRing) dropHeld(count *batchCount) {
	t.prior = t.queued
	t.drop(t.queued, count)
}

// waitFree flushes and yields until the head slot is free, a bounded
// number of times; false means the ring stayed full.
func (t *txRing) waitFree(io txRingIO, count *batchCount) bool {
	t.flush(io, count)
	for range txRingWaitRounds {
		if t.free() {
			return true
		}
		runtime.Gosched()
		if t.free() {
			return true
		}
		t.flush(io, count) // slots the kernel had no buffer for
	}
	return t.free()
}

// openTxRing opens the port's transmit socket on ifindex with a ring of
// slotSize slots. The socket binds with protocol 0, so it receives
// nothing. It is left in blocking mode, which keeps it out of Go's
// netpoller (every send passes MSG_DONTWAIT, and nothing ever waits for
// it): otherwise each packet's release of its slot, which makes the
// socket writable, would wake the netpoller for nothing.
func openTxRing(ifindex, slotSize int) (fd int, ring *txRing, err error) {
	fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	ring, err = setupTxRing(fd, ifindex, slotSize)
	if err != nil {
		unix.Close(fd)
		return -1, nil, err
	}
	return fd, ring, nil
}

// setupTxRing sets the options that must precede the ring, maps it and
// binds fd to the interface.
func setupTxRing(fd, ifindex, slotSize int) (*txRing, error) {
	if slotSize < ringSlotMin || slotSize > ringSlotMax || ringBlock%slotSize != 0 {
		return nil, fmt.Errorf("transmit ring slot size %d: must be a power of two from %d to %d", slotSize, ringSlotMin, ringSlotMax)
	}
	for _, opt := range []struct {
		name     string
		opt, val int
	}{
		{"PACKET_VNET_HDR", unix.PACKET_VNET_HDR, 1},
		{"PACKET_VERSION", unix.PACKET_VERSION, unix.TPACKET_V2},
		// A slot the kernel cannot parse is skipped rather than
		// stopping the ring; frames are checked before they are queued.
		{"PACKET_LOSS", unix.PACKET_LOSS, 1},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, opt.opt, opt.val); err != nil {
			return nil, fmt.Errorf("%s: %w", opt.name, err)
		}
	}
	req := unix.TpacketReq{
		Block_size: ringBlock,
		Block_nr:   txRingMemory / ringBlock,
		Frame_size: uint32(slotSize),
		Frame_nr:   uint32(txRingMemory / slotSize),
	}
	if err := unix.SetsockoptTpacketReq(fd, unix.SOL_PACKET, unix.PACKET_TX_RING, &req); err != nil {
		return nil, fmt.Errorf("PACKET_TX_RING: %w", err)
	}
	mem, err := unix.Mmap(fd, 0, txRingMemory, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap of the transmit ring: %w", err)
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, afpacketSocketBuffer)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
		_ = unix.Munmap(mem)
		return nil, fmt.Errorf("bind: %w", err)
	}
	return newTxRing(mem, slotSize)
}

func (t *txRing) unmap() {
	if t != nil && t.mem != nil {
		_ = unix.Munmap(t.mem)
		t.mem = nil
	}
}
