package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gvsd as a client of the real ovsdb-server (docs/GUIDE.md, "Sharing one
// configuration: gvsd against an ovsdb-server or a cluster"). Every
// namespace, bridge and interface here is named with the prefix "gvoc".

// ovsCtlScript is Debian's ovs-ctl, which starts OVS's daemons.
const ovsCtlScript = "/usr/share/openvswitch/scripts/ovs-ctl"

// ovsCtlEnv points ovs-ctl (and the OVS clients) at a private layout in
// dir: run, database, log and configuration directories.
func ovsCtlEnv(t *testing.T, dir string) []string {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "etc", "openvswitch"), 0o755); err != nil {
		t.Fatal(err)
	}
	return append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir,
		"OVS_SYSCONFDIR="+filepath.Join(dir, "etc"))
}

// startOVSCtlDB runs `ovs-ctl --no-ovs-vswitchd start`: the real
// ovsdb-server on dir/db.sock with dir/conf.db. It is killed when the
// test ends, after everything registered later.
func startOVSCtlDB(t *testing.T, dir string, env []string) {
	t.Helper()
	if _, err := os.Stat(ovsCtlScript); err != nil {
		t.Skipf("%s not installed (scripts/test.sh installs openvswitch-switch)", ovsCtlScript)
	}
	t.Cleanup(func() { killPidfile(filepath.Join(dir, "ovsdb-server.pid")) })
	runOVSCtlDB(t, env)
}

// runOVSCtlDB is `ovs-ctl --no-ovs-vswitchd start` itself.
func runOVSCtlDB(t *testing.T, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ovsCtlScript, "--no-ovs-vswitchd", "--no-monitor", "--system-id=random", "start")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ovs-ctl --no-ovs-vswitchd start: %v\n%s", err, out)
	}
}

// killPidfile ends the process a pidfile names, if it runs.
func killPidfile(pidfile string) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 && alive(pid) {
		syscall.Kill(pid, syscall.SIGTERM)
		if !waitFor(5*time.Second, func() bool { return !alive(pid) }) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ovsCtlVswitchdArgs is the command line ovs-ctl builds for ovs-vswitchd
// with OVS_RUNDIR and OVS_LOGDIR at dir.
func ovsCtlVswitchdArgs(dir string) []string {
	return []string{"unix:" + filepath.Join(dir, "db.sock"),
		"-vconsole:emer", "-vsyslog:err", "-vfile:info", "--mlockall", "--no-chdir",
		"--log-file=" + filepath.Join(dir, "ovs-vswitchd.log"),
		"--pidfile=" + filepath.Join(dir, "ovs-vswitchd.pid"), "--detach", "--monitor"}
}

// startDetachedGvsd runs gvsd with args (which include --detach and
// --pidfile=dir/ovs-vswitchd.pid) and returns the daemon's pid once the
// command has returned. When the test ends a daemon still running gets
// `ovs-appctl exit --cleanup`; one that has exited is started again to
// delete the internal ports it left, as the harness does.
func startDetachedGvsd(t *testing.T, dir string, env, args []string) int {
	t.Helper()
	pidfile := filepath.Join(dir, "ovs-vswitchd.pid")
	run := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, gvsdBin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("gvsd %q: %v\n%s", args, err, out)
		}
		return err
	}
	t.Cleanup(func() {
		if !pidfileAlive(pidfile) {
			if run() != nil {
				return
			}
		}
		stopDetachedGvsd(t, dir, env, "--cleanup")
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "ovs-vswitchd.log"))
			t.Logf("ovs-vswitchd.log:\n%s", b)
		}
	})
	if err := run(); err != nil {
		t.Fatal("gvsd did not start")
	}
	return daemonPid(t, pidfile)
}

func pidfileAlive(pidfile string) bool {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && pid > 1 && alive(pid)
}

