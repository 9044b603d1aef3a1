package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// gvtgSink reads one TCP connection to its end and prints the SHA-256
// and length of what it got; it gives up after 25 s.
const gvtgSink = `import socket, sys, hashlib
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
s.settimeout(25)
c, _ = s.accept()
c.settimeout(25)
h, n = hashlib.sha256(), 0
while True:
    b = c.recv(1 << 20)
    if not b:
        break
    h.update(b)
    n += len(b)
print(h.hexdigest(), n)
`

// gvtgSource sends n pseudo-random bytes (seeded) to addr:port and
// prints their SHA-256 and length.
const gvtgSource = `import socket, sys, hashlib, random
data = random.Random(int(sys.argv[4])).randbytes(int(sys.argv[3]))
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=25)
c.sendall(data)
c.close()
print(hashlib.sha256(data).hexdigest(), len(data))
`

// TestTunnelGROTransfer: a TCP stream through VXLAN (host routing, UDP
// checksums on, so the sender uses UDP GSO and the receiver's socket UDP
// GRO) with the kernel's default offloads everywhere. Host2's tunnel port
// joins the decapsulated segments into super-frames (coverage
// tunnel_gro_frames counts them), which reach a VM behind a system port
// and a namespace behind an internal port whole; what arrives is what
// was sent, byte for byte. The same over GRE (raw IP sockets, no UDP
// GSO or GRO): host2's GRE port joins with options:gvs-gro=true, and by
// default (GRE carries remote mirrors) joins nothing.
func TestTunnelGROTransfer(t *testing.T) {
	requireTool(t, "ss")
	h := gvtfSetup(t)
	const vm2, vm2Addr = "gvtf-vm2", "10.12.4.10"
	h.lab.netns(vm2)
	h.lab.vethIn(gvtfH2, "p2", "vm2eth", vm2, vm2Addr+"/24")
	h.g2.MustVsctl("add-port", "br2", "p2")
	for _, c := range []struct {
		g            *Gvsd
		br, remote   string
		typ, options string
	}{{h.g1, "br1", gvtnUnder2, "vxlan", "options:csum=true"}, {h.g2, "br2", gvtnUnder1, "vxlan", "options:csum=true"}} {
		c.g.MustVsctl("add-port", c.br, "vx0", "--", "set", "interface", "vx0", "type="+c.typ,
			"options:remote_ip="+c.remote, "options:key=16", c.options)
	}
	// The VMs' MTU leaves room for the outer headers in the underlay's
	// 1500 bytes, as bench/tunnel.sh does.
	for _, c := range [][2]string{{gvtfVM1, "vm1eth"}, {vm2, "vm2eth"}, {gvtfRmon, "ml"}} {
		h.lab.mustExec(c[0], "ip", "link", "set", c[1], "mtu", "1400")
	}
	h.lab.pingOK(gvtfVM1, gvtfRmonAddr)
	h.lab.pingOK(gvtfVM1, vm2Addr)

	transfer := func(ns, addr string, port, size, seed int) {
		t.Helper()
		got := make(chan string, 1)
		go func() {
			out, err := h.lab.exec(ns, gvctScapy, "-c", gvtgSink, addr, fmt.Sprint(port))
			if err != nil {
				out += " (" + err.Error() + ")"
			}
			got <- out
		}()
		for i := 0; ; i++ {
			if out, _ := h.lab.exec(ns, "ss", "-Hlnt", fmt.Sprintf("sport = :%d", port)); strings.TrimSpace(out) != "" {
				break
			}
			if i == 50 {
				t.Fatalf("the sink in %s does not listen", ns)
			}
			time.Sleep(100 * time.Millisecond)
		}
		sent, err := h.lab.exec(gvtfVM1, gvctScapy, "-c", gvtgSource, addr, fmt.Sprint(port), fmt.Sprint(size), fmt.Sprint(seed))
		if err != nil {
			t.Fatalf("sending to %s: %v\n%s", addr, err, sent)
		}
		if out := <-got; out != sent {
			t.Errorf("to %s: sent %q, received %q", addr, strings.TrimSpace(sent), strings.TrimSpace(out))
		}
	}

	before := gvtnCoverage(t, h.g2, "tunnel_gro_frames")
	transfer(vm2, vm2Addr, 5301, 24<<20, 1)
	afterVM := gvtnCoverage(t, h.g2, "tunnel_gro_frames")
	transfer(gvtfRmon, gvtfRmonAddr, 5302, 24<<20, 2)
	afterInternal := gvtnCoverage(t, h.g2, "tunnel_gro_frames")
	segs := gvtnCoverage(t, h.g2, "tunnel_gro_segments")
	t.Logf("tunnel_gro_frames: %d before, %d after the VM's transfer, %d after the internal port's; tunnel_gro_segments %d",
		before, afterVM, afterInternal, segs)
	if afterVM-before < 100 || afterInternal-afterVM < 100 {
		t.Errorf("host2 joined %d and %d super-frames for the two 24 MiB transfers, want many", afterVM-before, afterInternal-afterVM)
	}
	if segs < 2*afterInternal {
		t.Errorf("tunnel_gro_segments %d for %d super-frames: want at least 2 segments each", segs, afterInternal)
	}

	// GRE: the same transfer, joined.
	for _, c := range []struct {
		g      *Gvsd
		remote string
	}{{h.g1, gvtnUnder2}, {h.g2, gvtnUnder1}} {
		c.g.MustVsctl("set", "interface", "vx0", "type=gre", "options:remote_ip="+c.remote, "options:key=16", "options:csum=false", "options:gvs-gro=true")
	}
	h.lab.pingOK(gvtfVM1, vm2Addr)
	before = gvtnCoverage(t, h.g2, "tunnel_gro_frames")
	transfer(vm2, vm2Addr, 5303, 8<<20, 3)
	after := gvtnCoverage(t, h.g2, "tunnel_gro_frames")
	t.Logf("GRE: tunnel_gro_frames %d before, %d after an 8 MiB transfer", before, after)
	if after-before < 30 {
		t.Errorf("host2's GRE port joined %d super-frames for an 8 MiB transfer, want many", after-before)
	}

	// GRE by default: nothing joined.
	h.g2.MustVsctl("remove", "interface", "vx0", "options", "gvs-gro")
	h.lab.pingOK(gvtfVM1, vm2Addr)
	before = gvtnCoverage(t, h.g2, "tunnel_gro_frames")
	transfer(vm2, vm2Addr, 5304, 8<<20, 4)
	if after := gvtnCoverage(t, h.g2, "tunnel_gro_frames"); after != before {
		t.Errorf("a GRE port without options:gvs-gro=true joined %d super-frames", after-before)
	}
}
