package vswitchd

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"gvs/internal/conntrack"
)

// The dpctl/* commands of the connection tracker, as OVS's dpctl names
// and prints them (ovs-dpctl(8)). gvs has one datapath and so one
// tracker; a datapath argument, where OVS takes one, must name it.

// registerConntrack adds the conntrack commands.
func (sw *Switch) registerConntrack(r Registrar) {
	r.Register("dpctl/dump-conntrack", "[-m] [-s] [dp] [zone=N]", 0, 4, sw.dpctlDumpConntrack)
	r.Register("dpctl/flush-conntrack", "[dp] [zone=N] [ct-orig-tuple] [ct-reply-tuple]", 0, 4, sw.dpctlFlushConntrack)
	r.Register("dpctl/ct-stats-show", "[-m] [dp] [zone=N] [verbose]", 0, 4, sw.dpctlCTStatsShow)
	r.Register("dpctl/ct-set-maxconns", "[dp] maxconns", 1, 2, sw.dpctlCTSetMaxconns)
	r.Register("dpctl/ct-get-maxconns", "[dp]", 0, 1, sw.dpctlCTGetMaxconns)
	r.Register("dpctl/ct-get-nconns", "[dp]", 0, 1, sw.dpctlCTGetNconns)
	r.Register("dpctl/ct-enable-tcp-seq-chk", "[dp]", 0, 1, sw.dpctlCTSeqChk(true))
	r.Register("dpctl/ct-disable-tcp-seq-chk", "[dp]", 0, 1, sw.dpctlCTSeqChk(false))
	r.Register("dpctl/ct-get-tcp-seq-chk", "[dp]", 0, 1, sw.dpctlCTGetSeqChk)
	r.Register("dpctl/ct-set-limits", "[dp] [default=L] [zone=N,limit=L]...", 1, maxLimitArgs, sw.dpctlCTSetLimits)
	r.Register("dpctl/ct-get-limits", "[dp] [zone=N[,N]...]", 0, 2, sw.dpctlCTGetLimits)
	r.Register("dpctl/ct-del-limits", "[dp] zone=N[,N]...", 1, 2, sw.dpctlCTDelLimits)
}

// maxLimitArgs bounds the arguments of one ct-set-limits.
const maxLimitArgs = 256

// ctArgs are a conntrack command's arguments, options taken out.
type ctArgs struct {
	more, stats, verbose bool
	zone                 *uint16
	rest                 []string
}

// parseCTArgs takes -m/--more, -s/--statistics (where allowed), a
// datapath name first and zone=N out of args.
func parseCTArgs(args []string, opts string) (ctArgs, error) {
	var a ctArgs
	for i, arg := range args {
		switch {
		case (arg == "-m" || arg == "--more") && strings.Contains(opts, "m"):
			a.more = true
		case (arg == "-s" || arg == "--statistics") && strings.Contains(opts, "s"):
			a.stats = true
		case arg == "verbose" && strings.Contains(opts, "v"):
			a.verbose = true
		case strings.HasPrefix(arg, "-"):
			return a, fmt.Errorf("%s: unknown option", arg)
		case strings.HasPrefix(arg, "zone=") && a.zone == nil:
			z, err := parseZone(strings.TrimPrefix(arg, "zone="))
			if err != nil {
				return a, err
			}
			a.zone = &z
		case i == 0 && !strings.Contains(arg, "="):
			if err := checkDP([]string{arg}); err != nil {
				return a, err
			}
		default:
			a.rest = append(a.rest, arg)
		}
	}
	return a, nil
}

func parseZone(s string) (uint16, error) {
	z, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("zone=%s: a zone is a number from 0 to 65535", s)
	}
	return uint16(z), nil
}

// dpctlDumpConntrack prints the tracked connections, one a line.
func (sw *Switch) dpctlDumpConntrack(args []string) (string, error) {
	a, err := parseCTArgs(args, "ms")
	if err != nil {
		return "", err
	}
	if len(a.rest) > 0 {
		return "", fmt.Errorf("%s: unexpected argument", a.rest[0])
	}
	var b strings.Builder
	sw.state.ct.Dump(a.zone, a.more, func(e conntrack.Entry) {
		b.WriteString(conntrack.FormatEntryStats(e, a.more, a.stats))
		b.WriteByte('\n')
	})
	return b.String(), nil
}

