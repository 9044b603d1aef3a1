package netdev

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Busy polling: the receive threads of a group of ports take turns at
// watching every member's receive ring, so that a frame arriving on any
// of them is taken without waking a sleeping thread. Such a wake-up (a
// round trip through the kernel's scheduler and, on a virtual machine,
// an idle virtual CPU's) is most of what a crossing of the switch adds
// to a request/response exchange.
//
// One member at a time spins: the spinner. A member whose ring is empty
// while another spins does not sleep in the kernel; it parks on its own
// channel, and the spinner, when it sees that member's ring fill, hands
// it the turn and parks in its place. That hand-over wakes a goroutine
// on the spinner's own thread (a switch between goroutines, not a
// thread wake-up), and only one core is ever kept busy: with a spinner
// per port, two ports would take both cores of a small machine from the
// very processes whose replies they wait for (measured: latency three
// times worse, docs/PERFORMANCE.md). When no member has received
// anything for the spin time, every member goes back to sleeping in the
// kernel, and the next frame wakes its thread as without busy polling.

// MaxBusyPoll bounds the spin time: past a millisecond, spinning no
// longer saves a wake-up worth its cost.
const MaxBusyPoll = time.Millisecond

// BusyPoller is implemented by a Netdev whose receive can take part in a
// PollGroup (a system port's receive ring).
type BusyPoller interface {
	Netdev
	// JoinPollGroup makes the port's reader spin with g's members, for
	// g's spin time (none while it is 0). Called before the first
	// ReadBatch.
	JoinPollGroup(g *PollGroup)
}

// PollGroup is the ports that take turns at spinning (a datapath's).
type PollGroup struct {
	spin atomic.Int64 // ns; 0: nobody spins

	mu sync.Mutex
	// spinner is the member whose turn it is (nil: nobody's); it is
	// changed under mu, and read without it only to skip poke.
	spinner atomic.Pointer[pollMember]
	parked  []*pollMember // guarded by mu: waiting for the spinner's call
}

// NewPollGroup returns a group that does not spin until SetSpin.
func NewPollGroup() *PollGroup { return &PollGroup{} }

// SetSpin sets how long the group watches its idle rings before its
// members sleep, forced into 0 .. MaxBusyPoll; 0 turns spinning off.
func (g *PollGroup) SetSpin(d time.Duration) {
	g.spin.Store(int64(min(max(d, 0), MaxBusyPoll)))
}

// Spin returns the spin time.
func (g *PollGroup) Spin() time.Duration { return time.Duration(g.spin.Load()) }

// wakeReason is what a parked member is told.
type wakeReason uint8

const (
	wakeFrames wakeReason = iota // your ring has frames (or your port closed)
	wakeSleep                    // nobody spins any more: sleep in the kernel
)

// pollMember is one port's reader in a group.
type pollMember struct {
	// ready reports a frame at the ring's head, or the port closed. The
	// spinner calls it for a parked member, whose reader holds the ring
	// (so it stays mapped) until woken.
	ready func() bool
	wake  chan wakeReason
}

func newPollMember(ready func() bool) *pollMember {
	return &pollMember{ready: ready, wake: make(chan wakeReason, 1)}
}

// spinCheck is how many looks at the rings go between two readings of
// the clock, each a chance for other goroutines and threads to run
// (yieldCPU): about a microsecond's worth.
const spinCheck = 64

// wait is called by m's reader when its ring is empty. It returns true
// when m's ring has frames (or its port closed), false when the reader
// is to sleep in the kernel.
func (g *PollGroup) wait(m *pollMember) bool {
	if g.spin.Load() <= 0 {
		g.release(m)
		return false
	}
	g.mu.Lock()
	if s := g.spinner.Load(); s != nil && s != m {
		g.parked = append(g.parked, m)
		g.mu.Unlock()
		return <-m.wake == wakeFrames
	}
	g.spinner.Store(m)
	g.mu.Unlock()
	return g.spinAll(m)
}

// spinAll is the spinner's loop: it watches its own ring and the parked
// members' until a frame comes or the spin time passes with none.
func (g *PollGroup) spinAll(m *pollMember) bool {
	start := time.Now()
	for i := 1; ; i++ {
		if m.ready() {
			busyPollHit.Inc()
			return true
		}
		if i%spinCheck != 0 {
			continue
		}
		if next := g.handOver(m); next {
			busyPollHit.Inc()
			return <-m.wake == wakeFrames
		}
		if d := time.Duration(g.spin.Load()); time.Since(start) >= d {
			busyPollSleep.Inc()
			g.release(m)
			return false
		}
		yieldCPU()
	}
}

// handOver looks for a parked member with frames: if there is one, it
// becomes the spinner and is woken, m takes its place among the parked,
// and handOver returns true.
func (g *PollGroup) handOver(m *pollMember) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.spinner.Load() != m { // the port closed under the spinner
		return false
	}
	for i, x := range g.parked {
		if !x.ready() {
			continue
		}
		g.parked[i] = m
		g.spinner.Store(x)
		x.wake <- wakeFrames
		return true
	}
	return false
}

// poke is called by m's reader when it has frames to hand out: if m is
// the spinner, members parked with frames of their own are woken to
// take them (without the turn), so that a busy port cannot starve them.
func (g *PollGroup) poke(m *pollMember) {
	if g.spinner.Load() != m {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.spinner.Load() != m {
		return
	}
	kept := g.parked[:0]
	for _, x := range g.parked {
		if x.ready() {
			x.wake <- wakeFrames
			continue
		}
		kept = append(kept, x)
	}
	clear(g.parked[len(kept):])
	g.parked = kept
}

// leave is called when m's port closes: its turn ends if it has it (its
// reader may never come back to give it up), and if it is parked it is
// woken, so that its reader lets go of the ring that Close unmaps even
// if no spinner comes by.
func (g *PollGroup) leave(m *pollMember) {
	g.release(m)
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, x := range g.parked {
		if x == m {
			g.parked = slices.Delete(g.parked, i, i+1)
			x.wake <- wakeFrames
			return
		}
	}
}

// release ends m's turn, if it is the spinner: every parked member is
// told to sleep in the kernel.
func (g *PollGroup) release(m *pollMember) {
	if g.spinner.Load() != m {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.spinner.Load() != m {
		return
	}
	g.spinner.Store(nil)
	for _, x := range g.parked {
		x.wake <- wakeSleep
	}
	clear(g.parked)
	g.parked = g.parked[:0]
}
