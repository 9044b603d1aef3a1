package e2e

import (
	"strings"
	"testing"
	"time"
)

// More connection tracking through the real clients (GUIDE.md,
// "Connection tracking"): S7 over IPv6, ct_label set at commit and
// matched later, ct_clear and ct(force). The IPv6 test uses S7's own
// names; the others a lab whose names start with "gvcx".

// gvc6Flows are S7's five flows for TCP over IPv6, and neighbour
// discovery let through.
var gvc6Flows = []string{
	"table=0, priority=50, ct_state=-trk, tcp6, in_port=veth_l0, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+new, tcp6, in_port=veth_l0, actions=ct(commit),veth_r0",
	"table=0, priority=50, ct_state=-trk, tcp6, in_port=veth_r0, actions=ct(table=0)",
	"table=0, priority=50, ct_state=+trk+est, tcp6, in_port=veth_r0, actions=veth_l0",
	"table=0, priority=50, ct_state=+trk+est, tcp6, in_port=veth_l0, actions=veth_r0",
	"table=0, priority=10, icmp6, actions=NORMAL",
}

// TestConntrackS7IPv6: S7's flows written for tcp6, the default NORMAL
// flow removed: a real TCP connection over IPv6 opened from the left
// crosses and is tracked as opened from the left; one opened from the
// right does not cross.
func TestConntrackS7IPv6(t *testing.T) {
	requireTool(t, "nc")
	lab, g := gvofS7Setup(t)
	gvofMust(t, g, nil, "del-flows", "--strict", "br0", "priority=0")
	for _, f := range gvc6Flows {
		gvofMust(t, g, nil, "add-flow", "br0", f)
	}
	for _, h := range []struct{ ns, dev, addr, other string }{
		{"left", "veth_l1", "fd00:192::2/64", "fd00:10::/64"},
		{"right", "veth_r1", "fd00:10::2/64", "fd00:192::/64"},
	} {
		lab.mustExec(h.ns, "ip", "link", "set", "lo", "up")
		lab.mustExec(h.ns, "ip", "link", "set", h.dev, "up")
		lab.mustExec(h.ns, "ip", "-6", "addr", "add", h.addr, "dev", h.dev, "nodad")
		lab.mustExec(h.ns, "ip", "-6", "route", "add", h.other, "dev", h.dev)
	}
	for _, dev := range []string{"veth_l0", "veth_r0"} {
		lab.must("ip", "link", "set", "dev", dev, "up")
	}
	if out, err := gvctNC("right", "fd00:10::2", "left", "fd00:10::2", 5101, "hello over IPv6"); err != nil || out != "hello over IPv6" {
		t.Fatalf("TCP over IPv6 from the left through S7's flows: got %q, %v", out, err)
	}
	if got := gvctConntrack(t, g, "dport=5101"); len(got) != 1 ||
		!strings.HasPrefix(got[0], "tcp,orig=(src=fd00:192::2,dst=fd00:10::2,") {
		t.Errorf("the left's IPv6 connection is not tracked as opened from the left: %q", got)
	}
	if out, err := gvctNC("left", "fd00:192::2", "right", "fd00:192::2", 5102, "hello from the right"); err == nil && out != "" {
		t.Fatalf("TCP over IPv6 opened from the right crossed S7's flows: got %q", out)
	}
	if got := gvctConntrack(t, g, "dport=5102"); len(got) != 0 {
		t.Errorf("the right's refused connection was committed: %q", got)
	}
}

// gvcxLab is a bridge gvcxbr between namespaces gvcxA (10.43.0.1, port
// gvcxa0) and gvcxB (10.43.0.2, port gvcxb0), ARP switched by NORMAL and
// nothing else until the test adds flows.
func gvcxLab(t *testing.T) (*netLab, *Gvsd) {
	t.Helper()
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "nc")
	lab := newNetLab(t)
	g := StartGvsd(t)
	lab.netns("gvcxA")
	lab.netns("gvcxB")
	lab.veth("gvcxa0", "gvcxa1", "gvcxA", "10.43.0.1/24")
	lab.veth("gvcxb0", "gvcxb1", "gvcxB", "10.43.0.2/24")
	g.MustVsctl("add-br", "gvcxbr", "--", "add-port", "gvcxbr", "gvcxa0", "--", "add-port", "gvcxbr", "gvcxb0")
	gvofMust(t, g, nil, "del-flows", "gvcxbr")
	gvofMust(t, g, nil, "add-flow", "gvcxbr", "priority=10,arp,actions=NORMAL")
	return lab, g
}

