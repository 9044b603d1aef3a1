package ofproto

// What the flow tables know of groups: the flows that name a group,
// deleted with it, and counted as its references.

// deleteByGroups removes the flows whose actions name one of the groups
// ids and returns them with reason RemovedGroupDelete.
func (t *Tables) deleteByGroups(ids []uint32) []Removed {
	t.mu.Lock()
	defer t.mu.Unlock()
	out, _ := t.deleteByGroupsUndo(ids)
	return out
}

// deleteByGroupsUndo is deleteByGroups with t.mu held, and how to put
// the flows back (a bundle's undo).
func (t *Tables) deleteByGroupsUndo(ids []uint32) ([]Removed, func()) {
	var out []Removed
	var rules []*Rule
	for _, r := range t.selected(&Selector{Table: TableAll}, false) {
		for _, id := range ids {
			if refersToGroup(r.flow.Actions, id) {
				t.remove(r)
				out = append(out, Removed{Rule: r, Reason: RemovedGroupDelete})
				rules = append(rules, r)
				break
			}
		}
	}
	if len(out) > 0 {
		t.changed()
	}
	return out, func() { t.reinsert(rules) }
}

// groupRefs counts, for each group, the flows whose actions name it.
func (t *Tables) groupRefs() map[uint32]uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	refs := map[uint32]uint32{}
	for _, r := range t.selected(&Selector{Table: TableAll}, false) {
		seen := uint32(WatchAny)
		walkGroups(r.flow.Actions, func(id uint32) {
			if id != seen { // a flow counts once for each group it names
				refs[id]++
				seen = id
			}
		})
	}
	return refs
}
