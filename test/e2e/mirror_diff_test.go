package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file compares gvsd's port mirroring with the real Open vSwitch 3.1:
// the same steps (mirror configurations, then crafted frames) run on OVS's
// userspace datapath and then on gvsd, over the same veth-backed system
// ports, and every port must receive the same frames from both. Its names
// carry the prefix "gvmi"; it reuses the frame builders, raw sockets and
// multiset comparison of differential_test.go.

// The ports of the differential topology, by index into gvmiDiffPorts.
const (
	gvmiA1 = iota // access port of VLAN 10
	gvmiA2        // access port of VLAN 10
	gvmiTR        // trunk of VLANs 10 and 20
	gvmiNU        // native-untagged: VLAN 20 untagged, VLAN 10 tagged
	gvmiOA        // access port of VLAN 10, a mirror output in some steps
	gvmiOT        // trunk of VLANs 20 and 30, a mirror output in some steps
	gvmiON        // native-untagged VLAN 10 plus 20 and 30, a mirror output in some steps
	gvmiB1        // on bridge B: access port of VLAN 10
	gvmiBO        // on bridge B: trunk of every VLAN, a mirror output in some steps
)

// The two bridges, joined by the patch ports gvmipa (on A) and gvmipb
// (on B), both trunks of every VLAN. Both switches use the same names;
// they never run at the same time.
const (
	gvmiBridgeA = "gvmida"
	gvmiBridgeB = "gvmidb"
	gvmiPatchA  = "gvmipa"
	gvmiPatchB  = "gvmipb"
)

var gvmiDiffPorts = gvsyPorts("gvmi-d", "gvmid", 0x6d, 9)

// gvmiDiffPortColumns are each port's Port columns, for add-port.
var gvmiDiffPortColumns = [][]string{
	gvmiA1: {"tag=10"},
	gvmiA2: {"tag=10"},
	gvmiTR: {"trunks=10,20"},
	gvmiNU: {"tag=20", "trunks=10", "vlan_mode=native-untagged"},
	gvmiOA: {"tag=10"},
	gvmiOT: {"trunks=20,30"},
	gvmiON: {"tag=10", "trunks=20,30", "vlan_mode=native-untagged"},
	gvmiB1: {"tag=10"},
	gvmiBO: nil,
}

// gvmiOnBridgeB says which ports belong to bridge B.
func gvmiOnBridgeB(i int) bool { return i == gvmiB1 || i == gvmiBO }

// gvmiConfigureDiff builds both bridges and the patch between them with
// either switch's ovs-vsctl.
func gvmiConfigureDiff(t *testing.T, vsctl func(...string) string) {
	t.Helper()
	for _, br := range []string{gvmiBridgeA, gvmiBridgeB} {
		gvsyFreeBridgeName(br)
		vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
	}
	for i, p := range gvmiDiffPorts {
		br := gvmiBridgeA
		if gvmiOnBridgeB(i) {
			br = gvmiBridgeB
		}
		vsctl(append([]string{"add-port", br, p.Host}, gvmiDiffPortColumns[i]...)...)
	}
	vsctl("--", "add-port", gvmiBridgeA, gvmiPatchA, "--", "set", "interface", gvmiPatchA, "type=patch", "options:peer="+gvmiPatchB,
		"--", "add-port", gvmiBridgeB, gvmiPatchB, "--", "set", "interface", gvmiPatchB, "type=patch", "options:peer="+gvmiPatchA)
	for _, p := range gvmiDiffPorts {
		gvsyRequirePortUp(t, vsctl, p.Host)
	}
}

