package main

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const tcpReport = `{"start":{},"end":{
 "sum_sent":{"seconds":5,"bits_per_second":2.1e9},
 "sum_received":{"seconds":5.001,"bits_per_second":2e9}}}`

const udpReport = `{"end":{
 "sum_sent":{"seconds":4,"packets":1000000,"lost_packets":0},
 "sum_received":{"seconds":5,"packets":1000000,"lost_packets":600000}}}`

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var b strings.Builder
	err := run(args, &b)
	return b.String(), err
}

func TestRateTCP(t *testing.T) {
	out, err := runOut(t, "rate", writeFile(t, "tcp.json", tcpReport))
	if err != nil {
		t.Fatal(err)
	}
	if out != "2.000\n" {
		t.Errorf("got %q, want the server's 2.000 Gbit/s", out)
	}
}

func TestRateUDP(t *testing.T) {
	out, err := runOut(t, "rate", "-udp", writeFile(t, "udp.json", udpReport))
	if err != nil {
		t.Fatal(err)
	}
	// 400k datagrams arrived in 5 s; 1M were sent in 4 s.
	if out != "80.0 250.0\n" {
		t.Errorf("got %q, want \"80.0 250.0\"", out)
	}
}

func TestRateErrors(t *testing.T) {
	for name, text := range map[string]string{
		"iperf error":  `{"error":"unable to connect to server"}`,
		"no summary":   `{"end":{}}`,
		"not json":     `iperf3: error`,
		"nothing recv": `{"end":{"sum_sent":{"seconds":5},"sum_received":{"seconds":5}}}`,
	} {
		if _, err := runOut(t, "rate", writeFile(t, "r.json", text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRateUDPInconsistent(t *testing.T) {
	text := `{"end":{"sum_sent":{"seconds":5,"packets":10},"sum_received":{"seconds":5,"packets":10,"lost_packets":20}}}`
	_, err := runOut(t, "rate", "-udp", writeFile(t, "r.json", text))
	if err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Errorf("more lost than counted: got %v, want an inconsistency error", err)
	}
}

func TestMedian(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("odd: %v", m)
	}
	if m := median([]float64{4, 1, math.NaN(), 2, 3}); m != 2.5 {
		t.Errorf("even after dropping NaN: %v", m)
	}
	if m := median([]float64{math.NaN()}); !math.IsNaN(m) {
		t.Errorf("none measured: %v", m)
	}
}

func TestTable(t *testing.T) {
	recs := strings.Join([]string{
		"run\toff\tgvsd\tnone\ttcp\t2.0\t-\t0\t1000\t150",
		"run\toff\tgvsd\tnone\ttcp\t1.0\t-\t0\t1000\t150",
		"run\toff\tgvsd\tnone\ttcp\t3.0\t-\t0\t1000\t150",
		"run\toff\tgvsd\tselect_all\ttcp\t1.5\t-\t990\t1000\t180",
		"fail\toff\tgvsd\tselect_all\ttcp\ttimeout",
		"na\toff\tgvsd\tfiltered\ttcp\tno filter column",
	}, "\n") + "\n"
	out, err := runOut(t, "table", writeFile(t, "recs", recs))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want header, rule and 3 rows, got:\n%s", out)
	}
	for i, want := range []string{
		"| off | gvsd | none | 2.00 (1.00–3.00) |",
		"| off | gvsd | select_all | 1.50, 1 failed | 25 % | 0.99 |",
		"| off | gvsd | filtered | n/a (no filter column) |",
	} {
		if !strings.HasPrefix(lines[i+2], want) {
			t.Errorf("row %d:\n got %s\nwant prefix %s", i, lines[i+2], want)
		}
	}
}

func TestBadRecords(t *testing.T) {
	for _, text := range []string{"run\toff\tgvsd\tnone\ttcp\t1\n", "what\ta\tb\tc\td\te\n"} {
		if _, err := runOut(t, "table", writeFile(t, "recs", text)); err == nil {
			t.Errorf("%q: no error", text)
		}
	}
}

// TestDeliveredColumns: the rate the receiving interface got frames at,
// and the switch's CPU per such frame, come from the runs' RECV and WALL
// fields, not from iperf3's count; their medians over the runs.
func TestDeliveredColumns(t *testing.T) {
	recs := strings.Join([]string{
		// 300,000 frames in 2 s at 60 % of a CPU: 150 kpps, 4 µs each.
		"run\talloff\tgvsd\tnone\tudp\t90\t200\t0\t1000\t60\t300000\t2",
		// 200,000 in 2 s at 50 %: 100 kpps, 5 µs.
		"run\talloff\tgvsd\tnone\tudp\t80\t200\t0\t1000\t50\t200000\t2",
		// 500,000 in 2.5 s at 40 %: 200 kpps, 2 µs.
		"run\talloff\tgvsd\tnone\tudp\t95\t200\t0\t1000\t40\t500000\t2.5",
		// The kernel bridge: no process, so a rate and no CPU.
		"run\talloff\tlbr\tnone\tudp\t90\t200\t0\t1000\t-\t400000\t2",
		// A record from before the columns existed.
		"run\talloff\tovs\tnone\tudp\t90\t200\t0\t1000\t80",
	}, "\n") + "\n"
	out, err := runOut(t, "table", writeFile(t, "recs", recs))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| – / 50 | 5.6 | 150 | 4.00 |\n",
		"| – / – |  | 200 |  |\n",
		"| – / 80 | 8.9 |  |  |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestDeliveredRate(t *testing.T) {
	kpps, us := deliveredRate(250000, 2, 50)
	if kpps != 125 || math.Abs(us-4) > 1e-9 {
		t.Errorf("250k frames in 2 s at 50 %%: %v kpps, %v µs; want 125, 4", kpps, us)
	}
	for _, in := range [][3]float64{{0, 2, 50}, {100, 0, 50}, {math.NaN(), 2, 50}, {100, math.NaN(), 50}} {
		if k, u := deliveredRate(in[0], in[1], in[2]); !math.IsNaN(k) || !math.IsNaN(u) {
			t.Errorf("deliveredRate%v = %v, %v; want NaN, NaN", in, k, u)
		}
	}
	if k, u := deliveredRate(100, 1, math.NaN()); k != 0.1 || !math.IsNaN(u) {
		t.Errorf("no CPU measured: %v, %v; want 0.1, NaN", k, u)
	}
}
