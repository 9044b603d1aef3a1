//go:build linux

package netdev

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/coverage"
	"gvs/internal/packet"
)

// OVS's native tunnelling underlay: the underlay address sits on a gvs
// internal port (say `ul`, the bridge ul's own port, whose other ports
// are the physical NICs). gvs then
//
//   - sends a tunnel's packets as Ethernet frames into that port's bridge,
//     as if the host had sent them through `ul`: queued for the port's
//     reader, which takes them as the port's traffic without a trip
//     through the kernel (tnl_inject_linux.go), with the next hop's MAC
//     address from its own neighbour cache (tnl_neigh.go) and the route
//     from its own route table (tnl_router.go);
//   - takes the tunnel packets that its bridge delivers to `ul`, addressed
//     to one of `ul`'s addresses, off before the kernel sees them, and
//     decapsulates them itself (tapPort.write calls nativeDev.intercept);
//   - learns next hops from the ARP packets (IPv4) and the neighbor
//     advertisements and solicitations (IPv6, tnl_nd.go) delivered to
//     `ul`, and asks for missing ones with ARP requests or neighbor
//     solicitations sent out of `ul`.
//
// Both IPv4 and IPv6 underlays work this way.

var (
	tunnelNoNeigh   = coverage.New("tunnel_neigh_miss")
	tunnelNativeRx  = coverage.New("tunnel_native_rx")
	tunnelNativeTx  = coverage.New("tunnel_native_tx")
	tunnelARPQuery  = coverage.New("tunnel_arp_request")
	tunnelNDQuery   = coverage.New("tunnel_nd_solicit")
	tunnelNeighLrnd = coverage.New("tunnel_neigh_learned")
)

const (
	// kernelSyncInterval is how often the route table copies the kernel's
	// routes and the internal ports' addresses.
	kernelSyncInterval = time.Second
	// arpInterval is how often a tunnel port asks again for a missing
	// next hop (ARP request or neighbor solicitation).
	arpInterval = time.Second
)

// nativeDev is a gvs internal port that may carry native tunnels.
type nativeDev struct {
	name  string
	state atomic.Pointer[nativeState] // nil while the device is not in gvsd's namespace
	// wakeReader wakes the port's reader when it waits in the netpoller
	// (set once at registration; nil: frames are sent through the
	// kernel device with AF_PACKET instead of queued).
	wakeReader func()
	inject     atomic.Pointer[nativeInject] // made on first use
}

// nativeState is what the kernel said about the device at the last sync.
type nativeState struct {
	ifindex int
	mac     [6]byte
	mtu     int
	addrs   []netip.Prefix
	dev     *nativeDev // the port it describes (nil in tests that build one)
}

// owns reports whether addr is one of the device's addresses.
func (s *nativeState) owns(addr netip.Addr) bool {
	for _, a := range s.addrs {
		if a.Addr() == addr {
			return true
		}
	}
	return false
}

var (
	nativeMu   sync.Mutex
	nativeDevs atomic.Pointer[map[string]*nativeDev]
	syncStop   chan struct{}
	// nativeSyncOff, set by tests that give devices their state
	// themselves, keeps the kernel sync from starting.
	nativeSyncOff bool
)

// registerNative makes an internal port a candidate underlay; wake
// wakes its reader (see nativeDev.wakeReader).
func registerNative(name string, wake func()) *nativeDev {
	nativeMu.Lock()
	defer nativeMu.Unlock()
	d := &nativeDev{name: name, wakeReader: wake}
	m := copyNative()
	m[name] = d
	nativeDevs.Store(&m)
	if syncStop == nil && !nativeSyncOff {
		syncStop = make(chan struct{})
		ev, err := openRouteEvents()
		if err != nil {
			tunnelLog.Warn("route table: no notice of the kernel's changes, copied every %v: %v", kernelSyncInterval, err)
		}
		go syncKernelLoop(syncStop, ev)
	}
	return d
}

// unregisterNative forgets d; the sync stops with the last device.
func unregisterNative(d *nativeDev) {
	if d == nil {
		return
	}
	nativeMu.Lock()
	defer nativeMu.Unlock()
	m := copyNative()
	if m[d.name] == d {
		delete(m, d.name)
	}
	nativeDevs.Store(&m)
	if len(m) == 0 && syncStop != nil {
		close(syncStop)
		syncStop = nil
		tunnelRouter.setCached(nil)
	}
}

