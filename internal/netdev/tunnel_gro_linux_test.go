//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"gvs/internal/packet"
)

// groSeg describes one TCP segment for the joining tests.
type groSeg struct {
	v6      bool
	seq     uint32
	flags   byte
	payload int
	id      uint16
	tos     byte
	srcPort uint16
	ipOpts  bool   // an IPv4 header with one option word (IHL 6)
	tcpOpts []byte // TCP options (a multiple of 4 bytes)
	badSum  bool   // a wrong TCP checksum
	vlan    bool
	pad     int // Ethernet padding after the IP packet
}

var (
	groSrc4, groDst4 = net.IPv4(10, 1, 0, 1), net.IPv4(10, 1, 0, 2)
	groSrc6, groDst6 = net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8::2")
	groData          = patterned(1 << 17)
)

// build makes the frame, with checksums right unless badSum; the payload
// is groData at the sequence number's offset, so joined payloads can be
// checked.
func (s groSeg) build() []byte {
	if s.srcPort == 0 {
		s.srcPort = 40000
	}
	tcp := make([]byte, 20+len(s.tcpOpts))
	binary.BigEndian.PutUint16(tcp[0:], s.srcPort)
	binary.BigEndian.PutUint16(tcp[2:], 5001)
	binary.BigEndian.PutUint32(tcp[4:], s.seq)
	binary.BigEndian.PutUint32(tcp[8:], 7)
	tcp[12], tcp[13] = byte(len(tcp)/4)<<4, s.flags
	binary.BigEndian.PutUint16(tcp[14:], 500)
	copy(tcp[20:], s.tcpOpts)
	off := int(s.seq - 1000)
	tcp = append(tcp, groData[off:off+s.payload]...)
	src, dst := groSrc4, groDst4
	if s.v6 {
		src, dst = groSrc6, groDst6
	}
	sum := ^uint16(naiveSum(append(pseudoBytes(src, dst, len(tcp)), tcp...)))
	if s.badSum {
		sum ^= 0x0100
	}
	binary.BigEndian.PutUint16(tcp[16:], sum)
	var ip []byte
	if s.v6 {
		ip = ipv6Packet(src, dst, ipProtoTCP, tcp)
		ip[1] = s.tos >> 4 << 4
		ip[0] |= s.tos >> 4
	} else {
		ip = ipv4Packet(src, dst, ipProtoTCP, s.id, tcp)
		ip[1] = s.tos
		if s.ipOpts {
			ip = append(append(append([]byte{}, ip[:20]...), 1, 1, 1, 0), ip[20:]...) // NOP NOP NOP EOL
			ip[0] = 0x46
			binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
		}
		ip[10], ip[11] = 0, 0
		ihl := int(ip[0]&0xf) * 4
		binary.BigEndian.PutUint16(ip[10:], ^uint16(naiveSum(ip[:ihl])))
	}
	et := uint16(etherTypeIPv4)
	if s.v6 {
		et = etherTypeIPv6
	}
	var f []byte
	if s.vlan {
		f = append(ethernet(macA, macB, etherTypeVLAN), 0, 5)
		f = binary.BigEndian.AppendUint16(f, et)
	} else {
		f = ethernet(macA, macB, et)
	}
	f = append(f, ip...)
	return append(f, make([]byte, s.pad)...)
}

func pseudoBytes(src, dst net.IP, l4len int) []byte {
	var p []byte
	if v4 := src.To4(); v4 != nil {
		p = append(append(p, v4...), dst.To4()...)
	} else {
		p = append(append(p, src.To16()...), dst.To16()...)
	}
	return append(p, 0, ipProtoTCP, byte(l4len>>8), byte(l4len))
}

// groRun is n segments of mss bytes of one flow, IDs counting up.
func groRun(n, mss int) []groSeg {
	segs := make([]groSeg, n)
	for i := range segs {
		segs[i] = groSeg{seq: 1000 + uint32(i*mss), flags: tcpFlagACK, payload: mss, id: 100 + uint16(i)}
	}
	return segs
}

