package packet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

func TestChecksumMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	buf := make([]byte, 1600)
	for i := range buf {
		buf[i] = byte(rng.IntN(256))
	}
	for n := 0; n <= 300; n++ {
		for _, initial := range []uint16{0, 1, 0x8000, 0xfffe, 0xffff, uint16(rng.IntN(65536))} {
			// Start at odd and even offsets: the fast path loads
			// unaligned words.
			for _, start := range []int{0, 1, 7} {
				b := buf[start : start+n]
				if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
					t.Fatalf("len %d start %d initial %#x: got %#04x, want %#04x", n, start, initial, got, want)
				}
			}
		}
	}
	if got, want := Checksum(buf, 0), refChecksum(buf, 0); got != want {
		t.Fatalf("1600 bytes: got %#04x, want %#04x", got, want)
	}
}

func TestChecksumAllOnes(t *testing.T) {
	// Many 0xff words sum to 0xffff (negative zero), never 0: the carry
	// folding must not lose it.
	b := bytes.Repeat([]byte{0xff}, 1024)
	if got := Checksum(b, 0xffff); got != 0xffff {
		t.Errorf("got %#04x, want 0xffff", got)
	}
	// A whole 64 KiB packet of them: the bulk loop's accumulators hold
	// it without losing a carry.
	b = bytes.Repeat([]byte{0xff}, 0xffff)
	for _, initial := range []uint16{0, 0xffff} {
		if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
			t.Errorf("64 KiB of 0xff, initial %#x: got %#04x, want %#04x", initial, got, want)
		}
	}
}

// TestChecksumKnownValue is the example of RFC 1071 §3.
func TestChecksumKnownValue(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Checksum(b, 0); got != 0xddf2 {
		t.Errorf("got %#04x, want 0xddf2", got)
	}
}

func TestChecksumCombine(t *testing.T) {
	b := []byte("the quick brown fox jumps over the lazy dog!")
	whole := Checksum(b, 0)
	split := ChecksumCombine(Checksum(b[:10], 0), Checksum(b[10:], 0))
	if whole != split {
		t.Errorf("combined %#04x, want %#04x", split, whole)
	}
}

// TestIncrementalUpdate changes a word, a 32-bit value and a 16-byte run of
// an IPv6-like header and checks the incrementally updated checksum still
// verifies (the sum over the data including the checksum is 0xffff).
func TestIncrementalUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		b := make([]byte, 40)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		if rng.IntN(8) == 0 {
			clear(b[4:8]) // exercise zero words
		}
		binary.BigEndian.PutUint16(b[2:], 0)
		binary.BigEndian.PutUint16(b[2:], ^Checksum(b, 0))
		csum := binary.BigEndian.Uint16(b[2:])

		old16 := binary.BigEndian.Uint16(b[10:])
		new16 := uint16(rng.IntN(65536))
		binary.BigEndian.PutUint16(b[10:], new16)
		csum = ChecksumUpdate16(csum, old16, new16)

		old32 := binary.BigEndian.Uint32(b[12:])
		new32 := rng.Uint32()
		binary.BigEndian.PutUint32(b[12:], new32)
		csum = ChecksumUpdate32(csum, old32, new32)

		oldRun := bytes.Clone(b[20:36])
		newRun := make([]byte, 16)
		for i := range newRun {
			newRun[i] = byte(rng.IntN(256))
		}
		copy(b[20:36], newRun)
		csum = ChecksumUpdateBytes(csum, oldRun, newRun)

		binary.BigEndian.PutUint16(b[2:], csum)
		if s := Checksum(b, 0); s != 0xffff {
			t.Fatalf("after incremental updates the data sums to %#04x, want 0xffff", s)
		}
	}
}

func TestFinishChecksum(t *testing.T) {
	// A TCP/IPv4 frame as a sender with checksum offload leaves it: the
	// field holds the pseudo-header sum, not complemented.
	frame := bytes.Clone(frameTCP4)
	l4 := 34
	seg := frame[l4:]
	pseudo := PseudoHeaderChecksum(ProtoTCP, frame[26:30], frame[30:34], uint32(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], pseudo)
	if err := FinishChecksum(frame, l4, 16); err != nil {
		t.Fatal(err)
	}
	assertL4ChecksumValid(t, frame, 14, l4, ProtoTCP, true)

	for _, bad := range [][2]int{{-1, 16}, {l4, -2}, {l4, len(seg) - 1}, {len(frame), 0}} {
		if err := FinishChecksum(frame, bad[0], bad[1]); !errors.Is(err, ErrChecksumRange) {
			t.Errorf("start %d offset %d: error %v, want ErrChecksumRange", bad[0], bad[1], err)
		}
	}
}

