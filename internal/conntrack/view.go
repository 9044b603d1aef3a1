package conntrack

import (
	"fmt"
	"net/netip"
	"strings"
)

// View is one connection as gvs conntrack shows it (its control
// command's JSON): the dump's facts with names instead of bits.
type View struct {
	Proto string    `json:"proto"`
	Zone  uint16    `json:"zone"`
	Orig  TupleView `json:"orig"`
	Reply TupleView `json:"reply"`
	// State is the kernel's TCP state name as dump-conntrack prints it
	// (SYN_SENT, ESTABLISHED, ...), and for other protocols UNREPLIED
	// until a reply was seen, REPLIED after.
	State   string `json:"state"`
	Mark    uint32 `json:"mark,omitempty"`
	Label   string `json:"label,omitempty"`
	Timeout uint32 `json:"timeout"` // seconds left
}

// Report is gvs conntrack's view of the table (the reply of gvsd's
// gvs/conntrack control command).
type Report struct {
	Connections []View `json:"connections"`
	// Matched counts every connection the filter selected; when it is
	// more than len(Connections), the list was cut short.
	Matched   int  `json:"matched"`
	Truncated bool `json:"truncated"`
}

// TupleView is one direction of a connection.
type TupleView struct {
	Src   string `json:"src"`
	Dst   string `json:"dst"`
	Sport uint16 `json:"sport,omitempty"`
	Dport uint16 `json:"dport,omitempty"`
	// ICMP and ICMPv6: the echo id, type and code.
	ID   uint16 `json:"id,omitempty"`
	Type uint8  `json:"type,omitempty"`
	Code uint8  `json:"code,omitempty"`
}

// NewView describes e, which must come from a verbose dump (for the
// status bits).
func NewView(e Entry) View {
	v := View{Proto: ProtoString(e.Orig.Proto), Zone: e.Zone, Orig: tupleView(&e.Orig),
		Reply: tupleView(&e.Reply), Mark: e.Mark, Timeout: e.Timeout}
	if e.Label != [16]byte{} {
		v.Label = labelHex(e.Label)
	}
	switch {
	case e.Orig.Proto == 6:
		v.State = OVSTCPStateName(e.TCPState, true)
	case e.Status&StatusSeenReply != 0:
		v.State = "REPLIED"
	default:
		v.State = "UNREPLIED"
	}
	return v
}

func tupleView(t *Tuple) TupleView {
	v := TupleView{Src: t.Src.String(), Dst: t.Dst.String()}
	if isICMP(t.Proto) {
		v.ID, v.Type, v.Code = t.ICMPID, t.ICMPType, t.ICMPCode
	} else {
		v.Sport, v.Dport = t.SrcPort, t.DstPort
	}
	return v
}

// Filter selects connections for gvs conntrack; a zero field selects
// all. Addr and Port match either end of either direction, so that a
// NATed connection is found by its translated address too.
type Filter struct {
	Zone  *uint16
	Addr  netip.Addr
	Port  uint16
	Proto string
	State string // case-insensitive
}

// ParseFilter reads the control command's arguments: zone=N, addr=A,
// port=P, proto=NAME and state=S, each at most once.
func ParseFilter(args []string) (Filter, error) {
	var f Filter
	seen := map[string]bool{}
	for _, arg := range args {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || seen[k] {
			return f, fmt.Errorf("%q: expected zone=N, addr=A, port=P, proto=NAME or state=S, each once", arg)
		}
		seen[k] = true
		var err error
		switch k {
		case "zone":
			var z uint16
			z, err = parseUint16(v)
			f.Zone = &z
		case "addr":
			f.Addr, err = netip.ParseAddr(v)
			f.Addr = f.Addr.Unmap()
		case "port":
			f.Port, err = parseUint16(v)
			if f.Port == 0 {
				err = fmt.Errorf("port 0")
			}
		case "proto":
			f.Proto = strings.ToLower(v)
		case "state":
			f.State = strings.ToUpper(v)
		default:
			return f, fmt.Errorf("%q: unknown filter %q (zone, addr, port, proto, state)", arg, k)
		}
		if err != nil {
			return f, fmt.Errorf("%q: bad value: %v", arg, err)
		}
	}
	return f, nil
}

func parseUint16(s string) (uint16, error) {
	var n uint32
	if _, err := fmt.Sscan(s, &n); err != nil || n > 65535 || fmt.Sprint(n) != s {
		return 0, fmt.Errorf("%q is not a number from 0 to 65535", s)
	}
	return uint16(n), nil
}

// Match reports whether the filter selects e (whose view is v).
func (f *Filter) Match(e *Entry, v *View) bool {
	if f.Zone != nil && e.Zone != *f.Zone {
		return false
	}
	if f.Proto != "" && v.Proto != f.Proto {
		return false
	}
	if f.State != "" && v.State != f.State {
		return false
	}
	if f.Addr.IsValid() && !hasAddr(e, f.Addr) {
		return false
	}
	if f.Port != 0 && !isICMP(e.Orig.Proto) &&
		e.Orig.SrcPort != f.Port && e.Orig.DstPort != f.Port && e.Reply.SrcPort != f.Port && e.Reply.DstPort != f.Port {
		return false
	}
	if f.Port != 0 && isICMP(e.Orig.Proto) {
		return false
	}
	return true
}

func hasAddr(e *Entry, a netip.Addr) bool {
	for _, x := range []netip.Addr{e.Orig.Src, e.Orig.Dst, e.Reply.Src, e.Reply.Dst} {
		if x.Unmap() == a {
			return true
		}
	}
	return false
}
