package datapath_test

import (
	"os"
	"sync"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
)

// TestSetOffloadToggles turns the kernel fast path on and off, over and
// over, while the counters are pulled every millisecond and the port
// set changes: SetOffload stops the pulling goroutine, which takes the
// datapath's lock, without holding that lock (it used to deadlock).
func TestSetOffloadToggles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	old := datapath.SetKernelPullInterval(time.Millisecond)
	defer datapath.SetKernelPullInterval(old)
	dp := runningSwitch(t, netdev.NewMemory("fo1", 16), netdev.NewMemory("fo2", 16))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			_, _, _ = dp.OffloadStatus()
			_ = dp.Flows(nil)
		}
	}()
	deadline := time.After(20 * time.Second)
	for i := range 200 {
		select {
		case <-deadline:
			t.Fatalf("200 toggles took more than 20 s (stopped at %d)", i)
		default:
		}
		if err := dp.SetOffload(i%2 == 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%3) * time.Millisecond)
	}
	close(done)
	wg.Wait()
	if on, _, _ := dp.OffloadStatus(); on {
		t.Error("the fast path is on after an even number of toggles")
	}
}
