package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestInternalPortsOffloads: internal ports are opened with offloads on
// (checksum, TSO), as a VM's virtio NIC is, so TCP super-frames cross gvs
// whole between two namespaces in both directions. iperf3 works each way,
// an 8 MiB transfer arrives with the same SHA-256, the receiving kernels
// count no checksum errors, and the internal ports' statistics show frames
// far larger than the MTU (super-frames, not wire-size segments). Every
// name starts with "gvof".
func TestInternalPortsOffloads(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ip", "iperf3", "nc", "ethtool", "nstat")
	lab := newNetLab(t)
	const br, p1, p2, ns1, ns2 = "gvofbr", "gvofp1", "gvofp2", "gvof-ns1", "gvof-ns2"
	deleteRootLinks(lab, br, p1, p2)
	t.Cleanup(func() { deleteRootLinks(lab, br, p1, p2) })
	g := StartGvsd(t)
	g.MustVsctl("add-br", br)
	addInternalPorts(lab, g, br,
		labPort{p1, ns1, nil, []string{"192.168.78.1/24"}},
		labPort{p2, ns2, nil, []string{"192.168.78.2/24"}},
	)
	for _, p := range []labPort{{name: p1, ns: ns1}, {name: p2, ns: ns2}} {
		k := lab.mustExec(p.ns, "ethtool", "-k", p.name)
		if !strings.Contains(k, "tcp-segmentation-offload: on") || !strings.Contains(k, "tx-checksumming: on") {
			t.Fatalf("%s does not offer TSO and checksum offload:\n%s", p.name, k)
		}
	}
	lab.pingOK(ns1, "192.168.78.2")
	for _, ns := range []string{ns1, ns2} {
		lab.mustExec(ns, "nstat", "-n") // reset the history nstat reports against
	}

	t.Run("iperf3-1to2", func(t *testing.T) { gvsyIperf(t, ns1, ns2, "192.168.78.2") })
	t.Run("iperf3-2to1", func(t *testing.T) { gvsyIperf(t, ns2, ns1, "192.168.78.1") })
	t.Run("nc-sha256", func(t *testing.T) { gvsyNetcatTransfer(t, ns1, ns2, "192.168.78.2") })

	for _, ns := range []string{ns1, ns2} {
		out := lab.mustExec(ns, "nstat", "-az", "TcpInCsumErrors", "UdpInCsumErrors")
		for _, line := range nonEmptyLines(out) {
			f := strings.Fields(line)
			if len(f) >= 2 && strings.HasSuffix(f[0], "CsumErrors") && f[1] != "0" {
				t.Errorf("%s: the receiving kernel counted checksum errors: %s", ns, line)
			}
		}
	}
	time.Sleep(2500 * time.Millisecond) // two statistics refreshes
	for _, p := range []string{p1, p2} {
		pkts := vsctlStat(t, g, p, "rx_packets")
		bytes := vsctlStat(t, g, p, "rx_bytes")
		t.Logf("%s: %d frames, %d bytes received by gvs (%.0f bytes per frame)", p, pkts, bytes, float64(bytes)/float64(max(pkts, 1)))
		if pkts == 0 || bytes/pkts < 3000 {
			t.Errorf("%s: %d bytes in %d frames: no super-frames crossed whole", p, bytes, pkts)
		}
	}
}

// vsctlStat reads one counter of an Interface's statistics, waiting up
// to 10 s for the first refresh to write it.
func vsctlStat(t *testing.T, g *Gvsd, iface, key string) uint64 {
	t.Helper()
	var out, stderr string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if out, stderr, err = g.Vsctl("get", "interface", iface, "statistics:"+key); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("statistics:%s of %s: %v: %s", key, iface, err, stderr)
	}
	out = strings.TrimSpace(out)
	n, err := strconv.ParseUint(strings.Trim(out, `"`), 10, 64)
	if err != nil {
		t.Fatalf("statistics:%s of %s: %q: %v", key, iface, out, err)
	}
	return n
}
