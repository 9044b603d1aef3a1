package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gvsdResources reads what a gvsd process holds: open file descriptors,
// OS threads, and goroutines (from --pprof on metricsAddr).
func gvsdResources(t *testing.T, g *Gvsd, metricsAddr string) (fds, threads, goroutines int) {
	t.Helper()
	pid := g.cmd.Process.Pid
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^Threads:\s+(\d+)`).FindSubmatch(status); m != nil {
		threads, _ = strconv.Atoi(string(m[1]))
	}
	resp, err := http.Get("http://" + metricsAddr + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if m := regexp.MustCompile(`goroutine profile: total (\d+)`).FindSubmatch(body); m != nil {
		goroutines, _ = strconv.Atoi(string(m[1]))
	}
	return len(ents), threads, goroutines
}

// TestConfigChurnLeaksNothing: a database client adding and deleting
// ports of every kind (internal, system, VXLAN and GRE tunnels, pcap),
// mirrors and controllers in a loop must not grow gvsd: after 40 rounds
// it holds the file descriptors, threads and goroutines it held after
// the first, and no TAP device of a deleted port is left.
func TestConfigChurnLeaksNothing(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ip")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	g := StartGvsdArgs(t, "--metrics", addr, "--pprof")
	g.MustVsctl("add-br", "chbr")
	lab.netns("chns")
	lab.veth("chv0", "chv1", "chns")
	round := func(i int) {
		g.MustVsctl("add-port", "chbr", "chi", "--", "set", "interface", "chi", "type=internal",
			"--", "add-port", "chbr", "chv0",
			"--", "add-port", "chbr", "chvx", "--", "set", "interface", "chvx", "type=vxlan",
			"options:remote_ip=192.0.2.1", fmt.Sprintf("options:dst_port=%d", 14789+i%3),
			"--", "add-port", "chbr", "chgre", "--", "set", "interface", "chgre", "type=gre", "options:remote_ip=192.0.2.2",
			"--", "add-port", "chbr", "chpc", "--", "set", "interface", "chpc", "type=pcap", "options:file=churn.pcapng",
			"--", "--id=@m", "get", "port", "chvx", "--", "--id=@mi", "create", "mirror", "name=chm", "select_all=true", "output_port=@m",
			"--", "add", "bridge", "chbr", "mirrors", "@mi")
		g.MustVsctl("set-controller", "chbr", "punix:"+filepath.Join(g.Rundir, "chbr.ctl.sock"), "ptcp:0:127.0.0.1")
		g.MustVsctl("del-controller", "chbr", "--", "clear", "bridge", "chbr", "mirrors",
			"--", "del-port", "chbr", "chi", "--", "del-port", "chbr", "chv0", "--", "del-port", "chbr", "chvx",
			"--", "del-port", "chbr", "chgre", "--", "del-port", "chbr", "chpc")
	}
	settle := func() (int, int, int) {
		time.Sleep(1500 * time.Millisecond) // controllers' backoff, closing threads
		return gvsdResources(t, g, addr)
	}
	round(0)
	fds0, threads0, gr0 := settle()
	for i := 1; i <= 40; i++ {
		round(i)
	}
	fds, threads, gr := settle()
	t.Logf("after 1 round: %d fds, %d threads, %d goroutines; after 41: %d, %d, %d", fds0, threads0, gr0, fds, threads, gr)
	if fds > fds0+2 || gr > gr0+5 || threads > threads0+4 {
		t.Errorf("gvsd grew with churn: fds %d -> %d, threads %d -> %d, goroutines %d -> %d", fds0, fds, threads0, threads, gr0, gr)
	}
	if labLinkExists("chi") {
		t.Errorf("the deleted internal port's device chi is still there")
	}
	if out, _ := lab.run("ip", "-o", "link", "show", "chv0"); !strings.Contains(out, "chv0") {
		t.Errorf("the deleted system port's device chv0 was removed (it is the host's)")
	}
}
