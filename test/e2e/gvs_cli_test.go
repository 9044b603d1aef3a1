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

// TestGvsTrace checks gvs trace (README, "gvs"): the trace of
// ofproto/trace in words through a resubmit chain, NORMAL's flood and a
// mirror, with ports by name; --json is one document python3 reads, with
// the same outputs and copies; a flow gvs cannot read is marked at the
// offending word, exit status 1; an unknown bridge and a flow without
// in_port are errors too.
func TestGvsTrace(t *testing.T) {
	requireTool(t, "python3")
	const br = "gvtc"
	g := gvofBridge(t, br, 3)
	gvofMust(t, g, nil, "del-flows", br)
	gvofMust(t, g, nil, "add-flow", br, "table=0,priority=10,in_port=1,icmp,actions=resubmit(,1)")
	gvofMust(t, g, nil, "add-flow", br, "table=1,priority=20,cookie=0x7,icmp,actions=NORMAL")
	g.MustVsctl("--", "--id=@p3", "get", "port", "gvtcp3",
		"--", "--id=@m", "create", "mirror", "name=gvtcm", "select_all=true", "output_port=@p3",
		"--", "set", "bridge", br, "mirrors=@m")
	gvs := func(args ...string) (string, string, error) {
		return g.Run(gvsBin, append([]string{"--db", "unix:" + g.Socket()}, args...)...)
	}
	flowText := "in_port=gvtcp1,icmp,dl_src=02:00:00:00:00:01,dl_dst=02:00:00:00:00:02,nw_src=10.0.0.1,nw_dst=10.0.0.2"
	out, errOut, err := gvs("trace", br, flowText)
	if err != nil {
		t.Fatalf("gvs trace: %v\n%s%s", err, out, errOut)
	}
	for _, w := range []string{
		"enters bridge gvtc by port gvtcp1.",
		"In bridge gvtc:",
		"  table 0: the rule icmp,in_port=gvtcp1, priority 10, matches",
		"    do resubmit(,1)",
		"    table 1: the rule icmp, priority 20, matches (cookie 0x7)",
		"      do NORMAL",
		"no learned MAC for destination, flooding",
		"mirror gvtcm selects the packet",
		"The actions change nothing in the packet.",
		"It leaves by gvtcp2, gvtc.",
		"Mirrors copy it to gvtcp3.",
		"get the datapath actions",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("gvs trace lacks %q:\n%s", w, out)
		}
	}

	out, errOut, err = g.Run("bash", "-c", "set -o pipefail; "+gvsBin+" --db unix:"+g.Socket()+" trace "+br+" '"+flowText+"' --json | python3 -m json.tool")
	if exitCode(err) != 0 {
		t.Fatalf("gvs trace --json | python3 -m json.tool: exit %d, stderr %q:\n%s", exitCode(err), errOut, out)
	}
	var doc struct {
		Outputs []string `json:"outputs"`
		Copies  []string `json:"mirror_copies"`
		Steps   []struct {
			Kind  string `json:"kind"`
			Table int    `json:"table"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("gvs trace --json: %v\n%s", err, out)
	}
	if strings.Join(doc.Outputs, ",") != "gvtcp2,gvtc" || strings.Join(doc.Copies, ",") != "gvtcp3" || len(doc.Steps) < 5 {
		t.Errorf("gvs trace --json: outputs %v, copies %v, %d steps:\n%s", doc.Outputs, doc.Copies, len(doc.Steps), out)
	}

	for _, tc := range []struct{ flow, mark string }{
		{"in_port=gvtcp1,tp_dst=80", "\n  in_port=gvtcp1,tp_dst=80\n                 ^^^^^^^^^\n"},
		{"in_port=nosuch,icmp", "\n  in_port=nosuch,icmp\n  ^^^^^^^^^^^^^^\n"},
		{"in_port=gvtcp1,dl_dst=02:00:00:00:00:0g", "\n  in_port=gvtcp1,dl_dst=02:00:00:00:00:0g\n                 ^^^^^^^^^^^^^^^^^^^^^^^^\n"},
		{"in_port=gvtcp1,bogus=1", "\n  in_port=gvtcp1,bogus=1\n                 ^^^^^^^\n"},
	} {
		out, errOut, err := gvs("trace", br, tc.flow)
		if exitCode(err) != 1 || !strings.Contains(errOut, tc.mark) || out != "" {
			t.Errorf("gvs trace %s: exit %d, stdout %q, stderr:\n%s\nwant the mark:%s", tc.flow, exitCode(err), out, errOut, tc.mark)
		}
	}
	if _, errOut, err := gvs("trace", br, "icmp"); exitCode(err) != 1 || !strings.Contains(errOut, "in_port") {
		t.Errorf("gvs trace without in_port: exit %d, stderr %q", exitCode(err), errOut)
	}
	if _, errOut, err := gvs("trace", "nosuchbr", flowText); exitCode(err) != 1 || !strings.Contains(errOut, "nosuchbr") {
		t.Errorf("gvs trace of an unknown bridge: exit %d, stderr %q", exitCode(err), errOut)
	}
	if _, errOut, err := gvs("trace", br); exitCode(err) != 2 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("gvs trace without FLOW: exit %d, stderr %q", exitCode(err), errOut)
	}
}
