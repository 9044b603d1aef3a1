package span

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/perf"

	"gvs/internal/packet"
)

// rawSample builds a sample as the program writes it, with pad bytes of
// trailing garbage (perf aligns records to 8 bytes).
func rawSample(r sampleRec, frame []byte, pad int) []byte {
	b := make([]byte, sampleRecLen, sampleRecLen+len(frame)+pad)
	ne := binary.NativeEndian
	ne.PutUint64(b[recTime:], r.Time)
	ne.PutUint32(b[recLen:], r.Len)
	ne.PutUint32(b[recIfindex:], r.Ifindex)
	if r.VLANPresent {
		ne.PutUint32(b[recVLANPresent:], 1)
	}
	ne.PutUint32(b[recVLANTCI:], uint32(r.VLANTCI))
	var tpid [2]byte
	binary.BigEndian.PutUint16(tpid[:], r.VLANTPID)
	ne.PutUint32(b[recVLANProto:], uint32(ne.Uint16(tpid[:])))
	ne.PutUint32(b[recGSOSize:], uint32(r.GSOSize))
	ne.PutUint32(b[recDir:], uint32(r.Dir))
	ne.PutUint32(b[recCapLen:], r.CapLen)
	ne.PutUint32(b[recSummed:], uint32(r.Summed))
	ne.PutUint16(b[recCsumStart:], r.CsumStart)
	ne.PutUint16(b[recCsumOffset:], r.CsumOffset)
	b = append(b, frame...)
	return append(b, bytes.Repeat([]byte{0xee}, pad)...)
}

func TestDecodeSample(t *testing.T) {
	frame := ipFrame4UDP(9)
	full := sampleRec{Time: 7, Len: uint32(len(frame)), Ifindex: 3, Dir: Out, CapLen: uint32(len(frame)),
		VLANPresent: true, VLANTCI: 0x2005, VLANTPID: 0x88a8, Summed: checksumPartial, CsumStart: 34, CsumOffset: 6}
	var got sampleRec
	data, err := decodeSample(rawSample(full, frame, 7), &got)
	if err != nil || !bytes.Equal(data, frame) || got != full {
		t.Fatalf("decoded %+v % x (%v), want %+v and the frame without the padding", got, data, err, full)
	}
	// A packet cut to 20 bytes: the record keeps its length.
	cut := full
	cut.CapLen, cut.VLANPresent, cut.VLANTCI, cut.VLANTPID, cut.Summed = 20, false, 0, 0, 0
	data, err = decodeSample(rawSample(cut, frame[:20], 4), &got)
	if err != nil || !bytes.Equal(data, frame[:20]) || got.Len != uint32(len(frame)) {
		t.Fatalf("cut sample: %+v % x (%v)", got, data, err)
	}
	// A tag without its TPID is 802.1Q's.
	tag := cut
	tag.VLANPresent, tag.VLANTCI = true, 5
	if _, err := decodeSample(rawSample(tag, frame[:20], 0), &got); err != nil || got.VLANTPID != 0x8100 {
		t.Fatalf("tag with no TPID: %+v (%v)", got, err)
	}
	for _, c := range []struct {
		what string
		raw  []byte
	}{
		{"shorter than the record", rawSample(full, nil, 0)[:sampleRecLen-1]},
		{"fewer bytes than announced", rawSample(full, frame[:30], 0)},
		{"more bytes than the packet", rawSample(sampleRec{Len: 20, CapLen: 30, Dir: In}, frame[:30], 0)},
		{"not an Ethernet frame", rawSample(sampleRec{Len: 10, CapLen: 10, Dir: In}, frame[:10], 0)},
		{"no direction", rawSample(sampleRec{Len: 20, CapLen: 20}, frame[:20], 0)},
	} {
		if _, err := decodeSample(c.raw, &got); !errors.Is(err, errSample) {
			t.Errorf("%s: %v, want errSample", c.what, err)
		}
	}
}

