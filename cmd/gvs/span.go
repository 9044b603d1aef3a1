package main

// gvs span: mirror host interfaces that are on no bridge (issue 13). A
// session is a row of gvsd's Span table; gvsd compiles its rules into a
// kernel filter on each source and sends the copies to the destinations.

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"gvs/internal/ovsdb"
	"gvs/internal/span"
)

func init() { register(newSpanCmd) }

func newSpanCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "span",
		Short: "mirror host interfaces that are on no bridge (add, list, show, del)",
		Long: `A span session copies the packets of host interfaces (a NIC, a veth, a VM's
TAP) to devices, VLANs, pcapng files or JSON metadata records, without
putting them on a bridge: the kernel filters with the session's rules and
gvsd only ever reads copies, so the interfaces' own traffic never waits for
gvsd. Sessions live in gvsd's database and survive restarts.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown span command %q", args[0])
			}
			return usageErrorf("missing span command: add, list, show or del")
		},
		RunE:              func(cmd *cobra.Command, args []string) error { return nil },
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cmd.AddCommand(newSpanAddCmd(a), newSpanListCmd(a), newSpanShowCmd(a), newSpanDelCmd(a))
	return cmd
}

// ruleList collects --rule and --filter in the order given: a filter is
// an accept rule.
type ruleList struct {
	rules  *[]string
	accept bool // --filter
}

func (r ruleList) String() string { return strings.Join(*r.rules, "; ") }
func (r ruleList) Type() string {
	if r.accept {
		return "MATCH"
	}
	return "RULE"
}
func (r ruleList) Set(s string) error {
	if r.accept {
		s = "accept " + s
	}
	*r.rules = append(*r.rules, s)
	return nil
}

type spanAddOptions struct {
	sources, rules, dests []string
	snaplen               int
	metadata              bool
	mark                  int64
	allowMissing          bool
}

func newSpanAddCmd(a *app) *cobra.Command {
	var o spanAddOptions
	o.mark = -1
	cmd := &cobra.Command{
		Use:   "add NAME --source DEV[:in|:out|:both]... [--rule 'accept|reject MATCH']... --to DEST...",
		Short: "start a span session",
		Long: `add starts a session named NAME and keeps it in gvsd's database.
  --source DEV[:in|:out|:both]  an interface to copy (default both directions)
  --rule 'accept MATCH'         rules in OVS match syntax (tcp,nw_dst=10.0.0.0/8,tp_dst=443),
  --rule 'reject MATCH'         tried in order, the first that matches decides;
  --filter MATCH                the same as --rule 'accept MATCH'. With no rule
                                every packet is copied; with rules, a packet no
                                rule matches is not.
  --snaplen N                   keep the first N bytes of each packet
  --metadata                    write a JSON record per packet instead (json: only)
  --mark N                      copies sent to dev: and tunnels carry fwmark N
  --to DEST                     dev:IFACE, dev:IFACE,vlan=VID, pcap:FILE, json:FILE
                                (files inside gvsd's capture directory), or a
                                tunnel to a remote collector (IPv4 or IPv6):
                                gre:REMOTE[,key=K], erspan:REMOTE[,ver=1|2,idx=N],
                                vxlan:REMOTE[,vni=N], geneve:REMOTE[,vni=N]
An interface that does not exist is refused, unless --allow-missing: the
session then waits for it.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("expected one NAME argument, got %d", len(args))
			}
			return nil
		},
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.metadata = cmd.Flags().Changed("metadata") && o.metadata
			return spanAdd(a, args[0], o, cmd.Flags().Changed("snaplen"))
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.sources, "source", nil, "an interface to copy: `DEV[:in|:out|:both]`")
	f.Var(ruleList{rules: &o.rules}, "rule", "'accept MATCH' or 'reject MATCH', in order")
	f.Var(ruleList{rules: &o.rules, accept: true}, "filter", "shorthand for --rule 'accept MATCH'")
	f.IntVar(&o.snaplen, "snaplen", 0, "keep the first `N` bytes of each packet")
	f.BoolVar(&o.metadata, "metadata", false, "a JSON record per packet instead of the packet (json: destinations)")
	f.Int64Var(&o.mark, "mark", -1, "fwmark `N` of copies sent to dev: and tunnel destinations")
	f.StringArrayVar(&o.dests, "to", nil, "a destination: `DEST` dev:IFACE[,vlan=VID], pcap:FILE, json:FILE, gre:|erspan:|vxlan:|geneve:REMOTE[,...]")
	f.BoolVar(&o.allowMissing, "allow-missing", false, "create the session even if an interface does not exist yet")
	return cmd
}

