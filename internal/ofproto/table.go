package ofproto

import (
	"cmp"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/budget"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// NumTables is how many OpenFlow tables a bridge has (0 to 254).
const NumTables = 255

// TableAll selects every table in a modify, delete, dump or aggregate
// request (OpenFlow's OFPTT_ALL).
const TableAll uint8 = 255

// DefaultMaxFlows bounds the flows of one bridge's tables together.
const DefaultMaxFlows = 1_000_000

// DefaultMaxActions bounds the actions of one bridge's flows together
// (those nested in clone, ct exec and learn included). A flow-mod may
// hold thousands of actions, so DefaultMaxFlows alone let an OpenFlow
// client keep hundreds of GB of them; at 8 million, flows average 8
// actions at the flow limit.
const DefaultMaxActions = 8_000_000

// MaxAllFlows and MaxAllActions bound the flows and actions of all
// bridges together: a flow costs about 1.6 KB and an action tens of
// bytes, so 1,024 bridges at the per-bridge bounds (a controller or
// learn actions can fill them) would be terabytes; at these two, about
// 4 GB. Past them an add or modify fails with ErrTableFull as past the
// bridge's own.
const (
	MaxAllFlows   = 2_000_000
	MaxAllActions = 16_000_000
)

// The flows and actions of all Tables, and their bounds (variables for
// tests).
var (
	allFlows, allActions       atomic.Int64
	maxAllFlows, maxAllActions atomic.Int64
)

func init() {
	maxAllFlows.Store(MaxAllFlows)
	maxAllActions.Store(MaxAllActions)
}

// tablesCharge is what one Tables counts in allFlows and allActions;
// apart from it, so that a cleanup gives it back once it is garbage.
type tablesCharge struct{ flows, actions atomic.Int64 }

// AllFlows returns how many flows all bridges' tables hold together.
func AllFlows() int64 { return allFlows.Load() }

// Errors of flow table requests; the OpenFlow channel turns them into
// the flow_mod errors OVS sends (OFPFMFC_OVERLAP, OFPFMFC_TABLE_FULL,
// OFPBRC_BAD_TABLE_ID).
var (
	ErrOverlap   = errors.New("flow overlaps an existing flow of the same priority (check_overlap)")
	ErrTableFull = errors.New("table full")
	ErrBadTable  = errors.New("bad table id")
)

// RemovedReason says why a flow left its table, as OpenFlow's
// flow-removed message does.
type RemovedReason uint8

// The reasons, numbered as OpenFlow's OFPRR_*.
const (
	RemovedIdleTimeout RemovedReason = 0
	RemovedHardTimeout RemovedReason = 1
	RemovedDelete      RemovedReason = 2
	RemovedGroupDelete RemovedReason = 3
)

func (r RemovedReason) String() string {
	switch r {
	case RemovedIdleTimeout:
		return "idle"
	case RemovedHardTimeout:
		return "hard"
	case RemovedGroupDelete:
		return "group_delete"
	}
	return "delete"
}

// Removed is a flow that left its table: what a flow-removed message
// reports when the flow has send_flow_rem.
type Removed struct {
	Rule   *Rule
	Reason RemovedReason
}

// TablesOptions configures Tables.
type TablesOptions struct {
	// MaxFlows bounds the flows of all tables together; 0 means
	// DefaultMaxFlows.
	MaxFlows int
	// Now is the clock for durations, timeouts and ages; nil means
	// time.Now. Tests inject their own.
	Now func() time.Time
}

// Tables are a bridge's OpenFlow tables. Requests (add, modify, delete,
// dump, expire) are serialized by one lock; Lookup takes none, so the
// packet path never waits for a controller.
type Tables struct {
	mu       sync.Mutex
	tables   [NumTables]*Classifier
	gen      atomic.Uint64
	now      func() time.Time
	maxFlows int
	nflows   int
	nactions int // countActions of every rule's actions
	charge   *tablesCharge
	// global says that adds are bounded by MaxAllFlows too: not the
	// one flow NewBridgeTables puts in, so that a new bridge switches
	// even when the others hold every flow.
	global bool
	seq    uint64
	timed  map[*Rule]struct{} // rules with an idle or hard timeout
}

// NewTables returns empty tables.
func NewTables(opts TablesOptions) *Tables {
	t := &Tables{now: opts.Now, maxFlows: opts.MaxFlows, timed: map[*Rule]struct{}{},
		charge: &tablesCharge{}, global: true}
	runtime.AddCleanup(t, func(c *tablesCharge) {
		allFlows.Add(-c.flows.Load())
		allActions.Add(-c.actions.Load())
	}, t.charge)
	if t.now == nil {
		t.now = time.Now
	}
	if t.maxFlows <= 0 {
		t.maxFlows = DefaultMaxFlows
	}
	for i := range t.tables {
		t.tables[i] = NewClassifier()
	}
	return t
}

// NewBridgeTables returns the tables of a new bridge: table 0 holds
// "priority=0 actions=NORMAL", as in OVS, so that a bridge nobody
// programmed switches like a learning switch.
func NewBridgeTables(opts TablesOptions) *Tables {
	t := NewTables(opts)
	t.global = false
	defer func() { t.global = true }()
	normal := &flow.Flow{Priority: 0, Match: flow.NewMatch(packet.Key{}, packet.Key{}),
		Actions: []flow.Action{flow.Output{Port: flow.PortNormal}}}
	// An empty table takes one flow: no overlap, no limit to reach.
	_ = t.Add(normal)
	return t
}

// Generation changes whenever a flow is added, modified or removed, so
// that a flow cache built from lookups can tell it is stale.
func (t *Tables) Generation() uint64 { return t.gen.Load() }

// Lookup returns the best rule of table id that k matches (nil for a
// table miss, or a bad id) and ORs into wc the key bits that decided it.
// It takes no lock and does not allocate.
func (t *Tables) Lookup(id uint8, k, wc *packet.Key) *Rule {
	if id >= NumTables {
		return nil
	}
	return t.tables[id].Lookup(k, wc)
}

// NumFlows returns how many flows all tables hold.
func (t *Tables) NumFlows() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.nflows
}

