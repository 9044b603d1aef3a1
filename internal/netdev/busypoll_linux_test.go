//go:build linux

package netdev

import (
	"net"
	"strings"
	"testing"
	"time"
)

// SetBusyPoll forces its time into 0 .. MaxBusyPoll.
func TestSystemSetBusyPollClamps(t *testing.T) {
	var p afpacketPort
	for _, c := range []struct{ in, want time.Duration }{
		{-time.Second, 0}, {0, 0}, {30 * time.Microsecond, 30 * time.Microsecond},
		{MaxBusyPoll, MaxBusyPoll}, {time.Hour, MaxBusyPoll},
	} {
		p.SetBusyPoll(c.in)
		if got := time.Duration(p.busyPoll.Load()); got != c.want {
			t.Errorf("SetBusyPoll(%v): %v, want %v", c.in, got, c.want)
		}
	}
}

// With a busy-poll time, a reader that finds the ring empty watches it
// before it sleeps, and takes the next echo request of a flood ping (sent
// as soon as the previous reply came back) while it spins; without one
// it never spins.
func TestSystemBusyPollTakesFramesWhileSpinning(t *testing.T) {
	s := newSystemSetup(t)
	startFakeHost(t, s.port, macB, net.IPv4(198, 51, 100, 2))
	flood := func() {
		t.Helper()
		out, err := runErr("ip", "netns", "exec", s.ns, "ping", "-n", "-f", "-c", "200", "-W", "2", "198.51.100.2")
		if err != nil || !strings.Contains(out, "200 received") {
			t.Fatalf("flood ping: %v\n%s", err, out)
		}
		if i := strings.Index(out, "rtt "); i >= 0 {
			t.Log(strings.TrimSpace(out[i:]))
		}
	}
	hits, sleeps := busyPollHit.Total(), busyPollSleep.Total()
	flood()
	if busyPollHit.Total() != hits || busyPollSleep.Total() != sleeps {
		t.Fatal("the reader spun with no busy-poll time set")
	}
	s.port.SetBusyPoll(MaxBusyPoll)
	flood()
	// Most requests come while the reader spins; a loaded machine may
	// delay some past the spin.
	if got := busyPollHit.Total() - hits; got < 100 {
		t.Fatalf("%d frames taken while spinning of 200 requests, want most", got)
	}
	t.Logf("%d frames taken while spinning, %d spins ended in sleep", busyPollHit.Total()-hits, busyPollSleep.Total()-sleeps)
}