// groTake puts frames (with metadata mds, if given) into a tunnel port's
// receive ring and takes them with joining, into nbufs buffers.
func groTake(t *testing.T, frames [][]byte, mds []packet.TunnelMeta, nbufs int) ([][]byte, []Offload) {
	t.Helper()
	var r rxRing
	r.init()
	for i, f := range frames {
		var md packet.TunnelMeta
		if mds != nil {
			md = mds[i]
		}
		if !r.put(f, &md) {
			t.Fatal("ring full")
		}
	}
	bufs := make([][]byte, nbufs)
	for i := range bufs {
		bufs[i] = make([]byte, MaxSuperFrame)
	}
	sizes, offs := make([]int, nbufs), make([]Offload, nbufs)
	k, c := r.take(bufs, sizes, offs, nil, true)
	var n uint64
	for _, f := range frames[:min(len(frames), int(c.packets))] {
		n += uint64(len(f))
	}
	if c.bytes != n {
		t.Errorf("counted %d bytes for %d frames, want %d", c.bytes, c.packets, n)
	}
	out := make([][]byte, k)
	for i := range out {
		out[i] = bufs[i][:sizes[i]]
	}
	return out, offs[:k]
}

func buildAll(segs []groSeg) [][]byte {
	frames := make([][]byte, len(segs))
	for i, s := range segs {
		frames[i] = s.build()
	}
	return frames
}

// TestTunnelGROJoinsAndCutsBack: a run of segments becomes one
// super-frame with the right headers and offload, and the Sender's
// segmenter cuts it back into exactly the segments that came in.
func TestTunnelGROJoinsAndCutsBack(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		segs := groRun(5, 1400)
		segs[4].payload = 300 // a shorter last one
		segs[4].flags |= tcpFlagPSH
		for i := range segs {
			segs[i].v6 = v6
		}
		in := buildAll(segs)
		out, offs := groTake(t, in, nil, 4)
		if len(out) != 1 || !offs[0].IsSuper() {
			t.Fatalf("v6=%v: %d frames, first super=%v; want one super-frame", v6, len(out), len(offs) > 0 && offs[0].IsSuper())
		}
		f, o := out[0], offs[0]
		wantGSO := uint8(vnetGSOTCPv4)
		if v6 {
			wantGSO = vnetGSOTCPv6
		}
		if o.h.gsoType != wantGSO || o.h.gsoSize != 1400 || !o.h.needsCsum() || int(o.h.csumStart) != len(in[0])-1400-20 || o.h.csumOffset != 16 {
			t.Errorf("v6=%v: offload %+v", v6, o.h)
		}
		hlen := len(in[0]) - 1400
		if !bytes.Equal(f[hlen:], groData[:4*1400+300]) {
			t.Errorf("v6=%v: the super-frame's payload is not the segments' payloads in order", v6)
		}
		if !passThrough(f, o.h, false, false) {
			t.Errorf("v6=%v: a system port would not pass the super-frame through", v6)
		}
		back := segmentAll(t, f, o.h, 0)
		if len(back) != len(in) {
			t.Fatalf("v6=%v: cut back into %d segments, want %d", v6, len(back), len(in))
		}
		for i := range back {
			if !bytes.Equal(back[i], in[i]) {
				t.Errorf("v6=%v: segment %d cut back differs from the one received:\n got %x\nwant %x", v6, i, back[i][:hlen], in[i][:hlen])
			}
		}
	}
}

