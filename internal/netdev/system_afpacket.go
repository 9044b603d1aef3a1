//go:build linux

package netdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The "system" port type attaches an existing Linux interface (a veth end,
// a NIC, a VM's TAP) through an AF_PACKET socket bound to its ifindex:
// promiscuous, blind to its own transmissions (PACKET_IGNORE_OUTGOING),
// and batched. Sends go through a PACKET_TX_RING on a second socket
// (afpacket_txring.go), or sendmmsg for frames too large for its slots.
//
// Receive goes through a PACKET_RX_RING (TPACKET_V2, afpacket_ring.go):
// the kernel copies each frame into the ring in the sender's softirq,
// so a batch of waiting frames costs us no system call, only a copy
// into the caller's buffer. Frames too large for a ring slot (GSO
// super-frames) are queued on the socket and read with recvmmsg in
// their place (afpacket_rx.go), which is also the whole receive path
// when the kernel refuses a ring.
//
// Offloads: a veth peer (or GRO on a NIC) hands us frames whose L4
// checksum is only partial and, with TSO/GRO, super-frames of up to 64 KiB,
// possibly tunnelled in UDP (a VXLAN device behind the veth). We leave the
// interface's offload settings alone: PACKET_VNET_HDR puts a
// virtio_net_hdr in front of each frame saying what is unfinished, and we
// finish partial checksums in software and cut super-frames into
// MTU-size segments ourselves (gso.go). A caller that reads with
// ReadBatchOffload (the datapath) gets plain TCP super-frames whole
// instead, and writes them whole with Transmit, their virtio
// header passed back to the kernel, which segments them if the device
// needs it (see offload.go). The kernel also strips VLAN tags
// into metadata on receive; PACKET_AUXDATA returns the tag and we put it
// back in the frame.
//
// Limits: GSO types the kernel cannot express in a virtio header (GRE
// tunnels, for one) make it drop the frame inside recvmmsg; we count those
// as RxErrors. Super-frames beyond 64 KiB (BIG TCP) are truncated and
// counted as RxDropped.

func init() { Register("system", openAFPacket) }

// Socket buffers large enough to hold a burst of 64 KiB super-frames;
// the default 208 KiB receive buffer holds three.
const afpacketSocketBuffer = 4 << 20

type afpacketPort struct {
	name    string
	ifindex int
	file    *os.File
	conn    syscall.RawConn
	stats   counters
	kstats  kernelStats // what the kernel fast path forwarded (FastPathDev)
	last    lastInfo
	closed  atomic.Bool

	rd afpacketReader // used only by the ReadBatch goroutine
	// ringMu is held by a ring reader and by Close's unmapping, so the
	// ring is never unmapped under a reader.
	ringMu sync.Mutex
	wr     afpacketWriter // used only by the WriteBatch caller

	// The transmit socket and its ring (afpacket_txring.go); nil when
	// the kernel refused them: the port sends with sendmmsg alone.
	// txMu is held by a ring writer and by Close's unmapping.
	txFile *os.File
	txConn syscall.RawConn
	txMu   sync.Mutex

	// The busy-poll group the reader takes part in (BusyPoller), or
	// nil; set before the first ReadBatch.
	poll   *PollGroup
	member *pollMember
}

func openAFPacket(cfg Config) (Netdev, error) {
	if validDeviceName(cfg.Name) != nil {
		return nil, openFailed(cfg.Name, unix.ENODEV)
	}
	if err := checkMTU(cfg.MTU); err != nil {
		return nil, openFailed(cfg.Name, err)
	}
	ifi, err := lookupLink(cfg.Name)
	if err != nil || ifi == nil {
		return nil, openFailed(cfg.Name, unix.ENODEV)
	}
	// Frames from a device without Ethernet addresses (WireGuard, an L3
	// TUN) carry no Ethernet header; a switch cannot forward them as is.
	if len(ifi.mac) != 6 {
		return nil, openFailed(cfg.Name, errors.New("not an Ethernet device"))
	}
	// Protocol 0 receives nothing until bind, so no frame from another
	// interface slips in while the socket is being set up.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, openFailed(cfg.Name, err)
	}
	ring, err := setupPacketSocket(fd, ifi.index, ringSlotSize(max(ifi.mtu, cfg.MTU)))
	if err != nil {
		unix.Close(fd)
		return nil, openFailed(cfg.Name, err)
	}
	if cfg.MTU > 0 {
		if err := setMTU(cfg.Name, cfg.MTU); err != nil {
			ring.unmap()
			unix.Close(fd)
			return nil, openFailed(cfg.Name, err)
		}
	}
	file := os.NewFile(uintptr(fd), "afpacket:"+cfg.Name)
	conn, err := file.SyscallConn()
	if err != nil {
		ring.unmap()
		file.Close()
		return nil, openFailed(cfg.Name, err)
	}
	p := &afpacketPort{name: cfg.Name, ifindex: ifi.index, file: file, conn: conn}
	p.rd.init(&p.stats)
	p.rd.ring = ring
	p.wr.init(conn)
	p.openTx(ringSlotSize(max(ifi.mtu, cfg.MTU)), ifi.mtu)
	p.last.update(ifi.info())
	return p, nil
}

