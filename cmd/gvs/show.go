package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"gvs/internal/ovsdb"
)

// dbView is the part of the database that show prints, indexed by UUID.
type dbView struct {
	ovs        []map[string]any
	bridges    map[string]map[string]any
	ports      map[string]map[string]any
	interfaces map[string]map[string]any
	mirrors    map[string]map[string]any
	spans      map[string]map[string]any
}

func loadView(remote string) (*dbView, error) {
	c, err := ovsdb.Dial(remote)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	v := &dbView{}
	if v.ovs, err = c.Select("Open_vSwitch", "Open_vSwitch"); err != nil {
		return nil, err
	}
	tables := map[string]*map[string]map[string]any{"Bridge": &v.bridges, "Port": &v.ports, "Interface": &v.interfaces, "Mirror": &v.mirrors}
	for name, dst := range tables {
		rows, err := c.Select("Open_vSwitch", name)
		if err != nil {
			return nil, err
		}
		*dst = map[string]map[string]any{}
		for _, r := range rows {
			(*dst)[uuidOf(r["_uuid"])] = r
		}
	}
	// A gvsd older than span sessions has no Span table: no spans.
	v.spans = map[string]map[string]any{}
	if rows, err := c.Select("Open_vSwitch", "Span"); err == nil {
		for _, r := range rows {
			v.spans[uuidOf(r["_uuid"])] = r
		}
	}
	return v, nil
}

func init() { register(newShowCmd) }

func newShowCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "bridges, ports, VLANs and mirrors, with errors highlighted",
		Long: `show prints every bridge with its ports (VLAN settings, interface type,
OpenFlow port number, errors) and mirrors (what they select, where they
copy to, how much they copied). With --json it prints the same as one JSON
document (its shape is in the README). It exits with status 1 when it
reports a problem: an interface with an error, or a mirror that copies
nothing.`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(a.stdout, a.remote, asJSON, a.color())
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document instead of text")
	return cmd
}

// show prints the switch, for people or (asJSON) for scripts, and
// fails when it reports a problem.
func show(w io.Writer, remote string, asJSON, color bool) error {
	v, err := loadView(remote)
	if err != nil {
		return err
	}
	st := buildState(v)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else {
		printState(&printer{w: w, color: color}, st)
	}
	if n := len(st.Problems); n > 0 {
		return problemsFound{fmt.Sprintf("%d problem%s reported", n, plural(n))}
	}
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func printState(p *printer, st switchState) {
	p.line(0, "gvs switch, Open vSwitch %s compatible", st.OVSVersion)
	if len(st.Bridges) == 0 {
		p.line(1, "no bridges (add one with: ovs-vsctl add-br NAME)")
	}
	for _, b := range st.Bridges {
		printBridge(p, b)
	}
	for _, s := range st.Spans {
		printSpanLine(p, 1, "span ", s)
	}
}

// showBridge prints one bridge's rows.
func showBridge(p *printer, v *dbView, b map[string]any) { printBridge(p, buildBridge(v, b)) }

func printBridge(p *printer, b bridgeState) {
	p.line(1, "bridge %s", b.Name)
	for _, port := range b.Ports {
		printPort(p, port)
	}
	for _, m := range b.Mirrors {
		printMirror(p, m)
	}
}

func printPort(p *printer, port portState) {
	desc := []string{vlanText(port)}
	for _, ifc := range port.Interfaces {
		desc = append(desc, ifc.Type)
		if ifc.OFPort != nil {
			desc = append(desc, fmt.Sprintf("ofport %d", *ifc.OFPort))
		}
		if peer := ifc.Options["peer"]; peer != "" {
			desc = append(desc, "peer "+peer)
		}
		if rip := ifc.Options["remote_ip"]; rip != "" {
			desc = append(desc, "remote "+rip)
		}
	}
	p.line(2, "port %-16s %s", port.Name, strings.Join(nonEmpty(desc), ", "))
	for _, ifc := range port.Interfaces {
		if ifc.Error == nil {
			continue
		}
		if len(port.Interfaces) > 1 {
			p.errorLine(3, "error: interface %s: %s", ifc.Name, *ifc.Error)
		} else {
			p.errorLine(3, "error: %s", *ifc.Error)
		}
	}
}

func vlanText(port portState) string {
	var t []string
	for _, x := range port.Trunks {
		t = append(t, strconv.FormatInt(x, 10))
	}
	switch port.VLANMode {
	case "access":
		if port.Tag == nil {
			return "access vlan 0"
		}
		return fmt.Sprintf("access vlan %d", *port.Tag)
	case "trunk":
		if len(t) == 0 {
			return "trunk (all vlans)"
		}
		return "trunk vlans " + strings.Join(t, ",")
	}
	s := port.VLANMode
	if port.Tag != nil {
		s += fmt.Sprintf(" native vlan %d", *port.Tag)
	}
	if len(t) > 0 {
		s += ", trunks " + strings.Join(t, ",")
	}
	return s
}

func printMirror(p *printer, m mirrorState) {
	var sel []string
	if m.Select.All {
		sel = append(sel, "all")
	}
	for _, name := range m.Select.SrcPorts {
		sel = append(sel, "src "+name)
	}
	for _, name := range m.Select.DstPorts {
		sel = append(sel, "dst "+name)
	}
	if len(m.Select.VLANs) > 0 {
		sel = append(sel, fmt.Sprintf("vlan %v", m.Select.VLANs))
	}
	if m.Select.Filter != nil {
		sel = append(sel, "filter "+*m.Select.Filter)
	}
	out := "nowhere"
	if m.OutputPort != nil {
		out = "port " + *m.OutputPort
	} else if m.OutputVLAN != nil {
		out = fmt.Sprintf("vlan %d", *m.OutputVLAN)
	}
	p.line(2, "mirror %s: %s -> %s  (%d packets, %d bytes)", m.Name, strings.Join(sel, ", "), out,
		m.Statistics["tx_packets"], m.Statistics["tx_bytes"])
	if m.Error != nil {
		p.errorLine(3, "error: %s", *m.Error)
	}
}

type printer struct {
	w     io.Writer
	color bool
}

// line prints one line. Its arguments come from the database, which
// anyone allowed to write it fills, so their control characters are
// escaped: a port name must not clear the screen or forge lines.
func (p *printer) line(indent int, format string, args ...any) {
	p.write(indent, fmt.Sprintf(format, escapeArgs(args)...))
}

func (p *printer) errorLine(indent int, format string, args ...any) {
	msg := fmt.Sprintf(format, escapeArgs(args)...)
	if p.color {
		msg = "\x1b[1;31m" + msg + "\x1b[0m"
	}
	p.write(indent, msg)
}

func (p *printer) write(indent int, text string) {
	fmt.Fprintf(p.w, "%s%s\n", strings.Repeat("  ", indent), text)
}

func escapeArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = escape(v)
		case fmt.Stringer, error, []any:
			out[i] = escape(fmt.Sprint(v))
		default:
			out[i] = a
		}
	}
	return out
}

// escape returns s with what a terminal would act on, or what would not
// show, written as Go escapes (\n, \x1b, \u202e): control characters,
// invisible formatting characters and bytes that are not UTF-8. A
// backslash is doubled, so an escape in the output is never ambiguous.
func escape(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == ' ' || strconv.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func needsEscape(s string) bool {
	for _, r := range s {
		if r == '\\' || r == utf8.RuneError || (r != ' ' && !strconv.IsPrint(r)) {
			return true
		}
	}
	return false
}
