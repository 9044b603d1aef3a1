package netdev

import (
	"sync/atomic"
	"testing"
	"time"
)

// SetSpin forces the spin time into 0 .. MaxBusyPoll.
func TestPollGroupSpinClamps(t *testing.T) {
	g := NewPollGroup()
	for _, c := range []struct{ in, want time.Duration }{
		{-time.Second, 0}, {0, 0}, {30 * time.Microsecond, 30 * time.Microsecond},
		{MaxBusyPoll, MaxBusyPoll}, {time.Hour, MaxBusyPoll},
	} {
		g.SetSpin(c.in)
		if got := g.Spin(); got != c.want {
			t.Errorf("SetSpin(%v): %v, want %v", c.in, got, c.want)
		}
	}
}

// testMember is a member whose ring is an atomic flag.
type testMember struct {
	frames atomic.Bool
	m      *pollMember
	result chan bool
}

func newTestMember() *testMember {
	tm := &testMember{result: make(chan bool, 1)}
	tm.m = newPollMember(tm.frames.Load)
	return tm
}

// waitIn runs g.wait for tm in a goroutine; its result comes on tm.result.
func (tm *testMember) waitIn(g *PollGroup) { go func() { tm.result <- g.wait(tm.m) }() }

func (tm *testMember) get(t *testing.T, what string) bool {
	t.Helper()
	select {
	case r := <-tm.result:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: wait did not return", what)
		return false
	}
}

func (tm *testMember) stillWaiting(t *testing.T, what string) {
	t.Helper()
	select {
	case r := <-tm.result:
		t.Fatalf("%s: wait returned %v, want it still waiting", what, r)
	case <-time.After(20 * time.Millisecond):
	}
}

// awaitSpinner waits until m has the turn.
func awaitSpinner(t *testing.T, g *PollGroup, m *pollMember, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for g.spinner.Load() != m {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not the spinner", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// One member spins, the other parks; a frame on the parked member's ring
// hands it the turn and parks the spinner in its place, and back.
func TestPollGroupHandsOverTheTurn(t *testing.T) {
	g := NewPollGroup()
	g.spin.Store(int64(time.Minute)) // longer than the test, past the limit
	a, b := newTestMember(), newTestMember()
	a.waitIn(g)
	awaitSpinner(t, g, a.m, "a")
	b.waitIn(g)
	b.stillWaiting(t, "b, while a spins")
	// Frames for b: a hands over; b returns with the turn, a parks.
	b.frames.Store(true)
	if !b.get(t, "b with frames") {
		t.Fatal("b was told to sleep, want frames")
	}
	if g.spinner.Load() != b.m {
		t.Fatal("b has frames but not the turn")
	}
	a.stillWaiting(t, "a, after handing over")
	// b is done with its frames and spins again; frames for a wake a.
	b.frames.Store(false)
	b.waitIn(g)
	a.frames.Store(true)
	if !a.get(t, "a with frames") {
		t.Fatal("a was told to sleep, want frames")
	}
	b.stillWaiting(t, "b, after handing back")
	// Nothing more: the spin time passes and both are told to sleep.
	a.frames.Store(false)
	g.SetSpin(100 * time.Microsecond)
	a.waitIn(g)
	if a.get(t, "a spinning out") || b.get(t, "b parked") {
		t.Fatal("told of frames when there were none")
	}
	if g.spinner.Load() != nil {
		t.Fatal("a spinner left after the spin time")
	}
}

// A spinner busy with its own frames wakes parked members with frames of
// their own (poke), keeping its turn; with spinning off, nobody spins.
func TestPollGroupPokeAndOff(t *testing.T) {
	g := NewPollGroup()
	g.spin.Store(int64(time.Minute))
	a, b := newTestMember(), newTestMember()
	a.frames.Store(true)
	if !g.wait(a.m) {
		t.Fatal("a has frames: wait said sleep")
	}
	if g.spinner.Load() != a.m {
		t.Fatal("a does not have the turn")
	}
	b.waitIn(g)
	b.stillWaiting(t, "b, parked")
	b.frames.Store(true)
	g.poke(b.m) // not the spinner: nothing
	b.stillWaiting(t, "b, poked by a non-spinner")
	g.poke(a.m)
	if !b.get(t, "b poked") {
		t.Fatal("b was told to sleep, want frames")
	}
	if g.spinner.Load() != a.m {
		t.Fatal("a lost its turn to a poke")
	}
	// Off: the spinner's next wait gives the turn up and sleeps.
	g.SetSpin(0)
	a.frames.Store(false)
	if g.wait(a.m) || g.spinner.Load() != nil {
		t.Fatal("spinning with the spin time 0")
	}
}

// Releasing the turn (the spinner's port closed) tells every parked
// member to sleep.
func TestPollGroupRelease(t *testing.T) {
	g := NewPollGroup()
	g.spin.Store(int64(time.Minute))
	a, b, c := newTestMember(), newTestMember(), newTestMember()
	a.frames.Store(true)
	g.wait(a.m)
	b.waitIn(g)
	c.waitIn(g)
	b.stillWaiting(t, "b")
	g.release(b.m) // not the spinner: nothing
	c.stillWaiting(t, "c")
	g.release(a.m)
	if b.get(t, "b") || c.get(t, "c") {
		t.Fatal("told of frames on release")
	}
}

// A parked member whose port closes is woken by leave even with no
// spinner coming by (its reader must let go of the ring Close unmaps);
// a spinner that leaves gives up its turn.
func TestPollGroupLeave(t *testing.T) {
	g := NewPollGroup()
	g.spin.Store(int64(time.Minute))
	a, b := newTestMember(), newTestMember()
	a.frames.Store(true)
	g.wait(a.m) // a has the turn and is busy with frames
	b.waitIn(g)
	b.stillWaiting(t, "b")
	g.leave(b.m)
	if !b.get(t, "b leaving") {
		t.Fatal("b was told to sleep, want to look at its (closed) port")
	}
	g.leave(a.m)
	if g.spinner.Load() != nil {
		t.Fatal("a kept its turn after leaving")
	}
}
