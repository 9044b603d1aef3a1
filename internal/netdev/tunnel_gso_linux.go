//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// tunnelGSOSends counts UDP GSO sends (each carries a run of frames).
var tunnelGSOSends = coverage.New("tunnel_udp_gso")

// tunnelGSOReserved counts runs sent through the raw socket because
// their source port is reserved (tunnel_gso_ports_linux.go).
var tunnelGSOReserved = coverage.New("tunnel_udp_gso_reserved_port")

// UDP GSO for VXLAN and Geneve ports on the host's routing.
//
// A TCP super-frame reaches a tunnel port cut into segments of equal size
// (the last may be shorter), all of one flow and so of one UDP source
// port. Instead of one raw IP packet per segment, such a run is handed to
// the kernel as one UDP datagram with UDP_SEGMENT: the kernel (or the
// device) cuts it into one datagram per segment, writes the outer IP and
// UDP headers and their checksums, and a veth carries it whole to the far
// end's UDP socket, which takes it with UDP_GRO (tunnel_gro_linux.go).
// Each segment is the tunnel header followed by the inner frame, exactly
// what the raw socket would carry after the UDP header.
//
// The UDP source port is the flow's hash (packet.TunnelSourcePort), so the
// sending socket must be bound to it: a port keeps a few such sockets,
// bound to (outer source, source port), one per recent flow. They never
// receive (a filter drops everything), and one that cannot be bound (the
// port is taken) sends nothing: its runs go through the raw socket.
//
// Ports with csum=false (OVS's default) keep the raw socket: the kernel's
// UDP GSO always fills in the UDP checksum, which csum=false promises not
// to. What differs on the wire from the raw socket with csum=true: the IP
// ID of DF packets counts up where the raw socket leaves it 0.

const (
	// gsoMaxSegs is the kernel's UDP_MAX_SEGMENTS before Linux 6.9 (128
	// after): the most datagrams one send may carry.
	gsoMaxSegs = 64
	// gsoMaxBytes is the largest UDP payload over IPv4 (65535 minus the IP
	// and UDP headers); IPv6 allows a little more, unused.
	gsoMaxBytes = 0xffff - packet.IPv4MinLen - packet.UDPLen
	// gsoSockets is how many flows (source ports) a port keeps a socket
	// for.
	gsoSockets = 16
	// gsoRetry is how long a source port that could not be bound goes
	// through the raw socket before binding is tried again.
	gsoRetry = 2 * time.Second
	// gsoSndBuf is each GSO socket's send buffer: a few 64 KB sends.
	gsoSndBuf = 4 << 20
)

// udpGSO is a tunnel port's UDP GSO state; it belongs to the port's
// transmit path (one goroutine at a time), mu keeps close away from a
// send in progress.
type udpGSO struct {
	on     bool // a UDP tunnel: VXLAN or Geneve
	v6     bool
	tunOff int // where the tunnel header starts in a built header: after IP and UDP

	mu      sync.Mutex
	closed  bool
	socks   [gsoSockets]gsoSock
	tick    uint64
	hdr     [packet.MaxTunnelHeader]byte
	iovs    [2 * gsoMaxSegs]unix.Iovec
	oob     [24]byte // one cmsg with a uint16: CMSG_SPACE(2)
	msg     unix.Msghdr
	sa4     unix.RawSockaddrInet4
	sa6     unix.RawSockaddrInet6
	bind4   unix.RawSockaddrInet4
	bind6   unix.RawSockaddrInet6
	mark    uint32
	hasMark bool
	ttl     uint8
	tos     uint8
	df      bool
	home    netnsID // where the port's raw socket is: GSO sockets must be there too
	homeErr error
}

// gsoSock is a socket bound to one outer source address and UDP source
// port; fd -1 means binding failed (until retry).
type gsoSock struct {
	src   netip.Addr
	port  uint16
	fd    int
	used  uint64
	retry time.Time
}

