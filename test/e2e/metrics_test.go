package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file checks gvsd's --metrics listener (docs/COMPATIBILITY.md,
// "Metrics"): counters that grow with real traffic through a bridge with a
// mirror, an exposition that promtool accepts, and the profiler only with
// --pprof. Everything it makes starts with "gvmt".

// gvmtFreePort returns a TCP port on 127.0.0.1 that nothing listens on
// right now.
func gvmtFreePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// gvmtGet fetches url (at most 4 MiB) and returns the status and body.
// gvmtAwaitListener waits until gvsd listens on addr: the harness only
// waits for db.sock, and the metrics listener opens just after it.
func gvmtAwaitListener(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gvsd does not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func gvmtGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// gvmtValue returns the value of the sample whose name and labels are
// exactly series (labels in the exposition's sorted order).
func gvmtValue(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("no sample %s in the exposition:\n%s", series, body)
	return 0
}

// TestMetricsGrowWithTraffic starts gvsd with --metrics, sends frames
// through a bridge whose mirror copies them, and checks with HTTP GETs
// that the interface and mirror counters grow, that promtool accepts the
// exposition, and that the profiler is not served without --pprof.
func TestMetricsGrowWithTraffic(t *testing.T) {
	lab := newNetLab(t)
	requireTool(t, "ovs-vsctl", "ovs-appctl", "promtool")
	addr := "127.0.0.1:" + gvmtFreePort(t)
	g := StartGvsdArgs(t, "--metrics="+addr)
	gvmtAwaitListener(t, addr)
	g.MustVsctl("add-br", "gvmt")
	addInternalPorts(lab, g, "gvmt",
		labPort{name: "gvmt1", ns: "gvmt-h1"}, labPort{name: "gvmt2", ns: "gvmt-h2"}, labPort{name: "gvmt3", ns: "gvmt-h3"})
	g.MustVsctl("--", "--id=@p", "get", "port", "gvmt3", "--", "--id=@m", "create", "mirror", "name=gvmtspan",
		"select-all=true", "output-port=@p", "--", "set", "bridge", "gvmt", "mirrors=@m")

	const (
		rx1    = `gvs_interface_rx_packets_total{bridge="gvmt",interface="gvmt1",port="gvmt1"}`
		tx2    = `gvs_interface_tx_packets_total{bridge="gvmt",interface="gvmt2",port="gvmt2"}`
		mirror = `gvs_mirror_tx_packets_total{bridge="gvmt",mirror="gvmtspan"}`
		mbytes = `gvs_mirror_tx_bytes_total{bridge="gvmt",mirror="gvmtspan"}`
	)
	url := "http://" + addr + "/metrics"
	code, before := gvmtGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d:\n%s", code, before)
	}
	const frames = 20
	lab.inject("gvmt-h1", "gvmt1", gvlmFrames(7, frames)...)
	var after string
	grown := func() bool {
		return gvmtValue(t, after, rx1) >= gvmtValue(t, before, rx1)+frames &&
			gvmtValue(t, after, tx2) >= gvmtValue(t, before, tx2)+frames &&
			gvmtValue(t, after, mirror) >= gvmtValue(t, before, mirror)+frames
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, after = gvmtGet(t, url)
		if grown() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters did not grow by %d frames within 10s: %s %v→%v, %s %v→%v, %s %v→%v", frames,
				rx1, gvmtValue(t, before, rx1), gvmtValue(t, after, rx1),
				tx2, gvmtValue(t, before, tx2), gvmtValue(t, after, tx2),
				mirror, gvmtValue(t, before, mirror), gvmtValue(t, after, mirror))
		}
	}
	if b := gvmtValue(t, after, mbytes); b < frames*60 {
		t.Errorf("%s = %v, want at least %d", mbytes, b, frames*60)
	}
	for _, want := range []string{"gvs_ovsdb_transactions_committed_total ", "gvs_ovsdb_sessions ",
		`gvs_coverage_total{name="bridge_panic"} `, `gvs_flow_table_flows{bridge="gvmt",table="0"} 1`,
		`gvs_drops_total{cause="mirror_output_full"} `} {
		if !strings.Contains(after, want) {
			t.Errorf("the exposition has no %q", want)
		}
	}

	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = strings.NewReader(after)
	var out bytes.Buffer
	check.Stdout, check.Stderr = &out, &out
	if err := check.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}

	if code, _ := gvmtGet(t, "http://"+addr+"/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --pprof answered %d, want 404", code)
	}
}

// TestMetricsPprof: with --pprof the profiler answers on the metrics
// listener; --pprof without --metrics is refused with a reason.
func TestMetricsPprof(t *testing.T) {
	addr := "127.0.0.1:" + gvmtFreePort(t)
	StartGvsdArgs(t, "--metrics="+addr, "--pprof")
	gvmtAwaitListener(t, addr)
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/metrics"} {
		if code, body := gvmtGet(t, "http://"+addr+path); code != http.StatusOK {
			t.Errorf("%s with --pprof answered %d:\n%s", path, code, body)
		}
	}

	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, gvsdBin, "-rundir", dir, "-db", dir+"/conf.db", "--pprof").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--pprof needs --metrics") {
		t.Errorf("gvsd --pprof without --metrics: %v\n%s", err, out)
	}
}
