package metrics

import (
	"io"
	"net/http"
	"strings"
	"testing"
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
