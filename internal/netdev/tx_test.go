package netdev

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
)

// testSuperFrame is an IPv4 TCP packet of size payload bytes with a
// partial checksum, and its offload cut at mss.
func testSuperFrame(t testing.TB, size int, mss uint16) ([]byte, Offload) {
	src, dst := net.IPv4(192, 0, 2, 1), net.IPv4(192, 0, 2, 2)
	l4 := tcpSegment(1000, 0x18, patterned(size))
	binary.BigEndian.PutUint16(l4[16:], pseudoSum(src, dst, ipProtoTCP, len(l4)))
	frame := append(ethernet(macA, macB, etherTypeIPv4), ipv4Packet(src, dst, ipProtoTCP, 500, l4)...)
	off, ok := NewTCPOffload(frame, mss)
	if !ok {
		t.Fatal("NewTCPOffload refused the test's super-frame")
	}
	return frame, off
}

// recorder is a Transmitter that keeps what it is given, whole or not as
// takes says.
type recorder struct {
	*Memory
	takes  bool
	frames [][]byte
	offs   []Offload
	origs  []int
}

func (r *recorder) Transmit(b *Batch) (TxResult, error) {
	for i, f := range b.Frames {
		r.frames = append(r.frames, bytes.Clone(f))
		r.offs = append(r.offs, b.Meta[i].Off)
		r.origs = append(r.origs, b.Meta[i].Orig)
	}
	return TxResult{Sent: b.Len()}, nil
}

func (r *recorder) TakesSuperFrames() bool { return r.takes }

// A batch write reports how many frames went out and how many the device
// refused, without the caller reading the port's counters.
func TestSendReportsSentAndDropped(t *testing.T) {
	m := NewMemory("tx0", 4)
	defer m.Close()
	b := NewBatch(8)
	f := append(ethernet(macA, macB, etherTypeIPv4), make([]byte, 46)...)
	for range 6 {
		b.Add(f, Offload{}, 0, 0)
	}
	b.Add(nil, Offload{}, 0, 0) // malformed: an error
	var s Sender
	res, err := s.Send(m, b)
	if err != nil || res != (TxResult{Sent: 4, Dropped: 3}) {
		t.Fatalf("Send = %+v, %v; want 4 sent, 3 dropped", res, err)
	}
	// A driver written against WriteBatch alone is read from its counters.
	res, err = s.Send(plainPort{m}, b)
	if err != nil || res != (TxResult{Sent: 0, Dropped: 7}) {
		t.Fatalf("Send through WriteBatch = %+v, %v; want 0 sent, 7 dropped (queue full)", res, err)
	}
}

// A super-frame goes whole to a port that takes it, and is cut, in order
// and among the other frames, for a port that does not; a snaplen cuts
// every segment and keeps its length before truncation.
func TestSendCutsWhatThePortCannotTake(t *testing.T) {
	const size, mss = 100 * 500, 500 // more segments than a Sender holds
	super, off := testSuperFrame(t, size, mss)
	small := append(ethernet(macA, macB, etherTypeIPv4), make([]byte, 46)...)
	b := NewBatch(4)
	b.Add(small, Offload{}, 0, 0)
	b.Add(super, off, 0, 0)
	b.Add(small, Offload{}, 0, 0)
	var s Sender

	whole := &recorder{takes: true}
	if res, _ := s.Send(whole, b); res.Sent != 3 || len(whole.frames) != 3 || !bytes.Equal(whole.frames[1], super) || !whole.offs[1].IsSuper() {
		t.Fatalf("a port that takes super-frames got %d frames (result %+v), want the 3 sent, the super-frame whole", len(whole.frames), res)
	}
	cut := &recorder{takes: false}
	if res, _ := s.Send(cut, b); res.Sent != size/mss+2 || len(cut.frames) != size/mss+2 {
		t.Fatalf("a port that cannot take them got %d frames (result %+v), want %d", len(cut.frames), res, size/mss+2)
	}
	for i, f := range cut.frames[1 : len(cut.frames)-1] {
		if cut.offs[i+1].IsSuper() || len(f) != 54+mss {
			t.Fatalf("segment %d: %d bytes, super %v; want %d, complete", i, len(f), cut.offs[i+1].IsSuper(), 54+mss)
		}
		if seq := binary.BigEndian.Uint32(f[38:]); seq != 1000+uint32(i*mss) {
			t.Fatalf("segment %d: seq %d, want %d: out of order", i, seq, 1000+i*mss)
		}
		if ok, _ := l4ChecksumOK(f); !ok {
			t.Fatalf("segment %d: bad checksum", i)
		}
	}
	b.Reset()
	b.Add(super, off, 0, 60)
	snapped := &recorder{takes: true}
	s.Send(snapped, b)
	if len(snapped.frames) != size/mss {
		t.Fatalf("a snaplen left %d frames, want %d segments", len(snapped.frames), size/mss)
	}
	for i, f := range snapped.frames {
		if len(f) != 60 || snapped.origs[i] != 54+mss {
			t.Fatalf("segment %d: %d bytes of %d; want 60 of %d", i, len(f), snapped.origs[i], 54+mss)
		}
	}
}

