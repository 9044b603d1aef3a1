package netdev

import "time"

// BusyPoller is implemented by a Netdev whose receive can spin before it
// sleeps: with a busy-poll time set, ReadBatch, finding nothing to read,
// watches for a frame for that long before it parks the thread. A frame
// that arrives meanwhile is taken without the wake-up of a sleeping
// thread, which costs a round trip through the kernel's scheduler (and
// on a virtual machine, an idle virtual CPU's wake-up): that is most of
// what a crossing costs a request/response exchange. The price is a core
// kept busy while the port is idle for less than the time set.
type BusyPoller interface {
	Netdev
	// SetBusyPoll sets how long to spin; 0 (the default) never spins.
	// It may be called at any time, from any goroutine; the next wait
	// uses the new value.
	SetBusyPoll(d time.Duration)
}

// MaxBusyPoll bounds the busy-poll time: past a millisecond, spinning
// no longer saves a wake-up worth its cost.
const MaxBusyPoll = time.Millisecond