// gvmiCreateMirror returns ovs-vsctl arguments that create mirror name
// with the given columns and attach it to bridge br, replacing the
// bridge's mirrors (replace) or adding to them. A column value may name
// ports as "@port" (several separated by commas); each is looked up.
func gvmiCreateMirror(br, name string, replace bool, cols ...string) []string {
	var args []string
	seen := map[string]bool{}
	for _, c := range cols {
		_, v, _ := strings.Cut(c, "=")
		for _, ref := range strings.Split(v, ",") {
			if port, ok := strings.CutPrefix(ref, "@"); ok && !seen[port] {
				seen[port] = true
				args = append(args, "--", "--id=@"+port, "get", "port", port)
			}
		}
	}
	args = append(args, "--", "--id=@m", "create", "mirror", "name="+name)
	args = append(args, cols...)
	if replace {
		return append(args, "--", "set", "bridge", br, "mirrors=@m")
	}
	return append(args, "--", "add", "bridge", br, "mirrors", "@m")
}

// gvmiHost is the veth host name of a port, for mirror columns.
func gvmiHost(i int) string { return gvmiDiffPorts[i].Host }

// gvmiRef is a port reference for gvmiCreateMirror.
func gvmiRef(ports ...int) string {
	refs := make([]string, len(ports))
	for i, p := range ports {
		refs[i] = "@" + gvmiHost(p)
	}
	return strings.Join(refs, ",")
}

// gvmiStep is one step of the differential run: ovs-vsctl commands that
// change the mirrors, then frames sent while every port captures.
type gvmiStep struct {
	name   string
	config [][]string // ovs-vsctl invocations, in order
	frames []gvsySent
	// stats names a mirror whose statistics are compared after the step,
	// and statsOut the port that is its only output (its copies there are
	// what the counter must reach).
	stats    string
	statsOut int
	// truncated is, for gvsd, how many copies the stats mirror must
	// report as truncated (tx_truncated, a gvs extension); -1: unchecked.
	truncated int
}

// gvmiBaseFrames is the traffic of every step: each source announces
// itself with a broadcast (so every step starts from the same MAC
// table), then known and unknown unicast inside and across VLANs and
// across the patch, a large frame for snaplen, and a frame from each
// mirror-output candidate (dropped while it is a mirror output).
func gvmiBaseFrames(step string) []gvsySent {
	const bcast, unknown = "ff:ff:ff:ff:ff:ff", "02:67:76:6d:ee:ee"
	m := func(i int) string { return gvmiDiffPorts[i].MAC }
	tag := func(vid uint16) []gvsyTag { return []gvsyTag{{TPID: 0x8100, VID: vid}} }
	pay := func(what string) []byte { return []byte("gvmi " + step + ": " + what) }
	big := append(pay("a1 to a2, large"), bytes.Repeat([]byte{'x'}, 1000)...)
	eth := func(dst string, src int, tags []gvsyTag, payload []byte) []byte {
		return gvsyEther(dst, m(src), tags, 0x88b5, payload)
	}
	return []gvsySent{
		{"a1 hello (broadcast, VLAN 10)", gvmiA1, eth(bcast, gvmiA1, nil, pay("a1 hello"))},
		{"a2 hello (broadcast, VLAN 10)", gvmiA2, eth(bcast, gvmiA2, nil, pay("a2 hello"))},
		{"tr hello (broadcast, tagged VLAN 20)", gvmiTR, eth(bcast, gvmiTR, tag(20), pay("tr hello"))},
		{"nu hello (broadcast, untagged: VLAN 20)", gvmiNU, eth(bcast, gvmiNU, nil, pay("nu hello"))},
		{"b1 hello (broadcast on bridge B, VLAN 10)", gvmiB1, eth(bcast, gvmiB1, nil, pay("b1 hello"))},
		{"a1 to a2", gvmiA1, eth(m(gvmiA2), gvmiA1, nil, pay("a1 to a2"))},
		{"a2 to a1", gvmiA2, eth(m(gvmiA1), gvmiA2, nil, pay("a2 to a1"))},
		{"a1 unknown unicast", gvmiA1, eth(unknown, gvmiA1, nil, pay("a1 unknown unicast"))},
		{"tr to a2 (tagged VLAN 10)", gvmiTR, eth(m(gvmiA2), gvmiTR, tag(10), pay("tr to a2"))},
		{"nu to tr (untagged: VLAN 20)", gvmiNU, eth(m(gvmiTR), gvmiNU, nil, pay("nu to tr"))},
		{"nu to a1 (tagged VLAN 10)", gvmiNU, eth(m(gvmiA1), gvmiNU, tag(10), pay("nu to a1"))},
		{"a1 to b1 (across the patch)", gvmiA1, eth(m(gvmiB1), gvmiA1, nil, pay("a1 to b1"))},
		{"b1 to a2 (across the patch)", gvmiB1, eth(m(gvmiA2), gvmiB1, nil, pay("b1 to a2"))},
		{"a1 to a2, 1000-byte payload", gvmiA1, eth(m(gvmiA2), gvmiA1, nil, big)},
		{"oA broadcast (VLAN 10)", gvmiOA, eth(bcast, gvmiOA, nil, pay("oA broadcast"))},
		{"oT broadcast (tagged VLAN 20)", gvmiOT, eth(bcast, gvmiOT, tag(20), pay("oT broadcast"))},
		{"oN broadcast (untagged: VLAN 10)", gvmiON, eth(bcast, gvmiON, nil, pay("oN broadcast"))},
		{"bo broadcast (tagged VLAN 10, bridge B)", gvmiBO, eth(bcast, gvmiBO, tag(10), pay("bo broadcast"))},
	}
}

