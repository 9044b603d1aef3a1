package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOpenFlowLearnClone forwards real frames with the actions of OVS's
// tutorials (docs/GUIDE.md, "ovs-ofctl"): the advanced tutorial's MAC
// learning pipeline (learn into table 10, output to the learned port
// through a register, flood otherwise) carries pings both ways and
// leaves one learned flow per host in table 10, which ovs-ofctl prints;
// clone(...) sends a rewritten copy to a third host while the original
// goes on unchanged; note: does nothing but is kept.
func TestOpenFlowLearnClone(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ping", "tcpdump")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "lcbr")
	addInternalPorts(lab, g, "lcbr",
		labPort{name: "lcp1", ns: "lcns1", addrs: []string{"10.79.3.1/24"}},
		labPort{name: "lcp2", ns: "lcns2", addrs: []string{"10.79.3.2/24"}},
		labPort{name: "lcp3", ns: "lcns3", addrs: []string{"10.79.3.3/24"}})
	p3 := strings.TrimSpace(g.MustVsctl("get", "interface", "lcp3", "ofport"))
	ofctl := func(args ...string) string {
		t.Helper()
		out, errOut, err := g.Run("ovs-ofctl", args...)
		if err != nil {
			t.Fatalf("ovs-ofctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	ofctl("del-flows", "lcbr")
	ofctl("add-flow", "lcbr", "table=0,actions=note:67.76.73.6e.6b,learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15]),resubmit(,1)")
	ofctl("add-flow", "lcbr", "table=1,actions=resubmit(,10),resubmit(,2)")
	ofctl("add-flow", "lcbr", "table=2,priority=10,reg0=0,actions=FLOOD")
	ofctl("add-flow", "lcbr", "table=2,priority=0,actions=output:NXM_NX_REG0[0..15]")
	lab.pingOK("lcns1", "10.79.3.2")
	lab.pingOK("lcns2", "10.79.3.1")
	learned := ofctl("dump-flows", "lcbr", "table=10")
	for _, ns := range []string{"lcns1", "lcns2"} {
		dev := "lcp" + ns[len(ns)-1:]
		want := "dl_dst=" + lab.mac(ns, dev) + " actions=load:"
		if !strings.Contains(learned, want) {
			t.Errorf("table 10 did not learn %s (%s):\n%s", ns, want, learned)
		}
	}
	if dump := ofctl("dump-flows", "lcbr", "table=0"); !strings.Contains(dump, "note:67.76.73.6e.6b") {
		t.Errorf("the note is not printed back:\n%s", dump)
	}

	// clone: a copy, with another destination address, to port 3; the
	// original still reaches its host unchanged.
	ofctl("add-flow", "lcbr", "table=0,priority=40000,icmp,actions=clone(mod_dl_dst:02:00:00:00:00:77,output:"+p3+"),resubmit(,1)")
	capture := lab.capture("lcns3", "lcp3", "icmp")
	lab.pingOK("lcns1", "10.79.3.2")
	if !capture.waitFor(5*time.Second, "02:00:00:00:00:77") {
		t.Fatalf("no clone copy reached lcp3:\n%s", strings.Join(capture.stop(), "\n"))
	}
	capture.stop()
}

// TestOpenFlowControllerActionMonitor: `ovs-ofctl monitor` (a service
// connection that sets a miss_send_len) sees the packet-ins of a
// controller action with their reason, while the rule's other actions
// still forward.
func TestOpenFlowControllerActionMonitor(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ping")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "cmbr")
	addInternalPorts(lab, g, "cmbr",
		labPort{name: "cmp1", ns: "cmns1", addrs: []string{"10.79.4.1/24"}},
		labPort{name: "cmp2", ns: "cmns2", addrs: []string{"10.79.4.2/24"}})
	if out, errOut, err := g.Run("ovs-ofctl", "add-flow", "cmbr", "priority=100,icmp,actions=controller(max_len=64),NORMAL"); err != nil {
		t.Fatalf("add-flow: %v\n%s%s", err, out, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mon := exec.CommandContext(ctx, "ovs-ofctl", "monitor", "unix:"+g.Rundir+"/cmbr.mgmt", "65535")
	// ovs-ofctl monitor makes its own control socket in OVS_RUNDIR:
	// gvsd's run directory, never a system one that may not exist.
	mon.Env = append(os.Environ(), "OVS_RUNDIR="+g.Rundir)
	out := &lockedBuffer{}
	mon.Stdout, mon.Stderr = out, out
	if err := mon.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = mon.Wait() }()
	time.Sleep(500 * time.Millisecond) // monitor has set its miss_send_len
	lab.pingOK("cmns1", "10.79.4.2")
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "OFPT_PACKET_IN") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	text := out.String()
	if !strings.Contains(text, "OFPT_PACKET_IN") || !strings.Contains(text, "(via action)") || !strings.Contains(text, "data_len=64") {
		t.Fatalf("ovs-ofctl monitor saw no packet-in of the controller action:\n%s", text)
	}
}
