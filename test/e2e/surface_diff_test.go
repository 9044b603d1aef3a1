package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// This file compares what an operator's scripts read from ovs-ofctl and
// ovs-appctl (formats, column names, exit statuses, error messages) on
// the real OVS 3.1 (userspace datapath) and on gvsd, command by command,
// and checks that what gvs does not support yet fails with an error a
// user can read. Everything made here starts with "gvsu".

// gvsuCmd is one command: a client and its arguments, "br" standing for
// the bridge and "@NAME" for a flow file.
type gvsuCmd struct {
	tool string
	args []string
}

func gvsuOf(args ...string) gvsuCmd { return gvsuCmd{"ovs-ofctl", args} }
func gvsuAp(args ...string) gvsuCmd { return gvsuCmd{"ovs-appctl", args} }

// gvsuSame are the commands whose output must be the same on both, in
// order: the flow commands build on each other.
var gvsuSame = []gvsuCmd{
	gvsuOf("show", "br"),
	gvsuOf("-O", "OpenFlow13", "show", "br"),
	gvsuOf("dump-ports", "br"),
	gvsuOf("-O", "OpenFlow13", "dump-ports", "br", "1"),
	gvsuOf("dump-ports-desc", "br"),
	gvsuOf("dump-tables", "br"),
	gvsuOf("-O", "OpenFlow13", "dump-tables", "br"),
	// The fragment mode is the bridge's: each command is a new
	// connection, which reads what the one before set. reassemble is
	// not implemented by either: ovs-ofctl reads the mode back and fails.
	gvsuOf("get-frags", "br"),
	gvsuOf("set-frags", "br", "drop"),
	gvsuOf("-O", "OpenFlow13", "get-frags", "br"),
	gvsuOf("-O", "OpenFlow13", "set-frags", "br", "nx-match"),
	gvsuOf("get-frags", "br"),
	gvsuOf("set-frags", "br", "reassemble"),
	gvsuOf("-O", "OpenFlow13", "get-frags", "br"),
	gvsuOf("set-frags", "br", "normal"),
	gvsuOf("get-frags", "br"),
	gvsuOf("add-flow", "br", "table=0,priority=10,in_port=1,actions=output:2"),
	gvsuOf("add-flow", "br", "cookie=0x10,table=0,priority=20,in_port=2,dl_type=0x0800,actions=output:1"),
	gvsuOf("add-flow", "br", "cookie=0x11,table=1,priority=30,udp,tp_dst=53,actions=output:3"),
	gvsuOf("add-flow", "br", "cookie=0x20,table=1,priority=40,tcp,actions=drop"),
	gvsuOf("--no-stats", "dump-flows", "br", "--sort"),
	gvsuOf("--no-stats", "dump-flows", "br", "--rsort"),
	gvsuOf("--no-stats", "dump-flows", "br", "--sort=priority"),
	gvsuOf("--no-stats", "dump-flows", "br", "--rsort=priority"),
	gvsuOf("--no-stats", "dump-flows", "br", "in_port=1"),
	gvsuOf("--no-stats", "dump-flows", "br", "table=1"),
	// Cookie selections: NXM_NX_COOKIE in OpenFlow 1.0, cookie_mask in 1.3.
	gvsuOf("--no-stats", "dump-flows", "br", "cookie=0x10/-1"),
	gvsuOf("--no-stats", "dump-flows", "br", "cookie=0x10/0xf0"),
	gvsuOf("-O", "OpenFlow13", "--no-stats", "dump-flows", "br", "cookie=0x10/0xf0"),
	gvsuOf("--no-stats", "--names", "dump-flows", "br", "--sort"),
	// Flows added in 1.0 show reset_counts in 1.3.
	gvsuOf("-O", "OpenFlow13", "dump-flows", "br", "--sort"),
	gvsuOf("dump-aggregate", "br"),
	gvsuOf("-O", "OpenFlow13", "dump-aggregate", "br", "table=1"),
	gvsuOf("dump-aggregate", "br", "cookie=0x11/-1"),
	gvsuOf("mod-flows", "br", "cookie=0x11/-1,actions=output:2"),
	gvsuOf("--strict", "mod-flows", "br", "table=1,priority=40,tcp,actions=output:1"),
	gvsuOf("--no-stats", "dump-flows", "br", "--sort"),
	gvsuOf("del-flows", "br", "cookie=0x20/-1"),
	gvsuOf("--strict", "del-flows", "br", "table=0,priority=10,in_port=1"),
	gvsuOf("--strict", "del-flows", "br", "table=0,priority=11,in_port=1"),
	gvsuOf("--no-stats", "dump-flows", "br", "--sort"),
	// A 1.3 modify keeps the cookies; one that selects by cookie too.
	gvsuOf("-O", "OpenFlow13", "mod-flows", "br", "table=1,tcp,actions=output:3"),
	gvsuOf("-O", "OpenFlow13", "mod-flows", "br", "cookie=0x11/-1,table=1,actions=output:1"),
	gvsuOf("-O", "OpenFlow13", "--no-stats", "dump-flows", "br", "cookie=0x11/-1"),
	gvsuOf("-O", "OpenFlow13", "del-flows", "br", "cookie=0x11/-1"),
	// A 1.0 modify that matches nothing adds the flow, unless it selects
	// by cookie; an add cannot select by cookie.
	gvsuOf("mod-flows", "br", "table=5,cookie=0x55,ip,actions=drop"),
	gvsuOf("mod-flows", "br", "table=5,cookie=0x56/-1,udp,actions=drop"),
	gvsuOf("add-flow", "br", "cookie=0x57/-1,table=5,actions=drop"),
	gvsuOf("-O", "OpenFlow13", "--no-stats", "dump-flows", "br", "--sort"),
	// A 1.0 add replacing a flow starts its counters again.
	gvsuOf("add-flow", "br", "table=6,actions=drop"),
	gvsuOf("packet-out", "br", "in_port=LOCAL packet=0002677675000202677675000188b5676f actions=resubmit(,6)"),
	gvsuOf("dump-aggregate", "br", "table=6"),
	gvsuOf("add-flow", "br", "table=6,actions=drop"),
	gvsuOf("dump-aggregate", "br", "table=6"),
	gvsuOf("queue-stats", "br"),
	gvsuOf("-O", "OpenFlow13", "queue-stats", "br"),
	gvsuOf("queue-stats", "br", "1"),
	gvsuOf("queue-stats", "br", "1", "5"),
	gvsuOf("queue-stats", "br", "77"),
	gvsuOf("-O", "OpenFlow13", "queue-stats", "br", "77"),
	gvsuOf("dump-ports-desc", "br", "2"),
	gvsuOf("mod-port", "br", "nosuch", "up"),
	gvsuOf("mod-port", "br", "1", "bogus"),
	// Config bits (they got OFPBRC_EPERM before), then cleared.
	gvsuOf("mod-port", "br", "2", "no-flood"),
	gvsuOf("mod-port", "br", "2", "no-receive"),
	gvsuOf("show", "br"),
	gvsuOf("-O", "OpenFlow13", "dump-ports-desc", "br"),
	gvsuOf("mod-port", "br", "2", "flood"),
	gvsuOf("mod-port", "br", "2", "receive"),
	gvsuOf("packet-out", "br", "in_port=1 packet=0002677675000202677675000188b5676f actions=output:2"),
	gvsuOf("-O", "OpenFlow13", "packet-out", "br", "in_port=1 packet=0002677675000202677675000188b5676f actions=output:2"),
	// Bad input: what ovs-ofctl refuses itself and what the switch does.
	gvsuOf("add-flow", "br", "in_port=1,actions=output:bogus"),
	gvsuOf("add-flow", "br", "foo=1,actions=drop"),
	gvsuOf("add-flow", "br", "actions=frobnicate"),
	gvsuOf("add-flow", "br", "tcp,tp_dst=99999,actions=drop"),
	gvsuOf("add-flow", "br", "in_port=70000,actions=drop"),
	gvsuOf("add-flow", "br", "table=300,actions=drop"),
	gvsuOf("add-flow", "br", "table=255,actions=drop"),
	gvsuOf("add-flow", "br", "table=254,actions=drop"),
	gvsuOf("add-flow", "br", "ip,nw_src=10.0.0.300,actions=drop"),
	gvsuOf("add-flow", "br", "dl_src=zz:00:00:00:00:00,actions=drop"),
	gvsuOf("add-flow", "br", "priority=70000,actions=drop"),
	gvsuOf("add-flow", "br", ""),
	gvsuOf("add-flow", "br", "actions=resubmit(,300)"),
	gvsuOf("add-flow", "br", "table=3,actions=goto_table:1"),
	gvsuOf("-O", "OpenFlow13", "add-flow", "br", "table=3,actions=goto_table:1"),
	gvsuOf("add-flow", "br", "in_port=99,actions=output:98"),
	gvsuOf("add-flow", "br", "actions=output:0"),
	gvsuOf("-O", "OpenFlow13", "add-flow", "br", "priority=7,actions=output:0"),
	gvsuOf("add-flows", "br", "/nonexistent/gvsu"),
	gvsuOf("del-flows", "br", "bogus=1"),
	gvsuOf("dump-flows", "br", "bogus=1"),
	gvsuOf("dump-flows", "br", "table=1", "extra"),
	gvsuOf("-O", "OpenFlow99", "show", "br"),
	gvsuOf("frobnicate", "br"),
	gvsuOf("-O", "OpenFlow13", "--no-stats", "dump-flows", "br", "--sort"),
	gvsuOf("diff-flows", "br", "@flows"),
	gvsuOf("replace-flows", "br", "@flows"),
	gvsuOf("--no-stats", "dump-flows", "br", "--sort"),
	gvsuOf("del-flows", "br"),
	gvsuOf("--no-stats", "dump-flows", "br"),

	gvsuAp("fdb/show", "br"),
	gvsuAp("fdb/flush", "br"),
	gvsuAp("fdb/flush"),
	gvsuAp("fdb/flush", "nosuchbr"),
	gvsuAp("fdb/show", "nosuchbr"),
	gvsuAp("fdb/show"),
	gvsuAp("mdb/show", "br"),
	gvsuAp("mdb/flush", "br"),
	gvsuAp("ofproto/list"),
	gvsuAp("ofproto/trace", "nosuchbr", "in_port=1"),
	gvsuAp("dpif/dump-flows", "nosuchbr"),
	gvsuAp("dpif/dump-flows", "-m", "br"),
	gvsuAp("dpif/dump-flows", "--names", "br"),
	gvsuAp("dpctl/dump-flows", "-m"),
	gvsuAp("dpctl/dump-flows", "--names", "netdev@ovs-netdev"),
	gvsuAp("dpif/dump-dps"),
	gvsuAp("dpctl/dump-dps"),
	gvsuAp("revalidator/purge"),
	gvsuAp("revalidator/wait"),
	gvsuAp("vlog/set", "bogus:dbg"),
	gvsuAp("vlog/set", "ANY:bogus"),
	gvsuAp("vlog/set", "ANY:syslog:bogus"),
	gvsuAp("vlog/reopen"),
	gvsuAp("no/such/command"),
	gvsuAp("qos/show", "gvsu1"),
	gvsuAp("qos/show", "nosuch"),
	gvsuAp("qos/show"),
	gvsuAp("bond/show"),
	gvsuAp("bond/show", "x"),
	gvsuAp("lacp/show"),
	gvsuAp("lacp/show", "x"),
	gvsuAp("lacp/show-stats"),
	gvsuAp("lacp/show-stats", "x"),
	gvsuAp("cfm/show"),
	gvsuAp("cfm/show", "x"),
	gvsuAp("bfd/show"),
	gvsuAp("bfd/show", "x"),
	gvsuAp("stp/show"),
	gvsuAp("stp/show", "br"),
	gvsuAp("rstp/show"),
	gvsuAp("rstp/show", "x"),
}

