package datapath

import (
	"testing"

	"gvs/internal/netdev"
)

// The mirror of the copies last held is charged only while copies are
// held: once a send has left none held, frames held later (a write's
// that the kernel had no socket buffer for) are no copies of it, and
// their drop is not its.
func TestHeldChargeEndsWithTheHeldCopies(t *testing.T) {
	p := &Port{}
	m := &CopyStats{}
	p.heldCharge = m                                       // m's copies are held (holdCopies)
	p.chargeDrops(netdev.TxResult{Sent: 4}, 0, nil)        // a write sent them: none is held
	p.chargeDrops(netdev.TxResult{HeldDropped: 3}, 0, nil) // frames held since then are dropped
	if d := m.Dropped.Load(); d != 0 {
		t.Fatalf("the mirror whose copies were all sent was charged %d drops of frames held after them", d)
	}
}
