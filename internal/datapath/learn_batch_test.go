package datapath

import (
	"testing"

	"gvs/internal/netdev"
)

type countingLearner struct{ calls int }

func (l *countingLearner) Learn(mac [6]byte, vlan uint16, port uint32) { l.calls++ }

// learnTranslator outputs to port 2, learns the source and counts the
// packet, as NORMAL with a mirror does.
type learnTranslator struct {
	l *countingLearner
	c *Counter
}

func (tr *learnTranslator) Translate(pkt *Packet, x *Xlate) {
	x.Actions = append(x.Actions, Output(2))
	x.Effects = append(x.Effects,
		Effect{Kind: EffectLearn, MAC: pkt.Key.DlSrc, Port: pkt.InPort, Learner: tr.l},
		Effect{Kind: EffectCount, Counter: tr.c})
	x.Mask.InPort = ^uint32(0)
}

// A cached flow learns and counts once a batch, not once a packet (a
// clock read and shared atomic adds per packet before), and the counts
// stay exact.
func TestCachedFlowLearnsAndCountsOncePerBatch(t *testing.T) {
	tr := &learnTranslator{l: &countingLearner{}, c: &Counter{}}
	in, out := netdev.NewMemory("lb1", 64), netdev.NewMemory("lb2", 256)
	defer in.Close()
	defer out.Close()
	dp := New()
	dp.SetConfigForTest(&Config{Ports: map[uint32]*Port{
		1: {No: 1, Name: "lb1", Dev: in, Translator: tr},
		2: {No: 2, Name: "lb2", Dev: out, Translator: tr},
	}})
	th := dp.NewTestThread(1)
	batch := make([][]byte, BatchSize)
	for i := range batch {
		f := make([]byte, 60)
		copy(f, []byte{2, 0, 0, 0, 0, 0xb, 2, 0, 0, 0, 0, 0xa, 0x08, 0x00})
		batch[i] = f
	}
	th.Process(batch)
	// The packet that made the flow learns at once; the batch's hits once.
	if tr.l.calls != 2 {
		t.Errorf("first batch: %d Learn calls for %d packets, want 2", tr.l.calls, BatchSize)
	}
	th.Process(batch)
	if tr.l.calls != 3 {
		t.Errorf("second batch: %d Learn calls in all, want 3", tr.l.calls)
	}
	if p, b := tr.c.Packets.Load(), tr.c.Bytes.Load(); p != 2*BatchSize || b != 2*BatchSize*60 {
		t.Errorf("counted %d packets, %d bytes; want %d, %d", p, b, 2*BatchSize, 2*BatchSize*60)
	}
}
