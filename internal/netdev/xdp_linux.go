//go:build linux

package netdev

import (
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// AF_XDP receive for system ports, opt-in with options:gvs-xdp=true.
//
// An XDP program on the interface redirects every frame to an XDP socket
// (XSK) bound to the interface's queue 0, through an XSKMAP indexed by
// the frame's receive queue. The kernel copies each frame into a fixed
// area of gvsd's memory (the UMEM) and announces it on the socket's
// receive ring; the port copies it into the caller's buffer and hands
// the UMEM frame back on the fill ring. No socket buffer is allocated for
// a received frame, and the packet socket's receive path (tpacket_rcv)
// is skipped. Transmit stays on the packet socket's ring.
//
// Native (driver) mode is tried first (veth has it); if the driver
// refuses, generic (SKB) mode, with the reason in the port's
// Interface.error. If neither attaches, the port receives through its
// packet ring as without the option, and Interface.error says why.
//
// The program is attached through a BPF link owned by the port: closing
// the port, or gvsd's exit in any way, detaches it.
//
// Limits (why it is opt-in): one receive queue (a device with more is
// refused: frames of other queues would pass to the kernel, unread);
// frames up to xskFrameSize bytes (the MTU is checked at open; with an
// XDP program attached, veth itself refuses larger MTUs and turns off
// its peer's GSO); no virtio header, so a peer that sends partial
// checksums or offloaded VLAN tags hands them over unfinished: use it
// with the peer's transmit checksum and VLAN offloads off.

const (
	xdpOption = "gvs-xdp"
	// UMEM: xskFrames frames of xskFrameSize bytes, all of them for
	// receive (4 MiB, fixed per port).
	xskFrameSize = 2048
	xskFrames    = 2048
	// Ring sizes (powers of two). The fill ring holds every frame, so
	// returning a frame never finds it full.
	xskRingSize = xskFrames
	// Transmit (experimental, not used by ports: see
	// docs/PERFORMANCE.md): frames after the receive ones, in a UMEM of
	// their own size.
	xskTxFrames = 256
	// Offset of rx_queue_index in struct xdp_md.
	xdpMdRxQueueIndex = 16
	xdpPass           = 2
)

// xskRing is one of the socket's four rings, mapped from the kernel:
// producer and consumer indices and an array of descriptors (struct
// xdp_desc for rx and tx, a UMEM address for fill and completion).
type xskRing struct {
	mem      []byte
	producer *uint32
	consumer *uint32
	descs    unsafe.Pointer
	mask     uint32
}

func (r *xskRing) unmap() {
	if r.mem != nil {
		_ = unix.Munmap(r.mem)
		r.mem = nil
	}
}

func (r *xskRing) rxDesc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

func (r *xskRing) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

// xskSocket is a port's XDP socket, its UMEM and its XDP program.
type xskSocket struct {
	file *os.File
	conn syscall.RawConn
	umem []byte
	fill xskRing
	rx   xskRing
	// With transmit: the rings, and the UMEM frames free for it.
	tx, comp xskRing
	txFree   []uint64
	txFd     uintptr
	// mode is "native" or "generic"; fault says why native failed.
	mode  string
	fault string

	xsks *ebpf.Map
	prog *ebpf.Program
	lnk  link.Link

	// waitFn is conn.Read's callback: done when the receive ring has a
	// frame (made once, so waiting allocates nothing).
	waitFn func(fd uintptr) bool
}

// wantXDP reads options:gvs-xdp: "true" or "rx" receives through XDP,
// "tx" transmits through an XDP socket (the experiment), "both" does
// both.
func wantXDP(opts map[string]string) (rx, tx bool, err error) {
	switch opts[xdpOption] {
	case "", "false":
		return false, false, nil
	case "true", "rx":
		return true, false, nil
	case "tx":
		return false, true, nil
	case "both":
		return true, true, nil
	}
	return false, false, fmt.Errorf("options:%s=%q: must be true, rx, tx, both or false", xdpOption, opts[xdpOption])
}

// openXSK sets up the socket and attaches the program to ifindex.
func openXSK(name string, ifindex, mtu int, withTx bool) (*xskSocket, error) {
	if mtu+ethHeaderLen+vlanTagLen > xskFrameSize {
		return nil, fmt.Errorf("MTU %d too large for XDP frames of %d bytes", mtu, xskFrameSize)
	}
	if n, err := rxQueues(name); err != nil || n != 1 {
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%d receive queues: gvs's XDP socket serves 1", n)
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("XDP socket: %w", err)
	}
	x := &xskSocket{txFd: uintptr(fd)}
	if err := x.setup(fd, ifindex, withTx); err != nil {
		unix.Close(fd)
		x.close()
		return nil, err
	}
	x.file = os.NewFile(uintptr(fd), "xsk:"+name)
	if x.conn, err = x.file.SyscallConn(); err != nil {
		x.close()
		return nil, err
	}
	x.waitFn = func(uintptr) bool { return x.ready() }
	if err := x.attach(fd, ifindex); err != nil {
		x.close()
		return nil, err
	}
	return x, nil
}

// setup registers the UMEM, maps the fill and receive rings, fills the
// fill ring with every frame and binds the socket to queue 0.
func (x *xskSocket) setup(fd, ifindex int, withTx bool) error {
	var err error
	frames := xskFrames
	if withTx {
		frames += xskTxFrames
	}
	x.umem, err = unix.Mmap(-1, 0, frames*xskFrameSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("XDP UMEM: %w", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&x.umem[0]))), Len: uint64(len(x.umem)), Size: xskFrameSize}
	if err := setsockoptPtr(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("XDP_UMEM_REG: %w", err)
	}
	rings := []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING}
	if withTx {
		rings = append(rings, unix.XDP_TX_RING)
	}
	for _, o := range rings {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o, xskRingSize); err != nil {
			return fmt.Errorf("XDP ring %d: %w", o, err)
		}
	}
	var off unix.XDPMmapOffsets
	size := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&size)), 0); e != 0 {
		return fmt.Errorf("XDP_MMAP_OFFSETS: %w", e)
	}
	if err := mapXSKRing(&x.fill, fd, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, 8); err != nil {
		return err
	}
	if err := mapXSKRing(&x.rx, fd, off.Rx, unix.XDP_PGOFF_RX_RING, uint64(unsafe.Sizeof(unix.XDPDesc{}))); err != nil {
		return err
	}
	if withTx {
		if err := x.mapTx(fd, off); err != nil {
			return err
		}
	}
	for i := range uint32(xskFrames) {
		*x.fill.addr(i) = uint64(i) * xskFrameSize
	}
	atomic.StoreUint32(x.fill.producer, xskFrames)
	sa := unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifindex), QueueID: 0}
	if err := unix.Bind(fd, &sa); err != nil {
		return fmt.Errorf("XDP socket bind: %w", err)
	}
	return nil
}

