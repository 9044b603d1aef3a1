package vlog

import (
	"strconv"
	"time"
)

// appendStrftime formats t with the common strftime(3) conversions; a run
// of n '#' characters becomes n digits of fractional seconds. Conversions it
// does not know are copied unchanged.
func appendStrftime(b []byte, format string, t time.Time) []byte {
	for i := 0; i < len(format); i++ {
		c := format[i]
		switch {
		case c == '#':
			n := 1
			for i+n < len(format) && format[i+n] == '#' {
				n++
			}
			b = appendFraction(b, t, n)
			i += n - 1
		case c != '%' || i+1 == len(format):
			b = append(b, c)
		default:
			i++
			b = appendConversion(b, format[i], t)
		}
	}
	return b
}

func appendFraction(b []byte, t time.Time, digits int) []byte {
	frac := t.Nanosecond()
	width := 9
	for ; width > digits && width > 0; width-- {
		frac /= 10
	}
	b = appendPadded(b, frac, width, '0')
	for ; width < digits; width++ {
		b = append(b, '0')
	}
	return b
}

func appendConversion(b []byte, verb byte, t time.Time) []byte {
	switch verb {
	case 'Y':
		return strconv.AppendInt(b, int64(t.Year()), 10)
	case 'y':
		return appendPadded(b, t.Year()%100, 2, '0')
	case 'm':
		return appendPadded(b, int(t.Month()), 2, '0')
	case 'd':
		return appendPadded(b, t.Day(), 2, '0')
	case 'e':
		return appendPadded(b, t.Day(), 2, ' ')
	case 'H':
		return appendPadded(b, t.Hour(), 2, '0')
	case 'I':
		return appendPadded(b, (t.Hour()+11)%12+1, 2, '0')
	case 'M':
		return appendPadded(b, t.Minute(), 2, '0')
	case 'S':
		return appendPadded(b, t.Second(), 2, '0')
	case 'j':
		return appendPadded(b, t.YearDay(), 3, '0')
	case 'b', 'h':
		return append(b, t.Month().String()[:3]...)
	case 'B':
		return append(b, t.Month().String()...)
	case 'a':
		return append(b, t.Weekday().String()[:3]...)
	case 'A':
		return append(b, t.Weekday().String()...)
	case 'p':
		if t.Hour() < 12 {
			return append(b, "AM"...)
		}
		return append(b, "PM"...)
	case 'F':
		return appendStrftime(b, "%Y-%m-%d", t)
	case 'T':
		return appendStrftime(b, "%H:%M:%S", t)
	case 's':
		return strconv.AppendInt(b, t.Unix(), 10)
	case 'z':
		return t.AppendFormat(b, "-0700")
	case 'Z':
		return t.AppendFormat(b, "MST")
	case '%':
		return append(b, '%')
	default:
		return append(b, '%', verb)
	}
}

func appendPadded(b []byte, v, width int, fill byte) []byte {
	var digits [20]byte
	s := strconv.AppendInt(digits[:0], int64(v), 10)
	for n := len(s); n < width; n++ {
		b = append(b, fill)
	}
	return append(b, s...)
}
