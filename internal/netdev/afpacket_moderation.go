//go:build linux

package netdev

import (
	"time"

	"golang.org/x/sys/unix"
)

// Receive moderation of the system port: under a steady stream of small
// frames the port thread empties the ring faster than frames come (about
// 1.5 frames per wake-up at 120,000 64-byte frames a second), so it
// parks in Go's netpoller and is woken again for nearly every frame. A
// wake-up costs the runtime's park and netpoll and the kernel's
// scheduling, far more than handing over one more frame.
//
// So when the port's recent waits were all short (frames arrive faster
// than modBusyWait apart), a reader that finds the ring empty first
// sleeps modNap in the kernel and looks again, instead of parking: the
// frames that came meanwhile are taken in one batch, for one wake-up. A
// nap that finds nothing means the stream slowed: the reader parks as
// before, and naps again only after modBusyRuns short waits in a row. A
// request/response exchange, whose waits are a round trip each (tens of
// microseconds), never naps, so its latency is unchanged.

const (
	// modBusyWait is the longest wait for a frame that still counts as
	// short: frames at least 50,000 a second.
	modBusyWait = 20 * time.Microsecond
	// modBusyRuns is how many short waits in a row make the port busy.
	modBusyRuns = 8
	// modNap is how long a busy reader sleeps before it looks again: the
	// most a frame is delayed by moderation.
	modNap = 30 * time.Microsecond
)

// rxModeration is one reader's moderation state; only the reader uses it.
type rxModeration struct {
	shortRuns int  // waits in a row shorter than modBusyWait
	napped    bool // the reader napped since it last found frames
	// For tests and measurement: naps taken, and parks in the netpoller.
	naps, parks uint64
}

// shouldNap reports whether a reader that found the ring empty should
// nap before it parks: the port is busy and has not napped in vain. A
// nap that found nothing ends the busy spell.
func (m *rxModeration) shouldNap() bool {
	if m.napped {
		m.napped = false
		m.shortRuns = 0
		return false
	}
	if m.shortRuns < modBusyRuns {
		return false
	}
	m.napped = true
	m.naps++
	return true
}

// found records that the reader found frames.
func (m *rxModeration) found() { m.napped = false }

// waited records a park in the netpoller that lasted d.
func (m *rxModeration) waited(d time.Duration) {
	m.parks++
	if d >= modBusyWait {
		m.shortRuns = 0
		return
	}
	m.shortRuns = min(m.shortRuns+1, modBusyRuns)
}

// nap sleeps in the kernel for d. An ordinary system call, so that
// Go's scheduler can run the thread's other goroutines elsewhere.
func nap(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_ = unix.Nanosleep(&ts, nil)
}
