package offload

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"
	"unsafe"

	"github.com/cilium/ebpf"
	"gvs/internal/packet"
)

var (
	tunLocal  = netip.MustParseAddr("172.31.77.1")
	tunRemote = netip.MustParseAddr("172.31.77.2")
	macUL     = []byte{0x02, 0, 0, 0, 0x77, 1} // the underlay device's
	macNH     = []byte{0x02, 0, 0, 0, 0x77, 2} // the next hop's
)

const tunKey = 16

// greEncap is gvsd's own encapsulation of the test tunnel (key 16, DF,
// TTL 64): the outer headers Build writes for inner.
func greEncap(t testing.TB, src, dst netip.Addr, inner []byte) []byte {
	t.Helper()
	e, err := packet.NewEncap(packet.TunnelConfig{Type: packet.TunnelGRE, Src: src, Dst: dst, DF: true, Key: tunKey, HasKey: true})
	if err != nil {
		t.Fatal(err)
	}
	hdr := make([]byte, e.Len())
	if _, err := e.Build(hdr, inner, 0); err != nil {
		t.Fatal(err)
	}
	return hdr
}

// tunnelPath is the test tunnel's path, as the datapath would hand it:
// the headers with the IPv4 total length and checksum zero.
func tunnelPath(t testing.TB) TunnelPath {
	hdr := append(append(append([]byte{}, macNH...), macUL...), 0x08, 0)
	ip := greEncap(t, tunLocal, tunRemote, nil)
	ip[2], ip[3], ip[10], ip[11] = 0, 0, 0, 0
	return TunnelPath{Header: append(hdr, ip...), Ifindex: loopbackIfindex, MTU: 1500,
		Remote: tunRemote, Local: tunLocal, Key: tunKey, Receive: true}
}

// runPinned runs prog on data on CPU 0 (whose scratch the test then
// reads) and returns its verdict and the packet after it.
func runPinned(t testing.TB, prog *ebpf.Program, data []byte) (uint32, []byte) {
	t.Helper()
	opts := &ebpf.RunOptions{Data: data, DataOut: make([]byte, len(data)+256)}
	var ret uint32
	var err error
	onCPU0(t, func() { ret, err = prog.Run(opts) })
	if err != nil {
		t.Fatalf("test run: %v", err)
	}
	return ret, opts.DataOut
}

