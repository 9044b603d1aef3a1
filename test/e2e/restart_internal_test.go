package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestartKeepsInternalPorts is S0's restart requirement (docs/GUIDE.md,
// "The test structure"): internal ports moved into namespaces, with
// addresses, survive a crash of gvsd (kill -9), and after a restart the
// same pings work again without any ovs-vsctl command, through the same
// devices. Deleting the bridge then removes them from the namespaces they
// live in. Every name starts with "gvrs".
func TestRestartKeepsInternalPorts(t *testing.T) {
	lab := newNetLab(t)
	const br, p1, p2, ns1, ns2 = "gvrsbr", "gvrsp1", "gvrsp2", "gvrs-ns1", "gvrs-ns2"
	devs := []string{br, p1, p2}
	// Internal ports are persistent TAP devices: a leftover of a crashed
	// run would be re-attached instead of created, so remove it first,
	// and remove ours at the end even if the test fails. This cleanup is
	// registered before gvsd starts, so it runs after gvsd has stopped.
	deleteRootLinks(lab, devs...)
	t.Cleanup(func() { deleteRootLinks(lab, devs...) })
	g := StartGvsd(t)

	g.MustVsctl("add-br", br)
	addInternalPorts(lab, g, br,
		labPort{p1, ns1, nil, []string{"192.168.77.1/24"}},
		labPort{p2, ns2, nil, []string{"192.168.77.2/24"}},
	)
	lab.pingOK(ns1, "192.168.77.2")
	mac1, mac2 := lab.mac(ns1, p1), lab.mac(ns2, p2)

	g.Kill9()
	for _, d := range []struct{ ns, dev, addr string }{{ns1, p1, "192.168.77.1/24"}, {ns2, p2, "192.168.77.2/24"}} {
		out, err := lab.exec(d.ns, "ip", "-4", "addr", "show", "dev", d.dev)
		if err != nil || !strings.Contains(out, d.addr) {
			t.Fatalf("after kill -9, %s lost %s or its address %s: %v\n%s", d.ns, d.dev, d.addr, err, out)
		}
	}
	if !labLinkExists(br) {
		t.Fatalf("after kill -9, the bridge's own port %s is gone", br)
	}
	lab.pingFails(ns1, "192.168.77.2") // the switch is the only path

	g.Start()
	if !lab.pingEventually(ns1, "192.168.77.2", 15*time.Second) {
		t.Fatalf("no ping from %s to 192.168.77.2 within 15s of the restart; ovs-vsctl show:\n%s", ns1, g.MustVsctl("show"))
	}
	lab.pingOK(ns2, "192.168.77.1")
	if got1, got2 := lab.mac(ns1, p1), lab.mac(ns2, p2); got1 != mac1 || got2 != mac2 {
		t.Errorf("MACs after the restart %s, %s; before %s, %s: not the same devices", got1, got2, mac1, mac2)
	}
	for _, dev := range []string{p1, p2} {
		if labLinkExists(dev) {
			t.Errorf("the restart made a new %s in the root namespace instead of re-attaching", dev)
		}
		if e := strings.TrimSpace(g.MustVsctl("get", "interface", dev, "error")); e != "[]" {
			t.Errorf("Interface %s error after the restart: %s", dev, e)
		}
	}

	g.MustVsctl("del-br", br)
	waitGone(t, lab, ns1, p1)
	waitGone(t, lab, ns2, p2)
	waitGone(t, lab, "", br)
}

// TestExitKeepsInternalPortsUnlessCleanup: a clean exit without --cleanup
// (`ovs-appctl exit`, SIGTERM as from systemctl) leaves internal ports in
// place with their namespaces and addresses, as OVS does, and the next
// gvsd re-attaches them; `ovs-appctl exit --cleanup` deletes them wherever
// they are.
func TestExitKeepsInternalPortsUnlessCleanup(t *testing.T) {
	lab := newNetLab(t)
	const br, p1, p2, ns1, ns2 = "gvrsxbr", "gvrsxp1", "gvrsxp2", "gvrsx-ns1", "gvrsx-ns2"
	devs := []string{br, p1, p2}
	deleteRootLinks(lab, devs...)
	t.Cleanup(func() { deleteRootLinks(lab, devs...) })
	g := StartGvsd(t)

	g.MustVsctl("add-br", br)
	addInternalPorts(lab, g, br,
		labPort{p1, ns1, nil, []string{"192.168.78.1/24"}},
		labPort{p2, ns2, nil, []string{"192.168.78.2/24"}},
	)
	lab.pingOK(ns1, "192.168.78.2")
	for _, how := range []string{"exit", "SIGTERM"} {
		endGvsd(t, g, how)
		out, err := lab.exec(ns1, "ip", "-4", "addr", "show", "dev", p1)
		if err != nil || !strings.Contains(out, "192.168.78.1/24") {
			t.Fatalf("after %s, %s lost %s or its address: %v\n%s", how, ns1, p1, err, out)
		}
		if !labLinkExists(br) {
			t.Fatalf("after %s, the bridge's own port %s is gone", how, br)
		}
		g.Start()
		if !lab.pingEventually(ns1, "192.168.78.2", 15*time.Second) {
			t.Fatalf("no ping within 15s of the restart after %s; ovs-vsctl show:\n%s", how, g.MustVsctl("show"))
		}
	}

	endGvsd(t, g, "exit --cleanup")
	waitGone(t, lab, ns1, p1)
	waitGone(t, lab, ns2, p2)
	waitGone(t, lab, "", br)
}

// endGvsd ends the daemon with SIGTERM or an ovs-appctl command and waits
// up to 5 s for it to exit.
func endGvsd(t *testing.T, g *Gvsd, how string) {
	t.Helper()
	if how == "SIGTERM" {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
	} else if _, errOut, err := g.Run("ovs-appctl", strings.Fields(how)...); err != nil {
		t.Fatalf("ovs-appctl %s: %v %s", how, err, errOut)
	}
	done := make(chan struct{})
	go func() { _ = g.cmd.Wait(); close(done) }()
	select {
	case <-done:
		g.cmd = nil
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-done
		g.cmd = nil
		t.Fatalf("gvsd still running 5 s after %s", how)
	}
}

// deleteRootLinks deletes the root namespace's interfaces of these names.
func deleteRootLinks(lab *netLab, names ...string) {
	for _, n := range names {
		if labLinkExists(n) {
			_, _ = lab.run("ip", "link", "del", n)
		}
	}
}

// waitGone waits up to 5 s until dev no longer exists in namespace ns
// ("" for the root namespace).
func waitGone(t *testing.T, lab *netLab, ns, dev string) {
	t.Helper()
	show := func() (string, error) {
		if ns == "" {
			return lab.run("ip", "link", "show", "dev", dev)
		}
		return lab.exec(ns, "ip", "link", "show", "dev", dev)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		out, err := show()
		if err != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%s still exists in namespace %q after del-br:\n%s", dev, ns, out)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
