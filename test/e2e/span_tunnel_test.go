package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Span sessions to tunnel destinations (docs/GUIDE.md "Mirroring an
// interface on no bridge"): the copies of l0's packets are encapsulated
// and routed out of d0 to a collector at d1 (namespace M), where tcpdump
// records what arrives and tshark decodes it.

// spanTunnelLab is a span lab whose d0-d1 link is a routed underlay:
// 10.78.0.1 and fd78::1 in L, 10.78.0.2 and fd78::2 (the collector) in M.
func spanTunnelLab(t *testing.T) *spanLab {
	t.Helper()
	requireTool(t, "tshark")
	s := newSpanLab(t)
	for _, e := range []struct{ ns, dev, v4, v6 string }{{s.l, "d0", "10.78.0.1/24", "fd78::1/64"}, {s.m, "d1", "10.78.0.2/24", "fd78::2/64"}} {
		s.lab.mustExec(e.ns, "sysctl", "-q", "-w", "net/ipv6/conf/"+e.dev+"/disable_ipv6=0")
		s.lab.mustExec(e.ns, "ip", "addr", "add", e.v4, "dev", e.dev)
		s.lab.mustExec(e.ns, "ip", "addr", "add", e.v6, "dev", e.dev, "nodad")
	}
	// The collector takes the tunnel packets in its capture only: dropped
	// before its stack, which would otherwise answer "unreachable".
	requireTool(t, "nft")
	s.lab.mustExec(s.m, "nft", "add table inet gvscol; add chain inet gvscol in { type filter hook input priority 0 ; }; "+
		"add rule inet gvscol in meta l4proto { gre, udp } drop")
	s.lab.pingOK(s.l, "10.78.0.2")
	s.lab.mustExec(s.l, "ping", "-6", "-c", "1", "-W", "2", "fd78::2")
	return s
}

// collect records what d1 receives from the tunnels into a pcap file.
func (s *spanLab) collect() (*tcpdumpCapture, string) {
	pcap := filepath.Join(s.t.TempDir(), "collector.pcap")
	return s.lab.tcpdump(s.m, "collector d1", "-U", "--immediate-mode", "-n", "-i", "d1", "-Q", "in", "-w", pcap,
		"ip proto 47 or ip6 proto 47 or udp port 4789 or udp port 6081"), pcap
}

// tshark runs tshark over a capture with a display filter and returns its
// output, -V (every field) when verbose.
func spanTshark(t *testing.T, pcap, filter string, verbose bool) string {
	t.Helper()
	args := []string{"-r", pcap, "-Y", filter}
	if verbose {
		args = append(args, "-V")
	} else {
		args = append(args, "-T", "fields", "-e", "icmp.type")
	}
	// Output, not CombinedOutput: tshark warns on stderr when run as root.
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestSpanTunnelDestinations copies l0's ICMP to a GRE, an ERSPAN and two
// VXLAN collectors (one over IPv6) at once, with fwmark 42: tshark at the
// collector decodes each tunnel's copies (ERSPAN's version, session and
// index with -V), every copy carries the mark, and the statistics count
// them per destination.
func TestSpanTunnelDestinations(t *testing.T) {
	s := spanTunnelLab(t)
	s.lab.mustExec(s.l, "nft", "add table inet gvsmark; add chain inet gvsmark out { type filter hook output priority 0 ; }; add rule inet gvsmark out meta mark 42 counter")
	dests := []string{"gre:10.78.0.2,key=5", "erspan:10.78.0.2,ver=1,idx=7,key=3", "vxlan:10.78.0.2,vni=77", "vxlan:fd78::2,vni=78"}
	args := []string{"span", "add", "tn", "--source", "l0", "--filter", "icmp", "--mark", "42"}
	for _, d := range dests {
		args = append(args, "--to", d)
	}
	s.mustGvs(args...)
	s.waitShow("tn", "source l0 (both): "+spanSampled)
	c, pcap := s.collect()
	s.lab.mustExec(s.l, "ping", "-c", "3", "-i", "0.2", s.dstIP)
	okStats := func(st map[string]int64) bool {
		for _, d := range dests {
			if st["sent:"+d] != 6 {
				return false
			}
		}
		return st["selected"] == 6
	}
	st := s.waitStats("tn", okStats)
	if !okStats(st) {
		t.Errorf("statistics %v: want selected 6 and sent 6 to each destination", st)
	}
	time.Sleep(300 * time.Millisecond)
	c.stop()
	for _, k := range []struct{ what, filter string }{
		{"GRE key 5", "gre.key == 5 && ip.dst == 10.78.0.2 && icmp"},
		{"VXLAN 77 over IPv4", "vxlan.vni == 77 && ip.dst == 10.78.0.2 && icmp"},
		{"VXLAN 78 over IPv6", "vxlan.vni == 78 && ipv6.dst == fd78::2 && icmp"},
		{"ERSPAN", "erspan && icmp"},
	} {
		types := nonEmptyLines(spanTshark(t, pcap, k.filter, false))
		if len(types) != 6 || len(linesWith(types, "8")) != 3 {
			t.Errorf("%s: tshark decoded ICMP types %q, want 3 requests (8) and 3 replies (0)", k.what, types)
		}
	}
	v := spanTshark(t, pcap, "erspan && icmp.type == 8", true)
	for _, w := range []string{"Version: Type II (1)", "SpanID: 3", "Index: 7", "Destination Address: 10.78.0.2",
		"Source Address: " + s.srcIP, "Destination Address: " + s.dstIP, "Echo (ping) request"} {
		if !strings.Contains(v, w) {
			t.Errorf("tshark -V of the ERSPAN copies lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("tshark -V:\n%s", v)
	}
	out := s.lab.mustExec(s.l, "nft", "list", "chain", "inet", "gvsmark", "out")
	m := regexp.MustCompile(`meta mark 0x0000002a counter packets (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no mark counter in:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[1]); n != 24 {
		t.Errorf("%d packets left with fwmark 42, want the 24 tunnel copies:\n%s", n, out)
	}
}

// TestSpanTunnelOwnPacketsNotCopied: a session whose source is the
// interface its tunnel copies leave by does not copy those copies again
// (which would never end): it copies the pings over d0 and nothing more.
func TestSpanTunnelOwnPacketsNotCopied(t *testing.T) {
	s := spanTunnelLab(t)
	s.mustGvs("span", "add", "self", "--source", "d0", "--filter", "ip", "--to", "gre:10.78.0.2,key=9")
	s.waitShow("self", "source d0 (both): "+spanSampled)
	c, pcap := s.collect()
	s.lab.mustExec(s.l, "ping", "-c", "3", "-i", "0.2", "10.78.0.2")
	time.Sleep(time.Second)
	c.stop()
	st := s.waitStats("self", func(st map[string]int64) bool { return st["selected"] >= 6 })
	if st["selected"] != 6 {
		t.Errorf("statistics %v: want the 6 ICMP packets over d0 selected, not the copies", st)
	}
	types := nonEmptyLines(spanTshark(t, pcap, "gre.key == 9 && icmp", false))
	if len(types) != 6 {
		t.Errorf("the collector decoded %d ICMP copies, want 6: %q", len(types), types)
	}
	if n := len(nonEmptyLines(spanTshark(t, pcap, "gre.key == 9 && gre", false))); int64(n) != st["sent:gre:10.78.0.2,key=9"] {
		t.Errorf("the collector received %d GRE packets, the session sent %d", n, st["sent:gre:10.78.0.2,key=9"])
	}
}

// TestSpanPartialChecksums: with checksum offload on (the veths'
// default), the TCP packets l0 sends and receives still carry a partial
// checksum (CHECKSUM_PARTIAL: the pseudo-header sum only) when the tc
// program sees them. Their copies to a VLAN, a GRE collector and a pcap
// file must carry the finished checksum: tshark verifies every TCP
// checksum in each capture. The VLAN destination's own checksum offload
// is off, so that the super-frames' segments get their checksums from
// the kernel (as a NIC would compute them) and tcpdump on e1 sees what a
// wire would carry.
func TestSpanPartialChecksums(t *testing.T) {
	requireTool(t, "ethtool", "iperf3")
	s := spanTunnelLab(t)
	if k := s.lab.mustExec(s.l, "ethtool", "-k", "l0"); !strings.Contains(k, "tx-checksumming: on") {
		t.Fatalf("l0's checksum offload is off: the test needs it on:\n%s", k)
	}
	s.lab.mustExec(s.l, "ethtool", "-K", "e0", "tx", "off")
	// Room on the underlay for the GRE copies of full-size segments.
	s.lab.mustExec(s.l, "ip", "link", "set", "d0", "mtu", "9000")
	s.lab.mustExec(s.m, "ip", "link", "set", "d1", "mtu", "9000")
	s.mustGvs("span", "add", "ck", "--source", "l0", "--filter", "tcp",
		"--to", "dev:e0,vlan=100", "--to", "gre:10.78.0.2,key=6", "--to", "pcap:ck.pcapng")
	s.waitShow("ck", "source l0 (both): "+spanSampled)
	vlanPcap := filepath.Join(t.TempDir(), "vlan.pcap")
	vc := s.lab.tcpdump(s.m, "e1", "-U", "--immediate-mode", "-n", "-i", "e1", "-Q", "in", "-w", vlanPcap, "tcp or vlan")
	gc, grePcap := s.collect()
	s.iperf("20M")
	time.Sleep(500 * time.Millisecond)
	vc.stop()
	gc.stop()
	// The pcap port refuses super-frames over 9,280 bytes (dropped).
	st := s.waitStats("ck", func(st map[string]int64) bool {
		return st["sent:pcap:ck.pcapng"]+st["dropped:pcap:ck.pcapng"] == st["selected"]
	})
	t.Logf("statistics: %v", st)
	for _, c := range []struct{ what, pcap string }{
		{"dev:e0,vlan=100 (tcpdump on e1)", vlanPcap},
		{"gre:10.78.0.2 (the collector)", grePcap},
		{"pcap:ck.pcapng", filepath.Join(s.g.Rundir, "capture", "ck.pcapng")},
	} {
		out, err := exec.Command("tshark", "-r", c.pcap, "-o", "tcp.check_checksum:TRUE", "-Y", "tcp",
			"-T", "fields", "-e", "tcp.checksum.status", "-e", "frame.number").Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v\n%s", c.pcap, err, out)
		}
		lines := nonEmptyLines(string(out))
		// tcp.checksum.status: 0 bad, 1 good, 2 unverified.
		var notGood []string
		for _, l := range lines {
			if f := strings.Fields(l); len(f) != 2 || f[0] != "1" {
				notGood = append(notGood, strings.Join(f, ":"))
			}
		}
		if len(lines) < 20 || len(notGood) > 0 {
			t.Errorf("%s: %d TCP copies, %d without a good checksum (status:frame, the first 20: %v): want at least 20, all good",
				c.what, len(lines), len(notGood), notGood[:min(20, len(notGood))])
		}
	}
}