// dpctlFlushConntrack removes connections: all, a zone's, or the one
// whose original direction a ct-orig-tuple names.
func (sw *Switch) dpctlFlushConntrack(args []string) (string, error) {
	a, err := parseCTArgs(args, "")
	if err != nil {
		return "", err
	}
	if len(a.rest) > 2 {
		return "", fmt.Errorf("%s: unexpected argument", a.rest[2])
	}
	var tuples [2]*conntrack.Tuple
	full := len(a.rest) == 1
	for i, arg := range a.rest {
		t, complete, err := parseOrigTuple(arg)
		if err != nil {
			return "", err
		}
		tuples[i] = &t
		full = full && complete
	}
	if !full && tuples[0] != nil {
		// A partial tuple, or a reply tuple too, selects every
		// connection it matches, in every zone without zone=, as OVS
		// 3.1 does; matching none is no error.
		sw.state.ct.FlushMatching(a.zone, tuples[0], tuples[1])
		return "", nil
	}
	if n := sw.state.ct.Flush(a.zone, tuples[0]); n == 0 && tuples[0] != nil {
		// As OVS's userspace datapath: a whole 5-tuple that names no
		// connection is an error (ENOENT), a zone with none is not.
		return "", fmt.Errorf("failed to flush conntrack (No such file or directory)")
	}
	return "", nil
}

// parseOrigTuple reads a ct-orig-tuple (or a ct-reply-tuple):
// ct_nw_src=,ct_nw_dst= (or ct_ipv6_src=,ct_ipv6_dst=), ct_nw_proto=,
// ct_tp_src=, ct_tp_dst=, and icmp_id=, icmp_type=, icmp_code= for
// ICMP, any of them left out. complete is true when it names one
// connection: both addresses, the protocol, and both ports (ICMP: the
// id and type).
func parseOrigTuple(s string) (t conntrack.Tuple, complete bool, err error) {
	t, err = parseTupleFields(s)
	if err != nil {
		return t, false, err
	}
	if t.Src.IsValid() && t.Dst.IsValid() && t.Src.Is4() != t.Dst.Is4() {
		return t, false, fmt.Errorf("ct-orig-tuple %q: the L3 protocol does not match %s", s, t.Dst)
	}
	complete = t.Src.IsValid() && t.Dst.IsValid() && t.Proto != 0
	if t.Proto == 1 || t.Proto == 58 {
		complete = complete && t.ICMPID != 0 && t.ICMPType != 0
	} else {
		complete = complete && t.SrcPort != 0 && t.DstPort != 0
	}
	return t, complete, nil
}

func parseTupleFields(s string) (conntrack.Tuple, error) {
	var t conntrack.Tuple
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return t, fmt.Errorf("ct-orig-tuple %q: %q is not FIELD=VALUE", s, item)
		}
		var err error
		switch k {
		case "ct_nw_src", "ct_ipv6_src":
			t.Src, err = parseTupleAddr(k, v)
		case "ct_nw_dst", "ct_ipv6_dst":
			t.Dst, err = parseTupleAddr(k, v)
		case "ct_nw_proto":
			var p uint64
			p, err = strconv.ParseUint(v, 10, 8)
			t.Proto = uint8(p)
		case "ct_tp_src", "ct_tp_dst", "icmp_id":
			var p uint64
			p, err = strconv.ParseUint(v, 10, 16)
			*map[string]*uint16{"ct_tp_src": &t.SrcPort, "ct_tp_dst": &t.DstPort, "icmp_id": &t.ICMPID}[k] = uint16(p)
		case "icmp_type", "icmp_code":
			var p uint64
			p, err = strconv.ParseUint(v, 10, 8)
			*map[string]*uint8{"icmp_type": &t.ICMPType, "icmp_code": &t.ICMPCode}[k] = uint8(p)
		default:
			return t, fmt.Errorf("ct-orig-tuple %q: unknown field %q", s, k)
		}
		if err != nil {
			return t, fmt.Errorf("ct-orig-tuple %q: %s: bad value %q", s, k, v)
		}
	}
	return t, nil
}

func parseTupleAddr(field, v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	if err != nil || a.Is6() != strings.HasPrefix(field, "ct_ipv6") {
		return netip.Addr{}, fmt.Errorf("bad address")
	}
	return a, nil
}