// sampleSession is a session with a sampler but no reader, and a queue
// per destination: what take and record feed.
func sampleSession(t *testing.T, cfg Config) (*Session, *sampler) {
	t.Helper()
	s := &Session{cfg: cfg, stop: make(chan struct{})}
	for i, d := range cfg.Dests {
		snd := newSender(s, d)
		snd.kernel = cfg.KernelClones(d)
		s.dests = append(s.dests, snd)
		s.tcs = append(s.tcs, &tcSource{s: s, idx: i, src: cfg.Sources[0]})
	}
	s.tcs[0].live.Store(3)
	s.smp = &sampler{s: s, buf: make([]byte, MaxSample+4)}
	return s, s.smp
}

// The sampler counts what perf lost, what it cut and what it could not
// read, puts the VLAN tag back, and queues copies only to destinations
// the kernel does not clone to.
func TestSamplerCounts(t *testing.T) {
	src, _ := ParseSource("src0")
	pc, _ := ParseDest("dev:dst0,vlan=3")
	plain, _ := ParseDest("dev:dst1")
	s, p := sampleSession(t, Config{Name: "t", Sources: []Source{src}, Dests: []Dest{pc, plain}})
	frame := ipFrame4UDP(9)
	p.record(&perf.Record{LostSamples: 5})
	p.take(rawSample(sampleRec{Time: 1, Len: uint32(len(frame)) + 100, Ifindex: 3, Dir: In, CapLen: uint32(len(frame)),
		VLANPresent: true, VLANTCI: 10, VLANTPID: 0x8100}, frame, 3))
	p.take(rawSample(sampleRec{Len: 60, Ifindex: 99, Dir: In, CapLen: 60}, append(frame, make([]byte, 8)...), 0)) // no such source
	p.take([]byte{1, 2, 3})
	st := s.Status().Stats
	if st.Dropped != 5 || st.Truncated != 1 || st.Errors != 2 {
		t.Fatalf("stats %+v: want 5 dropped (lost by perf), 1 truncated, 2 errors", st)
	}
	if n := len(s.dests[1].q.full); n != 0 {
		t.Fatalf("%d copies queued for a destination the kernel clones to", n)
	}
	if n := len(s.dests[0].q.full); n != 1 {
		t.Fatalf("%d copies queued for dev:dst0,vlan=3, want 1", n)
	}
	it := <-s.dests[0].q.full
	want := append(append(append([]byte{}, frame[:12]...), 0x81, 0, 0, 10), frame[12:]...)
	if !bytes.Equal(it.buf, want) || it.orig != len(frame)+104 || it.outgoing || it.src != 0 {
		t.Fatalf("copy % x orig %d outgoing %v: want the frame with its tag back, orig %d, in", it.buf, it.orig, it.outgoing, len(frame)+104)
	}
	if d := time.Since(time.Unix(0, it.ts)); d < 0 || d > 1e6*time.Hour {
		t.Errorf("copy's time %v: not the wall clock", time.Unix(0, it.ts))
	}
}

// A super-frame's record gives its segment size: the copy carries a
// virtio header that tells a dev: or tunnel destination how to cut it.
func TestSuperFrameVnet(t *testing.T) {
	f := make([]byte, 14+20+20+3000)
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0})
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	ip[20+12] = 5 << 4
	var h [vnetHdrLen]byte
	var k packet.Key
	var o packet.Offsets
	if !superFrameVnet(f, 1448, true, &k, &o, &h) {
		t.Fatal("not described")
	}
	ne := binary.NativeEndian
	if h[0] != vnetNeedsCsum || h[1] != vnetGSOTCPv4 || ne.Uint16(h[2:]) != 54 || ne.Uint16(h[4:]) != 1448 ||
		ne.Uint16(h[6:]) != 34 || ne.Uint16(h[8:]) != 16 {
		t.Fatalf("virtio header % x", h)
	}
	if superFrameVnet(ipFrame4UDP(1)[:20], 1448, true, &k, &o, &h) {
		t.Fatal("an ARP-sized runt described as a super-frame")
	}
}

