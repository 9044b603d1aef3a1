//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// Tunnel ports: gre, ip6gre, erspan, ip6erspan, vxlan and geneve.
//
// gvs encapsulates and decapsulates itself, so no kernel tunnel module is
// needed (many kernels lack GRE). The underlay is the host's own routing:
// encapsulated packets, outer IP header included, are handed to the
// kernel through a raw IP socket (IP_HDRINCL), which routes them by their
// destination; tunnel packets arrive through one shared socket per kind
// (a raw IPPROTO_GRE socket for GRE and ERSPAN, a UDP socket per port
// number for VXLAN and Geneve), and each is given to the port whose
// remote_ip, local_ip, key and type it carries. Packets that match no
// port are dropped and counted, never injected into a bridge.

func init() {
	for t := range tunnelTypes {
		Register(t, openTunnel)
	}
}

// Drops by cause, for coverage/show.
var (
	tunnelNoRoute   = coverage.New("tunnel_no_route")
	tunnelUnknown   = coverage.New("tunnel_unknown_remote")
	tunnelMalformed = coverage.New("tunnel_malformed")
	tunnelTooBig    = coverage.New("tunnel_too_big")
)

const (
	tunnelBatch = 32
	// tunnelRecvBuf holds the largest packet a port forwards, with room
	// for outer headers: longer packets arrive cut and are dropped.
	tunnelRecvBuf = MaxFrame + packet.MaxTunnelHeader + packet.IPv4MaxLen
	// tunnelSourceRecheck is how often a port without local_ip asks the
	// kernel again which source address its route uses.
	tunnelSourceRecheck = 2 * time.Second
)

// tunnelPort is an open tunnel port.
type tunnelPort struct {
	name, typ string
	opts      *tunnelOptions
	ul        *underlay

	tx tunnelWriter
	rx rxRing
	// udp: frames lent by a UDP underlay's reader (VXLAN, Geneve); rx
	// holds the rest (GRE, and frames received natively).
	udp    *udpRxQueue
	done   chan struct{}
	closed atomic.Bool
	stats  counters
	// gro: the port joins the TCP segments it receives (tunnelOptions.gro:
	// GRE, VXLAN and Geneve unless options:gvs-gro=false).
	gro bool
	// ktun and kstats: the kernel fast path's view of the port
	// (tunnel_fastpath_linux.go) and what it counted.
	ktun   kernelTunnel
	kstats kernelStats
}

var _ CopyQueued = (*tunnelPort)(nil)
var _ SuperFrameSource = (*tunnelPort)(nil)

func openTunnel(cfg Config) (Netdev, error) {
	o, err := parseTunnelOptions(cfg)
	if err != nil {
		return nil, err
	}
	p := &tunnelPort{name: cfg.Name, typ: cfg.Type, opts: o, done: make(chan struct{})}
	p.gro = o.gro
	if err := p.tx.init(cfg.Name, o); err != nil {
		return nil, err
	}
	p.rx.init()
	if p.ul, err = acquireUnderlay(p); err != nil {
		p.tx.close()
		return nil, err
	}
	return p, nil
}

func (p *tunnelPort) Name() string { return p.name }
func (p *tunnelPort) Type() string { return p.typ }
func (p *tunnelPort) Stats() Stats { return p.kstats.add(p.stats.snapshot()) }

// Info: a tunnel has no kernel device; it is up while open.
func (p *tunnelPort) Info() Info { return Info{LinkUp: !p.closed.Load(), AdminUp: true} }

// NonBlocking marks the port: packets are sent with MSG_DONTWAIT.
func (p *tunnelPort) NonBlocking() {}

// CountTxDropped counts mirror copies the datapath dropped for want of
// room in the port's copy queue: each frame costs a trip through the
// kernel's IP output, so copies get a sender of their own (CopyQueued).
func (p *tunnelPort) CountTxDropped(n uint64) { p.stats.txDropped.Add(n) }