// init prepares g for a port with outer headers cfg.
func (g *udpGSO) init(cfg packet.TunnelConfig) {
	// Only with csum=true: the kernel's UDP GSO always fills in the UDP
	// checksum, and csum=false promises OVS's zero checksum on the wire.
	// A flow-based port (no remote yet) sends through the raw socket.
	g.on = (cfg.Type == packet.TunnelVXLAN || cfg.Type == packet.TunnelGeneve) && cfg.Csum && cfg.Dst.IsValid()
	g.v6 = cfg.Dst.Is6()
	g.ttl, g.tos, g.df = cfg.TTL, cfg.TOS, cfg.DF
	g.home, g.homeErr = threadNetns()
	g.tunOff = packet.IPv4MinLen + packet.UDPLen
	if g.v6 {
		g.tunOff = packet.IPv6Len + packet.UDPLen
		g.msg.Name = (*byte)(unsafe.Pointer(&g.sa6))
		g.msg.Namelen = unix.SizeofSockaddrInet6
	} else {
		g.msg.Name = (*byte)(unsafe.Pointer(&g.sa4))
		g.msg.Namelen = unix.SizeofSockaddrInet4
	}
	for i := range g.socks {
		g.socks[i].fd = -1
	}
	h := (*unix.Cmsghdr)(unsafe.Pointer(&g.oob[0]))
	h.Level, h.Type = unix.SOL_UDP, unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	g.msg.Control = &g.oob[0]
	g.msg.SetControllen(len(g.oob))
	g.msg.Iov = &g.iovs[0]
}

// gsoRun returns how many frames from the start of frames one UDP GSO
// send can carry: frames of the first one's size, of its flow (UDP source
// port), the last possibly shorter, within the kernel's limits; hdr is
// the tunnel header's length that each segment adds. A run of fewer than
// two is not worth it.
func gsoRun(frames [][]byte, hdr int) int {
	if len(frames) < 2 || len(frames[0]) < packet.EthernetLen {
		return 0
	}
	size := len(frames[0])
	port := packet.TunnelSourcePort(frames[0])
	total, n := size+hdr, 1
	for n < len(frames) && n < gsoMaxSegs {
		f := frames[n]
		if len(f) > size || len(f) < packet.EthernetLen || total+len(f)+hdr > gsoMaxBytes ||
			!sameFlowHead(frames[0], f) && packet.TunnelSourcePort(f) != port {
			break
		}
		total += len(f) + hdr
		n++
		if len(f) < size { // a short segment can only be the last
			break
		}
	}
	return n
}

// keepsSegmentRuns: a port that sends by UDP GSO wants a super-frame's
// segments in one write (Sender), to send them in one GSO send.
func (p *tunnelPort) keepsSegmentRuns() bool { return p.tx.gso.on }

// keepsSegmentRuns: as a tunnel port's.
func (s *TunnelSender) keepsSegmentRuns() bool { return s.w.gso.on }

// sameFlowHead reports whether b has the bytes of a that
// packet.TunnelSourcePort hashes, and so a's UDP source port, without
// hashing it (about 30 ns a segment): both untagged IPv4 without
// options, not fragments, with the same Ethernet addresses, protocol, IP
// addresses and ports, as the segments of one cut super-frame are. False
// says nothing: the port may still be the same.
func sameFlowHead(a, b []byte) bool {
	const ip = packet.EthernetLen
	const end = ip + packet.IPv4MinLen + 4 // the ports
	if len(a) < end || len(b) < end || a[ip] != 0x45 || b[ip] != 0x45 ||
		binary.BigEndian.Uint16(a[ip+6:])&0x3fff != 0 || binary.BigEndian.Uint16(b[ip+6:])&0x3fff != 0 {
		return false
	}
	return a[ip+9] == b[ip+9] && bytes.Equal(a[:ip], b[:ip]) && bytes.Equal(a[ip+12:end], b[ip+12:end]) &&
		binary.BigEndian.Uint16(a[12:]) == packet.EtherTypeIPv4
}

