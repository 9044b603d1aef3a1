//go:build linux

package netdev

import (
	"bytes"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// withNativeDevs replaces the registry of internal ports and the route
// table's kernel routes for one test.
func withNativeDevs(t testing.TB, devs map[string]*nativeDev, routes []Route) {
	t.Helper()
	nativeMu.Lock()
	old := nativeDevs.Load()
	nativeDevs.Store(&devs)
	nativeMu.Unlock()
	tunnelRouter.setCached(routes)
	t.Cleanup(func() {
		nativeMu.Lock()
		nativeDevs.Store(old)
		nativeMu.Unlock()
		tunnelRouter.setCached(nil)
	})
}

// TestTunnelUnderlayDecision: a tunnel leaves natively (kind 1) when the
// route to its remote leaves through a gvs internal port, and through
// the host's routing (kind 2) otherwise: a route through another
// device, no route, a local address. IPv6 remotes decide the same way.
func TestTunnelUnderlayDecision(t *testing.T) {
	ul := &nativeDev{name: "ul"}
	ul.state.Store(&nativeState{ifindex: 7, mac: [6]byte{2, 0, 0, 0, 0, 8}, mtu: 1500,
		addrs: []netip.Prefix{mustPrefix("172.21.12.8/24"), mustPrefix("2001:db8:5::1/64")}})
	gone := &nativeDev{name: "ml"} // moved to another namespace: no state
	withNativeDevs(t, map[string]*nativeDev{"ul": ul, "ml": gone}, []Route{
		{Prefix: mustPrefix("172.21.12.0/24"), Dev: "ul", Src: mustAddr("172.21.12.8")},
		{Prefix: mustPrefix("172.21.12.8/32"), Dev: "ul", Src: mustAddr("172.21.12.8"), Local: true},
		{Prefix: mustPrefix("10.99.0.0/16"), Dev: "ul", GW: mustAddr("172.21.12.1"), Src: mustAddr("172.21.12.8")},
		{Prefix: mustPrefix("10.12.0.0/16"), Dev: "ml", Src: mustAddr("10.12.0.1")},
		{Prefix: mustPrefix("192.0.2.0/24"), Dev: "eth0", Src: mustAddr("192.0.2.10")},
		{Prefix: mustPrefix("2001:db8:5::/64"), Dev: "ul", Src: mustAddr("2001:db8:5::1")},
		{Prefix: mustPrefix("2001:db8:5::1/128"), Dev: "ul", Src: mustAddr("2001:db8:5::1"), Local: true},
		{Prefix: mustPrefix("2001:db8:99::/48"), Dev: "ul", GW: mustAddr("fe80::1"), Src: mustAddr("2001:db8:5::1")},
		{Prefix: mustPrefix("2001:db8:7::/64"), Dev: "eth0", Src: mustAddr("2001:db8:7::10")},
	})
	for _, c := range []struct {
		remote string
		native bool
		gw     string
	}{
		{"172.21.12.163", true, ""},
		{"10.99.1.1", true, "172.21.12.1"},
		{"172.21.12.8", false, ""}, // our own address
		{"192.0.2.5", false, ""},   // a device gvs does not own
		{"10.12.4.9", false, ""},   // a gvs port outside gvsd's namespace
		{"198.51.100.1", false, ""},
		{"2001:db8::1", false, ""}, // no route
		{"2001:db8:5::2", true, ""},
		{"2001:db8:99::1", true, "fe80::1"},
		{"2001:db8:5::1", false, ""}, // our own address
		{"2001:db8:7::1", false, ""}, // a device gvs does not own
	} {
		w := &tunnelWriter{remote: mustAddr(c.remote), opts: &tunnelOptions{remote: mustAddr(c.remote)}}
		r, s, ok := w.nativeRoute()
		if ok != c.native {
			t.Errorf("remote %s: native=%v, want %v", c.remote, ok, c.native)
			continue
		}
		if ok && (s != ul.state.Load() || (c.gw != "" && r.GW != mustAddr(c.gw))) {
			t.Errorf("remote %s: route %+v", c.remote, r)
		}
	}
	w := &tunnelWriter{remote: mustAddr("172.21.12.163"), opts: &tunnelOptions{remote: mustAddr("172.21.12.163")}}
	if n := testing.AllocsPerRun(100, func() { w.nativeRoute() }); n != 0 {
		t.Errorf("the decision allocates %v times", n)
	}
}

// TestNativeInterceptKeepsOthers: ARP replies delivered to the port are
// learned and still reach the kernel; tunnel packets for the port's
// address with no tunnel port listening, and ordinary traffic, are the
// kernel's.
func TestNativeInterceptKeepsOthers(t *testing.T) {
	d := &nativeDev{name: "ul"}
	d.state.Store(&nativeState{ifindex: 7, addrs: []netip.Prefix{mustPrefix("172.21.12.8/24")}})
	tunnelNeighbours.Flush()
	t.Cleanup(tunnelNeighbours.Flush)
	reply := arpFrame(2, nbMAC, [4]byte{172, 21, 12, 9}, [4]byte{172, 21, 12, 8})
	advert := ndFrame(t, packet.ICMPv6NeighborAdvert, ndRemote, nbMAC, ndRemote, packet.NDOptTargetLLAddr, nbMAC, 255)
	other := make([]byte, 60)
	other[12], other[13] = 0x86, 0xdd
	var kept [][]byte
	var keptMeta []FrameMeta
	out, _ := d.intercept([][]byte{reply, advert, other}, nil, &kept, &keptMeta)
	if len(out) != 3 {
		t.Fatalf("%d of 3 frames left for the kernel", len(out))
	}
	if m, ok := tunnelNeighbours.Lookup(mustAddr("172.21.12.9")); !ok || m != nbMAC {
		t.Error("the ARP reply was not learned")
	}
	if m, ok := tunnelNeighbours.Lookup(ndRemote); !ok || m != nbMAC {
		t.Error("the neighbor advertisement was not learned")
	}
	frames := [][]byte{reply, advert, other}
	if n := testing.AllocsPerRun(100, func() { d.intercept(frames, nil, &kept, &keptMeta) }); n != 0 {
		t.Errorf("intercept allocates %v times", n)
	}
}

// TestNativeInterceptDecapsulates: a GRE or VXLAN packet that the bridge
// delivers to an underlay port, for its address, is taken off before the
// kernel and its inner frame reaches the tunnel port; one with a key no
// port has is dropped and counted; one for another address is the
// kernel's.
func TestNativeInterceptDecapsulates(t *testing.T) {
	ns := newNetns(t)
	for _, c := range []struct {
		name, typ, remote, local, other string
		extra                           map[string]string
	}{
		{"gre", "gre", "172.21.12.9", "172.21.12.8", "172.21.12.50", nil},
		{"vxlan", "vxlan", "172.21.12.9", "172.21.12.8", "172.21.12.50", nil},
		{"ip6gre", "ip6gre", "2001:db8:5::2", "2001:db8:5::1", "2001:db8:5::50", nil},
		{"ip6erspan", "ip6erspan", "2001:db8:5::2", "2001:db8:5::1", "2001:db8:5::50", map[string]string{"erspan_ver": "2"}},
		{"vxlan6", "vxlan", "2001:db8:5::2", "2001:db8:5::1", "2001:db8:5::50", nil},
		{"geneve6", "geneve", "2001:db8:5::2", "2001:db8:5::1", "2001:db8:5::50", nil},
	} {
		typ := c.typ
		t.Run(c.name, func(t *testing.T) {
			opts := map[string]string{"remote_ip": c.remote, "key": "16"}
			for k, v := range c.extra {
				opts[k] = v
			}
			port, err := openIn(t, ns, Config{Name: "tnln", Type: typ, Options: opts})
			if err != nil {
				t.Fatal(err)
			}
			defer port.Close()
			d := &nativeDev{name: "ul"}
			d.state.Store(&nativeState{ifindex: 7, addrs: []netip.Prefix{netip.PrefixFrom(mustAddr(c.local), 24)}})
			outer := func(dst string, key uint32, inner []byte) []byte {
				tt := tunnelTypes[typ].typ
				cfg := packet.TunnelConfig{Type: tt, Src: mustAddr(c.remote), Dst: mustAddr(dst), Key: key, HasKey: true, DF: true}
				if tt == packet.TunnelERSPAN {
					cfg.ERSPANVer = 2
				}
				e, err := packet.NewEncap(cfg)
				if err != nil {
					t.Fatal(err)
				}
				f := make([]byte, packet.EthernetLen+packet.MaxTunnelHeader+len(inner))
				et := packet.EtherTypeIPv4
				if mustAddr(dst).Is6() {
					et = packet.EtherTypeIPv6
				}
				packet.Ethernet(f).SetType(et)
				n, err := e.Build(f[packet.EthernetLen:], inner, 0)
				if err != nil {
					t.Fatal(err)
				}
				copy(f[packet.EthernetLen+n:], inner)
				return f[:packet.EthernetLen+n+len(inner)]
			}
			inner := innerTestFrame(100)
			before := tunnelUnknown.Total()
			var kept [][]byte
			var keptMeta []FrameMeta
			frames := [][]byte{outer(c.local, 16, inner), outer(c.local, 99, inner), outer(c.other, 16, inner)}
			out, _ := d.intercept(frames, nil, &kept, &keptMeta)
			if len(out) != 1 || &out[0][0] != &frames[2][0] {
				t.Fatalf("%d frames left for the kernel, want only the one for another address", len(out))
			}
			if got := readOne(port); !bytes.Equal(got, inner) {
				t.Errorf("the tunnel port received %x, want the inner frame", got)
			}
			if tunnelUnknown.Total() != before+1 {
				t.Errorf("tunnel_unknown_remote went from %d to %d, want +1 (key 99)", before, tunnelUnknown.Total())
			}
		})
	}
}

// TestNativeSendIPv6: an ip6gre port whose route leaves through a gvs
// internal port (here the veth end tnlul, standing for it) and whose
// next hop is unknown drops the frame, counts it and sends a neighbor
// solicitation out of that port; once the neighbour is known the frame
// leaves as an Ethernet frame to the neighbour's MAC with an IPv6 outer
// header.
func TestNativeSendIPv6(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	ulName, phyName := uniqueName(t, "u"), uniqueName(t, "f")
	run(t, "ip", "-n", ns, "link", "add", ulName, "type", "veth", "peer", "name", phyName)
	for _, dev := range []string{ulName, phyName} { // no frames of the kernel's own on the capture
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+dev+".disable_ipv6=1")
		run(t, "ip", "-n", ns, "link", "set", dev, "up")
	}
	ul, err := interfaceIn(t, ns, ulName)
	if err != nil {
		t.Fatal(err)
	}
	phy, err := interfaceIn(t, ns, phyName)
	if err != nil {
		t.Fatal(err)
	}
	dev := &nativeDev{name: ulName}
	dev.state.Store(&nativeState{ifindex: ul.Index, mac: [6]byte(ul.HardwareAddr), mtu: 1500,
		addrs: []netip.Prefix{mustPrefix("2001:db8:5::1/64")}})
	withNativeDevs(t, map[string]*nativeDev{ulName: dev}, []Route{
		{Prefix: mustPrefix("2001:db8:5::/64"), Dev: ulName, Src: mustAddr("2001:db8:5::1")},
	})
	tunnelNeighbours.Flush()
	t.Cleanup(tunnelNeighbours.Flush)
	port, err := openIn(t, ns, Config{Name: "tnl6", Type: "ip6gre", Options: map[string]string{"remote_ip": "2001:db8:5::2", "key": "16"}})
	if err != nil {
		t.Fatal(err)
	}
	var capFd int
	inNetns(t, ns, func() { capFd, err = captureSocket(phy.Index) })
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(capFd)

	inner := innerTestFrame(100)
	miss, solicit := tunnelNoNeigh.Total(), tunnelNDQuery.Total()
	inNetns(t, ns, func() { err = port.WriteBatch([][]byte{inner}) })
	if err != nil {
		t.Fatal(err)
	}
	if s := port.Stats(); s.TxDropped != 1 || s.TxPackets != 0 || tunnelNoNeigh.Total() != miss+1 || tunnelNDQuery.Total() != solicit+1 {
		t.Errorf("unknown next hop: tx %d dropped %d, tunnel_neigh_miss +%d, tunnel_nd_solicit +%d; want the frame dropped and counted, one solicitation",
			s.TxPackets, s.TxDropped, tunnelNoNeigh.Total()-miss, tunnelNDQuery.Total()-solicit)
	}
	ns1 := captureOne(t, capFd)
	want := make([]byte, NSFrameLen)
	BuildNeighborSolicitation(want, [6]byte(ul.HardwareAddr), mustAddr("2001:db8:5::1"), mustAddr("2001:db8:5::2"))
	if !bytes.Equal(ns1, want) {
		t.Fatalf("not a solicitation for 2001:db8:5::2 from ul's address and MAC:\n got %x\nwant %x", ns1, want)
	}

	tunnelNeighbours.Set(ulName, mustAddr("2001:db8:5::2"), nbMAC)
	inNetns(t, ns, func() { err = port.WriteBatch([][]byte{inner}) })
	if err != nil {
		t.Fatal(err)
	}
	f := captureOne(t, capFd)
	e := packet.Ethernet(f)
	var o packet.OuterIP
	if e.Dst() != nbMAC || e.Src() != [6]byte(ul.HardwareAddr) || e.Type() != packet.EtherTypeIPv6 ||
		packet.ParseOuterIPv6(f[packet.EthernetLen:], &o) != nil {
		t.Fatalf("not an IPv6 frame from ul to the neighbour: %x", f)
	}
	var info packet.TunnelInfo
	b := f[packet.EthernetLen+o.Payload : packet.EthernetLen+o.End]
	if o.Src != mustAddr("2001:db8:5::1") || o.Dst != mustAddr("2001:db8:5::2") || o.Proto != packet.ProtoGRE ||
		packet.ParseGRE(b, &info) != nil || info.Key != 16 || !bytes.Equal(b[info.Inner:], inner) {
		t.Errorf("outer %v -> %v proto %d, GRE key %d: %x", o.Src, o.Dst, o.Proto, info.Key, f)
	}
	if s := port.Stats(); s.TxPackets != 1 {
		t.Errorf("tx_packets %d, want 1", s.TxPackets)
	}
}

