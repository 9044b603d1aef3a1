//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// gsoTestFrames is n frames of size bytes of one flow, then one of last
// bytes (none if last is 0).
func gsoTestFrames(n, size, last int) [][]byte {
	var out [][]byte
	for range n {
		out = append(out, innerTestFrame(size))
	}
	if last > 0 {
		out = append(out, innerTestFrame(last))
	}
	return out
}

// otherFlow is a frame of another flow (other Ethernet addresses, so
// another UDP source port).
func otherFlow(size int) []byte {
	f := innerTestFrame(size)
	f[5] = 9
	return f
}

// Which frames one UDP GSO send carries: equal sizes of one flow, a short
// last one ends the run, a larger one or another flow breaks it, and the
// kernel's count and byte limits hold.
func TestGSORun(t *testing.T) {
	hdr := packet.VXLANLen
	for _, tc := range []struct {
		name   string
		frames [][]byte
		want   int
	}{
		{"equal sizes", gsoTestFrames(5, 1000, 0), 5},
		{"last short", gsoTestFrames(5, 1000, 300), 6},
		{"short one ends the run", append(gsoTestFrames(3, 1000, 300), innerTestFrame(1000)), 4},
		{"larger one breaks it", [][]byte{innerTestFrame(500), innerTestFrame(600), innerTestFrame(500)}, 1},
		{"mixed sizes", [][]byte{innerTestFrame(500), innerTestFrame(400), innerTestFrame(300)}, 2},
		{"another flow", append(gsoTestFrames(2, 1000, 0), otherFlow(1000)), 2},
		{"one frame", gsoTestFrames(1, 1000, 0), 0},
		{"none", nil, 0},
		{"runt first", [][]byte{make([]byte, 10), make([]byte, 10)}, 0},
		{"runt later", [][]byte{innerTestFrame(100), innerTestFrame(100), make([]byte, 10)}, 2},
		{"at most 64 segments", gsoTestFrames(100, 100, 0), gsoMaxSegs},
		{"at most 64 KB", gsoTestFrames(60, 1400, 0), gsoMaxBytes / (1400 + hdr)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := gsoRun(tc.frames, hdr); got != tc.want {
				t.Errorf("gsoRun = %d, want %d", got, tc.want)
			}
		})
	}
}

// datagram is what a plain UDP socket received from a tunnel.
type datagram struct {
	payload  []byte
	port     int // UDP source port
	ttl, tos int
}

// listenUDP opens a UDP socket on addr:port in ns that reports each
// datagram's TTL and TOS and waits at most a second.
func listenUDP(t *testing.T, ns string, addr netip.Addr, port int) int {
	t.Helper()
	fd := -1
	var err error
	inNetns(t, ns, func() {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		tv := unix.NsecToTimeval(int64(time.Second))
		if err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err == nil {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTTL, 1)
		}
		if err == nil {
			err = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVTOS, 1)
		}
		if err == nil {
			err = unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: port})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// recvDatagrams reads n datagrams from fd.
func recvDatagrams(t *testing.T, fd, n int) []datagram {
	t.Helper()
	var out []datagram
	buf, oob := make([]byte, 65536), make([]byte, 256)
	for range n {
		k, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v", len(out)+1, n, err)
		}
		d := datagram{payload: bytes.Clone(buf[:k]), ttl: -1, tos: -1}
		if sa, ok := from.(*unix.SockaddrInet4); ok {
			d.port = sa.Port
		}
		for c := oob[:oobn]; len(c) >= unix.SizeofCmsghdr; {
			n := int(binary.NativeEndian.Uint64(c))
			typ := int32(binary.NativeEndian.Uint32(c[12:]))
			if n < unix.SizeofCmsghdr || n > len(c) {
				break
			}
			switch data := c[unix.SizeofCmsghdr:n]; {
			case typ == unix.IP_TTL && len(data) >= 4:
				d.ttl = int(binary.NativeEndian.Uint32(data))
			case typ == unix.IP_TOS && len(data) >= 1:
				d.tos = int(data[0])
			}
			c = c[min(len(c), (n+7)&^7):]
		}
		out = append(out, d)
	}
	return out
}