// The program's sampling, run by the kernel (BPF_PROG_TEST_RUN): a
// selected packet reaches the perf ring with its record (length, the
// attach point's direction, the bytes up to snap), one not selected
// does not.
func TestEBPFSampleOutput(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	frame := ipFrame4UDP(9999)
	csum, err := kernelSkbCsum()
	if err != nil {
		t.Fatalf("this kernel (6.2 or later, with BTF) should tell the checksum state: %v", err)
	}
	for _, c := range []struct {
		snap uint32
		dir  Direction
	}{{MaxSample, Out}, {20, In}} {
		var insns [2]asm.Instructions
		for i, d := range []Direction{In, Out} {
			var err error
			insns[i], err = EBPFProgram(mustRules(t, "accept udp,tp_dst=9999"), EBPFOptions{Sample: true, Snap: c.snap, Dir: d, Csum: csum})
			if err != nil {
				t.Fatal(err)
			}
		}
		p, err := newTCProg(insns, true)
		if err != nil {
			t.Fatal(err)
		}
		rd, err := perf.NewReader(p.samples, 1<<16)
		if err != nil {
			p.close()
			t.Fatal(err)
		}
		for _, f := range [][]byte{ipFrame4UDP(9998), frame} {
			if ret, _, err := p.prog(c.dir).Test(f); err != nil || int32(ret) != tcActUnspec {
				t.Fatalf("test run: %d %v", int32(ret), err)
			}
		}
		rd.SetDeadline(time.Now().Add(time.Second))
		rec, err := rd.Read()
		if err != nil {
			t.Fatalf("snap %d: no sample: %v", c.snap, err)
		}
		var m sampleRec
		data, err := decodeSample(rec.RawSample, &m)
		want := frame[:min(int(c.snap), len(frame))]
		if err != nil || !bytes.Equal(data, want) || m.Len != uint32(len(frame)) || m.Dir != c.dir || m.Time == 0 {
			t.Fatalf("snap %d: sample %+v % x (%v), want len %d, direction %s, bytes % x", c.snap, m, data, err, len(frame), c.dir, want)
		}
		rd.SetDeadline(time.Now().Add(100 * time.Millisecond))
		if rec, err := rd.Read(); err == nil {
			t.Fatalf("a second sample (%d bytes): the unselected packet was sampled", len(rec.RawSample))
		}
		if k := p.counters(); k[ctrSeen] != 2 || k[ctrSelected] != 1 || k[ctrSampleErr] != 0 {
			t.Fatalf("counters %v", k)
		}
		rd.Close()
		p.close()
	}
}

// BenchmarkSamplerTake is gvsd's cost per sample, from the perf record
// to the destination's queue (a 64-byte frame with its VLAN tag put
// back): no allocation.
func BenchmarkSamplerTake(b *testing.B) {
	src, _ := ParseSource("src0")
	pc, _ := ParseDest("pcap:x.pcapng")
	s := &Session{cfg: Config{Name: "b", Sources: []Source{src}, Dests: []Dest{pc}}, stop: make(chan struct{})}
	s.dests = []*sender{newSender(s, pc)}
	s.tcs = []*tcSource{{s: s, src: src}}
	s.tcs[0].live.Store(3)
	p := &sampler{s: s, buf: make([]byte, MaxSample+4)}
	frame := append(ipFrame4UDP(9), make([]byte, 8)...)
	raw := rawSample(sampleRec{Time: 1, Len: uint32(len(frame)), Ifindex: 3, Dir: Out, CapLen: uint32(len(frame)),
		VLANPresent: true, VLANTCI: 10}, frame, 4)
	q := s.dests[0].q
	b.ReportAllocs()
	for b.Loop() {
		p.take(raw)
		q.put(<-q.full)
	}
}