// spanConfig checks the command line as gvsd will, so that mistakes are
// usage errors that point at the word.
func (o spanAddOptions) config(name string, snaplenGiven bool) (span.Config, error) {
	c := span.Config{Name: name, Metadata: o.metadata}
	if len(o.sources) == 0 {
		return c, usageErrorf("--source DEV is required: the interface to copy")
	}
	if len(o.dests) == 0 {
		return c, usageErrorf("--to DEST is required: where the copies go")
	}
	for _, s := range o.sources {
		src, err := span.ParseSource(s)
		if err != nil {
			return c, usageError{err}
		}
		c.Sources = append(c.Sources, src)
	}
	rules, err := span.ParseRules(o.rules)
	if err != nil {
		return c, usageError{err}
	}
	c.Rules = rules
	for _, d := range o.dests {
		dest, err := span.ParseDest(d)
		if err != nil {
			return c, usageError{err}
		}
		c.Dests = append(c.Dests, dest)
	}
	if snaplenGiven {
		if o.snaplen < 14 || o.snaplen > span.MaxSnaplen {
			return c, usageErrorf("--snaplen %d: from 14 to %d bytes", o.snaplen, span.MaxSnaplen)
		}
		c.Snaplen = o.snaplen
	}
	if o.mark >= 0 {
		if o.mark > 0xffffffff {
			return c, usageErrorf("--mark %d: from 0 to 4294967295", o.mark)
		}
		c.Mark, c.HasMark = uint32(o.mark), true
	}
	if err := c.Validate(); err != nil {
		return c, usageError{err}
	}
	return c, nil
}

// spanRow is the Span row of a configuration.
func spanRow(c span.Config) map[string]any {
	var srcs, rules, dests []any
	for _, s := range c.Sources {
		srcs = append(srcs, []any{s.Dev, s.Dir.String()})
	}
	for i, r := range c.Rules {
		rules = append(rules, []any{i, r.Text})
	}
	for _, d := range c.Dests {
		dests = append(dests, d.Text)
	}
	row := map[string]any{"name": c.Name, "sources": []any{"map", srcs}, "rules": []any{"map", orEmpty(rules)},
		"destinations": ovsSet(dests...), "metadata": c.Metadata}
	if c.Snaplen > 0 {
		row["snaplen"] = c.Snaplen
	}
	if c.HasMark {
		row["mark"] = int64(c.Mark)
	}
	return row
}

func orEmpty(a []any) []any {
	if a == nil {
		return []any{}
	}
	return a
}

// spanApplyWait bounds how long add waits for gvsd to start the session.
const spanApplyWait = 10 * time.Second

