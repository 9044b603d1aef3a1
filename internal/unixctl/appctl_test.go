package unixctl

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// These tests drive the server with the real ovs-appctl from Open vSwitch,
// the client gvsd must satisfy.
const ovsAppctl = "/usr/bin/ovs-appctl"

type appctlResult struct {
	stdout, stderr string
	status         int
}

// appctl runs ovs-appctl against ts's rundir, as an operator would with
// OVS_RUNDIR pointing at it.
func appctl(t *testing.T, ts *testServer, args ...string) appctlResult {
	t.Helper()
	if _, err := os.Stat(ovsAppctl); err != nil {
		t.Skipf("%s not installed (Debian package openvswitch-common): %v", ovsAppctl, err)
	}
	cmd := exec.Command(ovsAppctl, append([]string{"--timeout=10"}, args...)...)
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+ts.rundir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := appctlResult{stdout: stdout.String(), stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.status = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("running ovs-appctl: %v", err)
	}
	return res
}

func (r appctlResult) mustSucceed(t *testing.T) string {
	t.Helper()
	if r.status != 0 || r.stderr != "" {
		t.Fatalf("ovs-appctl exited %d, stderr %q, stdout %q", r.status, r.stderr, r.stdout)
	}
	return r.stdout
}

// mustFailWith checks the OVS convention for an error reply: the message
// on stderr, then ovs-appctl's own line, and exit status 2.
func (r appctlResult) mustFailWith(t *testing.T, message string) {
	t.Helper()
	if r.status != 2 {
		t.Fatalf("ovs-appctl exited %d (stderr %q), want 2", r.status, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	want := message + "\novs-appctl: ovs-vswitchd: server returned an error\n"
	if r.stderr != want {
		t.Errorf("stderr %q, want %q", r.stderr, want)
	}
}

func TestAppctlVersion(t *testing.T) {
	ts := startServer(t, WithVersion(VersionText("ovs-vswitchd", "0.1.0")))
	out := appctl(t, ts, "version").mustSucceed(t)
	if out != "ovs-vswitchd (Open vSwitch) 3.1.0 (gvs 0.1.0)\n" {
		t.Fatalf("version printed %q", out)
	}
}

func TestAppctlAbsoluteTarget(t *testing.T) {
	ts := startServer(t)
	out := appctl(t, ts, "-t", ts.Path(), "version").mustSucceed(t)
	if !strings.HasPrefix(out, "ovs-vswitchd (Open vSwitch) 3.1.0") {
		t.Fatalf("version printed %q", out)
	}
}

func TestAppctlListCommands(t *testing.T) {
	ts := startServer(t)
	ts.Register("fdb/show", "BRIDGE", 1, 1, func([]string) (string, error) { return "", nil })
	out := appctl(t, ts, "list-commands").mustSucceed(t)
	for _, want := range []string{
		"The available commands are:\n",
		"\n  fdb/show                BRIDGE\n",
		"\n  list-commands\n",
		"\n  version\n",
		"\n  vlog/set ",
		"\n  coverage/show\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list-commands lacks %q:\n%s", want, out)
		}
	}
}

func TestAppctlUnknownCommand(t *testing.T) {
	ts := startServer(t)
	appctl(t, ts, "no/such", "arg").mustFailWith(t,
		`"no/such" is not a valid command (use "list-commands" to see a list of valid commands)`)
}

func TestAppctlHandlerError(t *testing.T) {
	ts := startServer(t)
	ts.Register("test/fail", "", 0, 0, func([]string) (string, error) {
		return "", errors.New("no bridge named br0")
	})
	appctl(t, ts, "test/fail").mustFailWith(t, "no bridge named br0")
}

func TestAppctlArgumentCounts(t *testing.T) {
	ts := startServer(t)
	ts.Register("test/join", "A [B]", 1, 2, func(args []string) (string, error) {
		return strings.Join(args, "|"), nil
	})
	appctl(t, ts, "test/join").mustFailWith(t, `"test/join" command requires at least 1 arguments`)
	appctl(t, ts, "test/join", "a", "b", "c").mustFailWith(t, `"test/join" command takes at most 2 arguments`)
	if out := appctl(t, ts, "test/join", "a b", `"quoted" \ü`).mustSucceed(t); out != "a b|\"quoted\" \\ü\n" {
		t.Fatalf("test/join printed %q", out)
	}
	appctl(t, ts, "version", "extra").mustFailWith(t, `"version" command takes at most 0 arguments`)
}

func TestAppctlVlogSetAndList(t *testing.T) {
	ts := startServer(t)
	ts.logs.Module("bridge")
	ts.logs.Module("dpif_netdev")
	appctl(t, ts, "vlog/set", "bridge:console:dbg").mustSucceed(t)
	// One spec per argument; inside one, spaces separate words too.
	appctl(t, ts, "vlog/set", "DPIF_NETDEV syslog,off").mustSucceed(t)
	appctl(t, ts, "vlog/set", "file:warn").mustSucceed(t)
	out := appctl(t, ts, "vlog/list").mustSucceed(t)
	want := "" +
		"                 console    syslog    file\n" +
		"                 -------    ------    ------\n" +
		"bridge             DBG       INFO       WARN\n" +
		"dpif_netdev       INFO        OFF       WARN\n" +
		"unixctl           INFO       INFO       WARN\n"
	if out != want {
		t.Fatalf("vlog/list printed\n%s\nwant\n%s", out, want)
	}
	appctl(t, ts, "vlog/set", "bridge:console:loud").mustFailWith(t, `no destination, level, or module "loud"`)
	appctl(t, ts, "vlog/set", "console:syslog").mustFailWith(t, "cannot specify multiple destinations")
}

func TestAppctlLogLevelReachesConsole(t *testing.T) {
	ts := startServer(t)
	mod := ts.logs.Module("ofproto")
	mod.Dbg("hidden at info")
	appctl(t, ts, "vlog/set", "ofproto:console:dbg").mustSucceed(t)
	mod.Dbg("shown at dbg %d", 7)
	console := ts.console.String()
	if strings.Contains(console, "hidden") || !strings.Contains(console, "|ofproto|DBG|shown at dbg 7\n") {
		t.Fatalf("console:\n%s", console)
	}
}

func TestAppctlCoverageShow(t *testing.T) {
	ts := startServer(t)
	ts.cov.New("flow_miss").Add(42)
	out := appctl(t, ts, "coverage/show").mustSucceed(t)
	if !strings.Contains(out, "\nflow_miss ") || !strings.Contains(out, "total: 42\n") {
		t.Fatalf("coverage/show:\n%s", out)
	}
}

func TestAppctlExit(t *testing.T) {
	ts := startServer(t)
	exited := make(chan bool, 1)
	ts.RegisterExit(func(cleanup bool) { exited <- cleanup })
	appctl(t, ts, "exit", "--cleanup").mustSucceed(t)
	select {
	case cleanup := <-exited:
		if !cleanup {
			t.Fatal("exit --cleanup passed cleanup=false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("exit callback not called")
	}
}
