package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVlogDatapathDebug: `ovs-appctl vlog/set datapath:file:dbg` makes the
// datapath's debug lines (a flow cache miss and what it translated to)
// appear in the log file while real packets cross the switch, and
// `vlog/set datapath:file:info` stops them again.
func TestVlogDatapathDebug(t *testing.T) {
	lab := newNetLab(t)
	logFile := filepath.Join(t.TempDir(), "gvsd.log")
	g := StartGvsdArgs(t, "--log-file="+logFile)
	g.MustVsctl("add-br", "gvvl")
	for i, ns := range []string{"gvvl1", "gvvl2"} {
		p := ns + "p"
		g.MustVsctl("add-port", "gvvl", p, "--", "set", "interface", p, "type=internal")
		lab.netns(ns)
		lab.moveInto(p, ns, "10.77.1."+string(rune('1'+i))+"/24")
	}
	debugLines := func() int {
		b, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatalf("log file: %v", err)
		}
		return len(linesWith(strings.Split(string(b), "\n"), "|datapath|DBG|"))
	}

	lab.pingOK("gvvl1", "10.77.1.2")
	if n := debugLines(); n != 0 {
		t.Fatalf("%d datapath debug lines at the default level", n)
	}

	appctl(t, g, "vlog/set", "datapath:file:dbg")
	appctl(t, g, "dpctl/del-flows") // the next packets miss the cache
	lab.pingOK("gvvl1", "10.77.1.2")
	if !waitFor(5*time.Second, func() bool { return debugLines() > 0 }) {
		b, _ := os.ReadFile(logFile)
		t.Fatalf("vlog/set datapath:file:dbg: no datapath debug line in the log file:\n%s", b)
	}
	b, _ := os.ReadFile(logFile)
	if !strings.Contains(string(b), "flow cache miss") {
		t.Errorf("the debug lines do not say what they are about:\n%s", b)
	}

	appctl(t, g, "vlog/set", "datapath:file:info")
	before := debugLines()
	appctl(t, g, "dpctl/del-flows")
	lab.pingOK("gvvl1", "10.77.1.2")
	time.Sleep(200 * time.Millisecond)
	if after := debugLines(); after != before {
		t.Errorf("%d datapath debug lines after vlog/set datapath:file:info", after-before)
	}
}
