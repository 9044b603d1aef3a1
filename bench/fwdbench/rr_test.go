package main

import (
	"bufio"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestPercentiles(t *testing.T) {
	var s []time.Duration
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Microsecond)
	}
	p50, p99 := percentiles(s)
	if p50 != 50*time.Microsecond || p99 != 99*time.Microsecond {
		t.Errorf("1..100 µs: p50 %v p99 %v, want 50µs 99µs", p50, p99)
	}
	p50, p99 = percentiles([]time.Duration{7})
	if p50 != 7 || p99 != 7 {
		t.Errorf("one sample: %v %v", p50, p99)
	}
}

// TestRoundTrips runs the server and the client on loopback for a second.
func TestRoundTrips(t *testing.T) {
	pr, pw := io.Pipe()
	srvErr := make(chan error, 1)
	go func() {
		err := rrServer([]string{"-t", "1", "127.0.0.1:0"}, pw)
		pw.Close()
		srvErr <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("server said %q", line)
	}
	go io.Copy(io.Discard, pr)
	out, err := runOut(t, "rr-client", "-t", "1", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out)
	if len(f) != 3 {
		t.Fatalf("client printed %q, want P50 P99 COUNT", out)
	}
	p50, _ := strconv.ParseFloat(f[0], 64)
	p99, _ := strconv.ParseFloat(f[1], 64)
	n, _ := strconv.Atoi(f[2])
	if p50 <= 0 || p99 < p50 || n < 100 {
		t.Errorf("client printed %q: want 0 < p50 <= p99 and at least 100 round trips", out)
	}
	if err := <-srvErr; err != nil {
		t.Errorf("server: %v", err)
	}
}

func TestRRFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-t", "0", "x:1"}, {"-t", "601", "x:1"}, {"a:1", "b:2"}} {
		if _, err := runOut(t, append([]string{"rr-client"}, args...)...); err == nil {
			t.Errorf("rr-client %q: no error", args)
		}
	}
}

func TestRRTable(t *testing.T) {
	recs := strings.Join([]string{
		"run\toff\tgvsd\tnone\tudp\t100\t200\t0\t1000\t90",
		"run\toff\tgvsd\tnone\trr\t50\t120\t9000\t-\t40",
		"run\toff\tgvsd\tnone\trr\t70\t140\t8000\t-\t44",
		"run\toff\tgvsd\tnone\trr\t60\t100\t8500\t-\t42",
		"run\tint-on\tgvsd\tnone\trr\t30\t90\t9000\t-\t40",
	}, "\n") + "\n"
	out, err := runOut(t, "table", writeFile(t, "recs", recs))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		// 90 % of a CPU at 100 kpps: 9 µs of CPU per packet.
		"| off | gvsd | none | not run |  |  | 100 | 200 |  |  | – / 90 | 9.0 |  |  |",
		"| TCP RR p50 µs | TCP RR p99 µs | switch CPU % |",
		"| off | gvsd | none | 60 (50–70) | 120 | 42 |",
		"| int-on | gvsd | none | 30 | 90 | 40 |",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| int-on | gvsd | none | not run") {
		t.Errorf("a latency-only configuration has a throughput row:\n%s", out)
	}
}