// openTx gives the port its transmit ring, or leaves it sending with
// sendmmsg alone if the kernel refuses one.
func (p *afpacketPort) openTx(slotSize, mtu int) {
	fd, ring, err := openTxRing(p.ifindex, slotSize)
	if err == nil {
		p.txFile = os.NewFile(uintptr(fd), "afpacket-tx:"+p.name)
		p.txConn, err = p.txFile.SyscallConn()
		if err != nil {
			ring.unmap()
			p.txFile.Close()
			p.txFile = nil
		}
	}
	if err != nil {
		txRingSetupFailed.Inc()
		netdevLog.Warn("port %s: no transmit ring, sending with sendmmsg: %v", p.name, err)
		return
	}
	ring.maxPlain = mtu + ethHeaderLen + vlanTagLen
	p.wr.ring = ring
}

// setupPacketSocket sets the options that must be in place before the
// first frame arrives, maps the receive ring, then binds to the
// interface. Without a ring (the kernel refused one) the port reads
// with recvmmsg alone.
func setupPacketSocket(fd, ifindex, slotSize int) (*packetRing, error) {
	for _, opt := range []struct {
		name       string
		level, opt int
	}{
		{"PACKET_VNET_HDR", unix.SOL_PACKET, unix.PACKET_VNET_HDR},
		{"PACKET_AUXDATA", unix.SOL_PACKET, unix.PACKET_AUXDATA},
		{"PACKET_IGNORE_OUTGOING", unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING},
	} {
		if err := unix.SetsockoptInt(fd, opt.level, opt.opt, 1); err != nil {
			return nil, fmt.Errorf("%s: %w", opt.name, err)
		}
	}
	ring, err := setupRing(fd, slotSize)
	if err != nil {
		ringSetupFailed.Inc()
		netdevLog.Warn("ifindex %d: no receive ring, reading with recvmmsg: %v", ifindex, err)
		ring = nil
	}
	// Larger buffers are an optimisation: keep the defaults if refused.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, afpacketSocketBuffer)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, afpacketSocketBuffer)
	mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		ring.unmap()
		return nil, fmt.Errorf("promiscuous mode: %w", err)
	}
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, &sa); err != nil {
		ring.unmap()
		return nil, fmt.Errorf("bind: %w", err)
	}
	return ring, nil
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

func (p *afpacketPort) Name() string { return p.name }
func (p *afpacketPort) Type() string { return "system" }
func (p *afpacketPort) Stats() Stats { return p.kstats.add(p.stats.snapshot()) }

// Info reads the interface by the ifindex it was opened with; if it has
// gone (deleted, or moved to another namespace) it returns the last state
// seen, marked Stale.
func (p *afpacketPort) Info() Info {
	if p.closed.Load() {
		return p.last.stale()
	}
	info, ok := linkInfoIndex(p.ifindex)
	if !ok {
		return p.last.stale()
	}
	return p.last.update(info)
}

// ReadBatch returns frames received by the interface, complete and
// wire-size: partial checksums finished, super-frames segmented (their
// segments may continue into the next call), VLAN tags restored.
func (p *afpacketPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	return p.readBatch(bufs, sizes, nil)
}

// ReadBatchOffload is ReadBatch with TCP super-frames passed through whole
// (see OffloadPort).
func (p *afpacketPort) ReadBatchOffload(bufs [][]byte, sizes []int, offs []Offload) (int, error) {
	bufs = bufs[:min(len(bufs), len(offs))]
	if _, err := batchSizeFor(p.name, bufs, sizes, MaxSuperFrame); err != nil {
		return 0, err
	}
	return p.readBatch(bufs, sizes, offs)
}