// gvmiReservedFrame is a frame from a1 to an IEEE 802.1D reserved
// address (LLDP's), which output_vlan mirrors must not copy.
func gvmiReservedFrame(step string) gvsySent {
	return gvsySent{"a1 to 01:80:c2:00:00:0e (reserved multicast)", gvmiA1,
		gvsyEther("01:80:c2:00:00:0e", gvmiDiffPorts[gvmiA1].MAC, nil, 0x88b5, []byte("gvmi "+step+": a1 reserved multicast"))}
}

// gvmiSteps is the whole differential run. Each step but the "modify"
// and "deleted output" sequels starts by removing every mirror.
func gvmiSteps() []gvmiStep {
	A, B := gvmiBridgeA, gvmiBridgeB
	clearAll := [][]string{{"clear", "bridge", A, "mirrors"}, {"clear", "bridge", B, "mirrors"}}
	fresh := func(cmds ...[]string) [][]string { return append(append([][]string{}, clearAll...), cmds...) }
	mk := func(name string, cols ...string) []string { return gvmiCreateMirror(A, name, true, cols...) }
	out := func(p int) string { return "output_port=" + gvmiRef(p) }
	steps := []gvmiStep{
		{name: "select-src", config: fresh(mk("m-src", "select_src_port="+gvmiRef(gvmiA1), out(gvmiOT))),
			stats: "m-src", statsOut: gvmiOT},
		{name: "select-dst-with-flooding", config: fresh(mk("m-dst", "select_dst_port="+gvmiRef(gvmiA2), out(gvmiOT)))},
		{name: "select-src-and-dst", config: fresh(mk("m-both", "select_src_port="+gvmiRef(gvmiA2), "select_dst_port="+gvmiRef(gvmiA2), out(gvmiOT)))},
		{name: "select-all", config: fresh(mk("m-all", "select_all=true", out(gvmiOT))),
			stats: "m-all", statsOut: gvmiOT},
		{name: "select-vlan-20", config: fresh(mk("m-v20", "select_all=true", "select_vlan=20", out(gvmiOT)))},
		{name: "select-vlan-10-of-src-ports", config: fresh(mk("m-v10", "select_src_port="+gvmiRef(gvmiTR, gvmiNU), "select_vlan=10", out(gvmiOT)))},
		{name: "output-access-port", config: fresh(mk("m-acc", "select_all=true", out(gvmiOA)))},
		{name: "output-native-untagged-port", config: fresh(mk("m-nat", "select_all=true", out(gvmiON)))},
		{name: "output-vlan-30", config: fresh(mk("m-ov30", "select_src_port="+gvmiRef(gvmiA1), "output_vlan=30"))},
		// OVS floods an output_vlan copy to every port that carries the
		// VLAN, the packet's input port included: tr gets its own VLAN 10
		// frame back, retagged 20.
		{name: "output-vlan-20", config: fresh(mk("m-ov20", "select_src_port="+gvmiRef(gvmiA1, gvmiTR), "output_vlan=20"))},
		// Frames to 01:80:c2:00:00:0x: OVS's NORMAL drops them (forward-bpdu
		// is off by default) but still copies them to an output_port, never
		// into an output_vlan.
		{name: "reserved-multicast", config: fresh(
			mk("m-r1", "select_src_port="+gvmiRef(gvmiA1), out(gvmiOT)),
			gvmiCreateMirror(A, "m-r2", false, "select_src_port="+gvmiRef(gvmiA1), "output_vlan=30"))},
		// A packet selected by two mirrors into the same VLAN is copied
		// once. The copies also go back out of the input port (see
		// output-vlan-20), here the patch for frames from bridge B, and B
		// then learns b1's address in VLAN 30 on its patch port.
		{name: "two-mirrors-one-output-vlan", config: fresh(
			mk("m-w1", "select_src_port="+gvmiRef(gvmiA1), "output_vlan=30"),
			gvmiCreateMirror(A, "m-w2", false, "select_dst_port="+gvmiRef(gvmiA2), "output_vlan=30"))},
		{name: "three-mirrors-one-output", config: fresh(
			mk("m-s1", "select_src_port="+gvmiRef(gvmiA1), out(gvmiOT)),
			gvmiCreateMirror(A, "m-s2", false, "select_dst_port="+gvmiRef(gvmiA2), out(gvmiOT)),
			gvmiCreateMirror(A, "m-s3", false, "select_all=true", "select_vlan=10", out(gvmiOT)))},
		{name: "two-mirrors-two-outputs", config: fresh(
			mk("m-t1", "select_src_port="+gvmiRef(gvmiA1), out(gvmiOT)),
			gvmiCreateMirror(A, "m-t2", false, "select_dst_port="+gvmiRef(gvmiA2), out(gvmiOA)))},
		{name: "snaplen-64", config: fresh(mk("m-snap", "select_all=true", out(gvmiOT), "snaplen=64")),
			stats: "m-snap", statsOut: gvmiOT},
		// OVS never selects packets by a patch port: leaving through one
		// (select_dst_port) or entering through one (select_src_port), they
		// are not mirrored.
		{name: "patch-select-dst", config: fresh(mk("m-pa", "select_dst_port=@"+gvmiPatchA, out(gvmiOT)))},
		{name: "patch-select-src", config: fresh(gvmiCreateMirror(B, "m-pb", true, "select_src_port=@"+gvmiPatchB, out(gvmiBO)))},
		{name: "patch-rspan", config: fresh(
			mk("m-rs", "select_src_port="+gvmiRef(gvmiA1), "output_vlan=30"),
			gvmiCreateMirror(B, "m-rd", true, "select_all=true", "select_vlan=30", out(gvmiBO)))},
		{name: "modify-1-src-a1-to-oT", config: fresh(mk("m-mod", "select_src_port="+gvmiRef(gvmiA1), out(gvmiOT)))},
		{name: "modify-2-src-a2-to-oA", config: [][]string{{"--", "--id=@a2", "get", "port", gvmiHost(gvmiA2),
			"--", "--id=@oa", "get", "port", gvmiHost(gvmiOA), "--", "set", "mirror", "m-mod", "select_src_port=@a2", "output_port=@oa"}}},
		{name: "modify-3-cleared", config: [][]string{{"clear", "bridge", A, "mirrors"}}},
		// OVS's NORMAL forwards a frame whose source address is multicast
		// (it only does not learn it), and mirrors it.
		{name: "multicast-source", config: fresh(mk("m-mc", "select_src_port="+gvmiRef(gvmiA1), out(gvmiOT)))},
		{name: "deleted-output-1-before", config: fresh(mk("m-del", "select_all=true", out(gvmiON)))},
		{name: "deleted-output-2-after", config: [][]string{{"del-port", A, gvmiHost(gvmiON)}}},
	}
	for i := range steps {
		s := &steps[i]
		s.frames = gvmiBaseFrames(s.name)
		s.truncated = -1
		switch s.name {
		case "reserved-multicast":
			s.frames = append(s.frames, gvmiReservedFrame(s.name))
		case "multicast-source":
			s.frames = append(s.frames, gvsySent{"a1 frame with a multicast source address", gvmiA1,
				gvsyEther(gvmiDiffPorts[gvmiA2].MAC, "03:67:76:6d:00:01", nil, 0x88b5, []byte("gvmi multicast-source: multicast source"))})
		case "snaplen-64":
			s.truncated = 0 // counted from the captures
			// 60 bytes: its copy to the trunk, tagged, is exactly 64.
			edge := gvsyEther(gvmiDiffPorts[gvmiA2].MAC, gvmiDiffPorts[gvmiA1].MAC, nil, 0x88b5,
				append([]byte("gvmi snaplen-64: a1 to a2, 60 bytes"), make([]byte, 11)...))
			s.frames = append(s.frames, gvsySent{"a1 to a2, 60 bytes", gvmiA1, edge},
				gvsySent{"tr to a2, 100 bytes (tagged VLAN 10)", gvmiTR, gvsyEther(gvmiDiffPorts[gvmiA2].MAC, gvmiDiffPorts[gvmiTR].MAC,
					[]gvsyTag{{TPID: 0x8100, VID: 10}}, 0x88b5, append([]byte("gvmi snaplen-64: tr to a2, 100 bytes"), make([]byte, 46)...))})
		}
	}
	return steps
}