// TestTunnelEncap: a flow that ends in a GRE port is sent by the tc
// program with exactly the headers gvsd writes (the outer IPv4 length
// and checksum filled in), out of the tunnel's device, and counted on
// the tunnel port; a frame too long for the route's MTU once
// encapsulated, and any frame while the tunnel has no route, go to
// gvsd instead.
func TestTunnelEncap(t *testing.T) {
	k := loadForTest(t)
	p, err := k.NewPort(loopbackIfindex, testInPort)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	tun, err := k.NewTunnel(9)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	if err := p.SetMask(0, []uint16{dlTypeWord}, []uint64{dlTypeMask}); err != nil {
		t.Fatal(err)
	}
	if err := k.SetGeneration(1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddFlow(0, []uint64{dlTypeVal(0x0800)}, []Op{Encap(tun)}, 1, 0); err != nil {
		t.Fatal(err)
	}
	frame := eth(0x0800, ipv4(17, 0, nil, udp()))

	// No route yet: gvsd sends.
	slow := k.Counters()[CounterTunnelSlow]
	if ret, _ := classify(t, k, frame); ret != 1 {
		t.Fatalf("classify with no tunnel route: %d, want 1 (to gvsd)", ret)
	}
	if k.Counters()[CounterTunnelSlow] != slow+1 {
		t.Error("the packet left to gvsd was not counted")
	}

	path := tunnelPath(t)
	if err := tun.SetTunnel(path); err != nil {
		t.Fatal(err)
	}
	if ret, _ := classify(t, k, frame); ret != 0 {
		t.Fatalf("classify: %d, want 0 (a flow)", ret)
	}
	ret, out := runPinned(t, k.ingress, frame)
	if ret != tcActRedirect {
		t.Fatalf("tc returned %#x, want TC_ACT_REDIRECT", ret)
	}
	want := append(append(append([]byte{}, path.Header[:14]...), greEncap(t, tunLocal, tunRemote, frame)...), frame...)
	if !bytes.Equal(out, want) {
		t.Errorf("encapsulated frame\n got  %x\n want %x", out, want)
	}
	if s := tun.Stats(); s.TxPackets != 1 || s.TxBytes != uint64(len(frame)) {
		t.Errorf("tunnel port counters %+v, want one frame of %d bytes out", s, len(frame))
	}

	// Too long for the route's MTU once encapsulated: gvsd's.
	big := eth(0x0800, ipv4(17, 0, nil, append(udp(), make([]byte, 1500-20-12-30)...)))
	binary.BigEndian.PutUint16(big[14+20+4:], uint16(len(big)-14-20))
	if ret, _ := classify(t, k, big); ret != 1 {
		t.Errorf("classify of a %d-byte frame for a 1500-byte route: %d, want 1 (to gvsd)", len(big), ret)
	}

	// Without a route again, gvsd's.
	if err := tun.SetTunnel(TunnelPath{}); err != nil {
		t.Fatal(err)
	}
	if ret, _ := classify(t, k, frame); ret != 1 {
		t.Errorf("classify after the route went: %d, want 1", ret)
	}
}

// TestTunnelDecap: a GRE packet for the tunnel port is decapsulated
// and forwarded by its flow, keyed as gvsd keys it (the inner frame's
// key with the tunnel metadata its underlay reader sets); packets of
// another key, remote or local address, with a GRE checksum or a
// sequence number, or of no flow go on to the kernel (and gvsd).
func TestTunnelDecap(t *testing.T) {
	k := loadForTest(t)
	out, err := k.NewPort(loopbackIfindex, testInPort)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tun, err := k.NewTunnel(9)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	if err := tun.SetTunnel(tunnelPath(t)); err != nil {
		t.Fatal(err)
	}
	// The flow matches tun_id and dl_type.
	if err := tun.SetMask(0, []uint16{0, dlTypeWord}, []uint64{^uint64(0), dlTypeMask}); err != nil {
		t.Fatal(err)
	}
	if err := k.SetGeneration(1); err != nil {
		t.Fatal(err)
	}
	if _, err := tun.AddFlow(0, []uint64{tunKey, dlTypeVal(0x0800)}, []Op{Output(out)}, 1, 0); err != nil {
		t.Fatal(err)
	}
	inner := eth(0x0800, ipv4(6, 0x4000, nil, tcp(0x18, 5)))
	received := func(src, dst netip.Addr, mutate func(gre []byte) []byte) []byte {
		hdr := greEncap(t, src, dst, inner)
		ip, gre := hdr[:20], mutate(append([]byte{}, hdr[20:]...))
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(gre)+len(inner)))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip, 0))
		// To the loopback device's address (all zeros), where test
		// runs happen: a packet for this host.
		b := append(make([]byte, 6), macNH...)
		b = append(b, 0x08, 0)
		return append(append(append(b, ip...), gre...), inner...)
	}
	same := func(gre []byte) []byte { return gre }
	pkt := received(tunRemote, tunLocal, same)

	ret, got := runPinned(t, k.decap, pkt)
	if ret != tcActRedirect {
		t.Fatalf("decap returned %#x, want TC_ACT_REDIRECT", ret)
	}
	if !bytes.Equal(got, inner) {
		t.Errorf("decapsulated frame\n got  %x\n want %x", got, inner)
	}
	if key := scratchKey(t, k); !bytes.Equal(key, gvsdTunnelKey(t, pkt[14:], 9)) {
		t.Errorf("key differs from gvsd's\n bpf %x\n go  %x", key, gvsdTunnelKey(t, pkt[14:], 9))
	}
	if s := tun.Stats(); s.RxPackets != 1 {
		t.Errorf("tunnel port counters %+v, want one packet in", s)
	}

	for _, c := range []struct {
		name string
		pkt  []byte
	}{
		{"another key", received(tunRemote, tunLocal, func(g []byte) []byte { g[7] = 17; return g })},
		{"another remote", received(netip.MustParseAddr("172.31.77.3"), tunLocal, same)},
		{"another local", received(tunRemote, netip.MustParseAddr("172.31.77.4"), same)},
		{"checksum", received(tunRemote, tunLocal, func(g []byte) []byte {
			return append([]byte{0xa0, 0, 0x65, 0x58, 0, 0, 0, 0}, g[4:]...)
		})},
		{"sequence", received(tunRemote, tunLocal, func(g []byte) []byte { return append(append([]byte{0x30, 0}, g[2:]...), 0, 0, 0, 1) })},
		{"bad outer checksum", func() []byte {
			b := received(tunRemote, tunLocal, same)
			b[14+10] ^= 0xff
			return b
		}()},
		{"inner ARP (inner IPv4 only)", func() []byte {
			b := received(tunRemote, tunLocal, same)
			return append(b[:14+28], eth(0x0806, arp(1))...)
		}()},
	} {
		if ret, _ := runPinned(t, k.decap, c.pkt); ret != tcActUnspec {
			t.Errorf("%s: decap returned %#x, want TC_ACT_UNSPEC (to the kernel)", c.name, ret)
		}
	}

	// A second port of the same remote, local address and key takes
	// nothing from the first (gvsd gives the packets to one port), and
	// leaves its decapsulation in place when it goes.
	other, err := k.NewTunnel(10)
	if err != nil {
		t.Fatal(err)
	}
	if err := other.SetTunnel(tunnelPath(t)); err != nil {
		t.Fatal(err)
	}
	if other.Attached() {
		t.Error("a second port of the same receive key receives in the kernel")
	}
	other.Close()
	if ret, _ := runPinned(t, k.decap, pkt); ret != tcActRedirect {
		t.Errorf("after the second port went, decap returned %#x, want TC_ACT_REDIRECT", ret)
	}
	if key := scratchKey(t, k); !bytes.Equal(key, gvsdTunnelKey(t, pkt[14:], 9)) {
		t.Error("after the second port went, the packet is keyed for another port")
	}
	// A path the port does not receive by takes its decapsulation out.
	path := tunnelPath(t)
	path.Receive = false
	if err := tun.SetTunnel(path); err != nil {
		t.Fatal(err)
	}
	if ret, _ := runPinned(t, k.decap, pkt); ret != tcActUnspec {
		t.Errorf("with Receive false, decap returned %#x, want TC_ACT_UNSPEC", ret)
	}
}