// readBatch reads with super-frames passed through when offs is not nil.
func (p *afpacketPort) readBatch(bufs [][]byte, sizes []int, offs []Offload) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	n, err := batchSize(p.name, bufs, sizes)
	if err != nil || n == 0 {
		return 0, err
	}
	if offs != nil {
		clear(offs[:n])
	}
	r := &p.rd
	defer r.publish()
	if r.pending() {
		return r.drain(bufs[:n], sizes[:n]), nil
	}
	if r.ring != nil {
		return p.readRing(bufs[:n], sizes[:n], offs)
	}
	for {
		r.arm(bufs[:min(n, afpacketBatch)], offs != nil)
		err := p.conn.Read(r.recvFn)
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if err != nil {
			return 0, fmt.Errorf("port %s: read: %w", p.name, err)
		}
		if r.err != nil {
			return 0, fmt.Errorf("port %s: read: %w", p.name, r.err)
		}
		if out := r.deliver(bufs[:n], sizes[:n], offs); out > 0 {
			return out, nil
		}
	}
}

// WriteBatch sends the frames with sendmmsg, each behind a zeroed virtio
// header (checksums complete, no GSO). It never waits for buffer space:
// what the kernel refuses is counted as dropped.
func (p *afpacketPort) WriteBatch(frames [][]byte) error {
	_, err := p.writeBatch(frames, nil)
	return err
}

// Transmit is WriteBatch with each frame behind the virtio header that
// b.Offs[i] describes, so that the kernel segments super-frames.
func (p *afpacketPort) Transmit(b *Batch) (TxResult, error) {
	return p.writeBatch(b.Frames, b.Meta[:len(b.Frames)])
}

// TakesSuperFrames is true: the kernel segments what the device cannot.
func (p *afpacketPort) TakesSuperFrames() bool { return true }

func (p *afpacketPort) writeBatch(frames [][]byte, offs []FrameMeta) (TxResult, error) {
	if p.closed.Load() {
		return TxResult{Dropped: len(frames)}, ErrClosed
	}
	w := &p.wr
	var err error
	if w.ring != nil {
		err = p.writeRing(frames, offs)
	} else {
		w.frames, w.offs = frames, offs
		err = p.conn.Write(w.sendFn)
	}
	p.stats.addTx(w.count)
	res := w.count.result()
	if w.heldLost.packets > 0 {
		p.stats.dropHeld(w.heldLost)
		res.HeldDropped = int(w.heldLost.packets)
	}
	res.Held = w.held
	w.frames, w.offs, w.count, w.heldLost, w.held = nil, nil, batchCount{}, batchCount{}, 0
	if err != nil {
		if p.closed.Load() {
			return res, ErrClosed
		}
		return res, fmt.Errorf("port %s: write: %w", p.name, err)
	}
	return res, nil
}

// Close closes the socket, which also drops its promiscuous membership,
// and wakes a blocked ReadBatch.
func (p *afpacketPort) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := p.file.Close()
	if p.poll != nil {
		p.poll.leave(p.member)
	}
	p.ringMu.Lock()
	p.rd.ring.unmap()
	p.ringMu.Unlock()
	if p.txFile != nil {
		_ = p.txFile.Close()
		p.txMu.Lock()
		p.wr.ring.unmap()
		p.txMu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("port %s: close: %w", p.name, err)
	}
	return nil
}

// readRing fills bufs from the receive ring, waiting for a frame when it
// is empty. Frames the kernel queued on the socket instead (too large
// for a slot) are read in their place in the ring's order. In a poll
// group, the reader keeps its turn at spinning while it hands out
// frames, and gives it up when it fails.
func (p *afpacketPort) readRing(bufs [][]byte, sizes []int, offs []Offload) (int, error) {
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	n, err := p.readRingLocked(bufs, sizes, offs)
	if p.poll != nil {
		if err != nil {
			p.poll.release(p.member)
		} else {
			p.poll.poke(p.member)
		}
	}
	return n, err
}