// tcpFrame4 is an IPv4 TCP frame with payload bytes of data whose
// checksum is partial, as a socket with checksum offload leaves it: the
// field holds the pseudo-header's sum (csum_start 34, csum_offset 16).
func tcpFrame4(payload int) []byte {
	f := make([]byte, 14+20+20+payload)
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0})
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	packet.SetIPv4Checksum(packet.IPv4(ip))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 5201)
	tcp[12], tcp[13] = 5<<4, 0x18
	for i := range payload {
		tcp[20+i] = byte(i*7 + 3)
	}
	binary.BigEndian.PutUint16(tcp[16:], packet.PseudoHeaderChecksum(6, ip[12:16], ip[16:20], uint32(len(tcp))))
	return f
}

// tcpChecksumOK verifies the TCP checksum of an IPv4 frame whose IP
// header starts at l3: the sum over pseudo-header and segment is 0xffff.
func tcpChecksumOK(f []byte, l3 int) bool {
	ip := f[l3:]
	tcp := ip[20:]
	return packet.Checksum(tcp, packet.PseudoHeaderChecksum(6, ip[12:16], ip[16:20], uint32(len(tcp)))) == 0xffff
}

// finishChecksum finishes a partial checksum (with the VLAN tag put
// back before it, the offsets move by 4) and leaves other packets alone.
func TestFinishChecksum(t *testing.T) {
	partial := sampleRec{Summed: checksumPartial, CsumStart: 34, CsumOffset: 16}
	f := tcpFrame4(101)
	if tcpChecksumOK(f, 14) {
		t.Fatal("the test frame's partial checksum already verifies")
	}
	if !finishChecksum(f, &partial, false) || !tcpChecksumOK(f, 14) {
		t.Fatalf("partial checksum not finished: % x", f[34:54])
	}
	// The same packet, its tag kept out of the frame by the kernel and
	// put back by withTag: the record's offsets do not count it.
	g := tcpFrame4(101)
	tagged := withTag(make([]byte, len(g)+4), g, 0x8100, 7)
	if !finishChecksum(tagged, &partial, true) || !tcpChecksumOK(tagged, 18) {
		t.Fatal("partial checksum of a tagged frame not finished")
	}
	for _, r := range []sampleRec{{Summed: 0, CsumStart: 34, CsumOffset: 16}, {Summed: 1}, {Summed: 2},
		{Summed: checksumPartial, CsumStart: 34, CsumOffset: 16, GSOSize: 1448}} {
		g := tcpFrame4(10)
		want := append([]byte{}, g...)
		if !finishChecksum(g, &r, false) || !bytes.Equal(g, want) {
			t.Errorf("record %+v: the frame changed", r)
		}
	}
	if bad := (sampleRec{Summed: checksumPartial, CsumStart: 60, CsumOffset: 16}); finishChecksum(tcpFrame4(10), &bad, false) {
		t.Error("offsets past the frame accepted")
	}
}

// The sampler finishes the partial checksums of the copies it queues,
// and counts an error for offsets that do not fit.
func TestSamplerFinishesChecksums(t *testing.T) {
	src, _ := ParseSource("src0")
	tn, _ := ParseDest("gre:192.0.2.9")
	s, p := sampleSession(t, Config{Name: "t", Sources: []Source{src}, Dests: []Dest{tn}})
	f := tcpFrame4(333)
	rec := sampleRec{Len: uint32(len(f)), Ifindex: 3, Dir: Out, CapLen: uint32(len(f)), Summed: checksumPartial, CsumStart: 34, CsumOffset: 16}
	p.take(rawSample(rec, f, 5))
	rec.VLANPresent, rec.VLANTCI = true, 9
	p.take(rawSample(rec, f, 5))
	rec.CsumStart = 2000
	p.take(rawSample(rec, f, 5))
	for i, l3 := range []int{14, 18} {
		it := <-s.dests[0].q.full
		if !tcpChecksumOK(it.buf, l3) || it.vnet != [vnetHdrLen]byte{} {
			t.Errorf("copy %d: checksum not finished (or a virtio header % x)", i, it.vnet)
		}
	}
	if st := s.Status().Stats; st.Errors != 1 {
		t.Errorf("stats %+v: want 1 error (offsets past the frame)", st)
	}
}

