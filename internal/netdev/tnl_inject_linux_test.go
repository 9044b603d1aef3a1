//go:build linux

package netdev

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"gvs/internal/packet"
)

// nativeInjectSetup opens, in a new namespace, an internal port (up, its
// kernel quiet) standing as a native underlay with 172.21.12.8/24, a
// known neighbour 172.21.12.9, and a GRE port to that neighbour.
func nativeInjectSetup(t testing.TB) (ns, ulName string, ul *tapPort, gre Netdev) {
	t.Helper()
	needRoot(t)
	nativeSyncOff = true // the test gives the device its state
	t.Cleanup(func() { nativeSyncOff = false })
	ns, ulName = newNetns(t), uniqueName(t, "u")
	dev, err := openIn(t, ns, Config{Name: ulName, Type: "internal"})
	if err != nil {
		t.Fatalf("open internal port: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+ulName+".disable_ipv6=1")
	run(t, "ip", "-n", ns, "link", "set", ulName, "up")
	ifi, err := interfaceIn(t, ns, ulName)
	if err != nil {
		t.Fatal(err)
	}
	ul = dev.(*tapPort)
	nd := ul.native
	nd.state.Store(&nativeState{ifindex: ifi.Index, mac: [6]byte(ifi.HardwareAddr), mtu: 1500,
		addrs: []netip.Prefix{mustPrefix("172.21.12.8/24")}, dev: nd})
	withNativeDevs(t, map[string]*nativeDev{ulName: nd}, []Route{
		{Prefix: mustPrefix("172.21.12.0/24"), Dev: ulName, Src: mustAddr("172.21.12.8")},
	})
	tunnelNeighbours.Flush()
	t.Cleanup(tunnelNeighbours.Flush)
	tunnelNeighbours.Set(ulName, mustAddr("172.21.12.9"), nbMAC)
	gre, err = openIn(t, ns, Config{Name: "tnlq", Type: "gre", Options: map[string]string{"remote_ip": "172.21.12.9", "key": "16"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gre.Close() })
	return ns, ulName, ul, gre
}

// kernelTxPackets is the internal port's kernel transmit counter: frames
// the host's stack handed to the TAP's reader.
func kernelTxPackets(t *testing.T, ns, dev string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(strings.TrimSpace(run(t, "ip", "netns", "exec", ns, "cat", "/sys/class/net/"+dev+"/statistics/tx_packets")), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNativeSendQueuedForInternalPort: a tunnel port whose route leaves
// through a gvs internal port hands its encapsulated frames to that
// port's reader, in order, as the port's traffic for its bridge, and the
// reader takes them even while it waits for the device in the
// netpoller; the frames do not pass through the kernel device (its
// transmit counter stays still), as with OVS's native tunnelling.
func TestNativeSendQueuedForInternalPort(t *testing.T) {
	ns, ulName, ul, gre := nativeInjectSetup(t)
	const count = 100
	got := readFramesAsync(ul, count) // waits in the netpoller before anything is sent
	time.Sleep(100 * time.Millisecond)
	before, tx := kernelTxPackets(t, ns, ulName), tunnelNativeTx.Total()
	frames := make([][]byte, count)
	for i := range frames {
		frames[i] = innerTestFrame(200)
		frames[i][20] = byte(i)
	}
	var err error
	inNetns(t, ns, func() { err = gre.WriteBatch(frames) })
	if err != nil {
		t.Fatal(err)
	}
	r := waitFrames(t, ul, got)
	if len(r.frames) != count {
		t.Fatalf("the internal port's reader got %d frames, want %d (tunnel_native_tx +%d, err %v)", len(r.frames), count, tunnelNativeTx.Total()-tx, r.err)
	}
	for i, f := range r.frames {
		e := packet.Ethernet(f)
		var o packet.OuterIP
		var info packet.TunnelInfo
		if e.Dst() != nbMAC || e.Src() != ul.native.state.Load().mac || e.Type() != packet.EtherTypeIPv4 ||
			packet.ParseOuterIPv4(f[packet.EthernetLen:], &o) != nil || o.Dst != mustAddr("172.21.12.9") || o.Src != mustAddr("172.21.12.8") {
			t.Fatalf("frame %d is not an IPv4 frame from ul to the neighbour: %x", i, f)
		}
		b := f[packet.EthernetLen+o.Payload : packet.EthernetLen+o.End]
		if packet.ParseGRE(b, &info) != nil || info.Key != 16 || !bytes.Equal(b[info.Inner:], frames[i]) {
			t.Fatalf("frame %d: not GRE key 16 around inner frame %d: %x", i, i, f)
		}
	}
	if s := gre.Stats(); s.TxPackets != count || s.TxDropped != 0 {
		t.Errorf("tunnel port tx_packets %d tx_dropped %d, want %d and 0", s.TxPackets, s.TxDropped, count)
	}
	if s := ul.Stats(); s.RxPackets != count {
		t.Errorf("internal port rx_packets %d, want %d", s.RxPackets, count)
	}
	if after := kernelTxPackets(t, ns, ulName); after != before {
		t.Errorf("the kernel device transmitted %d frames to the reader, want none: the frames went through it", after-before)
	}
}

// TestNativeSendQueueBounded: when the internal port's reader does not
// take the frames, the queue holds nativeInjectFrames of them; the rest
// are dropped and counted on the tunnel port (tx_dropped) and in
// tunnel_native_queue_full, and the queued ones are read afterwards.
func TestNativeSendQueueBounded(t *testing.T) {
	ns, _, ul, gre := nativeInjectSetup(t)
	frames := make([][]byte, 2*nativeInjectFrames)
	for i := range frames {
		frames[i] = innerTestFrame(100)
	}
	full := tunnelNativeQueueFull.Total()
	var err error
	inNetns(t, ns, func() { err = gre.WriteBatch(frames) })
	if err != nil {
		t.Fatal(err)
	}
	s := gre.Stats()
	if s.TxPackets != nativeInjectFrames || s.TxDropped != nativeInjectFrames || tunnelNativeQueueFull.Total()-full != nativeInjectFrames {
		t.Errorf("tx_packets %d tx_dropped %d tunnel_native_queue_full +%d, want %d each",
			s.TxPackets, s.TxDropped, tunnelNativeQueueFull.Total()-full, nativeInjectFrames)
	}
	if r := waitFrames(t, ul, readFramesAsync(ul, nativeInjectFrames)); len(r.frames) != nativeInjectFrames {
		t.Errorf("read %d queued frames, want %d (err %v)", len(r.frames), nativeInjectFrames, r.err)
	}
}

// framesRead is what readFramesAsync read.
type framesRead struct {
	frames [][]byte
	err    error
}

// readFramesAsync reads count frames from dev in another goroutine.
func readFramesAsync(dev Netdev, count int) chan framesRead {
	got := make(chan framesRead, 1)
	go func() {
		var r framesRead
		bufs, sizes := make([][]byte, 64), make([]int, 64)
		for i := range bufs {
			bufs[i] = make([]byte, MaxFrame)
		}
		for len(r.frames) < count {
			n, err := dev.ReadBatch(bufs, sizes)
			if err != nil {
				r.err = err
				break
			}
			for i := range n {
				r.frames = append(r.frames, bytes.Clone(bufs[i][:sizes[i]]))
			}
		}
		got <- r
	}()
	return got
}

// waitFrames waits up to 3 s for readFramesAsync; then it closes dev,
// which ends the read, and returns what was read.
func waitFrames(t *testing.T, dev Netdev, got chan framesRead) framesRead {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(3 * time.Second):
		dev.Close()
		return <-got
	}
}

// TestNativeSendWaitsForReader: a sender that outruns the internal
// port's reader waits for room in the full queue instead of dropping:
// twice the queue's frames, written while the reader takes them, all
// arrive.
func TestNativeSendWaitsForReader(t *testing.T) {
	ns, _, ul, gre := nativeInjectSetup(t)
	old := nativeInjectWait
	nativeInjectWait = time.Second // the mechanism, not this busy machine's latency
	t.Cleanup(func() { nativeInjectWait = old })
	const count = 4 * nativeInjectFrames
	got := readFramesAsync(ul, count)
	frames := make([][]byte, count)
	for i := range frames {
		frames[i] = innerTestFrame(1000)
	}
	full := tunnelNativeQueueFull.Total()
	var err error
	inNetns(t, ns, func() { err = gre.WriteBatch(frames) })
	if err != nil {
		t.Fatal(err)
	}
	if s := gre.Stats(); s.TxDropped != 0 || s.TxPackets != count {
		t.Errorf("tx_packets %d tx_dropped %d (tunnel_native_queue_full +%d), want %d and none dropped",
			s.TxPackets, s.TxDropped, tunnelNativeQueueFull.Total()-full, count)
	}
	if r := waitFrames(t, ul, got); len(r.frames) != count {
		t.Errorf("read %d frames, want %d (err %v)", len(r.frames), count, r.err)
	}
}

// BenchmarkNativeSend: a GRE port sends batches of 32 frames of 1,400
// bytes natively and the internal port's reader takes them, either
// through the TAP (an AF_PACKET write, a readv per frame: the way before
// the queue) or through the queue; ns per frame, both sides.
func BenchmarkNativeSend(b *testing.B) {
	for _, via := range []string{"tap", "queue"} {
		b.Run(via, func(b *testing.B) {
			ns, _, ul, gre := nativeInjectSetup(b)
			if via == "tap" {
				ul.native.wakeReader = nil // no queue: the AF_PACKET write
			}
			frames := make([][]byte, tunnelBatch)
			for i := range frames {
				frames[i] = innerTestFrame(1400)
			}
			bufs, sizes := make([][]byte, tunnelBatch), make([]int, tunnelBatch)
			for i := range bufs {
				bufs[i] = make([]byte, MaxFrame)
			}
			inNetns(b, ns, func() { gre.WriteBatch(frames[:1]) }) // the packet socket in ns
			for got := 0; got < 1; {
				n, err := ul.ReadBatch(bufs, sizes)
				if err != nil {
					b.Fatal(err)
				}
				got += n
			}
			b.ResetTimer()
			for range b.N {
				if err := gre.WriteBatch(frames); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < len(frames); {
					n, err := ul.ReadBatch(bufs, sizes)
					if err != nil {
						b.Fatal(err)
					}
					got += n
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
			if s := gre.Stats(); s.TxDropped != 0 {
				b.Errorf("%d frames dropped", s.TxDropped)
			}
		})
	}
}
