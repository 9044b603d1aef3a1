package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestAppctl drives gvsd's control socket with the real ovs-appctl, which
// finds it through the pidfile in the run directory.
func TestAppctl(t *testing.T) {
	requireTool(t, "ovs-appctl", "ovs-vsctl")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvap0")
	appctl := func(args ...string) (string, string, error) { return g.Run("ovs-appctl", args...) }

	if out, _, err := appctl("version"); err != nil || !strings.Contains(out, "Open vSwitch") || !strings.Contains(out, "gvs") {
		t.Errorf("version: %q %v", out, err)
	}
	out, _, err := appctl("list-commands")
	for _, cmd := range []string{"fdb/show", "fdb/flush", "dpif/show", "vlog/list", "vlog/set", "coverage/show", "exit"} {
		if err != nil || !strings.Contains(out, cmd) {
			t.Errorf("list-commands lacks %s: %v\n%s", cmd, err, out)
		}
	}
	if out, _, err := appctl("dpif/show"); err != nil || !strings.Contains(out, "gvap0:") || !strings.Contains(out, "gvap0 65534/") {
		t.Errorf("dpif/show: %v\n%s", err, out)
	}
	if _, _, err := appctl("vlog/set", "ANY:console:dbg"); err != nil {
		t.Errorf("vlog/set: %v", err)
	}
	if out, _, err := appctl("vlog/list"); err != nil || !strings.Contains(out, "console") {
		t.Errorf("vlog/list: %v\n%s", err, out)
	}
	if _, _, err := appctl("coverage/show"); err != nil {
		t.Errorf("coverage/show: %v", err)
	}

	// Errors come back as appctl errors: a failure exit and a message.
	_, errOut, err := appctl("fdb/show", "nosuchbridge")
	if err == nil || !strings.Contains(errOut, "no such bridge") {
		t.Errorf("fdb/show of a missing bridge: err=%v stderr=%q", err, errOut)
	}
	_, errOut, err = appctl("no/such/command")
	if err == nil || errOut == "" {
		t.Errorf("unknown command: err=%v stderr=%q", err, errOut)
	}
	_, errOut, err = appctl("fdb/show")
	if err == nil || !strings.Contains(errOut, "argument") {
		t.Errorf("fdb/show without a bridge: err=%v stderr=%q", err, errOut)
	}

	// exit stops the daemon.
	if _, _, err := appctl("exit"); err != nil {
		t.Fatalf("exit: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, err := g.Vsctl("--timeout=1", "show"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("gvsd still answers 5 s after ovs-appctl exit")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGvsCLI checks gvs show and gvs version against a running gvsd.
//
// What it checks is described in docs/GUIDE.md, "gvs show".
func TestGvsCLI(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvcl0")
	g.MustVsctl("add-port", "gvcl0", "gvclp1", "--", "set", "interface", "gvclp1", "type=internal", "--", "set", "port", "gvclp1", "tag=10")
	g.Vsctl("add-port", "gvcl0", "gvclmissing0") // fails to open: an error to show
	g.MustVsctl("--", "--id=@p", "get", "port", "gvclp1", "--", "--id=@m", "create", "mirror", "name=gvclm",
		"select-src-port=@p", "--", "set", "bridge", "gvcl0", "mirrors=@m")

	// The missing device is a problem show reports, so it exits 1.
	out, errOut, err := g.Run(gvsBin, "show")
	if exitCode(err) != 1 {
		t.Fatalf("gvs show: %v %s", err, errOut)
	}
	for _, want := range []string{"bridge gvcl0", "port gvclp1", "access vlan 10", "internal", "ofport 1",
		"port gvclmissing0", "error: could not open network device gvclmissing0", "mirror gvclm", "src gvclp1"} {
		if !strings.Contains(out, want) {
			t.Errorf("gvs show lacks %q:\n%s", want, out)
		}
	}
	out, _, err = g.Run(gvsBin, "version")
	if err != nil || !strings.Contains(out, "gvs ") || !strings.Contains(out, "gvsd:") {
		t.Errorf("gvs version: %v\n%s", err, out)
	}
	// With no daemon, show fails with a readable message.
	g.Stop()
	_, errOut, err = g.Run(gvsBin, "show")
	if err == nil || !strings.Contains(errOut, "cannot connect") {
		t.Errorf("gvs show with gvsd stopped: err=%v stderr=%q", err, errOut)
	}
}
