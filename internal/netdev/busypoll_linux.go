//go:build linux

package netdev

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// yieldCPU lets other goroutines, then other threads of this CPU, run
// for a while. The spinner calls it about every microsecond: a thread
// woken onto the spinner's CPU (the client or server whose frame it
// waits for, often) would otherwise wait for the scheduler to preempt
// the spinner, up to a time slice; measured, that put the 99th
// percentile of a request/response above the Go scheduler's alone
// (docs/PERFORMANCE.md).
func yieldCPU() {
	runtime.Gosched()
	_, _, _ = unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
}
