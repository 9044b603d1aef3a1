package e2e

import (
	"os"
	"strings"
	"testing"
)

// This file is TestOfctlAppctlDifferential's sibling for OpenFlow 1.4
// and 1.5: the same ovs-ofctl commands with -O OpenFlow14 and -O
// OpenFlow15 against the real OVS 3.1 and gvsd must print the same.
// Everything made here starts with "gvsw".

func gvswOf14(args ...string) gvsuCmd {
	return gvsuOf(append([]string{"-O", "OpenFlow14"}, args...)...)
}
func gvswOf15(args ...string) gvsuCmd {
	return gvsuOf(append([]string{"-O", "OpenFlow15"}, args...)...)
}

// gvswSame are run in order on both switches; the flow commands build
// on each other.
var gvswSame = []gvsuCmd{
	gvswOf14("show", "br"),
	gvswOf15("show", "br"),
	gvswOf15("get-frags", "br"),
	gvswOf14("set-frags", "br", "drop"),
	gvswOf15("get-frags", "br"),
	gvswOf15("set-frags", "br", "reassemble"),
	gvswOf14("get-frags", "br"),
	gvswOf15("set-frags", "br", "nx-match"),
	gvswOf14("get-frags", "br"),
	gvswOf14("set-frags", "br", "normal"),
	gvswOf14("dump-ports", "br"),
	gvswOf15("dump-ports", "br", "1"),
	gvswOf14("dump-ports-desc", "br"),
	gvswOf15("dump-ports-desc", "br"),
	gvswOf15("dump-ports-desc", "br", "2"),
	gvswOf15("dump-ports-desc", "br", "77"),
	gvswOf14("dump-tables", "br"),
	gvswOf15("dump-tables", "br"),
	gvswOf14("dump-table-desc", "br"),
	gvswOf15("dump-table-desc", "br"),
	gvswOf14("add-flow", "br", "table=0,priority=10,in_port=1,actions=output:2"),
	gvswOf14("add-flow", "br", "cookie=0x10,table=0,priority=20,importance=7,in_port=2,dl_type=0x0800,actions=output:1"),
	gvswOf15("add-flow", "br", "cookie=0x11,table=1,priority=30,udp,tp_dst=53,actions=output:3"),
	gvswOf15("add-flow", "br", "cookie=0x20,table=1,priority=40,importance=3,tcp,actions=drop"),
	gvswOf15("add-flows", "br", "@flows"),
	gvswOf14("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf15("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf15("--no-stats", "dump-flows", "br", "--rsort=priority"),
	gvswOf15("--no-stats", "dump-flows", "br", "in_port=1"),
	gvswOf14("--no-stats", "dump-flows", "br", "table=1"),
	gvswOf15("--no-stats", "dump-flows", "br", "cookie=0x10/0xf0"),
	gvswOf15("--no-stats", "--names", "dump-flows", "br", "--sort"),
	gvswOf14("dump-flows", "br", "--sort"),
	gvsuOf("--no-stats", "dump-flows", "br", "--sort"),
	gvsuOf("-O", "OpenFlow13", "--no-stats", "dump-flows", "br", "--sort"),
	gvswOf14("dump-aggregate", "br"),
	gvswOf15("dump-aggregate", "br"),
	gvswOf15("dump-aggregate", "br", "table=1"),
	gvswOf15("dump-aggregate", "br", "cookie=0x11/-1"),
	gvswOf14("mod-flows", "br", "cookie=0x11/-1,actions=output:2"),
	gvswOf15("--strict", "mod-flows", "br", "table=1,priority=40,tcp,actions=output:1"),
	gvswOf15("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf14("del-flows", "br", "cookie=0x20/-1"),
	gvswOf15("--strict", "del-flows", "br", "table=0,priority=10,in_port=1"),
	gvswOf15("--strict", "del-flows", "br", "table=0,priority=11,in_port=1"),
	gvswOf14("--no-stats", "dump-flows", "br", "--sort"),
	// Counters: a packet-out through table 6 in each version.
	gvswOf14("add-flow", "br", "table=6,actions=drop"),
	gvswOf14("packet-out", "br", "in_port=LOCAL packet=0002677675000202677675000188b5676f actions=resubmit(,6)"),
	gvswOf15("packet-out", "br", "in_port=LOCAL packet=0002677675000202677675000188b5676f actions=resubmit(,6)"),
	gvswOf15("packet-out", "br", "packet=0002677675000202677675000188b5676f actions=resubmit(,6)"),
	gvswOf15("dump-aggregate", "br", "table=6"),
	gvswOf14("dump-aggregate", "br", "table=6"),
	gvswOf15("packet-out", "br", "in_port=1 packet=0002677675000202677675000188b5676f actions=output:2"),
	gvswOf14("queue-stats", "br"),
	gvswOf15("queue-stats", "br", "77"),
	gvswOf15("queue-stats", "br", "1", "5"),
	// Errors in each version's numbers.
	gvswOf14("add-flow", "br", "table=255,actions=drop"),
	gvswOf15("add-flow", "br", "table=254,actions=drop"),
	gvswOf14("add-flow", "br", "priority=7,actions=output:0"),
	gvswOf15("add-flow", "br", "table=3,actions=goto_table:1"),
	gvswOf15("add-flow", "br", "in_port=99,actions=output:98"),
	gvswOf14("packet-out", "br", "in_port=1 packet=00 actions=output:2"),
	gvswOf15("mod-port", "br", "nosuch", "up"),
	// NO_FLOOD is 1.0's: ovs-ofctl's 1.5 port mod changes no bit.
	gvswOf15("mod-port", "br", "2", "no-flood"),
	gvsuOf("-O", "OpenFlow16", "show", "br"),
	// monitor says what it asks for (set-config, async configuration) and
	// waits: nothing comes, on both, until the timeout.
	{"timeout", []string{"1", "ovs-ofctl", "-O", "OpenFlow14", "monitor", "br"}},
	{"timeout", []string{"1", "ovs-ofctl", "-O", "OpenFlow15", "monitor", "br", "65534"}},
	// Bundles: all or nothing.
	gvsuOf("--bundle", "add-flow", "br", "table=7,priority=3,actions=drop"),
	gvswOf15("--bundle", "add-flows", "br", "@flows"),
	gvswOf14("--bundle", "mod-flows", "br", "table=7,actions=output:1"),
	gvswOf14("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf15("--bundle", "add-flows", "br", "@overlap"),
	gvswOf15("--bundle", "add-flows", "br", "@badflow"),
	gvswOf14("--no-stats", "dump-flows", "br", "table=8"),
	gvswOf15("--bundle", "del-flows", "br", "table=7"),
	gvswOf14("--bundle", "replace-flows", "br", "@flows2"),
	gvswOf14("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf15("--bundle", "replace-flows", "br", "@flows"),
	gvswOf15("diff-flows", "br", "@flows"),
	gvswOf14("replace-flows", "br", "@flows"),
	gvswOf15("--no-stats", "dump-flows", "br", "--sort"),
	gvswOf15("del-flows", "br"),
	gvswOf14("--no-stats", "dump-flows", "br"),
}

// gvswRefused are what gvs does not do yet in 1.4 and 1.5
// (docs/COMPATIBILITY.md): gvsd must refuse each with an error that
// says so, which ovs-ofctl prints.
var gvswRefused = []struct {
	cmd  gvsuCmd
	want string
}{}

// TestOfctl1415Differential runs gvswSame on OVS 3.1 and on gvsd,
// bridges of the same name with the same veths, and compares them; then
// gvswRefused on gvsd.
func TestOfctl1415Differential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	const br = "gvswbr"
	_, configure := gvofDiffPorts(t, "gvswdiff", "gvsw", br, 3)
	files := map[string]string{
		"@flows":  gvofWriteFile(t, "gvswflows", gvsuFlows...),
		"@flows2": gvofWriteFile(t, "gvswflows2", "table=0, priority=10, in_port=2, actions=output:1", "table=9, priority=1, actions=drop"),
		// The second flow overlaps the first: the commit fails, neither stays.
		"@overlap": gvofWriteFile(t, "gvswoverlap", "table=8, priority=5, actions=drop", "table=8, priority=5, check_overlap, tcp, actions=drop"),
		// The second flow is refused as it is added: neither stays.
		"@badflow": gvofWriteFile(t, "gvswbadflow", "table=8, priority=6, actions=drop", "table=8, priority=6, ip, actions=goto_table:1"),
	}
	var refused []gvsuCmd
	for _, r := range gvswRefused {
		refused = append(refused, r.cmd)
	}
	ref, got := gvsuRunBoth(t, br, configure, files, [][]gvsuCmd{gvswSame}, [][]gvsuCmd{gvswSame, refused})

	// The reference must have spoken 1.4 and 1.5, or the comparison
	// says nothing.
	all := ""
	for _, r := range ref[0] {
		all += r.text
	}
	for _, want := range []string{"OFPT_FEATURES_REPLY (OF1.4)", "OFPT_FEATURES_REPLY (OF1.5)", "importance=7", "OFPST_AGGREGATE reply (OF1.5)"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the reference OVS never printed %q: the scenario did not run\n%s", want, all)
		}
	}
	for i := range ref[0] {
		if ref[0][i].text != got[0][i].text {
			t.Errorf("OVS 3.1 and gvsd differ:\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", ref[0][i].text, got[0][i].text)
		}
	}
	for i, r := range gvswRefused {
		if !strings.Contains(got[1][i].stdout+got[1][i].stderr, r.want) {
			t.Errorf("gvsd: want %q:\n%s", r.want, got[1][i].text)
		}
	}
}