// gvsuShapes are commands whose content differs by nature (counters,
// modules, the commands each has); the first line must match the
// pattern on both.
var gvsuShapes = []struct {
	cmd   gvsuCmd
	first string
}{
	{gvsuAp("coverage/show"), `^Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=[0-9a-f]{8}:$`},
	{gvsuAp("vlog/list"), `^                 console    syslog    file$`},
	{gvsuAp("list-commands"), `^The available commands are:$`},
	{gvsuAp("version"), `^ovs-vswitchd \(Open vSwitch\) 3\.1\.0`},
	{gvsuAp("dpif/show"), `^netdev@ovs-netdev:`},
	{gvsuAp("memory/show"), `(^| )ports:4 `},
	{gvsuAp("ofproto/trace", "br", "in_port=1,dl_src=02:67:76:75:00:01,dl_dst=02:67:76:75:00:02"), `^Flow: in_port=1,`},
	{gvsuAp("ofproto/trace", "br", "bogus=1"), `^Bad openflow flow syntax: bogus=1: unknown field`},
}

// gvsuRefused are what gvs does not do yet (docs/COMPATIBILITY.md): gvsd
// must refuse each with an error that says so, which ovs-ofctl prints.
var gvsuRefused = []struct {
	cmd  gvsuCmd
	want string
}{
	{gvsuOf("-O", "OpenFlow13", "add-meter", "br", "meter=1,kbps,band=type=drop,rate=1000"), "OFPBRC_BAD_TYPE"},
	{gvsuOf("-O", "OpenFlow13", "dump-meters", "br"), "OFPBRC_BAD_STAT"},
	{gvsuOf("queue-get-config", "br", "1"), "OFPBRC_BAD_TYPE"},
	{gvsuCmd{"timeout", []string{"2", "ovs-ofctl", "monitor", "br", "watch:"}}, "OFPBRC_BAD_STAT"},
	{gvsuAp("fdb/stats-show", "br"), "is not a valid command"},
}

