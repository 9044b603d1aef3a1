package flow

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Limits on action text from outside: OpenFlow messages are at most 64 KiB,
// so no sensible action list is longer, and nesting (clone in clone, ct
// exec) deeper than this is a mistake or an attack on the stack.
const (
	MaxActionsText = 64 << 10
	maxNesting     = 8
)

// ParseActions reads an action list in the syntax of ovs-actions(7)
// ("ct(commit),output:2", "drop"). An empty string is drop, as in
// ovs-ofctl. byName resolves port names (may be nil).
func ParseActions(s string, byName func(string) (uint32, bool)) ([]Action, error) {
	if len(s) > MaxActionsText {
		return nil, &Error{Field: "actions", Msg: fmt.Sprintf("too long (%d bytes, at most %d)", len(s), MaxActionsText)}
	}
	p := actionParser{byName: byName}
	acts, err := p.parseList(s)
	if err != nil {
		return nil, err
	}
	if err := CheckConjunctions(acts); err != nil {
		return nil, &Error{Field: "conjunction", Msg: err.Error()}
	}
	return acts, nil
}

// actionParser parses one action list; inner lists (clone, ct exec) use a
// copy with depth and context adjusted.
type actionParser struct {
	byName func(string) (uint32, bool)
	inCT   bool
	depth  int
}

func (p *actionParser) parseList(s string) ([]Action, error) {
	if p.depth >= maxNesting {
		return nil, &Error{Field: "actions", Msg: fmt.Sprintf("nested more than %d deep", maxNesting)}
	}
	items := splitTopLevel(s)
	acts := []Action{}
	for i, item := range items {
		key, val, delim := cutAction(item)
		if key == "drop" && delim == 0 {
			if len(items) > 1 {
				return nil, &Error{Field: "drop", Msg: "drop must be the only action"}
			}
			return acts, nil
		}
		if delim == delimBad {
			return nil, &Error{Field: key, Value: val, Msg: "missing ')' or text after it"}
		}
		a, err := p.parseOne(key, val, delim)
		if err != nil {
			var fe *Error
			if errors.As(err, &fe) {
				return nil, err
			}
			return nil, &Error{Field: key, Value: val, Msg: err.Error()}
		}
		if _, ok := a.(GotoTable); ok && i != len(items)-1 {
			return nil, &Error{Field: key, Value: val, Msg: "goto_table must be the last action"}
		}
		acts = append(acts, a)
	}
	return acts, nil
}

// simpleActions are the actions without an argument.
var simpleActions = map[string]Action{
	"strip_vlan": StripVLAN{}, "pop_vlan": StripVLAN{Pop: true},
	"dec_ttl": DecTTL{}, "ct_clear": CTClear{},
}

// reservedOutputs are the reserved ports an action can name alone.
var reservedOutputs = map[string]uint32{
	"NORMAL": PortNormal, "FLOOD": PortFlood, "ALL": PortAll, "IN_PORT": PortInPort, "LOCAL": PortLocal,
}

func (p *actionParser) parseOne(key, val string, delim byte) (Action, error) {
	if delim == 0 {
		return p.parseBare(key)
	}
	switch key {
	case "output":
		return p.parseOutput(val, delim)
	case "controller", "CONTROLLER":
		return parseController(val, delim)
	case "resubmit":
		return p.parseResubmit(val, delim)
	case "goto_table":
		t, err := parseTable(val)
		return GotoTable{t}, err
	case "set_field":
		return p.parseSetField(val)
	case "load":
		return p.parseLoad(val)
	case "move":
		return p.parseMove(val)
	case "clone":
		inner := *p
		inner.depth++
		acts, err := inner.parseList(val)
		return Clone{acts}, err
	case "learn":
		return p.parseLearn(val)
	case "ct":
		return p.parseCT(val)
	case "nat":
		return nil, errors.New("nat is only valid inside ct(...): ct(commit,nat(...))")
	case "dec_ttl":
		return parseDecTTL(val, delim)
	case "note":
		return parseNote(val)
	case "conjunction":
		if p.depth > 0 || p.inCT {
			return nil, errors.New("conjunction is only valid among a flow's own actions, not nested")
		}
		return parseConjunction(val)
	case "group":
		return parseGroup(val)
	}
	if parse, ok := setActions[key]; ok {
		return parse(val)
	}
	return nil, p.unknownAction(key)
}

