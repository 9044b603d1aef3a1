package flow

import (
	"errors"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// Reasons a value is refused; parse wraps them into an *Error that names
// the field and the value.
var (
	errSyntax   = errors.New("not a number (write it in decimal, or in hex with 0x)")
	errTooLarge = errors.New("value too large")
	errOctal    = errors.New("not a number: a leading 0 means octal, which has no digits 8 or 9")
)

// parseUint reads an unsigned integer the way OVS's flow syntax does (C's
// strtoull with base 0): 0x or 0X for hex, a leading 0 for octal, else
// decimal. It refuses values wider than width bits.
func parseUint(s string, width uint) (uint64, error) {
	base, digits := 10, s
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'):
		base, digits = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base, digits = 8, s[1:]
	}
	if digits == "" || !isDigits(digits, base) {
		if base == 8 && isDigits(digits, 10) {
			return 0, errOctal
		}
		return 0, errSyntax
	}
	v, err := strconv.ParseUint(digits, base, 64)
	if err != nil || (width < 64 && v>>width != 0) {
		return 0, errTooLarge
	}
	return v, nil
}

// isDigits reports whether s holds only digits of base (no sign, no
// underscores, which strconv would otherwise take).
func isDigits(s string, base int) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '7':
		case c == '8' || c == '9':
			if base == 8 {
				return false
			}
		case base == 16 && (c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'):
		default:
			return false
		}
	}
	return true
}

// parseUint128 reads a 128-bit integer into 16 big-endian bytes: hex with
// 0x up to 32 digits, or decimal/octal up to 64 bits (as OVS does).
func parseUint128(s string) ([16]byte, error) {
	var out [16]byte
	if len(s) <= 2 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X') {
		v, err := parseUint(s, 64)
		if err != nil {
			return out, err
		}
		for i := range 8 {
			out[15-i] = byte(v >> (8 * i))
		}
		return out, nil
	}
	digits := strings.TrimLeft(s[2:], "0")
	if !isDigits(s[2:], 16) {
		return out, errSyntax
	}
	if len(digits) > 32 {
		return out, errTooLarge
	}
	for i := range len(digits) {
		nib := hexVal(digits[len(digits)-1-i])
		out[15-i/2] |= nib << (4 * (i % 2))
	}
	return out, nil
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// splitMask splits "value/mask" at its only slash. hasMask is false when
// there is none; more than one is an error.
func splitMask(s string) (value, mask string, hasMask bool, err error) {
	value, mask, hasMask = strings.Cut(s, "/")
	if hasMask && strings.Contains(mask, "/") {
		return "", "", false, errors.New("more than one '/'")
	}
	if value == "" {
		return "", "", false, errors.New("missing value before '/'")
	}
	if hasMask && mask == "" {
		return "", "", false, errors.New("missing mask after '/'")
	}
	return value, mask, hasMask, nil
}

// parseIPv4 reads a dotted quad. Like OVS (inet_aton's strict form), it
// takes leading zeros as decimal.
func parseIPv4(s string) ([4]byte, error) {
	var a [4]byte
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return a, errors.New("invalid IPv4 address")
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 || !isDigits(p, 10) {
			return a, errors.New("invalid IPv4 address")
		}
		n, _ := strconv.Atoi(p)
		if n > 255 {
			return a, errors.New("invalid IPv4 address")
		}
		a[i] = byte(n)
	}
	return a, nil
}

// parseIPv4Masked reads addr, addr/prefix or addr/dotted-mask.
func parseIPv4Masked(s string) (value, mask [4]byte, err error) {
	v, m, hasMask, err := splitMask(s)
	if err != nil {
		return value, mask, err
	}
	if value, err = parseIPv4(v); err != nil {
		return value, mask, err
	}
	mask = [4]byte{0xff, 0xff, 0xff, 0xff}
	switch {
	case !hasMask:
	case strings.Contains(m, "."):
		if mask, err = parseIPv4(m); err != nil {
			return value, mask, errors.New("invalid IPv4 mask")
		}
	default:
		n, err := strconv.Atoi(m)
		if err != nil || !isDigits(m, 10) || n > 32 {
			return value, mask, errors.New("IPv4 prefix length must be 0 to 32")
		}
		mask = [4]byte(prefixMask(n, 4))
	}
	return value, mask, nil
}

// prefixMask returns a size-byte mask with its first n bits set.
func prefixMask(n, size int) []byte {
	m := make([]byte, size)
	for i := range m {
		switch {
		case n >= 8:
			m[i] = 0xff
			n -= 8
		case n > 0:
			m[i] = byte(0xff << (8 - n))
			n = 0
		}
	}
	return m
}

// prefixLen returns n if mask is n one bits followed by zeros, else -1.
func prefixLen(mask []byte) int {
	n, zeros := 0, false
	for _, b := range mask {
		if zeros {
			if b != 0 {
				return -1
			}
			continue
		}
		ones := bits.LeadingZeros8(^b)
		if b<<ones != 0 {
			return -1
		}
		n += ones
		zeros = ones < 8
	}
	return n
}

// parseIPv6 reads an IPv6 address in any RFC 4291 form, with no zone.
func parseIPv6(s string) ([16]byte, error) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return [16]byte{}, errors.New("invalid IPv6 address")
	}
	return a.As16(), nil
}

// parseIPv6Masked reads addr, addr/prefix or addr/address-mask.
func parseIPv6Masked(s string) (value, mask [16]byte, err error) {
	v, m, hasMask, err := splitMask(s)
	if err != nil {
		return value, mask, err
	}
	if value, err = parseIPv6(v); err != nil {
		return value, mask, err
	}
	switch {
	case !hasMask:
		mask = [16]byte(prefixMask(128, 16))
	case strings.Contains(m, ":"):
		if mask, err = parseIPv6(m); err != nil {
			return value, mask, errors.New("invalid IPv6 mask")
		}
	default:
		n, err := strconv.Atoi(m)
		if err != nil || !isDigits(m, 10) || n > 128 {
			return value, mask, errors.New("IPv6 prefix length must be 0 to 128")
		}
		mask = [16]byte(prefixMask(n, 16))
	}
	return value, mask, nil
}

// parseMAC reads six groups of one or two hex digits separated by colons.
func parseMAC(s string) ([6]byte, error) {
	var a [6]byte
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return a, errors.New("invalid Ethernet address")
	}
	for i, p := range parts {
		if p == "" || len(p) > 2 || !isDigits(p, 16) {
			return a, errors.New("invalid Ethernet address")
		}
		v, _ := strconv.ParseUint(p, 16, 8)
		a[i] = byte(v)
	}
	return a, nil
}

// parseMACMasked reads addr or addr/mask.
func parseMACMasked(s string) (value, mask [6]byte, err error) {
	v, m, hasMask, err := splitMask(s)
	if err != nil {
		return value, mask, err
	}
	if value, err = parseMAC(v); err != nil {
		return value, mask, err
	}
	mask = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	if hasMask {
		if mask, err = parseMAC(m); err != nil {
			return value, mask, errors.New("invalid Ethernet mask")
		}
	}
	return value, mask, nil
}