func (p *afpacketPort) readRingLocked(bufs [][]byte, sizes []int, offs []Offload) (int, error) {
	r := &p.rd
	for {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		out := 0
		for out < len(bufs) && !r.pending() {
			k, atCopy := r.ringDeliver(bufs[out:], sizes[out:], offsFrom(offs, out))
			out += k
			if !atCopy {
				break
			}
			out += p.readCopied(bufs[out:], sizes[out:], offsFrom(offs, out))
		}
		if r.pending() {
			out += r.drain(bufs[out:], sizes[out:])
		}
		if r.losing {
			r.losing = false
			_ = p.conn.Control(r.statsFn)
		}
		if r.grow && !r.pending() && !r.ring.ready() {
			if err := p.growRing(); err != nil {
				return out, err
			}
		}
		if out > 0 {
			return out, nil
		}
		if p.poll != nil && p.poll.wait(p.member) {
			continue
		}
		r.woken = false
		err := p.conn.Read(r.waitFn)
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if err != nil {
			return 0, fmt.Errorf("port %s: read: %w", p.name, err)
		}
		if r.stalled {
			if err := p.replaceRing(); err != nil {
				return 0, err
			}
		}
	}
}

// JoinPollGroup makes the port's receive ring spin with g's members
// (BusyPoller). Without a ring (the kernel refused one) the port always
// sleeps in the kernel.
func (p *afpacketPort) JoinPollGroup(g *PollGroup) {
	p.poll = g
	p.member = newPollMember(func() bool { return p.closed.Load() || p.rd.ring.ready() })
}

// replaceRing gives the port a fresh receive ring after the kernel
// stopped filling the old one (ringStalled).
func (p *afpacketPort) replaceRing() error {
	r := &p.rd
	r.stalled = false
	ringReplaced.Inc()
	if err := p.remap(r.ring.size); err != nil {
		return fmt.Errorf("port %s: receive ring stalled, reading with recvmmsg: %w", p.name, err)
	}
	netdevLog.Warn("port %s: the kernel stopped filling the receive ring: replaced it", p.name)
	return nil
}

// growRing gives the port a receive ring twice as large (up to
// ringMemoryMax) after the kernel dropped frames for want of a slot.
// The reader calls it when the ring is empty; frames that arrive while
// the ring is swapped wait on the socket queue and are thrown away and
// counted as dropped (a few, once per growth).
func (p *afpacketPort) growRing() error {
	r := &p.rd
	r.grow = false
	size := min(2*r.ring.size, ringMemoryMax)
	if err := p.remap(size); err != nil {
		return fmt.Errorf("port %s: receive ring not grown, reading with recvmmsg: %w", p.name, err)
	}
	ringGrown.Inc()
	netdevLog.Info("port %s: the receive ring overflowed: grown to %d KiB (%d slots)", p.name, size>>10, r.ring.slots)
	return nil
}

// remap swaps the port's ring for a fresh one of size bytes; on error
// the port is left reading with recvmmsg.
func (p *afpacketPort) remap(size int) error {
	r := &p.rd
	var err error
	var lost int
	cerr := p.conn.Control(func(fd uintptr) {
		r.ring, lost, err = remapRing(int(fd), r.ring, r.slots[0].big, size)
	})
	r.count.dropped += uint64(lost)
	if err == nil {
		err = cerr
	}
	if err != nil {
		r.ring = nil
	}
	return err
}

func offsFrom(offs []Offload, i int) []Offload {
	if offs == nil {
		return nil
	}
	return offs[i:]
}

// readCopied reads the frames that the TP_STATUS_COPY slots at the
// ring's head announced as queued on the socket, in one recvmmsg,
// releases their slots, and delivers the frames (or the first segments
// of a super-frame) into bufs.
func (p *afpacketPort) readCopied(bufs [][]byte, sizes []int, offs []Offload) int {
	r := &p.rd
	k := max(1, r.ring.copySlots(min(len(bufs), afpacketBatch)))
	r.arm(bufs[:k], offs != nil)
	r.accounted = 1
	if err := p.conn.Control(r.recvCopyFn); err != nil {
		r.count.errors++
	}
	for range r.accounted {
		r.ring.release()
	}
	if r.got == 0 {
		return 0
	}
	return r.deliver(bufs, sizes, offs)
}

