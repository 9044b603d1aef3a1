package datapath_test

import (
	"strings"
	"testing"
	"time"

	"gvs/internal/netdev"
)

// spinPort is a memory port that records the poll group it joins.
type spinPort struct {
	*netdev.Memory
	g *netdev.PollGroup
}

func (p *spinPort) JoinPollGroup(g *netdev.PollGroup) { p.g = g }

// SetBusyPoll refuses a time out of range, naming the range; ports that
// can spin join the datapath's one poll group as their threads start,
// and the group spins for the time set.
func TestSetBusyPoll(t *testing.T) {
	sp := &spinPort{Memory: netdev.NewMemory("bp1", 16)}
	dp := runningSwitch(t, sp, netdev.NewMemory("bp2", 16))
	if sp.g == nil {
		t.Fatal("a port that can spin did not join the poll group")
	}
	if dp.BusyPoll() != 0 || sp.g.Spin() != 0 {
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
	if got := sp.g.Spin(); got != 50*time.Microsecond || dp.BusyPoll() != got {
		t.Fatalf("group spins %v, want 50µs", got)
	}
}
