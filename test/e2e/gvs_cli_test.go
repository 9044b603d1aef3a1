package e2e

import (
	"encoding/json"
	"errors"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// exitCode is a command's exit status: 0 for no error, -1 when it did
// not run to an exit.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}

// TestGvsCLIScripting checks gvs as scripts use it (README, "gvs"):
// show --json is one JSON document that python3's json.tool reads, a
// wrong command line fails with usage on stderr, show exits 1 while it
// reports an error (here an interface of a type gvs does not have), and
// no colour goes into a pipe unless asked for.
//
// What it checks is described in docs/GUIDE.md, "gvs show".
func TestGvsCLIScripting(t *testing.T) {
	requireTool(t, "ovs-vsctl", "python3", "bash")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvjs0")
	g.MustVsctl("add-port", "gvjs0", "gvjsp1", "--", "set", "interface", "gvjsp1", "type=internal",
		"--", "set", "port", "gvjsp1", "tag=10")

	out, errOut, err := g.Run(gvsBin, "show")
	if exitCode(err) != 0 || !strings.Contains(out, "port gvjsp1") {
		t.Fatalf("gvs show of a switch without errors: exit %d, stderr %q:\n%s", exitCode(err), errOut, out)
	}
	out, errOut, err = g.Run("bash", "-c", "set -o pipefail; "+gvsBin+" show --json | python3 -m json.tool")
	if exitCode(err) != 0 || !strings.Contains(out, `"name": "gvjsp1"`) {
		t.Fatalf("gvs show --json | python3 -m json.tool: exit %d, stderr %q:\n%s", exitCode(err), errOut, out)
	}

	for _, args := range [][]string{{"show", "junk"}, {"junk"}, {"show", "--junk"}} {
		out, errOut, err = g.Run(gvsBin, args...)
		if exitCode(err) != 2 || !strings.Contains(errOut, "Usage:") || out != "" {
			t.Errorf("gvs %q: exit %d, stdout %q, stderr %q; want exit 2 and usage on stderr", args, exitCode(err), out, errOut)
		}
	}

	// ovs-vsctl itself warns about the error; gvs show must report it too.
	if _, _, err := g.Vsctl("add-port", "gvjs0", "gvjsbad", "--", "set", "interface", "gvjsbad", "type=stt"); err != nil {
		t.Fatalf("ovs-vsctl add-port gvjsbad: %v", err)
	}
	const want = `could not open network device gvjsbad (unsupported interface type "stt")`
	var doc struct {
		Problems []struct{ Bridge, Kind, Name, Error string }
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, err = g.Run(gvsBin, "show", "--json")
		doc.Problems = nil
		if jerr := json.Unmarshal([]byte(out), &doc); jerr != nil {
			t.Fatalf("gvs show --json: %v:\n%s", jerr, out)
		}
		if len(doc.Problems) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if exitCode(err) != 1 || len(doc.Problems) != 1 || doc.Problems[0].Name != "gvjsbad" || doc.Problems[0].Error != want {
		t.Errorf("gvs show --json with a bad interface: exit %d, stderr %q, problems %+v; want exit 1 and %q",
			exitCode(err), errOut, doc.Problems, want)
	}
	// The failure is counted for coverage/show too.
	if cov := appctl(t, g, "coverage/show"); !regexp.MustCompile(`(?m)^bridge_iface_open_error .*total: [1-9]`).MatchString(cov) {
		t.Errorf("coverage/show does not count the interface that could not be opened:\n%s", cov)
	}
	out, errOut, err = g.Run(gvsBin, "show")
	if exitCode(err) != 1 || !strings.Contains(out, "error: "+want) || !strings.Contains(errOut, "1 problem") {
		t.Errorf("gvs show with a bad interface: exit %d, stderr %q:\n%s", exitCode(err), errOut, out)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("gvs show coloured a pipe:\n%q", out)
	}
	out, _, _ = g.Run(gvsBin, "show", "--color=always")
	if !strings.Contains(out, "\x1b[1;31merror: "+want) {
		t.Errorf("gvs show --color=always did not colour the error:\n%q", out)
	}

	// bash loads the completion script and then completes gvs.
	out, errOut, err = g.Run("bash", "-c", "source <("+gvsBin+" completion bash) && complete -p gvs")
	if err != nil || !strings.Contains(out, "gvs") {
		t.Errorf("loading gvs completion bash: %v, stderr %q, stdout %q", err, errOut, out)
	}
}