func copyNative() map[string]*nativeDev {
	m := map[string]*nativeDev{}
	if old := nativeDevs.Load(); old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	return m
}

// nativeDevNamed returns the internal port named name, if gvs has one in
// its namespace. It does not allocate.
func nativeDevNamed(name string) (*nativeDev, *nativeState) {
	m := nativeDevs.Load()
	if m == nil {
		return nil, nil
	}
	d := (*m)[name]
	if d == nil {
		return nil, nil
	}
	s := d.state.Load()
	if s == nil {
		return nil, nil
	}
	return d, s
}

// NativeDevAddrs returns the addresses of gvs internal port name, for
// ovs/route/add; false if gvs has no such port in its namespace.
func NativeDevAddrs(name string) ([]netip.Prefix, bool) {
	_, s := nativeDevNamed(name)
	if s == nil {
		return nil, false
	}
	return s.addrs, true
}

// syncKernelLoop copies the kernel's routes and addresses every
// kernelSyncInterval and, with ev, as soon as the kernel reports a
// change of a link, an address or a route, as OVS's route table follows
// the kernel's notices: until a new underlay address is seen, a tunnel's
// packets take the host's routing (through the kernel, whose neighbour
// entry may name another of the peer's devices), so a poll alone left
// up to a second of a tunnel's first traffic on that path.
func syncKernelLoop(stop chan struct{}, ev *routeEvents) {
	syncLoop(stop, ev, SyncTunnelRoutes)
}

// syncLoop is syncKernelLoop with the copy as a parameter (tests).
func syncLoop(stop chan struct{}, ev *routeEvents, copyRoutes func()) {
	t := time.NewTicker(kernelSyncInterval)
	defer t.Stop()
	kick := make(chan struct{}, 1)
	if ev != nil {
		defer ev.close()
		go func() {
			buf := make([]byte, 16<<10)
			for ev.wait(buf) {
				select {
				case kick <- struct{}{}:
				default: // a copy is due already: it sees this change too
				}
			}
		}()
	}
	for {
		copyRoutes()
		select {
		case <-stop:
			return
		case <-t.C:
		case <-kick:
			tunnelRouteEvent.Inc()
			// Notices come in bursts (one transaction that adds a
			// thousand internal ports makes a thousand TAPs): each copy
			// reads every link and address, so copies back to back took
			// half of gvsd's CPU while the TAPs were made. After a short
			// settle one copy sees the whole burst, or most of it.
			select {
			case <-stop:
				return
			case <-time.After(routeNoticeSettle):
			}
		}
	}
}

// routeNoticeSettle is how long a notice waits for more before the copy:
// far less than the tick, so a new underlay address is still seen at
// once (TestRouteCopyFollowsKernelNotices).
const routeNoticeSettle = 25 * time.Millisecond

// tunnelRouteEvent counts copies of the kernel's routes made on its
// notice of a change (rather than by the clock).
var tunnelRouteEvent = coverage.New("tunnel_route_kernel_change")

// routeEvents is a netlink socket that the kernel tells of changes to
// links, addresses and routes; the messages themselves are not read,
// only their arrival (the copy reads the whole table).
type routeEvents struct{ f *os.File }

// openRouteEvents subscribes, in the calling thread's network
// namespace, to the kernel's link, address and route changes.
func openRouteEvents() (*routeEvents, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR |
		unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	return &routeEvents{f: os.NewFile(uintptr(fd), "netlink:route-events")}, nil
}

// wait returns true when the kernel reported a change (or that it had
// to drop notices: ENOBUFS), false once the socket is closed.
func (e *routeEvents) wait(buf []byte) bool {
	_, err := e.f.Read(buf)
	return err == nil || errors.Is(err, unix.ENOBUFS)
}

func (e *routeEvents) close() { e.f.Close() }

var syncMu sync.Mutex

