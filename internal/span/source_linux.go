package span

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// vnetHdrLen is the size of the virtio_net_hdr that PACKET_VNET_HDR puts
// before each frame: it says how the kernel would segment a TCP
// super-frame (GSO) and finish its checksum, so that a dev: destination
// hands both jobs back to the kernel instead of sending 64 KiB frames.
const vnetHdrLen = 10

// sourceBuf is a reader's receive buffer: the largest super-frame plus
// room to put back a VLAN tag the kernel took out.
const sourceBuf = 65536 + 4 + 64

// retryInterval paces the attempts to open a source that does not exist,
// and the checks that an open one is still the same device.
const retryInterval = time.Second

// sourceReader reads one source's selected packets and hands a copy to
// every destination's queue.
type sourceReader struct {
	s    *Session
	idx  int
	src  Source
	prog []bpf.RawInstruction

	err                            atomic.Pointer[string]
	selected, kdropped, truncated  atomic.Uint64
	errors                         atomic.Uint64
	seenAcc, seenBase, seenIfindex atomic.Uint64 // see seen

	// live is f while it is open, for Close to cut a read short.
	live atomic.Pointer[os.File]

	// Used only by the reading goroutine.
	f       *os.File
	ifindex int
	buf     []byte
	vnet    [vnetHdrLen]byte
	ctrl    [64]byte
	from    unix.RawSockaddrLinklayer
	iov     [2]unix.Iovec
	msg     unix.Msghdr
}

func (r *sourceReader) setErr(e string) {
	if e == "" {
		r.err.Store(nil)
		return
	}
	r.err.Store(&e)
}

// run reads until the session closes, reopening the source whenever it
// disappears, so that a device that comes back is picked up again.
func (r *sourceReader) run() {
	for !r.s.closed.Load() {
		if r.f == nil && !r.tryOpen() {
			r.s.sleep(retryInterval)
			continue
		}
		r.read()
		r.close()
		r.s.changed()
	}
	if r.f != nil {
		r.close()
	}
}

// tryOpen opens the source, or records why it cannot.
func (r *sourceReader) tryOpen() bool {
	if err := r.open(); err != nil {
		if e := r.err.Load(); e == nil || *e != err.Error() {
			r.setErr(err.Error())
			r.s.changed()
		}
		return false
	}
	if r.err.Load() != nil {
		r.setErr("")
		r.s.changed()
	}
	return true
}

// open makes the socket: no protocol until the filter is in place, so
// that not one unselected packet is queued to it, then bound to the
// device for every protocol.
func (r *sourceReader) open() error {
	if r.buf == nil {
		r.buf = make([]byte, sourceBuf)
	}
	ifi, err := net.InterfaceByName(r.src.Dev)
	if err != nil {
		return fmt.Errorf("source %s: no such interface (waiting for it)", r.src.Dev)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("source %s: packet socket: %w", r.src.Dev, err)
	}
	if err := r.setup(fd, ifi.Index); err != nil {
		unix.Close(fd)
		return fmt.Errorf("source %s: %w", r.src.Dev, err)
	}
	r.f, r.ifindex = os.NewFile(uintptr(fd), "span:"+r.src.Dev), ifi.Index
	r.live.Store(r.f)
	r.rebase(ifi.Index)
	return nil
}

func (r *sourceReader) setup(fd, ifindex int) error {
	for _, o := range []struct {
		name string
		opt  int
	}{{"PACKET_AUXDATA", unix.PACKET_AUXDATA}, {"PACKET_VNET_HDR", unix.PACKET_VNET_HDR}} {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, o.opt, 1); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 4<<20)
	filter := make([]unix.SockFilter, len(r.prog))
	for i, in := range r.prog {
		filter[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
		return fmt.Errorf("attaching the filter: %w", err)
	}
	sa := unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, &sa); err != nil {
		return fmt.Errorf("bind: %w", err)
	}
	return nil
}

func (r *sourceReader) close() {
	r.collectDrops()
	r.live.Store(nil)
	r.f.Close()
	r.f = nil
}

// read receives until the device goes away or the session closes.
func (r *sourceReader) read() {
	conn, err := r.f.SyscallConn()
	if err != nil {
		r.setErr(fmt.Sprintf("source %s: %v", r.src.Dev, err))
		return
	}
	r.iov[0] = unix.Iovec{Base: &r.vnet[0]}
	r.iov[0].SetLen(vnetHdrLen)
	// The frame lands 4 bytes in, so that a VLAN tag can be put back by
	// moving only the MAC addresses.
	r.iov[1] = unix.Iovec{Base: &r.buf[4]}
	r.iov[1].SetLen(len(r.buf) - 4)
	for !r.s.closed.Load() {
		_ = r.f.SetReadDeadline(time.Now().Add(retryInterval))
		gone := false
		err := conn.Read(func(fd uintptr) bool { return r.drain(fd, &gone) })
		if gone || r.s.closed.Load() {
			return
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			r.setErr(fmt.Sprintf("source %s: %v", r.src.Dev, err))
			return
		}
		r.collectDrops()
		if ifi, err := net.InterfaceByName(r.src.Dev); err != nil || ifi.Index != r.ifindex {
			return // deleted, or deleted and made again: reopen
		}
	}
}