// A TCP super-frame sent into VXLAN by the host's routing leaves as one
// UDP GSO send, and the datagrams the far end receives are those the raw
// socket sent before, byte for byte (tunnel header and inner segment),
// with the same UDP source port, TTL and TOS. Only csum=true sends with
// GSO: csum=false keeps OVS's zero UDP checksum, which GSO cannot send
// (the comparison is made with GSO forced on anyway, to show that only
// the checksum would differ).
func TestTunnelUDPGSOSameDatagrams(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	local, remote := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2")
	for _, csum := range []bool{false, true} {
		t.Run(map[bool]string{false: "no csum", true: "csum"}[csum], func(t *testing.T) {
			fd := listenUDP(t, ns, remote, packet.VXLANPort)
			var tx *TunnelSender
			var err error
			inNetns(t, ns, func() {
				tx, err = NewTunnelSender(TunnelSenderConfig{Name: "gso", Encap: packet.TunnelConfig{
					Type: packet.TunnelVXLAN, Src: local, Dst: remote, Key: 100, TTL: 33, TOS: 0x20, DF: true, Csum: csum}})
			})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Close()
			if tx.w.gso.on != csum {
				t.Fatalf("csum=%v: UDP GSO on is %v, want %v", csum, tx.w.gso.on, csum)
			}
			super, off := testSuperFrame(t, 2500, 1000) // 1000 + 1000 + 500
			send := func(gso bool) []datagram {
				tx.w.gso.on = gso
				before := tunnelGSOSends.Total()
				b := NewBatch(1)
				b.Add(super, off, len(super), 0)
				var r TxResult
				inNetns(t, ns, func() { r = tx.Send(b) })
				if r != (TxResult{Sent: 3}) {
					t.Fatalf("Send = %+v, want 3 segments sent", r)
				}
				if sends, want := tunnelGSOSends.Total()-before, map[bool]uint64{false: 0, true: 1}[gso]; sends != want {
					t.Errorf("GSO on %v: %d UDP GSO sends, want %d", gso, sends, want)
				}
				return recvDatagrams(t, fd, 3)
			}
			before, after := send(false), send(true)
			for i := range before {
				b, a := before[i], after[i]
				if !bytes.Equal(a.payload, b.payload) || a.port != b.port || a.ttl != b.ttl || a.tos != b.tos {
					t.Errorf("datagram %d: with GSO port %d ttl %d tos %#x %x\nraw socket: port %d ttl %d tos %#x %x",
						i, a.port, a.ttl, a.tos, a.payload, b.port, b.ttl, b.tos, b.payload)
				}
			}
			if before[0].ttl != 33 || before[0].tos != 0x20 || len(before[2].payload) != len(before[0].payload)-500 {
				t.Errorf("raw socket's datagrams: ttl %d tos %#x sizes %d %d", before[0].ttl, before[0].tos,
					len(before[0].payload), len(before[2].payload))
			}
		})
	}
}

// Two VXLAN (and Geneve) ports facing each other: a run of equal frames
// with a short last one goes out in one GSO send and arrives in one UDP
// GRO read, cut back into the frames in order; frames of mixed sizes
// and flows go one by one and arrive too.
func TestTunnelPortsUDPGSOAndGRO(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	for _, typ := range []string{"vxlan", "geneve"} {
		t.Run(typ, func(t *testing.T) {
			a, b := tunnelPair(t, ns, typ, map[string]string{"key": "5", "csum": "true"})
			check := func(frames [][]byte, sends, reads uint64) {
				t.Helper()
				s0, r0 := tunnelGSOSends.Total(), tunnelGROReads.Total()
				inNetns(t, ns, func() {
					if err := a.WriteBatch(frames); err != nil {
						t.Error(err)
					}
				})
				for i, want := range frames {
					if got := readOne(b); !bytes.Equal(got, want) {
						t.Fatalf("frame %d of %d: got %d bytes, want %d", i+1, len(frames), len(got), len(want))
					}
				}
				if s, r := tunnelGSOSends.Total()-s0, tunnelGROReads.Total()-r0; s != sends || r != reads {
					t.Errorf("%d GSO sends and %d GRO reads, want %d and %d", s, r, sends, reads)
				}
			}
			check(gsoTestFrames(10, 700, 300), 1, 1)
			check([][]byte{innerTestFrame(700), innerTestFrame(900), otherFlow(700)}, 0, 0)
			// A GSO send allocates nothing once its socket is open.
			frames := gsoTestFrames(10, 700, 300)
			inNetns(t, ns, func() {
				s0 := tunnelGSOSends.Total()
				if n := testing.AllocsPerRun(20, func() { _ = a.WriteBatch(frames) }); n != 0 {
					t.Errorf("WriteBatch allocates %.1f times per run", n)
				}
				if tunnelGSOSends.Total() == s0 {
					t.Error("no GSO send")
				}
			})
		})
	}
}

