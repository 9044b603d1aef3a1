//go:build linux

package netdev

import (
	"encoding/hex"
	"net"
	"testing"
	"time"
)

// In a poll group with a spin time, a reader that finds its ring empty
// watches it before it sleeps in the kernel: frames sent 200 µs apart
// are taken while it spins (it sleeps only if the machine holds a
// frame back past the millisecond it spins); with the time 0 it never
// spins.
func TestSystemBusyPollTakesFramesWhileSpinning(t *testing.T) {
	s := newSystemSetup(t)
	g := NewPollGroup()
	s.port.JoinPollGroup(g)
	got := make(chan int, 1024)
	go func() {
		bufs, sizes := [][]byte{make([]byte, MaxFrame)}, []int{0}
		for {
			n, err := s.port.ReadBatch(bufs, sizes)
			if err != nil {
				close(got)
				return
			}
			got <- n
		}
	}()
	t.Cleanup(func() {
		s.port.Close()
		for range got {
		}
	})
	peer, err := interfaceIn(t, s.ns, s.peer)
	if err != nil {
		t.Fatal(err)
	}
	frame := arpPacket(1, peer.HardwareAddr, net.IPv4(198, 51, 100, 1), net.HardwareAddr{0, 0, 0, 0, 0, 0}, net.IPv4(198, 51, 100, 9))
	// The sender is a process of its own, pacing by the clock (a sleep
	// this short lasts a millisecond or more here), so that neither Go's
	// scheduler nor the reader's spinning bunches its frames.
	paced := func(n int) {
		t.Helper()
		script := `import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
f = bytes.fromhex(sys.argv[2])
for _ in range(int(sys.argv[3])):
    s.send(f)
    t = time.perf_counter()
    while time.perf_counter() - t < 0.0002:
        pass
`
		if out, err := runErr("ip", "netns", "exec", s.ns, "python3", "-c", script, s.peer, hex.EncodeToString(frame), itoa(n)); err != nil {
			t.Fatalf("paced sender: %v\n%s", err, out)
		}
		for i := 0; i < n; {
			select {
			case k := <-got:
				i += k
			case <-time.After(5 * time.Second):
				t.Fatalf("%d of %d frames read", i, n)
			}
		}
	}
	const n = 100
	hits, sleeps := busyPollHit.Total(), busyPollSleep.Total()
	paced(n)
	if busyPollHit.Total() != hits || busyPollSleep.Total() != sleeps {
		t.Fatal("the reader spun in a group whose spin time is 0")
	}
	g.SetSpin(MaxBusyPoll)
	paced(n)
	hit, slept := busyPollHit.Total()-hits, busyPollSleep.Total()-sleeps
	t.Logf("%d of %d frames taken while spinning, %d spins ended in sleep", hit, n, slept)
	// A frame may be in the ring already when the reader is back from
	// the last one (and so not counted: a slow reader, under the race
	// detector, often is), but few may find it asleep.
	if hit+slept == 0 || slept > n/4 {
		t.Fatalf("%d frames taken while spinning and %d sleeps, want a spin and at most %d sleeps", hit, slept, n/4)
	}
}
