package e2e

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// OpenFlow groups (docs/GUIDE.md "Groups"): ovs-ofctl's group commands
// against OVS 3.1 and gvsd, and real packets through each group type.
// Everything made here starts with "gvgr".

func gvgrOf13(args ...string) gvsuCmd {
	return gvsuOf(append([]string{"-O", "OpenFlow13"}, args...)...)
}

// gvgrSame run in order on both switches and must print the same.
var gvgrSame = []gvsuCmd{
	gvgrOf13("add-group", "br", "group_id=1,type=all,bucket=output:1,bucket=output:2"),
	gvgrOf13("add-group", "br", "group_id=2,type=select,bucket=weight:5,output:1,bucket=output:2"),
	gvswOf15("add-group", "br", "group_id=3,type=fast_failover,bucket=watch_port:1,output:1,bucket=watch_port:2,output:2"),
	gvgrOf13("add-group", "br", "group_id=4,type=indirect,bucket=mod_dl_dst:02:00:00:00:00:09,output:3"),
	gvgrOf13("add-group", "br", "group_id=5,type=all,bucket=group:99"),
	gvgrOf13("add-group", "br", "group_id=6,type=all,bucket=group:4,bucket=dec_ttl,output:1"),
	gvswOf15("add-group", "br", "group_id=10,type=select,selection_method=hash,fields(ip_src,tcp_dst),bucket=output:1,bucket=output:2"),
	gvswOf15("add-group", "br", "group_id=11,type=select,selection_method=hash,selection_method_param=7,fields(eth_src=ff:ff:ff:00:00:00,ip_dst),bucket=output:1"),
	gvswOf15("add-group", "br", "group_id=12,type=select,selection_method=dp_hash,bucket=output:1"),
	gvgrOf13("add-group", "br", "group_id=13,type=select,selection_method=hash,fields(ip_src),bucket=output:1"),
	gvgrOf13("add-flow", "br", "priority=5,in_port=1,actions=group:1"),
	gvgrOf13("add-flow", "br", "priority=6,in_port=2,actions=group:4,group:2"),
	gvswOf15("add-flow", "br", "priority=7,in_port=3,actions=group:6"),
	gvgrOf13("dump-groups", "br"),
	gvswOf15("dump-groups", "br"),
	gvgrOf13("dump-groups", "br", "group_id=4"),
	gvswOf15("dump-groups", "br", "group_id=2"),
	gvgrOf13("dump-group-stats", "br"),
	gvswOf15("dump-group-stats", "br"),
	gvgrOf13("dump-group-stats", "br", "group_id=2"),
	gvgrOf13("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf15("--no-stats", "dump-flows", "br", "--sort"),
	gvsuOf("--no-stats", "dump-flows", "br", "--sort"),
	// Errors, with OVS 3.1's codes.
	gvgrOf13("add-group", "br", "group_id=1,type=all,bucket=output:2"),
	gvswOf15("mod-group", "br", "group_id=77,type=all,bucket=output:1"),
	gvgrOf13("add-flow", "br", "in_port=3,actions=group:99"),
	gvswOf15("add-flow", "br", "in_port=3,actions=group:99"),
	gvgrOf13("add-group", "br", "group_id=7,type=all,bucket=watch_port:1,output:1"),
	// Changes.
	gvgrOf13("mod-group", "br", "group_id=4,type=indirect,bucket=output:2"),
	gvgrOf13("--may-create", "mod-group", "br", "group_id=8,type=indirect,bucket=output:2"),
	gvswOf15("--may-create", "mod-group", "br", "group_id=8,type=all,bucket=output:3"),
	gvswOf15("insert-buckets", "br", "group_id=1,command_bucket_id=first,bucket=bucket_id:7,actions=output:3"),
	gvswOf15("insert-buckets", "br", "group_id=1,command_bucket_id=last,bucket=bucket_id:8,actions=output:3"),
	gvswOf15("remove-buckets", "br", "group_id=1,command_bucket_id=1"),
	gvswOf15("dump-groups", "br"),
	gvgrOf13("dump-groups", "br"),
	// Counters: packet-outs through a group count in it and its
	// buckets; inserting or removing buckets starts the group's
	// counters again but not the buckets'; a modify starts all again.
	gvswOf15("add-group", "br", "group_id=20,type=all,bucket=output:1,bucket=output:2"),
	gvswOf15("packet-out", "br", "in_port=LOCAL packet=0002677675000202677675000188b5676f actions=group:20"),
	gvswOf15("packet-out", "br", "in_port=LOCAL packet=0002677675000202677675000188b5676f actions=group:20"),
	gvgrOf13("packet-out", "br", "in_port=LOCAL packet=0002677675000202677675000188b5676f actions=group:20"),
	gvswOf15("dump-group-stats", "br", "group_id=20"),
	gvswOf15("insert-buckets", "br", "group_id=20,command_bucket_id=last,bucket=bucket_id:5,actions=output:3"),
	gvswOf15("dump-group-stats", "br", "group_id=20"),
	gvswOf15("remove-buckets", "br", "group_id=20,command_bucket_id=first"),
	gvswOf15("dump-group-stats", "br", "group_id=20"),
	gvswOf15("mod-group", "br", "group_id=20,type=all,bucket=output:3"),
	gvswOf15("dump-group-stats", "br", "group_id=20"),
	gvswOf15("packet-out", "br", "in_port=LOCAL packet=0002677675000202677675000188b5676f actions=group:77"),
	// Deleting a group deletes the flows that send to it.
	gvgrOf13("del-groups", "br", "group_id=1"),
	gvgrOf13("--no-stats", "dump-flows", "br", "--sort"),
	gvgrOf13("dump-group-stats", "br"),
	gvswOf15("del-groups", "br", "group_id=4"),
	gvswOf15("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf15("del-groups", "br"),
	gvgrOf13("dump-groups", "br"),
	gvswOf15("dump-group-stats", "br"),
}

// gvgrGroupLine is a line of a group dump: OVS lists its groups in the
// order of its hash table, gvsd by id, so the test sorts them.
var gvgrGroupLine = regexp.MustCompile(`^ group_id=`)

func gvgrCanon(s string) string {
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); {
		j := i
		for j < len(lines) && gvgrGroupLine.MatchString(lines[j]) {
			j++
		}
		if j > i {
			sort.Strings(lines[i:j])
			i = j
		} else {
			i++
		}
	}
	return strings.Join(lines, "\n")
}

// TestGroupsDifferential runs gvgrSame on OVS 3.1 and on gvsd and
// compares what ovs-ofctl prints (durations masked, group lines sorted);
// then checks gvsd's dump-group-features. On the old code gvsd refused
// the first add-group with OFPBRC_BAD_TYPE.
func TestGroupsDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	const br = "gvgrbr"
	_, configure := gvofDiffPorts(t, "gvgrdiff", "gvgrd", br, 3)
	features := []gvsuCmd{gvgrOf13("dump-group-features", "br"), gvswOf15("dump-group-features", "br")}
	ref, got := gvsuRunBoth(t, br, configure, nil, [][]gvsuCmd{gvgrSame}, [][]gvsuCmd{gvgrSame, features})
	gvgrCompare(t, ref, got, []string{"OFPST_GROUP_DESC reply (OF1.5)", "type=ff", "ref_count=1", "OFPGMFC_GROUP_EXISTS", "bucket_id:7",
		"group_id=8,type=all,bucket=bucket_id:0,actions=output:3", "fields(eth_src=ff:ff:ff:00:00:00,ip_dst)",
		"group_id=20,duration=*,ref_count=0,packet_count=3,byte_count=51"},
		[]string{"Types:  0xf", "Capabilities:  0x7", "max_groups=0x10000", "actions: output group set_field strip_vlan push_vlan mod_nw_ttl dec_ttl\n"})
}