// A super-frame GRO made (its checksum not partial) holds its first
// segment's checksum: the virtio header's NEEDS_CSUM needs the
// pseudo-header's sum there instead; a pcap destination then finishes
// the checksum over the whole super-frame.
func TestSuperFrameVnetFromGRO(t *testing.T) {
	partial := tcpFrame4(3000)
	gro := append([]byte{}, partial...)
	binary.BigEndian.PutUint16(gro[14+20+16:], 0x1234) // some segment's checksum
	var h [vnetHdrLen]byte
	var k packet.Key
	var o packet.Offsets
	if !superFrameVnet(gro, 1448, false, &k, &o, &h) || !bytes.Equal(gro, partial) {
		t.Fatalf("GRO super-frame: field % x, want the pseudo-header's sum % x", gro[50:52], partial[50:52])
	}
	finishVnetChecksum(gro, &h)
	if !tcpChecksumOK(gro, 14) {
		t.Fatal("finishVnetChecksum did not finish the super-frame's checksum")
	}
	plain := tcpFrame4(10)
	want := append([]byte{}, plain...)
	finishVnetChecksum(plain, &[vnetHdrLen]byte{})
	if !bytes.Equal(plain, want) {
		t.Fatal("a frame with no NEEDS_CSUM changed")
	}
}

// BenchmarkSamplerTakePartial is BenchmarkSamplerTake for a 1514-byte
// TCP frame whose checksum gvsd finishes (CHECKSUM_PARTIAL).
func BenchmarkSamplerTakePartial(b *testing.B) {
	src, _ := ParseSource("src0")
	pc, _ := ParseDest("pcap:x.pcapng")
	s := &Session{cfg: Config{Name: "b", Sources: []Source{src}, Dests: []Dest{pc}}, stop: make(chan struct{})}
	s.dests = []*sender{newSender(s, pc)}
	s.tcs = []*tcSource{{s: s, src: src}}
	s.tcs[0].live.Store(3)
	p := &sampler{s: s, buf: make([]byte, MaxSample+4)}
	frame := tcpFrame4(1460)
	raw := rawSample(sampleRec{Time: 1, Len: uint32(len(frame)), Ifindex: 3, Dir: Out, CapLen: uint32(len(frame)),
		Summed: checksumPartial, CsumStart: 34, CsumOffset: 16}, frame, 2)
	field := sampleRecLen + 34 + 16
	pseudo := binary.BigEndian.Uint16(raw[field:])
	q := s.dests[0].q
	b.ReportAllocs()
	for b.Loop() {
		binary.BigEndian.PutUint16(raw[field:], pseudo) // partial again
		p.take(raw)
		q.put(<-q.full)
	}
}

// FuzzSamplerTake: a sample with any record (checksum offsets and
// super-frame size from the kernel included) and any frame goes through
// the sampler without a panic, whatever the bytes.
func FuzzSamplerTake(f *testing.F) {
	frame := ipFrame4UDP(9)
	f.Add(frame, uint8(checksumPartial), uint16(34), uint16(6), uint16(0), false, uint32(0))
	f.Add(frame, uint8(checksumPartial), uint16(0xfffe), uint16(0xffff), uint16(1400), true, uint32(0))
	f.Add(frame[:20], uint8(checksumPartial), uint16(14), uint16(8), uint16(0), true, uint32(40))
	f.Fuzz(func(t *testing.T, frame []byte, summed uint8, start, off, gso uint16, vlan bool, more uint32) {
		src, _ := ParseSource("src0")
		d, _ := ParseDest("dev:dst0")
		_, p := sampleSession(t, Config{Name: "t", Sources: []Source{src}, Dests: []Dest{d}})
		rec := sampleRec{Len: uint32(len(frame)) + more%2000, Ifindex: 3, Dir: In, CapLen: uint32(len(frame)),
			VLANPresent: vlan, VLANTCI: 7, Summed: summed & 3, CsumStart: start, CsumOffset: off, GSOSize: gso}
		p.take(rawSample(rec, frame, 3))
		p.take(rawSample(rec, frame, 0)[:sampleRecLen+len(frame)/2])
	})
}