// parseBare reads an action without an argument: a keyword, a reserved
// port, or a port to output to (a number or a name).
func (p *actionParser) parseBare(word string) (Action, error) {
	if a, ok := simpleActions[word]; ok {
		return a, nil
	}
	switch {
	case word == "ct":
		return CT{Table: TableNone}, nil
	case strings.EqualFold(word, "controller"):
		return Controller{MaxLen: 0xffff, Reason: "action"}, nil
	case word == "nat":
		return nil, &Error{Field: word, Msg: "nat is only valid inside ct(...): ct(commit,nat(...))"}
	}
	if port, ok := reservedOutputs[strings.ToUpper(word)]; ok {
		return Output{port}, nil
	}
	if port, err := ParsePort(word, p.byName); err == nil {
		return outputTo(port)
	}
	return nil, p.unknownAction(word)
}

func (p *actionParser) unknownAction(word string) error {
	msg := "unknown action"
	if p.byName != nil {
		msg += " (nor a port of this bridge)"
	}
	return &Error{Field: word, Msg: msg}
}

func outputTo(port uint32) (Action, error) {
	switch port {
	case PortController:
		return Controller{MaxLen: 0xffff, Reason: "action"}, nil
	case PortNone:
		return nil, errors.New("cannot output to port ANY/NONE")
	}
	return Output{port}, nil
}

func (p *actionParser) parseOutput(val string, delim byte) (Action, error) {
	if delim != ':' && delim != '=' {
		return nil, errors.New("write output:PORT or output:FIELD[start..end]")
	}
	if looksLikeSubfield(val) {
		sf, err := ParseSubfield(val)
		return OutputReg{sf}, err
	}
	port, err := ParsePort(val, p.byName)
	if err != nil {
		// As in ovs-ofctl, a word that is no port may be a field (reg1).
		if sf, err2 := ParseSubfield(val); err2 == nil {
			return OutputReg{sf}, nil
		}
		return nil, err
	}
	return outputTo(port)
}

var controllerReasons = []string{"action", "no_match", "invalid_ttl", "action_set", "group", "packet_out"}

func parseController(val string, delim byte) (Action, error) {
	c := Controller{MaxLen: 0xffff, Reason: "action"}
	if delim == ':' {
		v, err := parseUint(val, 16)
		c.MaxLen = uint16(v)
		return c, widthError(err, 16)
	}
	for _, item := range splitTopLevel(val) {
		k, v, d := cutAction(item)
		var err error
		var n uint64
		switch {
		case k == "max_len" && d == '=':
			n, err = parseUint(v, 16)
			c.MaxLen = uint16(n)
		case k == "id" && d == '=':
			n, err = parseUint(v, 16)
			c.ID = uint16(n)
		case k == "reason" && d == '=':
			c.Reason = v
			if !contains(controllerReasons, v) {
				err = fmt.Errorf("unknown reason (known: %s)", strings.Join(controllerReasons, ", "))
			}
		case k == "pause" && d == 0:
			c.Pause = true
		default:
			err = errors.New("unknown controller argument (known: max_len, reason, id, pause)")
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", item, widthError(err, 16))
		}
	}
	return c, nil
}

func (p *actionParser) parseResubmit(val string, delim byte) (Action, error) {
	r := Resubmit{InPort: PortInPort, Table: TableNone}
	port, table := val, ""
	if delim == '(' {
		var ok bool
		port, table, ok = strings.Cut(val, ",")
		if !ok || strings.Contains(table, ",") {
			return nil, errors.New("write resubmit(PORT,TABLE), either may be empty")
		}
	}
	if port != "" {
		pn, err := ParsePort(port, p.byName)
		if err != nil {
			return nil, err
		}
		r.InPort = pn
	}
	if table != "" {
		t, err := parseTable(table)
		if err != nil {
			return nil, err
		}
		r.Table = t
	}
	if r.InPort == PortInPort && r.Table == TableNone {
		return nil, errors.New("resubmit needs an in_port or a table other than the packet's own")
	}
	return r, nil
}

// parseTable reads a table number, 0 to 254.
func parseTable(s string) (uint8, error) {
	v, err := parseUint(s, 64)
	if err != nil || v > 254 {
		return 0, errors.New("table must be 0 to 254")
	}
	return uint8(v), nil
}

