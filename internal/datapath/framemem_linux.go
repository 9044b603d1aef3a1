package datapath

import (
	"sync"

	"golang.org/x/sys/unix"
)

// Port threads' frame buffers live outside the Go heap, in anonymous
// mappings: a page of them is resident only once a frame was written
// there. From the heap they were resident at once (memory the heap
// reuses is zeroed when it is handed out): gvsd with 4,096 internal
// ports and no traffic was 19 GB. A thread that ends gives its mapping
// back to a pool, its pages to the kernel (MADV_DONTNEED), for the next
// thread of the same size; the pool is at most as large as the most
// threads there ever were, and holds no resident memory.
var framePool struct {
	sync.Mutex
	free map[int][][]byte
}

// allocFrames returns n zero bytes for frame buffers, and whether they
// are a mapping to give back with freeFrames.
func allocFrames(n int) ([]byte, bool) {
	framePool.Lock()
	if l := framePool.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		framePool.free[n] = l[:len(l)-1]
		framePool.Unlock()
		return b, true
	}
	framePool.Unlock()
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, n), false
	}
	return b, true
}

// freeFrames gives back what allocFrames mapped: its pages to the kernel
// (they read as zeros again), the mapping to the pool.
func freeFrames(b []byte) {
	_ = unix.Madvise(b, unix.MADV_DONTNEED)
	framePool.Lock()
	if framePool.free == nil {
		framePool.free = map[int][][]byte{}
	}
	framePool.free[len(b)] = append(framePool.free[len(b)], b)
	framePool.Unlock()
}