// dpctlCTStatsShow counts the connections by protocol (and TCP state
// with -m or verbose), as OVS prints them, then the commits the limits
// refused.
func (sw *Switch) dpctlCTStatsShow(args []string) (string, error) {
	a, err := parseCTArgs(args, "mv")
	if err != nil {
		return "", err
	}
	if len(a.rest) > 0 {
		return "", fmt.Errorf("%s: unexpected argument", a.rest[0])
	}
	total := 0
	byProto := map[string]int{}
	var states []string
	tcpStates := map[string]int{}
	sw.state.ct.Dump(a.zone, false, func(e conntrack.Entry) {
		total++
		name := ctProtoName(e.Orig.Proto)
		byProto[name]++
		if e.Orig.Proto == 6 {
			st := entryState(conntrack.FormatEntry(e, false))
			if tcpStates[st] == 0 {
				states = append(states, st)
			}
			tcpStates[st]++
		}
	})
	var b strings.Builder
	fmt.Fprintf(&b, "Connections Stats:\n    Total: %d\n", total)
	for _, p := range []string{"TCP", "UDP", "UDPLITE", "SCTP", "ICMP", "DCCP", "IGMP", "Other"} {
		if byProto[p] == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %s: %d\n", p, byProto[p])
		if p == "TCP" && (a.more || a.verbose) {
			b.WriteString("    Conn per TCP states:\n")
			for _, st := range states {
				fmt.Fprintf(&b, "\t%s: %d\n", st, tcpStates[st])
			}
		}
	}
	fmt.Fprintf(&b, "Commits refused by limits: %d\n", sw.state.ct.Stats().LimitDrops)
	return b.String(), nil
}