// gvmiDiffRun is what one switch delivered in each step, and the
// statistics of each step's stats mirror.
type gvmiDiffRun struct {
	frames [][][][]byte // step, port, frames
	stats  []map[string]int64
}

// gvmiRunSteps configures the mirrors of each step with vsctl, lets
// prepare run (empty the MAC tables, so that no step inherits what an
// earlier one taught the bridges; for the reference, also purge its flow
// cache), and captures the step's traffic on every port.
func gvmiRunSteps(t *testing.T, raws []*gvsyRaw, steps []gvmiStep, vsctl func(...string) string, prepare func()) gvmiDiffRun {
	t.Helper()
	run := gvmiDiffRun{frames: make([][][][]byte, len(steps)), stats: make([]map[string]int64, len(steps))}
	for i, s := range steps {
		for _, c := range s.config {
			vsctl(c...)
		}
		prepare()
		for _, r := range raws {
			r.drain()
		}
		run.frames[i] = gvsyCapture(t, raws, s.frames)
		if s.stats != "" {
			run.stats[i] = gvmiWaitMirrorPackets(t, vsctl, s.stats, int64(len(run.frames[i][s.statsOut])))
		}
	}
	return run
}

// gvmiWaitMirrorPackets polls a mirror's statistics (20 s at most: OVS
// writes them every 5 s) until tx_packets reaches want, and returns the
// last statistics read.
func gvmiWaitMirrorPackets(t *testing.T, vsctl func(...string) string, mirror string, want int64) map[string]int64 {
	t.Helper()
	var stats map[string]int64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		stats = parseStats(strings.TrimSpace(vsctl("get", "mirror", mirror, "statistics")))
		if stats["tx_packets"] >= want {
			break
		}
	}
	return stats
}

