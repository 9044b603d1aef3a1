package ofproto

import (
	"fmt"
	"testing"
	"time"
)

// TestPatchFanOutBounded: patch ports between two bridges make a loop
// that each flood crosses again through every other patch port, up to
// maxPatchDepth bridges deep. A database client can make hundreds of
// pairs; one broadcast's translation must stay short (a guard: it
// passes on the code it was written for, 200 pairs in about 40 ms).
func TestPatchFanOutBounded(t *testing.T) {
	const pairs = 200
	a, b := NewBridge("pfa", 64, 300), NewBridge("pfb", 64, 300)
	ca := &Config{Ports: map[uint32]*Port{}}
	cb := &Config{Ports: map[uint32]*Port{}}
	in := &Port{Name: "in", OFPort: 1, DPPort: 1, VLAN: trunks(true)}
	ca.Ports[1] = in
	ca.Flood = append(ca.Flood, in)
	for i := range pairs {
		pa := &Port{Name: fmt.Sprintf("pa%d", i), OFPort: uint32(2 + i), DPPort: uint32(100 + i), VLAN: trunks(true)}
		pb := &Port{Name: fmt.Sprintf("pb%d", i), OFPort: uint32(1 + i), DPPort: uint32(200 + i), VLAN: trunks(true)}
		pa.PeerBridge, pa.PeerDPPort = b, pb.DPPort
		pb.PeerBridge, pb.PeerDPPort = a, pa.DPPort
		ca.Ports[pa.DPPort], cb.Ports[pb.DPPort] = pa, pb
		ca.Flood = append(ca.Flood, pa)
		cb.Flood = append(cb.Flood, pb)
	}
	a.SetConfig(ca)
	b.SetConfig(cb)
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, x := translateSpec(a, frameSpec{in: 1, src: 0, dst: 4, ether: 3})
		t.Logf("%d actions, %d effects", len(x.Actions), len(x.Effects))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("one broadcast's translation across the patch pairs still running after 10 s")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("one broadcast's translation across the patch pairs took %v", took)
	}
}