func (p *tunnelPort) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.done)
	p.ktun.close()
	releaseUnderlay(p)
	if p.udp != nil {
		p.udp.close() // gives back the buffers its waiting frames hold
	}
	return p.tx.close()
}

// ReadBatch returns frames the underlay's reader delivered to this port.
func (p *tunnelPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	return p.read(bufs, sizes, nil, nil)
}

// ReadBatchTunnel is ReadBatch that also returns each frame's tunnel
// metadata in tun (if not nil, as long as bufs).
func (p *tunnelPort) ReadBatchTunnel(bufs [][]byte, sizes []int, tun []packet.TunnelMeta) (int, error) {
	return p.read(bufs, sizes, nil, tun)
}

// PassesSuperFrames reports whether the port joins segments
// (SuperFrameSource): GRE, VXLAN and Geneve ports do, unless told not to.
func (p *tunnelPort) PassesSuperFrames() bool { return p.gro }

// ReadBatchOffload is ReadBatch with consecutive TCP segments of a flow
// joined into super-frames (tunnel_gro.go, ports with gro),
// described in offs.
func (p *tunnelPort) ReadBatchOffload(bufs [][]byte, sizes []int, offs []Offload) (int, error) {
	return p.ReadBatchTunnelOffload(bufs, sizes, offs, nil)
}

// ReadBatchTunnelOffload is ReadBatchOffload with each frame's tunnel
// metadata in tun (if not nil); only segments with the same metadata
// join.
func (p *tunnelPort) ReadBatchTunnelOffload(bufs [][]byte, sizes []int, offs []Offload, tun []packet.TunnelMeta) (int, error) {
	if _, err := batchSizeFor(p.name, bufs, sizes, MaxSuperFrame); err != nil {
		return 0, err
	}
	if len(offs) < min(len(bufs), len(sizes)) {
		return 0, fmt.Errorf("port %s: %d offload slots for %d buffers", p.name, len(offs), min(len(bufs), len(sizes)))
	}
	return p.read(bufs, sizes, offs, tun)
}

// read waits for frames and takes them; with offs, joining segments.
func (p *tunnelPort) read(bufs [][]byte, sizes []int, offs []Offload, tun []packet.TunnelMeta) (int, error) {
	n, err := batchSize(p.name, bufs, sizes)
	if err != nil {
		return 0, err
	}
	var udpWake chan struct{} // nil (never ready) without a UDP queue
	if p.udp != nil {
		udpWake = p.udp.wake
	}
	for {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if k, c := p.takeAll(bufs[:n], sizes, offs, tun); k > 0 {
			p.stats.addRx(c)
			return k, nil
		}
		select {
		case <-p.rx.wake:
		case <-udpWake:
		case <-p.done:
			return 0, ErrClosed
		}
	}
}

// takeAll takes frames lent by the UDP underlay, then those copied into
// the ring, into the room left.
func (p *tunnelPort) takeAll(bufs [][]byte, sizes []int, offs []Offload, tun []packet.TunnelMeta) (int, batchCount) {
	join := p.gro && offs != nil
	k := 0
	var c batchCount
	if p.udp != nil {
		if k, c = p.udp.take(bufs, sizes, offs, tun, join); k == len(bufs) {
			return k, c
		}
	}
	k2, c2 := p.rx.take(bufs[k:], sizes[k:], from(offs, k), from(tun, k), join)
	return k + k2, c.plus(c2)
}

// rxWaiting is how many received frames wait for the port's thread.
func (p *tunnelPort) rxWaiting() int {
	n := int(p.rx.tail.Load() - p.rx.head.Load())
	if p.udp != nil {
		n += int(p.udp.tail.Load() - p.udp.head.Load())
	}
	return n
}

// from is s[k:], or empty when s is shorter.
func from[T any](s []T, k int) []T {
	return s[min(k, len(s)):]
}