// gvmiOVSPrepare returns the reference's step preparation: empty the
// bridges' MAC tables, and make the switch apply the mirror change at once. OVS 3.1
// keeps using its cached datapath flows (with the old mirrors) for
// seconds after a change; revalidator/purge deletes them, so the next
// packets are translated again with the new configuration. Without that
// command, waiting out the cache (11 s) does the same.
func gvmiOVSPrepare(t *testing.T, o *gvsyOVS, bridges ...string) func() {
	t.Helper()
	ctl := filepath.Join(o.dir, "ovs-vswitchd.ctl")
	cmds := o.must("ovs-appctl", "-t", ctl, "list-commands")
	flush := func() {
		for _, br := range bridges {
			o.must("ovs-appctl", "-t", ctl, "fdb/flush", br)
		}
	}
	if !strings.Contains(cmds, "revalidator/purge") {
		t.Logf("the reference has no revalidator/purge; waiting 11 s after each mirror change")
		return func() { flush(); time.Sleep(11 * time.Second) }
	}
	return func() {
		// ovs-vsctl returned once the bridge was reconfigured; give the
		// main loop a moment to publish the new translation config, then
		// drop every cached flow (twice, for a flow installed meanwhile).
		time.Sleep(300 * time.Millisecond)
		flush()
		o.must("ovs-appctl", "-t", ctl, "revalidator/purge")
		time.Sleep(100 * time.Millisecond)
		o.must("ovs-appctl", "-t", ctl, "revalidator/purge")
	}
}

