package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPcapFileOutsideCaptureDirRefused checks that a database client
// cannot make gvsd write a pcap file outside its capture directory: the
// victim file keeps its content and Interface.error names the rule.
//
// What it checks is described in docs/GUIDE.md, "Mirror into a capture file".
func TestPcapFileOutsideCaptureDirRefused(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	victim := filepath.Join(t.TempDir(), "victim")
	const content = "precious data, not a capture\n"
	if err := os.WriteFile(victim, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	g.MustVsctl("add-br", "gvpc0")
	// ovs-vsctl reports the port's error on stderr, and succeeds.
	_, errOut, err := g.Vsctl("add-port", "gvpc0", "gvpcp", "--", "set", "interface", "gvpcp", "type=pcap", "options:file="+victim)
	if err != nil || !strings.Contains(errOut, "outside gvsd's capture directory") {
		t.Errorf("ovs-vsctl add-port: %v, stderr %q; want the refusal on stderr", err, errOut)
	}
	var errText string
	deadline := time.Now().Add(10 * time.Second)
	for {
		errText = strings.TrimSpace(g.MustVsctl("get", "interface", "gvpcp", "error"))
		if errText != "[]" || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	captureDir := filepath.Join(g.Rundir, "capture")
	if !strings.Contains(errText, "outside gvsd's capture directory") || !strings.Contains(errText, captureDir) {
		t.Errorf("Interface.error = %s, want one saying the file is outside gvsd's capture directory %s", errText, captureDir)
	}
	if got, err := os.ReadFile(victim); err != nil || string(got) != content {
		t.Errorf("victim file after the port was added: %q, %v; want it untouched", got, err)
	}
	if st, err := os.Stat(captureDir); err != nil || !st.IsDir() || st.Mode().Perm() != 0o700 {
		t.Errorf("capture directory %s: %v, %v; want a directory of mode 0700", captureDir, st, err)
	}
}
