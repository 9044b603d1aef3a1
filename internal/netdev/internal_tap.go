//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The "internal" port type is a TAP device that gvsd creates under the
// interface's name, like an OVS internal port: the host (or, after
// `ip link set dev p1 netns ns1`, another namespace) sees a NIC whose
// other end is the switch. The device is created administratively down,
// as OVS does; the operator brings it up. The device is persistent: it
// survives a crash of gvsd, which re-attaches to it on restart, wherever
// it has been moved (tap_reattach_linux.go). Closing the port deletes it;
// detaching leaves it.
//
// Offloads: the device is opened with IFF_VNET_HDR and TUNSETOFFLOAD
// (checksum, TSO4/6, and USO4/6 where the kernel has them, since 6.2), as
// a VM's virtio NIC is, so the host's stack hands it TCP (and UDP) super-
// frames of up to 64 KiB with partial checksums, and takes them back the
// same way. The datapath reads them whole (ReadBatchOffload) and its
// Sender passes them on whole to ports that take them, cutting them only
// for the others; ReadBatch, and ReadBatchOffload for a super-frame that
// cannot be passed on (a tagged one), cut them on receive. A partial
// checksum on a frame that is not a super-frame is finished on receive.
// Switching offloads off on the device (ethtool -K) makes the kernel hand
// over complete, wire-size frames again.

func init() { Register("internal", openTap) }

var _ Detacher = (*tapPort)(nil)

type tapPort struct {
	name  string
	file  *os.File
	conn  syscall.RawConn
	home  netnsID // the namespace the device was created in
	stats counters
	last  lastInfo

	tso, uso bool // the device hands over (and we hand it) TCP, UDP super-frames

	closed atomic.Bool
	gone   atomic.Bool // the kernel device was destroyed under us
	done   chan struct{}

	rd tapReader // used only by the ReadBatch goroutine
	wr tapWriter // used only by the WriteBatch caller

	// native: the port as a native tunnelling underlay (tnl_native_linux.go).
	native *nativeDev
}

// netnsID identifies a network namespace by its nsfs inode.
type netnsID struct{ dev, ino uint64 }

func openTap(cfg Config) (Netdev, error) {
	if err := errors.Join(validDeviceName(cfg.Name), checkMTU(cfg.MTU)); err != nil {
		return nil, openFailed(cfg.Name, err)
	}
	home, err := threadNetns()
	if err != nil {
		return nil, openFailed(cfg.Name, err)
	}
	fd, found, err := openTapDevice(cfg, home)
	if err != nil {
		return nil, openFailed(cfg.Name, err)
	}
	// A non-blocking fd makes os.NewFile register it with Go's netpoller,
	// so a blocked ReadBatch parks its goroutine and Close wakes it.
	file := os.NewFile(uintptr(fd), "tap:"+cfg.Name)
	conn, err := file.SyscallConn()
	if err != nil {
		// Only a nil file fails here; still, leave nothing behind.
		if found == nil {
			unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 0)
		}
		file.Close()
		return nil, openFailed(cfg.Name, err)
	}
	p := &tapPort{name: cfg.Name, file: file, conn: conn, home: home, done: make(chan struct{})}
	p.tso, p.uso = enableTapOffloads(fd)
	p.rd.init(&p.stats, p.tso, p.uso)
	p.wr.init()
	if found != nil {
		p.last.update(found.info()) // what Info reports if it is elsewhere
	}
	p.Info()
	wake := p.wakeReader
	if p.file.SetReadDeadline(time.Time{}) != nil {
		wake = nil // no netpoller wake-up: native tunnels send through the device
	}
	p.native = registerNative(cfg.Name, wake)
	p.rd.native = p.native
	return p, nil
}

// TAP offloads (linux/if_tun.h): checksum, TSO over IPv4 and IPv6, and
// UDP segmentation (USO) over both.
const (
	tapTCPOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	tapUDPOffloads = unix.TUN_F_USO4 | unix.TUN_F_USO6
)

// tapOffloadsOff, set by tests, opens TAPs with offloads off.
var tapOffloadsOff bool