func spanAdd(a *app, name string, o spanAddOptions, snaplenGiven bool) error {
	c, err := o.config(name, snaplenGiven)
	if err != nil {
		return err
	}
	db, err := ovsdb.Dial(a.remote)
	if err != nil {
		return err
	}
	defer db.Close()
	ops := []any{
		map[string]any{"op": "wait", "table": "Span", "where": []any{[]any{"name", "==", name}}, "columns": []any{"name"},
			"until": "==", "rows": []any{}, "timeout": 0},
		map[string]any{"op": "insert", "table": "Span", "row": spanRow(c)},
		map[string]any{"op": "mutate", "table": "Open_vSwitch", "where": []any{}, "mutations": []any{[]any{"next_cfg", "+=", 1}}},
		map[string]any{"op": "select", "table": "Open_vSwitch", "where": []any{}, "columns": []any{"next_cfg"}},
	}
	res, err := transact(db, ops)
	if err != nil {
		if strings.Contains(err.Error(), "wait") && strings.Contains(err.Error(), "timed out") {
			return fmt.Errorf("span %s already exists (gvs span del %s first)", name, name)
		}
		return err
	}
	next := int64(0)
	if rows, _ := res[3]["rows"].([]any); len(rows) == 1 {
		if r, ok := rows[0].(map[string]any); ok {
			next, _ = strconv.ParseInt(str(r["next_cfg"]), 10, 64)
		}
	}
	errText := waitSpanApplied(db, name, next)
	if errText == "" {
		return nil
	}
	if o.allowMissing {
		fmt.Fprintf(a.stderr, "gvs span add: warning: span %s: %s\n", name, errText)
		return nil
	}
	if _, derr := transact(db, []any{spanDelOp(name)}); derr != nil {
		return fmt.Errorf("span %s: %s (and removing it failed: %v)", name, errText, derr)
	}
	return fmt.Errorf("span %s not created: %s (--allow-missing creates it anyway, waiting)", name, errText)
}

// waitSpanApplied waits until gvsd applied configuration next, then
// returns the session's error.
func waitSpanApplied(db *ovsdb.Client, name string, next int64) string {
	deadline := time.Now().Add(spanApplyWait)
	for time.Now().Before(deadline) {
		rows, err := selectRows(db, "Open_vSwitch", []any{}, "cur_cfg")
		if err == nil && len(rows) == 1 {
			if cur, _ := strconv.ParseInt(str(rows[0]["cur_cfg"]), 10, 64); cur >= next {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows, err := selectRows(db, "Span", []any{[]any{"name", "==", name}}, "error")
	if err != nil || len(rows) != 1 {
		return ""
	}
	return str(rows[0]["error"])
}

func spanDelOp(name string) map[string]any {
	return map[string]any{"op": "delete", "table": "Span", "where": []any{[]any{"name", "==", name}}}
}

func newSpanDelCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "del NAME",
		Short: "stop a span session and remove it",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("expected one NAME argument, got %d", len(args))
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return spanNames(a.remote), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := ovsdb.Dial(a.remote)
			if err != nil {
				return err
			}
			defer db.Close()
			res, err := transact(db, []any{spanDelOp(args[0])})
			if err != nil {
				return err
			}
			if n, _ := strconv.Atoi(str(res[0]["count"])); n == 0 {
				return fmt.Errorf("no span named %s", args[0])
			}
			return nil
		},
	}
}

