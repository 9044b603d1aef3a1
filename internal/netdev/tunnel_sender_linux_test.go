//go:build linux

package netdev

import (
	"bytes"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// A TunnelSender's frames reach a tunnel port facing it, as a tunnel
// port's would: a plain frame byte for byte, a TCP super-frame cut into
// segments first. It takes no underlay, so a port with its very
// configuration still opens, and its sockets carry the mark.
func TestTunnelSenderReachesPort(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	rx, err := openIn(t, ns, Config{Name: "tnlrx", Type: "gre",
		Options: map[string]string{"local_ip": "127.0.0.2", "remote_ip": "127.0.0.1", "key": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx *TunnelSender
	inNetns(t, ns, func() {
		tx, err = NewTunnelSender(TunnelSenderConfig{Name: "span x gre", Mark: 7, HasMark: true,
			Encap: packet.TunnelConfig{Type: packet.TunnelGRE, Dst: netip.MustParseAddr("127.0.0.2"), Key: 5, HasKey: true, DF: true}})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	_ = tx.w.rc.Control(func(fd uintptr) {
		if m, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK); err != nil || m != 7 {
			t.Errorf("SO_MARK = %d, %v; want 7", m, err)
		}
	})
	plain := innerTestFrame(200)
	super, off := testSuperFrame(t, 3000, 1000)
	b := NewBatch(2)
	b.Add(plain, Offload{}, len(plain), 0)
	b.Add(super, off, len(super), 0)
	if r := tx.Send(b); r != (TxResult{Sent: 4}) {
		t.Fatalf("Send = %+v, want 4 frames sent (1 + 3 segments)", r)
	}
	if got := readOne(rx); !bytes.Equal(got, plain) {
		t.Fatalf("received %x, want %x", got, plain)
	}
	total := 0
	for range 3 {
		seg := readOne(rx)
		if seg == nil {
			t.Fatal("a segment of the super-frame did not arrive")
		}
		total += len(seg) - 54 // Ethernet, IPv4, TCP
	}
	if total != 3000 {
		t.Errorf("segments carry %d payload bytes, want 3000", total)
	}
	// Sending allocates nothing once the segment buffers exist.
	if n := testing.AllocsPerRun(20, func() {
		b.Reset()
		b.Add(plain, Offload{}, len(plain), 0)
		b.Add(super, off, len(super), 0)
		tx.Send(b)
	}); n != 0 {
		t.Errorf("Send allocates %.1f times per batch", n)
	}
}

// BenchmarkTunnelSenderSend: encapsulating and sending batches of 64
// frames of 1500 bytes through the kernel's routing (the loopback of a
// namespace of its own); ns/op is per frame.
func BenchmarkTunnelSenderSend(b *testing.B) {
	needRoot(b)
	ns := newNetns(b)
	for _, c := range []struct {
		name string
		cfg  packet.TunnelConfig
	}{
		{"gre", packet.TunnelConfig{Type: packet.TunnelGRE, Dst: netip.MustParseAddr("127.0.0.2"), Key: 5, HasKey: true, DF: true}},
		{"erspan2", packet.TunnelConfig{Type: packet.TunnelERSPAN, ERSPANVer: 1, Dst: netip.MustParseAddr("127.0.0.2"), DF: true}},
		{"vxlan", packet.TunnelConfig{Type: packet.TunnelVXLAN, Dst: netip.MustParseAddr("127.0.0.2"), Key: 7, DF: true}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var tx *TunnelSender
			var err error
			inNetns(b, ns, func() { tx, err = NewTunnelSender(TunnelSenderConfig{Name: c.name, Encap: c.cfg}) })
			if err != nil {
				b.Fatal(err)
			}
			defer tx.Close()
			frame := innerTestFrame(1500)
			batch := NewBatch(64)
			for range 64 {
				batch.Add(frame, Offload{}, len(frame), 0)
			}
			b.ReportAllocs()
			b.SetBytes(1500)
			b.ResetTimer()
			sent := 0
			for i := 0; i < b.N; i += 64 {
				sent += tx.Send(batch).Sent
			}
			b.StopTimer()
			if sent == 0 {
				b.Fatal("nothing sent")
			}
		})
	}
}

// A TunnelSender to an IPv6 remote without a local address looks its
// source up over IPv6 (this panicked: the IPv4 socket address was built
// first, whatever the remote) and its frames reach an ip6gre port.
func TestTunnelSenderIPv6RouteSource(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	rx, err := openIn(t, ns, Config{Name: "tnlrx6", Type: "ip6gre",
		Options: map[string]string{"remote_ip": "::1", "key": "6"}})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	var tx *TunnelSender
	inNetns(t, ns, func() {
		tx, err = NewTunnelSender(TunnelSenderConfig{Name: "span x gre6",
			Encap: packet.TunnelConfig{Type: packet.TunnelGRE, Dst: netip.MustParseAddr("::1"), Key: 6, HasKey: true}})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	if src := tx.w.encap.Config().Src; src != netip.MustParseAddr("::1") {
		t.Errorf("outer source %v, want ::1 (the route's)", src)
	}
	plain := innerTestFrame(120)
	b := NewBatch(1)
	b.Add(plain, Offload{}, len(plain), 0)
	if r := tx.Send(b); r.Sent != 1 {
		t.Fatalf("Send = %+v", r)
	}
	if got := readOne(rx); !bytes.Equal(got, plain) {
		t.Fatalf("received %x, want %x", got, plain)
	}
}