// gvmiGvsdPrepare returns gvsd's step preparation: empty both MAC tables.
// gvsd applies a mirror change before ovs-vsctl returns, so nothing else
// is needed.
func gvmiGvsdPrepare(t *testing.T, g *Gvsd) func() {
	return func() {
		for _, br := range []string{gvmiBridgeA, gvmiBridgeB} {
			appctl(t, g, "fdb/flush", br)
		}
	}
}

// gvmiDiffProbe says how to prove that the switch forwards from a port:
// the tags of a broadcast sent there, and the port that must receive it.
var gvmiDiffProbe = []struct {
	vid uint16 // 0: untagged
	to  int
}{
	gvmiA1: {0, gvmiA2}, gvmiA2: {0, gvmiA1}, gvmiTR: {10, gvmiA1}, gvmiNU: {10, gvmiA1},
	gvmiOA: {0, gvmiA1}, gvmiOT: {20, gvmiNU}, gvmiON: {0, gvmiA1}, gvmiB1: {0, gvmiA1}, gvmiBO: {10, gvmiA1},
}

// gvmiWaitForwarding waits until the switch forwards from every port.
func gvmiWaitForwarding(t *testing.T, raws []*gvsyRaw) {
	t.Helper()
	for i, from := range raws {
		p := gvmiDiffProbe[i]
		var tags []gvsyTag
		if p.vid != 0 {
			tags = []gvsyTag{{TPID: 0x8100, VID: p.vid}}
		}
		probe := gvsyEther("ff:ff:ff:ff:ff:ff", fmt.Sprintf("02:67:76:6d:ff:%02x", i+1), tags, 0x88b5, []byte("gvmi readiness probe"))
		if !gvsyProbe(from, raws[p.to], probe) {
			t.Fatalf("the switch forwarded no probe from %s to %s within 15s", from.label, raws[p.to].label)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, r := range raws {
		r.drain()
	}
}

// TestMirrorDifferential runs the mirror steps on the real OVS 3.1
// userspace datapath and then on gvsd, over the same veth-backed system
// ports, and requires every port to receive the same frames from both in
// every step, and the compared mirrors to count the same packets and
// bytes. Subtests are named after the steps.
func TestMirrorDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-appctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip", "sysctl")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	gvsyTopology(t, gvmiDiffPorts...)
	raws := make([]*gvsyRaw, len(gvmiDiffPorts))
	labels := []string{"a1", "a2", "tr", "nu", "oA", "oT", "oN", "b1", "bo"}
	for i, p := range gvmiDiffPorts {
		raws[i] = gvsyOpenRaw(t, fmt.Sprintf("%s (%s)", labels[i], p.Host), p.NS, p.Inner)
	}
	steps := gvmiSteps()
	var all []gvsySent
	for _, s := range steps {
		all = append(all, s.frames...)
	}
	payloads := gvsyPayloadNames(t, all)

	ref := func() gvmiDiffRun {
		gvmiWaitNetdevTapFree(t)
		o := gvsyStartOVS(t)
		defer o.Stop()
		gvmiConfigureDiff(t, o.MustVsctl)
		gvmiWaitForwarding(t, raws)
		return gvmiRunSteps(t, raws, steps, o.MustVsctl, gvmiOVSPrepare(t, o, gvmiBridgeA, gvmiBridgeB))
	}()
	got := func() gvmiDiffRun {
		g := StartGvsd(t)
		defer g.Stop()
		g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
		gvmiConfigureDiff(t, g.MustVsctl)
		gvmiWaitForwarding(t, raws)
		return gvmiRunSteps(t, raws, steps, g.MustVsctl, gvmiGvsdPrepare(t, g))
	}()

	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			gvmiCompareStep(t, raws, ref.frames[i], got.frames[i], payloads)
			if s.stats != "" {
				gvmiCompareStats(t, s, ref.stats[i], got.stats[i], got.frames[i][s.statsOut], ref.frames[i][s.statsOut], payloads)
			}
		})
	}
}