func spanNames(remote string) []string {
	spans, err := loadSpans(remote)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// spanState is a session as list and show print it; `gvs span list
// --json` is a list of them.
type spanState struct {
	Name         string           `json:"name"`
	Sources      []spanSource     `json:"sources"`
	Rules        []string         `json:"rules"`
	Snaplen      *int64           `json:"snaplen"`
	Metadata     bool             `json:"metadata"`
	Mark         *int64           `json:"mark"`
	Destinations []string         `json:"destinations"`
	Statistics   map[string]int64 `json:"statistics"`
	Error        *string          `json:"error"`
	// Status says which path each source takes (path:DEV, why:DEV).
	Status map[string]string `json:"status"`
}

type spanSource struct {
	Dev       string `json:"dev"`
	Direction string `json:"direction"`
}

// loadSpans reads every Span row, sorted by name.
func loadSpans(remote string) ([]spanState, error) {
	db, err := ovsdb.Dial(remote)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.Select("Open_vSwitch", "Span")
	if err != nil {
		return nil, err
	}
	out := make([]spanState, 0, len(rows))
	for _, r := range rows {
		out = append(out, buildSpan(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func buildSpan(r map[string]any) spanState {
	s := spanState{Name: str(r["name"]), Sources: []spanSource{}, Rules: []string{}, Destinations: []string{},
		Statistics: map[string]int64{}, Snaplen: num(r["snaplen"]), Mark: num(r["mark"]), Error: optString(str(r["error"]))}
	s.Metadata = str(r["metadata"]) == "true"
	for dev, dir := range strMap(r["sources"]) {
		s.Sources = append(s.Sources, spanSource{dev, dir})
	}
	sort.Slice(s.Sources, func(i, j int) bool { return s.Sources[i].Dev < s.Sources[j].Dev })
	rules := strMap(r["rules"])
	keys := make([]int, 0, len(rules))
	for k := range rules {
		n, _ := strconv.Atoi(k)
		keys = append(keys, n)
	}
	sort.Ints(keys)
	for _, k := range keys {
		s.Rules = append(s.Rules, rules[strconv.Itoa(k)])
	}
	for _, d := range elems(r["destinations"]) {
		s.Destinations = append(s.Destinations, str(d))
	}
	sort.Strings(s.Destinations)
	for k, v := range strMap(r["statistics"]) {
		s.Statistics[k], _ = strconv.ParseInt(v, 10, 64)
	}
	s.Status = strMap(r["status"])
	return s
}

func newSpanListCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:               "list",
		Short:             "the span sessions, with their counters",
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			spans, err := loadSpans(a.remote)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, spans)
			}
			p := &printer{w: a.stdout, color: a.color()}
			if len(spans) == 0 {
				p.line(0, "no span sessions (add one with: gvs span add NAME --source DEV --to DEST)")
			}
			for _, s := range spans {
				printSpanLine(p, 0, "", s)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON list instead of text")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printSpanLine prints a session in one line (and its error in another).
func printSpanLine(p *printer, indent int, prefix string, s spanState) {
	var srcs []string
	for _, src := range s.Sources {
		srcs = append(srcs, src.Dev+":"+src.Direction)
	}
	p.line(indent, "%s%s: %s -> %s, %d rule%s, selected %d, dropped %d", prefix, s.Name, strings.Join(srcs, ","),
		strings.Join(s.Destinations, ","), len(s.Rules), plural(len(s.Rules)), s.Statistics["selected"], s.Statistics["dropped"])
	if s.Error != nil {
		p.errorLine(indent+1, "error: %s", *s.Error)
	}
}

func newSpanShowCmd(a *app) *cobra.Command {
	var bpf bool
	cmd := &cobra.Command{
		Use:   "show NAME [--bpf]",
		Short: "one span session in full; --bpf prints its compiled kernel filter",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("expected one NAME argument, got %d", len(args))
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			return spanNames(a.remote), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			spans, err := loadSpans(a.remote)
			if err != nil {
				return err
			}
			for _, s := range spans {
				if s.Name == args[0] {
					return spanShow(a, s, bpf)
				}
			}
			return fmt.Errorf("no span named %s", args[0])
		},
	}
	cmd.Flags().BoolVar(&bpf, "bpf", false, "print the eBPF program at tc, or the classic BPF filter per direction, that the rules compile to")
	return cmd
}

func spanShow(a *app, s spanState, withBPF bool) error {
	p := &printer{w: a.stdout, color: a.color()}
	p.line(0, "span %s", s.Name)
	for _, src := range s.Sources {
		p.line(1, "source %s (%s)%s", src.Dev, src.Direction, sourcePath(s, src.Dev))
	}
	if len(s.Rules) == 0 {
		p.line(1, "rules: none, every packet is copied")
	}
	for i, r := range s.Rules {
		p.line(1, "rule %d: %s", i, r)
	}
	if len(s.Rules) > 0 {
		p.line(1, "a packet no rule matches is not copied")
	}
	switch {
	case s.Metadata:
		p.line(1, "records: metadata only")
	case s.Snaplen != nil:
		p.line(1, "snaplen: %d bytes", *s.Snaplen)
	}
	if s.Mark != nil {
		p.line(1, "mark: %d", *s.Mark)
	}
	for _, d := range s.Destinations {
		p.line(1, "to %s: sent %d, dropped %d", d, s.Statistics["sent:"+d], s.Statistics["dropped:"+d])
	}
	p.line(1, "seen %d, selected %d, truncated %d, dropped %d", s.Statistics["seen"], s.Statistics["selected"],
		s.Statistics["truncated"], s.Statistics["dropped"])
	if s.Error != nil {
		p.errorLine(1, "error: %s", *s.Error)
	}
	if withBPF {
		return printSpanBPF(p, s)
	}
	return nil
}

// sourcePath says which path gvsd uses for a source's packets, as
// Span.status tells.
func sourcePath(s spanState, dev string) string {
	switch s.Status["path:"+dev] {
	case span.PathEBPF:
		c, clones := spanConfig(s), 0
		for _, d := range c.Dests {
			if c.KernelClones(d) {
				clones++
			}
		}
		switch {
		case !c.ToUserSpace():
			return ": eBPF at tc (TCX), copies cloned in the kernel"
		case clones == 0:
			return ": eBPF at tc (TCX), selected packets handed to gvsd through a perf event array"
		}
		return ": eBPF at tc (TCX), copies cloned in the kernel to plain dev: destinations, handed to gvsd through a perf event array for the others"
	case span.PathAFPacket:
		if why := s.Status["why:"+dev]; why != "" {
			return ": AF_PACKET socket with a classic BPF filter (" + why + ")"
		}
		return ": AF_PACKET socket with a classic BPF filter"
	}
	return ""
}

// spanConfig is the session's configuration as gvsd reads it, but its
// rules (which printSpanBPF parses, reporting their errors).
func spanConfig(s spanState) span.Config {
	c := span.Config{Metadata: s.Metadata}
	if s.Snaplen != nil {
		c.Snaplen = int(*s.Snaplen)
	}
	if s.Mark != nil {
		c.Mark, c.HasMark = uint32(*s.Mark), true
	}
	for _, text := range s.Destinations {
		if d, err := span.ParseDest(text); err == nil {
			c.Dests = append(c.Dests, d)
		}
	}
	return c
}

// printSpanBPF compiles the session's rules as gvsd does and prints the
// eBPF program the sources at tc run, or the classic filter of each
// direction that AF_PACKET sources use.
func printSpanBPF(p *printer, s spanState) error {
	rules, err := span.ParseRules(s.Rules)
	if err != nil {
		return err
	}
	c := spanConfig(s)
	c.Rules = rules
	rules = c.FilterRules()
	ebpfSources, classic := 0, false
	for _, src := range s.Sources {
		switch s.Status["path:"+src.Dev] {
		case span.PathEBPF:
			ebpfSources++
		case span.PathAFPacket:
			classic = true
		default: // gvsd has not said (yet): what it would choose
			ebpfSources++
		}
	}
	if ebpfSources > 0 {
		insns, err := c.EBPFProgram(span.In)
		if err != nil {
			return err
		}
		p.line(1, "eBPF program at tc (TCX) of %d source%s (%d instructions):", ebpfSources, plural(ebpfSources), len(insns))
		for _, l := range strings.Split(strings.TrimRight(fmt.Sprint(insns), "\n"), "\n") {
			p.line(2, "%s", l)
		}
	}
	if !classic {
		return nil
	}
	snap := uint32(0)
	switch {
	case s.Metadata:
		snap = span.MetadataSnaplen
	case s.Snaplen != nil:
		snap = uint32(*s.Snaplen)
	}
	done := map[string]bool{}
	for _, src := range s.Sources {
		if done[src.Direction] || (ebpfSources > 0 && s.Status["path:"+src.Dev] != span.PathAFPacket) {
			continue
		}
		done[src.Direction] = true
		dir, err := span.ParseDirection(src.Direction)
		if err != nil {
			return err
		}
		ins, err := span.Compile(rules, dir, snap)
		if err != nil {
			return err
		}
		p.line(1, "classic BPF filter of AF_PACKET sources, direction %s (%d instructions):", src.Direction, len(ins))
		for _, l := range strings.Split(strings.TrimRight(span.Disassemble(ins), "\n"), "\n") {
			p.line(2, "%s", l)
		}
	}
	return nil
}