// SyncTunnelRoutes copies the kernel's routes into the route table and
// the internal ports' addresses into their state now (ovs/route/show
// calls it so that what it shows is current).
func SyncTunnelRoutes() {
	syncMu.Lock()
	defer syncMu.Unlock()
	ifs, err := net.Interfaces()
	if err != nil {
		tunnelLog.Warn("route table: cannot list interfaces: %v", err)
		return
	}
	byIndex, err := kernelAddrs()
	if err != nil {
		tunnelLog.Warn("route table: cannot list addresses: %v", err)
		return
	}
	names := make(map[int]string, len(ifs))
	addrs := make(map[string][]netip.Prefix, len(ifs))
	for _, ifc := range ifs {
		names[ifc.Index] = ifc.Name
		addrs[ifc.Name] = byIndex[ifc.Index]
	}
	if m := nativeDevs.Load(); m != nil {
		for _, d := range *m {
			st := nativeStateOf(d.name, ifs, addrs)
			if st != nil {
				st.dev = d
			}
			d.state.Store(st)
		}
	}
	routes, err := kernelRoutes(names, addrs)
	if err != nil {
		tunnelLog.Warn("route table: cannot read the kernel's routes: %v", err)
		return
	}
	if nativeDevs.Load() != nil && len(*nativeDevs.Load()) > 0 {
		tunnelRouter.setCached(routes)
	}
}

func nativeStateOf(name string, ifs []net.Interface, addrs map[string][]netip.Prefix) *nativeState {
	for _, ifc := range ifs {
		if ifc.Name == name && len(ifc.HardwareAddr) == 6 {
			return &nativeState{ifindex: ifc.Index, mac: [6]byte(ifc.HardwareAddr), mtu: ifc.MTU, addrs: addrs[name]}
		}
	}
	return nil
}

// kernelAddrs reads every address of the namespace in one dump, by
// ifindex. (net.Interface.Addrs dumps them all for each interface: with
// thousands of ports each copy of the routes was quadratic.) For a
// point-to-point address the local one is kept, as net does.
func kernelAddrs() (map[int][]netip.Prefix, error) {
	rib, err := syscall.NetlinkRIB(unix.RTM_GETADDR, unix.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, err
	}
	out := make(map[int][]netip.Prefix)
	for i := range msgs {
		if idx, p, ok := parseKernelAddr(&msgs[i]); ok {
			out[idx] = append(out[idx], p)
		}
	}
	return out, nil
}

// parseKernelAddr decodes one RTM_NEWADDR: the device's ifindex and the
// address with its prefix length.
func parseKernelAddr(m *syscall.NetlinkMessage) (int, netip.Prefix, bool) {
	if m.Header.Type != unix.RTM_NEWADDR || len(m.Data) < unix.SizeofIfAddrmsg {
		return 0, netip.Prefix{}, false
	}
	family, plen := m.Data[0], int(m.Data[1])
	index := int(binary.NativeEndian.Uint32(m.Data[4:]))
	var addr, local []byte
	eachAttr(m.Data[unix.SizeofIfAddrmsg:], func(typ uint16, data []byte) {
		switch typ {
		case unix.IFA_ADDRESS:
			addr = data
		case unix.IFA_LOCAL:
			local = data
		}
	})
	if local != nil {
		addr = local
	}
	var ip netip.Addr
	switch {
	case family == unix.AF_INET && len(addr) == 4:
		ip = netip.AddrFrom4([4]byte(addr))
	case family == unix.AF_INET6 && len(addr) == 16:
		ip = netip.AddrFrom16([16]byte(addr))
	default:
		return 0, netip.Prefix{}, false
	}
	return index, netip.PrefixFrom(ip, plen), true
}