// gvsuFlows is the flow file of diff-flows and replace-flows.
var gvsuFlows = []string{
	"table=0, priority=10, in_port=1, actions=output:2",
	"table=0, cookie=0x10, priority=20, ip, in_port=2, actions=output:1",
	"table=1, priority=5, actions=drop",
}

// gvsuMaskRE masks what differs between two switches by nature: datapath
// ids, durations, the bridge port's MAC, log timestamps, the path
// ovs-appctl names its target by (the reference needs -t), and the run
// directory in ovs-ofctl's errors.
var gvsuMaskRE = regexp.MustCompile(`dpid:[0-9a-f]{16}|duration=[0-9.]+s|LOCAL\([^)]*\): addr:[0-9a-f:]+|` +
	`(?m)^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z\||ovs-appctl: [^ ]*ovs-vswitchd[^ ]*: |talking to unix:[^ ]*/`)

func gvsuMask(s string) string {
	return gvsuMaskRE.ReplaceAllStringFunc(s, func(m string) string {
		switch {
		case strings.HasPrefix(m, "dpid:"):
			return "dpid:*"
		case strings.HasPrefix(m, "duration="):
			return "duration=*"
		case strings.HasPrefix(m, "LOCAL("):
			return m[:strings.Index(m, "addr:")+5] + "*"
		case strings.HasPrefix(m, "ovs-appctl:"):
			return "ovs-appctl: TARGET: "
		case strings.HasPrefix(m, "talking to unix:"):
			return "talking to unix:RUNDIR/"
		}
		return "TIME|"
	})
}

