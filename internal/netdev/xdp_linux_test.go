//go:build linux

package netdev

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openXDPIn opens a system port with options:gvs-xdp=true on host in sw.
func openXDPIn(t *testing.T, sw, host string) *afpacketPort {
	return openXDPModeIn(t, sw, host, "true")
}

func openXDPModeIn(t *testing.T, sw, host, mode string) *afpacketPort {
	t.Helper()
	dev, err := openIn(t, sw, Config{Name: host, Options: map[string]string{xdpOption: mode}})
	if err != nil {
		t.Fatalf("open system port with XDP: %v", err)
	}
	return dev.(*afpacketPort)
}

// xdpAttached says whether ip link shows an XDP program on dev.
func xdpAttached(t *testing.T, ns, dev string) bool {
	out := run(t, "ip", "-n", ns, "-d", "link", "show", "dev", dev)
	return strings.Contains(out, "prog/xdp")
}

// A ping through a port receiving with XDP: the program is attached
// natively on the veth, the frames come through the XDP socket (not the
// packet ring), and closing the port detaches the program.
func TestSystemXDPPingThroughVeth(t *testing.T) {
	needRoot(t)
	sw, ns := newSwitchNetns(t), newNetns(t)
	host, _ := newVeth(t, sw, ns, "198.51.100.1/24")
	p := openXDPIn(t, sw, host)
	if p.xdp.sock == nil || p.xdp.sock.mode != "native" || p.Fault() != "" {
		t.Fatalf("XDP socket %+v, fault %q: want native mode, no fault", p.xdp.sock, p.Fault())
	}
	if !xdpAttached(t, sw, host) {
		t.Fatal("no XDP program on the interface")
	}
	startFakeHost(t, p, macB, net.IPv4(198, 51, 100, 2))
	pingFrom(t, ns, "198.51.100.2", 3)
	st := p.Stats()
	if st.RxPackets < 4 || st.TxPackets < 4 || st.RxErrors+st.TxErrors+st.TxDropped != 0 {
		t.Errorf("stats %+v: want >= 4 frames each way, no errors", st)
	}
	if p.rd.ring != nil && p.rd.ring.ready() {
		t.Error("a frame reached the packet ring despite XDP")
	}
	p.Close()
	if xdpAttached(t, sw, host) {
		t.Error("the XDP program is still attached after Close")
	}
}

// A TCP transfer through two XDP ports joined by the test arrives
// intact (the peers' checksum offload off: XDP hands frames over as the
// peer sent them), receiving, transmitting, or both through XDP sockets.
func TestSystemXDPTCPTransfer(t *testing.T) {
	for _, mode := range []string{"rx", "tx", "both"} {
		t.Run(mode, func(t *testing.T) { xdpTransfer(t, mode) })
	}
}

func xdpTransfer(t *testing.T, mode string) {
	needRoot(t)
	sw := newSwitchNetns(t)
	ns1, ns2 := newNetns(t), newNetns(t)
	h1, v1 := newVeth(t, sw, ns1, "198.51.100.1/24")
	h2, v2 := newVeth(t, sw, ns2, "198.51.100.2/24")
	for _, e := range [][2]string{{ns1, v1}, {ns2, v2}} {
		if out, err := runErr("ip", "netns", "exec", e[0], "ethtool", "-K", e[1], "tx", "off"); err != nil {
			t.Skipf("ethtool: %v %s", err, out)
		}
	}
	p1, p2 := openXDPModeIn(t, sw, h1, mode), openXDPModeIn(t, sw, h2, mode)
	for _, p := range []*afpacketPort{p1, p2} {
		if (mode != "tx") != (p.xdp.sock != nil) || (mode != "rx") != (p.xdp.tx != nil) {
			t.Fatalf("mode %s: receive socket %v, transmit socket %v; fault %q", mode, p.xdp.sock != nil, p.xdp.tx != nil, p.Fault())
		}
	}
	done1, done2 := make(chan struct{}), make(chan struct{})
	go forward(p1, p2, done1)
	go forward(p2, p1, done2)
	t.Cleanup(func() { p1.Close(); p2.Close(); <-done1; <-done2 })
	elapsed := transferTCP(t, ns1, ns2, "198.51.100.2", 8<<20)
	t.Logf("8 MiB in %v; p1 %+v", elapsed, p1.Stats())
	if p1.Stats().RxPackets == 0 || p2.Stats().TxPackets == 0 {
		t.Error("nothing forwarded")
	}
}

// An MTU too large for the XDP frames leaves the port on its packet
// ring, with the reason in Interface.error, and no program attached.
func TestSystemXDPRefusedKeepsRing(t *testing.T) {
	needRoot(t)
	sw, ns := newSwitchNetns(t), newNetns(t)
	host, _ := newVeth(t, sw, ns, "198.51.100.1/24")
	run(t, "ip", "-n", sw, "link", "set", host, "mtu", "9000")
	p := openXDPIn(t, sw, host)
	if p.xdp.sock != nil || !strings.Contains(p.Fault(), "options:gvs-xdp: MTU 9000 too large") {
		t.Fatalf("fault %q: want the MTU refused", p.Fault())
	}
	if xdpAttached(t, sw, host) {
		t.Error("XDP program attached though refused")
	}
	startFakeHost(t, p, macB, net.IPv4(198, 51, 100, 2))
	pingFrom(t, ns, "198.51.100.2", 2)
}