// gvmiCompareStep fails the test with a per-port diff if gvsd's captures
// in one step differ from the reference's.
func gvmiCompareStep(t *testing.T, raws []*gvsyRaw, ref, got [][][]byte, payloads map[[32]byte]string) {
	t.Helper()
	total := 0
	var report, listing []string
	for i, r := range raws {
		refSet := gvmiMultiset(ref[i], payloads)
		gotSet := gvmiMultiset(got[i], payloads)
		for _, n := range refSet {
			total += n
		}
		listing = append(listing, r.label+":\n"+gvsyListing(refSet))
		if d := gvsyDiff(refSet, gotSet); len(d) > 0 {
			report = append(report, r.label+":\n"+strings.Join(d, "\n"))
		}
	}
	if total < 10 {
		t.Fatalf("the reference OVS delivered only %d frames in all: the step did not run", total)
	}
	if len(report) > 0 {
		t.Errorf("gvsd delivered different frames from OVS 3.1:\n%s\nwhat OVS delivered to each port:\n%s",
			strings.Join(report, "\n"), strings.Join(listing, "\n"))
	}
}

// gvmiCompareStats compares a mirror's counters on both switches: each
// must have counted one packet per copy at its only output, and the same
// bytes. For snaplen, gvsd must also count every truncated copy.
func gvmiCompareStats(t *testing.T, s gvmiStep, ref, got map[string]int64, gotCopies, refCopies [][]byte, payloads map[[32]byte]string) {
	t.Helper()
	t.Logf("mirror %s statistics: OVS %v, gvsd %v", s.stats, ref, got)
	if ref["tx_packets"] != int64(len(refCopies)) {
		t.Errorf("OVS mirror %s: tx_packets=%d, but its output received %d copies (the reference itself disagrees: check the test)", s.stats, ref["tx_packets"], len(refCopies))
	}
	if got["tx_packets"] != int64(len(gotCopies)) {
		t.Errorf("gvsd mirror %s: tx_packets=%d, but its output received %d copies", s.stats, got["tx_packets"], len(gotCopies))
	}
	if got["tx_packets"] != ref["tx_packets"] || got["tx_bytes"] != ref["tx_bytes"] {
		t.Errorf("mirror %s statistics differ: OVS tx_packets=%d tx_bytes=%d, gvsd tx_packets=%d tx_bytes=%d",
			s.stats, ref["tx_packets"], ref["tx_bytes"], got["tx_packets"], got["tx_bytes"])
	}
	if s.truncated >= 0 {
		want := 0
		for _, f := range gotCopies {
			if d, _ := gvmiDescribe(f, payloads); strings.Contains(d, ", cut to ") {
				want++
				if len(f) != 64 {
					t.Errorf("a truncated copy has %d bytes, want the snaplen of 64: %s", len(f), d)
				}
			}
		}
		if want < 2 {
			t.Errorf("only %d copies at the output were cut to the snaplen of 64 bytes; the step sends 2 longer frames", want)
		}
		if got["tx_truncated"] != int64(want) {
			t.Errorf("gvsd mirror %s: tx_truncated=%d, want %d (copies of 64 bytes at the output)", s.stats, got["tx_truncated"], want)
		}
	}
}