// TableCount is the number of flows in one table.
type TableCount struct {
	Table uint8
	Flows int
}

// Counts returns the number of flows of each table that has any, by
// table number, and the limit all tables share.
func (t *Tables) Counts() (counts []TableCount, max int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, c := range t.tables {
		if n := c.Len(); n > 0 {
			counts = append(counts, TableCount{Table: uint8(i), Flows: n})
		}
	}
	return counts, t.maxFlows
}

func (t *Tables) nextOrder() uint64 {
	t.seq++
	return t.seq
}

// changed records a change of the flows: the datapath's cached
// translations, which may have gone through the old ones, are stale.
func (t *Tables) changed() {
	t.gen.Add(1)
	datapath.Invalidate()
}

// Add adds f to table f.Table. A flow with the same match and priority is
// replaced; its counters carry over unless f has reset_counts (an
// OpenFlow 1.0 or 1.1 channel sets that flag, as those versions always
// reset). With check_overlap, a different flow of the same priority that
// some packet could match together with f makes Add fail with ErrOverlap.
// f's CookieMask is ignored; t keeps f, which the caller must not modify.
func (t *Tables) Add(f *flow.Flow) error {
	if f.Table >= NumTables {
		return fmt.Errorf("table %d: %w (tables are 0 to %d)", f.Table, ErrBadTable, NumTables-1)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.add(f)
}

func (t *Tables) add(f *flow.Flow) error {
	_, err := t.addUndo(f)
	return err
}

// addUndo is add, and returns what puts the tables back as they were.
func (t *Tables) addUndo(f *flow.Flow) (undo func(), err error) {
	c := t.tables[f.Table]
	fl := *f
	fl.CookieMask = 0
	if fl.Match == nil {
		fl.Match = flow.NewMatch(packet.Key{}, packet.Key{})
	}
	old := t.findStrict(c, fl.Match, fl.Priority)
	if fl.Flags.CheckOverlap && t.overlaps(c, fl.Match, fl.Priority, old) {
		return nil, fmt.Errorf("table %d: priority %d: %s: %w", f.Table, f.Priority, fl.Match, ErrOverlap)
	}
	if err := checkConjActions(fl.Actions); err != nil {
		return nil, fmt.Errorf("table %d: %w", f.Table, err)
	}
	var oldConj []conjRef
	if old != nil {
		oldConj = old.conj
	}
	if err := c.conjRoom(conjRefsOf(fl.Actions), 1, oldConj); err != nil {
		return nil, fmt.Errorf("table %d: %w", f.Table, err)
	}
	if old == nil && t.nflows >= t.maxFlows {
		return nil, fmt.Errorf("table %d: %w: %d flows, at most %d", f.Table, ErrTableFull, t.nflows, t.maxFlows)
	}
	n := countActions(fl.Actions)
	if err := t.actionRoom(n, old); err != nil {
		return nil, fmt.Errorf("table %d: %w", f.Table, err)
	}
	newFlows, grow := 1, n
	if old != nil {
		newFlows, grow = 0, n-countActions(old.flow.Actions)
	}
	if err := t.reserveGlobal(newFlows, grow); err != nil {
		return nil, fmt.Errorf("table %d: %w", f.Table, err)
	}
	now := t.now().UnixNano()
	r := &Rule{match: fl.Match, priority: fl.Priority, flow: &fl, created: now, modified: now,
		order: t.nextOrder(), stats: &ruleStats{}}
	r.stats.used.Store(now)
	if old != nil {
		if !fl.Flags.ResetCounts {
			r.stats = old.stats
		}
		c.replace(old, r)
		_, oldTimed := t.timed[old]
		delete(t.timed, old)
		undo = func() {
			c.replace(r, old)
			delete(t.timed, r)
			if oldTimed {
				t.timed[old] = struct{}{}
			}
			t.count(0, -grow)
		}
	} else {
		c.insert(r)
		undo = func() { t.remove(r) }
	}
	t.countLocal(newFlows, grow)
	if fl.IdleTimeout != 0 || fl.HardTimeout != 0 {
		t.timed[r] = struct{}{}
	}
	t.changed()
	return undo, nil
}

// findStrict returns the rule of c with exactly this match and priority.
func (t *Tables) findStrict(c *Classifier, m *flow.Match, prio uint16) *Rule {
	mask := m.Mask()
	st := c.byMask[mask]
	if st == nil {
		return nil
	}
	value := m.Value()
	hs, vals := st.hashes(&value)
	n := st.find(st.fullHash(&hs), vals)
	if n == nil {
		return nil
	}
	for _, r := range n.rules {
		if r.priority == prio {
			return r
		}
	}
	return nil
}

// overlaps reports whether a rule of c other than self has priority prio
// and a match that some key satisfies together with m.
func (t *Tables) overlaps(c *Classifier, m *flow.Match, prio uint16, self *Rule) bool {
	mv, mm := m.Value(), m.Mask()
	for _, st := range c.subtables() {
		for _, r := range st.allRules() {
			if r != self && r.priority == prio && matchesOverlap(&mv, &mm, r.match) {
				return true
			}
		}
	}
	return false
}

func matchesOverlap(av, am *packet.Key, b *flow.Match) bool {
	bv, bm := b.Value(), b.Mask()
	aw, amw, bw, bmw := words(av), words(am), words(&bv), words(&bm)
	for i := range aw {
		if (aw[i]^bw[i])&amw[i]&bmw[i] != 0 {
			return false
		}
	}
	return true
}

// Selector picks flows for modify, delete, dump and aggregate requests,
// as the OpenFlow flow_mod and flow stats requests do.
type Selector struct {
	// Table is the table to look in, or TableAll.
	Table uint8
	// Match selects, non-strictly, every flow whose match is at least as
	// specific (nil selects every flow); strictly, the flow with exactly
	// this match and Priority.
	Match    *flow.Match
	Priority uint16
	Strict   bool
	// Cookie and CookieMask select flows whose cookie has these bits.
	Cookie, CookieMask uint64
	// OutPort, unless flow.PortNone (or 0, which no flow outputs to),
	// selects flows with an output action to it. Modify ignores it, as
	// OpenFlow says.
	OutPort uint32
	// ByGroup selects flows whose actions name group OutGroup; Modify
	// ignores it too.
	ByGroup  bool
	OutGroup uint32
}

// selected returns the rules sel picks, in dump order.
func (t *Tables) selected(sel *Selector, outPort bool) []*Rule {
	var out []*Rule
	var fv, fm packet.Key
	if sel.Match != nil {
		fv, fm = sel.Match.Value(), sel.Match.Mask()
	}
	for id := range t.tables {
		if sel.Table != TableAll && int(sel.Table) != id {
			continue
		}
		if sel.Strict {
			m := sel.Match
			if m == nil {
				m = flow.NewMatch(packet.Key{}, packet.Key{})
			}
			if r := t.findStrict(t.tables[id], m, sel.Priority); r != nil && t.picks(sel, r, &fv, &fm, outPort) {
				out = append(out, r)
			}
			continue
		}
		for _, st := range t.tables[id].subtables() {
			if !maskCovers(&st.mask, &fm) {
				continue
			}
			rules := st.allRules()
			slices.SortFunc(rules, func(a, b *Rule) int { return cmp.Compare(a.order, b.order) })
			for _, r := range rules {
				if t.picks(sel, r, &fv, &fm, outPort) {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

func (t *Tables) picks(sel *Selector, r *Rule, fv, fm *packet.Key, outPort bool) bool {
	if (r.flow.Cookie^sel.Cookie)&sel.CookieMask != 0 {
		return false
	}
	if outPort && sel.OutPort != flow.PortNone && sel.OutPort != 0 && !outputsTo(r.flow.Actions, sel.OutPort) {
		return false
	}
	if outPort && sel.ByGroup && !refersToGroup(r.flow.Actions, sel.OutGroup) {
		return false
	}
	if sel.Strict {
		return true // findStrict chose it
	}
	rv := r.match.Value()
	vw, fvw, fmw := words(&rv), words(fv), words(fm)
	for i := range vw {
		if vw[i]&fmw[i] != fvw[i] {
			return false
		}
	}
	return true
}

// maskCovers reports whether mask looks at every bit filter does.
func maskCovers(mask, filter *packet.Key) bool {
	mw, fw := words(mask), words(filter)
	for i := range mw {
		if fw[i]&^mw[i] != 0 {
			return false
		}
	}
	return true
}

// Modify is a modify-flows request.
type Modify struct {
	Selector
	Actions []flow.Action
	// SetCookie gives the selected flows NewCookie (a cookie without a
	// mask in ovs-ofctl's mod-flows).
	SetCookie bool
	NewCookie uint64
	// ResetCounts zeroes the selected flows' counters.
	ResetCounts bool
	// AddIfNone is added when the request selects no flow and has no
	// cookie mask: OpenFlow 1.0's rule, which OVS keeps for OpenFlow 1.0
	// (ovs-ofctl's default); nil for OpenFlow 1.1 and later.
	AddIfNone *flow.Flow
}

// Modify gives the selected flows new actions (and cookie), keeping their
// match, priority, timeouts, flags, importance and duration; hard_timeout
// restarts, as hard_age shows. It returns how many flows it changed (1
// when it added AddIfNone).
func (t *Tables) Modify(m Modify) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, _, err := t.modifyUndo(m)
	return n, err
}

// modifyUndo is Modify, and returns what puts the tables back.
func (t *Tables) modifyUndo(m Modify) (int, func(), error) {
	rules := t.selected(&m.Selector, false)
	if len(rules) == 0 {
		if m.AddIfNone == nil || m.CookieMask != 0 {
			return 0, func() {}, nil
		}
		if m.AddIfNone.Table >= NumTables {
			return 0, nil, fmt.Errorf("table %d: %w", m.AddIfNone.Table, ErrBadTable)
		}
		undo, err := t.addUndo(m.AddIfNone)
		return 1, undo, err
	}
	if err := t.modifyConjRoom(m.Actions, rules); err != nil {
		return 0, nil, err
	}
	n := countActions(m.Actions)
	grow := 0
	for _, old := range rules {
		grow += n - countActions(old.flow.Actions)
	}
	if grow > 0 && t.nactions+grow > DefaultMaxActions {
		return 0, nil, fmt.Errorf("%w: %d actions in the bridge's flows, at most %d", ErrTableFull, t.nactions+grow, DefaultMaxActions)
	}
	if err := t.reserveGlobal(0, grow); err != nil {
		return 0, nil, err
	}
	t.countLocal(0, grow)
	now := t.now().UnixNano()
	news := make([]*Rule, len(rules))
	for i, old := range rules {
		fl := *old.flow
		fl.Actions = m.Actions
		if m.SetCookie {
			fl.Cookie = m.NewCookie
		}
		r := &Rule{match: old.match, priority: old.priority, flow: &fl, created: old.created,
			modified: now, order: t.nextOrder(), stats: old.stats}
		if m.ResetCounts {
			r.stats = &ruleStats{}
			r.stats.used.Store(now)
		}
		t.tables[fl.Table].replace(old, r)
		news[i] = r
		if _, ok := t.timed[old]; ok {
			delete(t.timed, old)
			t.timed[r] = struct{}{}
		}
	}
	t.changed()
	undo := func() {
		for i, old := range rules {
			t.tables[old.flow.Table].replace(news[i], old)
			if _, ok := t.timed[news[i]]; ok {
				delete(t.timed, news[i])
				t.timed[old] = struct{}{}
			}
		}
		t.count(0, -grow)
	}
	return len(rules), undo, nil
}

// modifyConjRoom says whether rules can all take acts as their actions.
func (t *Tables) modifyConjRoom(acts []flow.Action, rules []*Rule) error {
	if err := checkConjActions(acts); err != nil {
		return err
	}
	refs := conjRefsOf(acts)
	if refs == nil {
		return nil
	}
	olds := map[uint8][][]conjRef{}
	for _, r := range rules {
		olds[r.flow.Table] = append(olds[r.flow.Table], r.conj)
	}
	for id, o := range olds {
		if err := t.tables[id].conjRoom(refs, len(o), o...); err != nil {
			return fmt.Errorf("table %d: %w", id, err)
		}
	}
	return nil
}

// Delete removes the selected flows and returns them, in dump order, for
// the flow-removed messages of those with send_flow_rem.
func (t *Tables) Delete(sel Selector) []Removed {
	t.mu.Lock()
	defer t.mu.Unlock()
	out, _ := t.deleteUndo(sel)
	return out
}

// deleteUndo is Delete, and returns what puts the deleted flows back.
func (t *Tables) deleteUndo(sel Selector) ([]Removed, func()) {
	rules := t.selected(&sel, true)
	out := make([]Removed, len(rules))
	for i, r := range rules {
		t.remove(r)
		out[i] = Removed{Rule: r, Reason: RemovedDelete}
	}
	if len(rules) > 0 {
		t.changed()
	}
	return out, func() { t.reinsert(rules) }
}

// reinsert puts removed rules back, as an undo.
func (t *Tables) reinsert(rules []*Rule) {
	for _, r := range rules {
		t.tables[r.flow.Table].insert(r)
		if r.flow.IdleTimeout != 0 || r.flow.HardTimeout != 0 {
			t.timed[r] = struct{}{}
		}
		t.count(1, countActions(r.flow.Actions))
	}
}

func (t *Tables) remove(r *Rule) {
	t.tables[r.flow.Table].remove(r)
	delete(t.timed, r)
	t.count(-1, -countActions(r.flow.Actions))
}

// count changes the flows and actions t holds, here and in all bridges'
// counts.
func (t *Tables) count(flows, actions int) {
	t.countLocal(flows, actions)
	allFlows.Add(int64(flows))
	allActions.Add(int64(actions))
}

// countLocal changes the flows and actions t holds, whose part of all
// bridges' counts reserveGlobal took.
func (t *Tables) countLocal(flows, actions int) {
	t.nflows += flows
	t.nactions += actions
	t.charge.flows.Add(int64(flows))
	t.charge.actions.Add(int64(actions))
}

// reserveGlobal takes room for flows more flows and actions more
// actions (either may be negative) in all bridges' counts, or says why
// there is none. Bridges adding at once each checked the counts and then
// added to them, so together they could pass the bounds; a reservation
// cannot. A bridge's own NORMAL flow (t.global unset) is always counted.
func (t *Tables) reserveGlobal(flows, actions int) error {
	if !t.global {
		allFlows.Add(int64(flows))
		allActions.Add(int64(actions))
		return nil
	}
	if !budget.Reserve(&allFlows, int64(flows), maxAllFlows.Load()) {
		return fmt.Errorf("%w: %d flows in all bridges, at most %d", ErrTableFull, allFlows.Load(), maxAllFlows.Load())
	}
	if !budget.Reserve(&allActions, int64(actions), maxAllActions.Load()) {
		allFlows.Add(-int64(flows))
		return fmt.Errorf("%w: %d actions in all bridges' flows, at most %d", ErrTableFull, allActions.Load()+int64(actions), maxAllActions.Load())
	}
	return nil
}

// actionRoom says whether a flow of n actions fits the bridge's own
// bound, in place of old if old is not nil.
func (t *Tables) actionRoom(n int, old *Rule) error {
	total := t.nactions + n
	if old != nil {
		total -= countActions(old.flow.Actions)
	}
	if n > 0 && total > DefaultMaxActions {
		return fmt.Errorf("%w: %d actions in the bridge's flows, at most %d", ErrTableFull, total, DefaultMaxActions)
	}
	return nil
}

// countActions counts acts and the actions and learn specs they nest.
func countActions(acts []flow.Action) int {
	n := len(acts)
	for _, a := range acts {
		switch a := a.(type) {
		case flow.Clone:
			n += countActions(a.Actions)
		case flow.CT:
			n += countActions(a.Exec)
		case flow.Learn:
			n += len(a.Specs)
		}
	}
	return n
}

// FlowStats is one flow of a dump with its statistics.
type FlowStats struct {
	Rule  *Rule
	Flow  *flow.Flow
	Stats flow.Stats
}

// Dump returns the selected flows (non-strict unless sel.Strict) in the
// order OVS 3.1's dump-flows lists them: by table; within a table, the
// subtables (flows of one mask) from the highest priority they hold, ties
// by which reached it first; within a subtable, in the order the flows
// were last added or modified. OVS's order is that of its classifier
// too; a test that compares dumps of many equal-priority flows should
// still compare each priority's lines as a set.
func (t *Tables) Dump(sel Selector) []FlowStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	rules := t.selected(&sel, true)
	out := make([]FlowStats, len(rules))
	for i, r := range rules {
		out[i] = FlowStats{Rule: r, Flow: r.flow, Stats: r.Stats(now)}
	}
	return out
}

// AggregateStats are the totals dump-aggregate prints.
type AggregateStats struct {
	Packets, Bytes uint64
	Flows          int
}

// Aggregate sums the selected flows' counters.
func (t *Tables) Aggregate(sel Selector) AggregateStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	var a AggregateStats
	for _, r := range t.selected(&sel, true) {
		p, b := r.Counters()
		a.Packets += p
		a.Bytes += b
		a.Flows++
	}
	return a
}

// Expire removes the flows whose hard timeout (since the flow was added
// or last modified) or idle timeout (since its last packet) has passed,
// and returns them with the reason. The bridge calls it periodically.
func (t *Tables) Expire() []Removed {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now().UnixNano()
	var out []Removed
	for r := range t.timed {
		if reason, ok := expired(r, now); ok {
			out = append(out, Removed{Rule: r, Reason: reason})
		}
	}
	slices.SortFunc(out, func(a, b Removed) int { return cmp.Compare(a.Rule.order, b.Rule.order) })
	for _, e := range out {
		t.remove(e.Rule)
	}
	if len(out) > 0 {
		t.changed()
	}
	return out
}

func expired(r *Rule, now int64) (RemovedReason, bool) {
	if h := r.flow.HardTimeout; h != 0 && now-r.modified >= int64(h)*int64(time.Second) {
		return RemovedHardTimeout, true
	}
	if i := r.flow.IdleTimeout; i != 0 && now-r.stats.used.Load() >= int64(i)*int64(time.Second) {
		return RemovedIdleTimeout, true
	}
	return 0, false
}