// WriteBatch encapsulates and sends frames.
func (p *tunnelPort) WriteBatch(frames [][]byte) error {
	if p.closed.Load() {
		return ErrClosed
	}
	c := p.tx.send(frames, nil)
	p.stats.addTx(c)
	return nil
}

// Transmit encapsulates and sends b's frames, a flow-based port by each
// frame's tunnel metadata.
func (p *tunnelPort) Transmit(b *Batch) (TxResult, error) {
	if p.closed.Load() {
		return TxResult{Dropped: b.Len()}, ErrClosed
	}
	c := p.tx.send(b.Frames, b.Meta)
	p.stats.addTx(c)
	return c.result(), nil
}

// deliver hands a decapsulated frame, with its tunnel metadata, to the
// port's thread; it runs on the underlay's reader goroutine.
func (p *tunnelPort) deliver(inner []byte, md *packet.TunnelMeta) {
	if len(inner) > MaxFrame {
		p.stats.rxErrors.Add(1)
		tunnelTooBig.Inc()
		return
	}
	if !p.rx.put(inner, md) {
		p.stats.rxDropped.Add(1)
	}
}

// tunnelWriter is a port's transmit state: a raw IP socket into which
// whole IP packets are written (the kernel routes them), one header
// buffer and two iovecs (outer headers, then the frame) per frame.
type tunnelWriter struct {
	name     string
	opts     *tunnelOptions
	encap    *packet.Encap
	f        *os.File
	rc       syscall.RawConn
	checked  time.Time // last route source lookup (no local_ip)
	routeMu  sync.Mutex
	source   netip.Addr                                          // the outer source in use, for tnl/ports/show (under routeMu)
	route    int                                                 // UDP socket for route lookups, -1 with local_ip or once closed
	hdrs     [][packet.EthernetLen + packet.MaxTunnelHeader]byte // Ethernet header used natively only
	msgs     []unix.Mmsghdr
	iovs     [][2]unix.Iovec
	sizes    []int
	sa4      unix.RawSockaddrInet4
	sa6      unix.RawSockaddrInet6
	count    batchCount
	erspanV2 bool
	geneve   bool // frames carry the O bit of their tun_flags (sendFlows)
	// staged and sendStaged: the chunk to send and the function that
	// sends it, made once so that a send allocates no closure.
	staged     int
	sendStaged func(fd uintptr)

	nat    nativeTx
	direct directTx // straight to the kernel route's device: tnl_direct_linux.go
	native bool     // the messages are set up for native sending
	gso    udpGSO   // VXLAN and Geneve by the host's routing: tunnel_gso_linux.go

	// Where the next frames go: the remote (the sockets' destination and
	// the header's), the source when one is given (local_ip, or tun_src
	// for local_ip=flow) and the key; for a flow-based port they change
	// with the frames' tunnel metadata (see flow.go).
	remote   netip.Addr
	fixedSrc netip.Addr // invalid: the route's source (autoSrc)
	autoSrc  bool
	key      uint32
}

