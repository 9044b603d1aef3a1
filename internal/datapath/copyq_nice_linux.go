//go:build linux

package datapath

import (
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// copySenderNice is the CPU priority of the thread that sends a tunnel's
// mirror copies: a nice value, or "idle" for SCHED_IDLE (a string so
// that experiments can set it at link time).
var copySenderNice = "10"

// lowerCopySenderPriority runs the calling goroutine, for the rest of its
// life, on a thread of its own with a lower CPU priority. A tunnel's
// copies cost kernel time per frame; on a busy host this way the
// traffic they copy keeps its CPU and the copies that cannot be sent in
// time are dropped and counted instead. The thread ends with the
// goroutine (it is never unlocked), so no other goroutine inherits it.
func lowerCopySenderPriority() {
	if copySenderNice == "idle" {
		runtime.LockOSThread()
		attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			dpLog.WarnRL(copyRL, "mirror copy sender: cannot lower its priority: %v", err)
		}
		return
	}
	nice, err := strconv.Atoi(copySenderNice)
	if err != nil || nice <= 0 {
		return
	}
	runtime.LockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice); err != nil {
		dpLog.WarnRL(copyRL, "mirror copy sender: cannot lower its priority: %v", err)
	}
}
