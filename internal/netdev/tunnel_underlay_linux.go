//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"gvs/internal/coverage"
	"gvs/internal/guard"
	"gvs/internal/packet"
	"gvs/internal/vlog"
)

var (
	tunnelLog    = vlog.New("tunnel")
	tunnelPanics = coverage.New("tunnel_panic")
)

// underlay is one receiving socket shared by the tunnel ports of a kind:
// its reader goroutine takes tunnel packets off it, decapsulates them and
// hands each inner frame to the port it belongs to.
type underlay struct {
	key   underlayKey
	name  string // for tnl/ports/show
	f     *os.File
	rc    syscall.RawConn
	ports atomic.Pointer[[]*tunnelPort] // copy on write, under underlaysMu
	done  chan struct{}
	quit  chan struct{} // closed first by close: a reader waiting for a buffer stops

	udp  *udpReader // UDP underlays: receive buffers lent to the ports (tunnel_udprx_linux.go)
	vlen int        // messages read into this time

	bufs  [][]byte
	ctrl  [][underlayCtrlLen]byte
	names []unix.RawSockaddrInet6 // large enough for either family
	iovs  []unix.Iovec
	msgs  []unix.Mmsghdr
	got   int
	err   error
}

func (u *underlay) portList() []*tunnelPort {
	if p := u.ports.Load(); p != nil {
		return *p
	}
	return nil
}

// openUnderlay opens the receiving socket for k and starts its reader.
func openUnderlay(k underlayKey) (*underlay, error) {
	fd, err := underlaySocket(k)
	if err != nil {
		return nil, fmt.Errorf("cannot open the %s tunnel socket: %w", k, err)
	}
	u := &underlay{key: k, f: os.NewFile(uintptr(fd), k.String()), done: make(chan struct{}), quit: make(chan struct{})}
	if u.rc, err = u.f.SyscallConn(); err != nil {
		u.f.Close()
		return nil, err
	}
	u.initBuffers()
	go u.run()
	return u, nil
}

// underlaySocket opens a raw IPPROTO_GRE socket, or a UDP socket bound to
// k's port on every address, with packet info so that the local address
// a packet was sent to is known.
func underlaySocket(k underlayKey) (int, error) {
	family, level, opt := unix.AF_INET, unix.IPPROTO_IP, unix.IP_PKTINFO
	if k.v6 {
		family, level, opt = unix.AF_INET6, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO
	}
	typ, proto := unix.SOCK_DGRAM, 0
	if k.udpPort == 0 {
		typ, proto = unix.SOCK_RAW, unix.IPPROTO_GRE
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, err
	}
	err = errors.Join(
		unix.SetsockoptInt(fd, level, opt, 1),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20),
		recvOuterMeta(fd, k),
	)
	if err == nil && k.v6 && k.udpPort != 0 { // so that udp and udp6 can both bind
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	if err == nil && k.udpPort != 0 {
		if k.v6 {
			err = unix.Bind(fd, &unix.SockaddrInet6{Port: int(k.udpPort)})
		} else {
			err = unix.Bind(fd, &unix.SockaddrInet4{Port: int(k.udpPort)})
		}
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	if k.udpPort != 0 {
		enableGRO(fd)
	}
	return fd, nil
}

func (u *underlay) initBuffers() {
	u.bufs = make([][]byte, tunnelBatch)
	u.ctrl = make([][underlayCtrlLen]byte, tunnelBatch)
	u.names = make([]unix.RawSockaddrInet6, tunnelBatch)
	u.iovs = make([]unix.Iovec, tunnelBatch)
	u.msgs = make([]unix.Mmsghdr, tunnelBatch)
	if u.key.udpPort != 0 { // buffers from a pool, set before each read
		u.udp = &udpReader{}
		u.udp.init(len(u.msgs))
	}
	for i := range u.msgs {
		if u.udp == nil {
			u.bufs[i] = make([]byte, tunnelRecvBuf)
			u.iovs[i].Base = &u.bufs[i][0]
			u.iovs[i].SetLen(tunnelRecvBuf)
		}
		h := &u.msgs[i].Hdr
		h.Iov = &u.iovs[i]
		h.SetIovlen(1)
	}
	u.vlen = len(u.msgs)
}

// close stops the reader and closes the socket; the caller holds
// underlaysMu.
func (u *underlay) close() {
	close(u.quit)
	u.f.Close() // wakes the reader with an error
	<-u.done
	if u.udp != nil {
		u.udp.close()
	}
}

// run reads until the socket is closed. A panic on a packet is recovered
// and the reader goes on with the next batch.
func (u *underlay) run() {
	defer close(u.done)
	for !u.readGuarded() {
	}
}

// readGuarded is readOnce with a panic recovered (and then reported as
// "not stopped", so the loop goes on).
func (u *underlay) readGuarded() (stop bool) {
	defer guard.Recover(tunnelLog, tunnelPanics, "tunnel underlay "+u.key.String())
	return u.readOnce()
}

// readOnce reads one batch and dispatches it; true means the socket is
// gone.
func (u *underlay) readOnce() bool {
	if u.udp != nil && !u.setUDPBuffers() {
		return true
	}
	for i := range u.msgs[:u.vlen] {
		h := &u.msgs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&u.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Control = &u.ctrl[i][0]
		h.SetControllen(len(u.ctrl[i]))
		h.Flags = 0
	}
	u.got, u.err = 0, nil
	if err := u.rc.Read(u.recv); err != nil {
		return true
	}
	if u.err != nil {
		tunnelLog.Warn("%s: read failed: %v", u.key, u.err)
		return false
	}
	for i := range u.got {
		u.dispatch(i)
	}
	return false
}

func (u *underlay) recv(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&u.msgs[0])), uintptr(u.vlen), unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			u.got = int(n)
			return true
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			u.err = errno
			return true
		}
	}
}