// enableTapOffloads switches on what the kernel supports: TCP offloads
// (any kernel with IFF_VNET_HDR), then UDP too (6.2 and later). If even
// TCP's fail, offloads are off and frames are complete and wire-size.
func enableTapOffloads(fd int) (tso, uso bool) {
	if !tapOffloadsOff {
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tapTCPOffloads|tapUDPOffloads) == nil {
			return true, true
		}
		if unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tapTCPOffloads) == nil {
			return true, false
		}
	}
	unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, 0)
	return false, false
}

// deviceNetns asks the TAP fd which namespace its device is in now.
func deviceNetns(fd int) (netnsID, error) {
	nsfd, err := unix.IoctlRetInt(fd, unix.TUNGETDEVNETNS)
	if err != nil {
		return netnsID{}, fmt.Errorf("TUNGETDEVNETNS: %w", err)
	}
	defer unix.Close(nsfd)
	var st unix.Stat_t
	if err := unix.Fstat(nsfd, &st); err != nil {
		return netnsID{}, err
	}
	return netnsID{dev: st.Dev, ino: st.Ino}, nil
}

// deviceName asks the TAP fd for its device's current name, which an
// operator may have changed.
func deviceName(fd int) (string, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return "", err
	}
	return ifr.Name(), nil
}

func (p *tapPort) Name() string { return p.name }
func (p *tapPort) Type() string { return "internal" }
func (p *tapPort) Stats() Stats { return p.stats.snapshot() }

// Info reads the device's state while it is in gvsd's namespace; once it
// has been moved elsewhere (or the port is closed) it returns the last
// state seen, marked Stale, since the device cannot be looked up by name
// or index from here and another device may now own both.
func (p *tapPort) Info() Info {
	var (
		ns      netnsID
		name    string
		lookErr error
	)
	err := p.conn.Control(func(fd uintptr) {
		if ns, lookErr = deviceNetns(int(fd)); lookErr == nil {
			name, lookErr = deviceName(int(fd))
		}
	})
	if err != nil || lookErr != nil || ns != p.home {
		return p.last.stale()
	}
	info, ok := linkInfo(name)
	if !ok {
		return p.last.stale()
	}
	return p.last.update(info)
}

// ReadBatch reads frames until the batch is full or the device has no
// more, waiting in the netpoller only when it has none at all. Super-
// frames are cut on receive (their segments may continue into the next
// call).
func (p *tapPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	return p.read(bufs, sizes, nil)
}

// ReadBatchOffload is ReadBatch with untagged TCP (and, with USO, UDP)
// super-frames handed over whole (see OffloadPort).
func (p *tapPort) ReadBatchOffload(bufs [][]byte, sizes []int, offs []Offload) (int, error) {
	bufs = bufs[:min(len(bufs), len(offs))]
	if _, err := batchSizeFor(p.name, bufs, sizes, MaxSuperFrame); err != nil {
		return 0, err
	}
	return p.read(bufs, sizes, offs)
}

func (p *tapPort) read(bufs [][]byte, sizes []int, offs []Offload) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if p.gone.Load() {
		<-p.done // reported once already; do not spin the caller
		return 0, ErrClosed
	}
	n, err := batchSize(p.name, bufs, sizes)
	if err != nil || n == 0 {
		return 0, err
	}
	r := &p.rd
	r.start(bufs[:n], sizes[:n], offs)
	defer r.finish()
	if r.drainSegments(); r.got > 0 {
		return r.got, nil
	}
	for {
		err := p.conn.Read(r.readFn)
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if p.woken(err) {
			continue // native tunnel frames were queued
		}
		if err != nil {
			return 0, fmt.Errorf("port %s: read: %w", p.name, err)
		}
		if r.got > 0 {
			return r.got, nil
		}
		if r.err != nil {
			p.gone.Store(true)
			return 0, fmt.Errorf("port %s: read: %w", p.name, r.err)
		}
	}
}

// WriteBatch hands each frame to the kernel with a zeroed virtio header
// (complete checksum, no GSO). A TAP write never waits: frames refused
// (device down, queue full) are counted as dropped.
func (p *tapPort) WriteBatch(frames [][]byte) error {
	_, err := p.write(frames, nil)
	return err
}