// assertL4ChecksumValid verifies a transport checksum the way a receiver
// does, with refChecksum: the pseudo-header plus the segment sum to 0xffff.
func assertL4ChecksumValid(t *testing.T, frame []byte, l3, l4 int, proto uint8, v4 bool) {
	t.Helper()
	var sum uint16
	var seg []byte
	if v4 {
		end := l3 + int(IPv4(frame[l3:]).TotalLen())
		seg = frame[l4:end]
		if proto != ProtoICMPv4 {
			sum = refPseudo(proto, frame[l3+12:l3+16], frame[l3+16:l3+20], len(seg))
		}
	} else {
		end := l3 + IPv6Len + int(IPv6(frame[l3:]).PayloadLen())
		seg = frame[l4:end]
		sum = refPseudo(proto, frame[l3+8:l3+24], frame[l3+24:l3+40], len(seg))
	}
	if s := refChecksum(seg, sum); s != 0xffff {
		t.Errorf("proto %d checksum does not verify: sum %#04x", proto, s)
	}
}

func refPseudo(proto uint8, src, dst []byte, n int) uint16 {
	ph := cat(src, dst, []byte{0, 0, byte(n >> 8), byte(n), 0, 0, 0, proto})
	return refChecksum(ph, 0)
}

func TestRecomputeChecksums(t *testing.T) {
	target := [16]byte{0xfe, 0x80, 15: 5}
	cases := []struct {
		name  string
		frame []byte
		proto uint8
		v4    bool
	}{
		{"tcp4", frameTCP4, ProtoTCP, true},
		{"udp4 in vlan", frameVLANUDP4, ProtoUDP, true},
		{"tcp6", frameTCP6, ProtoTCP, false},
		{"udp6 odd length", cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoUDP, 0, 0, udpDgram(1, 2, []byte("odd")))), ProtoUDP, false},
		{"icmp4", cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoICMPv4, ip4Opts{}, icmpMsg(8, 0, []byte("ping!")))), ProtoICMPv4, true},
		{"icmp6 nd", cat(ethHdr(macB, macA, EtherTypeIPv6), ipv6(ProtoICMPv6, 0, 0,
			ndMsg(ICMPv6NeighborSolicit, target, ndLLOpt(NDOptSourceLLAddr, macA)))), ProtoICMPv6, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			frame := cat(bytes.Clone(tc.frame), make([]byte, 6)) // Ethernet padding must not count
			var key Key
			var off Offsets
			if err := Parse(frame, 0, &key, &off); err != nil {
				t.Fatal(err)
			}
			// Spoil both checksums, as a rewrite without updates would.
			binary.BigEndian.PutUint16(frame[off.L3+10:], 0xdead)
			field, _ := l4ChecksumField(tc.proto, tc.v4)
			binary.BigEndian.PutUint16(frame[int(off.L4)+field:], 0xbeef)
			if err := RecomputeChecksums(frame, &off); err != nil {
				t.Fatal(err)
			}
			if tc.v4 {
				hdr := frame[off.L3 : off.L3+IPv4MinLen]
				if s := refChecksum(hdr, 0); s != 0xffff {
					t.Errorf("IPv4 header checksum does not verify: %#04x", s)
				}
			}
			assertL4ChecksumValid(t, frame, int(off.L3), int(off.L4), tc.proto, tc.v4)
		})
	}
}

func TestRecomputeChecksumsSCTP(t *testing.T) {
	frame := cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoSCTP, ip4Opts{}, sctpPkt(7, 9)))
	var key Key
	var off Offsets
	if err := Parse(frame, 0, &key, &off); err != nil {
		t.Fatal(err)
	}
	if err := RecomputeChecksums(frame, &off); err != nil {
		t.Fatal(err)
	}
	seg := bytes.Clone(frame[off.L4:off.L3End])
	got := binary.LittleEndian.Uint32(seg[8:])
	clear(seg[8:12])
	if want := crc32.Checksum(seg, crc32.MakeTable(crc32.Castagnoli)); got != want {
		t.Errorf("SCTP CRC32c %#08x, want %#08x", got, want)
	}
}

