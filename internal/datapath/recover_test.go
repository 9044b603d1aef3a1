package datapath_test

import (
	"bytes"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
)

// faultyPort is a memory port whose ReadBatch or WriteBatch panics as
// many times as asked, and whose ReadBatch takes a while to return after
// Close, as a device that is slow to stop.
type faultyPort struct {
	*netdev.Memory
	readPanics  atomic.Int32
	writePanics atomic.Int32
	slowClose   time.Duration
}

func (f *faultyPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	if f.readPanics.Add(-1) >= 0 {
		panic("driver bug in ReadBatch")
	}
	n, err := f.Memory.ReadBatch(bufs, sizes)
	if err != nil {
		time.Sleep(f.slowClose)
	}
	return n, err
}

func (f *faultyPort) WriteBatch(frames [][]byte) error {
	if f.writePanics.Add(-1) >= 0 {
		panic("driver bug in WriteBatch")
	}
	return f.Memory.WriteBatch(frames)
}

func (f *faultyPort) Transmit(b *netdev.Batch) (netdev.TxResult, error) {
	if f.writePanics.Add(-1) >= 0 {
		panic("driver bug in Transmit")
	}
	return f.Memory.Transmit(b)
}

// runningSwitch is a bridge of access ports on VLAN 10 over devs, with
// port threads running.
func runningSwitch(t *testing.T, devs ...netdev.Netdev) *datapath.Datapath {
	t.Helper()
	dp, br := datapath.New(), ofproto.NewBridge("br", 1024, 300)
	bcfg := &ofproto.Config{Ports: map[uint32]*ofproto.Port{}}
	dcfg := &datapath.Config{Ports: map[uint32]*datapath.Port{}}
	for i, dev := range devs {
		no := uint32(i + 1)
		p := &ofproto.Port{Name: dev.Name(), OFPort: no, DPPort: no, VLAN: access(10)}
		bcfg.Ports[no] = p
		bcfg.Flood = append(bcfg.Flood, p)
		dcfg.Ports[no] = &datapath.Port{No: no, Name: p.Name, Dev: dev, Translator: br}
	}
	br.SetConfig(bcfg)
	dp.SetConfig(dcfg)
	t.Cleanup(func() {
		for _, d := range devs {
			d.Close()
		}
		dp.Close()
	})
	return dp
}

func panicCount() uint64 {
	c, _ := coverage.Default.Lookup("datapath_thread_panic")
	if c == nil {
		return 0
	}
	return c.Total()
}

// A port thread whose device panics is restarted: the panic is counted
// and the port forwards afterwards, in both directions.
func TestPortThreadSurvivesDevicePanic(t *testing.T) {
	before := panicCount()
	in := &faultyPort{Memory: netdev.NewMemory("rp1", 64)}
	out := &faultyPort{Memory: netdev.NewMemory("rp2", 64)}
	in.readPanics.Store(3)
	out.writePanics.Store(1)
	runningSwitch(t, in, out)
	want := frame(bcast, macA, -1, 46)
	// The first frame's send panics in out's WriteBatch; later ones pass.
	deadline := time.Now().Add(5 * time.Second)
	for {
		in.Inject(want)
		if got, ok := out.Next(50 * time.Millisecond); ok {
			if !bytes.Equal(got, want) {
				t.Fatalf("port 2 got %x", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no forwarding after the device panicked")
		}
	}
	if got := panicCount() - before; got != 4 {
		t.Fatalf("datapath_thread_panic rose by %d, want 4", got)
	}
	// The other way too: port 2's thread was never hurt, and port 1's
	// transmit lock was not left held by the panic in port 2's write.
	out.Inject(frame(macA, macB, -1, 46))
	if _, ok := in.Next(2 * time.Second); !ok {
		t.Fatal("no forwarding from port 2 to port 1")
	}
}

// threadGoroutines counts goroutines running the datapath's port threads
// or copy-queue senders.
func threadGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "datapath.(*portThread).run") || strings.Contains(g, "datapath.(*copyQueue).run") {
			n++
		}
	}
	return n
}

// Close returns only once every port thread and copy sender has ended,
// even if a device takes a while to let its reader go.
func TestCloseWaitsForThreads(t *testing.T) {
	// Threads of earlier tests end after their ports closed: count from
	// once they have.
	base := threadGoroutines()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		n := threadGoroutines()
		if n == base {
			break
		}
		base = n
	}
	devs := [3]netdev.Netdev{}
	for i := range devs {
		devs[i] = &faultyPort{Memory: netdev.NewMemory("cw"+string(rune('1'+i)), 64), slowClose: 100 * time.Millisecond}
	}
	dp, _ := mirrorSwitchOf(t, devs, 0) // port 3: mirror output with a copy queue
	dp.SetConfig(dp.Config())
	devs[0].(*faultyPort).Inject(frame(bcast, macA, -1, 46))
	if _, ok := devs[2].(*faultyPort).Next(2 * time.Second); !ok {
		t.Fatal("mirror copy not delivered")
	}
	// Goroutines start asynchronously: give them a moment to show up.
	for deadline := time.Now().Add(2 * time.Second); threadGoroutines()-base != 4 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := threadGoroutines() - base; n != 4 {
		t.Fatalf("%d datapath goroutines running, want 3 port threads and a copy sender", n)
	}
	for _, d := range devs {
		d.Close()
	}
	dp.Close()
	if n := threadGoroutines() - base; n != 0 {
		t.Fatalf("%d datapath goroutines still running after Close", n)
	}
}
