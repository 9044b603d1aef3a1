package datapath

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// vmRSS returns the process's resident memory in bytes.
func vmRSS(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

var heapChurn [][]byte

// TestIdlePortThreadsAreNotResident: a port thread's frame buffers
// (1.5 MiB, 3.5 with super-frames) came from the Go heap, which zeroes
// the memory it hands out again, so they were resident from the start:
// gvsd with 4,096 internal ports and no traffic was 19 GB. They are now
// mapped outside the heap, resident only where frames are written, and
// a thread that ends gives its pages back.
func TestIdlePortThreadsAreNotResident(t *testing.T) {
	// Memory the heap used and freed, as a busy gvsd has.
	for range 20000 {
		b := make([]byte, 20000)
		b[0] = 1
		heapChurn = append(heapChurn, b)
	}
	heapChurn = nil
	runtime.GC()
	runtime.GC()
	dp := New()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapBefore := int64(ms.HeapInuse)
	before := vmRSS(t)
	const n = 256
	var threads []*portThread
	for i := range n {
		threads = append(threads, newPortThread(dp, &Port{Name: "p" + strconv.Itoa(i)}))
	}
	grown := vmRSS(t) - before
	runtime.ReadMemStats(&ms)
	heapGrown := int64(ms.HeapInuse) - heapBefore
	perThread := int64(BatchSize*(128+9280) + BatchSize*maxVariants*(128+9280))
	t.Logf("%d idle port threads: resident memory grew %d KiB (their buffers: %d KiB)", n, grown>>10, n*perThread>>10)
	if grown > n*perThread/32 {
		t.Errorf("%d idle port threads made %d KiB resident, more than 1/32 of their %d KiB of buffers", n, grown>>10, n*perThread>>10)
	}
	if heapGrown > n*perThread/32 {
		t.Errorf("%d idle port threads took %d KiB of the Go heap (which zeroes what it reuses)", n, heapGrown>>10)
	}
	// A thread that ends gives its buffers back, and the next one
	// reuses them.
	for _, th := range threads {
		th.bufs[0][0] = 1 // a frame was received
		th.freeFrameMem()
	}
	again := newPortThread(dp, &Port{Name: "again"})
	if again.bufs[0][0] != 0 {
		t.Error("a new thread's buffer holds an ended thread's frame")
	}
	runtime.KeepAlive(threads)
}
