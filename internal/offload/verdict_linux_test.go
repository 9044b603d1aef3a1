package offload

import (
	"testing"

	"github.com/cilium/ebpf"
)

// TC return codes (include/uapi/linux/pkt_cls.h), as a test run
// reports them.
const (
	tcActUnspec   = 0xffffffff // -1: the packet goes on
	tcActShot     = 2
	tcActRedirect = 7
)

// dlTypeWord is the key word that holds DlType (bytes 134-135 of the
// key, the top 16 bits of word 16 in native order), and its mask.
const (
	dlTypeWord = 16
	dlTypeMask = uint64(0xffff) << 48
)

func dlTypeVal(t uint16) uint64 { return uint64(t) << 48 }

// TestVerdictExecution runs the socket filter's decision and then the tc
// program on the loopback device: a hit is redirected and counted (flow,
// input port, output port), a flow without outputs drops, a flow of
// another generation is a miss, and a verdict is executed only for its
// own packet.
func TestVerdictExecution(t *testing.T) {
	k := loadForTest(t)
	p, err := k.NewPort(loopbackIfindex, testInPort)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SetMask(0, []uint16{dlTypeWord}, []uint64{dlTypeMask}); err != nil {
		t.Fatal(err)
	}
	const gen = 42
	if err := k.SetGeneration(gen); err != nil {
		t.Fatal(err)
	}
	ipFlow, err := p.AddFlow(0, []uint64{dlTypeVal(0x0800)}, []Op{Output(p)}, gen, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddFlow(0, []uint64{dlTypeVal(0x0806)}, nil, gen, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddFlow(0, []uint64{dlTypeVal(0x0800)}, nil, gen, 0); err == nil {
		t.Error("a second flow of the same match was installed")
	}
	udpFrame := eth(0x0800, ipv4(17, 0, nil, udp()))
	arpFrame := eth(0x0806, arp(1))
	run := func(prog *ebpf.Program, frame []byte) uint32 {
		t.Helper()
		ret, err := prog.Run(&ebpf.RunOptions{Data: frame})
		if err != nil {
			t.Fatalf("test run: %v", err)
		}
		return ret
	}

	if ret, _ := classify(t, k, udpFrame); ret != 0 {
		t.Fatalf("classify of an IPv4 frame: %d, want 0 (a flow)", ret)
	}
	if got := run(k.ingress, udpFrame); got != tcActRedirect {
		t.Errorf("tc of the classified frame returned %#x, want TC_ACT_REDIRECT", got)
	}
	if pk, by, _, ok := p.FlowStats(ipFlow); !ok || pk != 1 || by != uint64(len(udpFrame)) {
		t.Errorf("flow counters: %d packets, %d bytes (ok %v), want 1, %d", pk, by, ok, len(udpFrame))
	}
	if s := p.Stats(); s.RxPackets != 1 || s.TxPackets != 1 {
		t.Errorf("port counters %+v, want one packet in and out", s)
	}

	// A verdict is for its own packet only.
	lost := k.Counters()[CounterLostVerdict]
	classify(t, k, udpFrame)
	other := eth(0x0800, ipv4(17, 0, nil, append(udp(), 'x')))
	if got := run(k.ingress, other); got != tcActUnspec {
		t.Errorf("tc of another frame after a verdict returned %#x, want TC_ACT_UNSPEC", got)
	}
	if k.Counters()[CounterLostVerdict] != lost+1 {
		t.Error("the verdict left for another packet was not counted")
	}
	if got := run(k.ingress, udpFrame); got != tcActUnspec {
		t.Errorf("tc without a fresh verdict returned %#x, want TC_ACT_UNSPEC", got)
	}

	// A flow without outputs drops.
	if ret, _ := classify(t, k, arpFrame); ret != 0 {
		t.Fatalf("classify of an ARP frame: %d, want 0", ret)
	}
	if got := run(k.ingress, arpFrame); got != tcActShot {
		t.Errorf("tc of a drop flow's frame returned %#x, want TC_ACT_SHOT", got)
	}

	// Another generation makes every flow stale: to gvsd.
	stale := k.Counters()[CounterStale]
	if err := k.SetGeneration(gen + 1); err != nil {
		t.Fatal(err)
	}
	if ret, _ := classify(t, k, udpFrame); ret != 1 {
		t.Errorf("classify after a new generation: %d, want 1 (no flow)", ret)
	}
	if k.Counters()[CounterStale] != stale+1 {
		t.Error("the stale flow was not counted")
	}

	// A deleted flow's counters come back with it, and it is gone.
	if pk, _, _, ok := p.DelFlow(ipFlow); !ok || pk != 1 {
		t.Errorf("DelFlow: %d packets (ok %v), want 1", pk, ok)
	}
	if _, _, _, ok := p.FlowStats(ipFlow); ok {
		t.Error("a deleted flow still has counters")
	}
}