// captureSocket opens a packet socket that reads every frame arriving on
// ifindex, with a 2-second read timeout.
func captureSocket(ifindex int) (int, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, err
	}
	tv := unix.Timeval{Sec: 2}
	if err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err == nil {
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex})
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// captureOne reads the next frame from a capture socket.
func captureOne(t *testing.T, fd int) []byte {
	t.Helper()
	b := make([]byte, 2048)
	n, _, err := unix.Recvfrom(fd, b, 0)
	if err != nil {
		t.Fatalf("no frame on the capture within 2s: %v", err)
	}
	return b[:n]
}

// The route table is copied again as soon as the kernel reports a new
// address (and so a new route), not only at the next tick: until then a
// tunnel's packets took the host's routing instead of the native
// underlay (docs/PERFORMANCE.md, issue 11, 4 December 2026, later).
func TestRouteCopyFollowsKernelNotices(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	var ev *routeEvents
	var err error
	inNetns(t, ns, func() { ev, err = openRouteEvents() })
	if err != nil {
		t.Fatal(err)
	}
	copies := make(chan time.Time, 16)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		syncLoop(stop, ev, func() {
			select {
			case copies <- time.Now():
			default:
			}
		})
		close(done)
	}()
	defer func() {
		close(stop)
		<-done
	}()
	<-copies // the first copy, at the start
	time.Sleep(50 * time.Millisecond)
	dev := uniqueName(t, "d")
	start := time.Now()
	run(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", dev+"p")
	run(t, "ip", "-n", ns, "addr", "add", "172.21.13.1/24", "dev", dev)
	run(t, "ip", "-n", ns, "link", "set", dev, "up")
	select {
	case at := <-copies:
		if d := at.Sub(start); d > kernelSyncInterval/2 {
			t.Fatalf("routes copied %v after the address was added, want well within the %v tick", d, kernelSyncInterval)
		}
	case <-time.After(3 * kernelSyncInterval):
		t.Fatal("routes not copied again after the address was added")
	}
}

