// Package coverage counts named events cheaply so that operators can see how
// often each one happened (`ovs-appctl coverage/show`).
//
// A subsystem declares its counters once, at package level:
//
//	var upcalls = coverage.New("dpif_upcall")
//
// and bumps them on any path, including the packet path: Inc is one atomic
// add and never allocates.
package coverage

import (
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SampleInterval is how often a running sampler records totals; the rates
// shown by Show are averages over whole intervals.
const SampleInterval = 5 * time.Second

const (
	samplesPerMinute = int(time.Minute / SampleInterval)
	minutesPerHour   = 60
)

// Counter is one named event count. The zero value is not usable: get one
// from New or (*Registry).New.
type Counter struct {
	name  string
	total atomic.Uint64

	// history, guarded by the registry's mutex: totals at the last
	// samplesPerMinute+1 samples and at the last minutesPerHour+1 minutes.
	recent  [samplesPerMinute + 1]uint64
	minutes [minutesPerHour + 1]uint64
}

// Inc counts one event.
func (c *Counter) Inc() { c.total.Add(1) }

// Add counts n events at once (a batch of packets, say).
func (c *Counter) Add(n uint64) { c.total.Add(n) }

// Total is the number of events counted since the program started.
func (c *Counter) Total() uint64 { return c.total.Load() }

// Name is the counter's registered name.
func (c *Counter) Name() string { return c.name }

// Registry is a set of counters with their sampled history.
type Registry struct {
	mu       sync.Mutex
	counters map[string]*Counter
	samples  int // samples taken so far

	samplers int                // StartSampling calls not yet stopped
	cancel   context.CancelFunc // stops the sampling goroutine
}

// NewRegistry returns an empty registry; most code uses Default through New.
func NewRegistry() *Registry {
	return &Registry{counters: make(map[string]*Counter)}
}

// Default is the process-wide registry that New adds to and that the control
// socket shows.
var Default = NewRegistry()

// New returns the counter called name in Default, creating it on first use.
func New(name string) *Counter { return Default.New(name) }

// New returns the counter called name, creating it on first use, so two
// packages naming the same event share one count.
func (r *Registry) New(name string) *Counter {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.counters[name]; ok {
		return c
	}
	c := &Counter{name: name}
	r.counters[name] = c
	return c
}

// Lookup returns the counter called name, if one was registered.
func (r *Registry) Lookup(name string) (*Counter, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.counters[name]
	return c, ok
}

// Sample records every counter's total as one SampleInterval step of
// history. A running sampler calls it; tests call it directly.
func (r *Registry) Sample() {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.samples
	for _, c := range r.counters {
		total := c.total.Load()
		c.recent[n%len(c.recent)] = total
		if n%samplesPerMinute == 0 {
			c.minutes[(n/samplesPerMinute)%len(c.minutes)] = total
		}
	}
	r.samples++
}

// StartSampling makes sure a goroutine calls Sample every SampleInterval
// until every caller has called the returned stop function. Several servers
// may share one registry without sampling it twice.
func (r *Registry) StartSampling() (stop func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samplers++
	if r.samplers == 1 {
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go r.sampleUntil(ctx)
	}
	var once sync.Once
	return func() { once.Do(r.stopSampling) }
}

func (r *Registry) stopSampling() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samplers--
	if r.samplers == 0 {
		r.cancel()
		r.cancel = nil
	}
}

func (r *Registry) sampleUntil(ctx context.Context) {
	ticker := time.NewTicker(SampleInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			r.Sample()
		}
	}
}

// rates returns the per-second averages over the last sample interval, the
// last minute and the last hour. History from before the program started
// counts as zero, as a fresh daemon has seen nothing yet.
func (r *Registry) rates(c *Counter) (interval, minute, hour float64) {
	n := r.samples
	if n == 0 {
		return 0, 0, 0
	}
	at := func(i int) uint64 { // total at sample i, zero before the start
		if i < 0 {
			return 0
		}
		return c.recent[i%len(c.recent)]
	}
	last := n - 1
	interval = float64(at(last)-at(last-1)) / SampleInterval.Seconds()
	minute = float64(at(last)-at(last-samplesPerMinute)) / time.Minute.Seconds()
	lastMinute := last / samplesPerMinute
	hourAgo := uint64(0)
	if lastMinute >= minutesPerHour {
		hourAgo = c.minutes[(lastMinute-minutesPerHour)%len(c.minutes)]
	}
	hour = float64(at(last)-hourAgo) / time.Hour.Seconds()
	return interval, minute, hour
}

// Show renders the coverage/show table: one line per counter that has
// counted anything (sorted by name), then how many never did. The layout
// follows ovs-vswitchd's so that scripts reading it keep working.
func (r *Registry) Show() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.counters))
	for name := range r.counters {
		names = append(names, name)
	}
	slices.Sort(names)

	var body strings.Builder
	hash := fnv.New32a()
	unused := 0
	for _, name := range names {
		c := r.counters[name]
		total := c.total.Load()
		if total == 0 {
			unused++
			continue
		}
		hash.Write([]byte(name))
		interval, minute, hour := r.rates(c)
		fmt.Fprintf(&body, "%-24s %5.1f/sec %9.3f/sec %13.4f/sec   total: %d\n",
			name, interval, minute, hour, total)
	}
	var out strings.Builder
	fmt.Fprintf(&out, "Event coverage, avg rate over last: %d seconds, last minute, last hour,  hash=%08x:\n",
		int(SampleInterval.Seconds()), hash.Sum32())
	out.WriteString(body.String())
	fmt.Fprintf(&out, "%d events never hit\n", unused)
	return out.String()
}

// Total is one counter's name and total, as Totals reports it.
type Total struct {
	Name  string
	Total uint64
}

// Totals returns every registered counter, zero or not, sorted by name:
// what a metrics exporter reads on each scrape. The set only grows, one
// entry per name declared in the program, so it is bounded.
func (r *Registry) Totals() []Total {
	r.mu.Lock()
	out := make([]Total, 0, len(r.counters))
	for name, c := range r.counters {
		out = append(out, Total{Name: name, Total: c.total.Load()})
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Total) int { return strings.Compare(a.Name, b.Name) })
	return out
}