// Transmit is WriteBatch with each super-frame behind the virtio header
// its Offload describes, so that the host's stack takes it whole.
func (p *tapPort) Transmit(b *Batch) (TxResult, error) { return p.write(b.Frames, b.Meta) }

// TakesSuperFrames is true while the device has offloads on.
func (p *tapPort) TakesSuperFrames() bool { return p.tso }

func (p *tapPort) write(frames [][]byte, meta []FrameMeta) (TxResult, error) {
	if p.closed.Load() {
		return TxResult{Dropped: len(frames)}, ErrClosed
	}
	w := &p.wr
	frames, meta = p.native.intercept(frames, meta, &w.kept, &w.keptMeta)
	w.frames, w.meta = frames, meta
	err := p.conn.Write(w.writeFn)
	p.stats.addTx(w.count)
	res := w.count.result()
	w.frames, w.meta, w.count = nil, nil, batchCount{}
	if err != nil {
		if p.closed.Load() {
			return res, ErrClosed
		}
		return res, fmt.Errorf("port %s: write: %w", p.name, err)
	}
	return res, nil
}

// Close destroys the device, in whatever namespace it is: it stops being
// persistent, so the kernel removes it as its last fd closes.
func (p *tapPort) Close() error { return p.release(true) }

// Detach closes the port but leaves the device, persistent, for the next
// gvsd to re-attach to (see Detacher).
func (p *tapPort) Detach() error { return p.release(false) }

func (p *tapPort) release(destroy bool) error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.done)
	unregisterNative(p.native)
	var unpersistErr error
	if destroy {
		p.conn.Control(func(fd uintptr) {
			unpersistErr = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, 0)
		})
		if errors.Is(unpersistErr, unix.EBADFD) {
			unpersistErr = nil // the device is gone already
		}
	}
	if err := p.file.Close(); err != nil {
		return fmt.Errorf("port %s: close: %w", p.name, err)
	}
	if unpersistErr != nil {
		return fmt.Errorf("port %s: close: device left in place: %w", p.name, unpersistErr)
	}
	return nil
}

// tapReader is the receive state. Its callback is bound once so that a
// ReadBatch call allocates nothing.
type tapReader struct {
	stats    *counters
	native   *nativeDev // native tunnel frames queued for this reader
	tso, uso bool
	hdr      [vnetHdrLen]byte
	iov      [3]unix.Iovec
	readFn   func(fd uintptr) bool

	// big (offloads on) takes what of a super-frame does not fit the
	// caller's buffer, and holds a super-frame being cut on receive,
	// which seg does across calls.
	big []byte
	seg segmenter

	bufs  [][]byte
	sizes []int
	offs  []Offload // nil: every frame complete
	got   int
	err   error
	count batchCount
}

func (r *tapReader) init(stats *counters, tso, uso bool) {
	r.stats, r.tso, r.uso = stats, tso, uso
	r.iov[0].Base = &r.hdr[0]
	r.iov[0].SetLen(vnetHdrLen)
	if tso {
		r.big = make([]byte, MaxSuperFrame)
	}
	r.readFn = r.readSome
}

func (r *tapReader) start(bufs [][]byte, sizes []int, offs []Offload) {
	r.bufs, r.sizes, r.offs, r.got, r.err = bufs, sizes, offs, 0, nil
}

func (r *tapReader) finish() {
	r.stats.addRx(r.count)
	r.count = batchCount{}
	r.bufs, r.sizes, r.offs = nil, nil, nil
	r.iov[1], r.iov[2] = unix.Iovec{}, unix.Iovec{}
}

// readSome runs inside RawConn.Read: returning false parks the goroutine
// until the fd is readable again.
func (r *tapReader) readSome(fd uintptr) bool {
	r.takeInjected()
	for r.got < len(r.bufs) {
		if r.seg.active() {
			r.drainSegments()
			continue
		}
		buf := r.bufs[r.got]
		buf = buf[:min(cap(buf), MaxSuperFrame)]
		r.iov[1].Base = &buf[0]
		r.iov[1].SetLen(len(buf))
		iovs := 2
		if r.big != nil && len(buf) < MaxSuperFrame {
			r.iov[2].Base = &r.big[0]
			r.iov[2].SetLen(MaxSuperFrame - len(buf))
			iovs = 3
		}
		n, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&r.iov[0])), uintptr(iovs))
		switch errno {
		case 0:
			r.accept(buf, int(n)-vnetHdrLen)
		case unix.EINTR:
		case unix.EAGAIN:
			return r.got > 0 || !r.park()
		default:
			r.err = errno // EBADFD: the device was destroyed
			return true
		}
	}
	return true
}

