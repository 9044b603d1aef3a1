package ofproto

import (
	"math/rand"
	"reflect"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// TestFragModes checks what the tables see of an IP fragment in each of
// the bridge's fragment modes, as ovs-ofctl(8) documents set-frags:
// normal reads a fragment's ports as 0 (the first one's too), nx-match
// gives the first fragment its ports, drop drops every fragment before
// the tables, and reassemble is refused, leaving the mode as it was.
func TestFragModes(t *testing.T) {
	b := ofBridge(t)
	addFlow(t, b, "priority=100,tcp,tp_dst=80,actions=output:2")
	addFlow(t, b, "priority=90,tcp,tp_dst=0,actions=output:4")
	addFlow(t, b, "priority=50,ip,actions=output:3")
	whole := frameSpec{in: 1, src: 0, dst: 4, nwSrc: 1, tpDst: 80}
	first, later := whole, whole
	first.frag, later.frag = 1, 2
	cases := []struct {
		mode               FragMode
		whole, first, last string
	}{
		{FragNormal, "2", "4", "4"},
		{FragNXMatch, "2", "2", "4"},
		{FragDrop, "2", "drop", "drop"},
		{FragNormal, "2", "4", "4"}, // back again
	}
	for _, tc := range cases {
		if !b.SetFragMode(tc.mode) {
			t.Fatalf("mode %v refused", tc.mode)
		}
		if got := b.FragMode(); got != tc.mode {
			t.Fatalf("mode %v after setting %v", got, tc.mode)
		}
		for _, c := range []struct {
			name string
			s    frameSpec
			want string
		}{{"whole", whole, tc.whole}, {"first fragment", first, tc.first}, {"later fragment", later, tc.last}} {
			_, x := translateSpec(b, c.s)
			if got := datapath.FormatActions(x.Actions, nil); got != c.want {
				t.Errorf("%v: %s: actions %s, want %s", tc.mode, c.name, got, c.want)
			}
			if tc.mode != FragNXMatch && x.Mask.NwFrag&packet.FragAny == 0 {
				t.Errorf("%v: %s: whether it is a fragment is not in the mask", tc.mode, c.name)
			}
		}
	}
	if b.SetFragMode(FragReassemble) {
		t.Error("reassemble accepted")
	}
	if got := b.FragMode(); got != FragNormal {
		t.Errorf("mode %v after a refused reassemble, want normal", got)
	}
}

// TestFragModeInvalidates checks that a change of mode makes the cached
// translations stale: the datapath's generation moves.
func TestFragModeInvalidates(t *testing.T) {
	b := ofBridge(t)
	g := datapath.Generation()
	b.SetFragMode(FragDrop)
	if datapath.Generation() == g {
		t.Error("set-frags drop left the cached translations valid")
	}
	g = datapath.Generation()
	b.SetFragMode(FragDrop)
	if datapath.Generation() != g {
		t.Error("setting the same mode again invalidated the cache")
	}
}

// TestFragMaskProperty is the mask property over fragments in every
// mode: two frames that agree on the mask translate the same.
func TestFragMaskProperty(t *testing.T) {
	for _, mode := range []FragMode{FragNormal, FragDrop, FragNXMatch} {
		b := ofBridge(t)
		b.SetFragMode(mode)
		addFlow(t, b, "priority=100,tcp,tp_dst=80,actions=output:2")
		addFlow(t, b, "priority=90,udp,tp_dst=0,actions=output:4")
		addFlow(t, b, "priority=80,ip,nw_frag=later,actions=output:3")
		addFlow(t, b, "priority=0,actions=NORMAL")
		rng := rand.New(rand.NewSource(int64(mode) + 7))
		for range 5000 {
			sa := randomSpec(rng, 4)
			ka, xa := translateSpec(b, sa)
			sb := sa.mutate(rng)
			kb, xb := translateSpec(b, sb)
			if !agree(&ka, &kb, &xa.Mask) {
				continue
			}
			if !reflect.DeepEqual(xa.Actions, xb.Actions) {
				t.Fatalf("%v: frames agreeing on the mask translate differently:\n%x\n%x\nactions %s\nactions %s", mode,
					sa.bytes(), sb.bytes(), datapath.FormatActions(xa.Actions, nil), datapath.FormatActions(xb.Actions, nil))
			}
		}
	}
}