// gvsuResult is what one command printed.
type gvsuResult struct{ text, stdout, stderr string }

// TestOfctlAppctlDifferential runs gvsuSame and gvsuShapes on OVS 3.1
// and on gvsd, bridges of the same name with the same veths, and
// compares them; then gvsuRefused on gvsd.
func TestOfctlAppctlDifferential(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-appctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip", "timeout")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	const br = "gvsubr"
	_, configure := gvofDiffPorts(t, "gvsudiff", "gvsu", br, 3)
	files := map[string]string{"@flows": gvofWriteFile(t, "gvsuflows", gvsuFlows...)}
	var shapes, refused []gvsuCmd
	for _, s := range gvsuShapes {
		shapes = append(shapes, s.cmd)
	}
	for _, r := range gvsuRefused {
		refused = append(refused, r.cmd)
	}
	ref, got := gvsuRunBoth(t, br, configure, files, [][]gvsuCmd{gvsuSame, shapes}, [][]gvsuCmd{gvsuSame, shapes, refused})
	refSame, refShapes := ref[0], ref[1]
	gotSame, gotShapes, gotRefused := got[0], got[1], got[2]

	// The reference must have run the scenario, or the comparison says
	// nothing.
	all := ""
	for _, r := range refSame {
		all += r.text
	}
	for _, want := range []string{"cookie=0x10, priority=20,ip,in_port=2 actions=output:1", "reset_counts", "OFPST_QUEUE reply", "multicast snooping is disabled", "no such lacp object"} {
		if !strings.Contains(all, want) {
			t.Fatalf("the reference OVS never printed %q: the scenario did not run\n%s", want, all)
		}
	}
	for i := range refSame {
		if refSame[i].text != gotSame[i].text {
			t.Errorf("OVS 3.1 and gvsd differ:\n--- OVS 3.1:\n%s\n--- gvsd:\n%s", refSame[i].text, gotSame[i].text)
		}
	}
	for i, s := range gvsuShapes {
		re := regexp.MustCompile(s.first)
		for who, r := range map[string]gvsuResult{"OVS 3.1": refShapes[i], "gvsd": gotShapes[i]} {
			first, _, _ := strings.Cut(r.stdout+r.stderr, "\n")
			if !re.MatchString(first) {
				t.Errorf("%s: output does not match %q:\n%s", who, s.first, r.text)
			}
		}
	}
	for i, r := range gvsuRefused {
		if !strings.Contains(gotRefused[i].stdout+gotRefused[i].stderr, r.want) {
			t.Errorf("gvsd: want %q:\n%s", r.want, gotRefused[i].text)
		}
	}
}

