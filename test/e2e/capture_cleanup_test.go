package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestStaleCaptureMirrorRemoved checks that gvsd removes the temporary
// mirror and pcap port of a `gvs capture` whose process died without
// cleaning up (kill -9), and its FIFO in the capture directory, and leaves
// other mirrors alone.
//
// What it checks is described in docs/GUIDE.md, "gvs capture".
func TestStaleCaptureMirrorRemoved(t *testing.T) {
	requireTool(t, "ovs-vsctl")
	g := StartGvsd(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(dead.Process.Pid) // exited: no such process any more
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", "gvsc0")
	g.MustVsctl("add-port", "gvsc0", "gvscp1", "--", "set", "interface", "gvscp1", "type=internal")
	fifo := filepath.Join(g.Rundir, "capture", "gvscap1.pcapng")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	g.MustVsctl("add-port", "gvsc0", "gvscap1", "--", "set", "interface", "gvscap1", "type=pcap", "options:file=gvscap1.pcapng")
	g.MustVsctl("--", "--id=@src", "get", "port", "gvscp1", "--", "--id=@out", "get", "port", "gvscap1",
		"--", "--id=@m", "create", "mirror", "name=gvs-capture-"+pid, "select-src-port=@src", "output-port=@out",
		"external_ids:gvs-capture-pid="+pid,
		"--", "--id=@keep", "create", "mirror", "name=gvsc-keep", "select-all=true",
		"external_ids:gvs-capture-pid=1", // pid 1 is alive
		"--", "set", "bridge", "gvsc0", "mirrors=@m,@keep")
	deadline := time.Now().Add(15 * time.Second)
	for {
		names := g.MustVsctl("--bare", "--columns=name", "list", "mirror")
		if !strings.Contains(names, "gvs-capture-"+pid) {
			if !strings.Contains(names, "gvsc-keep") {
				t.Fatalf("the mirror of a live process was removed too: %q", names)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stale capture mirror is still there after 15 s: %q", names)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if ports := g.MustVsctl("list-ports", "gvsc0"); strings.Contains(ports, "gvscap1") || !strings.Contains(ports, "gvscp1") {
		t.Errorf("ports after cleanup: %q, want gvscp1 without gvscap1", ports)
	}
	if _, err := os.Lstat(fifo); !os.IsNotExist(err) {
		t.Errorf("the stale capture's FIFO %s is still there (%v)", fifo, err)
	}
}
