// Package budget holds the reservation the daemon's shared memory
// budgets (flow caches, MAC tables, OpenFlow flows and actions, OpenFlow
// output) take room with. Checking what is used and adding to it apart
// let threads that add at once (ports, bridges, connections) all pass
// the check and go over the budget together; Reserve checks and adds in
// one compare-and-swap.
package budget

import "sync/atomic"

// Reserve adds n to *used if that keeps it within limit, and reports
// whether it did. A negative n (giving back) always succeeds.
func Reserve(used *atomic.Int64, n, limit int64) bool {
	if n <= 0 {
		used.Add(n)
		return true
	}
	for {
		cur := used.Load()
		if cur+n > limit {
			return false
		}
		if used.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}
