package ofproto

import "gvs/internal/flow"

// Op is one change of a bundle: exactly one of Add, Modify and Delete.
type Op struct {
	Add    *flow.Flow
	Modify *Modify
	Delete *Selector
}

// Commit applies ops in order, all or nothing (an OpenFlow 1.4 bundle
// commit): when one fails, those before it are undone, and Commit
// returns its index and error with the tables as they were. No other
// request sees part of it; a packet looking up during the commit may
// meet the flows half changed, as Lookup takes no lock. On success it
// returns the flows the deletes removed, for their flow-removed
// messages.
func (t *Tables) Commit(ops []Op) (removed []Removed, failed int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	undos := make([]func(), 0, len(ops))
	for i, op := range ops {
		var undo func()
		switch {
		case op.Add != nil:
			if op.Add.Table >= NumTables {
				err = ErrBadTable
				break
			}
			undo, err = t.addUndo(op.Add)
		case op.Modify != nil:
			_, undo, err = t.modifyUndo(*op.Modify)
		case op.Delete != nil:
			var rs []Removed
			rs, undo = t.deleteUndo(*op.Delete)
			removed = append(removed, rs...)
		}
		if err != nil {
			for j := len(undos) - 1; j >= 0; j-- {
				undos[j]()
			}
			if len(undos) > 0 {
				t.changed()
			}
			return nil, i, err
		}
		if undo != nil {
			undos = append(undos, undo)
		}
	}
	return removed, 0, nil
}