// The segment size in a UDP_GRO control message, after packet info or
// alone; none, truncated or malformed messages give 0.
func TestGROSize(t *testing.T) {
	cmsg := func(level, typ int32, data []byte) []byte {
		b := make([]byte, unix.CmsgSpace(len(data)))
		binary.NativeEndian.PutUint64(b[0:], uint64(unix.CmsgLen(len(data))))
		binary.NativeEndian.PutUint32(b[8:], uint32(level))
		binary.NativeEndian.PutUint32(b[12:], uint32(typ))
		copy(b[unix.SizeofCmsghdr:], data)
		return b
	}
	u32 := func(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
	pktinfo := cmsg(unix.IPPROTO_IP, unix.IP_PKTINFO, make([]byte, 12))
	gro := cmsg(unix.SOL_UDP, unix.UDP_GRO, u32(1408))
	for _, tc := range []struct {
		name string
		c    []byte
		want int
	}{
		{"alone", gro, 1408},
		{"after packet info", append(bytes.Clone(pktinfo), gro...), 1408},
		{"before packet info", append(bytes.Clone(gro), pktinfo...), 1408},
		{"none", pktinfo, 0},
		{"empty", nil, 0},
		{"truncated header", gro[:10], 0},
		{"truncated data", gro[:unix.SizeofCmsghdr+2], 0},
		{"length past the end", append(cmsg(unix.SOL_UDP, unix.UDP_GRO, u32(9))[:unix.SizeofCmsghdr], 1, 2), 0},
		{"zero length", make([]byte, 32), 0},
		{"other level", cmsg(unix.IPPROTO_IP, unix.UDP_GRO, u32(1408)), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := groSize(tc.c); got != tc.want {
				t.Errorf("groSize = %d, want %d", got, tc.want)
			}
		})
	}
}

// Cutting a received buffer into datagrams: size-byte pieces, the last
// shorter, the whole buffer when size is 0 or covers it.
func TestNextDatagram(t *testing.T) {
	b := make([]byte, 25)
	var sizes []int
	for first, rest := nextDatagram(b, 10); ; first, rest = nextDatagram(rest, 10) {
		sizes = append(sizes, len(first))
		if len(rest) == 0 {
			break
		}
	}
	if len(sizes) != 3 || sizes[0] != 10 || sizes[1] != 10 || sizes[2] != 5 {
		t.Errorf("pieces %v, want [10 10 5]", sizes)
	}
	for _, size := range []int{0, -1, 25, 40} {
		if first, rest := nextDatagram(b, size); len(first) != 25 || len(rest) != 0 {
			t.Errorf("size %d: %d and %d bytes, want the whole buffer", size, len(first), len(rest))
		}
	}
}

// The control message parser and the cut never panic, and the pieces
// put together are the buffer, none longer than the size.
func FuzzGROSplit(f *testing.F) {
	f.Add([]byte{}, []byte{1, 2, 3}, uint16(1))
	c := make([]byte, 24)
	binary.NativeEndian.PutUint64(c, 20)
	binary.NativeEndian.PutUint32(c[8:], unix.SOL_UDP)
	binary.NativeEndian.PutUint32(c[12:], unix.UDP_GRO)
	binary.NativeEndian.PutUint32(c[16:], 3)
	f.Add(c, make([]byte, 10), uint16(0))
	f.Fuzz(func(t *testing.T, ctrl, b []byte, _ uint16) {
		size := groSize(ctrl)
		var joined []byte
		n := 0
		for first, rest := nextDatagram(b, size); ; first, rest = nextDatagram(rest, size) {
			if size > 0 && len(first) > size {
				t.Fatalf("a piece of %d bytes, size %d", len(first), size)
			}
			joined = append(joined, first...)
			if n++; len(rest) == 0 || n > len(b)+1 {
				break
			}
		}
		if !bytes.Equal(joined, b) {
			t.Fatalf("pieces make %x, want %x", joined, b)
		}
	})
}

