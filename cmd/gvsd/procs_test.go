package main

import (
	"runtime"
	"testing"
)

// TestProcsFor: gvsd runs with two Ps beyond the default, so that a port
// thread inside a raw send does not keep the other direction's thread
// from a P; a GOMAXPROCS the user set is left alone.
func TestProcsFor(t *testing.T) {
	if got := procsFor(2, false); got != 4 {
		t.Errorf("procsFor(2, false) = %d, want 4", got)
	}
	if got := procsFor(2, true); got != 0 {
		t.Errorf("procsFor(2, true) = %d, want 0 (left alone)", got)
	}
}

// TestSetProcs checks that setProcs raises GOMAXPROCS unless the
// variable is set.
func TestSetProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(old)
	setProcs(func(string) string { return "3" })
	if got := runtime.GOMAXPROCS(0); got != old {
		t.Errorf("with GOMAXPROCS set: %d Ps, want %d", got, old)
	}
	setProcs(func(string) string { return "" })
	if got := runtime.GOMAXPROCS(0); got != old+spareProcs {
		t.Errorf("GOMAXPROCS = %d, want %d", got, old+spareProcs)
	}
}
