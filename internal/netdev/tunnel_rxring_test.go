package netdev

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"

	"gvs/internal/packet"
)

// rxFill puts frames of size bytes into r until it refuses one and
// returns how many it took.
func rxFill(r *rxRing, size int) int {
	f := make([]byte, size)
	md := packet.TunnelMeta{ID: 7}
	n := 0
	for n <= tunnelRxFrames && r.put(f, &md) {
		n++
	}
	return n
}

// TestTunnelRxQueueHoldsThousandsOfMTUFrames: a tunnel port's receive
// queue holds thousands of MTU-size frames (a descheduled port thread's
// backlog at a few Gbit/s: 512 overflowed), with memory bounded by
// bytes, not by MaxFrame per frame; tiny frames stop at the descriptor
// count, jumbo frames at the byte area.
func TestTunnelRxQueueHoldsThousandsOfMTUFrames(t *testing.T) {
	for _, tc := range []struct {
		size     int
		min, max int
	}{
		{1514, 2048, tunnelRxFrames},
		{64, tunnelRxFrames, tunnelRxFrames},
		{MaxFrame, 256, tunnelRxBytes / MaxFrame},
	} {
		var r rxRing
		r.init()
		if n := rxFill(&r, tc.size); n < tc.min || n > tc.max {
			t.Errorf("%d-byte frames: the queue took %d, want %d to %d", tc.size, n, tc.min, tc.max)
		}
	}
}

// TestTunnelRxQueueMemoryBounded: the queue's memory is its byte area
// and descriptors, not a MaxFrame slot per frame: under a third of what
// 2,048 slots cost.
func TestTunnelRxQueueMemoryBounded(t *testing.T) {
	var r rxRing
	r.init()
	mem := len(r.data) + len(r.descs)*int(unsafe.Sizeof(rxDesc{}))
	if slots := 2048 * MaxFrame; mem > slots/3 {
		t.Errorf("the queue uses %d bytes, want at most a third of 2,048 MaxFrame slots (%d)", mem, slots)
	}
}

// TestTunnelRxQueueWrapsInOrder: frames of many sizes, put and taken in
// uneven batches across many turns of the byte area, come out whole, in
// order, with their metadata; the emptied queue takes thousands again.
func TestTunnelRxQueueWrapsInOrder(t *testing.T) {
	var r rxRing
	r.init()
	rng := rand.New(rand.NewPCG(1, 2))
	var want [][]byte
	var wantMD []packet.TunnelMeta
	seq := uint64(0)
	bufs := make([][]byte, tunnelBatch)
	for i := range bufs {
		bufs[i] = make([]byte, MaxFrame)
	}
	sizes, tun := make([]int, tunnelBatch), make([]packet.TunnelMeta, tunnelBatch)
	var total uint64
	for total < 8*tunnelRxBytes {
		for range rng.IntN(200) {
			f := make([]byte, 1+rng.IntN(MaxFrame))
			for j := range f {
				f[j] = byte(seq) + byte(j)
			}
			md := packet.TunnelMeta{ID: seq}
			if !r.put(f, &md) {
				break
			}
			seq++
			total += uint64(len(f))
			want, wantMD = append(want, f), append(wantMD, md)
		}
		for range rng.IntN(8) {
			k, c := r.take(bufs, sizes, nil, tun, false)
			if int(c.packets) != k {
				t.Fatalf("took %d frames, counted %d", k, c.packets)
			}
			for i := range k {
				if !bytes.Equal(bufs[i][:sizes[i]], want[0]) || tun[i] != wantMD[0] {
					t.Fatalf("frame %d: got %d bytes (metadata %d), want %d bytes (%d)",
						wantMD[0].ID, sizes[i], tun[i].ID, len(want[0]), wantMD[0].ID)
				}
				want, wantMD = want[1:], wantMD[1:]
			}
		}
	}
	for len(want) > 0 {
		k, _ := r.take(bufs, sizes, nil, tun, false)
		if k == 0 {
			t.Fatalf("%d frames left in the queue, none taken", len(want))
		}
		want, wantMD = want[k:], wantMD[k:]
	}
	if n := rxFill(&r, 1514); n < 2048 {
		t.Errorf("after wrapping, the emptied queue took %d MTU frames", n)
	}
}

// TestTunnelRxQueueRefusesOversize: a frame larger than the byte area is
// refused, not written past it.
func TestTunnelRxQueueRefusesOversize(t *testing.T) {
	var r rxRing
	r.init()
	if r.put(make([]byte, tunnelRxBytes+1), &packet.TunnelMeta{}) {
		t.Fatal("took a frame larger than the queue")
	}
	if !r.put(make([]byte, 100), &packet.TunnelMeta{}) {
		t.Fatal("an empty queue refused a frame")
	}
}