// scratchKey is the key the program last built on CPU 0.
func scratchKey(t testing.TB, k *Kernel) []byte {
	t.Helper()
	var per [][]byte
	if err := k.scratch.Lookup(uint32(0), &per); err != nil {
		t.Fatalf("scratch: %v", err)
	}
	return per[0][:keySize]
}

// gvsdTunnelKey is the cache key gvsd gives the GRE packet pkt (outer
// IPv4 header on) received for tunnel port inport: its underlay
// reader's decapsulation and tunnel metadata, then Parse of the inner
// frame.
func gvsdTunnelKey(t testing.TB, pkt []byte, inport uint32) []byte {
	t.Helper()
	var o packet.OuterIP
	if err := packet.ParseOuterIPv4(pkt, &o); err != nil {
		t.Fatal(err)
	}
	b := pkt[o.Payload:o.End]
	var info packet.TunnelInfo
	if err := packet.ParseGRE(b, &info); err != nil {
		t.Fatal(err)
	}
	var md packet.TunnelMeta
	md.SetReceived(&info, o.Src, o.Dst, o.Meta)
	var key packet.Key
	_ = packet.Parse(b[info.Inner:], inport, &key, nil)
	md.ToKey(&key)
	out := make([]byte, keySize)
	copy(out, unsafe.Slice((*byte)(unsafe.Pointer(&key)), unsafe.Sizeof(key)))
	return out
}