// TestRouteCopiesCoalesceNoticeBursts: a burst of the kernel's notices
// (a transaction that makes a thousand TAPs) makes a few copies of the
// route table, not one after another for as long as the burst lasts.
// Without the settle after a notice, 300 notices over 300 ms made a copy
// per millisecond of copying (each here costs 1 ms, as a copy of a
// namespace with a thousand devices costs more).
func TestRouteCopiesCoalesceNoticeBursts(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ev := &routeEvents{f: r}
	var copies atomic.Int64
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		syncLoop(stop, ev, func() {
			copies.Add(1)
			time.Sleep(time.Millisecond)
		})
		close(done)
	}()
	defer func() {
		close(stop)
		<-done
	}()
	time.Sleep(20 * time.Millisecond) // the first copy, at the start
	before := copies.Load()
	burst := 300 * time.Millisecond
	for end := time.Now().Add(burst); time.Now().Before(end); {
		if _, err := w.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(2 * routeNoticeSettle)
	n := copies.Load() - before
	if most := int64(burst/routeNoticeSettle) + 3; n > most {
		t.Fatalf("%d copies for a burst of notices over %v, want at most %d", n, burst, most)
	}
	if n == 0 {
		t.Fatal("no copy after the burst of notices")
	}
	t.Logf("%d copies for a burst of notices over %v", n, burst)
}
