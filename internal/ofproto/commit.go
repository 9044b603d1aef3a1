package ofproto

import (
	"fmt"

	"gvs/internal/flow"
)

// Op is one change of a bundle: exactly one of Add, Modify, Delete and
// Group.
type Op struct {
	Add    *flow.Flow
	Modify *Modify
	Delete *Selector
	Group  *GroupOp
}

// Group mod commands of a bundle's GroupOp.
const (
	GroupOpAdd = iota
	GroupOpModify
	GroupOpDelete
	GroupOpInsertBuckets
	GroupOpRemoveBuckets
)

// GroupOp is a group mod of a bundle: Spec is the group to add or
// modify (AddIfNone: add it if it does not exist), or the group id and
// the buckets to insert before BucketID; a delete and a bucket removal
// name the group by Spec.ID and the bucket by BucketID.
type GroupOp struct {
	Command   int
	Spec      GroupSpec
	AddIfNone bool
	BucketID  uint32
}

// Commit applies ops in order, all or nothing (an OpenFlow 1.4 bundle
// commit): when one fails, those before it are undone, and Commit
// returns its index and error with the tables as they were. No other
// request sees part of it; a packet looking up during the commit may
// meet the flows half changed, as Lookup takes no lock. On success it
// returns the flows the deletes removed, for their flow-removed
// messages. Ops of groups need Groups.Commit.
func (t *Tables) Commit(ops []Op) (removed []Removed, failed int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.commit(ops, nil)
}

// Commit is Tables.Commit for a bundle that may change groups too, as
// OVS 3.1's bundles do: group mods and flow mods apply in order, a flow
// may name a group an earlier message of the bundle adds (and is checked
// against the groups as they are at its turn), and a failure undoes the
// groups' changes with the flows'. The group table's lock is taken
// before the flow tables', the order every other path keeps.
func (g *Groups) Commit(ops []Op) (removed []Removed, failed int, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.tables
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.commit(ops, g)
}

func (t *Tables) commit(ops []Op, g *Groups) (removed []Removed, failed int, err error) {
	undos := make([]func(), 0, len(ops))
	groupsChanged := false
	for i, op := range ops {
		var undo func()
		switch {
		case op.Add != nil:
			if op.Add.Table >= NumTables {
				err = ErrBadTable
				break
			}
			if err = g.checkAt(op.Add.Actions); err == nil {
				undo, err = t.addUndo(op.Add)
			}
		case op.Modify != nil:
			err = g.checkAt(op.Modify.Actions)
			if err == nil && op.Modify.AddIfNone != nil {
				err = g.checkAt(op.Modify.AddIfNone.Actions)
			}
			if err == nil {
				_, undo, err = t.modifyUndo(*op.Modify)
			}
		case op.Delete != nil:
			var rs []Removed
			rs, undo = t.deleteUndo(*op.Delete)
			removed = append(removed, rs...)
		case op.Group != nil:
			if g == nil {
				err = fmt.Errorf("a group mod in a commit of flows only")
				break
			}
			var rs []Removed
			rs, undo, err = t.groupOpUndo(g, op.Group)
			removed = append(removed, rs...)
			groupsChanged = true
		}
		if err != nil {
			for j := len(undos) - 1; j >= 0; j-- {
				undos[j]()
			}
			if len(undos) > 0 {
				t.changed()
				if groupsChanged {
					g.changed()
				}
			}
			return nil, i, err
		}
		if undo != nil {
			undos = append(undos, undo)
		}
	}
	return removed, 0, nil
}

// checkAt refuses a flow's group action whose group does not exist now,
// at its turn in a commit (none when g is nil: the caller checked).
func (g *Groups) checkAt(acts []flow.Action) error {
	if g == nil {
		return nil
	}
	return g.CheckActions(acts)
}

// groupOpUndo applies a bundle's group mod, with t.mu and g.mu held,
// and returns the flows a delete removed and how to undo it.
func (t *Tables) groupOpUndo(g *Groups, op *GroupOp) ([]Removed, func(), error) {
	id := op.Spec.ID
	if op.Command == GroupOpDelete {
		olds := g.List(id)
		gone := g.remove(id)
		if len(gone) == 0 {
			return nil, nil, nil
		}
		g.changed()
		rs, undoFlows := t.deleteByGroupsUndo(gone)
		return rs, func() {
			undoFlows()
			for _, old := range olds {
				g.restore(old.ID, old)
			}
		}, nil
	}
	old := g.Get(id)
	var err error
	switch op.Command {
	case GroupOpAdd:
		err = g.add(&op.Spec)
	case GroupOpModify:
		err = g.modify(&op.Spec, op.AddIfNone)
	case GroupOpInsertBuckets:
		err = g.insertBuckets(id, op.BucketID, op.Spec.Buckets)
	case GroupOpRemoveBuckets:
		err = g.removeBuckets(id, op.BucketID)
	default:
		err = fmt.Errorf("group %d: %w: command %d", id, ErrGroupInvalid, op.Command)
	}
	if err != nil {
		return nil, nil, err
	}
	return nil, func() { g.restore(id, old) }, nil
}