// TestTunnelGROWhatJoins: how many frames come out of a run of four
// segments of 1000 bytes when one of them differs.
func TestTunnelGROWhatJoins(t *testing.T) {
	ts := func(v byte) []byte { return []byte{1, 1, 8, 10, 0, 0, 0, v, 0, 0, 0, 1} }
	cases := []struct {
		name   string
		change func(s []groSeg) []groSeg
		mds    func(m []packet.TunnelMeta)
		want   []int // segments in each frame out
	}{
		{"one flow", nil, nil, []int{4}},
		{"another flow in the middle", func(s []groSeg) []groSeg { s[2].srcPort = 40001; return s }, nil, []int{2, 1, 1}},
		{"a gap", func(s []groSeg) []groSeg { return append(s[:1], s[2:]...) }, nil, []int{1, 2}},
		{"a repeated segment", func(s []groSeg) []groSeg { return append(s[:2], s[1:]...) }, nil, []int{2, 3}},
		{"PSH ends it", func(s []groSeg) []groSeg { s[1].flags |= tcpFlagPSH; return s }, nil, []int{2, 2}},
		{"PSH on the first", func(s []groSeg) []groSeg { s[0].flags |= tcpFlagPSH; return s }, nil, []int{1, 3}},
		{"FIN", func(s []groSeg) []groSeg { s[1].flags |= tcpFlagFIN; return s }, nil, []int{1, 1, 2}},
		{"CWR", func(s []groSeg) []groSeg { s[2].flags |= tcpFlagCWR; return s }, nil, []int{2, 1, 1}},
		{"ECE on all", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].flags |= tcpFlagECE
			}
			return s
		}, nil, []int{4}},
		{"ECE on one", func(s []groSeg) []groSeg { s[2].flags |= tcpFlagECE; return s }, nil, []int{2, 1, 1}},
		{"SYN", func(s []groSeg) []groSeg { s[0].flags |= 0x02; return s }, nil, []int{1, 3}},
		{"RST", func(s []groSeg) []groSeg { s[3].flags |= 0x04; return s }, nil, []int{3, 1}},
		{"URG", func(s []groSeg) []groSeg { s[1].flags |= 0x20; return s }, nil, []int{1, 1, 2}},
		{"no ACK", func(s []groSeg) []groSeg { s[0].flags = 0; return s }, nil, []int{1, 3}},
		{"pure ACKs", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].payload, s[i].seq = 0, 1000
			}
			return s
		}, nil, []int{1, 1, 1, 1}},
		{"IPv4 options", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].ipOpts = true
			}
			return s
		}, nil, []int{1, 1, 1, 1}},
		{"same TCP options", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].tcpOpts = ts(1)
			}
			return s
		}, nil, []int{4}},
		{"TCP options change", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].tcpOpts = ts(byte(i / 2))
			}
			return s
		}, nil, []int{2, 2}},
		{"TOS changes (ECN CE)", func(s []groSeg) []groSeg { s[1].tos = 3; return s }, nil, []int{1, 1, 2}},
		{"a bad checksum in the middle", func(s []groSeg) []groSeg { s[2].badSum = true; return s }, nil, []int{2, 1, 1}},
		{"a bad checksum on the first", func(s []groSeg) []groSeg { s[0].badSum = true; return s }, nil, []int{1, 3}},
		{"IP ID jumps", func(s []groSeg) []groSeg { s[2].id += 5; s[3].id += 5; return s }, nil, []int{2, 2}},
		{"IP ID fixed with DF", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].id = 7
			}
			return s
		}, nil, []int{4}},
		{"a short segment ends it", func(s []groSeg) []groSeg {
			s[1].payload = 500
			s[2].seq, s[3].seq = 1000+1500, 1000+2500
			return s
		}, nil, []int{2, 2}},
		{"a longer one after the first", func(s []groSeg) []groSeg {
			s[0].payload = 500
			for i := 1; i < 4; i++ {
				s[i].seq -= 500
			}
			return s
		}, nil, []int{1, 3}},
		{"VLAN-tagged", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].vlan = true
			}
			return s
		}, nil, []int{1, 1, 1, 1}},
		{"padded", func(s []groSeg) []groSeg { s[1].pad = 2; return s }, nil, []int{1, 1, 2}},
		{"IPv6", func(s []groSeg) []groSeg {
			for i := range s {
				s[i].v6 = true
			}
			return s
		}, nil, []int{4}},
		{"IPv4 then IPv6", func(s []groSeg) []groSeg { s[2].v6, s[3].v6 = true, true; return s }, nil, []int{2, 2}},
		{"other tunnel metadata", nil, func(m []packet.TunnelMeta) { m[2].ID, m[3].ID = 5, 5 }, []int{2, 2}},
		{"other outer TOS", nil, func(m []packet.TunnelMeta) { m[1].TOS = 4 }, []int{1, 1, 2}},
	}
	for _, c := range cases {
		segs := groRun(4, 1000)
		if c.change != nil {
			segs = c.change(segs)
		}
		in := buildAll(segs)
		mds := make([]packet.TunnelMeta, len(in))
		for i := range mds {
			mds[i] = packet.TunnelMeta{ID: 16, TTL: 64}
		}
		if c.mds != nil {
			c.mds(mds)
		}
		out, offs := groTake(t, in, mds, 8)
		got := make([]int, len(out))
		next := 0
		for i, f := range out {
			got[i] = Segments(f, offs[i])
			if !offs[i].IsSuper() {
				if !bytes.Equal(f, in[next]) {
					t.Errorf("%s: frame %d is not segment %d as it came", c.name, i, next)
				}
			} else if ok, _ := l4ChecksumOK(finished(f, offs[i])); !ok {
				t.Errorf("%s: super-frame %d: wrong checksum once finished", c.name, i)
			}
			next += got[i]
		}
		if !equalInts(got, c.want) {
			t.Errorf("%s: frames of %v segments, want %v", c.name, got, c.want)
		}
	}
}