func (w *tunnelWriter) init(name string, o *tunnelOptions) error {
	w.name, w.opts = name, o
	w.sendStaged = func(fd uintptr) { w.sendChunk(fd, w.staged) }
	var err error
	if w.encap, err = packet.NewEncap(o.encap); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	w.erspanV2 = o.encap.Type == packet.TunnelERSPAN && o.encap.ERSPANVer == 2
	w.geneve = o.encap.Type == packet.TunnelGeneve
	w.gso.init(w.encap.Config())
	family := unix.AF_INET
	if o.v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return fmt.Errorf("%s: cannot open a raw IP socket for the tunnel's underlay: %w", name, err)
	}
	w.f = os.NewFile(uintptr(fd), name+"-underlay")
	if w.rc, err = w.f.SyscallConn(); err != nil {
		w.f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	w.remote, w.fixedSrc, w.autoSrc, w.key = o.encap.Dst, o.local, o.autoSrc, o.encap.Key
	w.setRemote(o.encap.Dst)
	w.hdrs = make([][packet.EthernetLen + packet.MaxTunnelHeader]byte, tunnelBatch)
	w.nat.fd = -1
	w.initDirect()
	w.msgs = make([]unix.Mmsghdr, tunnelBatch)
	w.iovs = make([][2]unix.Iovec, tunnelBatch)
	w.sizes = make([]int, tunnelBatch)
	for i := range w.msgs {
		w.msgs[i].Hdr.Iov = &w.iovs[i][0]
		w.msgs[i].Hdr.SetIovlen(2)
	}
	w.native = true
	w.setNames(false)
	w.route, w.source = -1, o.local
	if o.autoSrc {
		if w.route, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			w.direct.close()
			if w.nat.fd >= 0 {
				unix.Close(w.nat.fd)
			}
			w.f.Close()
			return fmt.Errorf("%s: cannot open a socket for route lookups: %w", name, err)
		}
		w.refreshSource(time.Now())
	}
	return nil
}

// setNames points every message at the native link-layer address or
// at the remote's IP address, when the kind of underlay changes.
func (w *tunnelWriter) setNames(native bool) {
	if native == w.native {
		return
	}
	w.native = native
	for i := range w.msgs {
		h := &w.msgs[i].Hdr
		switch {
		case native:
			h.Name = (*byte)(unsafe.Pointer(&w.nat.sll))
			h.Namelen = unix.SizeofSockaddrLinklayer
		case w.opts.v6:
			h.Name = (*byte)(unsafe.Pointer(&w.sa6))
			h.Namelen = unix.SizeofSockaddrInet6
		default:
			h.Name = (*byte)(unsafe.Pointer(&w.sa4))
			h.Namelen = unix.SizeofSockaddrInet4
		}
	}
}

func (w *tunnelWriter) close() error {
	w.routeMu.Lock()
	if w.route >= 0 {
		unix.Close(w.route)
		w.route = -1
	}
	if w.nat.fd >= 0 {
		unix.Close(w.nat.fd)
		w.nat.fd = -1
	}
	w.direct.close()
	w.routeMu.Unlock()
	w.gso.close()
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", w.name, err)
	}
	return nil
}

// refreshSource asks the kernel which source address the route to the
// remote uses, for a port without local_ip: the outer header (and a UDP
// checksum) needs it, and received packets are matched to it. A lookup
// that fails keeps the last address; the kernel then refuses to route
// and the frames are counted as having no route.
func (w *tunnelWriter) refreshSource(now time.Time) {
	if !w.autoSrc || now.Sub(w.checked) < tunnelSourceRecheck {
		return
	}
	w.checked = now
	w.routeMu.Lock() // Close may run at the same time
	defer w.routeMu.Unlock()
	if w.route < 0 {
		return
	}
	src, err := routeSource(w.route, w.remote)
	if err == nil && src != w.encap.Config().Src {
		_ = w.encap.SetSource(src)
	}
	if err == nil {
		w.source = src
	}
}

// routeSource returns the source address the kernel would use towards
// dst: connecting a UDP socket routes without sending anything. The
// socket is the port's own, opened in gvsd's network namespace, so the
// answer is that namespace's whatever thread asks.
func routeSource(fd int, dst netip.Addr) (netip.Addr, error) {
	var sa unix.Sockaddr
	if dst.Is6() { // As4 of an IPv6 address panics: build only the one needed
		sa = &unix.SockaddrInet6{Port: 9, Addr: dst.As16()}
	} else {
		sa = &unix.SockaddrInet4{Port: 9, Addr: dst.As4()}
	}
	if err := unix.Connect(fd, sa); err != nil {
		return netip.Addr{}, err
	}
	switch a := must(unix.Getsockname(fd)).(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(a.Addr), nil
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(a.Addr).Unmap(), nil
	}
	return netip.Addr{}, errors.New("no source address")
}

