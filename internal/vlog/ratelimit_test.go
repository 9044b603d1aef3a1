package vlog

import (
	"strings"
	"testing"
	"time"
)

func TestRateLimitSuppressesAndReports(t *testing.T) {
	r, console, _ := newTestRegistry(t)
	m := r.Module("netdev")
	rl := NewRateLimit(3, time.Hour)
	for i := range 10 {
		m.WarnRL(rl, "receive failed %d", i)
	}
	if got := strings.Count(console.String(), "|WARN|receive failed"); got != 3 {
		t.Fatalf("%d lines written out of 10 with a burst of 3:\n%s", got, console.String())
	}
	// An hour later the bucket is full again: the next message gets
	// through, after a note counting the seven suppressed ones.
	rl.mu.Lock()
	rl.last = rl.last.Add(-time.Hour)
	rl.mu.Unlock()
	console.Reset()
	m.WarnRL(rl, "receive failed again")
	lines := strings.Split(strings.TrimSpace(console.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "|WARN|suppressed 7 messages like the next one") ||
		!strings.HasSuffix(lines[1], "|WARN|receive failed again") {
		t.Fatalf("after the refill:\n%s", console.String())
	}
}

func TestRateLimitDisabledLevelTakesNoToken(t *testing.T) {
	r, console, _ := newTestRegistry(t)
	m := r.Module("netdev")
	rl := NewRateLimit(1, time.Hour)
	m.DbgRL(rl, "not at the default level") // off: must not use the only token
	m.WarnRL(rl, "visible")
	if !strings.Contains(console.String(), "|WARN|visible") {
		t.Fatalf("a disabled debug call used the token:\n%q", console.String())
	}
}
