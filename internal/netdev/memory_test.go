package netdev

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// makeBufs returns read buffers as a port thread would pass them: empty
// slices with room for MaxFrame bytes, so drivers must not rely on len.
func makeBufs(n int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, 0, MaxFrame)
	}
	return bufs, make([]int, n)
}

func openMemoryPort(t *testing.T, name string, opts map[string]string) (Netdev, *Memory) {
	t.Helper()
	dev, err := Open(Config{Name: name, Type: "memory", Options: opts})
	if err != nil {
		t.Fatalf("open memory port: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	m, ok := LookupMemory(name)
	if !ok || m != dev {
		t.Fatalf("LookupMemory(%q) = %v, %v; want the opened port", name, m, ok)
	}
	return dev, m
}

func TestMemoryRoundTrip(t *testing.T) {
	dev, m := openMemoryPort(t, "mem0", nil)
	in := [][]byte{bytes.Repeat([]byte{1}, 60), bytes.Repeat([]byte{2}, 1514), bytes.Repeat([]byte{3}, 64)}
	for _, f := range in {
		if err := m.Inject(f); err != nil {
			t.Fatalf("Inject: %v", err)
		}
	}
	bufs, sizes := makeBufs(2)
	var got [][]byte
	for _, want := range []int{2, 1} { // the batch size limits the first read
		n, err := dev.ReadBatch(bufs, sizes)
		if err != nil || n != want {
			t.Fatalf("ReadBatch = %d, %v; want %d frames", n, err, want)
		}
		for i := range n {
			got = append(got, append([]byte(nil), bufs[i][:sizes[i]]...))
		}
	}
	for i := range in {
		if !bytes.Equal(got[i], in[i]) {
			t.Errorf("received frame %d differs from injected one", i)
		}
	}
	if err := dev.WriteBatch(in); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	sent := m.Sent()
	if len(sent) != len(in) {
		t.Fatalf("Sent() returned %d frames, want %d", len(sent), len(in))
	}
	for i := range in {
		if !bytes.Equal(sent[i], in[i]) {
			t.Errorf("sent frame %d differs", i)
		}
	}
	st := dev.Stats()
	if st.RxPackets != 3 || st.TxPackets != 3 || st.RxBytes != 60+1514+64 || st.TxBytes != st.RxBytes {
		t.Errorf("stats = %+v", st)
	}
}

func TestMemoryQueueFullAndDrops(t *testing.T) {
	dev, m := openMemoryPort(t, "mem1", map[string]string{"depth": "2"})
	frame := make([]byte, 60)
	for i := range 2 {
		if err := m.Inject(frame); err != nil {
			t.Fatalf("Inject %d: %v", i, err)
		}
	}
	if err := m.Inject(frame); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("third Inject = %v, want ErrQueueFull", err)
	}
	dev.WriteBatch([][]byte{frame, frame, frame, nil})
	if st := dev.Stats(); st.TxPackets != 2 || st.TxDropped != 1 || st.TxErrors != 1 {
		t.Errorf("stats after overfull write = %+v, want 2 sent, 1 dropped, 1 error", st)
	}
	if f, ok := m.Next(time.Second); !ok || len(f) != 60 {
		t.Errorf("Next = %d bytes, %v", len(f), ok)
	}
}

func TestMemoryCloseUnblocksRead(t *testing.T) {
	dev, m := openMemoryPort(t, "mem2", nil)
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := makeBufs(4)
		_, err := dev.ReadBatch(bufs, sizes)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	dev.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadBatch after Close = %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("ReadBatch still blocked 2s after Close")
	}
	if err := m.Inject(make([]byte, 60)); !errors.Is(err, ErrClosed) {
		t.Errorf("Inject after Close = %v, want ErrClosed", err)
	}
	if _, ok := LookupMemory("mem2"); ok {
		t.Error("closed port still registered")
	}
	if _, err := Open(Config{Name: "mem2", Type: "memory"}); err != nil {
		t.Errorf("reopening a closed name: %v", err)
	}
	if d, ok := LookupMemory("mem2"); ok {
		d.Close()
	}
}

func TestMemoryDuplicateName(t *testing.T) {
	openMemoryPort(t, "mem3", nil)
	if _, err := Open(Config{Name: "mem3", Type: "memory"}); err == nil {
		t.Fatal("opening a memory port twice succeeded")
	}
}

