package e2e

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// S4 (docs/GUIDE.md, "Remote mirroring over a tunnel"): two hosts, each a
// network namespace running its own gvsd, joined by a veth underlay
// (172.21.12.8 and 172.21.12.163). Host1's bridge mtest mirrors what its
// port p1 receives from a VM into a tunnel port; host2 decapsulates into
// its bridge mtest, whose internal port ml sits in namespace rmon where
// tcpdump watches. gvs encapsulates and decapsulates itself: this kernel
// has no GRE module. Everything made here starts with "gvtn".

const (
	gvtnH1, gvtnH2     = "gvtn-h1", "gvtn-h2"
	gvtnVM1, gvtnVM2   = "gvtn-vm1", "gvtn-vm2"
	gvtnRmon           = "gvtn-rmon"
	gvtnUnder1         = "172.21.12.8"
	gvtnUnder2         = "172.21.12.163"
	gvtnVMAddr1        = "10.12.4.1"
	gvtnVMAddr2        = "10.12.4.2"
	gvtnMirrorPingSize = 5
)

// gvtnS4 is S4's two hosts, set up to the point where the tunnel ports
// come in.
type gvtnS4 struct {
	lab    *netLab
	g1, g2 *Gvsd
	native bool // the underlay addresses sit on gvs bridges (OVS's native tunnelling)
}

// gvtnSetupS4 joins the hosts by the host's routing: the underlay
// addresses sit on the veth ends ul1 and ul2.
func gvtnSetupS4(t *testing.T) *gvtnS4 { return gvtnSetupS4Underlay(t, false) }

// gvtnSetupS4Underlay with native set joins the hosts as OVS's native
// tunnelling does: the veth ends phy1 and phy2 are ports of a bridge ul
// on each host, and the underlay addresses sit on ul's internal port.
func gvtnSetupS4Underlay(t *testing.T, native bool) *gvtnS4 {
	t.Helper()
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "tcpdump", "ping")
	for _, ns := range []string{gvtnH1, gvtnH2, gvtnVM1, gvtnVM2} {
		lab.netns(ns)
	}
	if native {
		lab.vethIn(gvtnH1, "phy1", "phy2", gvtnH2)
	} else {
		lab.vethIn(gvtnH1, "ul1", "ul2", gvtnH2, gvtnUnder2+"/24")
		lab.configure(gvtnH1, "ul1", gvtnUnder1+"/24")
	}
	lab.vethIn(gvtnH1, "p1", "vm1eth", gvtnVM1, gvtnVMAddr1+"/24")
	lab.vethIn(gvtnH1, "p2", "vm2eth", gvtnVM2, gvtnVMAddr2+"/24")
	s := &gvtnS4{lab: lab, g1: StartGvsdNetns(t, gvtnH1), g2: StartGvsdNetns(t, gvtnH2), native: native}
	for _, g := range []*Gvsd{s.g1, s.g2} {
		g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	}
	if native {
		gvtnNativeUnderlay(t, lab, s.g1, gvtnH1, "phy1", gvtnUnder1)
		gvtnNativeUnderlay(t, lab, s.g2, gvtnH2, "phy2", gvtnUnder2)
		// Both gvs neighbour caches learn the other host from the ARP
		// reply this ping's ARP exchange delivers to ul.
		lab.pingOK(gvtnH1, gvtnUnder2)
	}
	s.g1.MustVsctl("add-br", "mtest")
	s.g1.MustVsctl("add-port", "mtest", "p1")
	s.g1.MustVsctl("add-port", "mtest", "p2")
	lab.pingOK(gvtnVM1, gvtnVMAddr2)

	// host2, as S4 gives it (rmon's name carries the test's prefix).
	s.g2.MustVsctl("add-br", "mtest")
	s.g2.MustVsctl("add-port", "mtest", "ml", "--", "set", "interface", "ml", "type=internal")
	lab.netns(gvtnRmon)
	gvtnWaitLinkIn(t, lab, gvtnH2, "ml")
	lab.must("ip", "-n", gvtnH2, "link", "set", "ml", "netns", gvtnRmon)
	lab.configure(gvtnRmon, "ml")
	return s
}