// A value other than true or false fails the port.
func TestSystemXDPBadOption(t *testing.T) {
	needRoot(t)
	sw, ns := newSwitchNetns(t), newNetns(t)
	host, _ := newVeth(t, sw, ns, "198.51.100.1/24")
	_, err := openIn(t, sw, Config{Name: host, Options: map[string]string{xdpOption: "yes"}})
	var oe *openError
	if err == nil || !errors.As(err, &oe) || !strings.Contains(err.Error(), `options:gvs-xdp="yes": must be`) {
		t.Fatalf("Open = %v, want the option refused", err)
	}
}

// xdpLoop is systemLoop with the near port receiving through XDP.
func xdpLoop(t testing.TB) (near, far Netdev) {
	needRoot(t)
	sw, ns := newSwitchNetns(t), newNetns(t)
	host, peer := newVeth(t, sw, ns, "198.51.100.1/24")
	near, err := openIn(t, sw, Config{Name: host, Options: map[string]string{xdpOption: "true"}})
	if err != nil {
		t.Fatal(err)
	}
	if p := near.(*afpacketPort); p.xdp.sock == nil {
		t.Fatalf("no XDP socket: %s", p.Fault())
	}
	far, err = openIn(t, ns, Config{Name: peer})
	if err != nil {
		t.Fatal(err)
	}
	return near, far
}

// Receiving through XDP allocates nothing per batch (nor does the
// packet ring's transmit beside it).
func TestSystemXDPZeroAllocs(t *testing.T) {
	near, far := xdpLoop(t)
	checkLoopAllocs(t, near, far)
}

// BenchmarkSystemXDPReadBatch is BenchmarkSystemReadBatch through XDP.
func BenchmarkSystemXDPReadBatch(b *testing.B) {
	near, far := xdpLoop(b)
	benchmarkLoop(b, far, near)
}

func BenchmarkSystemXDPReadSmallBatch(b *testing.B) {
	near, far := xdpLoop(b)
	benchmarkLoopOf(b, far, near, 2)
}

func BenchmarkSystemReadSmallBatch(b *testing.B) {
	near, far := systemLoop(b)
	benchmarkLoopOf(b, far, near, 2)
}

// xskTxPort sends through an XDP socket's transmit ring: the transmit
// experiment, as a Netdev writer for benchmarkLoopOf.
type xskTxPort struct {
	Netdev
	x *xskSocket
}

func (p *xskTxPort) WriteBatch(frames [][]byte) error {
	p.x.transmit(frames)
	return nil
}

func xdpTxLoop(t testing.TB) (near, far Netdev) {
	needRoot(t)
	sw, ns := newSwitchNetns(t), newNetns(t)
	host, peer := newVeth(t, sw, ns, "198.51.100.1/24")
	var x *xskSocket
	var err error
	inNetns(t, sw, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(host); err == nil {
			x, err = openXSKTx(ifi.Index)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.close)
	far, err = openIn(t, ns, Config{Name: peer})
	if err != nil {
		t.Fatal(err)
	}
	return &xskTxPort{Netdev: far, x: x}, far
}

// The transmit experiment's frames arrive.
func TestXSKTransmit(t *testing.T) {
	near, far := xdpTxLoop(t)
	frames := testFrames(40)
	bufs, sizes := makeBufs(40)
	defer watchdog(t, 10*time.Second, far)()
	for range 20 {
		near.WriteBatch(frames)
		if !readTestFrames(far, bufs, sizes, 40) {
			t.Fatal("frames lost")
		}
	}
}

func BenchmarkXSKWriteBatch(b *testing.B) {
	near, far := xdpTxLoop(b)
	benchmarkLoop(b, near, far)
}

func BenchmarkXSKWriteSmallBatch(b *testing.B) {
	near, far := xdpTxLoop(b)
	benchmarkLoopOf(b, near, far, 2)
}

// BenchmarkXDPCompare measures the packet ring and XDP side by side,
// with the process's CPU time per batch (cpu-ns/op: user and system,
// including the softirq work the system calls run) besides wall time.
func BenchmarkXDPCompare(b *testing.B) {
	for _, c := range []struct {
		name  string
		loop  func(testing.TB) (Netdev, Netdev)
		write bool
	}{
		{"read/ring", systemLoop, false},
		{"read/xdp", xdpLoop, false},
		{"write/ring", systemLoop, true},
		{"write/xsk", xdpTxLoop, true},
	} {
		for _, batch := range []int{32, 2} {
			b.Run(c.name+"/"+itoa(batch), func(b *testing.B) {
				near, far := c.loop(b)
				from, to := far, near
				if c.write {
					from, to = near, far
				}
				before := cpuTime()
				benchmarkLoopOf(b, from, to, batch)
				b.ReportMetric(float64(cpuTime()-before)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}

func cpuTime() int64 {
	var ru unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