// gvsuRunBoth configures the bridge br on OVS 3.1 and runs the command
// lists ref there, then on gvsd and runs got there, and returns what
// each printed, list by list. In commands "br" stands for br and a key
// of files for its path.
func gvsuRunBoth(t *testing.T, br string, configure func(func(...string) string), files map[string]string,
	ref, got [][]gvsuCmd) (refOut, gotOut [][]gvsuResult) {
	t.Helper()
	// runAll runs cmds with run; appctl are ovs-appctl's options to
	// reach the daemon, rundir the run directory for commands under
	// timeout (which does not go through run's environment).
	runAll := func(cmds []gvsuCmd, run func(...string) (string, string, error), appctl []string, rundir string) []gvsuResult {
		var out []gvsuResult
		for _, c := range cmds {
			args := append([]string(nil), c.args...)
			for i := range args {
				if args[i] == "br" {
					args[i] = br
				} else if f, ok := files[args[i]]; ok {
					args[i] = f
				}
			}
			full := append([]string{c.tool}, args...)
			switch c.tool {
			case "ovs-appctl":
				full = append(append([]string{c.tool}, appctl...), args...)
			case "timeout":
				full = append([]string{"env", "OVS_RUNDIR=" + rundir}, full...)
			}
			stdout, stderr, err := run(full...)
			stdout, stderr = gvsuMask(stdout), gvsuMask(stderr)
			out = append(out, gvsuResult{fmt.Sprintf("$ %s %s\nexit: %v\nstderr:\n%sstdout:\n%s", c.tool, strings.Join(c.args, " "), err, stderr, stdout), stdout, stderr})
		}
		return out
	}
	func() {
		o := gvsyStartOVS(t)
		defer o.Stop()
		configure(o.MustVsctl)
		appctl := []string{"-t", filepath.Join(o.dir, "ovs-vswitchd.ctl")}
		for _, cmds := range ref {
			refOut = append(refOut, runAll(cmds, o.run, appctl, o.dir))
		}
	}()
	g := StartGvsd(t)
	configure(g.MustVsctl)
	run := func(a ...string) (string, string, error) { return g.Run(a[0], a[1:]...) }
	for _, cmds := range got {
		gotOut = append(gotOut, runAll(cmds, run, nil, g.Rundir))
	}
	return refOut, gotOut
}