// gvtnNativeUnderlay makes gvsd g's bridge ul, with the "physical" NIC
// phy as a port, and puts the underlay address on ul's internal port, as
// OVS's native tunnelling is set up.
func gvtnNativeUnderlay(t *testing.T, lab *netLab, g *Gvsd, ns, phy, addr string) {
	t.Helper()
	g.MustVsctl("add-br", "ul")
	g.MustVsctl("add-port", "ul", phy)
	gvtnWaitLinkIn(t, lab, ns, "ul")
	lab.configure(ns, "ul", addr+"/24")
	// ovs/route/show copies the kernel's routes at once (otherwise within
	// a second): the first tunnel packets must already see ul's route.
	want := "Cached: 172.21.12.0/24 dev ul SRC " + addr + "\n"
	if routes := appctl(t, g, "ovs/route/show"); !strings.Contains(routes, want) {
		t.Fatalf("ovs/route/show lacks %q:\n%s", want, routes)
	}
}

// gvtnWaitLinkIn waits until namespace ns has interface dev.
func gvtnWaitLinkIn(t *testing.T, lab *netLab, ns, dev string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := lab.run("ip", "-n", ns, "link", "show", dev); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("interface %s did not appear in %s within 10s", dev, ns)
		}
	}
}

// gvtnTunnel is one tunnel type S4 runs over: the Interface type and the
// options beyond remote_ip and key.
type gvtnTunnel struct {
	name, typ string
	extra     []string
	listener  string // the receiving socket in tnl/ports/show
}

// connect runs S4's commands with the tunnel's type: verbatim for GRE.
func (s *gvtnS4) connect(t *testing.T, tn gvtnTunnel) {
	t.Helper()
	set1 := append([]string{"set", "interface", "lgre0", "type=" + tn.typ, "options:remote_ip=" + gvtnUnder2, "options:key=0x0010"}, tn.extra...)
	s.g1.MustVsctl(append([]string{"add-port", "mtest", "lgre0", "--"}, set1...)...)
	s.g1.MustVsctl("--", "--id=@p1", "get", "port", "p1", "--", "--id=@lgre0", "get", "port", "lgre0",
		"--", "--id=@m", "create", "mirror", "name=m0", "select-src-port=@p1", "output-port=@lgre0",
		"--", "set", "bridge", "mtest", "mirrors=@m")
	set2 := append([]string{"set", "interface", "rgre0", "type=" + tn.typ, "options:remote_ip=" + gvtnUnder1, "options:key=0x0010"}, tn.extra...)
	s.g2.MustVsctl(append([]string{"add-port", "mtest", "rgre0", "--"}, set2...)...)
	for _, c := range []struct {
		g                   *Gvsd
		port, remote, local string
	}{{s.g1, "lgre0", gvtnUnder2, gvtnUnder1}, {s.g2, "rgre0", gvtnUnder1, gvtnUnder2}} {
		if e := strings.TrimSpace(c.g.MustVsctl("get", "interface", c.port, "error")); e != "[]" {
			t.Fatalf("%s: Interface.error = %s", c.port, e)
		}
		egress := "egress=host routing, source " + c.local
		if s.native {
			egress = "egress=native dev ul, source " + c.local
		}
		out, errOut, err := c.g.Run("ovs-appctl", "tnl/ports/show")
		for _, w := range []string{"Listening ports:", tn.listener + " (", c.port + ": type=" + tn.typ + " remote_ip=" + c.remote,
			"in_key=16 out_key=16", egress} {
			if err != nil || !strings.Contains(out, w) {
				t.Errorf("ovs-appctl tnl/ports/show lacks %q (err %v %s):\n%s", w, err, errOut, out)
			}
		}
	}
}

// disconnect undoes connect, for the next tunnel type.
func (s *gvtnS4) disconnect(t *testing.T) {
	t.Helper()
	s.g1.MustVsctl("clear", "bridge", "mtest", "mirrors")
	s.g1.MustVsctl("del-port", "mtest", "lgre0")
	s.g2.MustVsctl("del-port", "mtest", "rgre0")
}