func TestRecomputeChecksumsLeavesFragmentsAlone(t *testing.T) {
	frame := cat(ethHdr(macB, macA, EtherTypeIPv4), ipv4(ProtoUDP, ip4Opts{flagsFrag: 0x2000}, udpDgram(1, 2, []byte("x"))))
	var key Key
	var off Offsets
	_ = Parse(frame, 0, &key, &off)
	binary.BigEndian.PutUint16(frame[off.L4+6:], 0x1234)
	if err := RecomputeChecksums(frame, &off); err != nil {
		t.Fatal(err)
	}
	if got := UDP(frame[off.L4:]).Checksum(); got != 0x1234 {
		t.Errorf("fragment's UDP checksum changed to %#04x", got)
	}
	if s := refChecksum(frame[14:34], 0); s != 0xffff {
		t.Errorf("IPv4 header checksum does not verify: %#04x", s)
	}
}

func TestRecomputeChecksumsRejectsBadOffsets(t *testing.T) {
	frame := bytes.Clone(frameTCP4)
	for _, off := range []Offsets{{}, {L3: 14, L3End: 200}, {L3: 50, L3End: 55}} {
		if err := RecomputeChecksums(frame, &off); !errors.Is(err, ErrNoChecksum) {
			t.Errorf("offsets %+v: error %v, want ErrNoChecksum", off, err)
		}
	}
}

func TestIPv4ComputeChecksum(t *testing.T) {
	ip := IPv4(bytes.Clone(frameTCP4[14:34]))
	want := ip.Checksum() // the builder's, from refChecksum
	ip.SetChecksum(0)
	SetIPv4Checksum(ip)
	if ip.Checksum() != want {
		t.Errorf("checksum %#04x, want %#04x", ip.Checksum(), want)
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		Checksum(buf, 0)
	}
}

func TestFinishChecksumSCTP(t *testing.T) {
	// 12-byte SCTP common header plus 20 zero bytes: the checksum is the
	// CRC32c of 32 zero bytes, 0x8a9136aa (RFC 3720 B.4), stored least
	// significant byte first as the kernel stores it; garbage in the field
	// must not count.
	frame := make([]byte, 34+32)
	frame[34+8] = 0xff
	if err := FinishChecksum(frame, 34, 8); err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(frame[34+8:]); got != 0x8a9136aa {
		t.Errorf("SCTP checksum = %#x, want 0x8a9136aa", got)
	}
	if err := FinishChecksum(frame, len(frame)-10, 8); !errors.Is(err, ErrChecksumRange) {
		t.Errorf("SCTP field past the end: error %v, want ErrChecksumRange", err)
	}
}

// Both bulk loops, the vector one (where the CPU has it) and the portable
// one, agree with the reference at every length around their block
// sizes and thresholds, from odd and even starts, up to a whole 64 KiB.
func TestChecksumBothLoops(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 0x10000+8)
	for i := range buf {
		buf[i] = byte(rng.IntN(256))
	}
	lengths := []int{0xffff, 0x10000, 9000, 1500, 1448}
	for n := 0; n <= 700; n++ {
		lengths = append(lengths, n)
	}
	saved := vectorSum
	defer func() { vectorSum = saved }()
	for _, vec := range []bool{false, saved} {
		vectorSum = vec
		for _, n := range lengths {
			for _, start := range []int{0, 1, 3} {
				b := buf[start : start+n]
				initial := uint16(rng.IntN(65536))
				if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
					t.Fatalf("vector %v, len %d start %d: got %#04x, want %#04x", vec, n, start, got, want)
				}
			}
		}
	}
}

// FuzzChecksum: Checksum is the reference sum for any bytes and start.
func FuzzChecksum(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0xff}, 300), uint16(0xffff))
	f.Add([]byte{1, 2, 3}, uint16(0))
	f.Fuzz(func(t *testing.T, b []byte, initial uint16) {
		if got, want := Checksum(b, initial), refChecksum(b, initial); got != want {
			t.Fatalf("len %d: got %#04x, want %#04x", len(b), got, want)
		}
	})
}