// FuzzDecapMatchesGvsd: whatever the outer IPv4 packet, one the
// program decapsulates is one gvsd's underlay reader gives to the same
// port (remote, local address, key), with the same inner frame and key.
// The input is the outer IPv4 packet; its header checksum is made right
// unless the input's last byte is odd.
func FuzzDecapMatchesGvsd(f *testing.F) {
	ipPacket := func(payload []byte) []byte {
		ip := greEncap(f, tunRemote, tunLocal, nil)[:20]
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(payload)))
		return append(append([]byte{}, ip...), payload...)
	}
	inner := eth(0x0800, ipv4(6, 0x4000, nil, tcp(0x18, 5)))
	gre := greEncap(f, tunRemote, tunLocal, inner)[20:]
	f.Add(ipPacket(append(append([]byte{}, gre...), inner...)))
	f.Add(ipPacket(append([]byte{0, 0, 0x65, 0x58}, eth(0x0800, ipv4(17, 0, nil, udp()))...)))
	f.Add(ipPacket(append([]byte{0, 0, 0x65, 0x58}, eth(0x0806, arp(1))...)))
	f.Add(ipPacket(append(append([]byte{}, gre...), eth(0x86dd, ipv6(17, udp()))...)))
	f.Add(ipPacket(append(append([]byte{}, gre...), eth(0x8100, []byte{0, 10, 8, 0}, ipv4(17, 0, nil, udp()))...)))
	k := loadForTest(f)
	out, err := k.NewPort(loopbackIfindex, testInPort)
	if err != nil {
		f.Fatal(err)
	}
	defer out.Close()
	tun, err := k.NewTunnel(9)
	if err != nil {
		f.Fatal(err)
	}
	defer tun.Close()
	path := tunnelPath(f)
	path.Key = 0 // packets without a key, or key 0, are the port's
	if err := tun.SetTunnel(path); err != nil {
		f.Fatal(err)
	}
	// One flow for every frame of the port: in_port only (key word 3
	// holds InPort in its low half).
	const inPortWord = 3
	if err := tun.SetMask(0, []uint16{inPortWord}, []uint64{0xffffffff}); err != nil {
		f.Fatal(err)
	}
	if err := k.SetGeneration(1); err != nil {
		f.Fatal(err)
	}
	if _, err := tun.AddFlow(0, []uint64{9}, []Op{Output(out)}, 1, 0); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ip []byte) {
		if len(ip) < 20 || len(ip) > 1500 {
			return
		}
		if ip[len(ip)-1]&1 == 0 && ip[0]&0xf >= 5 {
			hl := int(ip[0]&0xf) * 4
			if hl <= len(ip) {
				ip[10], ip[11] = 0, 0
				binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip[:hl], 0))
			}
		}
		pkt := append(append(append(make([]byte, 6), macNH...), 0x08, 0), ip...)
		ret, got := runPinned(t, k.decap, pkt)
		if ret == tcActUnspec {
			return // the kernel's, and gvsd's raw socket's
		}
		if ret != tcActRedirect {
			t.Fatalf("decap returned %#x", ret)
		}
		var o packet.OuterIP
		if err := packet.ParseOuterIPv4(ip, &o); err != nil || packet.Checksum(ip[:o.Payload], 0) != 0xffff {
			t.Fatalf("decapsulated a packet whose outer IPv4 header the kernel refuses (%v)", err)
		}
		b := ip[o.Payload:o.End]
		var info packet.TunnelInfo
		if err := packet.ParseGRE(b, &info); err != nil || info.Type != packet.TunnelGRE {
			t.Fatalf("decapsulated a packet gvsd's reader refuses (%v)", err)
		}
		// gvsd's tunnelOptions.matches for this port: remote_ip,
		// local_ip and key 0.
		if o.Src != tunRemote || o.Dst != tunLocal || info.Key != 0 {
			t.Fatalf("decapsulated a packet of %s to %s key %d for the port of %s to %s key 0", o.Src, o.Dst, info.Key, tunRemote, tunLocal)
		}
		if !bytes.Equal(got, b[info.Inner:]) {
			t.Fatalf("inner frame\n got  %x\n want %x", got, b[info.Inner:])
		}
		if key, want := scratchKey(t, k), gvsdTunnelKey(t, ip, 9); !bytes.Equal(key, want) {
			t.Fatalf("key differs from gvsd's\n bpf %x\n go  %x", key, want)
		}
	})
}

// TestOrderEncap: an encapsulation goes last among plain outputs (a
// mirror into a GRE port), and a list the kernel cannot order is
// refused.
func TestOrderEncap(t *testing.T) {
	out := Op{kind: opOutput, port: 1}
	out2 := Op{kind: opOutput, port: 2}
	enc := Op{kind: opEncap, port: 3}
	push := PushVLAN(0x8100, 10)
	for _, c := range []struct {
		name string
		ops  []Op
		want []Op // nil: refused
	}{
		{"already last", []Op{out, enc}, []Op{out, enc}},
		{"mirror copy first", []Op{enc, out}, []Op{out, enc}},
		{"between outputs", []Op{out, enc, out2}, []Op{out, out2, enc}},
		{"alone", []Op{enc}, []Op{enc}},
		{"no tunnel", []Op{push, out}, []Op{push, out}},
		{"two tunnels", []Op{enc, out, enc}, nil},
		{"VLAN before the tunnel", []Op{push, enc}, nil},
		{"VLAN around it", []Op{enc, push, out}, nil},
	} {
		got, ok := OrderEncap(append([]Op{}, c.ops...))
		if ok != (c.want != nil) || (ok && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("%s: OrderEncap = %v, %v; want %v", c.name, got, ok, c.want)
		}
	}
}
