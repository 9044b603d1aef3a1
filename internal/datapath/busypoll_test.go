package datapath_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
)

// spinPort is a memory port that records the busy-poll time it is given.
type spinPort struct {
	*netdev.Memory
	d atomic.Int64
}

func (p *spinPort) SetBusyPoll(d time.Duration) { p.d.Store(int64(d)) }

// SetBusyPoll refuses a time out of range, naming the range, and passes
// an accepted one to every port that can spin: those running and those
// added later.
func TestSetBusyPoll(t *testing.T) {
	first := &spinPort{Memory: netdev.NewMemory("bp1", 16)}
	dp := runningSwitch(t, first, netdev.NewMemory("bp2", 16))
	if dp.BusyPoll() != 0 {
		t.Fatalf("default busy-poll time %v, want 0", dp.BusyPoll())
	}
	for _, bad := range []time.Duration{-time.Microsecond, netdev.MaxBusyPoll + time.Nanosecond, time.Hour} {
		if err := dp.SetBusyPoll(bad); err == nil || !strings.Contains(err.Error(), "must be 0 to 1ms") {
			t.Errorf("SetBusyPoll(%v): err = %v, want a range error", bad, err)
		}
	}
	if err := dp.SetBusyPoll(50 * time.Microsecond); err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(first.d.Load()); got != 50*time.Microsecond {
		t.Fatalf("running port got %v, want 50µs", got)
	}
	// A port added afterwards starts with the time set.
	later := &spinPort{Memory: netdev.NewMemory("bp3", 16)}
	cfg := dp.Config()
	ports := map[uint32]*datapath.Port{}
	for no, p := range cfg.Ports {
		ports[no] = p
	}
	ports[3] = &datapath.Port{No: 3, Name: later.Name(), Dev: later, Translator: ports[1].Translator}
	dp.SetConfig(&datapath.Config{Ports: ports})
	t.Cleanup(func() { later.Close() })
	if got := time.Duration(later.d.Load()); got != 50*time.Microsecond {
		t.Fatalf("added port got %v, want 50µs", got)
	}
	if err := dp.SetBusyPoll(0); err != nil {
		t.Fatal(err)
	}
	if first.d.Load() != 0 || later.d.Load() != 0 {
		t.Fatal("busy-poll not turned off on every port")
	}
}