// must drops the error of a call whose result is checked by type.
func must[T any](v T, _ error) T { return v }

// send encapsulates and sends frames, and returns their tally. meta,
// if not nil, is the frames' metadata, whose tunnel metadata a
// flow-based port sends by.
func (w *tunnelWriter) send(frames [][]byte, meta []FrameMeta) batchCount {
	now := time.Now()
	var ts uint32
	if w.erspanV2 {
		ts = uint32(now.UnixMicro() / 100) // ERSPAN III granularity: 100 µs
	}
	w.count = batchCount{}
	if w.opts.flowBased() || w.geneve {
		w.sendFlows(frames, meta, now, ts)
	} else {
		w.sendRun(frames, now, ts)
	}
	w.clearIovs()
	return w.count
}

// sendRun sends frames that all go to the current remote.
func (w *tunnelWriter) sendRun(frames [][]byte, now time.Time, ts uint32) {
	if r, s, ok := w.nativeRoute(); ok {
		w.sendNative(frames, r, s, now, ts)
		return
	}
	if w.native {
		w.checked = time.Time{} // the source the kernel picks may differ
	}
	w.setNames(false)
	w.refreshSource(now)
	w.sendRouted(frames, ts, now)
}

// clearIovs drops the references to the frames sent.
func (w *tunnelWriter) clearIovs() {
	for i := range w.iovs {
		w.iovs[i][1] = unix.Iovec{}
	}
}

// stage builds the outer headers of a chunk's frames and returns how many
// are ready to send; frames that cannot be encapsulated are counted.
func (w *tunnelWriter) stage(chunk [][]byte, ts uint32) int {
	k := 0
	for _, f := range chunk {
		if len(f) < packet.EthernetLen {
			w.count.errors++
			continue
		}
		n, err := w.encap.Build(w.hdrs[k][packet.EthernetLen:], f, ts)
		if err != nil {
			tunnelTooBig.Inc()
			w.count.dropped++
			continue
		}
		w.iovs[k][0].Base = &w.hdrs[k][packet.EthernetLen]
		w.iovs[k][0].SetLen(n)
		w.iovs[k][1].Base = &f[0]
		w.iovs[k][1].SetLen(len(f))
		w.sizes[k] = len(f)
		k++
	}
	return k
}

// sendChunk sends staged frames [0,k), as afpacketWriter.sendChunk does:
// a refused frame is counted by its cause and skipped; a full socket
// buffer drops the rest at once.
func (w *tunnelWriter) sendChunk(fd uintptr, k int) {
	for i := 0; i < k; {
		sent, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&w.msgs[i])), uintptr(k-i), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
		case errno == unix.ENOBUFS || errno == unix.EAGAIN:
			w.count.dropped += uint64(k - i)
			return
		case errno != 0:
			w.countRefused(errno)
			i++
		case sent == 0:
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

// countRefused counts a frame the kernel would not send, by cause.
func (w *tunnelWriter) countRefused(errno syscall.Errno) {
	switch errno {
	case unix.EMSGSIZE:
		tunnelTooBig.Inc()
	case unix.ENETUNREACH, unix.EHOSTUNREACH, unix.EADDRNOTAVAIL, unix.EINVAL:
		tunnelNoRoute.Inc()
	default:
		w.count.errors++
		return
	}
	w.count.dropped++
}

// ErrTunnelConflict reports a tunnel port that another port's
// configuration already covers.
var ErrTunnelConflict = errors.New("tunnel configuration conflicts with another port")

// underlayKey names a receiving socket: GRE (port 0) or a UDP port, over
// IPv4 or IPv6.
type underlayKey struct {
	v6      bool
	udpPort uint16
}

func (k underlayKey) String() string {
	v := ""
	if k.v6 {
		v = "ip6"
	}
	if k.udpPort == 0 {
		return v + "gre_sys"
	}
	return fmt.Sprintf("%sudp_sys_%d", v, k.udpPort)
}