// checkRemoteMirror pings from the VM behind p1 and checks that rmon saw
// exactly the frames the VM sent through p1: every echo request and
// nothing that did not come from p1 (no echo replies).
//
// vm1 also sends frames of its own at times no test step sets: an ARP
// reply to vm2's unicast probe, whenever vm2's neighbour entry for vm1
// needs confirming (seconds after vm2 last used a stale one). They are
// mirrored too, so the capture of what vm1 sends runs from before
// rmon's starts to after it stops: every frame rmon sees is one it saw.
// (Started the other way round, such a reply that fell between the two
// starts failed the test: rmon saw a frame vm1 "did not send".)
func (s *gvtnS4) checkRemoteMirror(t *testing.T) {
	t.Helper()
	sent := gvmiCapture(t, gvtnVM1, "vm1eth", "out")
	rmon := gvmiCapture(t, gvtnRmon, "ml", "in")
	gvmiPing(t, s.lab, gvtnVM1, gvtnVMAddr2, gvtnMirrorPingSize)
	if !rmon.waitFor(5*time.Second, "ICMP echo request", "seq "+strconv.Itoa(gvtnMirrorPingSize)) {
		t.Errorf("rmon did not see the last echo request")
	}
	time.Sleep(300 * time.Millisecond)
	copies := gvmiParseFrames(t, rmon.stop())
	frames := gvmiParseFrames(t, sent.stop())
	t.Logf("frames vm1 sent through p1:\n%s\nframes rmon saw on ml:\n%s", gvmiLines(frames), gvmiLines(copies))
	if n := len(gvmiOnly(copies, "ICMP echo request")); n != gvtnMirrorPingSize {
		t.Errorf("rmon saw %d echo requests, want %d", n, gvtnMirrorPingSize)
	}
	if n := len(gvmiOnly(copies, "ICMP echo reply")); n != 0 {
		t.Errorf("rmon saw %d echo replies, which p1 does not receive from its VM", n)
	}
	sentKeys := map[string]bool{}
	for _, f := range frames {
		sentKeys[f.key] = true
	}
	for _, c := range copies {
		if !sentKeys[c.key] {
			t.Errorf("rmon saw a frame vm1 did not send: %q", c.line)
		}
	}
}

// checkTunnelStats checks that the tunnel ports counted what crossed.
func (s *gvtnS4) checkTunnelStats(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		tx := gvtnStat(s.g1, "lgre0", "tx_packets")
		rx := gvtnStat(s.g2, "rgre0", "rx_packets")
		if tx >= gvtnMirrorPingSize && rx >= gvtnMirrorPingSize {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("statistics: lgre0 tx_packets=%d, rgre0 rx_packets=%d, want at least %d", tx, rx, gvtnMirrorPingSize)
			return
		}
	}
}

// gvtnStat reads one Interface.statistics counter.
func gvtnStat(g *Gvsd, iface, key string) int {
	out, _, err := g.Vsctl("get", "interface", iface, "statistics:"+key)
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(out), `"`))
	if err != nil {
		return -1
	}
	return n
}

// TestS4RemoteMirrorTunnels runs S4 over GRE (verbatim), VXLAN, Geneve,
// ERSPAN type II and type III. For ERSPAN, tshark decodes what crossed
// the underlay: the version, session ID (options:key), index or
// direction and hardware ID, and the original frame.
func TestS4RemoteMirrorTunnels(t *testing.T) {
	s := gvtnSetupS4(t)
	for _, tn := range []gvtnTunnel{
		{"gre", "gre", nil, "gre_sys"},
		{"vxlan", "vxlan", nil, "vxlan_sys_4789"},
		{"geneve", "geneve", nil, "genev_sys_6081"},
		{"erspan2", "erspan", []string{"options:erspan_ver=1", "options:erspan_idx=1f"}, "gre_sys"},
		{"erspan3", "erspan", []string{"options:erspan_ver=2", "options:erspan_dir=1", "options:erspan_hwid=2a"}, "gre_sys"},
	} {
		t.Run(tn.name, func(t *testing.T) {
			s.connect(t, tn)
			defer s.disconnect(t)
			var pcap string
			var underlay *tcpdumpCapture
			if tn.typ == "erspan" {
				pcap = filepath.Join(t.TempDir(), "underlay.pcap")
				underlay = s.lab.tcpdump(gvtnH2, "underlay of host2", "-U", "--immediate-mode", "-n", "-i", "ul2", "-w", pcap, "ip proto 47")
			}
			s.checkRemoteMirror(t)
			s.checkTunnelStats(t)
			if underlay != nil {
				underlay.stop()
				gvtnCheckTshark(t, pcap, tn)
			}
		})
	}
}

