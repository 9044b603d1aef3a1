package ofproto

import (
	"errors"
	"fmt"
	"sync"

	"gvs/internal/flow"
	"gvs/internal/packet"
)

// Conjunctive matches (ovs-fields(7), conj_id). A flow whose actions are
// conjunction(id,k/n) (and notes) is a clause: the flows of dimension k
// of match id. A packet that, at one priority, matches a clause flow of
// every dimension 1..n of id matches the conjunction; the table is then
// searched again with conj_id=id, and the flow that search finds is the
// packet's flow: its actions run and it alone counts the packet. Clause
// flows never count packets, as in OVS.
//
// What OVS 3.1 does, and gvs with it (each seen with ofproto/trace):
//   - A conjunction at priority P competes with ordinary flows: an
//     ordinary flow of a higher priority wins; when no conjunction at P
//     is complete, the search goes on as if its clause flows did not
//     exist.
//   - The conj_id search ignores clause flows and takes the best
//     ordinary flow that matches with conj_id set, at any priority: a
//     catch-all flow answers it when there is no conj_id=id flow. Only
//     when it finds nothing at all does the search fall through to
//     lower priorities.
//   - A clause belongs to the conjunction (id, n): clauses of the same
//     id with different n never complete each other.
//   - A single clause flow at the highest soft priority completes
//     nothing, even one with every clause of an id.
//   - Of several complete conjunctions at one priority (ovs-fields(7)
//     calls that unpredictable), the first to complete wins, visiting
//     clause flows in lookup order and their actions in order.
//
// Tables without clause flows pay one nil check per matched rule.

// Limits on what a controller can make a table keep for conjunctions: a
// flow's conjunction actions are visited on every lookup it matches.
const (
	MaxConjunctionsPerFlow = 4096
	MaxConjIDsPerTable     = 1 << 18
	MaxClausesPerConjID    = 1 << 18
)

// The limits in force (variables for tests).
var (
	maxConjPerFlow  = MaxConjunctionsPerFlow
	maxConjIDs      = MaxConjIDsPerTable
	maxClausesPerID = MaxClausesPerConjID
)

// ErrBadConjunction is a flow with conjunction actions that is not a
// valid clause (the OpenFlow channel checks first, with OVS's error).
var ErrBadConjunction = errors.New("bad conjunction")

// conjRef is one conjunction action of a clause flow.
type conjRef struct {
	id     uint32
	clause uint8 // from 0
	n      uint8
}

// conjRefsOf returns a flow's conjunction actions, nil if none.
func conjRefsOf(acts []flow.Action) []conjRef {
	var refs []conjRef
	for _, a := range acts {
		if c, ok := a.(flow.Conjunction); ok {
			refs = append(refs, conjRef{id: c.ID, clause: c.Clause - 1, n: c.NClauses})
		}
	}
	return refs
}

// checkConjActions says whether acts may be a flow's actions.
func checkConjActions(acts []flow.Action) error {
	if err := flow.CheckConjunctions(acts); err != nil {
		return fmt.Errorf("%w: %v", ErrBadConjunction, err)
	}
	if n := len(conjRefsOf(acts)); n > maxConjPerFlow {
		return fmt.Errorf("%w: %d conjunction actions in one flow, at most %d", ErrTableFull, n, maxConjPerFlow)
	}
	return nil
}

// conjCount adds sign times refs to the table's clause counts. Writer only.
func (c *Classifier) conjCount(refs []conjRef, sign int) {
	if len(refs) == 0 {
		return
	}
	if c.conjFlows == nil {
		c.conjFlows = map[uint32]int{}
	}
	for _, r := range refs {
		if c.conjFlows[r.id] += sign; c.conjFlows[r.id] <= 0 {
			delete(c.conjFlows, r.id)
		}
	}
}

// conjRoom says whether the table has room for add, times over, in
// place of the rules' clauses in removes. Writer only.
func (c *Classifier) conjRoom(add []conjRef, times int, removes ...[]conjRef) error {
	if len(add) == 0 {
		return nil
	}
	delta := map[uint32]int{}
	for _, r := range add {
		delta[r.id] += times
	}
	for _, refs := range removes {
		for _, r := range refs {
			delta[r.id]--
		}
	}
	ids := len(c.conjFlows)
	for id, d := range delta {
		cur := c.conjFlows[id]
		if cur+d > maxClausesPerID && d > 0 {
			return fmt.Errorf("%w: conjunction %d: %d clause actions, at most %d", ErrTableFull, id, cur+d, maxClausesPerID)
		}
		switch {
		case cur == 0 && cur+d > 0:
			ids++
		case cur > 0 && cur+d <= 0:
			ids--
		}
	}
	if ids > maxConjIDs && ids > len(c.conjFlows) {
		return fmt.Errorf("%w: %d conjunction ids, at most %d", ErrTableFull, ids, maxConjIDs)
	}
	return nil
}