// entryState returns the state=... of a formatted TCP entry.
func entryState(line string) string {
	_, rest, ok := strings.Cut(line, "state=")
	if !ok {
		return "NONE"
	}
	if i := strings.IndexAny(rest, ",)"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

func ctProtoName(p uint8) string {
	switch p {
	case 6:
		return "TCP"
	case 17:
		return "UDP"
	case 136:
		return "UDPLITE"
	case 132:
		return "SCTP"
	case 1, 58:
		return "ICMP"
	case 33:
		return "DCCP"
	case 2:
		return "IGMP"
	}
	return "Other"
}

// dpctlCTSetMaxconns sets the global connection limit.
func (sw *Switch) dpctlCTSetMaxconns(args []string) (string, error) {
	if len(args) == 2 {
		if err := checkDP(args[:1]); err != nil {
			return "", err
		}
		args = args[1:]
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		// OVS's words, which name no argument.
		return "", fmt.Errorf("maxconns missing or malformed (Invalid argument)")
	}
	sw.state.ct.SetMaxConns(uint32(n))
	return "setting maxconns successful", nil
}

// dpctlCTGetMaxconns prints the global connection limit.
func (sw *Switch) dpctlCTGetMaxconns(args []string) (string, error) {
	if err := checkDP(args); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d\n", sw.state.ct.MaxConns()), nil
}

// dpctlCTGetNconns prints how many connections the tracker holds.
func (sw *Switch) dpctlCTGetNconns(args []string) (string, error) {
	if err := checkDP(args); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d\n", sw.state.ct.Stats().Conns), nil
}

// dpctlCTSeqChk turns the TCP sequence checks on or off, with OVS's
// answer.
func (sw *Switch) dpctlCTSeqChk(on bool) func([]string) (string, error) {
	return func(args []string) (string, error) {
		if err := checkDP(args); err != nil {
			return "", err
		}
		sw.state.ct.SetTCPSeqCheck(on)
		if on {
			return "enabling TCP sequence checking successful", nil
		}
		return "disabling TCP sequence checking successful", nil
	}
}

// dpctlCTGetSeqChk says whether the TCP sequence checks are on.
func (sw *Switch) dpctlCTGetSeqChk(args []string) (string, error) {
	if err := checkDP(args); err != nil {
		return "", err
	}
	if sw.state.ct.TCPSeqCheck() {
		return "TCP sequence checking: enabled\n", nil
	}
	return "TCP sequence checking: disabled\n", nil
}

// dpctlCTSetLimits sets the default and per-zone connection limits:
// every argument is checked before any limit changes.
func (sw *Switch) dpctlCTSetLimits(args []string) (string, error) {
	if len(args) > 0 && !strings.Contains(args[0], "=") {
		if err := checkDP(args[:1]); err != nil {
			return "", err
		}
		args = args[1:]
	}
	type setting struct {
		def   bool
		zone  uint16
		limit uint32
	}
	var todo []setting
	for _, arg := range args {
		if v, ok := strings.CutPrefix(arg, "default="); ok {
			l, err := parseLimit(arg, v)
			if err != nil {
				return "", err
			}
			todo = append(todo, setting{def: true, limit: l})
			continue
		}
		zs, ls, ok := strings.Cut(arg, ",")
		zv, okz := strings.CutPrefix(zs, "zone=")
		lv, okl := strings.CutPrefix(ls, "limit=")
		if !ok || !okz || !okl {
			return "", fmt.Errorf("%s: expected default=LIMIT or zone=ZONE,limit=LIMIT", arg)
		}
		z, err := parseZone(zv)
		if err != nil {
			return "", err
		}
		l, err := parseLimit(arg, lv)
		if err != nil {
			return "", err
		}
		todo = append(todo, setting{zone: z, limit: l})
	}
	if len(todo) == 0 {
		return "", fmt.Errorf("no limits given: expected default=LIMIT or zone=ZONE,limit=LIMIT")
	}
	for _, s := range todo {
		var err error
		if s.def {
			err = sw.state.ct.SetDefaultZoneLimit(s.limit)
		} else {
			err = sw.state.ct.SetZoneLimit(s.zone, s.limit)
		}
		if err != nil {
			return "", err
		}
	}
	return "", nil
}

func parseLimit(arg, v string) (uint32, error) {
	l, err := strconv.ParseUint(v, 10, 32)
	if err != nil || l > conntrack.MaxZoneLimit {
		return 0, fmt.Errorf("%s: a limit is a number from 0 (unlimited) to %d", arg, conntrack.MaxZoneLimit)
	}
	return uint32(l), nil
}

// zoneList reads zone=N[,N]...
func zoneList(arg string) ([]uint16, error) {
	v, ok := strings.CutPrefix(arg, "zone=")
	if !ok {
		return nil, fmt.Errorf("%s: expected zone=ZONE[,ZONE] (more zones after commas)", arg)
	}
	var zones []uint16
	for _, s := range strings.Split(v, ",") {
		z, err := parseZone(s)
		if err != nil {
			return nil, err
		}
		zones = append(zones, z)
	}
	return zones, nil
}

// dpctlCTGetLimits prints the default limit and the zones' limits and
// connection counts: all zones with a limit of their own, or the zones
// named.
func (sw *Switch) dpctlCTGetLimits(args []string) (string, error) {
	if len(args) > 0 && !strings.Contains(args[0], "=") {
		if err := checkDP(args[:1]); err != nil {
			return "", err
		}
		args = args[1:]
	}
	var want []uint16
	if len(args) > 0 {
		var err error
		if want, err = zoneList(args[0]); err != nil {
			return "", err
		}
	}
	limits := sw.state.ct.ZoneLimits()
	var b strings.Builder
	def := uint32(0)
	own := map[uint16]uint32{}
	for _, l := range limits {
		if l.Default {
			def = l.Limit
			fmt.Fprintf(&b, "default limit=%d\n", l.Limit)
		} else {
			own[l.Zone] = l.Limit
			if want == nil {
				fmt.Fprintf(&b, "zone=%d,limit=%d,count=%d\n", l.Zone, l.Limit, l.Count)
			}
		}
	}
	for _, z := range want {
		l, ok := own[z]
		if !ok {
			l = def
		}
		fmt.Fprintf(&b, "zone=%d,limit=%d,count=%d\n", z, l, sw.state.ct.ZoneCount(z))
	}
	return b.String(), nil
}

// dpctlCTDelLimits removes zones' own limits: the default applies again.
func (sw *Switch) dpctlCTDelLimits(args []string) (string, error) {
	if len(args) == 2 {
		if err := checkDP(args[:1]); err != nil {
			return "", err
		}
		args = args[1:]
	}
	zones, err := zoneList(args[0])
	if err != nil {
		return "", err
	}
	for _, z := range zones {
		sw.state.ct.DelZoneLimit(z)
	}
	return "", nil
}
