//go:build linux

package netdev

import (
	"testing"
	"time"
)

// A port naps only after modBusyRuns short waits in a row; a nap that
// finds nothing, or one long wait, ends the busy spell.
func TestRxModerationBusySpell(t *testing.T) {
	var m rxModeration
	short, long := modBusyWait/2, modBusyWait
	for i := range modBusyRuns - 1 {
		m.waited(short)
		if m.shouldNap() {
			t.Fatalf("naps after %d short waits, want %d first", i+1, modBusyRuns)
		}
	}
	m.waited(long)
	for range modBusyRuns - 1 {
		m.waited(short)
	}
	if m.shouldNap() {
		t.Fatal("a long wait did not restart the count of short ones")
	}
	m.waited(short)
	// Busy: every empty ring is a nap while naps find frames.
	for i := range 3 {
		if !m.shouldNap() {
			t.Fatalf("busy port, empty ring %d: no nap", i)
		}
		m.found()
	}
	if !m.shouldNap() {
		t.Fatal("busy port: no nap")
	}
	// That nap found nothing: park, and the spell is over.
	if m.shouldNap() {
		t.Fatal("napped twice in a row without frames")
	}
	if m.shouldNap() {
		t.Fatal("a nap in vain did not end the busy spell")
	}
	if m.naps != 4 || m.parks != 2*modBusyRuns {
		t.Errorf("naps %d, parks %d: want 4 and %d", m.naps, m.parks, 2*modBusyRuns)
	}
}

// Request/response traffic (one frame, then a wait of a round trip)
// never naps: its latency is the same as without moderation.
func TestRxModerationLeavesRequestResponseAlone(t *testing.T) {
	var m rxModeration
	for range 100 {
		m.waited(modBusyWait + time.Microsecond)
		if m.shouldNap() {
			t.Fatal("napped between requests a round trip apart")
		}
		m.found()
	}
}

// Through a real system port: a steady stream of frames makes the reader
// nap instead of parking for every frame, so it takes more frames per
// wake-up; every frame still arrives. On the old code (no moderation)
// the reader parks for nearly every frame.
func TestSystemRxModerationFewerWakeups(t *testing.T) {
	near, far := systemLoop(t)
	port := near.(*afpacketPort)
	const total = 4000
	frames := testFrames(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		// One frame every 4 µs or so, 250,000 a second at most: faster
		// than modBusyWait apart, slower than the reader empties the ring.
		for range total {
			if err := far.WriteBatch(frames); err != nil {
				return
			}
			spinFor(4 * time.Microsecond)
		}
	}()
	bufs, sizes := makeBufs(32)
	defer watchdog(t, 20*time.Second, near, far)()
	if !readTestFrames(near, bufs, sizes, total) {
		t.Fatal("frames lost")
	}
	<-done
	m := port.rd.mod
	wakeups := m.parks + m.naps
	t.Logf("%d frames: %d parks, %d naps, %.1f frames per wake-up", total, m.parks, m.naps, float64(total)/float64(wakeups))
	if m.naps == 0 {
		t.Fatal("a busy port never napped")
	}
	if float64(total)/float64(wakeups) < 2 {
		t.Errorf("%.1f frames per wake-up under a steady stream, want at least 2", float64(total)/float64(wakeups))
	}
}

func spinFor(d time.Duration) {
	for start := time.Now(); time.Since(start) < d; {
	}
}