// gvmiMultiset counts each description of a port's frames, ignoring the
// kernel's own frames but not the scenario's reserved-multicast ones.
func gvmiMultiset(frames [][]byte, payloads map[[32]byte]string) map[string]int {
	set := map[string]int{}
	for _, f := range frames {
		if d, ignore := gvmiDescribe(f, payloads); !ignore {
			set[d]++
		}
	}
	return set
}

// gvmiDescribe is gvsyDescribe, except that frames to reserved multicast
// addresses are kept when they are the scenario's, and that a payload cut
// short (snaplen) is named after the frame it was cut from.
func gvmiDescribe(f []byte, payloads map[[32]byte]string) (string, bool) {
	desc, ignore := gvsyDescribe(f, payloads)
	if len(f) < 14 {
		return desc, false
	}
	rest := f[14:]
	if gvsyIsVLAN(binary.BigEndian.Uint16(f[12:14])) && len(rest) >= 4 {
		rest = rest[4:]
	}
	if ignore {
		name, ok := payloads[sha256.Sum256(rest)]
		if !ok || binary.BigEndian.Uint16(f[12:14]) == 0x86dd {
			return "", true
		}
		return fmt.Sprintf("dst=%s src=%s (reserved multicast) payload=%q", net.HardwareAddr(f[0:6]), net.HardwareAddr(f[6:12]), name), false
	}
	if !strings.Contains(desc, "unknown payload") {
		return desc, false
	}
	if name := gvmiPrefixOf(rest, payloads); name != "" {
		cut := strings.Index(desc, "payload=")
		return desc[:cut] + "payload=" + strconv.Quote(fmt.Sprintf("%s, cut to %d bytes after the EtherType", name, len(rest))), false
	}
	return desc, false
}

// gvmiPrefixOf names the scenario payload that starts with rest (but is
// longer), or "".
func gvmiPrefixOf(rest []byte, payloads map[[32]byte]string) string {
	if len(rest) < 2 {
		return ""
	}
	for _, s := range gvmiSteps() {
		for _, fr := range s.frames {
			body := fr.Frame[12:]
			for len(body) >= 6 && gvsyIsVLAN(binary.BigEndian.Uint16(body)) {
				body = body[4:]
			}
			text := body[2:]
			if len(rest) < len(text) && bytes.Equal(text[:len(rest)], rest) {
				return payloads[sha256.Sum256(text)]
			}
		}
	}
	return ""
}

// gvmiWaitNetdevTapFree waits (3 min at most) until no process holds the
// tap "ovs-netdev": every OVS userspace datapath on the host opens that
// one device, so a second reference switch started meanwhile (another
// test run, a benchmark) cannot create its bridges.
func gvmiWaitNetdevTapFree(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(2 * time.Second) {
		holder := gvmiNetdevTapHolder()
		if holder == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s has held the tap ovs-netdev for 3 minutes: another OVS userspace datapath runs on this host, and the reference switch needs that device", holder)
		}
	}
}

// gvmiNetdevTapHolder returns the pid of a process with a file
// descriptor attached to the tap ovs-netdev, or "".
func gvmiNetdevTapHolder() string {
	infos, _ := filepath.Glob("/proc/[0-9]*/fdinfo/*")
	for _, f := range infos {
		b, err := os.ReadFile(f)
		if err == nil && bytes.Contains(b, []byte("iff:\tovs-netdev\n")) {
			return strings.Split(f, "/")[2]
		}
	}
	return ""
}