// sendRouted sends frames by the host's routing: runs that UDP GSO can
// carry in one send each, the others through the raw socket.
func (w *tunnelWriter) sendRouted(frames [][]byte, ts uint32, now time.Time) {
	hdr := w.encap.Len() - w.gso.tunOff
	rest := 0 // frames[rest:i] wait for the raw socket
	for i := 0; i < len(frames); {
		n := 0
		if w.gso.on {
			n = gsoRun(frames[i:], hdr)
		}
		if n < 2 {
			i++
			continue
		}
		w.sendRaw(frames[rest:i], ts)
		if !w.sendGSO(frames[i:i+n], now) {
			w.sendRaw(frames[i:i+n], ts)
		}
		i += n
		rest = i
	}
	w.sendRaw(frames[rest:], ts)
}

// sendRaw sends frames through the raw IP socket, a chunk per sendmmsg,
// or directly to the route's device (tnl_direct_linux.go).
func (w *tunnelWriter) sendRaw(frames [][]byte, ts uint32) {
	if len(frames) == 0 || w.sendDirect(frames, ts) {
		return
	}
	for start := 0; start < len(frames); start += tunnelBatch {
		chunk := frames[start:min(len(frames), start+tunnelBatch)]
		w.staged = w.stage(chunk, ts)
		_ = w.rc.Control(w.sendStaged)
	}
}

// sendGSO sends a run (see gsoRun) in one sendmsg with UDP_SEGMENT; false
// means it was not sent and should go through the raw socket. A full
// socket buffer drops the run, as it drops the rest of a raw chunk.
func (w *tunnelWriter) sendGSO(run [][]byte, now time.Time) bool {
	g := &w.gso
	n, err := w.encap.Build(g.hdr[:], run[0], 0)
	if err != nil {
		return false
	}
	cfg := w.encap.Config() // the addresses in use, which may change
	if !cfg.Dst.IsValid() || cfg.Dst.Is6() != g.v6 {
		return false
	}
	port := uint16(g.hdr[g.tunOff-packet.UDPLen])<<8 | uint16(g.hdr[g.tunOff-packet.UDPLen+1])
	g.mu.Lock()
	defer g.mu.Unlock()
	g.setDst(cfg.Dst, cfg.DstPort)
	src := cfg.Src
	fd := g.socket(src, port, now)
	if fd < 0 {
		return false
	}
	th := g.hdr[g.tunOff:n] // the same tunnel header heads every segment
	for k, f := range run {
		g.iovs[2*k] = unix.Iovec{Base: &th[0]}
		g.iovs[2*k].SetLen(len(th))
		g.iovs[2*k+1] = unix.Iovec{Base: &f[0]}
		g.iovs[2*k+1].SetLen(len(f))
	}
	g.msg.SetIovlen(2 * len(run))
	*(*uint16)(unsafe.Pointer(&g.oob[unix.SizeofCmsghdr])) = uint16(len(th) + len(run[0]))
	defer clear(g.iovs[:2*len(run)]) // drop the references to the frames
	for {
		_, _, errno := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&g.msg)), unix.MSG_DONTWAIT)
		switch errno {
		case 0:
			tunnelGSOSends.Inc()
			for _, f := range run {
				w.count.add(len(f), 0)
			}
			return true
		case unix.EINTR:
		case unix.EAGAIN, unix.ENOBUFS:
			w.count.dropped += uint64(len(run))
			return true
		default: // too big for the path, no route, ...: the raw socket says which
			return false
		}
	}
}

// setDst points the message at dst, of the family of g's sockets.
func (g *udpGSO) setDst(dst netip.Addr, port uint16) {
	if g.v6 {
		g.sa6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(port), Addr: dst.As16()}
	} else {
		g.sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(port), Addr: dst.As4()}
	}
}

