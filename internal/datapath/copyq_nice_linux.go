//go:build linux

package datapath

import (
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// copySenderNice is the CPU priority of the thread that sends a tunnel's
// mirror copies: "idle" for SCHED_IDLE, or a nice value (a string so
// that experiments can set it at link time).
var copySenderNice = "idle"

// copySenderBoostNice is the nice value a starved idle sender runs at
// until its next batch is out (see copyQueue.checkStarved).
const copySenderBoostNice = 10

// lowerCopySenderPriority runs the calling goroutine, for the rest of its
// life, on a thread of its own with a lower CPU priority, and returns the
// thread's id if that priority is SCHED_IDLE (else 0). A tunnel's copies
// cost kernel time per frame; on a busy host this way the traffic they
// copy keeps its CPU, and the copies that cannot be sent in time are
// dropped and counted instead. SCHED_IDLE, unlike a nice value, gives
// way at once to any thread that wakes up (a receive thread) and takes
// only CPU time nobody else wants; measured, the mirrored traffic keeps
// more (docs/PERFORMANCE.md). The thread ends with the goroutine (it is
// never unlocked), so no other goroutine inherits its priority.
func lowerCopySenderPriority() int {
	if copySenderNice == "idle" {
		runtime.LockOSThread()
		if err := setIdlePolicy(0); err != nil {
			dpLog.WarnRL(copyRL, "mirror copy sender: cannot lower its priority: %v", err)
			return 0
		}
		return unix.Gettid()
	}
	nice, err := strconv.Atoi(copySenderNice)
	if err != nil || nice <= 0 {
		return 0
	}
	runtime.LockOSThread()
	if err := unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), nice); err != nil {
		dpLog.WarnRL(copyRL, "mirror copy sender: cannot lower its priority: %v", err)
	}
	return 0
}

// setIdlePolicy puts thread tid (0: the calling one) in SCHED_IDLE.
func setIdlePolicy(tid int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	return unix.SchedSetAttr(tid, &attr, 0)
}

// boostPolicy puts thread tid back in the normal policy, at
// copySenderBoostNice (a variable for tests).
var boostPolicy = func(tid int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: copySenderBoostNice}
	return unix.SchedSetAttr(tid, &attr, 0)
}
