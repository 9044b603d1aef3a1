package e2e

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gvlmFrames returns n broadcast frames from the source MACs
// 02:6c:6d:<set>:<i>:<i>, padded to the minimum Ethernet size.
func gvlmFrames(set byte, n int) [][]byte {
	var out [][]byte
	for i := range n {
		f := make([]byte, 60)
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x6c, 0x6d, set, byte(i), byte(i), 0x88, 0xb5})
		out = append(out, f)
	}
	return out
}

// gvlmLearned counts the addresses of gvlmFrames in the bridge's fdb/show.
func gvlmLearned(t *testing.T, g *Gvsd, br string) int {
	t.Helper()
	return strings.Count(appctl(t, g, "fdb/show", br), "02:6c:6d:")
}

// gvlmAwaitLearned polls fdb/show until it lists want addresses of
// gvlmFrames, for up to 10 s, and returns the last count.
func gvlmAwaitLearned(t *testing.T, g *Gvsd, br string, want int) int {
	t.Helper()
	n := 0
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n = gvlmLearned(t, g, br); n == want {
			break
		}
	}
	return n
}

// TestMACTableSizeLimits checks other_config:mac-table-size end to end
// with the real ovs-vsctl: a size that would take gigabytes is refused
// with a clear error and gvsd stays up; a new size applies to the running
// bridge (shrinking evicts); and a database that already holds a huge
// size (written past the check) starts, clamped, and can be repaired.
//
// What it checks is described in docs/GUIDE.md, "Limits and errors you will meet".
func TestMACTableSizeLimits(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-appctl")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvlm")
	addInternalPorts(lab, g, "gvlm", labPort{name: "gvlm1", ns: "gvlm-h1"})

	errOut := g.FailVsctl("set", "bridge", "gvlm", "other_config:mac-table-size=1000000000")
	for _, want := range []string{"constraint violation", "other_config:mac-table-size", "from 1 to 1000000"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("refusal of mac-table-size=1000000000 lacks %q:\n%s", want, errOut)
		}
	}
	g.MustVsctl("show")
	if oc := g.MustVsctl("get", "bridge", "gvlm", "other_config"); strings.Contains(oc, "mac-table-size") {
		t.Errorf("the refused value was stored: %s", oc)
	}

	// A live bridge takes a new size: 50 addresses fit in 100; at 20,
	// the bridge keeps 20 and learns no more.
	g.MustVsctl("set", "bridge", "gvlm", "other_config:mac-table-size=100")
	lab.inject("gvlm-h1", "gvlm1", gvlmFrames(1, 50)...)
	if n := gvlmAwaitLearned(t, g, "gvlm", 50); n != 50 {
		t.Fatalf("learned %d of 50 addresses with mac-table-size=100", n)
	}
	g.MustVsctl("set", "bridge", "gvlm", "other_config:mac-table-size=20")
	if n := gvlmLearned(t, g, "gvlm"); n != 20 {
		t.Errorf("fdb/show lists %d addresses after mac-table-size=20 on the running bridge, want 20", n)
	}
	lab.inject("gvlm-h1", "gvlm1", gvlmFrames(2, 50)...)
	time.Sleep(500 * time.Millisecond)
	if n := gvlmLearned(t, g, "gvlm"); n > 20 {
		t.Errorf("fdb/show lists %d addresses with mac-table-size=20", n)
	}

	// A database written past the check (by an older gvsd, or by hand).
	g.MustVsctl("set", "bridge", "gvlm", "other_config:mac-table-size=1000000")
	g.Stop()
	gvlmRewriteJournal(t, g.DBPath, `["mac-table-size","1000000"]`, `["mac-table-size","1000000000"]`)
	g.Start()
	if v := strings.TrimSpace(g.MustVsctl("get", "bridge", "gvlm", "other_config:mac-table-size")); v != `"1000000000"` {
		t.Fatalf("the rewritten database holds mac-table-size=%s", v)
	}
	appctl(t, g, "fdb/show", "gvlm")
	if rss := gvlmRSS(t, g.cmd.Process.Pid); rss > 512<<20 {
		t.Errorf("gvsd uses %d MiB with mac-table-size=1000000000 in its database", rss>>20)
	}
	// The old value blocks no other change, and can be repaired.
	g.MustVsctl("set", "bridge", "gvlm", "other_config:forward-bpdu=false")
	g.MustVsctl("set", "bridge", "gvlm", "other_config:mac-table-size=2000")
}

