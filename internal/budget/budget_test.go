package budget

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestReserveNeverPassesTheLimit: many goroutines reserving at once
// never take more than the limit together, and take all of it.
func TestReserveNeverPassesTheLimit(t *testing.T) {
	var used, taken atomic.Int64
	const limit = 10000
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5000 {
				if Reserve(&used, 3, limit) {
					taken.Add(3)
				}
			}
		}()
	}
	wg.Wait()
	if used.Load() > limit || used.Load() != taken.Load() || used.Load() < limit-2 {
		t.Fatalf("used %d, taken %d, limit %d", used.Load(), taken.Load(), limit)
	}
	if !Reserve(&used, -used.Load(), limit) || used.Load() != 0 {
		t.Fatalf("giving back left %d", used.Load())
	}
}