// dispatch decapsulates message i and delivers it to its port.
func (u *underlay) dispatch(i int) {
	m := &u.msgs[i]
	if u.udp != nil {
		u.dispatchUDP(i)
		return
	}
	b := u.bufs[i][:min(int(m.Len), len(u.bufs[i]))]
	if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
		tunnelTooBig.Inc()
		return
	}
	src, dst := u.addresses(i)
	outer := cmsgOuter(u.ctrl[i][:min(int(m.Hdr.Controllen), len(u.ctrl[i]))])
	if !u.key.v6 { // raw IPv4 sockets deliver the IP header
		var o packet.OuterIP
		if err := packet.ParseOuterIPv4(b, &o); err != nil {
			tunnelMalformed.Inc()
			return
		}
		src, dst, b, outer = o.Src, o.Dst, b[o.Payload:o.End], o.Meta
	}
	u.decapsulate(b, src, dst, outer)
}

// decapsulate takes the GRE, VXLAN or Geneve header off b (the outer IP
// payload, or the UDP payload) and delivers the inner frame to its port.
// The underlay's reader and the native receive path (tnl_native_linux.go)
// both call it; outer is what the outer headers said besides addresses.
func (u *underlay) decapsulate(b []byte, src, dst netip.Addr, outer packet.OuterMeta) {
	var md packet.TunnelMeta
	if p, inner := u.demux(b, src, dst, outer, &md); p != nil {
		p.deliver(b[inner:], &md)
	}
}

// demux takes the tunnel header off b and finds the port the packet is
// for; it returns the port (nil: dropped and counted), where in b the
// inner frame starts, and its tunnel metadata in md.
func (u *underlay) demux(b []byte, src, dst netip.Addr, outer packet.OuterMeta, md *packet.TunnelMeta) (*tunnelPort, int) {
	var info packet.TunnelInfo
	var err error
	if u.key.udpPort != 0 {
		err = u.parseUDP(b, &info)
	} else {
		err = packet.ParseGRE(b, &info)
	}
	if err != nil {
		tunnelMalformed.Inc()
		return nil, 0
	}
	p := u.match(info.Type, src, dst, info.Key)
	if p == nil {
		tunnelUnknown.Inc()
		return nil, 0
	}
	md.SetReceived(&info, src, dst, outer)
	return p, info.Inner
}

// parseUDP reads a VXLAN or Geneve header, as the port number says.
func (u *underlay) parseUDP(b []byte, info *packet.TunnelInfo) error {
	ports := u.portList()
	if len(ports) > 0 && ports[0].opts.encap.Type == packet.TunnelGeneve {
		return packet.ParseGeneve(b, info)
	}
	return packet.ParseVXLAN(b, info)
}

// match finds the most specific port for a packet.
func (u *underlay) match(typ packet.TunnelType, src, dst netip.Addr, key uint32) *tunnelPort {
	var best *tunnelPort
	score := -1
	for _, p := range u.portList() {
		if s := p.opts.matches(typ, src, dst, key); s > score {
			best, score = p, s
		}
	}
	return best
}

// addresses returns message i's source (its socket address) and the
// local address it was sent to (packet info).
func (u *underlay) addresses(i int) (src, dst netip.Addr) {
	sa := &u.names[i]
	if sa.Family == unix.AF_INET6 {
		src = netip.AddrFrom16(sa.Addr).Unmap()
	} else if sa.Family == unix.AF_INET {
		src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(sa)).Addr)
	}
	dst = pktinfoDst(u.ctrl[i][:min(int(u.msgs[i].Hdr.Controllen), len(u.ctrl[i]))])
	return src, dst
}

// pktinfoDst finds the destination address in an IP_PKTINFO or
// IPV6_PKTINFO control message.
func pktinfoDst(c []byte) netip.Addr {
	for len(c) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		n := int(h.Len)
		if n < unix.SizeofCmsghdr || n > len(c) {
			return netip.Addr{}
		}
		data := c[unix.SizeofCmsghdr:n]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= 12:
			return netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= 16:
			return netip.AddrFrom16([16]byte(data[0:16])).Unmap()
		}
		c = c[min(len(c), (n+7)&^7):]
	}
	return netip.Addr{}
}
