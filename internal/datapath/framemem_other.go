//go:build !linux

package datapath

// allocFrames returns n zero bytes for frame buffers from the heap.
func allocFrames(n int) ([]byte, bool) { return make([]byte, n), false }

// freeFrames is never called: nothing is mapped.
func freeFrames([]byte) {}