// checkWritable refuses fields no action may write, and ct_mark/ct_label
// outside ct(exec(...)).
func (p *actionParser) checkWritable(field string) error {
	switch {
	case readOnly[field]:
		return fmt.Errorf("%s is read-only", field)
	case ctOnly[field] && !p.inCT:
		return fmt.Errorf("%s can only be set inside ct(commit,exec(...))", field)
	}
	return nil
}

func (p *actionParser) parseSetField(val string) (Action, error) {
	i := strings.LastIndex(val, "->")
	if i < 0 {
		return nil, errors.New("write set_field:VALUE[/MASK]->FIELD")
	}
	value, name := val[:i], val[i+2:]
	if fields[name] == nil {
		if unsupportedField(name) {
			return nil, fmt.Errorf("field %s not supported by gvs", name)
		}
		return nil, fmt.Errorf("unknown field %s", name)
	}
	canon := canonicalName(name)
	if err := p.checkWritable(canon); err != nil {
		return nil, err
	}
	fv, err := parseFieldValue(name, value, p.byName)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", value, err)
	}
	if fields[name].kind == kPort && strings.Contains(value, "/") {
		return nil, errors.New("in_port cannot be masked")
	}
	return SetField{Field: canon, FieldValue: fv}, nil
}

func (p *actionParser) parseLoad(val string) (Action, error) {
	src, dst, ok := strings.Cut(val, "->")
	if !ok {
		return nil, errors.New("write load:VALUE->FIELD[start..end]")
	}
	sf, err := ParseSubfield(dst)
	if err != nil {
		return nil, err
	}
	if err := p.checkWritable(sf.Field); err != nil {
		return nil, err
	}
	v, err := parseImmediate(src, sf.Bits)
	return Load{Dst: sf, Value: v}, err
}

func (p *actionParser) parseMove(val string) (Action, error) {
	src, dst, ok := strings.Cut(val, "->")
	if !ok {
		return nil, errors.New("write move:SRC[a..b]->DST[c..d]")
	}
	s, err := ParseSubfield(src)
	if err != nil {
		return nil, err
	}
	d, err := ParseSubfield(dst)
	if err != nil {
		return nil, err
	}
	if err := p.checkWritable(d.Field); err != nil {
		return nil, err
	}
	if s.Bits != d.Bits {
		return nil, fmt.Errorf("source is %d bits wide but destination %d", s.Bits, d.Bits)
	}
	return Move{Src: s, Dst: d}, nil
}

// setActions are the mod_* and set_* actions with one value.
var setActions = map[string]func(string) (Action, error){
	"mod_vlan_vid": func(s string) (Action, error) {
		v, err := parseRange(s, 4095, "VLAN ID must be 0 to 4095")
		return SetVLANVID{uint16(v)}, err
	},
	"mod_vlan_pcp": func(s string) (Action, error) {
		v, err := parseRange(s, 7, "VLAN priority must be 0 to 7")
		return SetVLANPCP{uint8(v)}, err
	},
	"push_vlan": func(s string) (Action, error) {
		v, err := parseUint(s, 16)
		if err != nil || (v != 0x8100 && v != 0x88a8) {
			return nil, errors.New("the TPID must be 0x8100 or 0x88a8")
		}
		return PushVLAN{uint16(v)}, nil
	},
	"mod_dl_src": func(s string) (Action, error) { a, err := parseMAC(s); return SetEthAddr{false, a}, err },
	"mod_dl_dst": func(s string) (Action, error) { a, err := parseMAC(s); return SetEthAddr{true, a}, err },
	"mod_nw_src": func(s string) (Action, error) { a, err := parseIPv4(s); return SetIPv4Addr{false, a}, err },
	"mod_nw_dst": func(s string) (Action, error) { a, err := parseIPv4(s); return SetIPv4Addr{true, a}, err },
	"mod_nw_tos": func(s string) (Action, error) {
		v, err := parseRange(s, 255, "TOS must be 0 to 255")
		if err == nil && v&3 != 0 {
			return nil, errors.New("mod_nw_tos sets the 6 DSCP bits: the value must be a multiple of 4 (the ECN bits are mod_nw_ecn)")
		}
		return SetIPTOS{uint8(v)}, err
	},
	"mod_nw_ecn": func(s string) (Action, error) {
		v, err := parseRange(s, 3, "ECN must be 0 to 3")
		return SetIPECN{uint8(v)}, err
	},
	"mod_nw_ttl": func(s string) (Action, error) {
		v, err := parseRange(s, 255, "TTL must be 0 to 255")
		return SetIPTTL{uint8(v)}, err
	},
	"mod_tp_src": func(s string) (Action, error) {
		v, err := parseRange(s, 65535, "port must be 0 to 65535")
		return SetL4Port{false, uint16(v)}, err
	},
	"mod_tp_dst": func(s string) (Action, error) {
		v, err := parseRange(s, 65535, "port must be 0 to 65535")
		return SetL4Port{true, uint16(v)}, err
	},
	"set_tunnel": func(s string) (Action, error) {
		v, err := parseUint(s, 64)
		return SetTunnel{ID: v, Wide: v > 0xffffffff}, widthError(err, 64)
	},
	"set_tunnel64": func(s string) (Action, error) {
		v, err := parseUint(s, 64)
		return SetTunnel{ID: v, Wide: true}, widthError(err, 64)
	},
}

