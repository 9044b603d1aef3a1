package vlog

import (
	"strconv"
	"strings"
	"time"
)

// Default patterns, one per destination; the escapes are those vlog/set
// PATTERN documents in ovs-appctl(8).
const (
	defaultConsolePattern = "%D{%Y-%m-%dT%H:%M:%SZ}|%05N|%c%T|%p|%m"
	defaultSyslogPattern  = "ovs|%05N|%c%T|%p|%m"
	defaultFilePattern    = "%D{%Y-%m-%dT%H:%M:%S.###Z}|%05N|%c%T|%p|%m"

	// syslogPrefix is put before every syslog message so that /dev/log
	// readers see a standard header; it is not settable.
	syslogPrefix = "<%B> %D{%h %e %T} %E %A: "

	defaultTimeFormat = "%Y-%m-%d %H:%M:%S"
)

var syslogPrefixPattern = parsePattern(syslogPrefix)

// maxFieldWidth caps %<width>: a wider field is a typo, not a layout.
const maxFieldWidth = 1000

// pattern is a parsed log format: literal text and escapes.
type pattern struct {
	source string
	parts  []patternPart
}

// patternPart is a literal (verb 0) or one %-escape with its field options.
type patternPart struct {
	literal     string
	verb        byte
	leftJustify bool
	zeroPad     bool
	width       int
	arg         string // strftime format of %d{...} and %D{...}
}

// record is one message on its way to the destinations.
type record struct {
	level  Level
	module string
	msg    string
	serial uint64
	when   time.Time
}

// environment is what escapes need from the program around the message.
type environment struct {
	program  string
	hostname string
	pid      int
	start    time.Time
	facility int
}

// parsePattern never fails: an unknown escape is kept as literal text, so a
// typo shows up in the log rather than silencing it.
func parsePattern(s string) pattern {
	p := pattern{source: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.parts = append(p.parts, patternPart{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			i++
			continue
		}
		part, next, ok := parseEscape(s, i+1)
		if !ok {
			lit.WriteString(s[i:next])
			i = next
			continue
		}
		flush()
		p.parts = append(p.parts, part)
		i = next
	}
	flush()
	return p
}

// parseEscape reads the escape after a '%' at s[i:], returning the index
// after it. ok is false for a dangling or unknown escape.
func parseEscape(s string, i int) (part patternPart, next int, ok bool) {
	if i < len(s) && s[i] == '-' {
		part.leftJustify = true
		i++
	}
	if i < len(s) && s[i] == '0' {
		part.zeroPad = true
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		part.width = min(part.width*10+int(s[i]-'0'), maxFieldWidth)
		i++
	}
	if i >= len(s) {
		return part, len(s), false
	}
	part.verb = s[i]
	i++
	if !strings.ContainsRune("ABcdDEmNnpPrtT%", rune(part.verb)) {
		return part, i, false
	}
	if (part.verb == 'd' || part.verb == 'D') && i < len(s) && s[i] == '{' {
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return part, len(s), false
		}
		part.arg = s[i+1 : i+end]
		i += end + 1
	}
	return part, i, true
}

// appendTo renders r through the pattern onto b.
func (p *pattern) appendTo(b []byte, r *record, env *environment) []byte {
	var scratch [64]byte
	for i := range p.parts {
		part := &p.parts[i]
		if part.verb == 0 {
			b = append(b, part.literal...)
			continue
		}
		if part.width == 0 {
			b = part.expand(b, r, env)
			continue
		}
		field := part.expand(scratch[:0], r, env)
		b = pad(b, field, part)
	}
	return b
}

func pad(b, field []byte, part *patternPart) []byte {
	fill := part.width - len(field)
	if fill <= 0 {
		return append(b, field...)
	}
	if part.leftJustify {
		b = append(b, field...)
		return append(b, strings.Repeat(" ", fill)...)
	}
	c := " "
	if part.zeroPad {
		c = "0"
	}
	b = append(b, strings.Repeat(c, fill)...)
	return append(b, field...)
}

func (part *patternPart) expand(b []byte, r *record, env *environment) []byte {
	switch part.verb {
	case 'A':
		return append(b, env.program...)
	case 'B':
		return strconv.AppendInt(b, int64(env.facility*8+syslogSeverity[r.level]), 10)
	case 'c':
		return append(b, r.module...)
	case 'd':
		return appendStrftime(b, part.timeFormat(), r.when.Local())
	case 'D':
		return appendStrftime(b, part.timeFormat(), r.when.UTC())
	case 'E':
		return append(b, env.hostname...)
	case 'm':
		return append(b, r.msg...)
	case 'N':
		return strconv.AppendUint(b, r.serial, 10)
	case 'n':
		return append(b, '\n')
	case 'p':
		return append(b, r.level.String()...)
	case 'P':
		return strconv.AppendInt(b, int64(env.pid), 10)
	case 'r':
		return strconv.AppendInt(b, r.when.Sub(env.start).Milliseconds(), 10)
	case 't':
		// Go has no named threads; everything is the main program.
		return append(b, "main"...)
	case 'T':
		return b
	default: // '%'
		return append(b, '%')
	}
}

func (part *patternPart) timeFormat() string {
	if part.arg == "" {
		return defaultTimeFormat
	}
	return part.arg
}
