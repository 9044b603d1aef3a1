package metrics

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gvs/internal/vlog"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestServerPprofOnlyWhenAsked: /metrics is always served; the profiler
// only with Options.Pprof, and 404 otherwise.
func TestServerPprofOnlyWhenAsked(t *testing.T) {
	for _, withPprof := range []bool{false, true} {
		s, err := Listen("127.0.0.1:0", testSources(), Options{Pprof: withPprof})
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + s.Addr().String()
		code, body := get(t, base+"/metrics")
		if code != http.StatusOK || !strings.Contains(body, `gvs_mirror_tx_packets_total{bridge="br0",mirror="span"} 8`) ||
			!strings.Contains(body, "go_goroutines") {
			t.Errorf("pprof=%v: /metrics answered %d:\n%s", withPprof, code, body)
		}
		wantPprof := http.StatusNotFound
		if withPprof {
			wantPprof = http.StatusOK
		}
		for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
			if code, _ := get(t, base+path); code != wantPprof {
				t.Errorf("pprof=%v: %s answered %d, want %d", withPprof, path, code, wantPprof)
			}
		}
		if code, _ := get(t, base+"/elsewhere"); code != http.StatusNotFound {
			t.Errorf("an unknown path answered %d, want 404", code)
		}
		s.Close()
	}
}

func TestListenReportsABadAddress(t *testing.T) {
	if _, err := Listen("256.0.0.1:http-nope", testSources(), Options{}); err == nil || !strings.Contains(err.Error(), "metrics") {
		t.Errorf("Listen on a bad address: %v, want an error naming metrics", err)
	}
}

// The profiler is for the host's operators, but anyone who reaches the
// listener can ask it: a profile or trace of an hour (which holds the
// profiler and, for a trace, slows every goroutine), a pile of slow
// profiles at once, or an endless symbol lookup must be refused with a
// clear answer.
func TestPprofRequestsBounded(t *testing.T) {
	s, err := Listen("127.0.0.1:0", testSources(), Options{Pprof: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	do := func(method, path string, body io.Reader) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/debug/pprof/profile?seconds=3600", "/debug/pprof/trace?seconds=3600", "/debug/pprof/heap?seconds=3600"} {
		code, body := do("GET", path, nil)
		if code != http.StatusBadRequest || !strings.Contains(body, "at most 60") {
			t.Errorf("%s answered %d %q, want 400 naming the limit", path, code, body)
		}
	}
	// Two slow delta profiles hold the profiler; a third is turned away.
	var wg sync.WaitGroup
	for range maxProfiles {
		wg.Add(1)
		go func() { defer wg.Done(); do("GET", "/debug/pprof/allocs?seconds=2", nil) }()
	}
	time.Sleep(500 * time.Millisecond)
	code, body := do("GET", "/debug/pprof/goroutine?debug=2", nil)
	if code != http.StatusTooManyRequests || !strings.Contains(body, "profiles") {
		t.Errorf("a profile beyond %d at once answered %d %q, want 429", maxProfiles, code, body)
	}
	wg.Wait()
	if code, _ := do("GET", "/debug/pprof/goroutine?debug=1", nil); code != http.StatusOK {
		t.Errorf("after the slow profiles, a profile answered %d", code)
	}
	// pprof's symbol lookup answers a line per known address it is sent.
	big := strings.Repeat("0x401000+", (maxSymbolRequest+10)/9)
	if code, _ := do("POST", "/debug/pprof/symbol", strings.NewReader(big)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d-byte symbol lookup answered %d, want 413", len(big), code)
	}
	if code, body := do("POST", "/debug/pprof/symbol", strings.NewReader("0x401000")); code != http.StatusOK {
		t.Errorf("a small symbol lookup answered %d %q", code, body)
	}
}

// TestPprofOnEveryAddressWarns: --pprof on an address other hosts reach
// (":9475" is every address) is allowed but warned about; on loopback
// it is not.
func TestPprofOnEveryAddressWarns(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	vlog.Default.SetConsole(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}))
	t.Cleanup(func() { vlog.Default.SetConsole(os.Stderr) })
	for _, c := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {":0", true}} {
		mu.Lock()
		logged.Reset()
		mu.Unlock()
		s, err := Listen(c.addr, testSources(), Options{Pprof: true})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		mu.Lock()
		got := strings.Contains(logged.String(), "answers every host")
		mu.Unlock()
		if got != c.warn {
			t.Errorf("--metrics=%s --pprof: warning %v, want %v", c.addr, got, c.warn)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestSlowClientsDoNotHoldTheListener: clients that send their request
// body a byte at a time and then stop held every one of the listener's
// maxConns connections (and the profiler's slots) for good, so a
// scraper could never connect; a request must now arrive whole within
// readTimeout.
func TestSlowClientsDoNotHoldTheListener(t *testing.T) {
	old := readTimeout
	readTimeout = 500 * time.Millisecond
	defer func() { readTimeout = old }()
	s, err := Listen("127.0.0.1:0", testSources(), Options{Pprof: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for range maxConns {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /debug/pprof/symbol HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + s.Addr().String() + "/metrics")
	if err != nil {
		t.Fatalf("a scrape with %d slow clients connected: %v", maxConns, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("scrape answered %d", resp.StatusCode)
	}
}