func mapXSKRing(r *xskRing, fd int, off unix.XDPRingOffset, pgoff int64, descSize uint64) error {
	mem, err := unix.Mmap(fd, pgoff, int(off.Desc+xskRingSize*descSize), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("XDP ring mmap: %w", err)
	}
	r.mem = mem
	base := unsafe.Pointer(&mem[0])
	r.producer = (*uint32)(unsafe.Add(base, off.Producer))
	r.consumer = (*uint32)(unsafe.Add(base, off.Consumer))
	r.descs = unsafe.Add(base, off.Desc)
	r.mask = xskRingSize - 1
	return nil
}

func setsockoptPtr(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

// attach loads the redirect program, puts the socket in its map at
// queue 0 and links the program to the interface, natively if the
// driver can.
func (x *xskSocket) attach(fd, ifindex int) error {
	var err error
	x.xsks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "gvs_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return fmt.Errorf("XSKMAP: %w", err)
	}
	if err := x.xsks.Put(uint32(0), uint32(fd)); err != nil {
		return fmt.Errorf("XSKMAP: %w", err)
	}
	x.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "gvs_xsk", Type: ebpf.XDP, License: "GPL",
		Instructions: asm.Instructions{
			asm.LoadMem(asm.R2, asm.R1, xdpMdRxQueueIndex, asm.Word),
			asm.LoadMapPtr(asm.R1, x.xsks.FD()),
			// A queue without a socket passes its frames to the kernel.
			asm.Mov.Imm(asm.R3, xdpPass),
			asm.FnRedirectMap.Call(),
			asm.Return(),
		}})
	if err != nil {
		return fmt.Errorf("XDP program: %w", err)
	}
	x.mode = "native"
	x.lnk, err = link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: ifindex, Flags: link.XDPDriverMode})
	if err != nil {
		native := err
		x.mode = "generic"
		x.lnk, err = link.AttachXDP(link.XDPOptions{Program: x.prog, Interface: ifindex, Flags: link.XDPGenericMode})
		if err != nil {
			return fmt.Errorf("attaching XDP program: native: %v; generic: %w", native, err)
		}
		x.fault = fmt.Sprintf("XDP in generic (SKB) mode: native mode failed: %v", native)
	}
	return nil
}

