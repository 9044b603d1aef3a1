package flow

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// flagSet describes a field written as named bits: tcp_flags, ct_state,
// tun_flags.
type flagSet struct {
	what  string   // for messages: "TCP flag"
	names []string // names[i] names bit 1<<i; "" for an unnamed bit
	width uint     // how many bits the field has
	// signedOnly prints even an exact match in the +flag-flag form, as
	// ovs-ofctl does for tun_flags.
	signedOnly bool
}

var (
	tcpFlagSet = &flagSet{
		what:  "TCP flag",
		names: []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"},
		width: 12,
	}
	ctStateFlagSet = &flagSet{
		what:  "ct_state flag",
		names: []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"},
		width: 8,
	}
	tunFlagSet = &flagSet{
		what:       "tunnel flag",
		names:      []string{"oam"},
		width:      1,
		signedOnly: true,
	}
)

// ct_state bits, as ovs-fields(7) numbers them.
const (
	csNew  = 0x01
	csEst  = 0x02
	csRel  = 0x04
	csRpl  = 0x08
	csInv  = 0x10
	csTrk  = 0x20
	csSNAT = 0x40
	csDNAT = 0x80
)

func (fs *flagSet) all() uint64 { return 1<<fs.width - 1 }

// bitName is how bit i is written: its name, or [hex] for a bit without
// one (tcp_flags=+[200]).
func (fs *flagSet) bitName(i uint) string {
	if int(i) < len(fs.names) && fs.names[i] != "" {
		return fs.names[i]
	}
	return fmt.Sprintf("[%x]", uint64(1)<<i)
}

// lookup returns the bit a flag name stands for.
func (fs *flagSet) lookup(name string) (uint64, error) {
	for i, n := range fs.names {
		if n == name {
			return 1 << i, nil
		}
	}
	if inner, ok := strings.CutPrefix(name, "["); ok {
		if hex, ok := strings.CutSuffix(inner, "]"); ok {
			v, err := strconv.ParseUint(hex, 16, 64)
			if err == nil && isDigits(hex, 16) && v&(v-1) == 0 && v != 0 && v <= fs.all() {
				return v, nil
			}
		}
	}
	return 0, fmt.Errorf("unknown %s %q (known: %s)", fs.what, name, strings.Join(fs.names, ", "))
}

// parse reads "+a-b" (the named bits must be set or clear, others are
// wildcarded), "a|b" (exactly these bits set), or value[/mask] numbers.
func (fs *flagSet) parse(s string) (value, mask uint64, err error) {
	switch {
	case s == "":
		return 0, 0, errors.New("empty value")
	case s[0] == '+' || s[0] == '-':
		return fs.parseSigned(s)
	case s[0] >= '0' && s[0] <= '9':
		return fs.parseNumbers(s)
	}
	for _, name := range strings.Split(s, "|") {
		bit, err := fs.lookup(name)
		if err != nil {
			return 0, 0, err
		}
		value |= bit
	}
	return value, fs.all(), nil
}

func (fs *flagSet) parseSigned(s string) (value, mask uint64, err error) {
	for s != "" {
		set := s[0] == '+'
		if s[0] != '+' && s[0] != '-' {
			return 0, 0, fmt.Errorf("expected '+' or '-' before %q", s)
		}
		end := strings.IndexAny(s[1:], "+-") + 1
		if end == 0 {
			end = len(s)
		}
		name := s[1:end]
		if name == "" {
			return 0, 0, fmt.Errorf("missing %s name after %q", fs.what, s[:1])
		}
		bit, err := fs.lookup(name)
		if err != nil {
			return 0, 0, err
		}
		if mask&bit != 0 {
			return 0, 0, fmt.Errorf("%s %q given more than once", fs.what, name)
		}
		mask |= bit
		if set {
			value |= bit
		}
		s = s[end:]
	}
	return value, mask, nil
}

func (fs *flagSet) parseNumbers(s string) (value, mask uint64, err error) {
	v, m, hasMask, err := splitMask(s)
	if err != nil {
		return 0, 0, err
	}
	if value, err = fs.parseBits(v); err != nil {
		return 0, 0, err
	}
	mask = fs.all()
	if hasMask {
		if mask, err = fs.parseBits(m); err != nil {
			return 0, 0, err
		}
	}
	return value & mask, mask, nil
}

func (fs *flagSet) parseBits(s string) (uint64, error) {
	v, err := parseUint(s, 64)
	if err != nil {
		return 0, err
	}
	if v&^fs.all() != 0 {
		return 0, fmt.Errorf("bits %#x are not %ss (the field has %d bits)", v&^fs.all(), fs.what, fs.width)
	}
	return v, nil
}

// format prints value/mask: "0" or "a|b" for an exact match, "+a-b"
// otherwise. An all-zero mask prints as "".
func (fs *flagSet) format(value, mask uint64) string {
	var b strings.Builder
	if mask == fs.all() && !fs.signedOnly {
		if value == 0 {
			return "0"
		}
		for i := range fs.width {
			if value&(1<<i) != 0 {
				if b.Len() > 0 {
					b.WriteByte('|')
				}
				b.WriteString(fs.bitName(i))
			}
		}
		return b.String()
	}
	for i := range fs.width {
		if mask&(1<<i) == 0 {
			continue
		}
		if value&(1<<i) != 0 {
			b.WriteByte('+')
		} else {
			b.WriteByte('-')
		}
		b.WriteString(fs.bitName(i))
	}
	return b.String()
}
