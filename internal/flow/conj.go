package flow

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Conjunction is conjunction(id,k/n): the flow is one of the flows of
// dimension Clause (1 to NClauses) of conjunctive match ID
// (ovs-fields(7), "Conjunctive Match Fields"). A flow with one is not
// executed: its table combines it with the others of the same id.
type Conjunction struct {
	ID               uint32
	Clause, NClauses uint8
}

// MaxConjunctionClauses is the most dimensions a conjunctive match has,
// as in OVS (a clause is one bit of a 64-bit word there).
const MaxConjunctionClauses = 64

func (a Conjunction) format(b *strings.Builder, _ FormatOptions) {
	fmt.Fprintf(b, "conjunction(%d,%d/%d)", a.ID, a.Clause, a.NClauses)
}

// Check says what is wrong with the action's numbers, in ovs-ofctl's
// words, or nil.
func (a Conjunction) Check() error {
	switch {
	case a.NClauses < 2:
		return errors.New("conjunction must have at least 2 clauses")
	case a.NClauses > MaxConjunctionClauses:
		return fmt.Errorf("conjunction must have at most %d clauses", MaxConjunctionClauses)
	case a.Clause < 1:
		return errors.New("clause index must be positive")
	case a.Clause > a.NClauses:
		return errors.New("clause index must be less than or equal to number of clauses")
	}
	return nil
}

// parseConjunction reads "id, k/n" (spaces allowed around each number,
// as ovs-ofctl's scanf does).
func parseConjunction(s string) (Action, error) {
	syntax := errors.New(`"conjunction" syntax is "conjunction(id,i/n)"`)
	idText, rest, ok := strings.Cut(s, ",")
	if !ok {
		return nil, syntax
	}
	kText, nText, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, syntax
	}
	id, err1 := strconv.ParseUint(strings.TrimSpace(idText), 10, 32)
	k, err2 := strconv.ParseUint(strings.TrimSpace(kText), 10, 8)
	n, err3 := strconv.ParseUint(strings.TrimSpace(nText), 10, 8)
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, syntax
	}
	a := Conjunction{ID: uint32(id), Clause: uint8(k), NClauses: uint8(n)}
	if err := a.Check(); err != nil {
		return nil, err
	}
	return a, nil
}

// ErrConjunctionMixed is CheckConjunctions' error for a flow whose
// conjunction actions come with actions other than note.
var ErrConjunctionMixed = errors.New(`"conjunction" actions may be used along with "note" but not any other kind of action`)

// CheckConjunctions checks a flow's actions: conjunction actions, if
// any, may come only with note actions (their flow is never executed,
// so any other action would be dead), and each has valid numbers.
func CheckConjunctions(acts []Action) error {
	conj, other := false, Action(nil)
	for _, a := range acts {
		switch a := a.(type) {
		case Conjunction:
			if err := a.Check(); err != nil {
				return err
			}
			conj = true
		case Note:
		default:
			if other == nil {
				other = a
			}
		}
	}
	if conj && other != nil {
		return fmt.Errorf("%w (such as the %q action used here)", ErrConjunctionMixed, actionName(other))
	}
	return nil
}

// actionName is the name an action's text starts with ("output").
func actionName(a Action) string {
	var b strings.Builder
	a.format(&b, FormatOptions{})
	s := b.String()
	if i := strings.IndexAny(s, ":(,="); i > 0 {
		return s[:i]
	}
	return s
}