// kernelRoutes reads the kernel's unicast and local routes of the main
// and local tables, as OVS's route table keeps them.
func kernelRoutes(names map[int]string, addrs map[string][]netip.Prefix) ([]Route, error) {
	var out []Route
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		rib, err := syscall.NetlinkRIB(unix.RTM_GETROUTE, family)
		if err != nil {
			return nil, err
		}
		msgs, err := syscall.ParseNetlinkMessage(rib)
		if err != nil {
			return nil, err
		}
		for i := range msgs {
			if r, ok := parseKernelRoute(&msgs[i], names, addrs); ok && len(out) < maxRoutes {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

func parseKernelRoute(m *syscall.NetlinkMessage, names map[int]string, addrs map[string][]netip.Prefix) (Route, bool) {
	if m.Header.Type != unix.RTM_NEWROUTE || len(m.Data) < unix.SizeofRtMsg {
		return Route{}, false
	}
	rtm := (*[unix.SizeofRtMsg]byte)(m.Data[:unix.SizeofRtMsg])
	family, dstLen, table, typ := rtm[0], int(rtm[1]), rtm[4], rtm[7]
	if (table != unix.RT_TABLE_MAIN && table != unix.RT_TABLE_LOCAL) ||
		(typ != unix.RTN_UNICAST && typ != unix.RTN_LOCAL) {
		return Route{}, false
	}
	attrs, err := syscall.ParseNetlinkRouteAttr(m)
	if err != nil {
		return Route{}, false
	}
	var r Route
	var dst netip.Addr
	for _, a := range attrs {
		switch a.Attr.Type {
		case unix.RTA_DST:
			dst, _ = netip.AddrFromSlice(a.Value)
		case unix.RTA_GATEWAY:
			r.GW, _ = netip.AddrFromSlice(a.Value)
		case unix.RTA_PREFSRC:
			r.Src, _ = netip.AddrFromSlice(a.Value)
		case unix.RTA_OIF:
			if len(a.Value) == 4 {
				r.Dev = names[int(binary.NativeEndian.Uint32(a.Value))]
			}
		}
	}
	if r.Dev == "" {
		return Route{}, false
	}
	if !dst.IsValid() {
		dst = netip.IPv4Unspecified()
		if family == unix.AF_INET6 {
			dst = netip.IPv6Unspecified()
		}
	}
	r.Prefix = netip.PrefixFrom(dst, dstLen).Masked()
	r.Local = typ == unix.RTN_LOCAL
	if r.Local && !r.Src.IsValid() {
		// A local route's own source, as OVS takes it, is its preferred
		// source (127.0.0.1 for 127.0.0.0/8), else its address.
		r.Src = dst
	}
	if !r.Src.IsValid() {
		via := dst
		if r.GW.IsValid() {
			via = r.GW
		}
		if r.Src, _ = sourceFor(via, addrs[r.Dev]); !r.Src.IsValid() {
			r.Src = firstAddr(addrs[r.Dev], dst.Is4())
		}
	}
	return r, r.Src.IsValid()
}

func firstAddr(as []netip.Prefix, v4 bool) netip.Addr {
	for _, a := range as {
		if a.Addr().Is4() == v4 {
			return a.Addr()
		}
	}
	return netip.Addr{}
}

// intercept runs on a tapPort's transmit path, before frames reach the
// kernel: it learns next hops from ARP and keeps the tunnel packets for
// gvs. It returns the frames left for the kernel (in kept's storage,
// which it grows when a batch is larger than any before).
func (d *nativeDev) intercept(frames [][]byte, meta []FrameMeta, kept *[][]byte, keptMeta *[]FrameMeta) ([][]byte, []FrameMeta) {
	if d == nil {
		return frames, meta
	}
	s := d.state.Load()
	if s == nil || len(s.addrs) == 0 {
		// Not an underlay (yet): only learn, so that the cache is ready
		// before the first route sync sees the device's address.
		for _, f := range frames {
			d.snoop(f)
		}
		return frames, meta
	}
	out, outMeta := (*kept)[:0], (*keptMeta)[:0]
	for i, f := range frames {
		super := i < len(meta) && meta[i].Off.IsSuper()
		if !super && d.consume(s, f) {
			continue
		}
		out = append(out, f)
		if i < len(meta) {
			outMeta = append(outMeta, meta[i])
		}
	}
	*kept, *keptMeta = out[:0], outMeta[:0]
	return out, outMeta
}

// consume snoops ARP and neighbour discovery, and decapsulates tunnel
// packets addressed to the device; true means the frame was gvs's
// (delivered or dropped). The kernel sees the ARP and ND packets too.
func (d *nativeDev) consume(s *nativeState, f []byte) bool {
	if len(f) < packet.EthernetLen {
		return false
	}
	switch binary.BigEndian.Uint16(f[12:14]) {
	case packet.EtherTypeARP:
		d.snoop(f)
		return false
	case packet.EtherTypeIPv4:
		return decapNative(s, f[packet.EthernetLen:], false)
	case packet.EtherTypeIPv6:
		if d.snoop(f) {
			return false
		}
		return decapNative(s, f[packet.EthernetLen:], true)
	}
	return false
}

// snoop learns the sender of an ARP request or reply, or the neighbour
// an IPv6 neighbor advertisement or solicitation names; true if the
// frame taught the cache.
func (d *nativeDev) snoop(f []byte) bool {
	if len(f) < packet.EthernetLen {
		return false
	}
	var ip netip.Addr
	var mac [6]byte
	var ok bool
	switch binary.BigEndian.Uint16(f[12:14]) {
	case packet.EtherTypeARP:
		ip, mac, ok = ParseARPNeighbour(f)
	case packet.EtherTypeIPv6:
		ip, mac, ok = ParseNDNeighbour(f)
	}
	if !ok {
		return false
	}
	if _, known := tunnelNeighbours.Lookup(ip); !known {
		tunnelNeighLrnd.Inc()
	}
	tunnelNeighbours.Set(d.name, ip, mac)
	return true
}

// decapNative decapsulates an IPv4 or IPv6 tunnel packet for one of the
// device's addresses, if a tunnel port listens for its kind. Anything
// else (fragments and IPv6 extension headers included) is the kernel's.
func decapNative(s *nativeState, b []byte, v6 bool) bool {
	var o packet.OuterIP
	var err error
	if v6 {
		err = packet.ParseOuterIPv6(b, &o)
	} else {
		err = packet.ParseOuterIPv4(b, &o)
	}
	if err != nil || !s.owns(o.Dst) {
		return false
	}
	b = b[o.Payload:o.End]
	key := underlayKey{v6: v6}
	switch o.Proto {
	case unix.IPPROTO_GRE:
	case unix.IPPROTO_UDP:
		if len(b) < 8 {
			return false
		}
		key.udpPort = binary.BigEndian.Uint16(b[2:4])
		ulen := int(binary.BigEndian.Uint16(b[4:6]))
		if ulen < 8 || ulen > len(b) {
			return false
		}
		o.Meta.UDPCsum = binary.BigEndian.Uint16(b[6:8]) != 0
		b = b[8:ulen]
	default:
		return false
	}
	u := liveUnderlay(key)
	if u == nil {
		return false
	}
	tunnelNativeRx.Inc()
	u.decapsulate(b, o.Src, o.Dst, o.Meta)
	return true
}

// nativeTx is a tunnel port's native transmit state.
type nativeTx struct {
	fd        int // AF_PACKET socket, opened on first use; -1 before
	sll       unix.RawSockaddrLinklayer
	etherType uint16 // of the outer header: the remote's family
	nextARP   time.Time
	query     [NSFrameLen]byte // an ARP request or a neighbor solicitation
	wait      *time.Timer      // waitRoom's, made on first use
}

// nativeRoute decides how the port's packets leave now: natively when
// the route to the remote leaves through a gvs internal port. It does
// not allocate.
func (w *tunnelWriter) nativeRoute() (Route, *nativeState, bool) {
	if !w.remote.IsValid() {
		return Route{}, nil, false
	}
	r, ok := tunnelRouter.Lookup(w.remote, 0)
	if !ok || r.Local {
		return Route{}, nil, false
	}
	_, s := nativeDevNamed(r.Dev)
	if s == nil {
		return Route{}, nil, false
	}
	return r, s, true
}

// sendNative encapsulates frames into Ethernet frames for the route's
// next hop and sends them into the internal port's bridge.
func (w *tunnelWriter) sendNative(frames [][]byte, r Route, s *nativeState, now time.Time, ts uint32) {
	src := w.fixedSrc
	if !src.IsValid() {
		src = r.Src
	}
	if src != w.encap.Config().Src && w.encap.SetSource(src) != nil {
		w.count.dropped += uint64(len(frames))
		tunnelNoRoute.Add(uint64(len(frames)))
		return
	}
	nh := r.GW
	if !nh.IsValid() {
		nh = w.remote
	}
	mac, ok := tunnelNeighbours.Lookup(nh)
	if !ok {
		w.askNeighbour(s, src, nh, now)
		w.count.dropped += uint64(len(frames))
		tunnelNoNeigh.Add(uint64(len(frames)))
		return
	}
	if q := s.dev.injector(); q != nil {
		w.injectNative(q, frames, ts, mac, s)
		return
	}
	if !w.openPacketSocket() {
		w.count.dropped += uint64(len(frames))
		return
	}
	w.setNames(true)
	w.nat.sll.Ifindex = int32(s.ifindex)
	w.nat.sll.Addr = [8]byte{mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]}
	for start := 0; start < len(frames); start += tunnelBatch {
		chunk := frames[start:min(len(frames), start+tunnelBatch)]
		k := w.stageNative(chunk, ts, mac, s)
		tunnelNativeTx.Add(uint64(k))
		w.sendChunk(uintptr(w.nat.fd), k)
	}
}

// stageNative builds each frame's Ethernet and outer headers.
func (w *tunnelWriter) stageNative(chunk [][]byte, ts uint32, mac [6]byte, s *nativeState) int {
	k := 0
	for _, f := range chunk {
		if len(f) < packet.EthernetLen {
			w.count.errors++
			continue
		}
		h := w.hdrs[k][:]
		n, err := w.encap.Build(h[packet.EthernetLen:], f, ts)
		if err != nil || (s.mtu > 0 && n+len(f) > s.mtu) {
			tunnelTooBig.Inc()
			w.count.dropped++
			continue
		}
		e := packet.Ethernet(h)
		e.SetDst(mac)
		e.SetSrc(s.mac)
		e.SetType(w.nat.etherType)
		w.iovs[k][0].Base = &h[0]
		w.iovs[k][0].SetLen(packet.EthernetLen + n)
		w.iovs[k][1].Base = &f[0]
		w.iovs[k][1].SetLen(len(f))
		w.sizes[k] = len(f)
		k++
	}
	return k
}

// askNeighbour sends an ARP request (IPv4) or a neighbor solicitation
// (IPv6) for nh out of the internal port, at most once per arpInterval;
// the frames sent meanwhile are dropped and counted by the caller, so
// nothing waits unbounded for the answer.
func (w *tunnelWriter) askNeighbour(s *nativeState, src, nh netip.Addr, now time.Time) {
	if now.Before(w.nat.nextARP) || !w.openPacketSocket() {
		return
	}
	w.nat.nextARP = now.Add(arpInterval)
	var n int
	what, counter := "ARP request", tunnelARPQuery
	if nh.Is6() {
		n = BuildNeighborSolicitation(w.nat.query[:], s.mac, src, nh)
		what, counter = "neighbor solicitation", tunnelNDQuery
	} else {
		n = BuildARPRequest(w.nat.query[:], s.mac, src, nh)
	}
	if n == 0 {
		return
	}
	q := &w.nat.query // the frame starts with its destination: broadcast or the solicited-node group
	sa := &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6, Addr: [8]byte{q[0], q[1], q[2], q[3], q[4], q[5]}}
	if err := unix.Sendto(w.nat.fd, w.nat.query[:n], unix.MSG_DONTWAIT, sa); err != nil {
		tunnelLog.Warn("%s: %s for %s: %v", w.name, what, nh, err)
		return
	}
	counter.Inc()
}

// openPacketSocket opens the AF_PACKET socket frames are sent through
// (protocol 0: it receives nothing).
func (w *tunnelWriter) openPacketSocket() bool {
	if w.nat.fd >= 0 {
		return true
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tunnelLog.Warn("%s: cannot open a packet socket for native tunnelling: %v", w.name, err)
		return false
	}
	w.nat.fd = fd
	w.nat.etherType = packet.EtherTypeIPv4
	if w.opts.remote.Is6() {
		w.nat.etherType = packet.EtherTypeIPv6
	}
	w.nat.sll = unix.RawSockaddrLinklayer{Family: unix.AF_PACKET, Protocol: htons(w.nat.etherType), Halen: 6}
	return true
}