// rxQueues asks the driver for the device's receive queues
// (ETHTOOL_GCHANNELS: separate receive channels, or combined ones). A
// driver that cannot say has one. The device must be in gvsd's network
// namespace (sysfs may show another namespace's).
func rxQueues(name string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var ch struct {
		cmd                                       uint32
		maxRx, maxTx, maxOther, maxCombined       uint32
		rxCount, txCount, otherCount, combinedCnt uint32
	}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(ifr.name[:], name)
	ch.cmd = unix.ETHTOOL_GCHANNELS
	ifr.data = uintptr(unsafe.Pointer(&ch))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno == unix.EOPNOTSUPP {
		return 1, nil
	}
	if errno != 0 {
		return 0, fmt.Errorf("ethtool channels: %w", errno)
	}
	return int(max(ch.rxCount, ch.combinedCnt, 1)), nil
}

// ready says whether the receive ring holds a frame.
func (x *xskSocket) ready() bool {
	return atomic.LoadUint32(x.rx.producer) != *x.rx.consumer
}

// deliver copies up to len(bufs) received frames into bufs and returns
// their UMEM frames to the fill ring.
func (x *xskSocket) deliver(bufs [][]byte, sizes []int, c *batchCount) int {
	cons := *x.rx.consumer
	n := min(atomic.LoadUint32(x.rx.producer)-cons, uint32(len(bufs)))
	if n == 0 {
		return 0
	}
	fillProd := *x.fill.producer
	out := 0
	for i := range n {
		d := x.rx.rxDesc(cons + i)
		start, end := d.Addr, d.Addr+uint64(d.Len)
		if end <= uint64(len(x.umem)) && int(d.Len) <= cap(bufs[out]) {
			sizes[out] = copy(bufs[out][:d.Len], x.umem[start:end])
			c.packets++
			c.bytes += uint64(d.Len)
			out++
		} else {
			c.errors++
		}
		*x.fill.addr(fillProd + i) = start &^ (xskFrameSize - 1)
	}
	atomic.StoreUint32(x.fill.producer, fillProd+n)
	atomic.StoreUint32(x.rx.consumer, cons+n)
	return out
}

// dropped reads the socket's count of frames it could not take (its
// receive ring full, or no frame in the fill ring).
func (x *xskSocket) dropped() uint64 {
	var s unix.XDPStatistics
	size := uint32(unsafe.Sizeof(s))
	var got uint64
	_ = x.conn.Control(func(fd uintptr) {
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, fd, unix.SOL_XDP, unix.XDP_STATISTICS,
			uintptr(unsafe.Pointer(&s)), uintptr(unsafe.Pointer(&size)), 0)
		if e == 0 {
			got = s.Rx_dropped + s.Rx_ring_full + s.Rx_fill_ring_empty_descs
		}
	})
	return got
}

// close detaches the program and releases the socket and its memory.
// The link goes first, so no frame is redirected to a closing socket.
func (x *xskSocket) close() {
	if x.lnk != nil {
		_ = x.lnk.Close()
	}
	if x.prog != nil {
		_ = x.prog.Close()
	}
	if x.xsks != nil {
		_ = x.xsks.Close()
	}
	if x.file != nil {
		_ = x.file.Close()
	}
	x.fill.unmap()
	x.rx.unmap()
	x.tx.unmap()
	x.comp.unmap()
	if x.umem != nil {
		_ = unix.Munmap(x.umem)
		x.umem = nil
	}
}