func TestMemoryRejectsSmallBuffers(t *testing.T) {
	dev, m := openMemoryPort(t, "mem4", nil)
	m.Inject(make([]byte, 60))
	if _, err := dev.ReadBatch([][]byte{make([]byte, 100)}, []int{0}); err == nil {
		t.Fatal("ReadBatch accepted a buffer smaller than MaxFrame")
	}
}

func TestMemoryInfoStableMAC(t *testing.T) {
	a, b := NewMemory("x", 1).Info(), NewMemory("x", 1).Info()
	if a.MAC.String() != b.MAC.String() || a.MAC[0]&0x03 != 0x02 {
		t.Errorf("MACs %s, %s: want equal, locally administered unicast", a.MAC, b.MAC)
	}
}

func TestMemoryZeroAllocs(t *testing.T) {
	m := NewMemory("alloc", 64)
	defer m.Close()
	bufs, sizes := makeBufs(32)
	frames := make([][]byte, 32)
	for i := range frames {
		frames[i] = make([]byte, 64)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			m.Inject(f)
		}
		m.ReadBatch(bufs, sizes)
		m.WriteBatch(frames)
		for range frames {
			m.txFree <- (<-m.tx)
		}
	})
	if allocs != 0 {
		t.Errorf("ReadBatch/WriteBatch allocate %.1f times per batch", allocs)
	}
}

func BenchmarkMemoryReadBatch(b *testing.B) {
	m := NewMemory("bench-rx", 64)
	defer m.Close()
	bufs, sizes := makeBufs(32)
	frame := make([]byte, 64)
	b.ReportAllocs()
	b.SetBytes(32 * 64)
	for b.Loop() {
		for range 32 {
			m.Inject(frame)
		}
		if n, err := m.ReadBatch(bufs, sizes); n != 32 || err != nil {
			b.Fatalf("ReadBatch = %d, %v", n, err)
		}
	}
}

func BenchmarkMemoryWriteBatch(b *testing.B) {
	m := NewMemory("bench-tx", 64)
	defer m.Close()
	frames := make([][]byte, 32)
	for i := range frames {
		frames[i] = make([]byte, 64)
	}
	b.ReportAllocs()
	b.SetBytes(32 * 64)
	for b.Loop() {
		m.WriteBatch(frames)
		for range frames {
			m.txFree <- (<-m.tx)
		}
	}
}

// TestMemoryDepthBounded checks that options:depth, which sizes the
// port's preallocated buffers, is refused outside its range instead of
// allocating without bound.
func TestMemoryDepthBounded(t *testing.T) {
	for _, depth := range []string{"0", "-1", "x", "1025", "1000000000", "99999999999999999999"} {
		_, err := Open(Config{Name: "memdeep", Type: "memory", Options: map[string]string{"depth": depth}})
		if err == nil || !strings.Contains(err.Error(), "from 1 to 1024") {
			t.Errorf("depth %s: err = %v, want a range error", depth, err)
		}
	}
}

// TestMemoryDepthTotalBounded: one port's depth is bounded, and so are
// all ports' together (each unit preallocates two frames): a database
// opening many deep memory ports is refused past MaxMemoryDepthTotal,
// and a closed port gives its depth back.
func TestMemoryDepthTotalBounded(t *testing.T) {
	defer func(n int) { memoryDepthTotal = n }(memoryDepthTotal)
	memoryDepthTotal = 4 * 16
	deep := map[string]string{"depth": "16"}
	var open []Netdev
	defer func() {
		for _, p := range open {
			p.Close()
		}
	}()
	for i := range 4 {
		p, err := Open(Config{Name: fmt.Sprintf("memtot%d", i), Type: "memory", Options: deep})
		if err != nil {
			t.Fatalf("port %d: %v", i, err)
		}
		open = append(open, p)
	}
	if p, err := Open(Config{Name: "memtotmore", Type: "memory", Options: deep}); err == nil || !strings.Contains(err.Error(), "add up to at most") {
		if p != nil {
			p.Close()
		}
		t.Fatalf("one port too many: %v, want the total depth refused", err)
	}
	open[0].Close()
	p, err := Open(Config{Name: "memtotmore", Type: "memory", Options: deep})
	if err != nil {
		t.Fatalf("after closing one: %v", err)
	}
	open = append(open, p)
}
