package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDiskFullVsctl: with the database's file system full, ovs-vsctl's
// change fails with gvsd's "I/O error" and its cause, the change is not
// visible, gvsd keeps answering, and once space is back changes work and
// survive a restart.
//
// What it checks is described in docs/GUIDE.md, "Limits and errors you will meet".
func TestDiskFullVsctl(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "mount")
	dir := t.TempDir()
	lab.must("mount", "-t", "tmpfs", "-o", "size=8m", "gvsdiskfull", dir)
	t.Cleanup(func() { _, _ = lab.run("umount", "-l", dir) })
	g := StartGvsdDB(t, filepath.Join(dir, "conf.db"))
	g.MustVsctl("add-br", "dfbr")
	fillFileSystem(t, filepath.Join(dir, "filler"))

	// Each change rewrites the whole Open_vSwitch row, which grows by
	// 64 KiB a time: the journal's preallocated space soon runs out.
	big := strings.Repeat("v", 64<<10)
	refused := ""
	var acked []string
	for i := 0; i < 40 && refused == ""; i++ {
		key := fmt.Sprintf("k%d", i)
		_, errOut, err := g.Vsctl("set", "Open_vSwitch", ".", "external_ids:"+key+"="+big)
		if err == nil {
			acked = append(acked, key)
			continue
		}
		if !strings.Contains(errOut, "I/O error") || !strings.Contains(errOut, "no space left on device") {
			t.Fatalf("ovs-vsctl failed without gvsd's I/O error and its cause: %s", errOut)
		}
		refused = key
	}
	if refused == "" {
		t.Fatal("the full file system never refused a change")
	}
	start := time.Now()
	if out := g.MustVsctl("show"); !strings.Contains(out, "dfbr") || time.Since(start) > 2*time.Second {
		t.Fatalf("ovs-vsctl show with the disk full took %v: %s", time.Since(start), out)
	}
	if out, _, _ := g.Vsctl("--if-exists", "get", "Open_vSwitch", ".", "external_ids:"+refused); strings.TrimSpace(out) != "" {
		t.Fatalf("the refused change is visible: %.40s", out)
	}

	if err := os.Remove(filepath.Join(dir, "filler")); err != nil {
		t.Fatal(err)
	}
	g.MustVsctl("add-br", "dfbr2")
	g.Kill9()
	g.Start()
	for _, key := range acked {
		if out := g.MustVsctl("get", "Open_vSwitch", ".", "external_ids:"+key); len(out) < len(big) {
			t.Fatalf("acknowledged external_ids:%s lost in a restart", key)
		}
	}
	if out, _, _ := g.Vsctl("--if-exists", "get", "Open_vSwitch", ".", "external_ids:"+refused); strings.TrimSpace(out) != "" {
		t.Fatalf("the refused change is in the database after a restart")
	}
	if out := g.MustVsctl("list-br"); out != "dfbr\ndfbr2\n" {
		t.Fatalf("bridges after the restart: %q", out)
	}
}

// fillFileSystem writes path until its file system has no space left.
func fillFileSystem(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for range 1 << 16 {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatalf("filling %s: %v", path, err)
		}
	}
	t.Fatalf("%s never filled its file system", path)
}