// gvlmRewriteJournal replaces old by new in the records of a stopped
// gvsd's database file, framing each changed record again (length and
// CRC-32C), as a database written without the commit-time check would
// hold it.
func gvlmRewriteJournal(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		t.Fatalf("%s has no header line", path)
	}
	out := append(append([]byte{}, header...), '\n')
	changed := 0
	for len(rest) > 0 && rest[0] != 0 {
		line, after, ok := bytes.Cut(rest, []byte("\n"))
		var length int
		var sum uint32
		if _, err := fmt.Sscanf(string(line), "%d %08x", &length, &sum); !ok || err != nil || length+1 > len(after) {
			t.Fatalf("%s: bad record header %q", path, line)
		}
		body := after[:length]
		rest = after[length+1:]
		if bytes.Contains(body, []byte(old)) {
			body = bytes.ReplaceAll(body, []byte(old), []byte(new))
			changed++
		}
		out = append(out, strconv.Itoa(len(body))+" "+fmt.Sprintf("%08x", crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))+"\n"...)
		out = append(append(out, body...), '\n')
	}
	if changed == 0 {
		t.Fatalf("%s: no record holds %s", path, old)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// gvlmRSS returns the resident memory of process pid, in bytes.
func gvlmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for process %d", pid)
	return 0
}

// TestMirrorStatisticsAfterOutputDeleted checks Mirror.statistics with
// the real ovs-vsctl as OVS 3.1 writes them: a mirror whose output port is
// deleted keeps its last counters; a mirror without an output has none;
// a mirror that gets an output again counts from zero.
//
// What it checks is described in docs/GUIDE.md, "Mirror statistics".
func TestMirrorStatisticsAfterOutputDeleted(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-appctl")
	g := StartGvsd(t)
	g.MustVsctl("set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000")
	g.MustVsctl("add-br", "gvlx")
	addInternalPorts(lab, g, "gvlx",
		labPort{name: "gvlx1", ns: "gvlx-h1"}, labPort{name: "gvlx2", ns: "gvlx-h2"}, labPort{name: "gvlx3", ns: "gvlx-h3"})
	g.MustVsctl("--", "--id=@p", "get", "port", "gvlx2", "--", "--id=@m", "create", "mirror", "name=m0",
		"select-all=true", "output-port=@p", "--", "set", "bridge", "gvlx", "mirrors=@m")

	lab.inject("gvlx-h1", "gvlx1", gvlmFrames(3, 5)...)
	last := gvlxAwaitStats(t, g, "m0", func(s map[string]int64) bool { return s["tx_packets"] >= 5 })

	g.MustVsctl("del-port", "gvlx", "gvlx2")
	lab.inject("gvlx-h1", "gvlx1", gvlmFrames(3, 5)...)
	time.Sleep(2500 * time.Millisecond) // two statistics refreshes
	if s := gvlxStats(t, g, "m0"); s["tx_packets"] != last["tx_packets"] || s["tx_bytes"] != last["tx_bytes"] {
		t.Errorf("m0 statistics %v after its output port was deleted, want the last counters %v", s, last)
	}
	if out := g.MustVsctl("list", "mirror", "m0"); !strings.Contains(out, "output_port         : []") {
		t.Errorf("m0 still has an output port:\n%s", out)
	}

	g.MustVsctl("--", "--id=@m", "create", "mirror", "name=m1", "select-all=true", "--", "add", "bridge", "gvlx", "mirrors", "@m")
	time.Sleep(2500 * time.Millisecond)
	if out := strings.TrimSpace(g.MustVsctl("get", "mirror", "m1", "statistics")); out != "{}" {
		t.Errorf("m1, which has no output, has statistics %s, want {}", out)
	}

	g.MustVsctl("--", "--id=@p", "get", "port", "gvlx3", "--", "set", "mirror", "m0", "output-port=@p")
	gvlxAwaitStats(t, g, "m0", func(s map[string]int64) bool { return s["tx_packets"] < last["tx_packets"] })
	lab.inject("gvlx-h1", "gvlx1", gvlmFrames(3, 2)...)
	if s := gvlxAwaitStats(t, g, "m0", func(s map[string]int64) bool { return s["tx_packets"] >= 2 }); s["tx_packets"] >= last["tx_packets"]+2 {
		t.Errorf("m0 statistics %v with a new output port continue from %v, want them counted from zero", s, last)
	}
}

// gvlxStats reads a mirror's statistics with ovs-vsctl.
func gvlxStats(t *testing.T, g *Gvsd, mirror string) map[string]int64 {
	t.Helper()
	return parseStats(strings.TrimSpace(g.MustVsctl("get", "mirror", mirror, "statistics")))
}

// gvlxAwaitStats polls a mirror's statistics until ok accepts them, for
// up to 15 s, and fails with the last ones.
func gvlxAwaitStats(t *testing.T, g *Gvsd, mirror string, ok func(map[string]int64) bool) map[string]int64 {
	t.Helper()
	var s map[string]int64
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if s = gvlxStats(t, g, mirror); ok(s) {
			return s
		}
	}
	t.Fatalf("mirror %s statistics %v did not reach the expected values within 15s", mirror, s)
	return nil
}
