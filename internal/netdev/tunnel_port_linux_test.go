//go:build linux

package netdev

import (
	"bytes"
	"net"
	"testing"
	"time"

	"gvs/internal/coverage"
)

// tunnelPair opens two tunnel ports of one type facing each other over
// the loopback of namespace ns: a (127.0.0.1 -> 127.0.0.2) and b (the
// reverse), with the same extra options.
func tunnelPair(t *testing.T, ns, typ string, extra map[string]string) (a, b Netdev) {
	t.Helper()
	return tunnelPairOn(t, ns, typ, "127.0.0.1", "127.0.0.2", extra)
}

// tunnelPairOn is tunnelPair between two given local addresses of ns.
func tunnelPairOn(t *testing.T, ns, typ, addrA, addrB string, extra map[string]string) (a, b Netdev) {
	t.Helper()
	open := func(name, local, remote string) Netdev {
		opts := map[string]string{"local_ip": local, "remote_ip": remote}
		for k, v := range extra {
			opts[k] = v
		}
		dev, err := openIn(t, ns, Config{Name: name, Type: typ, Options: opts})
		if err != nil {
			t.Fatal(err)
		}
		return dev
	}
	return open("tnla", addrA, addrB), open("tnlb", addrB, addrA)
}

// readOne waits up to a second for one frame on dev; nil if none came.
func readOne(dev Netdev) []byte {
	got := make(chan []byte, 1)
	go func() {
		bufs, sizes := [][]byte{make([]byte, MaxFrame)}, []int{0}
		if n, err := dev.ReadBatch(bufs, sizes); err == nil && n == 1 {
			got <- bufs[0][:sizes[0]]
		}
		close(got)
	}()
	select {
	case f := <-got:
		return f
	case <-time.After(time.Second):
		return nil
	}
}

func innerTestFrame(size int) []byte {
	f := make([]byte, size)
	copy(f, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	for i := 14; i < size; i++ {
		f[i] = byte(i)
	}
	return f
}

// Every tunnel type carries a frame from one port to its peer through
// gvs's own encapsulation and the kernel's routing, both ways.
func TestTunnelPortsCarryFrames(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	for _, tc := range []struct {
		name, typ string
		opts      map[string]string
	}{
		{"gre", "gre", map[string]string{"key": "0x0010"}},
		{"gre-csum-seq", "gre", map[string]string{"csum": "true", "seq": "true"}},
		{"erspan2", "erspan", map[string]string{"key": "3", "erspan_ver": "1", "erspan_idx": "5"}},
		{"erspan3", "erspan", map[string]string{"key": "4", "erspan_ver": "2", "erspan_dir": "1", "erspan_hwid": "7"}},
		{"vxlan", "vxlan", map[string]string{"key": "100"}},
		{"vxlan-csum", "vxlan", map[string]string{"key": "100", "csum": "true", "dst_port": "8472"}},
		{"geneve", "geneve", map[string]string{"key": "7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tunnelPair(t, ns, tc.typ, tc.opts)
			checkTunnelPair(t, a, b)
		})
	}
}

// The IPv6 underlay: ip6gre, ip6erspan, and vxlan and geneve with IPv6
// addresses.
func TestTunnelPortsCarryFramesIPv6(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	run(t, "ip", "-n", ns, "addr", "add", "2001:db8::1/128", "dev", "lo", "nodad")
	run(t, "ip", "-n", ns, "addr", "add", "2001:db8::2/128", "dev", "lo", "nodad")
	for _, tc := range []struct {
		typ  string
		opts map[string]string
	}{
		{"ip6gre", map[string]string{"key": "9"}},
		{"ip6erspan", map[string]string{"key": "9", "erspan_ver": "2"}},
		{"vxlan", map[string]string{"key": "9"}},
		{"geneve", map[string]string{"key": "9"}},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			a, b := tunnelPairOn(t, ns, tc.typ, "2001:db8::1", "2001:db8::2", tc.opts)
			checkTunnelPair(t, a, b)
		})
	}
}

// checkTunnelPair sends a frame each way between a and b.
func checkTunnelPair(t *testing.T, a, b Netdev) {
	t.Helper()
	for _, dir := range [][2]Netdev{{a, b}, {b, a}} {
		frame := innerTestFrame(301)
		if err := dir[0].WriteBatch([][]byte{frame}); err != nil {
			t.Fatal(err)
		}
		if got := readOne(dir[1]); !bytes.Equal(got, frame) {
			t.Fatalf("%s -> %s: got %x", dir[0].Name(), dir[1].Name(), got)
		}
	}
	if sa, sb := a.Stats(), b.Stats(); sa.TxPackets != 1 || sa.RxPackets != 1 || sb.TxBytes != 301 || sb.RxBytes != 301 {
		t.Errorf("statistics a %+v b %+v", sa, sb)
	}
}