// gvtnCheckTshark decodes the ERSPAN packets captured on the underlay.
func gvtnCheckTshark(t *testing.T, pcap string, tn gvtnTunnel) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (scripts/test.sh installs it)")
	}
	out, err := exec.Command("tshark", "-r", pcap, "-V", "-Y", "icmp.type == 8").CombinedOutput()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, out)
	}
	text := string(out)
	want := []string{"Source Address: " + gvtnUnder1, "Destination Address: " + gvtnUnder2,
		"SpanID: 16", "Echo (ping) request", "Source Address: " + gvtnVMAddr1}
	if strings.Contains(strings.Join(tn.extra, " "), "erspan_ver=1") {
		want = append(want, "Version: Type II (1)", "Index: 31")
	} else {
		want = append(want, "Version: Type III (2)", "Hardware ID: 42", "Direction: Egress")
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("tshark -V does not show %q", w)
		}
	}
	if n := strings.Count(text, "Echo (ping) request"); n < gvtnMirrorPingSize {
		t.Errorf("tshark decoded %d echo requests inside ERSPAN, want %d", n, gvtnMirrorPingSize)
	}
	if t.Failed() {
		t.Logf("tshark -V:\n%s", text)
	}
}

// TestTunnelBadOptions: a tunnel port without remote_ip, or with one that
// is not an address, gets an Interface.error that ovs-vsctl reports.
func TestTunnelBadOptions(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvtnbr")
	for _, c := range []struct {
		port string
		set  []string
		want string
	}{
		{"gvtnbad0", []string{"type=gre"}, "gre type requires valid 'remote_ip' argument"},
		{"gvtnbad1", []string{"type=vxlan", "options:remote_ip=not-an-address"}, "vxlan type requires valid 'remote_ip' argument"},
		{"gvtnbad2", []string{"type=erspan", "options:remote_ip=192.0.2.1", "options:erspan_ver=7"}, "invalid erspan_ver"},
	} {
		_, errOut, err := g.Vsctl(append([]string{"add-port", "gvtnbr", c.port, "--", "set", "interface", c.port}, c.set...)...)
		if err != nil || !strings.Contains(errOut, "Error detected while setting up '"+c.port+"'") {
			t.Errorf("add-port %s: err=%v stderr=%q, want OVS's warning and success", c.port, err, errOut)
		}
		if e := g.MustVsctl("get", "interface", c.port, "error"); !strings.Contains(e, c.want) {
			t.Errorf("%s: Interface.error = %s, want it to contain %q", c.port, e, c.want)
		}
	}
}

// gvtnCoverage reads one coverage counter's total from coverage/show.
func gvtnCoverage(t *testing.T, g *Gvsd, name string) int {
	t.Helper()
	out, errOut, err := g.Run("ovs-appctl", "coverage/show")
	if err != nil {
		t.Fatalf("coverage/show: %v %s", err, errOut)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == name {
			n, _ := strconv.Atoi(f[len(f)-1])
			return n
		}
	}
	return 0
}

