package coverage

import (
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestNewReturnsTheSameCounterForAName(t *testing.T) {
	r := NewRegistry()
	a, b := r.New("x"), r.New("x")
	if a != b {
		t.Fatal("two counters for one name")
	}
	a.Inc()
	b.Add(2)
	if a.Total() != 3 || a.Name() != "x" {
		t.Fatalf("total %d name %q", a.Total(), a.Name())
	}
	if c, ok := r.Lookup("x"); !ok || c != a {
		t.Fatal("Lookup did not find x")
	}
	if _, ok := r.Lookup("y"); ok {
		t.Fatal("Lookup found an unregistered name")
	}
	if New("coverage_test_default") != Default.New("coverage_test_default") {
		t.Fatal("New does not use Default")
	}
}

func TestIncIsAtomicAndDoesNotAllocate(t *testing.T) {
	c := NewRegistry().New("hot")
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10000 {
				c.Inc()
			}
		}()
	}
	wg.Wait()
	if c.Total() != 40000 {
		t.Fatalf("total %d, want 40000", c.Total())
	}
	if allocs := testing.AllocsPerRun(1000, c.Inc); allocs != 0 {
		t.Fatalf("Inc allocates %v times", allocs)
	}
}

func BenchmarkInc(b *testing.B) {
	c := NewRegistry().New("hot")
	b.ReportAllocs()
	for b.Loop() {
		c.Inc()
	}
}

func TestShowListsOnlyHitCounters(t *testing.T) {
	r := NewRegistry()
	r.New("zebra").Add(3)
	r.New("apple").Inc()
	r.New("never")
	r.New("also_never")
	out := r.Show()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("Show:\n%s", out)
	}
	if !strings.HasPrefix(lines[0], "Event coverage, avg rate over last: 5 seconds, last minute, last hour,  hash=") || !strings.HasSuffix(lines[0], ":") {
		t.Errorf("header %q", lines[0])
	}
	wantApple := "apple                      0.0/sec     0.000/sec        0.0000/sec   total: 1"
	if lines[1] != wantApple {
		t.Errorf("line %q\nwant %q", lines[1], wantApple)
	}
	if !strings.HasPrefix(lines[2], "zebra ") || !strings.HasSuffix(lines[2], "total: 3") {
		t.Errorf("line %q", lines[2])
	}
	if lines[3] != "2 events never hit" {
		t.Errorf("footer %q", lines[3])
	}
	header := lines[0]
	r.New("never").Inc()
	if strings.Split(r.Show(), "\n")[0] == header {
		t.Error("hash did not change when another counter was hit")
	}
}

func rateFields(t *testing.T, r *Registry, name string) string {
	t.Helper()
	for _, line := range strings.Split(r.Show(), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return strings.Join(f[1:4], " ")
		}
	}
	t.Fatalf("%s not shown:\n%s", name, r.Show())
	return ""
}

func TestRatesFollowSamples(t *testing.T) {
	r := NewRegistry()
	c := r.New("ev")
	c.Add(60)
	r.Sample()
	if got := rateFields(t, r, "ev"); got != "12.0/sec 1.000/sec 0.0167/sec" {
		t.Fatalf("after one sample: %s", got)
	}
	r.Sample() // nothing new in the last interval
	if got := rateFields(t, r, "ev"); got != "0.0/sec 1.000/sec 0.0167/sec" {
		t.Fatalf("after a quiet sample: %s", got)
	}
	for range samplesPerMinute {
		r.Sample()
	}
	if got := rateFields(t, r, "ev"); got != "0.0/sec 0.000/sec 0.0167/sec" {
		t.Fatalf("a minute later: %s", got)
	}
	for range minutesPerHour * samplesPerMinute {
		r.Sample()
	}
	if got := rateFields(t, r, "ev"); got != "0.0/sec 0.000/sec 0.0000/sec" {
		t.Fatalf("an hour later: %s", got)
	}
	if c.Total() != 60 {
		t.Fatalf("total changed: %d", c.Total())
	}
}

func TestStartSamplingIsSharedAndStops(t *testing.T) {
	r := NewRegistry()
	stop1 := r.StartSampling()
	stop2 := r.StartSampling()
	stop1()
	stop1() // idempotent: must not stop the other user's sampling
	r.mu.Lock()
	running := r.cancel != nil
	r.mu.Unlock()
	if !running {
		t.Fatal("sampling stopped while a user remains")
	}
	stop2()
	r.mu.Lock()
	running = r.cancel != nil
	r.mu.Unlock()
	if running {
		t.Fatal("sampling still running after every user stopped")
	}
	stop3 := r.StartSampling() // restartable after a full stop
	defer stop3()
	r.mu.Lock()
	running = r.cancel != nil
	r.mu.Unlock()
	if !running {
		t.Fatal("sampling did not restart")
	}
}

func TestTotalsListsEveryCounterSorted(t *testing.T) {
	r := NewRegistry()
	r.New("b_event").Add(3)
	r.New("a_event")
	r.New("c_event").Inc()
	got := r.Totals()
	want := []Total{{"a_event", 0}, {"b_event", 3}, {"c_event", 1}}
	if !slices.Equal(got, want) {
		t.Errorf("Totals() = %v, want %v", got, want)
	}
}
