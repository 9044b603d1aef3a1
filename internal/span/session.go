package span

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/bpf"

	"gvs/internal/coverage"
	"gvs/internal/guard"
	"gvs/internal/vlog"
)

var spanLog = vlog.New("span")

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

	// The eBPF path (nil tc: every source takes the AF_PACKET path, for
	// the reason in why).
	tc  *tcProg
	tcs []*tcSource
	why string
	// smp reads the packets the programs hand to gvsd (nil when every
	// destination is one the kernel clones to).
	smp *sampler

	closed   atomic.Bool
	panicked atomic.Pointer[string] // a goroutine's recovered panic
	stop     chan struct{}
	wg       sync.WaitGroup
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
		snd := newSender(s, d)
		snd.kernel = cfg.KernelClones(d)
		s.dests = append(s.dests, snd)
	}
	s.choosePath()
	for i, src := range cfg.Sources {
		r := &sourceReader{s: s, idx: i, src: src, prog: progs[src.Dir]}
		if s.tc == nil {
			s.srcs = append(s.srcs, r)
			continue
		}
		s.tcs = append(s.tcs, &tcSource{s: s, idx: i, src: src, reader: r})
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
		s.goGuarded("destination "+d.dest.Text, d.run)
	}
	for _, r := range s.srcs {
		s.goGuarded("source "+r.src.Dev, r.run)
	}
	for _, a := range s.tcs {
		a.tryAttach()
		s.goGuarded("source "+a.src.Dev, a.run)
	}
	if s.smp != nil {
		s.goGuarded("samples", s.smp.run)
	}
	return s, nil
}

// spanPanics counts panics recovered in span sessions' goroutines.
var spanPanics = coverage.New("span_panic")

// goGuarded runs fn on a goroutine of the session. A panic in it (a bug
// met by some packet) is logged, counted and shown in Status, and stops
// only that goroutine, its source or destination, not gvsd.
func (s *Session) goGuarded(what string, fn func()) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := guard.Call(spanLog, spanPanics, "span "+s.cfg.Name+": "+what, fn); err != nil {
			msg := err.Error() + " (stopped until the session restarts)"
			s.panicked.Store(&msg)
			s.changed()
		}
	}()
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
	for _, a := range s.tcs {
		if a.fellBack() {
			if f := a.reader.live.Load(); f != nil {
				_ = f.SetReadDeadline(time.Now())
			}
		}
	}
	for _, d := range s.dests {
		d.wake()
	}
	if s.smp != nil {
		s.smp.close()
	}
	s.waitGoroutines()
	if s.tc != nil {
		s.tc.close()
	}
}

// closeWait bounds how long Close waits for the session's goroutines. A
// sender blocked writing to a FIFO whose reader stopped reading (a pcap
// port's writes block) ends only once the reader reads or leaves, and
// Close must not wait for that: the reconciler calls it with the switch's
// lock held.
const closeWait = 5 * time.Second

// waitGoroutines waits for the goroutines, at most closeWait; one still
// running then touches only its own destination and queue, which is
// closed under it (interrupt) so that it ends too.
func (s *Session) waitGoroutines() {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		spanLog.Warn("span %s: closed with a destination's write still stuck (a FIFO nobody reads?): closing the destination under it", s.cfg.Name)
		// Without waiting more: the sender, and the file it holds
		// open, end once the write does, not when the reader wakes.
		for _, d := range s.dests {
			go d.interrupt()
		}
	}
}

// choosePath loads the eBPF programs (and opens the rings of their
// samples if some destination is written by gvsd), or says why not.
func (s *Session) choosePath() {
	tc, err := loadTCProg(&s.cfg)
	if err == nil && s.cfg.ToUserSpace() {
		if s.smp, err = newSampler(s, tc); err != nil {
			tc.close()
		}
	}
	if err != nil {
		s.why = err.Error()
		spanLog.Warn("span %s: eBPF at tc not available, using AF_PACKET sockets: %s", s.cfg.Name, s.why)
		return
	}
	s.tc = tc
	s.tc.setDests(&s.cfg)
}

// sourceOf is the index of the source attached as device ifindex, or -1.
func (s *Session) sourceOf(ifindex uint32) int {
	for _, a := range s.tcs {
		if uint32(a.live.Load()) == ifindex {
			return a.idx
		}
	}
	return -1
}

// fanOut hands a copy of frame to each destination's queue (to the
// destinations gvsd writes only, if userOnly: the kernel cloned it to
// the others), or counts it lost there if the queue is full.
func (s *Session) fanOut(frame []byte, orig int, vnet *[vnetHdrLen]byte, ts int64, src int, out, userOnly bool) {
	cut := orig > len(frame)
	for _, d := range s.dests {
		if userOnly && d.kernel {
			continue
		}
		it := d.q.get()
		if it == nil {
			continue
		}
		if !it.fill(d.q, frame) {
			d.q.put(it)
			continue
		}
		it.vnet, it.orig, it.ts, it.src, it.outgoing = *vnet, orig, ts, src, out
		if cut {
			it.vnet = [vnetHdrLen]byte{} // a cut super-frame is no longer one
		}
		d.q.full <- it
	}
}

// Path tells, for each source, which path its packets take and why not
// the eBPF one ("" when it does).
func (s *Session) Path() []SourcePath {
	var ps []SourcePath
	for _, r := range s.srcs {
		ps = append(ps, SourcePath{Dev: r.src.Dev, Path: PathAFPacket, Why: s.why})
	}
	for _, a := range s.tcs {
		p := SourcePath{Dev: a.src.Dev, Path: PathEBPF}
		if w := a.fallback.Load(); w != nil {
			p.Path, p.Why = PathAFPacket, *w
		}
		ps = append(ps, p)
	}
	return ps
}

// SourcePath is the path one source's packets take.
type SourcePath struct {
	Dev  string
	Path string // PathEBPF or PathAFPacket
	Why  string // why not PathEBPF
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
	Dropped   uint64 // selected packets lost before any destination: kernel socket buffer or perf ring full
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
	readers := s.srcs
	for _, a := range s.tcs {
		if a.fellBack() {
			readers = append(readers, a.reader)
		} else if e := a.err.Load(); e != nil {
			errs = append(errs, *e)
		}
	}
	for _, r := range readers {
		st.Stats.Seen += r.seen()
		st.Stats.Selected += r.selected.Load()
		st.Stats.Dropped += r.kdropped.Load()
		st.Stats.Truncated += r.truncated.Load()
		st.Stats.Errors += r.errors.Load()
		if e := r.err.Load(); e != nil {
			errs = append(errs, *e)
		}
	}
	var k [statsWords]uint64
	if s.tc != nil {
		k = s.tc.counters()
		st.Stats.Seen += k[ctrSeen]
		st.Stats.Selected += k[ctrSelected]
		st.Stats.Dropped += k[ctrSampleErr]
	}
	if s.smp != nil {
		st.Stats.Dropped += s.smp.lost.Load()
		st.Stats.Truncated += s.smp.truncated.Load()
		st.Stats.Errors += s.smp.errors.Load()
	}
	for i, d := range s.dests {
		st.Stats.Dests = append(st.Stats.Dests, DestStats{Dest: d.dest.Text, Sent: d.sent.Load() + k[ctrSent(i)],
			Dropped: d.q.dropped.Load() + d.refused.Load() + k[ctrDropped(i)]})
		if e := d.err.Load(); e != nil {
			errs = append(errs, *e)
		}
	}
	if e := s.panicked.Load(); e != nil {
		errs = append(errs, *e)
	}
	st.Error = strings.Join(errs, "; ")
	return st
}
