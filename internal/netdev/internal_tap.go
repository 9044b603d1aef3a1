//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"syscall"
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
// Offloads: the device is opened with IFF_VNET_HDR but TUNSETOFFLOAD(0),
// so it advertises neither checksum offload nor TSO and the kernel hands us
// complete, wire-size frames. We still decode the virtio header and finish
// any partial checksum it announces, which keeps us correct should offloads
// ever be switched on; GSO frames, impossible with offloads off, are
// dropped and counted.

func init() { Register("internal", openTap) }

var _ Detacher = (*tapPort)(nil)

type tapPort struct {
	name  string
	file  *os.File
	conn  syscall.RawConn
	home  netnsID // the namespace the device was created in
	stats counters
	last  lastInfo

	closed atomic.Bool
	gone   atomic.Bool // the kernel device was destroyed under us
	done   chan struct{}

	rd tapReader // used only by the ReadBatch goroutine
	wr tapWriter // used only by the WriteBatch caller
}

// netnsID identifies a network namespace by its nsfs inode.
type netnsID struct{ dev, ino uint64 }

func openTap(cfg Config) (Netdev, error) {
	if err := validDeviceName(cfg.Name); err != nil {
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
	p.rd.init(&p.stats)
	p.wr.init()
	if found != nil {
		p.last.update(found.info()) // what Info reports if it is elsewhere
	}
	p.Info()
	return p, nil
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
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return p.last.stale()
	}
	return p.last.update(infoFrom(ifi))
}

// ReadBatch reads frames until the batch is full or the device has no
// more, waiting in the netpoller only when it has none at all.
func (p *tapPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
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
	r.start(bufs[:n], sizes[:n])
	defer r.finish()
	for {
		err := p.conn.Read(r.readFn)
		if p.closed.Load() {
			return 0, ErrClosed
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
	_, err := p.write(frames)
	return err
}

// Transmit is WriteBatch reporting what became of the batch.
func (p *tapPort) Transmit(b *Batch) (TxResult, error) { return p.write(b.Frames) }

func (p *tapPort) write(frames [][]byte) (TxResult, error) {
	if p.closed.Load() {
		return TxResult{Dropped: len(frames)}, ErrClosed
	}
	w := &p.wr
	w.frames = frames
	err := p.conn.Write(w.writeFn)
	p.stats.addTx(w.count)
	res := w.count.result()
	w.frames, w.count = nil, batchCount{}
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
	stats  *counters
	hdr    [vnetHdrLen]byte
	iov    [2]unix.Iovec
	readFn func(fd uintptr) bool

	bufs  [][]byte
	sizes []int
	got   int
	err   error
	count batchCount
}

func (r *tapReader) init(stats *counters) {
	r.stats = stats
	r.iov[0].Base = &r.hdr[0]
	r.iov[0].SetLen(vnetHdrLen)
	r.readFn = r.readSome
}

func (r *tapReader) start(bufs [][]byte, sizes []int) {
	r.bufs, r.sizes, r.got, r.err = bufs, sizes, 0, nil
}

func (r *tapReader) finish() {
	r.stats.addRx(r.count)
	r.count = batchCount{}
	r.bufs, r.sizes = nil, nil
	r.iov[1] = unix.Iovec{}
}

// readSome runs inside RawConn.Read: returning false parks the goroutine
// until the fd is readable again.
func (r *tapReader) readSome(fd uintptr) bool {
	for r.got < len(r.bufs) {
		buf := r.bufs[r.got][:MaxFrame]
		r.iov[1].Base = &buf[0]
		r.iov[1].SetLen(len(buf))
		n, _, errno := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&r.iov[0])), uintptr(len(r.iov)))
		switch errno {
		case 0:
			r.accept(buf, int(n))
		case unix.EINTR:
		case unix.EAGAIN:
			return r.got > 0
		default:
			r.err = errno // EBADFD: the device was destroyed
			return true
		}
	}
	return true
}

// accept checks one frame just read into buf and keeps it in the batch.
func (r *tapReader) accept(buf []byte, n int) {
	frameLen := n - vnetHdrLen
	switch h := decodeVnetHdr(r.hdr[:]); {
	case frameLen < ethHeaderLen:
		r.count.errors++
	case frameLen > len(buf) || h.isGSO():
		r.count.dropped++
	case !h.finish(buf[:frameLen]):
		r.count.errors++
	default:
		r.sizes[r.got] = frameLen
		r.got++
		r.count.packets++
		r.count.bytes += uint64(frameLen)
	}
}

// tapWriter is the transmit state, with its callback bound once.
type tapWriter struct {
	hdr     [vnetHdrLen]byte // always zero: nothing offloaded
	iov     [2]unix.Iovec
	writeFn func(fd uintptr) bool
	frames  [][]byte
	count   batchCount
}

func (w *tapWriter) init() {
	w.iov[0].Base = &w.hdr[0]
	w.iov[0].SetLen(vnetHdrLen)
	w.writeFn = w.writeAll
}

func (w *tapWriter) writeAll(fd uintptr) bool {
	for _, f := range w.frames {
		if len(f) == 0 {
			w.count.errors++
			continue
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