// listenerName names a receiving socket as OVS names its tunnel
// datapath port.
func listenerName(k underlayKey, t packet.TunnelType) string {
	v := ""
	if k.v6 {
		v = "ip6"
	}
	switch t {
	case packet.TunnelVXLAN:
		return fmt.Sprintf("%svxlan_sys_%d", v, k.udpPort)
	case packet.TunnelGeneve:
		return fmt.Sprintf("%sgenev_sys_%d", v, k.udpPort)
	}
	return k.String()
}

var (
	underlaysMu sync.Mutex
	underlays   = map[underlayKey]*underlay{}
	// liveUnderlays is a copy of underlays for the native receive path,
	// which must not take underlaysMu.
	liveUnderlays atomic.Pointer[map[underlayKey]*underlay]
)

// publishUnderlays copies underlays for readers; the caller holds
// underlaysMu.
func publishUnderlays() {
	m := make(map[underlayKey]*underlay, len(underlays))
	for k, u := range underlays {
		m[k] = u
	}
	liveUnderlays.Store(&m)
}

// liveUnderlay returns the receiving socket for k, if any port uses it.
// It does not allocate.
func liveUnderlay(k underlayKey) *underlay {
	if m := liveUnderlays.Load(); m != nil {
		return (*m)[k]
	}
	return nil
}

func keyFor(o *tunnelOptions) underlayKey {
	k := underlayKey{v6: o.v6}
	if o.encap.Type == packet.TunnelVXLAN || o.encap.Type == packet.TunnelGeneve {
		k.udpPort = o.dstPort
	}
	return k
}

// acquireUnderlay attaches p to its receiving socket, opening it for the
// first port that needs it.
func acquireUnderlay(p *tunnelPort) (*underlay, error) {
	underlaysMu.Lock()
	defer underlaysMu.Unlock()
	k := keyFor(p.opts)
	u := underlays[k]
	if u == nil && k.udpPort != 0 && udpUnderlays() >= MaxUDPUnderlays {
		return nil, fmt.Errorf("%s: too many tunnel UDP ports: VXLAN and Geneve ports receive on at most %d different dst_port values (IPv4 and IPv6 counted apart)", p.name, MaxUDPUnderlays)
	}
	if u == nil {
		var err error
		if u, err = openUnderlay(k); err != nil {
			return nil, fmt.Errorf("%s: %w", p.name, err)
		}
		u.name = listenerName(k, p.opts.encap.Type)
		underlays[k] = u
	}
	old := u.portList()
	for _, q := range old {
		if err := conflict(p, q); err != nil {
			return nil, err
		}
	}
	if u.udp != nil {
		p.udp = newUDPRxQueue(u.udp.pool)
	}
	ports := append(append(make([]*tunnelPort, 0, len(old)+1), old...), p)
	u.ports.Store(&ports)
	publishUnderlays()
	return u, nil
}

// conflict refuses a port that would share a UDP port with another
// tunnel type, or receive exactly what another port receives.
func conflict(p, q *tunnelPort) error {
	a, b := p.opts, q.opts
	if a.dstPort != 0 && keyFor(a).udpPort != 0 && a.encap.Type != b.encap.Type {
		return fmt.Errorf("%s: %w: UDP port %d is used by %s port %s", p.name, ErrTunnelConflict, a.dstPort, q.typ, q.name)
	}
	if a.sameReceive(b) {
		return fmt.Errorf("%s: %w: %s port %s has the same remote_ip %s, local_ip and key %s", p.name, ErrTunnelConflict, q.typ, q.name,
			pick(a.remoteFlow, "flow", a.remote.String()), pick(a.inKeyFlow, "flow", strconv.FormatUint(uint64(a.inKey), 10)))
	}
	return nil
}