// drain receives every frame waiting; false asks the poller to wait.
func (r *sourceReader) drain(fd uintptr, gone *bool) bool {
	for {
		r.msg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&r.from)), Namelen: unix.SizeofSockaddrLinklayer,
			Iov: &r.iov[0], Control: &r.ctrl[0]}
		r.msg.Iovlen = 2
		r.msg.SetControllen(len(r.ctrl))
		n, _, errno := unix.Syscall(unix.SYS_RECVMSG, fd, uintptr(unsafe.Pointer(&r.msg)), unix.MSG_DONTWAIT|unix.MSG_TRUNC)
		switch errno {
		case 0:
			r.frame(int(n) - vnetHdrLen)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		case unix.ENETDOWN:
			// Down, or going away: read checks which.
			*gone = !r.sameDevice()
			return *gone
		case unix.EINVAL:
			// A super-frame the virtio header cannot describe: dropped
			// by the kernel.
			r.errors.Add(1)
		default:
			r.setErr(fmt.Sprintf("source %s: receive: %v", r.src.Dev, errno))
			*gone = true
			return true
		}
	}
}

func (r *sourceReader) sameDevice() bool {
	ifi, err := net.InterfaceByName(r.src.Dev)
	return err == nil && ifi.Index == r.ifindex
}

// frame hands one received frame of size bytes to the destinations.
func (r *sourceReader) frame(size int) {
	if size < 14 {
		r.errors.Add(1)
		return
	}
	capLen := min(size, len(r.buf)-4)
	frame := r.buf[4 : 4+capLen]
	aux := r.auxdata()
	orig := size
	if aux != nil {
		orig = int(aux.Len)
		if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
			tpid := uint16(0x8100)
			if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
				tpid = aux.Vlan_tpid
			}
			copy(r.buf[0:12], r.buf[4:16])
			binary.BigEndian.PutUint16(r.buf[12:], tpid)
			binary.BigEndian.PutUint16(r.buf[14:], aux.Vlan_tci)
			frame = r.buf[:capLen+4]
			orig += 4
			shiftVnet(&r.vnet, 4)
		}
	}
	r.selected.Add(1)
	if orig > len(frame) && !r.s.cfg.Metadata {
		r.truncated.Add(1)
	}
	r.s.fanOut(frame, orig, &r.vnet, time.Now().UnixNano(), r.idx, r.from.Pkttype == unix.PACKET_OUTGOING, false)
}

// auxdata returns the PACKET_AUXDATA control message, or nil.
func (r *sourceReader) auxdata() *unix.TpacketAuxdata {
	ctrl := r.ctrl[:min(int(r.msg.Controllen), len(r.ctrl))]
	for len(ctrl) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&ctrl[0]))
		if cm.Len < unix.SizeofCmsghdr || int(cm.Len) > len(ctrl) {
			return nil
		}
		if cm.Level == unix.SOL_PACKET && cm.Type == unix.PACKET_AUXDATA &&
			int(cm.Len) >= unix.CmsgLen(int(unsafe.Sizeof(unix.TpacketAuxdata{}))) {
			return (*unix.TpacketAuxdata)(unsafe.Pointer(&ctrl[unix.CmsgLen(0)]))
		}
		ctrl = ctrl[min(unix.CmsgSpace(int(cm.Len)-unix.SizeofCmsghdr), len(ctrl)):]
	}
	return nil
}

// shiftVnet moves the offsets of a virtio header by n bytes (a VLAN tag
// put in before them).
func shiftVnet(h *[vnetHdrLen]byte, n uint16) {
	const needsCsum = 1
	if h[0]&needsCsum != 0 {
		binary.NativeEndian.PutUint16(h[6:], binary.NativeEndian.Uint16(h[6:])+n)
	}
	if hl := binary.NativeEndian.Uint16(h[2:]); hl != 0 {
		binary.NativeEndian.PutUint16(h[2:], hl+n)
	}
}

// collectDrops adds the kernel's count of selected packets it dropped for
// want of room in the socket's buffer (reading it resets it).
func (r *sourceReader) collectDrops() {
	if r.f == nil {
		return
	}
	conn, err := r.f.SyscallConn()
	if err != nil {
		return
	}
	_ = conn.Control(func(fd uintptr) {
		if st, err := unix.GetsockoptTpacketStats(int(fd), unix.SOL_PACKET, unix.PACKET_STATISTICS); err == nil {
			r.kdropped.Add(uint64(st.Drops))
		}
	})
}

// rebase starts counting the packets the device sees from now, keeping
// what an earlier device of the same name counted.
func (r *sourceReader) rebase(ifindex int) {
	if old := r.seenIfindex.Load(); old != 0 {
		r.seenAcc.Store(r.seen())
	}
	r.seenBase.Store(r.devPackets())
	r.seenIfindex.Store(uint64(ifindex))
}

// seen is how many packets the source saw in the session's direction
// since the session began: the device's own counters, since the filter
// keeps the others out of gvs.
func (r *sourceReader) seen() uint64 {
	if r.seenIfindex.Load() == 0 {
		return r.seenAcc.Load()
	}
	n, base := r.devPackets(), r.seenBase.Load()
	if n < base {
		return r.seenAcc.Load()
	}
	return r.seenAcc.Load() + n - base
}

func (r *sourceReader) devPackets() uint64 {
	var n uint64
	for _, c := range []struct {
		file string
		dir  Direction
	}{{"rx_packets", In}, {"tx_packets", Out}} {
		if r.src.Dir != Both && r.src.Dir != c.dir {
			continue
		}
		b, err := os.ReadFile("/sys/class/net/" + r.src.Dev + "/statistics/" + c.file)
		if err != nil {
			continue
		}
		v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		n += v
	}
	return n
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

var _ = syscall.EAGAIN
