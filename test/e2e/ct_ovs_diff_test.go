package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// The differential test of connection tracking against the real OVS 3.1
// (userspace datapath): the same ct() flows (bad ones refused with the
// same OpenFlow error, a stateful SNAT firewall with a zone from a
// register, ct_mark and ct_label set and matched), the same frames from a
// namespace (an ICMP echo the far kernel answers, a UDP datagram to a
// closed port whose ICMP error must come back translated), and the same
// dpctl commands. The frames each side receives, with their checksums,
// and what ovs-appctl prints must be the same.

// gvcdBadFlows are ct flows that ovs-ofctl encodes and a switch must
// judge: refused with OVS's error, or taken and dumped as OVS does.
var gvcdBadFlows = []string{
	"ip,actions=ct(commit,zone=NXM_NX_REG0[0..15])",
	"ip,actions=ct(commit,zone=NXM_NX_REG0[0..16])",
	"ip,actions=ct(commit,zone=NXM_NX_REG0[0..7])",
	"ip,actions=ct(nat(src=10.0.0.1))",
	"ip,actions=ct(nat)",
	"ip,actions=ct(exec(set_field:1->ct_mark))",
	"ip,actions=ct(commit,nat(src=10.0.0.1:0-10))",
	"ip,actions=ct(commit,nat(src=10.0.0.1-10.0.0.5:1000-2000,random))",
	"ipv6,actions=ct(commit,nat(src=[fd00::1]-[fd00::5]:80-90))",
	"ip,actions=ct(commit,exec(set_field:0x1/0x1->ct_label,set_field:5->ct_mark))",
	"ip,actions=ct(commit,table=1,zone=5,nat,alg=ftp)",
	"tcp,actions=ct(commit,alg=tftp)",
	"ip,ct_state=+trk+new+est,actions=drop",
	"ip,ct_state=-trk+new,actions=drop",
	"ip,ct_state=0xff,actions=drop",
	"ip,ct_state=+trk,ct_nw_src=10.0.0.1,actions=drop",
	"ip,ct_label=0x1000000000000000000000000000000/0xf000000000000000000000000000000,actions=drop",
}

// gvcdFlows are the stateful SNAT firewall: port 1 is the inside.
var gvcdFlows = []string{
	"table=0,priority=100,in_port=1,ip,actions=load:7->NXM_NX_REG0[0..15],ct(table=1,zone=NXM_NX_REG0[0..15],nat)",
	"table=0,priority=100,in_port=2,ip,actions=load:7->NXM_NX_REG0[0..15],ct(table=1,zone=NXM_NX_REG0[0..15],nat)",
	"table=0,priority=0,actions=drop",
	"table=1,priority=100,in_port=1,ip,ct_state=+trk+new,actions=ct(commit,zone=7,nat(src=10.0.0.100:5000),exec(set_field:0x5/0xff->ct_mark,set_field:0x1234->ct_label)),output:2",
	"table=1,priority=100,in_port=1,ip,ct_state=+trk+est-rpl,actions=output:2",
	"table=1,priority=100,in_port=2,ip,ct_state=+trk+est+rpl,ct_mark=0x5/0xff,actions=output:1",
	"table=1,priority=90,in_port=2,ip,ct_state=+trk+rel+rpl,actions=output:1",
	"table=1,priority=80,ip,ct_state=+trk+inv,actions=drop",
	"table=1,priority=0,actions=drop",
}

// gvcdAppctl are the dpctl commands run after the frames, in order.
var gvcdAppctl = [][]string{
	{"dpctl/dump-conntrack"},
	{"dpctl/dump-conntrack", "zone=7"},
	{"dpctl/dump-conntrack", "zone=0"},
	{"dpctl/dump-conntrack", "-s"},
	{"dpctl/ct-stats-show"},
	{"dpctl/ct-stats-show", "zone=7"},
	{"dpctl/ct-get-nconns"},
	{"dpctl/ct-get-maxconns"},
	{"dpctl/flush-conntrack", "ct_nw_src=192.168.0.2,ct_nw_dst=10.0.0.2,ct_nw_proto=17,ct_tp_src=40000,ct_tp_dst=9999"},
	{"dpctl/flush-conntrack", "zone=7", "ct_nw_src=192.168.0.2,ct_nw_dst=10.0.0.2,ct_nw_proto=1,icmp_id=5000,icmp_type=8,icmp_code=0"},
	{"dpctl/dump-conntrack"},
	{"dpctl/flush-conntrack", "zone=7", "ct_nw_src=192.168.0.9"},
	{"dpctl/ct-get-nconns"},
	{"dpctl/flush-conntrack", "ct_nw_src=192.168.0.2,ct_nw_proto=17"},
	{"dpctl/dump-conntrack"},
	{"dpctl/ct-set-limits", "zone=7,limit=3"},
	{"dpctl/ct-get-limits", "zone=7"},
	{"dpctl/ct-set-limits", "zone=70000,limit=3"},
	{"dpctl/ct-set-maxconns", "foo"},
	{"dpctl/ct-disable-tcp-seq-chk"},
	{"dpctl/ct-get-tcp-seq-chk"},
	{"dpctl/ct-enable-tcp-seq-chk"},
	{"dpctl/ct-get-tcp-seq-chk"},
}