// TestConntrackLabel: a ct_label set at commit is stored with the
// connection (dump-conntrack prints it) and matched by later packets of
// both directions: the only flows that forward established packets
// require it, and a real TCP connection works.
func TestConntrackLabel(t *testing.T) {
	_, g := gvcxLab(t)
	for _, f := range []string{
		"table=0,priority=50,tcp,ct_state=-trk,actions=ct(table=1)",
		"table=1,priority=50,tcp,ct_state=+trk+new,in_port=gvcxa0,actions=ct(commit,exec(set_field:0xabcd0000000000000000000000001234->ct_label)),gvcxb0",
		"table=1,priority=50,tcp,ct_state=+trk+est,ct_label=0xabcd0000000000000000000000001234,in_port=gvcxa0,actions=gvcxb0",
		"table=1,priority=50,tcp,ct_state=+trk+est,ct_label=0xabcd0000000000000000000000001234,in_port=gvcxb0,actions=gvcxa0",
	} {
		gvofMust(t, g, nil, "add-flow", "gvcxbr", f)
	}
	if out, err := gvctNC("gvcxB", "10.43.0.2", "gvcxA", "10.43.0.2", 5201, "labelled"); err != nil || out != "labelled" {
		t.Fatalf("TCP through flows that match the label: got %q, %v", out, err)
	}
	if got := gvctConntrack(t, g, "dport=5201"); len(got) != 1 || !strings.Contains(got[0], ",labels=0xabcd0000000000000000000000001234") {
		t.Errorf("the connection's label: %q", got)
	}
	// The same without the label: established packets find no flow.
	gvofMust(t, g, nil, "mod-flows", "gvcxbr",
		"table=1,tcp,ct_state=+trk+new,in_port=gvcxa0,actions=ct(commit),gvcxb0")
	if out, err := gvctNC("gvcxB", "10.43.0.2", "gvcxA", "10.43.0.2", 5202, "unlabelled"); err == nil && out == "unlabelled" {
		t.Fatal("a connection committed without the label crossed flows that require it")
	}
}

// TestConntrackClearAndForce: ct_clear makes a tracked packet untracked
// again (the table after it drops +trk packets and commits -trk ones);
// a reply that meets ct(commit,force) ends its connection and commits a
// new one in its own direction.
func TestConntrackClearAndForce(t *testing.T) {
	lab, g := gvcxLab(t)
	for _, f := range []string{
		"table=0,priority=50,udp,ct_state=-trk,actions=ct(table=1,zone=7)",
		"table=1,priority=50,udp,actions=ct_clear,resubmit(,2)",
		"table=2,priority=50,udp,ct_state=+trk,actions=drop",
		"table=2,priority=50,udp,ct_state=-trk,in_port=gvcxa0,actions=ct(commit,zone=7),NORMAL",
		"table=2,priority=50,udp,ct_state=-trk,in_port=gvcxb0,actions=ct(commit,force,zone=7),NORMAL",
	} {
		gvofMust(t, g, nil, "add-flow", "gvcxbr", f)
	}
	capB := lab.capture("gvcxB", "gvcxb1", "udp")
	lab.mustExec("gvcxA", "sh", "-c", "printf a | nc -u -p 4000 -w 1 -q 0 10.43.0.2 4001 || true")
	if !capB.waitFor(5*time.Second, "10.43.0.1.4000 > 10.43.0.2.4001") {
		t.Fatal("after ct_clear the packet (untracked again) did not cross: a +trk packet is dropped")
	}
	want := "udp,orig=(src=10.43.0.1,dst=10.43.0.2,sport=4000,dport=4001)"
	if got := gvctConntrack(t, g, "dport=400", "zone=7"); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Fatalf("zone 7 after A's datagram: %q, want %s...", got, want)
	}
	capA := lab.capture("gvcxA", "gvcxa1", "udp")
	lab.mustExec("gvcxB", "sh", "-c", "printf b | nc -u -p 4001 -w 1 -q 0 10.43.0.1 4000 || true")
	if !capA.waitFor(5*time.Second, "10.43.0.2.4001 > 10.43.0.1.4000") {
		t.Fatal("B's reply did not cross")
	}
	want = "udp,orig=(src=10.43.0.2,dst=10.43.0.1,sport=4001,dport=4000)"
	if got := gvctConntrack(t, g, "dport=400", "zone=7"); len(got) != 1 || !strings.HasPrefix(got[0], want) {
		t.Errorf("zone 7 after B's reply met ct(force): %q, want the connection in B's direction %s...", got, want)
	}
}