// What no port should receive is dropped and counted by cause, and what
// cannot be sent is counted too.
func TestTunnelDropsCounted(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	run(t, "ip", "-n", ns, "link", "set", "lo", "mtu", "1500")
	a, b := tunnelPair(t, ns, "vxlan", map[string]string{"key": "1"})
	c := func(name string) uint64 { n, _ := coverage.Default.Lookup(name); return n.Total() }
	unknown, malformed, tooBig, noRoute := c("tunnel_unknown_remote"), c("tunnel_malformed"), c("tunnel_too_big"), c("tunnel_no_route")

	stranger, err := openIn(t, ns, Config{Name: "tnlc", Type: "vxlan", Options: map[string]string{"local_ip": "127.0.0.1", "remote_ip": "127.0.0.2", "key": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = stranger.WriteBatch([][]byte{innerTestFrame(100)}) // VNI 2: b listens on VNI 1
	inNetns(t, ns, func() {
		conn, err := net.Dial("udp", "127.0.0.1:4789")
		if err == nil {
			_, _ = conn.Write([]byte("\x00 no VXLAN I flag in this header"))
			conn.Close()
		}
	})
	if got := readOne(b); got != nil {
		t.Fatalf("b received %x", got)
	}
	_ = a.WriteBatch([][]byte{innerTestFrame(1600)}) // over the loopback's MTU
	far, err := openIn(t, ns, Config{Name: "tnld", Type: "gre", Options: map[string]string{"local_ip": "127.0.0.1", "remote_ip": "203.0.113.1"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = far.WriteBatch([][]byte{innerTestFrame(100)})
	for name, before := range map[string]uint64{"tunnel_unknown_remote": unknown, "tunnel_malformed": malformed, "tunnel_too_big": tooBig, "tunnel_no_route": noRoute} {
		if c(name) != before+1 {
			t.Errorf("%s went from %d to %d, want one more", name, before, c(name))
		}
	}
	if s := a.Stats(); s.TxDropped != 1 || s.TxPackets != 0 {
		t.Errorf("a's statistics after a frame too big: %+v", s)
	}
	if s := far.Stats(); s.TxDropped != 1 {
		t.Errorf("statistics after no route: %+v", s)
	}
}

// Two ports that would receive the same packets, or a VXLAN and a Geneve
// port on one UDP port, are refused.
func TestTunnelConflictsRefused(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	opts := map[string]string{"remote_ip": "127.0.0.2", "key": "5"}
	if _, err := openIn(t, ns, Config{Name: "tnl1", Type: "gre", Options: opts}); err != nil {
		t.Fatal(err)
	}
	if _, err := openIn(t, ns, Config{Name: "tnl2", Type: "gre", Options: opts}); err == nil {
		t.Error("a second port with the same remote_ip and key was opened")
	}
	if _, err := openIn(t, ns, Config{Name: "tnl3", Type: "vxlan", Options: opts}); err != nil {
		t.Fatal(err)
	}
	if _, err := openIn(t, ns, Config{Name: "tnl4", Type: "geneve", Options: map[string]string{"remote_ip": "127.0.0.3", "dst_port": "4789"}}); err == nil {
		t.Error("a geneve port on VXLAN's UDP port was opened")
	}
}

// A tunnel port asks for its mirror copies through a queue (CopyQueued)
// and counts the copies the datapath dropped for it in tx_dropped.
func TestTunnelCountsDroppedCopies(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	a, _ := tunnelPair(t, ns, "gre", nil)
	q, ok := a.(CopyQueued)
	if !ok {
		t.Fatalf("a %T is not CopyQueued: mirror copies would be sent by the receiving thread", a)
	}
	q.CountTxDropped(3)
	if s := a.Stats(); s.TxDropped != 3 || s.TxPackets != 0 {
		t.Fatalf("statistics after 3 copies dropped: %+v", s)
	}
}

// TestTunnelPortsJoinSegments: VXLAN and Geneve ports, and GRE ports
// with options:gvs-gro=true, join the TCP segments of a flow they
// receive into one super-frame, as the kernel's underlay GRO does for
// its own GRE and UDP tunnel devices; ERSPAN ports, GRE ports by default
// (remote mirrors) and a port with options:gvs-gro=false hand them over
// as they came.
func TestTunnelPortsJoinSegments(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	for _, tc := range []struct {
		name, typ string
		opts      map[string]string
		join      bool
	}{
		{"gre", "gre", map[string]string{"key": "16", "gvs-gro": "true"}, true},
		{"gre-default", "gre", map[string]string{"key": "16"}, false},
		{"gre-no-gro", "gre", map[string]string{"key": "16", "gvs-gro": "false"}, false},
		{"vxlan-no-gro", "vxlan", map[string]string{"key": "16", "gvs-gro": "false"}, false},
		{"erspan", "erspan", map[string]string{"key": "3"}, false},
		{"vxlan", "vxlan", map[string]string{"key": "16"}, true},
		{"geneve", "geneve", map[string]string{"key": "16", "gvs-gro": "true"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tunnelPair(t, ns, tc.typ, tc.opts)
			if got := b.(SuperFrameSource).PassesSuperFrames(); got != tc.join {
				t.Errorf("PassesSuperFrames %v, want %v", got, tc.join)
			}
			in := buildAll(groRun(4, 1000))
			if err := a.WriteBatch(in); err != nil {
				t.Fatal(err)
			}
			for i := 0; b.(*tunnelPort).rxWaiting() < 4; i++ {
				if i == 100 {
					t.Fatalf("%d of 4 segments arrived", b.(*tunnelPort).rxWaiting())
				}
				time.Sleep(10 * time.Millisecond)
			}
			bufs, sizes, offs := make([][]byte, 4), make([]int, 4), make([]Offload, 4)
			for i := range bufs {
				bufs[i] = make([]byte, MaxSuperFrame)
			}
			k, err := b.(OffloadPort).ReadBatchOffload(bufs, sizes, offs)
			if err != nil {
				t.Fatal(err)
			}
			want := 4
			if tc.join {
				want = 1
			}
			if k != want || (tc.join && Segments(bufs[0][:sizes[0]], offs[0]) != 4) {
				t.Errorf("read %d frames (first of %d segments), want %d", k, Segments(bufs[0][:sizes[0]], offs[0]), want)
			}
			if s := b.Stats(); s.RxPackets != 4 {
				t.Errorf("rx_packets %d, want the 4 segments as they came", s.RxPackets)
			}
		})
	}
}