// afpacketWriter is the transmit state: one mmsghdr and two iovecs (a
// virtio header, then the frame) per frame of a sendmmsg call. The header
// is the shared zero one, or the frame's own from offs.
type afpacketWriter struct {
	conn syscall.RawConn // the receiving socket, which sends what fits no ring slot
	ring *txRing         // nil: sendmmsg only
	// During a ring write: its frames, and the transmit socket.
	ringFrames [][]byte
	ringMeta   []FrameMeta
	txFd       uintptr
	ringFn     func(fd uintptr) bool
	hold       bool // TransmitHeld: leave the ring's slots for Kick
	kickFn     func(fd uintptr) bool
	kicked     batchCount // Kick's own count, which stays empty
	heldLost   batchCount // held frames a ring write dropped
	held       int        // frames left queued in the ring after a write

	hdr    [vnetHdrLen]byte
	hdrs   [][vnetHdrLen]byte // per frame, when offs is set
	offs   []FrameMeta        // per frame, or nil
	msgs   []unix.Mmsghdr
	iovs   [][2]unix.Iovec
	sizes  []int
	sendFn func(fd uintptr) bool
	frames [][]byte
	count  batchCount
}

func (w *afpacketWriter) init(conn syscall.RawConn) {
	w.conn = conn
	w.ringFn = w.ringWrite
	w.kickFn = w.kickRing
	w.msgs = make([]unix.Mmsghdr, afpacketBatch)
	w.iovs = make([][2]unix.Iovec, afpacketBatch)
	w.sizes = make([]int, afpacketBatch)
	w.hdrs = make([][vnetHdrLen]byte, afpacketBatch)
	for i := range w.msgs {
		w.iovs[i][0].Base = &w.hdr[0]
		w.iovs[i][0].SetLen(vnetHdrLen)
		w.msgs[i].Hdr.Iov = &w.iovs[i][0]
		w.msgs[i].Hdr.SetIovlen(len(w.iovs[i]))
	}
	w.sendFn = w.sendAll
}

func (w *afpacketWriter) sendAll(fd uintptr) bool {
	for start := 0; start < len(w.frames); {
		chunk := w.frames[start:min(len(w.frames), start+afpacketBatch)]
		w.sendChunk(fd, w.stage(chunk, start))
		start += len(chunk)
	}
	for i := range w.iovs {
		w.iovs[i][1] = unix.Iovec{}
	}
	return true
}

// stage points the mmsghdrs at the chunk's frames, which start at index
// first of w.frames, and returns how many.
func (w *afpacketWriter) stage(chunk [][]byte, first int) int {
	k := 0
	for i, f := range chunk {
		if len(f) == 0 {
			w.count.errors++
			continue
		}
		w.iovs[k][0].Base = &w.hdr[0]
		if w.offs != nil && w.offs[first+i].Off.IsSuper() {
			w.offs[first+i].Off.encode(w.hdrs[k][:])
			w.iovs[k][0].Base = &w.hdrs[k][0]
		}
		w.iovs[k][1].Base = &f[0]
		w.iovs[k][1].SetLen(len(f))
		w.sizes[k] = len(f)
		k++
	}
	return k
}

// sendChunk sends staged frames [0,k). sendmmsg stops at the first frame
// it cannot send and reports that frame's error on the next call, so a
// refused frame is counted and skipped and the rest retried, unless the
// device is full, in which case the rest is dropped at once.
//
// A socket keeps an error the kernel reported while nobody read it (the
// ENETDOWN of a link that went down, or was down when the port opened):
// the next send returns it instead of sending, and clears it. The
// receive ring's reader does not clear it (it makes no socket call while
// frames wait), so a frame refused with ENETDOWN is tried once more: it
// goes out when the link is up now, and fails again when it is not.
func (w *afpacketWriter) sendChunk(fd uintptr, k int) {
	retried := -1
	for i := 0; i < k; {
		sent, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&w.msgs[i])), uintptr(k-i), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
		case errno == unix.ENETDOWN && retried != i:
			retried = i // a stale error from the socket, or the link is down
		case errno == unix.ENOBUFS || errno == unix.EAGAIN:
			// The device's queue is full: the rest of the batch would
			// be refused too, one system call each. Drop it now.
			w.count.dropped += uint64(k - i)
			return
		case errno != 0:
			w.count.add(w.sizes[i], errno)
			i++
		case sent == 0: // cannot happen for a non-empty vector; never loop on it
			w.count.dropped++
			i++
		default:
			for _, size := range w.sizes[i : i+int(sent)] {
				w.count.add(size, 0)
			}
			i += int(sent)
		}
	}
}

// NonBlocking marks the port: sendmmsg runs with MSG_DONTWAIT.
func (p *afpacketPort) NonBlocking() {}

