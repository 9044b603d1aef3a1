package vswitchd

import (
	"fmt"
	"sort"

	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
	"gvs/internal/span"
)

// Span rows are gvs's own table (issue 13): span sessions that copy the
// packets of host interfaces on no bridge. Their configuration is checked
// when a transaction writes it, so that ovs-vsctl or gvs span add fails
// with the reason and nothing is created; an interface that does not
// exist (yet) is not a configuration error: the session waits for it and
// says so in Span.error.

// spanConfigColumns are the columns that configure a session; a write to
// the others (statistics, error, external_ids) is not checked again.
var spanConfigColumns = []string{"name", "sources", "rules", "snaplen", "metadata", "mark", "destinations"}

// readSpan turns a Span row into a session configuration.
func readSpan(t *ovsdb.Table, r *ovsdb.Row) (span.Config, error) {
	var c span.Config
	c.Name, _ = r.Column(t, "name").Str()
	if len(c.Name) > span.MaxNameLen || c.Name == "" {
		return c, fmt.Errorf("span name %q: 1 to %d characters", c.Name, span.MaxNameLen)
	}
	fail := func(err error) (span.Config, error) { return c, fmt.Errorf("span %s: %w", c.Name, err) }
	srcs := r.Column(t, "sources")
	for i, k := range srcs.Keys {
		dev, _ := k.(string)
		dir, _ := srcs.Values[i].(string)
		s, err := span.ParseSource(dev + ":" + dir)
		if err != nil {
			return fail(err)
		}
		c.Sources = append(c.Sources, s)
	}
	sort.Slice(c.Sources, func(i, j int) bool { return c.Sources[i].Dev < c.Sources[j].Dev })
	rules := r.Column(t, "rules")
	type numbered struct {
		n    int64
		text string
	}
	var texts []numbered
	for i, k := range rules.Keys {
		n, _ := k.(int64)
		s, _ := rules.Values[i].(string)
		texts = append(texts, numbered{n, s})
	}
	sort.Slice(texts, func(i, j int) bool { return texts[i].n < texts[j].n })
	for _, x := range texts {
		rule, err := span.ParseRule(x.text)
		if err != nil {
			return fail(fmt.Errorf("rules:%d: %w", x.n, err))
		}
		c.Rules = append(c.Rules, rule)
	}
	if n, ok := r.Column(t, "snaplen").Int(); ok {
		c.Snaplen = int(n)
	}
	c.Metadata, _ = r.Column(t, "metadata").Bool()
	if n, ok := r.Column(t, "mark").Int(); ok {
		c.Mark, c.HasMark = uint32(n), true
	}
	dests := r.Column(t, "destinations")
	for _, k := range dests.Keys {
		s, _ := k.(string)
		d, err := span.ParseDest(s)
		if err != nil {
			return fail(err)
		}
		c.Dests = append(c.Dests, d)
	}
	sort.Slice(c.Dests, func(i, j int) bool { return c.Dests[i].Text < c.Dests[j].Text })
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// spanCheck returns the commit check of Span rows, which also refuses
// pcap: and json: files outside gvsd's capture directory.
func (st *datapathState) spanCheck() ovsdb.RowCheck {
	return func(t *ovsdb.Table, old, new *ovsdb.Row) error {
		// Not st.mu: a check runs inside a transaction, which the
		// switch may make while holding it.
		dir := ""
		if p := st.spanCaptureDir.Load(); p != nil {
			dir = *p
		}
		return checkSpan(t, old, new, dir)
	}
}

// checkSpan refuses a Span row that does not describe a valid session.
func checkSpan(t *ovsdb.Table, old, new *ovsdb.Row, captureDir string) error {
	if old != nil {
		same := true
		for _, col := range spanConfigColumns {
			same = same && old.Column(t, col).Equal(new.Column(t, col))
		}
		if same {
			return nil
		}
	}
	c, err := readSpan(t, new)
	if err != nil {
		return err
	}
	if err := c.CheckCompiles(); err != nil {
		return err
	}
	for _, d := range c.Dests {
		if d.Kind != span.DestPcap && d.Kind != span.DestJSON {
			continue
		}
		if captureDir == "" {
			return fmt.Errorf("span %s: destination %s: gvsd has no capture directory for files", c.Name, d.Text)
		}
		if err := netdev.CheckCaptureName("span "+c.Name, captureDir, d.Target); err != nil {
			return fmt.Errorf("span %s: destination %s: %w", c.Name, d.Text, err)
		}
	}
	return nil
}

// liveSpan is a session the switch runs, and the row it comes from.
type liveSpan struct {
	row ovsdb.UUID
	key string
	s   *span.Session
	err string // a configuration the check did not see (a database edited by hand)
}

// applySpans makes the running sessions match the Span rows: a session
// whose configuration is unchanged keeps running (and counting).
func (st *datapathState) applySpans(snap *ovsdb.Snapshot) {
	t := snap.Schema.Tables["Span"]
	if t == nil {
		return
	}
	want := map[string]*liveSpan{}
	cfgs := map[string]span.Config{}
	for u, r := range snap.Tables["Span"] {
		c, err := readSpan(t, r)
		name := c.Name
		if name == "" {
			name = "#" + u.String()
		}
		if _, dup := want[name]; dup {
			continue // the name index keeps this from happening
		}
		l := &liveSpan{row: u, key: c.Key()}
		if err != nil {
			l.err, l.key = err.Error(), "error:"+err.Error()
		}
		want[name], cfgs[name] = l, c
	}
	limitSpans(want)
	for name, l := range st.spans {
		if w, ok := want[name]; ok && w.key == l.key && w.err == "" {
			w.s = l.s
			continue
		}
		if l.s != nil {
			l.s.Close()
		}
	}
	for name, w := range want {
		if w.s != nil || w.err != "" {
			continue
		}
		s, err := span.Start(cfgs[name], span.Env{CaptureDir: st.captureDir, Changed: st.spanChanged})
		if err != nil {
			w.err = err.Error()
			continue
		}
		w.s = s
	}
	st.spans = want
}

// limitSpans leaves the sessions after the first span.MaxSessions (by
// name) in error, for a database that holds more rows than the schema's
// maxRows allows (one written by an older gvs, or a remote server's).
func limitSpans(want map[string]*liveSpan) {
	if len(want) <= span.MaxSessions {
		return
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names[span.MaxSessions:] {
		w := want[name]
		w.err = fmt.Sprintf("span %s: not started: gvsd runs at most %d span sessions", name, span.MaxSessions)
		w.key = "error:" + w.err
	}
}

// closeSpans stops every session (gvsd exiting).
func (st *datapathState) closeSpans() {
	for _, l := range st.spans {
		if l.s != nil {
			l.s.Close()
		}
	}
	st.spans = nil
}

// spanStatusOps writes each session's error and statistics back to its
// row, leaving out what is already there.
func (st *datapathState) spanStatusOps(snap *ovsdb.Snapshot) []any {
	var ops []any
	for _, l := range st.spans {
		r, ok := snap.Tables["Span"][l.row]
		if !ok {
			continue
		}
		t := snap.Schema.Tables["Span"]
		errText, stats, paths := l.err, map[string]uint64{}, map[string]string{}
		if l.s != nil {
			status := l.s.Status()
			errText = status.Error
			stats = spanStats(status.Stats)
			paths = spanPaths(l.s.Path())
		}
		row := map[string]any{}
		if have, _ := r.Column(t, "error").Str(); have != errText {
			row["error"] = stringSet(errText)
		}
		if !sameStats(r.Column(t, "statistics"), stats) {
			row["statistics"] = statsMap(stats)
		}
		if !sameStringMap(r.Column(t, "status").StringMap(), paths) {
			row["status"] = stringMap(paths)
		}
		if len(row) > 0 {
			ops = append(ops, updateRow("Span", l.row, row))
		}
	}
	return ops
}

// spanStats names a session's counters as Span.statistics holds them.
func spanStats(s span.Stats) map[string]uint64 {
	m := map[string]uint64{"seen": s.Seen, "selected": s.Selected, "truncated": s.Truncated,
		"dropped": s.Dropped, "errors": s.Errors}
	for _, d := range s.Dests {
		m["sent:"+d.Dest] = d.Sent
		m["dropped:"+d.Dest] = d.Dropped
		m["dropped"] += d.Dropped
	}
	return m
}

// spanPaths says, in Span.status, which path each source's packets take
// ("path:DEV" is tc-ebpf or af_packet) and why not eBPF ("why:DEV").
func spanPaths(ps []span.SourcePath) map[string]string {
	m := map[string]string{}
	for _, p := range ps {
		m["path:"+p.Dev] = p.Path
		if p.Why != "" {
			m["why:"+p.Dev] = p.Why
		}
	}
	return m
}

// checkSpanLoops refuses a session whose dev: destination is a source of
// another session that copies what that device sends (:out or :both):
// each copy would be copied back, and the other session's copies perhaps
// again (a loop). Only pairs that involve a row the transaction wrote are
// refused, so that a database edited by hand does not block every other
// change; rows that do not parse are refused by checkSpan instead.
func checkSpanLoops(t *ovsdb.Table, rows []*ovsdb.Row, written map[ovsdb.UUID]bool) error {
	type session struct {
		u   ovsdb.UUID
		cfg span.Config
	}
	var all []session
	for _, r := range rows {
		if c, err := readSpan(t, r); err == nil {
			all = append(all, session{r.UUID, c})
		}
	}
	for _, a := range all {
		for _, d := range a.cfg.Dests {
			if d.Kind != span.DestDev {
				continue
			}
			for _, b := range all {
				if b.u == a.u || !(written[a.u] || written[b.u]) {
					continue
				}
				for _, s := range b.cfg.Sources {
					if s.Dev == d.Target && s.Dir != span.In {
						return fmt.Errorf("span %s: destination %s is a source of span %s (%s): the copies sent there would be copied again (a loop)",
							a.cfg.Name, d.Text, b.cfg.Name, s)
					}
				}
			}
		}
	}
	return nil
}