// softMatch is a matching node whose rule i is a clause flow.
type softMatch struct {
	n *cmapNode
	i int
}

// conjKey is a conjunction being completed: its id and its n.
type conjKey struct {
	id uint32
	n  uint8
}

// conjScratch is one lookup's working memory, pooled so that a lookup
// allocates nothing once the pool has warmed up.
type conjScratch struct {
	soft []softMatch
	acc  map[conjKey]uint64
}

var conjScratchPool = sync.Pool{New: func() any { return &conjScratch{acc: map[conjKey]uint64{}} }}

func (s *conjScratch) release() {
	clear(s.soft)
	s.soft = s.soft[:0]
	conjScratchPool.Put(s)
}

// lookupConj finishes a Lookup that met a clause flow, first, in the
// subtable order[i]: hard is the best ordinary rule so far.
func (c *Classifier) lookupConj(k, wc *packet.Key, order []subEntry, i int, hard *Rule, first *cmapNode) *Rule {
	s := conjScratchPool.Get().(*conjScratch)
	defer s.release()
	kw, ww := words(k), words(wc)
	s.soft = append(s.soft, softMatch{n: first})
	for _, e := range order[i+1:] {
		if hard != nil && e.maxPrio <= hard.priority {
			break
		}
		n := e.st.lookup(kw, ww)
		if n == nil {
			continue
		}
		switch r := n.rules[0]; {
		case hard != nil && r.priority <= hard.priority:
		case r.conj == nil:
			hard = r
		default:
			s.soft = append(s.soft, softMatch{n: n})
		}
	}
	for {
		// Keep the clause flows above the best ordinary flow and find
		// the highest priority among them.
		pri, count, j := -1, 0, 0
		for _, m := range s.soft {
			r := m.n.rules[m.i]
			if hard != nil && r.priority <= hard.priority {
				continue
			}
			s.soft[j] = m
			j++
			if int(r.priority) > pri {
				pri, count = int(r.priority), 0
			}
			if int(r.priority) == pri {
				count++
			}
		}
		s.soft = s.soft[:j]
		if j == 0 {
			return hard
		}
		if count >= 2 {
			if id, ok := s.complete(uint16(pri)); ok {
				if r := c.lookupConjID(k, wc, order, id); r != nil {
					return r
				}
			}
		}
		// No conjunction at pri: its clause flows are as good as absent,
		// so their nodes' next rules (of lower priority) compete.
		j = 0
		for _, m := range s.soft {
			if int(m.n.rules[m.i].priority) == pri {
				m.i++
				if m.i == len(m.n.rules) {
					continue
				}
				if r := m.n.rules[m.i]; r.conj == nil {
					if hard == nil || r.priority > hard.priority {
						hard = r
					}
					continue
				}
			}
			s.soft[j] = m
			j++
		}
		s.soft = s.soft[:j]
	}
}

// complete returns the id of a conjunction whose every clause a clause
// flow of priority pri provides.
func (s *conjScratch) complete(pri uint16) (uint32, bool) {
	clear(s.acc)
	for _, m := range s.soft {
		r := m.n.rules[m.i]
		if r.priority != pri {
			continue
		}
		for _, ref := range r.conj {
			key := conjKey{ref.id, ref.n}
			bits := s.acc[key] | 1<<ref.clause
			s.acc[key] = bits
			if bits == allClauses(ref.n) {
				return ref.id, true
			}
		}
	}
	return 0, false
}

func allClauses(n uint8) uint64 {
	if n >= 64 {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// lookupConjID is the search with conj_id=id: the best ordinary rule k
// matches with that conj_id, clause flows ignored (as OVS, even the
// ordinary rules below them in their node). The bits it reads of conj_id
// are not the packet's and do not go into wc.
func (c *Classifier) lookupConjID(k, wc *packet.Key, order []subEntry, id uint32) *Rule {
	kk := *k
	kk.ConjID = id
	saved := wc.ConjID
	kw, ww := words(&kk), words(wc)
	var best *Rule
	for _, e := range order {
		if best != nil && e.maxPrio <= best.priority {
			break
		}
		n := e.st.lookup(kw, ww)
		if n == nil {
			continue
		}
		if r := n.rules[0]; r.conj == nil && (best == nil || r.priority > best.priority) {
			best = r
		}
	}
	wc.ConjID = saved
	return best
}

// ruleConj is r's conjunction actions (rules a test builds may have no
// flow).
func ruleConj(r *Rule) []conjRef {
	if r.flow == nil {
		return nil
	}
	return conjRefsOf(r.flow.Actions)
}