// gvgrCompare checks that the reference printed each of refWants (so
// that the scenario ran), that OVS 3.1 and gvsd printed the same for
// every command of ref[0] and got[0] (durations masked, group lines
// sorted), and that gvsd's dump-group-features (got[1]) shows
// featureWants.
func gvgrCompare(t *testing.T, ref, got [][]gvsuResult, refWants, featureWants []string) {
	t.Helper()
	all := ""
	for _, r := range ref[0] {
		all += r.text
	}
	for _, want := range refWants {
		if !strings.Contains(all, want) {
			t.Fatalf("the reference OVS never printed %q: the scenario did not run\n%s", want, all)
		}
	}
	for i := range ref[0] {
		if a, b := gvgrCanon(ref[0][i].text), gvgrCanon(got[0][i].text); a != b {
			t.Errorf("OVS 3.1 and gvsd differ:\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", a, b)
		}
	}
	for _, r := range got[1] {
		for _, want := range featureWants {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("gvsd's group features lack %q:\n%s", want, r.text)
			}
		}
	}
}

// gvgrFrame is an IPv4 TCP or UDP frame from 10.79.0.1:sport to
// 10.79.0.9:80, with checksums (tcpdump prints what it sees either way).
func gvgrFrame(proto byte, sport uint16) []byte {
	f := []byte{2, 0x67, 0x76, 0x67, 0x72, 9, 2, 0x67, 0x76, 0x67, 0x72, 1, 8, 0}
	l4len := 20
	if proto == 17 {
		l4len = 8
	}
	ip := []byte{0x45, 0, 0, byte(20 + l4len), 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 79, 0, 1, 10, 79, 0, 9}
	binary.BigEndian.PutUint16(ip[10:], gvgrChecksum(ip, 0))
	l4 := make([]byte, l4len)
	binary.BigEndian.PutUint16(l4[0:], sport)
	binary.BigEndian.PutUint16(l4[2:], 80)
	if proto == 6 {
		binary.BigEndian.PutUint32(l4[4:], 1000)
		l4[12], l4[13] = 5<<4, 0x02 // SYN
		binary.BigEndian.PutUint16(l4[14:], 64240)
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	}
	pseudo := uint32(10<<8|79) + uint32(0<<8|1) + uint32(10<<8|79) + uint32(0<<8|9) + uint32(proto) + uint32(l4len)
	sum := gvgrChecksum(l4, pseudo)
	if proto == 6 {
		binary.BigEndian.PutUint16(l4[16:], sum)
	} else {
		binary.BigEndian.PutUint16(l4[6:], sum)
	}
	return append(append(f, ip...), l4...)
}

func gvgrChecksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// gvgrSports returns the source ports of the frames to 10.79.0.9.80 that
// tcpdump printed.
func gvgrSports(lines []string) map[string]int {
	re := regexp.MustCompile(`10\.79\.0\.1\.(\d+) > 10\.79\.0\.9\.80`)
	out := map[string]int{}
	for _, l := range lines {
		if m := re.FindStringSubmatch(l); m != nil {
			out[m[1]]++
		}
	}
	return out
}

// TestGroupsForwardPackets: real packets through each group type on a
// gvsd bridge with three veths: an all group copies a ping to two ports
// (both capture it, the ping is answered, the group and both buckets
// count it); a select group puts each of 16 TCP connections on one port
// and spreads them over both; a fast_failover group moves UDP traffic to
// its second port when the first one's veth goes down, and back when it
// comes up. On the old code the first add-group failed (OFPBRC_BAD_TYPE).
func TestGroupsForwardPackets(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ping", "tcpdump")
	for i := range 3 {
		lab.netns(fmt.Sprintf("gvgrns%d", i))
	}
	lab.veth("gvgr0", "gvgr0x", "gvgrns0", "10.79.0.1/24")
	lab.veth("gvgr1", "gvgr1x", "gvgrns1", "10.79.0.2/24")
	lab.veth("gvgr2", "gvgr2x", "gvgrns2", "10.79.0.3/24")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvgrbr")
	for i := range 3 {
		p := fmt.Sprintf("gvgr%d", i)
		g.MustVsctl("add-port", "gvgrbr", p, "--", "set", "interface", p, fmt.Sprintf("ofport_request=%d", i+1))
		gvsyRequirePortUp(t, g.MustVsctl, p)
	}
	of13 := []string{"-O", "OpenFlow13"}
	ofctl := func(args ...string) string { t.Helper(); return gvofMust(t, g, of13, args...) }
	ofctl("del-flows", "gvgrbr")
	ofctl("add-group", "gvgrbr", "group_id=1,type=all,bucket=output:2,bucket=output:3")
	ofctl("add-group", "gvgrbr", "group_id=2,type=select,bucket=output:2,bucket=output:3")
	ofctl("add-group", "gvgrbr", "group_id=3,type=fast_failover,bucket=watch_port:2,output:2,bucket=watch_port:3,output:3")
	ofctl("add-flow", "gvgrbr", "arp,actions=NORMAL")
	ofctl("add-flow", "gvgrbr", "in_port=1,icmp,actions=group:1")
	ofctl("add-flow", "gvgrbr", "in_port=1,tcp,actions=group:2")
	ofctl("add-flow", "gvgrbr", "in_port=1,udp,actions=group:3")
	ofctl("add-flow", "gvgrbr", "in_port=2,actions=output:1")

	// all: both ports get the echo request; ns1 answers.
	c1, c2 := lab.capture("gvgrns1", "gvgr1x", "icmp"), lab.capture("gvgrns2", "gvgr2x", "icmp")
	lab.pingOK("gvgrns0", "10.79.0.2")
	if !c1.waitFor(5*time.Second, "echo request") || !c2.waitFor(5*time.Second, "echo request") {
		t.Errorf("the all group did not copy the ping to both ports:\n%s\n--\n%s", strings.Join(c1.stop(), "\n"), strings.Join(c2.stop(), "\n"))
	}
	c1.stop()
	c2.stop()
	stats := ofctl("dump-group-stats", "gvgrbr", "group_id=1")
	if m := regexp.MustCompile(`packet_count=(\d+),byte_count=\d+,bucket0:packet_count=(\d+),byte_count=\d+,bucket1:packet_count=(\d+)`).FindStringSubmatch(stats); m == nil || m[1] == "0" || m[2] != m[1] || m[3] != m[1] {
		t.Errorf("group 1's counters do not show the pings in the group and both buckets:\n%s", stats)
	}

	// select: 16 connections, 3 SYNs each.
	c1, c2 = lab.capture("gvgrns1", "gvgr1x", "tcp"), lab.capture("gvgrns2", "gvgr2x", "tcp")
	var frames [][]byte
	for range 3 {
		for i := range 16 {
			frames = append(frames, gvgrFrame(6, uint16(40000+i)))
		}
	}
	lab.inject("gvgrns0", "gvgr0x", frames...)
	time.Sleep(time.Second)
	s1, s2 := gvgrSports(c1.stop()), gvgrSports(c2.stop())
	seen := 0
	for i := range 16 {
		sp := fmt.Sprint(40000 + i)
		if s1[sp] > 0 && s2[sp] > 0 {
			t.Errorf("connection from port %s: %d SYNs on port 2, %d on port 3; want all on one", sp, s1[sp], s2[sp])
		}
		seen += s1[sp] + s2[sp]
	}
	if seen < 40 {
		t.Errorf("%d of 48 SYNs arrived: %v and %v", seen, s1, s2)
	}
	if len(s1) == 0 || len(s2) == 0 {
		t.Errorf("the select group used one port only: %v and %v", s1, s2)
	}

	// fast_failover: port 2 while its veth is up, port 3 when it is down.
	// send sends two UDP datagrams from sport and says which ports got
	// them (port 2's veth is not watched while it is down).
	send := func(sport uint16, watch1 bool) (on1, on2 bool) {
		t.Helper()
		var c1 *tcpdumpCapture
		if watch1 {
			c1 = lab.capture("gvgrns1", "gvgr1x", "udp")
		}
		c2 := lab.capture("gvgrns2", "gvgr2x", "udp")
		lab.inject("gvgrns0", "gvgr0x", gvgrFrame(17, sport), gvgrFrame(17, sport))
		time.Sleep(500 * time.Millisecond)
		if c1 != nil {
			on1 = gvgrSports(c1.stop())[fmt.Sprint(sport)] > 0
		}
		return on1, gvgrSports(c2.stop())[fmt.Sprint(sport)] > 0
	}
	if on1, on2 := send(50001, true); !on1 || on2 {
		t.Errorf("fast_failover with both up: port 2 %v, port 3 %v; want port 2 only", on1, on2)
	}
	lab.mustExec("gvgrns1", "ip", "link", "set", "gvgr1x", "down")
	ok := false
	for i := 0; i < 20 && !ok; i++ { // the watcher reads the links every 100 ms
		_, on2 := send(uint16(50100+i), false)
		ok = on2
	}
	if !ok {
		t.Errorf("fast_failover did not move to port 3 when gvgr1x went down")
	}
	lab.mustExec("gvgrns1", "ip", "link", "set", "gvgr1x", "up")
	ok = false
	for i := 0; i < 20 && !ok; i++ {
		on1, on2 := send(uint16(50200+i), true)
		ok = on1 && !on2
	}
	if !ok {
		t.Errorf("fast_failover did not come back to port 2 when gvgr1x came up")
	}
}
