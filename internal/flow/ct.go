package flow

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// CT sends the packet through the connection tracker (ct(...) in
// ovs-actions(7)). gvs parses and prints it; the conntrack module
// executes it.
type CT struct {
	Commit, Force bool
	Table         uint8    // recirculate to this table; TableNone: do not
	Zone          uint16   // the zone, when ZoneSrc is the zero Subfield
	ZoneSrc       Subfield // a zone taken from a subfield (zone=NXM_NX_REG0[0..15])
	NAT           *NAT     // nat(...), or nil
	Exec          []Action // set_field/load to ct_mark and ct_label
	Alg           string   // "", "ftp" or "tftp"
}

// NAT is ct's nat(...) argument. Kind is "" for a bare nat (apply the
// connection's existing translation), else "src" or "dst".
type NAT struct {
	Kind             string
	AddrMin, AddrMax netip.Addr // AddrMax invalid (zero) when no range
	PortMin, PortMax uint16     // 0 when not given
	Persistent, Hash bool
	Random           bool
}

func (a CT) format(b *strings.Builder, o FormatOptions) {
	var parts []string
	if a.Commit {
		parts = append(parts, "commit")
	}
	if a.Force {
		parts = append(parts, "force")
	}
	if a.Table != TableNone {
		parts = append(parts, fmt.Sprintf("table=%d", a.Table))
	}
	if a.ZoneSrc.Field != "" {
		parts = append(parts, "zone="+a.ZoneSrc.String())
	} else if a.Zone != 0 {
		parts = append(parts, fmt.Sprintf("zone=%d", a.Zone))
	}
	if a.NAT != nil {
		parts = append(parts, a.NAT.String())
	}
	if len(a.Exec) > 0 {
		var e strings.Builder
		formatList(&e, a.Exec, o)
		parts = append(parts, "exec("+e.String()+")")
	}
	if a.Alg != "" {
		parts = append(parts, "alg="+a.Alg)
	}
	b.WriteString("ct(" + strings.Join(parts, ",") + ")")
}

// String prints nat, nat(src=ADDR[-ADDR][:PORT[-PORT]][,flags]).
func (n *NAT) String() string {
	if n.Kind == "" {
		return "nat"
	}
	var b strings.Builder
	b.WriteString("nat(" + n.Kind)
	if n.AddrMin.IsValid() {
		b.WriteString("=" + natAddr(n.AddrMin))
		if n.AddrMax.IsValid() && n.AddrMax != n.AddrMin {
			b.WriteString("-" + natAddr(n.AddrMax))
		}
		if n.PortMin != 0 {
			b.WriteString(":" + strconv.Itoa(int(n.PortMin)))
			if n.PortMax > n.PortMin {
				b.WriteString("-" + strconv.Itoa(int(n.PortMax)))
			}
		}
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{n.Persistent, "persistent"}, {n.Hash, "hash"}, {n.Random, "random"}} {
		if f.on {
			b.WriteString("," + f.name)
		}
	}
	b.WriteByte(')')
	return b.String()
}

func natAddr(a netip.Addr) string {
	if a.Is6() {
		return "[" + formatIPv6(a.As16()) + "]"
	}
	return a.String()
}

// parseCT reads the inside of ct(...).
func (p *actionParser) parseCT(arg string) (Action, error) {
	ct := CT{Table: TableNone}
	for _, item := range splitTopLevel(arg) {
		key, val, hasVal := cutKeyValue(item)
		var err error
		switch {
		case key == "commit" && !hasVal:
			ct.Commit = true
		case key == "force" && !hasVal:
			ct.Force = true
		case key == "table" && hasVal:
			ct.Table, err = parseTable(val)
		case key == "zone" && hasVal:
			err = parseZone(&ct, val)
		case key == "nat":
			ct.NAT, err = parseNAT(val, hasVal)
		case key == "exec" && hasVal:
			ct.Exec, err = p.parseCTExec(val)
			if len(ct.Exec) == 0 {
				ct.Exec = nil // exec() does nothing, and prints as nothing
			}
		case key == "alg" && hasVal:
			if val != "ftp" && val != "tftp" {
				err = errors.New("unknown alg (known: ftp, tftp)")
			}
			ct.Alg = val
		default:
			err = fmt.Errorf("unknown ct argument %q (known: commit, force, table, zone, nat, exec, alg)", item)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", item, err)
		}
	}
	if ct.Force && !ct.Commit {
		return nil, errors.New("force requires commit")
	}
	if (len(ct.Exec) > 0 || (ct.NAT != nil && ct.NAT.Kind != "")) && !ct.Commit {
		// As the OVS switch: only a bare nat (apply the connection's
		// existing translation) may go without commit.
		return nil, errors.New("exec(...) and nat with arguments require commit")
	}
	return ct, nil
}