// finished is a copy of super-frame f with its partial checksum done.
func finished(f []byte, o Offload) []byte {
	c := append([]byte(nil), f...)
	o.h.finish(c)
	return c
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestTunnelGROLimits: a super-frame stops at 64 KiB of IP packet, and at
// the last buffer the rest joins it while frames of other flows wait.
func TestTunnelGROLimits(t *testing.T) {
	in := buildAll(groRun(50, 1448))
	out, offs := groTake(t, in, nil, 4)
	if len(out) != 2 || Segments(out[0], offs[0]) != 45 || Segments(out[1], offs[1]) != 5 {
		t.Fatalf("%d frames; want 45 and 5 segments", len(out))
	}
	if ipLen := binary.BigEndian.Uint16(out[0][16:]); int(ipLen) != len(out[0])-14 || len(out[0])-14 > 0xffff {
		t.Errorf("IP total length %d for a %d-byte frame", ipLen, len(out[0]))
	}

	// One buffer: the run joins into it, the other flow stays queued.
	segs := groRun(3, 1000)
	segs = append(segs, groSeg{seq: 1000, flags: tcpFlagACK, payload: 100, srcPort: 1})
	var r rxRing
	r.init()
	for _, f := range buildAll(segs) {
		r.put(f, &packet.TunnelMeta{})
	}
	bufs, sizes, offs1 := [][]byte{make([]byte, MaxSuperFrame)}, []int{0}, []Offload{{}}
	if k, c := r.take(bufs, sizes, offs1, nil, true); k != 1 || c.packets != 3 || Segments(bufs[0][:sizes[0]], offs1[0]) != 3 {
		t.Fatalf("took %d frames of %d segments, want 1 of 3", k, c.packets)
	}
	if k, _ := r.take(bufs, sizes, offs1, nil, true); k != 1 || offs1[0].IsSuper() || sizes[0] != len(segs[3].build()) {
		t.Errorf("the other flow's segment was not left for the next read")
	}
	// Without joining (ReadBatch; an ERSPAN port) nothing joins, and the
	// offload slots, if any, say so.
	for _, f := range in[:3] {
		r.put(f, &packet.TunnelMeta{})
	}
	bufs = [][]byte{make([]byte, MaxFrame), make([]byte, MaxFrame), make([]byte, MaxFrame)}
	if k, _ := r.take(bufs, make([]int, 3), nil, nil, false); k != 3 {
		t.Errorf("ReadBatch took %d frames, want 3 as they came", k)
	}
	for _, f := range in[:3] {
		r.put(f, &packet.TunnelMeta{})
	}
	stale := []Offload{offs[0], offs[0], offs[0]}
	if k, _ := r.take(bufs, make([]int, 3), stale, nil, false); k != 3 || stale[0].IsSuper() || stale[2].IsSuper() {
		t.Errorf("a port that does not join took %d frames, offloads %v", k, stale)
	}
}

// TestTunnelGRONoAllocation: putting and taking with joining allocates
// nothing.
func TestTunnelGRONoAllocation(t *testing.T) {
	in := buildAll(groRun(44, 1448))
	var r rxRing
	r.init()
	bufs := make([][]byte, 4)
	for i := range bufs {
		bufs[i] = make([]byte, MaxSuperFrame)
	}
	sizes, offs, tun := make([]int, 4), make([]Offload, 4), make([]packet.TunnelMeta, 4)
	md := packet.TunnelMeta{ID: 16}
	allocs := testing.AllocsPerRun(20, func() {
		for _, f := range in {
			r.put(f, &md)
		}
		r.take(bufs, sizes, offs, tun, true)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}

// BenchmarkTunnelGROTake: the port thread's take of 44 segments of one
// flow (a UDP GRO read's worth), joined or copied one by one; ns/op is
// per segment.
func BenchmarkTunnelGROTake(b *testing.B) {
	in := buildAll(groRun(44, 1448))
	for _, join := range []bool{false, true} {
		name := "copy"
		if join {
			name = "join"
		}
		b.Run(name, func(b *testing.B) {
			var r rxRing
			r.init()
			bufs := make([][]byte, 44)
			for i := range bufs {
				bufs[i] = make([]byte, MaxSuperFrame)
			}
			sizes, offs := make([]int, 44), make([]Offload, 44)
			if !join {
				offs = nil
			}
			md := packet.TunnelMeta{ID: 16}
			b.SetBytes(int64(len(in[0])))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f := in[i%len(in)]
				r.put(f, &md)
				if i%len(in) == len(in)-1 {
					r.take(bufs, sizes, offs, nil, join)
				}
			}
		})
	}
}

// FuzzTunnelGRO: frames cut from the input go through a tunnel port's
// receive ring with joining. Nothing panics, and every frame out is
// either a frame that came in, untouched, or a super-frame that the
// Sender's segmenter cuts back into the frames that came in (up to the
// IPv4 ID, which the segmenter counts up, and the checksum fields,
// which must verify).
func FuzzTunnelGRO(f *testing.F) {
	seed := func(segs []groSeg) []byte {
		var b []byte
		for _, f := range buildAll(segs) {
			b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
			b = append(b, f...)
		}
		return b
	}
	f.Add(seed(groRun(4, 1000)))
	six := groRun(3, 800)
	for i := range six {
		six[i].v6 = true
	}
	f.Add(seed(six))
	two := groRun(2, 100)
	two[1].flags |= tcpFlagPSH
	f.Add(seed(two))
	f.Fuzz(groFuzz)
}

func groFuzz(t *testing.T, b []byte) {
	var in [][]byte
	for len(b) >= 2 && len(in) < 64 {
		n := min(int(binary.BigEndian.Uint16(b)), len(b)-2, MaxFrame)
		in = append(in, b[2:2+n])
		b = b[2+n:]
	}
	out, offs := groTake(t, in, nil, len(in)+1)
	next := 0
	for i, f := range out {
		if !offs[i].IsSuper() {
			if next >= len(in) || !bytes.Equal(f, in[next]) {
				t.Fatalf("frame %d is not frame %d as it came", i, next)
			}
			next++
			continue
		}
		var s segmenter
		if !s.start(f, offs[i].h, 0) {
			t.Fatalf("super-frame %d cannot be cut", i)
		}
		buf := make([]byte, MaxFrame)
		for s.active() {
			n := s.emit(buf)
			if next >= len(in) {
				t.Fatalf("super-frame %d holds more segments than came in", i)
			}
			if ok, checked := l4ChecksumOK(buf[:n]); !ok || !checked {
				t.Fatalf("segment %d cut back has a bad checksum", next)
			}
			if !groSameButSums(buf[:n], in[next]) {
				t.Fatalf("segment %d cut back differs:\n got %x\nwant %x", next, buf[:n], in[next])
			}
			next++
		}
	}
	if next != len(in) {
		t.Fatalf("%d frames came in, %d went out", len(in), next)
	}
}

// groSameButSums compares two segments but for the IPv4 ID and the
// checksum fields.
func groSameButSums(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	a, b = bytes.Clone(a), bytes.Clone(b)
	for _, f := range [][]byte{a, b} {
		l4 := ethHeaderLen + ipv6HeaderLen
		if binary.BigEndian.Uint16(f[etherAddrsLen:]) == etherTypeIPv4 {
			l4 = ethHeaderLen + ipv4HeaderLen
			clear(f[ethHeaderLen+4 : ethHeaderLen+6])
			clear(f[ethHeaderLen+10 : ethHeaderLen+12])
		}
		clear(f[l4+tcpChecksumOffset : l4+tcpChecksumOffset+2])
	}
	return bytes.Equal(a, b)
}
