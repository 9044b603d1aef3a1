package ofproto

import (
	"strconv"
	"sync"
	"testing"

	"gvs/internal/flow"
	"gvs/internal/packet"
)

// TestGlobalFlowBoundsUnderParallelAdds: bridges adding flows at once
// each checked all bridges' counts and then added to them, so together
// they passed MaxAllFlows and MaxAllActions by a few flows (and their
// actions). Reserved with a compare-and-swap, the counts never pass
// them, whatever the interleaving; rounds make an interleaving at the
// bound likely.
func TestGlobalFlowBoundsUnderParallelAdds(t *testing.T) {
	oldF, oldA := maxAllFlows.Load(), maxAllActions.Load()
	t.Cleanup(func() { maxAllFlows.Store(oldF); maxAllActions.Store(oldA) })
	const bridges, room = 8, 400
	acts := mustFlow(t, "actions=output:1,output:2,output:3,output:4").Actions // 4 actions a flow
	all := Selector{Table: TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})}
	var tables []*Tables
	for range bridges {
		tables = append(tables, NewBridgeTables(TablesOptions{}))
	}
	fill := func() {
		var wg sync.WaitGroup
		for b, tb := range tables {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range room {
					f := &flow.Flow{Match: mustMatch(t, "reg0="+strconv.Itoa(i)+",reg1="+strconv.Itoa(b)), Actions: acts}
					if tb.Add(f) != nil {
						return
					}
				}
			}()
		}
		wg.Wait()
	}
	for round := range 20 {
		// The flows bound, then the actions bound.
		for _, flows := range []bool{true, false} {
			if flows {
				maxAllFlows.Store(AllFlows() + room)
				maxAllActions.Store(allActions.Load() + 1e6)
			} else {
				maxAllFlows.Store(AllFlows() + 1e6)
				maxAllActions.Store(allActions.Load() + 4*room)
			}
			fill()
			if n, max := AllFlows(), maxAllFlows.Load(); n > max {
				t.Fatalf("round %d: %d flows in all bridges, bound %d", round, n, max)
			}
			if n, max := allActions.Load(), maxAllActions.Load(); n > max {
				t.Fatalf("round %d: %d actions in all bridges, bound %d", round, n, max)
			}
			for _, tb := range tables {
				tb.Delete(all)
			}
		}
	}
}

// TestMACTablesBudgetUnderParallelGrowth: bridges whose MAC tables grow
// at once each checked the shared budget and then grew, so together
// they passed it by their growths (up to 24 MiB each for a large
// table). A reservation keeps the slots within the budget.
func TestMACTablesBudgetUnderParallelGrowth(t *testing.T) {
	old := macMemBudget.Load()
	t.Cleanup(func() { macMemBudget.Store(old) })
	for round := range 20 {
		base := MACTableMemoryUsed()
		const budget = 1 << 20
		macMemBudget.Store(base + budget)
		var tables []*MACTable
		var wg sync.WaitGroup
		for i := range 8 {
			mt := NewMACTable(MaxMACTableSize, 300)
			tables = append(tables, mt)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 40000 {
					mt.Learn([6]byte{2, byte(i), 0, byte(j >> 16), byte(j >> 8), byte(j)}, 0, 1)
				}
			}()
		}
		wg.Wait()
		if used := MACTableMemoryUsed() - base; used > budget {
			t.Fatalf("round %d: MAC tables' slots hold %d KiB, budget %d KiB", round, used>>10, budget>>10)
		}
		for _, mt := range tables {
			mt.Flush()
		}
	}
}
