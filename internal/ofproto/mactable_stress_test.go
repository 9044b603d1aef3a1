package ofproto

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// collidingMACs returns n addresses whose keys on VLAN 1 share their home
// slot in any table of up to 128 slots and the top byte of their hash:
// the worst case for a table that checks a key against a few bits of its
// hash, and the most slot reuse a small table can get.
func collidingMACs(n int) [][6]byte {
	var out [][6]byte
	for c := uint32(0); len(out) < n; c++ {
		m := [6]byte{2, 0x42, byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)}
		h := hashKey(macKey(m, 1))
		if h>>56 == 0 && h&127 == 0 {
			out = append(out, m)
		}
	}
	return out
}

// stressPortsPerMAC is how many ports each address of the stress test is
// learned on: address i only ever on ports (i+1)*8 .. (i+1)*8+7, so port
// 0 (a cleared entry) is nobody's either.
const stressPortsPerMAC = 8

func stressPort(i int, r *rand.Rand) uint32 {
	return uint32((i+1)*stressPortsPerMAC + r.IntN(stressPortsPerMAC))
}

// TestMACTableConcurrentNeverWrongPort hammers a small table from several
// writers that keep reusing the same slots for other addresses (more
// addresses than a probe sequence holds, all on one home slot, and a
// churner that keeps expiring and flushing everything), while readers
// check that any port the table returns for an address is one that
// address was really learned on. A torn read or a race between writers
// may cost a miss (a flood), never another address's port.
func TestMACTableConcurrentNeverWrongPort(t *testing.T) {
	macs := collidingMACs(24)
	d := 2 * time.Second
	if testing.Short() {
		d = 300 * time.Millisecond
	}
	// More threads than cores: the kernel then preempts writers between
	// their stores, which is when torn entries are there to be seen.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4 * runtime.NumCPU()))
	tb := NewMACTable(48, 300)
	var stop atomic.Bool
	var wrong, hits, lookups atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for !stop.Load() {
				i := r.IntN(len(macs))
				tb.Learn(macs[i], 1, stressPort(i, r))
			}
		}()
	}
	for rd := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 2))
			for !stop.Load() {
				i := r.IntN(len(macs))
				lookups.Add(1)
				p, ok := tb.Lookup(macs[i], 1)
				if !ok {
					continue
				}
				hits.Add(1)
				if owner := int(p)/stressPortsPerMAC - 1; owner != i && wrong.Add(1) == 1 {
					t.Errorf("address %d found on port %d, which only address %d was learned on", i, p, owner)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(3, 3))
		for n := 0; !stop.Load(); n++ {
			// Everything expires, so learning reuses slots; then
			// entries live again so that lookups hit. Ports go away
			// and the table is flushed, as the reconciler does.
			tb.aging.Store(-1)
			runtime.Gosched()
			tb.aging.Store(300)
			runtime.Gosched()
			i := r.IntN(len(macs))
			tb.FlushPort(stressPort(i, r))
			if n%2 == 0 {
				tb.Flush()
			}
		}
	}()
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d lookups, %d hits, %d wrong ports", lookups.Load(), hits.Load(), wrong.Load())
	if hits.Load() == 0 {
		t.Fatal("no lookup ever hit: the test exercised nothing")
	}
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d lookups returned another address's port", n)
	}
}