// Cutting allocates nothing once the Sender's buffers exist.
func TestSendDoesNotAllocate(t *testing.T) {
	super, off := testSuperFrame(t, 20000, 1000)
	var dev Netdev = discard{}
	b := NewBatch(4)
	b.Add(super, off, 0, 0)
	var s Sender
	s.Send(dev, b)
	allocs := testing.AllocsPerRun(20, func() { s.Send(dev, b) })
	if allocs > 0 {
		t.Fatalf("%.1f allocations per Send", allocs)
	}
}

// A super-frame whose headers the datapath changed is described again:
// the checksum start follows a pushed VLAN tag, and after an address
// change the partial checksum holds the new pseudo-header sum, so the
// frame completes to a valid checksum.
func TestOffloadRebase(t *testing.T) {
	super, off := testSuperFrame(t, 3000, 1000)
	tagged := append(append(bytes.Clone(super[:12]), 0x81, 0, 0, 10), super[12:]...)
	o, ok := off.Rebase(tagged, false)
	if !ok || o.h.csumStart != off.h.csumStart+4 {
		t.Fatalf("Rebase after a tag push: csum_start %d ok %v, want %d", o.h.csumStart, ok, off.h.csumStart+4)
	}
	moved := bytes.Clone(super)
	copy(moved[14+16:], []byte{203, 0, 113, 9}) // new destination address, as set-field leaves it:
	moved[24], moved[25] = 0, 0                 // with the IP header checksum updated
	binary.BigEndian.PutUint16(moved[24:], ^uint16(naiveSum(moved[14:34])))
	if !completeChecksum(bytes.Clone(moved), 34, 16) {
		t.Fatal("completeChecksum refused the frame")
	}
	stale := bytes.Clone(moved)
	completeChecksum(stale, 34, 16)
	if ok, _ := l4ChecksumOK(stale); ok {
		t.Fatal("the stale pseudo-header sum verifies; test is not testing")
	}
	if _, ok := off.Rebase(moved, true); !ok {
		t.Fatal("Rebase refused the frame")
	}
	completeChecksum(moved, 34, 16)
	if ok, checked := l4ChecksumOK(moved); !ok || !checked {
		t.Error("after Rebase the completed checksum does not verify")
	}
	if _, ok := off.Rebase(super[:20], false); ok {
		t.Error("Rebase accepted a frame without a TCP header")
	}
}

// discard is a Transmitter that takes everything and keeps nothing.
type discard struct{ Netdev }

func (discard) Transmit(b *Batch) (TxResult, error) { return TxResult{Sent: b.Len()}, nil }

// Segments counts a super-frame as the frames it is cut into, so that
// copies dropped whole count in tx_dropped in the unit of tx_packets.
func TestSegments(t *testing.T) {
	for _, c := range []struct{ size, want int }{{3000, 3}, {3001, 4}, {1, 1}} {
		frame, off := testSuperFrame(t, c.size, 1000)
		if got := Segments(frame, off); got != c.want {
			t.Errorf("%d bytes cut at 1000: %d segments, want %d", c.size, got, c.want)
		}
	}
	if got := Segments(make([]byte, 1514), Offload{}); got != 1 {
		t.Errorf("an ordinary frame: %d segments, want 1", got)
	}
}

// writeSizes is a Transmitter that records how many frames each write
// carried; keep says whether it wants a super-frame's segments together.
type writeSizes struct {
	*Memory
	writes []int
	keep   bool
}

func (w *writeSizes) keepsSegmentRuns() bool { return w.keep }

func (w *writeSizes) Transmit(b *Batch) (TxResult, error) {
	w.writes = append(w.writes, b.Len())
	return TxResult{Sent: b.Len()}, nil
}

// A super-frame's segments go out in one write where they fit one, for
// a port that wants it (a UDP tunnel port then sends them in one GSO
// send), not split across two because the previous super-frame left the
// Sender's buffers part full; one of more segments than a write holds
// still goes out in full writes, and other ports get full writes.
func TestSendKeepsASuperFramesSegmentsTogether(t *testing.T) {
	const mss = 1000
	super, off := testSuperFrame(t, 40*mss, mss)
	b := NewBatch(3)
	for range 3 {
		b.Add(super, off, 0, 0)
	}
	var s Sender
	other := &writeSizes{}
	s.SendTo(other, b)
	if len(other.writes) != 2 || other.writes[0] != 64 || other.writes[1] != 56 {
		t.Errorf("a port that does not ask: writes of %v segments, want 64 and 56", other.writes)
	}
	w := &writeSizes{keep: true}
	if res, _ := s.SendTo(w, b); res.Sent != 120 {
		t.Fatalf("sent %d segments, want 120", res.Sent)
	}
	if len(w.writes) != 3 || w.writes[0] != 40 || w.writes[1] != 40 || w.writes[2] != 40 {
		t.Errorf("writes of %v segments, want 40, 40 and 40", w.writes)
	}
	big, bigOff := testSuperFrame(t, 100*mss, mss)
	b.Reset()
	b.Add(super, off, 0, 0)
	b.Add(big, bigOff, 0, 0)
	w.writes = nil
	s.SendTo(w, b)
	if len(w.writes) != 3 || w.writes[0] != 64 || w.writes[1] != 64 || w.writes[2] != 12 {
		t.Errorf("writes of %v segments, want 64, 64 and 12: one too big for a write fills them", w.writes)
	}
}
