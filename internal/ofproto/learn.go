package ofproto

import (
	"fmt"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/flow"
)

// learnFailed counts learn actions that could not add their flow (a
// field gvs cannot read, a learned match without its prerequisites,
// full tables).
var learnFailed = coverage.New("ofproto_learn_failed")

// learn executes a learn action. The flow it adds depends on the values
// of the fields it reads, so they join the cache mask; the add itself is
// a side effect (datapath.EffectRun) that the datapath applies to every
// packet the translation serves, cache hits included, as OVS's xlate
// cache re-runs learns. Adding a new flow changes the tables, which makes
// every cached translation stale; running it again for the same flow
// only refreshes the learned flow's idle timer, lock-free (see
// learned.Run), so a cached learn costs little per packet.
func (c *ofctx) learn(x *xlate, a flow.Learn) {
	f := &flow.Flow{Table: a.Table, Priority: a.Priority, Cookie: a.Cookie, IdleTimeout: a.IdleTimeout,
		HardTimeout: a.HardTimeout, Flags: flow.FlowFlags{SendFlowRem: a.SendFlowRem}}
	var wfs []flow.WireField
	at := map[string]int{}
	for _, s := range a.Specs {
		v, ok := c.learnValue(x, s)
		if !ok {
			learnFailed.Inc()
			return
		}
		switch s.Kind {
		case flow.LearnMatch:
			i, ok := at[s.Dst.Field]
			if !ok {
				i = len(wfs)
				at[s.Dst.Field] = i
				wfs = append(wfs, flow.WireField{Name: s.Dst.Field})
			}
			orBits(&wfs[i].Value, v, s.Dst.Start)
			orBits(&wfs[i].Mask, ones128(s.Dst.Bits), s.Dst.Start)
		case flow.LearnLoad:
			f.Actions = append(f.Actions, flow.Load{Dst: s.Dst, Value: v})
		case flow.LearnOutput:
			f.Actions = append(f.Actions, flow.Output{Port: uint32(v[12])<<24 | uint32(v[13])<<16 | uint32(v[14])<<8 | uint32(v[15])})
		}
	}
	m, err := flow.MatchFromWire(wfs)
	if err != nil {
		learnFailed.Inc()
		return
	}
	f.Match = m
	x.out.Effects = append(x.out.Effects, datapath.Effect{Kind: datapath.EffectRun, Runner: &learned{tables: c.b.Tables, flow: f}})
}

// learnValue is a spec's value: its immediate, or the bits of the field
// it reads from the working key (whose bits join the cache mask).
func (c *ofctx) learnValue(x *xlate, s flow.LearnSpec) ([16]byte, bool) {
	if s.Src.Field == "" {
		return s.Imm, true
	}
	raw, mask, ok := flow.KeyField(&c.key, s.Src.Field)
	if !ok {
		return raw, false
	}
	x.out.Mask.OrMask(&mask)
	var v [16]byte
	for i := range s.Src.Bits {
		bit := s.Src.Start + i
		if bit < 128 && raw[15-bit/8]>>(bit%8)&1 != 0 {
			v[15-i/8] |= 1 << (i % 8)
		}
	}
	return v, true
}

// orBits ORs v, shifted left by shift bits, into dst (128-bit big-endian).
func orBits(dst *[16]byte, v [16]byte, shift uint16) {
	for i := uint16(0); i < 128; i++ {
		if v[15-i/8]>>(i%8)&1 != 0 && i+shift < 128 {
			b := i + shift
			dst[15-b/8] |= 1 << (b % 8)
		}
	}
}

func ones128(n uint16) [16]byte {
	var m [16]byte
	for i := uint16(0); i < n && i < 128; i++ {
		m[15-i/8] |= 1 << (i % 8)
	}
	return m
}

// learned is a learn action's flow, added for each packet.
type learned struct {
	tables *Tables
	flow   *flow.Flow
	// seen is the rule this flow was found as, with the tables'
	// generation then: while no flow changed, the rule is still there
	// and refreshing it needs no lock.
	seen atomic.Pointer[seenRule]
}

type seenRule struct {
	r   *Rule
	gen uint64
}

func (l *learned) Run(now time.Time) {
	if s := l.seen.Load(); s != nil && s.gen == l.tables.Generation() {
		s.r.touch(now)
		return
	}
	r, err := l.tables.Learn(l.flow, now)
	if err != nil {
		learnFailed.Inc()
		return
	}
	l.seen.Store(&seenRule{r: r, gen: l.tables.Generation()})
}

// touch marks the rule used at now (its idle timeout starts over).
func (r *Rule) touch(now time.Time) {
	if ns := now.UnixNano(); ns > r.stats.used.Load() {
		r.stats.used.Store(ns)
	}
}

// Learn adds f for a learn action and returns its rule. When the same
// flow (match, priority, cookie, actions, timeouts) is there already it
// is only marked used, so that its idle timeout starts over and the
// tables do not change (a changed flow would make every cached
// translation stale). Its hard timeout is not restarted.
func (t *Tables) Learn(f *flow.Flow, now time.Time) (*Rule, error) {
	if f.Table >= NumTables {
		return nil, fmt.Errorf("learn: table %d: %w", f.Table, ErrBadTable)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.tables[f.Table]
	if old := t.findStrict(c, f.Match, f.Priority); old != nil && sameLearned(old.flow, f) {
		old.touch(now)
		return old, nil
	}
	if err := t.add(f); err != nil {
		return nil, err
	}
	return t.findStrict(c, f.Match, f.Priority), nil
}

func sameLearned(a, b *flow.Flow) bool {
	return a.Cookie == b.Cookie && a.IdleTimeout == b.IdleTimeout && a.HardTimeout == b.HardTimeout &&
		a.Flags == b.Flags && flow.FormatActions(a.Actions, flow.FormatOptions{}) == flow.FormatActions(b.Actions, flow.FormatOptions{})
}
