//go:build linux

package netdev

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// The kernel-backed drivers must not allocate per batch either. A loop
// through a real device: a port in the far namespace sends a batch, the
// port under test reads it (and the reverse for WriteBatch).

const testEtherType = 0x88b5 // IEEE local experimental: every stack ignores it

func testFrames(n int) [][]byte {
	frames := make([][]byte, n)
	for i := range frames {
		f := ethernet(net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macA, testEtherType)
		frames[i] = append(f, patterned(100)...)
	}
	return frames
}

// readTestFrames reads until want frames of testEtherType have arrived,
// ignoring whatever else the far stack sends.
func readTestFrames(dev Netdev, bufs [][]byte, sizes []int, want int) bool {
	for got := 0; got < want; {
		n, err := dev.ReadBatch(bufs, sizes)
		if err != nil {
			return false
		}
		for i := range n {
			if binary.BigEndian.Uint16(bufs[i][12:14]) == testEtherType {
				got++
			}
		}
	}
	return true
}

// watchdog closes the ports if a read hangs, so a lost frame fails the
// test instead of blocking it forever.
func watchdog(t testing.TB, d time.Duration, devs ...Netdev) func() {
	timer := time.AfterFunc(d, func() {
		t.Error("watchdog: frames lost, closing the ports")
		for _, dev := range devs {
			dev.Close()
		}
	})
	return func() { timer.Stop() }
}

// pairLoop is a port under test in a switch namespace and a system port on
// the far end of the same link, inside the far namespace.
func systemLoop(t testing.TB) (near, far Netdev) {
	s := newSystemSetup(t)
	far, err := openIn(t, s.ns, Config{Name: s.peer})
	if err != nil {
		t.Fatal(err)
	}
	return s.port, far
}

func tapLoop(t testing.TB) (near, far Netdev) {
	needRoot(t)
	sw, ns, name := newSwitchNetns(t), newNetns(t), uniqueName(t, "t")
	near, err := openIn(t, sw, Config{Name: name, Type: "internal"})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns)
	runErr("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf."+name+".disable_ipv6=1")
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	far, err = openIn(t, ns, Config{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return near, far
}

func checkLoopAllocs(t *testing.T, near, far Netdev) {
	const batch = 32
	frames := testFrames(batch)
	bufs, sizes := makeBufs(batch)
	defer watchdog(t, 20*time.Second, near, far)()
	for _, dir := range []struct {
		name     string
		from, to Netdev
	}{{"ReadBatch", far, near}, {"WriteBatch", near, far}} {
		// AllocsPerRun counts the whole process's allocations, and under
		// load the runtime's own (a parked reader's wake-up) now and
		// then land in a run: an allocation of the path shows in every
		// attempt, so the least of three is what the path costs.
		allocs := -1.0
		for range 3 {
			a := testing.AllocsPerRun(50, func() {
				dir.from.WriteBatch(frames)
				readTestFrames(dir.to, bufs, sizes, batch)
			})
			if allocs < 0 || a < allocs {
				allocs = a
			}
		}
		if allocs != 0 {
			t.Errorf("%s path allocates %.1f times per batch of %d", dir.name, allocs, batch)
		}
	}
	if st := near.Stats(); st.RxPackets < 50*batch || st.TxPackets < 50*batch {
		t.Errorf("stats %+v: frames went missing", st)
	}
}

func TestSystemZeroAllocs(t *testing.T) {
	near, far := systemLoop(t)
	checkLoopAllocs(t, near, far)
}

func TestInternalZeroAllocs(t *testing.T) {
	near, far := tapLoop(t)
	checkLoopAllocs(t, near, far)
}

// benchmarkLoop measures one batch of 32 minimum-size-ish frames sent by
// from and read by to, per operation.
func benchmarkLoop(b *testing.B, from, to Netdev) { benchmarkLoopOf(b, from, to, 32) }

// benchmarkLoopOf is benchmarkLoop with batches of batch frames: small
// batches show what each write's system call costs.
func benchmarkLoopOf(b *testing.B, from, to Netdev, batch int) {
	frames := testFrames(batch)
	bufs, sizes := makeBufs(batch)
	defer watchdog(b, 60*time.Second, from, to)()
	b.ReportAllocs()
	b.SetBytes(int64(batch * len(frames[0])))
	for b.Loop() {
		from.WriteBatch(frames)
		if !readTestFrames(to, bufs, sizes, batch) {
			b.Fatal("port closed")
		}
	}
}

func BenchmarkSystemReadBatch(b *testing.B) {
	near, far := systemLoop(b)
	benchmarkLoop(b, far, near)
}

func BenchmarkSystemWriteBatch(b *testing.B) {
	near, far := systemLoop(b)
	benchmarkLoop(b, near, far)
}

// BenchmarkSystemWriteSmallBatch writes 2 frames per batch, about what a
// port thread sends per wake-up under a single 64-byte UDP flow.
func BenchmarkSystemWriteSmallBatch(b *testing.B) {
	near, far := systemLoop(b)
	benchmarkLoopOf(b, near, far, 2)
}

func BenchmarkInternalReadBatch(b *testing.B) {
	near, far := tapLoop(b)
	benchmarkLoop(b, far, near)
}

func BenchmarkInternalWriteBatch(b *testing.B) {
	near, far := tapLoop(b)
	benchmarkLoop(b, near, far)
}