// TestTunnelMirrorFrameSizes runs S4 over GRE with frames of every size:
//   - a mirror's snaplen cuts the copy before it is encapsulated: rmon
//     sees frames of exactly snaplen bytes;
//   - a copy too big for the underlay once encapsulated is dropped and
//     counted (lgre0's tx_dropped, tunnel_too_big), not lost silently;
//   - TCP super-frames that the VM's TSO hands to p1 are cut into
//     wire-size segments before encapsulation (underlay MTU 9000 here):
//     rmon sees no frame above 1514 bytes, and nothing is dropped (the
//     collector's GRE port hands the copies on as they came: a GRE port
//     joins TCP segments only with options:gvs-gro=true).
func TestTunnelMirrorFrameSizes(t *testing.T) {
	requireTool(t, "iperf3")
	s := gvtnSetupS4(t)
	s.connect(t, gvtnTunnel{"gre", "gre", nil, "gre_sys"})

	s.g1.MustVsctl("set", "mirror", "m0", "snaplen=100")
	rmon := gvmiCapture(t, gvtnRmon, "ml", "in")
	out, err := s.lab.exec(gvtnVM1, "ping", "-n", "-c", "3", "-i", "0.2", "-s", "1000", gvtnVMAddr2)
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	rmon.waitFor(3*time.Second, "length 100")
	copies := gvmiParseFrames(t, rmon.stop())
	if len(copies) < 3 {
		t.Errorf("rmon saw %d copies, want 3:\n%s", len(copies), gvmiLines(copies))
	}
	for _, c := range copies {
		if c.length != 100 {
			t.Errorf("copy of %d bytes, want the snaplen, 100: %q", c.length, c.line)
		}
	}

	s.g1.MustVsctl("clear", "mirror", "m0", "snaplen")
	tooBig, dropped := gvtnCoverage(t, s.g1, "tunnel_too_big"), gvtnStat(s.g1, "lgre0", "tx_dropped")
	if out, err := s.lab.exec(gvtnVM1, "ping", "-n", "-c", "2", "-i", "0.2", "-s", "1472", gvtnVMAddr2); err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(5 * time.Second); gvtnStat(s.g1, "lgre0", "tx_dropped") < dropped+2 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	if got := gvtnStat(s.g1, "lgre0", "tx_dropped"); got < dropped+2 {
		t.Errorf("lgre0 tx_dropped went from %d to %d after two 1514-byte frames, want +2", dropped, got)
	}
	if got := gvtnCoverage(t, s.g1, "tunnel_too_big"); got < tooBig+2 {
		t.Errorf("tunnel_too_big went from %d to %d, want +2", tooBig, got)
	}

	s.lab.mustExec(gvtnH1, "ip", "link", "set", "ul1", "mtu", "9000")
	s.lab.mustExec(gvtnH2, "ip", "link", "set", "ul2", "mtu", "9000")
	before := gvtnSettledStats(t, s)
	rmon = gvmiCapture(t, gvtnRmon, "ml", "in")
	server := exec.Command("ip", "netns", "exec", gvtnVM2, "iperf3", "-s", "-1", "-B", gvtnVMAddr2)
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = server.Process.Kill(); _ = server.Wait() }()
	time.Sleep(300 * time.Millisecond)
	if out, err := s.lab.exec(gvtnVM1, "iperf3", "-c", gvtnVMAddr2, "-n", "4M"); err != nil {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	after := gvtnSettledStats(t, s)
	copies = gvmiParseFrames(t, rmon.stop()) // tcpdump itself may drop some
	for _, c := range copies {
		if c.length > 1514 {
			t.Errorf("rmon saw a frame of %d bytes: %q", c.length, c.line)
			break
		}
	}
	sent, lost := after[0]-before[0], after[1]-before[1]
	got, full := after[2]-before[2], after[3]-before[3]
	t.Logf("during the transfer: lgre0 sent %d, dropped %d; rgre0 delivered %d, dropped %d (its queue was full)", sent, lost, got, full)
	inBytes, outBytes := after[4]-before[4], after[5]-before[5]
	t.Logf("p1 received %d bytes (in super-frames), lgre0 sent %d bytes", inBytes, outBytes)
	// The copy sender runs at the lowest CPU priority (SCHED_IDLE), so
	// on a host whose cores the transfer keeps busy some copies are lost:
	// each is counted in tx_dropped as the wire-size segments it would
	// have been, and most get through.
	if inBytes < 1<<20 || sent+lost < inBytes/1514 || sent < 2*lost {
		t.Errorf("p1 received %d bytes; lgre0 sent %d bytes in %d copies and dropped %d: want every wire-size segment sent or counted as dropped, most sent",
			inBytes, outBytes, sent, lost)
	}
	if lost == 0 && outBytes < inBytes {
		t.Errorf("p1 received %d bytes; lgre0 sent only %d bytes and dropped nothing", inBytes, outBytes)
	}
	if got+full != sent {
		t.Errorf("rgre0 delivered %d and dropped %d of the %d lgre0 sent", got, full, sent)
	}
}

// gvtnSettledStats waits until the tunnel ports' statistics stop moving
// and returns lgre0's tx_packets and tx_dropped, rgre0's rx_packets and
// rx_dropped, p1's rx_bytes and lgre0's tx_bytes.
func gvtnSettledStats(t *testing.T, s *gvtnS4) [6]int {
	t.Helper()
	read := func() [6]int {
		return [6]int{gvtnStat(s.g1, "lgre0", "tx_packets"), gvtnStat(s.g1, "lgre0", "tx_dropped"),
			gvtnStat(s.g2, "rgre0", "rx_packets"), gvtnStat(s.g2, "rgre0", "rx_dropped"),
			gvtnStat(s.g1, "p1", "rx_bytes"), gvtnStat(s.g1, "lgre0", "tx_bytes")}
	}
	last := read()
	for i := 0; i < 20; i++ {
		time.Sleep(1200 * time.Millisecond) // longer than stats-update-interval
		now := read()
		if now == last {
			return now
		}
		last = now
	}
	t.Fatalf("tunnel statistics still moving after 24s: %v", last)
	return last
}
