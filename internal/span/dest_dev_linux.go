package span

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// devOut sends copies out of a device through an AF_PACKET socket, as
// they were (or with a VLAN tag pushed): no ARP, no routing, no next hop.
// The socket is bound with protocol 0, so it receives nothing, and has
// PACKET_VNET_HDR, so that a TCP super-frame read from a source with the
// kernel's offload header is segmented by the kernel for this device.
type devOut struct {
	dev     string
	ifindex int
	vlan    int
	f       *os.File
	conn    syscall.RawConn
	iov     [2]unix.Iovec
	msg     unix.Msghdr
	to      unix.RawSockaddrLinklayer
	tagged  []byte // scratch for pushing a tag
	vnet    [vnetHdrLen]byte
}

func openDev(s *Session, d Dest) (output, error) {
	ifi, err := net.InterfaceByName(d.Target)
	if err != nil {
		return nil, fmt.Errorf("no such interface %s (waiting for it)", d.Target)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	fail := func(what string, err error) (output, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	if s.cfg.HasMark {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(s.cfg.Mark)); err != nil {
			return fail("SO_MARK", err)
		}
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 4<<20)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	o := &devOut{dev: d.Target, ifindex: ifi.Index, vlan: d.VLAN, f: os.NewFile(uintptr(fd), "span:"+d.Target),
		tagged: make([]byte, sourceBuf+4)}
	if o.conn, err = o.f.SyscallConn(); err != nil {
		o.f.Close()
		return nil, err
	}
	o.to = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Ifindex: int32(ifi.Index), Halen: 6}
	return o, nil
}

// writeWait bounds how long a sender waits for room in the device's
// socket buffer before it counts the copy lost.
const writeWait = 100 * time.Millisecond

func (o *devOut) write(items []*item) (int, error) {
	failed := 0
	_ = o.f.SetWriteDeadline(time.Now().Add(writeWait))
	for _, it := range items {
		errno := o.send(it)
		switch errno {
		case 0:
		case unix.ENXIO, unix.ENODEV:
			return len(items), fmt.Errorf("interface %s went away (waiting for it)", o.dev)
		default:
			failed++
		}
	}
	return failed, nil
}

// send transmits one copy; an error if the device refused it (its queue
// is full, it is down, the copy is too large).
func (o *devOut) send(it *item) syscall.Errno {
	frame, vnet := it.buf, it.vnet
	if o.vlan >= 0 {
		if len(frame) < 12 {
			return unix.EINVAL
		}
		n := copy(o.tagged, frame[:12])
		binary.BigEndian.PutUint16(o.tagged[n:], 0x8100)
		binary.BigEndian.PutUint16(o.tagged[n+2:], uint16(o.vlan))
		n += 4 + copy(o.tagged[n+4:], frame[12:])
		frame = o.tagged[:n]
		shiftVnet(&vnet, 4)
	}
	o.vnet = vnet
	o.to.Protocol = htons(binary.BigEndian.Uint16(frame[12:14]))
	o.iov[0] = unix.Iovec{Base: &o.vnet[0]}
	o.iov[0].SetLen(vnetHdrLen)
	o.iov[1] = unix.Iovec{Base: &frame[0]}
	o.iov[1].SetLen(len(frame))
	o.msg = unix.Msghdr{Name: (*byte)(unsafe.Pointer(&o.to)), Namelen: unix.SizeofSockaddrLinklayer, Iov: &o.iov[0]}
	o.msg.Iovlen = 2
	var errno syscall.Errno
	err := o.conn.Write(func(fd uintptr) bool {
		_, _, errno = unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&o.msg)), unix.MSG_DONTWAIT)
		return errno != unix.EAGAIN && errno != unix.EINTR
	})
	if err != nil {
		return unix.EAGAIN
	}
	return errno
}

func (o *devOut) close() { o.f.Close() }