// accept checks one frame of frameLen bytes just read into buf (and, past
// its end, into big) and keeps it in the batch: whole, with its offload,
// if the caller takes super-frames and this one can be passed on; cut
// into segments if it is a super-frame that cannot; finished if its
// checksum is partial.
func (r *tapReader) accept(buf []byte, frameLen int) {
	h := decodeVnetHdr(r.hdr[:])
	switch {
	case frameLen < ethHeaderLen:
		r.count.errors++
	case !h.isGSO() && frameLen > len(buf):
		r.count.dropped++
	case !h.isGSO():
		if !h.finish(buf[:frameLen]) {
			r.count.errors++
			return
		}
		r.keep(frameLen, Offload{})
	case r.big == nil:
		r.count.dropped++ // offloads off: the kernel sends none
	case r.offs != nil && frameLen <= len(buf) && passThrough(buf[:frameLen], h, false, r.uso):
		r.keep(frameLen, Offload{h: h, ecn: r.hdr[1]&vnetGSOECN != 0})
	default:
		r.cut(buf, frameLen, h)
	}
}

// cut starts cutting the super-frame on receive, from big: a frame that
// spilled over from buf into big is joined there first.
func (r *tapReader) cut(buf []byte, frameLen int, h vnetHdr) {
	if frameLen > len(buf) {
		copy(r.big[len(buf):frameLen], r.big[:frameLen-len(buf)])
		copy(r.big, buf)
	} else {
		copy(r.big, buf[:frameLen])
	}
	if !r.seg.start(r.big[:frameLen], h, 0) {
		r.count.dropped++
		return
	}
	r.drainSegments()
}

// drainSegments puts the segments of the super-frame being cut into the
// batch, as many as fit.
func (r *tapReader) drainSegments() {
	for r.seg.active() && r.got < len(r.bufs) {
		r.keep(r.seg.emit(r.bufs[r.got][:MaxFrame]), Offload{})
	}
}

func (r *tapReader) keep(size int, off Offload) {
	r.sizes[r.got] = size
	if r.offs != nil {
		r.offs[r.got] = off
	}
	r.got++
	r.count.packets++
	r.count.bytes += uint64(size)
}

// tapWriter is the transmit state, with its callback bound once.
type tapWriter struct {
	hdr     [vnetHdrLen]byte // always zero: nothing offloaded
	gsoHdr  [vnetHdrLen]byte // a super-frame's
	iov     [2]unix.Iovec
	writeFn func(fd uintptr) bool
	frames  [][]byte
	meta    []FrameMeta // per frame, or nil
	count   batchCount
	// The frames left for the kernel once native tunnelling took its own.
	kept     [][]byte
	keptMeta []FrameMeta
}

func (w *tapWriter) init() {
	w.iov[0].SetLen(vnetHdrLen)
	w.writeFn = w.writeAll
}

func (w *tapWriter) writeAll(fd uintptr) bool {
	for i, f := range w.frames {
		if len(f) == 0 {
			w.count.errors++
			continue
		}
		w.iov[0].Base = &w.hdr[0]
		if i < len(w.meta) && w.meta[i].Off.IsSuper() {
			w.meta[i].Off.encode(w.gsoHdr[:])
			w.iov[0].Base = &w.gsoHdr[0]
		}
		w.iov[1].Base = &f[0]
		w.iov[1].SetLen(len(f))
		errno := unix.EINTR
		for errno == unix.EINTR {
			_, _, errno = unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&w.iov[0])), uintptr(len(w.iov)))
		}
		w.count.add(len(f), errno)
	}
	w.iov[1] = unix.Iovec{}
	return true
}

// NonBlocking marks the port: the TAP is written without waiting.
func (p *tapPort) NonBlocking() {}