// BenchmarkTunnelUDPGSO: sending a super-frame's worth of segments (44
// frames of 1448 bytes, one flow) into VXLAN by the host's routing, one
// raw IP packet each or one UDP GSO send, to a UDP_GRO socket on the
// loopback of a namespace of its own that drops what it gets (as gvs's
// receiving socket takes it, without the reading); ns/op is per frame.
func BenchmarkTunnelUDPGSO(b *testing.B) {
	needRoot(b)
	ns := newNetns(b)
	remote := netip.MustParseAddr("127.0.0.2")
	inNetns(b, ns, func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { unix.Close(fd) })
		prog := unix.SockFprog{Len: 1, Filter: &gsoDropAll[0]}
		if err := errors.Join(unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1),
			unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog),
			unix.Bind(fd, &unix.SockaddrInet4{Addr: remote.As4(), Port: packet.VXLANPort})); err != nil {
			b.Fatal(err)
		}
	})
	for _, gso := range []bool{false, true} {
		b.Run(map[bool]string{false: "raw", true: "gso"}[gso], func(b *testing.B) {
			var tx *TunnelSender
			var err error
			inNetns(b, ns, func() {
				tx, err = NewTunnelSender(TunnelSenderConfig{Name: "bench", Encap: packet.TunnelConfig{
					Type: packet.TunnelVXLAN, Dst: remote, Key: 7, DF: true}})
			})
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			tx.w.gso.on = gso
			frames := gsoTestFrames(44, 1448, 0)
			b.ReportAllocs()
			b.SetBytes(1448)
			s0 := tunnelGSOSends.Total()
			inNetns(b, ns, func() {
				b.ResetTimer()
				for i := 0; i < b.N; i += len(frames) {
					tx.w.send(frames, nil)
				}
				b.StopTimer()
			})
			if gso != (tunnelGSOSends.Total() > s0) {
				b.Fatalf("GSO %v, but %d GSO sends", gso, tunnelGSOSends.Total()-s0)
			}
		})
	}
}

// A port whose remote is not known when it opens (remote_ip=flow) gets
// its GSO state without a panic, and sends through the raw socket, whose
// destination follows each frame; GSO is on only for VXLAN and Geneve
// ports with a remote and csum=true.
func TestUDPGSOInitWithoutRemote(t *testing.T) {
	remote := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		cfg packet.TunnelConfig
		on  bool
	}{
		{packet.TunnelConfig{Type: packet.TunnelVXLAN, Csum: true}, false},
		{packet.TunnelConfig{Type: packet.TunnelVXLAN, Dst: remote}, false},
		{packet.TunnelConfig{Type: packet.TunnelGRE, Dst: remote, Csum: true}, false},
		{packet.TunnelConfig{Type: packet.TunnelVXLAN, Dst: remote, Csum: true}, true},
		{packet.TunnelConfig{Type: packet.TunnelGeneve, Dst: remote, Csum: true}, true},
	} {
		var g udpGSO
		g.init(tc.cfg)
		if g.on != tc.on || g.v6 {
			t.Errorf("%+v: on %v v6 %v, want on %v, IPv4", tc.cfg, g.on, g.v6, tc.on)
		}
		g.close()
	}
}

// BenchmarkTunnelSuperFrameSend: TCP super-frames of 64,000 bytes or of
// 40 segments (MSS 1348, as a VM with MTU 1400 behind a 1500-byte
// underlay sends them), four per batch, cut and sent into VXLAN and
// Geneve with csum=true by the host's routing, to a UDP_GRO socket on
// the loopback of a namespace of its own that drops them; ns/op is per
// super-frame, and gso-sends/op the UDP GSO sends each took.
func BenchmarkTunnelSuperFrameSend(b *testing.B) {
	needRoot(b)
	ns := newNetns(b)
	remote := netip.MustParseAddr("127.0.0.2")
	for _, typ := range []packet.TunnelType{packet.TunnelVXLAN, packet.TunnelGeneve} {
		port := uint16(packet.VXLANPort)
		if typ == packet.TunnelGeneve {
			port = packet.GenevePort
		}
		inNetns(b, ns, func() { gsoSink(b, remote, port) })
		for _, payload := range []int{64000, 40 * 1348} {
			b.Run(fmt.Sprintf("%s/%d", typ, payload), func(b *testing.B) {
				var tx *TunnelSender
				var err error
				inNetns(b, ns, func() {
					tx, err = NewTunnelSender(TunnelSenderConfig{Name: "bench", Encap: packet.TunnelConfig{
						Type: typ, Dst: remote, Key: 7, DF: true, Csum: true}})
				})
				if err != nil {
					b.Fatal(err)
				}
				defer tx.Close()
				super, off := testSuperFrame(b, payload, 1348)
				batch := NewBatch(4)
				for range 4 {
					batch.Add(super, off, len(super), 0)
				}
				b.ReportAllocs()
				b.SetBytes(int64(payload))
				s0 := tunnelGSOSends.Total()
				sent := 0
				inNetns(b, ns, func() {
					b.ResetTimer()
					for i := 0; i < b.N; i += batch.Len() {
						sent += tx.Send(batch).Sent
					}
					b.StopTimer()
				})
				if sent == 0 {
					b.Fatal("nothing sent")
				}
				b.ReportMetric(float64(tunnelGSOSends.Total()-s0)/float64(b.N), "gso-sends/op")
			})
		}
	}
}

