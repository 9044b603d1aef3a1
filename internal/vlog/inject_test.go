package vlog

import (
	"strings"
	"testing"
)

// TestMessagesCannotForgeLines: log messages carry names and values a
// database client wrote (an interface named "p1\n2026-...|EMER|..."),
// which were written raw: a newline forged a whole log line, an escape
// sequence drove the terminal of whoever read the log, and a message of
// megabytes went out whole. A continuation line is indented, so no
// message starts a line of its own; other control characters are
// escaped; a message is cut at MaxMessage bytes.
func TestMessagesCannotForgeLines(t *testing.T) {
	r, console, syslog := newTestRegistry(t)
	m := r.Module("bridge")
	m.Warn("cannot open interface %s", "p1\n2026-12-04T00:00:00Z|00001|bridge|EMER|forged\r\x1b[2J")
	out := console.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	for i, l := range lines {
		if i > 0 && !strings.HasPrefix(l, " ") {
			t.Errorf("line %d of one message starts a line of its own: %q", i+1, l)
		}
	}
	if strings.ContainsAny(out, "\r\x1b") || !strings.Contains(out, `\x1b[2J`) {
		t.Errorf("control characters not escaped: %q", out)
	}
	if strings.ContainsAny(syslog.String(), "\r\x1b") {
		t.Errorf("control characters reach syslog: %q", syslog.String())
	}
	console.Reset()
	m.Warn("%s", strings.Repeat("x", 4<<20))
	if n := console.Len(); n > MaxMessage+256 {
		t.Errorf("a 4 MiB message wrote %d bytes", n)
	}
}
