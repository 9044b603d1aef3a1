package vlog

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// MaxMessage bounds one log message (a panic's stack fits): messages
// carry values from outside (names, option values a database client
// wrote), which may be megabytes.
const MaxMessage = 64 << 10

// sanitize makes msg safe to write as one log record: cut to MaxMessage
// bytes, each line after the first indented so that no message can
// forge a record of its own (the stack of a panic stays readable), and
// control characters other than tab escaped (\x1b would drive the
// terminal of whoever reads the log). A message without them is
// returned as is, without allocating.
func sanitize(msg string) string {
	if len(msg) > MaxMessage {
		cut := MaxMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = fmt.Sprintf("%s [cut: %d bytes]", msg[:cut], len(msg))
	}
	clean := true
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 && c != '\t' || c == 0x7f {
			clean = false
			break
		}
	}
	if clean {
		return msg
	}
	var b strings.Builder
	b.Grow(len(msg) + 16)
	for i := 0; i < len(msg); i++ {
		switch c := msg[i]; {
		case c == '\n':
			b.WriteString("\n  ")
		case c < 0x20 && c != '\t' || c == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