// stopDetachedGvsd sends `ovs-appctl -t ovs-vswitchd exit [--cleanup]`
// and waits until the daemon and its monitor are gone.
func stopDetachedGvsd(t *testing.T, dir string, env []string, exitArgs ...string) {
	t.Helper()
	pidfile := filepath.Join(dir, "ovs-vswitchd.pid")
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	monitor := 0
	if pid > 1 && alive(pid) {
		monitor = parentPid(t, pid)
	}
	cmd := exec.Command("ovs-appctl", append([]string{"--timeout=30", "-t", "ovs-vswitchd", "exit"}, exitArgs...)...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("ovs-appctl exit %v: %v\n%s", exitArgs, err, out)
		killPidfile(pidfile)
	}
	if pid > 1 && !waitFor(10*time.Second, func() bool { return !alive(pid) }) {
		t.Errorf("gvsd (pid %d) still runs after exit", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if monitor > 1 && !waitFor(10*time.Second, func() bool { return !alive(monitor) }) {
		t.Errorf("gvsd's monitor (pid %d) still runs after a clean exit", monitor)
		syscall.Kill(monitor, syscall.SIGKILL)
	}
}

// linkGone reports whether dev is absent from namespace ns ("" for the
// root namespace).
func linkGone(lab *netLab, ns, dev string) bool {
	if ns == "" {
		return !labLinkExists(dev)
	}
	_, err := lab.exec(ns, "ip", "link", "show", dev)
	return err != nil
}

// TestGvsdClientOfOVSCtl: `ovs-ctl --no-ovs-vswitchd start` starts the
// real ovsdb-server, and gvsd started with exactly the command line
// ovs-ctl builds for ovs-vswitchd becomes its client: ovs-vsctl changes
// reach the switch (packets between namespaces, a mirror), gvsd writes
// its status back into ovsdb-server (ofport, mirror statistics, cur_cfg),
// it forwards on while ovsdb-server restarts and then follows it again,
// `ovs-appctl exit` ends it cleanly, and a restarted gvsd re-attaches
// the ports; `exit --cleanup` deletes every device before it returns.
func TestGvsdClientOfOVSCtl(t *testing.T) {
	requireTool(t, "ovs-vsctl", "ovs-appctl", "ovsdb-server", "ovsdb-tool", "tcpdump")
	lab := newNetLab(t)
	dir := t.TempDir()
	env := ovsCtlEnv(t, dir)
	startOVSCtlDB(t, dir, env)
	args := ovsCtlVswitchdArgs(dir)
	pid := startDetachedGvsd(t, dir, env, args)
	g := &Gvsd{t: t, Rundir: dir, log: &bytes.Buffer{}}

	g.MustVsctl("add-br", "gvoc0", "--", "set", "bridge", "gvoc0", "datapath_type=netdev")
	g.MustVsctl("set", "open_vswitch", ".", "other_config:stats-update-interval=1000")
	addInternalPorts(lab, g, "gvoc0",
		labPort{"gvoc1", "gvoc-a", nil, []string{"10.79.0.1/24"}},
		labPort{"gvoc2", "gvoc-b", nil, []string{"10.79.0.2/24"}},
		labPort{"gvoc3", "gvoc-m", nil, nil})
	g.MustVsctl("--", "--id=@p", "get", "port", "gvoc3", "--", "--id=@m", "create", "mirror", "name=gvocm",
		"select-all=true", "output-port=@p", "--", "set", "bridge", "gvoc0", "mirrors=@m")
	mirrored := lab.capture("gvoc-m", "gvoc3", "icmp")
	lab.pingOK("gvoc-a", "10.79.0.2")
	if !mirrored.waitFor(5*time.Second, "ICMP echo request") {
		t.Errorf("the mirror's output port saw no echo request; captured:\n%s", strings.Join(mirrored.stop(), "\n"))
	}

	// Status that only gvsd writes, in ovsdb-server's database.
	if out := strings.TrimSpace(g.MustVsctl("get", "interface", "gvoc1", "ofport")); out == "[]" || out == "-1" {
		t.Errorf("Interface gvoc1 ofport = %s, want a port number written by gvsd", out)
	}
	if !waitFor(10*time.Second, func() bool {
		out, _, _ := g.Vsctl("get", "mirror", "gvocm", "statistics:tx_packets")
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n > 0
	}) {
		out, _, _ := g.Vsctl("list", "mirror")
		t.Errorf("Mirror statistics not written back to ovsdb-server:\n%s", out)
	}
	next := strings.TrimSpace(g.MustVsctl("get", "open_vswitch", ".", "next_cfg"))
	if cur := strings.TrimSpace(g.MustVsctl("get", "open_vswitch", ".", "cur_cfg")); cur != next {
		t.Errorf("cur_cfg %s, next_cfg %s: ovs-vsctl returned before gvsd applied the change", cur, next)
	}
	if out, _, err := g.Run("ovs-appctl", "-t", "ovs-vswitchd", "version"); err != nil || !strings.Contains(out, "gvs") {
		t.Errorf("ovs-appctl version: %v %q", err, out)
	}

	// The database server goes away: forwarding goes on; once it is back,
	// gvsd reconnects, reloads, and applies the next changes.
	killPidfile(filepath.Join(dir, "ovsdb-server.pid"))
	lab.pingOK("gvoc-a", "10.79.0.2")
	runOVSCtlDB(t, env)
	g.MustVsctl("set", "port", "gvoc1", "tag=5")
	lab.pingFails("gvoc-a", "10.79.0.2")
	g.MustVsctl("remove", "port", "gvoc1", "tag", "5")
	lab.pingOK("gvoc-a", "10.79.0.2")
	if n := len(linesWith(fileLines(t, filepath.Join(dir, "ovs-vswitchd.log")), "database loaded")); n < 2 {
		t.Errorf("gvsd loaded the database %d times, want a reload after the server's restart", n)
	}

	// exit stops gvsd and its monitor, leaving the ports for a restart.
	stopDetachedGvsd(t, dir, env)
	if alive(pid) {
		t.Fatal("gvsd survived exit")
	}
	if linkGone(lab, "", "gvoc0") {
		t.Error("plain exit deleted the bridge's internal port")
	}
	startDetachedGvsd(t, dir, env, args)
	lab.pingOK("gvoc-a", "10.79.0.2")

	// exit --cleanup: when ovs-appctl returns, no device is left, the
	// bridge's own included, whichever namespace it is in.
	stopDetachedGvsd(t, dir, env, "--cleanup")
	for _, d := range []struct{ ns, dev string }{{"", "gvoc0"}, {"gvoc-a", "gvoc1"}, {"gvoc-b", "gvoc2"}, {"gvoc-m", "gvoc3"}} {
		if !linkGone(lab, d.ns, d.dev) {
			t.Errorf("exit --cleanup left %s (namespace %q)", d.dev, d.ns)
		}
	}
	for _, l := range fileLines(t, filepath.Join(dir, "ovs-vswitchd.log")) {
		if strings.Contains(l, "|ERR|") || strings.Contains(l, "|EMER|") {
			t.Errorf("error in the log: %s", l)
		}
	}
}

// TestExitCleanupDeletesEveryDevice: with its own database too, `ovs-appctl
// exit --cleanup` returns only once every device gvsd created is gone:
// the bridge's own port and internal ports, in the root namespace or
// moved into another.
func TestExitCleanupDeletesEveryDevice(t *testing.T) {
	requireTool(t, "ovs-vsctl", "ovs-appctl")
	lab := newNetLab(t)
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvoc5")
	g.MustVsctl("add-br", "gvoc6")
	addInternalPorts(lab, g, "gvoc5", labPort{"gvoc7", "gvoc-x", nil, []string{"10.79.1.1/24"}})
	g.MustVsctl("add-port", "gvoc6", "gvoc8", "--", "set", "interface", "gvoc8", "type=internal")
	lab.waitLink("gvoc8")
	if _, errOut, err := g.Run("ovs-appctl", "--timeout=30", "exit", "--cleanup"); err != nil {
		t.Fatalf("ovs-appctl exit --cleanup: %v %s", err, errOut)
	}
	for _, d := range []struct{ ns, dev string }{{"", "gvoc5"}, {"", "gvoc6"}, {"", "gvoc8"}, {"gvoc-x", "gvoc7"}} {
		if !linkGone(lab, d.ns, d.dev) {
			t.Errorf("exit --cleanup returned with %s still there (namespace %q)", d.dev, d.ns)
		}
	}
	g.Stop()
}

// ovsdbCluster is a 3-member clustered Open_vSwitch database served by
// the real ovsdb-server in namespace ns: raft on 127.0.0.1:6651-6653,
// clients on 127.0.0.1:6661-6663.
type ovsdbCluster struct {
	t       *testing.T
	lab     *netLab
	ns, dir string
	servers [3]*exec.Cmd
}

func (c *ovsdbCluster) remotes() string {
	return "tcp:127.0.0.1:6661,tcp:127.0.0.1:6662,tcp:127.0.0.1:6663"
}

func (c *ovsdbCluster) ctl(i int) string { return filepath.Join(c.dir, fmt.Sprintf("s%d.ctl", i+1)) }

func startOvsdbCluster(t *testing.T, lab *netLab, ns string) *ovsdbCluster {
	t.Helper()
	c := &ovsdbCluster{t: t, lab: lab, ns: ns, dir: t.TempDir()}
	schema := "/usr/share/openvswitch/vswitch.ovsschema"
	for i := range 3 {
		db := filepath.Join(c.dir, fmt.Sprintf("s%d.db", i+1))
		raft := fmt.Sprintf("tcp:127.0.0.1:%d", 6651+i)
		args := []string{"join-cluster", db, "Open_vSwitch", raft, "tcp:127.0.0.1:6651"}
		if i == 0 {
			args = []string{"create-cluster", db, schema, raft}
		}
		if out, err := exec.Command("ovsdb-tool", args...).CombinedOutput(); err != nil {
			t.Fatalf("ovsdb-tool %q: %v\n%s", args, err, out)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, "ovsdb-server", db,
			fmt.Sprintf("--remote=ptcp:%d:127.0.0.1", 6661+i), "--unixctl="+c.ctl(i), "--no-chdir",
			"--log-file="+filepath.Join(c.dir, fmt.Sprintf("s%d.log", i+1)), "-vconsole:off")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		c.servers[i] = cmd
		t.Cleanup(func() { c.kill(i) })
	}
	if !waitFor(30*time.Second, func() bool {
		_, _ = lab.exec(ns, "ovs-vsctl", "--db="+c.remotes(), "--timeout=5", "--no-wait", "init")
		if c.leader() < 0 {
			return false
		}
		// Every member, not only the leader, must be a member that
		// knows all three: a join not yet committed everywhere leaves
		// two servers without a quorum once the leader is killed.
		for i := range c.servers {
			st := c.status(i)
			if !strings.Contains(st, "Status: cluster member") || strings.Count(st, "tcp:127.0.0.1:665") < 3 {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("the cluster did not form:\n%s", c.status(0))
	}
	return c
}

// status is member i's cluster/status.
func (c *ovsdbCluster) status(i int) string {
	out, _ := exec.Command("ovs-appctl", "--timeout=5", "-t", c.ctl(i), "cluster/status", "Open_vSwitch").CombinedOutput()
	return string(out)
}

// leader is the index of the member that says it leads, -1 for none.
func (c *ovsdbCluster) leader() int {
	for i, s := range c.servers {
		if s != nil && strings.Contains(c.status(i), "Role: leader") {
			return i
		}
	}
	return -1
}

func (c *ovsdbCluster) kill(i int) {
	if s := c.servers[i]; s != nil {
		s.Process.Kill()
		s.Wait()
		c.servers[i] = nil
	}
}

// vsctl runs ovs-vsctl against the cluster (it waits for gvsd to apply
// the change, through cur_cfg).
func (c *ovsdbCluster) vsctl(args ...string) (string, error) {
	return c.lab.exec(c.ns, append([]string{"ovs-vsctl", "--db=" + c.remotes(), "--timeout=30", "--retry"}, args...)...)
}

// TestGvsdFollowsClusterLeader: gvsd given the three members of a
// clustered ovsdb-server follows the leader: the leader is killed while
// ovs-vsctl changes mirrors, and gvsd, on the new leader, applies every
// change (ovs-vsctl's wait for cur_cfg, and the statistics gvsd writes
// for every mirror it has in effect).
func TestGvsdFollowsClusterLeader(t *testing.T) {
	requireTool(t, "ovs-vsctl", "ovs-appctl", "ovsdb-server", "ovsdb-tool")
	lab := newNetLab(t)
	lab.netns("gvoc-cl")
	c := startOvsdbCluster(t, lab, "gvoc-cl")
	rundir := t.TempDir()
	env := append(os.Environ(), "OVS_RUNDIR="+rundir)
	args := []string{"netns", "exec", "gvoc-cl", gvsdBin, c.remotes(), "-rundir", rundir, "--pidfile", "--detach",
		"--no-chdir", "--log-file=" + filepath.Join(rundir, "ovs-vswitchd.log"), "-vconsole:off"}
	startNetnsGvsd(t, rundir, env, args)

	must := func(args ...string) {
		t.Helper()
		if out, err := c.vsctl(args...); err != nil {
			t.Fatalf("ovs-vsctl %q: %v\n%s", args, err, out)
		}
	}
	must("set", "open_vswitch", ".", "other_config:stats-update-interval=1000")
	must("add-br", "gvoc9", "--", "set", "bridge", "gvoc9", "datapath_type=netdev")
	for _, p := range []string{"gvocq1", "gvocq2"} {
		must("add-port", "gvoc9", p, "--", "set", "interface", p, "type=internal")
	}
	// Each change creates a mirror; every third deletes the oldest. The
	// leader dies during the fourth. A transaction cut off with the
	// leader may have committed, and ovs-vsctl may run it again on the
	// new leader ("at least once", ovsdb(7)): a mirror may then exist
	// twice, so deletions go by the UUIDs of every row of that name.
	want := map[string]bool{}
	oldest := 0
	for i := range 9 {
		name := fmt.Sprintf("gvocm%d", i)
		if i == 3 {
			leader := c.leader()
			go func() { time.Sleep(20 * time.Millisecond); c.kill(leader) }()
		}
		create := []string{"--", "--id=@p", "get", "port", "gvocq2", "--", "--id=@m", "create", "mirror", "name=" + name,
			"select-all=true", "output-port=@p", "--", "add", "bridge", "gvoc9", "mirrors", "@m"}
		if out, err := c.vsctl(create...); err != nil {
			t.Logf("ovs-vsctl during the failover: %v\n%s", err, out)
			if got, _ := c.vsctl("--no-wait", "--bare", "--columns=name", "find", "mirror", "name="+name); !strings.Contains(got, name) {
				must(create...)
			}
		}
		want[name] = true
		if i%3 == 2 {
			old := fmt.Sprintf("gvocm%d", oldest)
			uuids, _ := c.vsctl("--no-wait", "--bare", "--columns=_uuid", "find", "mirror", "name="+old)
			var del []string
			for _, u := range strings.Fields(uuids) {
				del = append(del, "--", "remove", "bridge", "gvoc9", "mirrors", u)
			}
			must(del...)
			delete(want, old)
			oldest++
		}
	}
	// One more change to wait for: gvsd has applied everything before.
	must("set", "open_vswitch", ".", "other_config:gvoc-done=1")
	if c.leader() < 0 {
		t.Fatal("no leader after the failover")
	}
	names, err := c.vsctl("--no-wait", "--bare", "--columns=name", "list", "mirror")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Fields(names)
	have := map[string]bool{}
	for _, n := range rows {
		have[n] = true
	}
	if fmt.Sprint(have) != fmt.Sprint(want) {
		t.Errorf("mirrors %v, want %v", have, want)
	}
	// Statistics appear only on mirrors gvsd has in effect.
	if !waitFor(15*time.Second, func() bool {
		out, _ := c.vsctl("--no-wait", "--bare", "--columns=statistics", "list", "mirror")
		return strings.Count(out, "tx_packets=") == len(rows)
	}) {
		out, _ := c.vsctl("--no-wait", "list", "mirror")
		t.Errorf("gvsd has not applied every mirror (statistics written for some only):\n%s", out)
	}
	// gvsd did change members: loaded the database from a second one.
	loads := linesWith(fileLines(t, filepath.Join(rundir, "ovs-vswitchd.log")), "database loaded")
	if len(loads) < 2 {
		t.Errorf("gvsd never moved to the new leader; its connections:\n%s", strings.Join(loads, "\n"))
	}
	t.Logf("gvsd's connections:\n%s", strings.Join(loads, "\n"))
	cur, _ := c.vsctl("--no-wait", "get", "open_vswitch", ".", "cur_cfg")
	next, _ := c.vsctl("--no-wait", "get", "open_vswitch", ".", "next_cfg")
	if strings.TrimSpace(cur) != strings.TrimSpace(next) {
		t.Errorf("cur_cfg %s, next_cfg %s", cur, next)
	}
}

// startNetnsGvsd runs gvsd detached through `ip netns exec` (args) and
// ends it with `ovs-appctl exit --cleanup` when the test ends.
func startNetnsGvsd(t *testing.T, rundir string, env, args []string) {
	t.Helper()
	t.Cleanup(func() {
		stopDetachedGvsd(t, rundir, env, "--cleanup")
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(rundir, "ovs-vswitchd.log"))
			t.Logf("gvsd log:\n%s", b)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gvsd: %v\n%s", err, out)
	}
}
