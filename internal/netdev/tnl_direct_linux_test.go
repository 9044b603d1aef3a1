//go:build linux

package netdev

import (
	"bytes"
	"testing"
	"time"
)

// directPair makes two namespaces joined by a veth (10.9.0.1/24 and
// 10.9.0.2/24, or the IPv6 addresses when v6) and returns them.
func directPair(t testing.TB, v6 bool) (ns1, ns2, addr1, addr2 string) {
	t.Helper()
	ns1, ns2 = newNetns(t), newNetns(t)
	v1, v2 := uniqueName(t, "a"), uniqueName(t, "b")
	addr1, addr2, plen := "10.9.0.1", "10.9.0.2", "/24"
	if v6 {
		addr1, addr2, plen = "2001:db8:9::1", "2001:db8:9::2", "/64"
	}
	run(t, "ip", "-n", ns1, "link", "add", v1, "type", "veth", "peer", "name", v2, "netns", ns2)
	run(t, "ip", "-n", ns1, "addr", "add", addr1+plen, "dev", v1, "nodad")
	run(t, "ip", "-n", ns2, "addr", "add", addr2+plen, "dev", v2, "nodad")
	run(t, "ip", "-n", ns1, "link", "set", v1, "up")
	run(t, "ip", "-n", ns2, "link", "set", v2, "up")
	return ns1, ns2, addr1, addr2
}

// directPorts opens a tunnel port of typ in ns1 towards ns2 and its peer
// in ns2, with key and the extra options on the sender.
func directPorts(t testing.TB, typ, ns1, ns2, addr1, addr2, key string, extra map[string]string) (a, b Netdev) {
	t.Helper()
	opts := func(l, r string) map[string]string {
		return map[string]string{"local_ip": l, "remote_ip": r, "key": key}
	}
	b, err := openIn(t, ns2, Config{Name: "tnlb" + key, Type: typ, Options: opts(addr2, addr1)})
	if err != nil {
		t.Fatal(err)
	}
	o := opts(addr1, addr2)
	for k, v := range extra {
		o[k] = v
	}
	if a, err = openIn(t, ns1, Config{Name: "tnla" + key, Type: typ, Options: o}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// BenchmarkTunnelGRESend: a GRE port sends batches of 32 wire-size
// frames over a veth to a GRE port in another namespace, through the raw
// IP socket (options:gvs-direct=false) or directly (tnl_direct_linux.go);
// the far end's receive runs in the sender's softirq, as between two
// hosts on one machine. ns/frame is per frame.
func BenchmarkTunnelGRESend(b *testing.B) {
	needRoot(b)
	ns1, ns2, addr1, addr2 := directPair(b, false)
	raw, rawPeer := directPorts(b, "gre", ns1, ns2, addr1, addr2, "16", map[string]string{"gvs-direct": "false"})
	direct, directPeer := directPorts(b, "gre", ns1, ns2, addr1, addr2, "17", nil)
	frames := make([][]byte, tunnelBatch)
	for i := range frames {
		frames[i] = innerTestFrame(1414)
	}
	_ = raw.WriteBatch(frames[:1]) // the kernel resolves the neighbour
	time.Sleep(directRecheck + 100*time.Millisecond)
	for _, c := range []struct {
		name      string
		dev, peer Netdev
	}{{"raw", raw, rawPeer}, {"direct", direct, directPeer}} {
		b.Run(c.name, func(b *testing.B) {
			before, s0, p0 := tunnelDirectTx.Total(), c.dev.Stats(), c.peer.Stats()
			for b.Loop() {
				_ = c.dev.WriteBatch(frames)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(frames)), "ns/frame")
			s1 := c.dev.Stats()
			b.ReportMetric(float64(s1.TxDropped-s0.TxDropped)/float64(b.N*len(frames)), "dropped/frame")
			time.Sleep(100 * time.Millisecond)
			p1 := c.peer.Stats()
			b.ReportMetric(float64(p1.RxPackets+p1.RxDropped-p0.RxPackets-p0.RxDropped)/float64(b.N*len(frames)), "arrived/frame")
			if sent := tunnelDirectTx.Total() - before; (sent > 0) != (c.name == "direct") {
				b.Errorf("%d frames sent directly", sent)
			}
		})
	}
}

// TestTunnelDirectSend: once the kernel has resolved the remote's
// neighbour, a GRE port on the host's routing sends straight to the
// route's device (coverage tunnel_direct_tx), and the far port receives
// the frames as from the raw socket, over IPv4 and IPv6.
func TestTunnelDirectSend(t *testing.T) {
	needRoot(t)
	for _, v6 := range []bool{false, true} {
		typ := "gre"
		if v6 {
			typ = "ip6gre"
		}
		t.Run(typ, func(t *testing.T) {
			ns1, ns2, addr1, addr2 := directPair(t, v6)
			a, b := directPorts(t, typ, ns1, ns2, addr1, addr2, "16", nil)
			frame := innerTestFrame(1000)
			send := func(what string) {
				t.Helper()
				if err := a.WriteBatch([][]byte{frame}); err != nil {
					t.Fatal(err)
				}
				if got := readOne(b); !bytes.Equal(got, frame) {
					t.Fatalf("%s: got %x", what, got)
				}
			}
			// The kernel resolves the neighbour (a ping), then frames go
			// directly.
			run(t, "ip", "netns", "exec", ns1, "ping", "-c1", "-W5", addr2)
			before := tunnelDirectTx.Total()
			send("directly")
			if tunnelDirectTx.Total() != before+1 {
				t.Fatalf("a frame to a resolved neighbour was not sent directly; neighbours: %s", run(t, "ip", "-n", ns1, "neigh"))
			}
			// Without a neighbour entry, through the raw socket (which
			// makes the kernel resolve it again), from the next lookup on.
			run(t, "ip", "-n", ns1, "neigh", "flush", "all")
			time.Sleep(directRecheck + 50*time.Millisecond)
			before = tunnelDirectTx.Total()
			send("through the raw socket")
			if tunnelDirectTx.Total() != before {
				t.Fatal("sent directly with no neighbour entry")
			}
			// options:gvs-direct=false: always the raw socket.
			off, offPeer := directPorts(t, typ, ns1, ns2, addr1, addr2, "17", map[string]string{"gvs-direct": "false"})
			run(t, "ip", "netns", "exec", ns1, "ping", "-c1", "-W5", addr2)
			before = tunnelDirectTx.Total()
			if err := off.WriteBatch([][]byte{frame}); err != nil {
				t.Fatal(err)
			}
			if got := readOne(offPeer); !bytes.Equal(got, frame) || tunnelDirectTx.Total() != before {
				t.Errorf("with gvs-direct=false: got %x, %d sent directly", got, tunnelDirectTx.Total()-before)
			}
			if sa, sb := a.Stats(), b.Stats(); sa.TxPackets != sb.RxPackets || sa.TxDropped != 0 || sa.TxErrors != 0 {
				t.Errorf("statistics: sender %+v, receiver %+v", sa, sb)
			}
		})
	}
}