// gvcdOwnWording are the commands whose errors gvs words its own way
// (docs/COMPATIBILITY.md): only their exit status is compared.
var gvcdOwnWording = map[string]bool{"dpctl/ct-set-limits": true}

// gvcdMaskRE masks what differs by nature: log timestamps, the socket
// ovs-appctl names, the program prefix of OVS's dpctl errors, and
// timeouts.
var gvcdMaskRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT[\d:.]+Z\|\d+\|[a-z_]+\|WARN\||ovs-appctl: .*: server returned an error|^ovs-vswitchd: |timeout=\d+`)

// gvcdMask applies gvcdMaskRE line by line and, for OVS's dpctl errors,
// keeps the message only: gvs's appctl errors have no program prefix and
// their own wording (docs/COMPATIBILITY.md), so an error compares by its
// exit status and, where both say it, its message.
func gvcdMask(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = gvcdMaskRE.ReplaceAllStringFunc(l, func(m string) string {
			switch {
			case strings.HasPrefix(m, "ovs-appctl"):
				return "ovs-appctl: server returned an error"
			case strings.HasPrefix(m, "timeout="):
				return "timeout=*"
			}
			return ""
		})
	}
	return strings.Join(lines, "\n")
}

func TestConntrackOVSDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip", "sysctl")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	lab := newNetLab(t)
	const br, nsL, nsR = "gvcdbr", "gvcd-left", "gvcd-right"
	lab.netns(nsL)
	lab.netns(nsR)
	lab.veth("gvcdl", "gvcdlx", nsL, "192.168.0.2/24")
	lab.veth("gvcdr", "gvcdrx", nsR, "10.0.0.2/24")
	// The right namespace's kernel answers the translated frames: its
	// MAC is the one the crafted frames go to, and the NAT address is
	// a neighbour behind the switch.
	lab.mustExec(nsR, "ip", "link", "set", "dev", "gvcdrx", "address", ctdMacA.String())
	lab.mustExec(nsR, "ip", "neigh", "replace", "10.0.0.100", "lladdr", ctdMacL.String(), "dev", "gvcdrx")
	left := gvsyOpenRaw(t, "left", nsL, "gvcdlx")
	right := gvsyOpenRaw(t, "right", nsR, "gvcdrx")
	raws := []*gvsyRaw{left, right}

	configure := func(vsctl func(...string) string) { gvsyNetdevBridge(t, vsctl, br, "gvcdl", "gvcdr") }
	flowsFile := gvofWriteFile(t, "ctflows", gvcdFlows...)
	frames := []ctdPkt{
		ctdICMP(true, 8, 0, 5000, []byte("gvcd echo")),
		ctdUDP(true, 40000, 9999),
	}
	scenario := func(run func(...string) (string, string, error), appctl []string) (out []string, got [][][]byte) {
		record := func(args ...string) {
			stdout, stderr, err := run(args...)
			rc := 0
			if err != nil {
				rc = exitCode(err)
			}
			if strings.Contains(strings.Join(args, " "), "dump-conntrack") {
				stdout = gvofSortedLines(stdout)
			}
			if args[len(args)-1] == "dpctl/ct-stats-show" || (len(args) > 1 && args[len(args)-2] == "dpctl/ct-stats-show") {
				// gvs adds one line of its own at the end.
				stdout = regexp.MustCompile(`(?m)^Commits refused by limits: \d+\n`).ReplaceAllString(stdout, "")
			}
			shown := strings.Join(args, " ")
			if args[0] == "ovs-appctl" {
				shown = "ovs-appctl " + strings.Join(args[len(appctl):], " ")
				if gvcdOwnWording[args[len(appctl)]] {
					stderr = "(the error's wording differs)"
				}
			}
			out = append(out, fmt.Sprintf("$ %s\nrc=%d\n%s\n%s", shown, rc, gvcdMask(stderr), gvcdMask(stdout)))
		}
		for _, proto := range []string{"OpenFlow10", "OpenFlow13"} {
			for _, f := range gvcdBadFlows {
				record("ovs-ofctl", "del-flows", br)
				record("ovs-ofctl", "-O", proto, "add-flow", br, f)
				record("ovs-ofctl", "-O", proto, "--no-stats", "dump-flows", br)
			}
		}
		record("ovs-ofctl", "del-flows", br)
		record("ovs-ofctl", "add-flows", br, flowsFile)
		time.Sleep(300 * time.Millisecond)
		for _, r := range raws {
			r.drain()
		}
		sent := make([]gvsySent, len(frames))
		for i, f := range frames {
			sent[i] = gvsySent{Name: f.what, From: 0, Frame: f.frame}
		}
		got = gvsyCapture(t, raws, sent)
		for _, c := range gvcdAppctl {
			record(append(append([]string(nil), appctl...), c...)...)
		}
		return out, got
	}
	var refOut, gotOut []string
	var refFrames, gotFrames [][][]byte
	func() {
		o := gvsyStartOVS(t)
		defer o.Stop()
		configure(o.MustVsctl)
		refOut, refFrames = scenario(o.run, []string{"ovs-appctl", "-t", filepath.Join(o.dir, "ovs-vswitchd.ctl")})
	}()
	func() {
		g := StartGvsd(t)
		defer g.Stop()
		configure(g.MustVsctl)
		run := func(args ...string) (string, string, error) { return g.Run(args[0], args[1:]...) }
		gotOut, gotFrames = scenario(run, []string{"ovs-appctl"})
	}()

	// The reference must have run the scenario, or the comparison says
	// nothing: its SNAT translated the echo and the ICMP error came back.
	all := strings.Join(refOut, "\n")
	for _, want := range []string{"OFPBAC_BAD_SET_LEN", "reply=(src=10.0.0.2,dst=10.0.0.100,sport=9999,dport=5000),zone=7,mark=5,labels=0x1234"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the reference OVS never printed %q: the scenario did not run\n%s", want, all)
		}
	}
	for i := range refOut {
		if i < len(gotOut) && refOut[i] != gotOut[i] {
			t.Errorf("OVS 3.1 and gvsd differ:\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", refOut[i], gotOut[i])
		}
	}
	for i, r := range raws {
		ref, got := gvcdDescribeAll(refFrames[i]), gvcdDescribeAll(gotFrames[i])
		t.Logf("%s, OVS 3.1:\n%s", r.label, strings.Join(ref, "\n"))
		if strings.Join(ref, "\n") != strings.Join(got, "\n") {
			t.Errorf("%s received different frames:\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", r.label, strings.Join(ref, "\n"), strings.Join(got, "\n"))
		}
		if len(ref) < 2 {
			t.Errorf("%s: the reference delivered %d frames, want the request and the answer", r.label, len(ref))
		}
	}
}

// gvcdDescribeAll describes each IPv4 frame (others are the kernels'
// own), sorted.
func gvcdDescribeAll(frames [][]byte) []string {
	var out []string
	for _, f := range frames {
		if d := gvcdDescribe(f); d != "" {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// gvcdDescribe prints an IPv4 frame's addresses, ports or ICMP fields and
// whether each checksum is right; an ICMP error's quote too.
func gvcdDescribe(f []byte) string {
	p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		return ""
	}
	return gvcdDescribeIP(f[14:], ip)
}

func gvcdDescribeIP(b []byte, ip *layers.IPv4) string {
	hl := int(ip.IHL) * 4
	s := fmt.Sprintf("%s>%s proto=%d ttl=%d ipsum=%v", ip.SrcIP, ip.DstIP, ip.Protocol, ip.TTL, gvsyChecksum(b[:hl]) == 0)
	l4 := b[hl:min(len(b), int(ip.Length))]
	pseudo := func() []byte {
		ph := append(append([]byte(nil), ip.SrcIP.To4()...), ip.DstIP.To4()...)
		ph = append(ph, 0, byte(ip.Protocol))
		ph = binary.BigEndian.AppendUint16(ph, uint16(len(l4)))
		return append(ph, l4...)
	}
	switch {
	case ip.Protocol == layers.IPProtocolUDP && len(l4) >= 8:
		s += fmt.Sprintf(" udp %d>%d sum=%v", binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]), gvsyChecksum(pseudo()) == 0)
	case ip.Protocol == layers.IPProtocolTCP && len(l4) >= 20:
		s += fmt.Sprintf(" tcp %d>%d flags=%#x sum=%v", binary.BigEndian.Uint16(l4), binary.BigEndian.Uint16(l4[2:]), l4[13], gvsyChecksum(pseudo()) == 0)
	case ip.Protocol == layers.IPProtocolICMPv4 && len(l4) >= 8:
		s += fmt.Sprintf(" icmp type=%d code=%d sum=%v", l4[0], l4[1], gvsyChecksum(l4) == 0)
		if l4[0] == 0 || l4[0] == 8 {
			s += fmt.Sprintf(" id=%d", binary.BigEndian.Uint16(l4[4:]))
		} else if q := l4[8:]; len(q) >= 20 {
			inner := gopacket.NewPacket(q, layers.LayerTypeIPv4, gopacket.Default)
			if iip, _ := inner.Layer(layers.LayerTypeIPv4).(*layers.IPv4); iip != nil {
				s += " quote[" + gvcdDescribeIP(q, iip) + "]"
			}
		}
	}
	return s
}
