package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPcapCaptureLeavesRoom mirrors a ping flood into a pcap file whose
// capture directory is a small tmpfs: gvsd stops writing while the
// filesystem has less than 5 % free (instead of filling it), says why in
// the pcap port's Interface.error, and writes again, with the error
// gone, once space is back.
//
// What it checks is described in docs/GUIDE.md, "Mirror into a capture file".
func TestPcapCaptureLeavesRoom(t *testing.T) {
	requireTool(t, "ovs-vsctl", "mount", "ping")
	lab := newNetLab(t)
	g := StartGvsd(t)
	capDir := filepath.Join(g.Rundir, "capture")
	lab.must("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "gvsroom", capDir)
	t.Cleanup(func() { _, _ = lab.run("umount", "-l", capDir) })
	// A filler leaves about 2 MiB for the capture, and is removed later
	// to give space back.
	filler := filepath.Join(capDir, "filler")
	if err := os.WriteFile(filler, make([]byte, 6<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", "gvrm0")
	addInternalPorts(lab, g, "gvrm0",
		labPort{"gvrma", "gvrm-a", nil, []string{"10.79.0.1/24"}},
		labPort{"gvrmb", "gvrm-b", nil, []string{"10.79.0.2/24"}},
	)
	g.MustVsctl("add-port", "gvrm0", "gvrmcap", "--", "set", "interface", "gvrmcap", "type=pcap", "options:file=room.pcapng")
	g.MustVsctl("--", "--id=@a", "get", "port", "gvrma", "--", "--id=@cap", "get", "port", "gvrmcap",
		"--", "--id=@m", "create", "mirror", "name=gvrmm", "select-src-port=@a", "output-port=@cap",
		"--", "set", "bridge", "gvrm0", "mirrors=@m")

	// 4000 echo requests of 1,400 bytes are about 5.7 MB of capture:
	// more than the room left.
	errText := ""
	for i := 0; i < 10 && !strings.Contains(errText, "leaves the last 5 %"); i++ {
		_, _ = lab.exec("gvrm-a", "ping", "-f", "-c", "400", "-s", "1400", "-W", "1", "10.79.0.2")
		errText = waitIfaceError(g, "gvrmcap", "leaves the last 5 %", time.Second)
	}
	if !strings.Contains(errText, "leaves the last 5 %") || !strings.Contains(errText, "room.pcapng") {
		t.Fatalf("the pcap port's Interface.error never said the capture stopped for space: %q", errText)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(capDir, &st); err != nil {
		t.Fatal(err)
	}
	if free, total := st.Bavail*uint64(st.Bsize), st.Blocks*uint64(st.Bsize); free < total/25 {
		t.Fatalf("the capture left %d of %d bytes free, want at least 4 %%", free, total)
	}
	if out := g.MustVsctl("get", "interface", "gvrmcap", "statistics:tx_errors"); strings.TrimSpace(out) == "0" {
		t.Errorf("frames lost to the reserve are not counted in tx_errors")
	}

	// Space back: the next frames are written and the error goes.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	_, _ = lab.exec("gvrm-a", "ping", "-c", "3", "-i", "0.2", "-W", "1", "10.79.0.2")
	if e := waitIfaceError(g, "gvrmcap", "", 10*time.Second); e != "" {
		t.Fatalf("Interface.error after space came back: %q", e)
	}
}

// waitIfaceError polls iface's Interface.error until it contains want
// (or, for want "", until it is empty), for at most limit; it returns
// the last value seen.
func waitIfaceError(g *Gvsd, iface, want string, limit time.Duration) string {
	deadline := time.Now().Add(limit)
	for {
		out, _, _ := g.Vsctl("get", "interface", iface, "error")
		e := strings.Trim(strings.TrimSpace(out), "[]\"")
		if (want == "" && e == "") || (want != "" && strings.Contains(e, want)) || time.Now().After(deadline) {
			return e
		}
		time.Sleep(200 * time.Millisecond)
	}
}
