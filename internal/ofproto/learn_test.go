package ofproto

import (
	"fmt"
	"testing"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/flow"
)

// runEffects applies x's learn effects as the datapath does.
func runEffects(x *datapath.Xlate) int {
	n := 0
	for _, e := range x.Effects {
		if e.Kind == datapath.EffectRun {
			e.Runner.Run(time.Now())
			n++
		}
	}
	return n
}

// TestLearnMACLearning runs the MAC learning pipeline of OVS's advanced
// tutorial: a frame from port 1 teaches table 10 where its source lives
// (the flow ovs-ofctl would print), which the datapath does as a side
// effect; a frame to that address then leaves by port 1 alone, and an
// unknown destination floods. Learning the same flow again changes
// nothing (no stale cache), a new one does.
func TestLearnMACLearning(t *testing.T) {
	b := ofBridge(t)
	for _, f := range []string{
		"table=0,actions=learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]),resubmit(,1)",
		"table=1,actions=resubmit(,10),resubmit(,2)",
		"table=2,reg0=0,actions=FLOOD",
		"table=2,priority=0,actions=output:NXM_NX_REG0[0..15]",
	} {
		addFlow(t, b, f)
	}
	from1 := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}
	_, x := translateSpec(b, from1)
	if got := datapath.FormatActions(x.Actions, nil); got != "2,3,4,5" {
		t.Fatalf("unknown destination: %s, want a flood", got)
	}
	if n := runEffects(x); n != 1 {
		t.Fatalf("%d learn effects, want 1", n)
	}
	dump := b.Tables.Dump(Selector{Table: 10})
	if len(dump) != 1 {
		t.Fatalf("table 10 has %d flows after learning", len(dump))
	}
	m := propMACs[from1.src]
	mac := fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
	want := "vlan_tci=0x0000/0x0fff,dl_dst=" + mac + " actions=load:0x1->NXM_NX_REG0[0..15]"
	if got := dump[0].Flow.Match.String() + " actions=" + flow.FormatActions(dump[0].Flow.Actions, flow.FormatOptions{}); got != want {
		t.Fatalf("learned %q, want %q", got, want)
	}
	gen := b.Tables.Generation()
	_, x = translateSpec(b, from1)
	runEffects(x)
	if b.Tables.Generation() != gen {
		t.Fatal("learning the same flow again changed the tables")
	}
	to1 := frameSpec{in: 3, src: 4, dst: 0, ether: 0, nwSrc: 1, tpDst: 80}
	_, x = translateSpec(b, to1)
	if got := datapath.FormatActions(x.Actions, nil); got != "1" {
		t.Fatalf("to the learned address: %s, want 1", got)
	}
	runEffects(x)
	if b.Tables.Generation() == gen {
		t.Fatal("learning a new address did not change the tables")
	}
}

// TestLearnMaskHoldsSources checks that the fields learn reads join the
// cache mask: two frames from different sources must not share a cached
// translation, since they learn different flows.
func TestLearnMaskHoldsSources(t *testing.T) {
	b := ofBridge(t)
	addFlow(t, b, "actions=learn(table=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),output:2")
	_, x := translateSpec(b, frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80})
	if x.Mask.DlSrc != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
		t.Fatalf("mask's eth_src %x: learn's source is not in the mask", x.Mask.DlSrc)
	}
}