// MaxUDPUnderlays bounds the UDP sockets tunnels receive on, one per
// dst_port and address family: each holds its receive buffers, 12 MiB,
// from its first port to its last.
const MaxUDPUnderlays = 16

// udpUnderlays counts the open UDP underlays; the caller holds
// underlaysMu.
func udpUnderlays() int {
	n := 0
	for k := range underlays {
		if k.udpPort != 0 {
			n++
		}
	}
	return n
}

// releaseUnderlay detaches p, closing the socket after its last port.
func releaseUnderlay(p *tunnelPort) {
	underlaysMu.Lock()
	defer underlaysMu.Unlock()
	u := p.ul
	if u == nil {
		return
	}
	old := u.portList()
	ports := make([]*tunnelPort, 0, len(old))
	for _, q := range old {
		if q != p {
			ports = append(ports, q)
		}
	}
	u.ports.Store(&ports)
	if len(ports) == 0 {
		u.close()
		delete(underlays, u.key)
	}
	publishUnderlays()
}

// TunnelPorts describes the receiving sockets and the ports on each, for
// `ovs-appctl tnl/ports/show`, sorted by name.
func TunnelPorts() []TunnelListener {
	underlaysMu.Lock()
	defer underlaysMu.Unlock()
	out := make([]TunnelListener, 0, len(underlays))
	for k, u := range underlays {
		l := TunnelListener{Name: u.name, Proto: "ip proto 47"}
		if k.udpPort != 0 {
			l.Proto = fmt.Sprintf("udp port %d", k.udpPort)
		}
		for _, p := range u.portList() {
			l.Ports = append(l.Ports, p.info())
		}
		sort.Slice(l.Ports, func(i, j int) bool { return l.Ports[i].Name < l.Ports[j].Name })
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// TunnelListener is one receiving socket and the ports it serves.
type TunnelListener struct {
	Name  string // as OVS names its tunnel datapath ports: gre_sys, vxlan_sys_4789, ...
	Proto string // what it receives
	Ports []TunnelPortInfo
}

// TunnelPortInfo is how one tunnel port's packets leave and what it
// accepts.
type TunnelPortInfo struct {
	Name, Type    string
	Remote, Local netip.Addr // Local: local_ip, invalid if unset
	Source        netip.Addr // the outer source address in use
	InKey, OutKey uint32
	// The options that say "flow" (Remote, Local, InKey, OutKey unset).
	RemoteFlow, LocalFlow, InKeyFlow, OutKeyFlow bool
	DstPort                                      uint16 // UDP tunnels
	// How packets leave now: natively through gvs internal port Dev (to
	// gateway GW, if any), or by the host's routing.
	Native bool
	Dev    string
	GW     netip.Addr
}

func (p *tunnelPort) info() TunnelPortInfo {
	o := p.opts
	i := TunnelPortInfo{Name: p.name, Type: p.typ, Remote: o.remote, Local: o.local,
		InKey: o.inKey, OutKey: o.encap.Key,
		RemoteFlow: o.remoteFlow, LocalFlow: o.localFlow, InKeyFlow: o.inKeyFlow, OutKeyFlow: o.outKeyFlow}
	if o.encap.Type == packet.TunnelVXLAN || o.encap.Type == packet.TunnelGeneve {
		i.DstPort = o.dstPort
	}
	p.tx.routeMu.Lock()
	i.Source = p.tx.source
	p.tx.routeMu.Unlock()
	if r, _, ok := p.tx.nativeRoute(); ok { // as the next packet will leave
		i.Native, i.Dev, i.GW, i.Source = true, r.Dev, r.GW, r.Src
		if o.local.IsValid() {
			i.Source = o.local
		}
	}
	return i
}

func unixSockaddr6(a netip.Addr) unix.RawSockaddrInet6 {
	return unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
}

func unixSockaddr4(a netip.Addr) unix.RawSockaddrInet4 {
	return unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.As4()}
}