// socket returns the socket bound to (src, port), opening it in place of
// the least recently used one; -1 if there is none. The caller holds mu.
func (g *udpGSO) socket(src netip.Addr, port uint16, now time.Time) int {
	if g.closed || !src.IsValid() || src.IsUnspecified() {
		return -1
	}
	g.tick++
	old := &g.socks[0]
	for i := range g.socks {
		s := &g.socks[i]
		if s.port == port && s.src == src && (s.fd >= 0 || now.Before(s.retry)) {
			s.used = g.tick
			return s.fd
		}
		if s.used < old.used {
			old = s
		}
	}
	if portReserved(port, now) {
		tunnelGSOReserved.Inc()
		return -1
	}
	if old.fd >= 0 {
		unix.Close(old.fd)
	}
	*old = gsoSock{src: src, port: port, used: g.tick, fd: -1}
	fd, err := g.open(src, port)
	if err != nil {
		tunnelLog.Dbg("UDP GSO socket %s port %d: %v; sending through the raw socket", src, port, err)
		old.retry = now.Add(gsoRetry)
		return -1
	}
	old.fd = fd
	return fd
}

// gsoDropAll is a socket filter that accepts nothing: a GSO socket only
// sends.
var gsoDropAll = [1]unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}

// open makes a socket that sends as the raw socket would: the port's TTL,
// TOS and DF, its mark, from src and port.
func (g *udpGSO) open(src netip.Addr, port uint16) (int, error) {
	// A socket is made in the calling thread's namespace, which is the
	// port's in gvsd (one namespace for every thread), not always so in a
	// test: there, sends from elsewhere use the raw socket.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if ns, err := threadNetns(); err != nil || g.homeErr != nil || ns != g.home {
		return -1, errors.Join(err, g.homeErr, errors.New("not in the port's network namespace"))
	}
	family := unix.AF_INET
	if g.v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err = g.setup(fd); err == nil {
		err = g.bind(fd, src, port)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// bind binds fd to (src, port) without the allocation of unix.Bind.
func (g *udpGSO) bind(fd int, src netip.Addr, port uint16) error {
	var sa unsafe.Pointer
	n := uintptr(unix.SizeofSockaddrInet4)
	if g.v6 {
		g.bind6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Port: htons(port), Addr: src.As16()}
		sa, n = unsafe.Pointer(&g.bind6), unix.SizeofSockaddrInet6
	} else {
		g.bind4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Port: htons(port), Addr: src.As4()}
		sa = unsafe.Pointer(&g.bind4)
	}
	if _, _, errno := unix.Syscall(unix.SYS_BIND, uintptr(fd), uintptr(sa), n); errno != 0 {
		return errno
	}
	return nil
}

// setup sets a GSO socket's options before it is bound.
func (g *udpGSO) setup(fd int) error {
	prog := unix.SockFprog{Len: uint16(len(gsoDropAll)), Filter: &gsoDropAll[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		return err
	}
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, gsoSndBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, gsoSndBuf)
	}
	if g.hasMark {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(g.mark)); err != nil {
			return err
		}
	}
	return g.setupIP(fd)
}

// setupIP gives a GSO socket the outer header fields of the raw socket's
// packets: TTL, TOS and DF (IPv4), hop limit and traffic class (IPv6,
// never fragmented, as the raw socket does not).
func (g *udpGSO) setupIP(fd int) error {
	if g.v6 {
		return errors.Join(
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, int(g.ttl)),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TCLASS, int(g.tos)),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1))
	}
	pmtu := unix.IP_PMTUDISC_DONT
	if g.df {
		pmtu = unix.IP_PMTUDISC_DO
	}
	return errors.Join(
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TTL, int(g.ttl)),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TOS, int(g.tos)),
		unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, pmtu))
}

// setMark gives the GSO sockets, those open and those to come, a mark.
func (g *udpGSO) setMark(mark uint32) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mark, g.hasMark = mark, true
	var err error
	for _, s := range g.socks {
		if s.fd >= 0 {
			err = errors.Join(err, unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)))
		}
	}
	return err
}

// close closes the GSO sockets; later runs go through the raw socket
// (which is closed too, so they fail there).
func (g *udpGSO) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for i := range g.socks {
		if g.socks[i].fd >= 0 {
			unix.Close(g.socks[i].fd)
		}
		g.socks[i] = gsoSock{fd: -1}
	}
}