// writeRing writes a batch through the transmit ring.
func (p *afpacketPort) writeRing(frames [][]byte, offs []FrameMeta) error {
	p.txMu.Lock()
	defer p.txMu.Unlock()
	w := &p.wr
	if w.ring.mem == nil { // closed under us
		w.count.dropped += uint64(len(frames))
		return ErrClosed
	}
	w.ringFrames, w.ringMeta = frames, offs
	err := p.txConn.Write(w.ringFn)
	w.ringFrames, w.ringMeta = nil, nil
	w.heldLost = w.ring.takeLost()
	w.held = w.ring.queued
	return err
}

func (w *afpacketWriter) ringWrite(fd uintptr) bool {
	w.txFd = fd
	if w.hold {
		w.ring.writeHeld(w, w.ringFrames, w.ringMeta, &w.count)
	} else {
		w.ring.write(w, w.ringFrames, w.ringMeta, &w.count)
	}
	return true
}

// TransmitHeld is Transmit that leaves the frames it put in transmit
// ring slots for a later send() (HeldTransmitter): Kick's, or the next
// Transmit's, which sends every marked slot. Without a ring it is
// Transmit.
func (p *afpacketPort) TransmitHeld(b *Batch) (TxResult, error) {
	p.wr.hold = true
	defer func() { p.wr.hold = false }()
	return p.Transmit(b)
}

// Kick sends the frames that TransmitHeld left in the transmit ring; a
// device that is down or gone takes none, and they are dropped and
// returned as HeldDropped (they were counted as sent when they were put).
func (p *afpacketPort) Kick() TxResult { return p.settleHeld(false) }

// DropHeld takes back the frames held in the transmit ring and counts
// them as dropped (HeldTransmitter).
func (p *afpacketPort) DropHeld() TxResult { return p.settleHeld(true) }

// settleHeld sends the ring's held frames, or drops them (drop), under
// the transmit lock, when the port is open and holds any; what is lost
// is taken out of the sent counts and returned as HeldDropped, what
// stays held (the kernel had no socket buffer) as Held.
func (p *afpacketPort) settleHeld(drop bool) TxResult {
	w := &p.wr
	if p.closed.Load() || w.ring == nil {
		return TxResult{}
	}
	p.txMu.Lock()
	defer p.txMu.Unlock()
	if w.ring.mem == nil || w.ring.queued == 0 {
		return TxResult{}
	}
	w.kicked = batchCount{} // a kick puts no frames: only lost counts
	if drop {
		w.ring.dropHeld(&w.kicked)
	} else {
		_ = p.txConn.Write(w.kickFn)
	}
	lost := w.ring.takeLost()
	p.stats.dropHeld(lost)
	return TxResult{HeldDropped: int(lost.packets), Held: w.ring.queued}
}

func (w *afpacketWriter) kickRing(fd uintptr) bool {
	w.txFd = fd
	w.ring.flushHeld(w, &w.kicked)
	return true
}

// RxReady reports whether a frame waits in the receive ring (or a
// super-frame's segments are still to be delivered), so that ReadBatch
// would return without waiting (RxReadier). It makes no system call.
func (p *afpacketPort) RxReady() bool {
	p.ringMu.Lock()
	defer p.ringMu.Unlock()
	r := &p.rd
	if p.closed.Load() || r.ring == nil {
		return false
	}
	return r.pending() || r.ring.ready()
}

// flushRing is the send() that hands the ring's marked slots to the
// kernel (txRingIO). It never blocks (MSG_DONTWAIT); it is a raw system
// call only when raw is set, for batches of small frames
// (txRing.shortFlush says why not for all).
func (w *afpacketWriter) flushRing(raw bool) unix.Errno {
	for {
		var errno syscall.Errno
		if raw {
			_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, w.txFd, 0, 0, unix.MSG_DONTWAIT, 0, 0)
		} else {
			_, _, errno = unix.Syscall6(unix.SYS_SENDTO, w.txFd, 0, 0, unix.MSG_DONTWAIT, 0, 0)
		}
		if errno != unix.EINTR {
			return errno
		}
	}
}

// sendDirect sends frames that fit no ring slot with sendmmsg on the
// receiving socket (txRingIO).
func (w *afpacketWriter) sendDirect(frames [][]byte, meta []FrameMeta) {
	w.frames, w.offs = frames, meta
	if err := w.conn.Write(w.sendFn); err != nil {
		w.count.dropped += uint64(len(frames))
	}
	w.frames, w.offs = nil, nil
}
