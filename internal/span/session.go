package span

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"
)

// Env is what sessions need from gvsd.
type Env struct {
	// CaptureDir is gvsd's capture directory: pcap: and json: files
	// are created only inside it, as pcap ports' files are.
	CaptureDir string
	// Changed, if set, is called when a session's error changes, so that
	// the caller writes the new status back soon.
	Changed func()
}

// Session is a running span session.
type Session struct {
	cfg   Config
	env   Env
	srcs  []*sourceReader
	dests []*sender

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup
}

// Start starts a session whose Config passed Validate. It does not fail:
// a source or destination that cannot be opened yet is retried, and its
// error shows in Status.
func Start(cfg Config, env Env) (*Session, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Session{cfg: cfg, env: env, stop: make(chan struct{})}
	progs := map[Direction][]bpf.RawInstruction{}
	rules := cfg.FilterRules()
	for _, src := range cfg.Sources {
		if progs[src.Dir] == nil {
			ins, err := Compile(rules, src.Dir, cfg.snaplen())
			if err != nil {
				return nil, fmt.Errorf("span %s: %w", cfg.Name, err)
			}
			raw, err := bpf.Assemble(ins)
			if err != nil {
				return nil, fmt.Errorf("span %s: filter: %w", cfg.Name, err)
			}
			progs[src.Dir] = raw
		}
	}
	for _, d := range cfg.Dests {
		s.dests = append(s.dests, newSender(s, d))
	}
	for i, src := range cfg.Sources {
		s.srcs = append(s.srcs, &sourceReader{s: s, idx: i, src: src, prog: progs[src.Dir]})
	}
	// The first attempts are made here, so that Status tells at once
	// whether every source and destination exists.
	for _, d := range s.dests {
		d.open()
	}
	for _, r := range s.srcs {
		r.tryOpen()
	}
	for _, d := range s.dests {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); d.run() }()
	}
	for _, r := range s.srcs {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); r.run() }()
	}
	return s, nil
}

// Config returns the session's configuration.
func (s *Session) Config() Config { return s.cfg }

// Close stops the session and waits for its goroutines.
func (s *Session) Close() {
	if s.closed.Swap(true) {
		return
	}
	close(s.stop)
	for _, r := range s.srcs {
		if f := r.live.Load(); f != nil {
			_ = f.SetReadDeadline(time.Now()) // a closed file just says so
		}
	}
	for _, d := range s.dests {
		d.wake()
	}
	s.wg.Wait()
}

// sleep waits d or until the session closes.
func (s *Session) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stop:
	}
}

func (s *Session) changed() {
	if s.env.Changed != nil {
		s.env.Changed()
	}
}

// DestStats are one destination's counters.
type DestStats struct {
	Dest    string
	Sent    uint64 // copies it took
	Dropped uint64 // copies lost: queue full, or the destination refused them
}

// Stats are a session's counters since it started.
type Stats struct {
	Seen      uint64 // packets of the sources in the session's directions
	Selected  uint64 // packets the rules selected (the kernel copied to gvs)
	Dropped   uint64 // selected packets lost before any destination: kernel socket buffer full
	Truncated uint64 // copies cut to snaplen
	Errors    uint64 // frames the kernel could not hand over
	Dests     []DestStats
}

// Status is a session's state for Span.statistics and Span.error.
type Status struct {
	Stats Stats
	Error string // "" when every source and destination works
}

// Status reports counters and problems. It reads the sources' device
// counters, so call it at statistics time, not per packet.
func (s *Session) Status() Status {
	var st Status
	var errs []string
	for _, r := range s.srcs {
		st.Stats.Seen += r.seen()
		st.Stats.Selected += r.selected.Load()
		st.Stats.Dropped += r.kdropped.Load()
		st.Stats.Truncated += r.truncated.Load()
		st.Stats.Errors += r.errors.Load()
		if e := r.err.Load(); e != nil {
			errs = append(errs, *e)
		}
	}
	for _, d := range s.dests {
		st.Stats.Dests = append(st.Stats.Dests, DestStats{Dest: d.dest.Text, Sent: d.sent.Load(),
			Dropped: d.q.dropped.Load() + d.refused.Load()})
		if e := d.err.Load(); e != nil {
			errs = append(errs, *e)
		}
	}
	st.Error = strings.Join(errs, "; ")
	return st
}