func parseRange(s string, max uint64, msg string) (uint64, error) {
	v, err := parseUint(s, 64)
	if err == errSyntax || err == errOctal {
		return 0, err
	}
	if err != nil || v > max {
		return 0, errors.New(msg)
	}
	return v, nil
}

func parseDecTTL(val string, delim byte) (Action, error) {
	if delim != '(' {
		return nil, errors.New("write dec_ttl or dec_ttl(ID,...)")
	}
	d := DecTTL{}
	for _, s := range splitTopLevel(val) {
		v, err := parseUint(s, 16)
		if err != nil {
			return nil, fmt.Errorf("controller id %q: %w", s, widthError(err, 16))
		}
		d.IDs = append(d.IDs, uint16(v))
	}
	if len(d.IDs) == 0 {
		d.IDs = nil
	}
	return d, nil
}

// parseNote reads hex bytes, optionally separated by dots.
func parseNote(s string) (Action, error) {
	var data []byte
	for i := 0; i < len(s); {
		if s[i] == '.' {
			i++
			continue
		}
		if i+1 >= len(s) || !isDigits(s[i:i+2], 16) {
			return nil, errors.New("a note is pairs of hex digits, optionally separated by '.'")
		}
		v, _ := strconv.ParseUint(s[i:i+2], 16, 8)
		data = append(data, byte(v))
		i += 2
	}
	return Note{data}, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// splitTopLevel splits s at commas and white space outside parentheses,
// dropping empty items.
func splitTopLevel(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch c := s[i]; {
			case c == '(':
				depth++
				continue
			case c == ')':
				depth--
				continue
			case depth > 0 || !isDelim(c):
				continue
			}
		}
		if item := s[start:i]; item != "" {
			out = append(out, item)
		}
		start = i + 1
	}
	return out
}

// delimBad is cutAction's delim for name(... whose ')' is missing or
// followed by more text.
const delimBad = 1

// cutAction splits an item into its name and argument: name:arg,
// name=arg, name(arg), or a bare name (delim 0). For name(arg) the
// argument is what lies between the first '(' and its matching ')',
// which must end the item.
func cutAction(item string) (key, val string, delim byte) {
	i := strings.IndexAny(item, ":=(")
	if i < 0 {
		return item, "", 0
	}
	key, delim = item[:i], item[i]
	if delim != '(' {
		return key, item[i+1:], delim
	}
	end, ok := closingParen(item, i)
	if !ok || end != len(item)-1 {
		return key, item[i+1:], delimBad
	}
	return key, item[i+1 : end], delim
}

// cutKeyValue is cutAction for key=value and key(value) arguments.
func cutKeyValue(item string) (key, val string, hasVal bool) {
	key, val, delim := cutAction(item)
	if delim == delimBad {
		return item, "", false // matches no known argument
	}
	return key, val, delim != 0
}

// MaxGroupID is the largest group number (OpenFlow's OFPG_MAX); the ones
// above it name all or any group, never one a flow can send to.
const MaxGroupID = 0xffffff00

// parseGroup reads group:ID.
func parseGroup(val string) (Action, error) {
	id, err := strconv.ParseUint(val, 0, 32)
	if err != nil || id > MaxGroupID {
		return nil, fmt.Errorf("group %q: want a group number from 0 to %d", val, uint32(MaxGroupID))
	}
	return Group{ID: uint32(id)}, nil
}