func parseZone(ct *CT, val string) error {
	if looksLikeSubfield(val) {
		sf, err := ParseSubfield(val)
		if err != nil {
			return err
		}
		if sf.Bits != 16 {
			return fmt.Errorf("a zone subfield must be 16 bits wide, not %d", sf.Bits)
		}
		// The last zone= wins, whichever form each has.
		ct.ZoneSrc, ct.Zone = sf, 0
		return nil
	}
	z, err := parseUint(val, 16)
	ct.Zone, ct.ZoneSrc = uint16(z), Subfield{}
	return widthError(err, 16)
}

// parseCTExec reads exec(...): only writes to ct_mark and ct_label.
func (p *actionParser) parseCTExec(s string) ([]Action, error) {
	inner := *p
	inner.inCT = true
	inner.depth++ // exec(...) nests as clone(...) does
	acts, err := inner.parseList(s)
	if err != nil {
		return nil, err
	}
	for _, a := range acts {
		field := ""
		switch a := a.(type) {
		case SetField:
			field = a.Field
		case Load:
			field = a.Dst.Field
		case Move:
			field = a.Dst.Field
		}
		if !ctOnly[field] {
			return nil, errors.New("exec(...) may only set ct_mark and ct_label (set_field, load or move)")
		}
	}
	return acts, nil
}

// parseNAT reads nat or nat(src|dst[=ADDR[-ADDR][:PORT[-PORT]]][,flags]).
func parseNAT(val string, hasVal bool) (*NAT, error) {
	n := &NAT{}
	if !hasVal {
		return n, nil
	}
	for i, item := range splitTopLevel(val) {
		key, v, hasV := cutKeyValue(item)
		switch {
		case i == 0 && (key == "src" || key == "dst"):
			n.Kind = key
			if hasV {
				if err := n.parseRange(v); err != nil {
					return nil, err
				}
			}
		case i > 0 && !hasV && (key == "persistent" || key == "hash" || key == "random"):
			*map[string]*bool{"persistent": &n.Persistent, "hash": &n.Hash, "random": &n.Random}[key] = true
		default:
			return nil, fmt.Errorf("nat: unexpected %q (write nat(src=ADDR[-ADDR][:PORT[-PORT]][,random|hash|persistent]))", item)
		}
	}
	switch {
	case n.Kind == "":
		return nil, errors.New("nat: src or dst must come first")
	case n.Hash && n.Random:
		return nil, errors.New("nat: hash and random exclude each other")
	}
	return n, nil
}

// parseRange reads ADDR[-ADDR][:PORT[-PORT]]; IPv6 addresses in brackets.
func (n *NAT) parseRange(s string) error {
	addrs, ports := s, ""
	if end := strings.LastIndexByte(s, ']'); end >= 0 {
		if i := strings.IndexByte(s[end:], ':'); i >= 0 {
			addrs, ports = s[:end+i], s[end+i+1:]
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		addrs, ports = s[:i], s[i+1:]
	}
	lo, hi, isRange := strings.Cut(addrs, "-")
	var err error
	if n.AddrMin, err = parseNATAddr(lo); err != nil {
		return err
	}
	if isRange {
		if n.AddrMax, err = parseNATAddr(hi); err != nil {
			return err
		}
		if n.AddrMax.Is6() != n.AddrMin.Is6() || n.AddrMax.Less(n.AddrMin) {
			return fmt.Errorf("nat: bad address range %s", addrs)
		}
		if n.AddrMax == n.AddrMin {
			n.AddrMax = netip.Addr{} // a range of one prints as one address
		}
	}
	if ports == "" {
		return nil
	}
	plo, phi, pRange := strings.Cut(ports, "-")
	v, err := parseUint(plo, 16)
	if err != nil || v == 0 {
		return fmt.Errorf("nat: bad port %q", plo)
	}
	n.PortMin = uint16(v)
	if pRange {
		v, err := parseUint(phi, 16)
		if err != nil || uint16(v) < n.PortMin {
			return fmt.Errorf("nat: bad port range %q", ports)
		}
		if uint16(v) > n.PortMin {
			n.PortMax = uint16(v) // a range of one prints as one port
		}
	}
	return nil
}

func parseNATAddr(s string) (netip.Addr, error) {
	if inner, ok := strings.CutPrefix(s, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		a, err := parseIPv6(inner)
		if !ok || err != nil {
			return netip.Addr{}, fmt.Errorf("nat: bad IPv6 address %q", s)
		}
		return netip.AddrFrom16(a), nil
	}
	a, err := parseIPv4(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("nat: bad IPv4 address %q (IPv6 goes in brackets)", s)
	}
	return netip.AddrFrom4(a), nil
}