// gsoSink binds a UDP_GRO socket that drops what it gets to (addr,
// port) in the calling thread's namespace, for the test's lifetime.
func gsoSink(tb testing.TB, addr netip.Addr, port uint16) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	prog := unix.SockFprog{Len: 1, Filter: &gsoDropAll[0]}
	if err := errors.Join(unix.SetsockoptInt(fd, unix.SOL_UDP, unix.UDP_GRO, 1),
		unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog),
		unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.As4(), Port: int(port)})); err != nil {
		tb.Fatal(err)
	}
}

// cutSuper cuts a TCP super-frame of payload bytes into segments of mss.
func cutSuper(tb testing.TB, payload int, mss uint16) [][]byte {
	super, off := testSuperFrame(tb, payload, mss)
	var seg Segmenter
	if !seg.Start(super, off) {
		tb.Fatal("the segmenter refused the test's super-frame")
	}
	var out [][]byte
	for {
		b := make([]byte, MaxFrame)
		n := seg.Next(b)
		if n == 0 {
			return out
		}
		out = append(out, b[:n])
	}
}

// The segments of a cut super-frame are one run without hashing each
// (sameFlowHead), and what sameFlowHead calls the same flow always has
// the same UDP source port; a segment of other ports, addresses or MACs
// ends the run.
func TestGSORunOfSegments(t *testing.T) {
	segs := cutSuper(t, 20*1348, 1348)
	if got := gsoRun(segs, packet.VXLANLen); got != len(segs) {
		t.Errorf("gsoRun = %d, want all %d segments", got, len(segs))
	}
	for _, edit := range []struct {
		name string
		at   int
	}{{"source port", 14 + 20 + 1}, {"destination address", 14 + 19}, {"source MAC", 11}, {"protocol", 14 + 9}} {
		other := cutSuper(t, 3*1348, 1348)
		for _, s := range other {
			s[edit.at] ^= 0x5a
		}
		run := append(segs[:2:2], other...)
		if sameFlowHead(run[0], other[0]) {
			t.Errorf("%s changed: sameFlowHead still true", edit.name)
		}
		if got := gsoRun(run, packet.VXLANLen); got != 2 {
			t.Errorf("%s changed: gsoRun = %d, want 2", edit.name, got)
		}
	}
	for _, a := range segs {
		if sameFlowHead(segs[0], a) && packet.TunnelSourcePort(a) != packet.TunnelSourcePort(segs[0]) {
			t.Fatal("sameFlowHead true for segments of different source ports")
		}
	}
}

// sameFlowHead never calls two frames the same flow when
// packet.TunnelSourcePort gives them different ports.
func FuzzSameFlowHead(f *testing.F) {
	segs := cutSuper(f, 2*1348, 1348)
	f.Add(segs[0][:60], segs[1][:60])
	f.Fuzz(func(t *testing.T, a, b []byte) {
		if sameFlowHead(a, b) && packet.TunnelSourcePort(a) != packet.TunnelSourcePort(b) {
			t.Fatalf("same flow head, ports %d and %d", packet.TunnelSourcePort(a), packet.TunnelSourcePort(b))
		}
	})
}

// BenchmarkGSORun: finding the runs of a cut 64,000-byte super-frame
// (48 segments of MSS 1348); ns/op is per segment.
func BenchmarkGSORun(b *testing.B) {
	segs := cutSuper(b, 64000, 1348)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(segs) {
		for rest := segs; len(rest) > 0; {
			rest = rest[max(1, gsoRun(rest, packet.VXLANLen)):]
		}
	}
}
