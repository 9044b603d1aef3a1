package vlog

import (
	"fmt"
	"sync"
	"time"
)

// RateLimit bounds how often one message site writes, so that a fault that
// repeats for every packet or every client (a port that keeps failing, a
// peer that keeps sending garbage) fills no disk and hides no other line.
// It is a token bucket: Burst messages at once, then one every
// Interval/Burst. When messages were suppressed, the next one that passes
// is preceded by a line saying how many, so nothing is lost silently.
//
// Declare one per call site, next to the module:
//
//	var rxFailRL = vlog.NewRateLimit(5, time.Minute)
//	log.WarnRL(rxFailRL, "port %s: receive failed: %v", name, err)
type RateLimit struct {
	burst    float64
	interval time.Duration

	mu         sync.Mutex
	tokens     float64
	last       time.Time // when tokens was last refilled
	suppressed int       // messages dropped since the last one written
	firstDrop  time.Time
	lastDrop   time.Time
}

// NewRateLimit allows burst messages per interval.
func NewRateLimit(burst int, interval time.Duration) *RateLimit {
	if burst < 1 {
		burst = 1
	}
	if interval <= 0 {
		interval = time.Minute
	}
	return &RateLimit{burst: float64(burst), interval: interval, tokens: float64(burst)}
}

// allow takes a token if there is one. When it does and earlier messages
// were suppressed, it returns how many and over what span, for the note.
func (rl *RateLimit) allow(now time.Time) (ok bool, dropped int, span, ago time.Duration) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if !rl.last.IsZero() {
		rl.tokens += now.Sub(rl.last).Seconds() / rl.interval.Seconds() * rl.burst
		if rl.tokens > rl.burst {
			rl.tokens = rl.burst
		}
	}
	rl.last = now
	if rl.tokens < 1 {
		if rl.suppressed == 0 {
			rl.firstDrop = now
		}
		rl.suppressed++
		rl.lastDrop = now
		return false, 0, 0, 0
	}
	rl.tokens--
	dropped = rl.suppressed
	if dropped > 0 {
		span, ago = now.Sub(rl.firstDrop), now.Sub(rl.lastDrop)
		rl.suppressed = 0
	}
	return true, dropped, span, ago
}

// LogRL is Log through rl: the message is written only if rl allows it.
func (m *Module) LogRL(rl *RateLimit, l Level, format string, args ...any) {
	if !m.Enabled(l) {
		return
	}
	now := time.Now()
	ok, dropped, span, ago := rl.allow(now)
	if !ok {
		return
	}
	if dropped > 0 {
		m.reg.write(m, l, fmt.Sprintf("suppressed %d messages like the next one in the last %.0f seconds (the latest %.0f seconds ago): too many to log",
			dropped, span.Seconds(), ago.Seconds()), now)
	}
	m.reg.write(m, l, fmt.Sprintf(format, args...), now)
}

// ErrRL is Err through rl.
func (m *Module) ErrRL(rl *RateLimit, format string, args ...any) { m.LogRL(rl, Err, format, args...) }

// WarnRL is Warn through rl.
func (m *Module) WarnRL(rl *RateLimit, format string, args ...any) {
	m.LogRL(rl, Warn, format, args...)
}

// InfoRL is Info through rl.
func (m *Module) InfoRL(rl *RateLimit, format string, args ...any) {
	m.LogRL(rl, Info, format, args...)
}

// DbgRL is Dbg through rl.
func (m *Module) DbgRL(rl *RateLimit, format string, args ...any) { m.LogRL(rl, Dbg, format, args...) }
