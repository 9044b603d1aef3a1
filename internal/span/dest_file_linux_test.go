package span

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/netdev"
)

// A json: destination that is a FIFO whose reader stopped reading (a
// suspended `... | less`) must not hold its sender in a write for good:
// Session.Close waits for the sender, and the reconciler waits for
// Session.Close with the switch's lock held. The stalled copies are
// counted lost instead, and the session closes.
func TestSpanJSONStalledFIFOReader(t *testing.T) {
	dir, err := netdev.PrepareCaptureDir(filepath.Join(t.TempDir(), "capture"))
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "x.json")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The reader that never reads.
	rd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rd)

	s, snd := openFileSession(t, dir, "json:x.json")
	s.wg.Add(1)
	go func() { defer s.wg.Done(); snd.run() }()

	// Far more records than a pipe holds (64 KiB, about 250 records).
	var vnet [vnetHdrLen]byte
	frame := ipFrame4UDP(9)
	for range 4 {
		for range queueLen {
			s.fanOut(frame, len(frame), &vnet, time.Now().UnixNano(), 0, false, false)
		}
		time.Sleep(50 * time.Millisecond)
	}

	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Session.Close still waits for a sender stuck writing to a FIFO nobody reads")
	}
	st := s.Status().Stats.Dests[0]
	if st.Dropped == 0 {
		t.Errorf("no copy counted lost: %+v", st)
	}
}

// A json: FIFO whose reader left is opened again for the next reader,
// as a pcap: FIFO is: the records after the failed batch reach it.
func TestSpanJSONFIFONextReader(t *testing.T) {
	dir, err := netdev.PrepareCaptureDir(filepath.Join(t.TempDir(), "capture"))
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "x.json")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, snd := openFileSession(t, dir, "json:x.json")
	s.wg.Add(1)
	go func() { defer s.wg.Done(); snd.run() }()
	defer s.Close()
	unix.Close(first) // the first reader leaves
	var vnet [vnetHdrLen]byte
	frame := ipFrame4UDP(9)
	for deadline := time.Now().Add(5 * time.Second); s.Status().Stats.Dests[0].Dropped == 0; {
		if time.Now().After(deadline) {
			t.Fatal("a record to a FIFO with no reader was not counted lost")
		}
		s.fanOut(frame, len(frame), &vnet, time.Now().UnixNano(), 0, false, false)
		time.Sleep(20 * time.Millisecond)
	}

	second, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(second)
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		s.fanOut(frame, len(frame), &vnet, time.Now().UnixNano(), 0, false, false)
		time.Sleep(100 * time.Millisecond)
		if n, _ := unix.Read(second, buf); n > 0 {
			return
		}
	}
	t.Fatalf("the second reader got no record; destination status %+v, error %v", s.Status().Stats.Dests, s.Status().Error)
}

// A pcap: destination that is a FIFO whose reader stopped reading (a
// suspended `gvs capture | tcpdump -r -`) must not hold Session.Close
// for good either: the pcap port's write blocks, so Close stops waiting
// for that sender.
func TestSpanPcapStalledFIFOReader(t *testing.T) {
	dir, err := netdev.PrepareCaptureDir(filepath.Join(t.TempDir(), "capture"))
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "x.pcapng")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	rd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Closed last: the reader stays stalled until the sender has ended.
	defer unix.Close(rd)

	s, snd := openFileSession(t, dir, "pcap:x.pcapng")
	s.wg.Add(1)
	go func() { defer s.wg.Done(); snd.run() }()
	var vnet [vnetHdrLen]byte
	frame := append(ipFrame4UDP(9), make([]byte, 1400)...)
	for range 4 {
		for range queueLen {
			s.fanOut(frame, len(frame), &vnet, time.Now().UnixNano(), 0, false, false)
		}
		time.Sleep(50 * time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatal("Session.Close still waits for a sender stuck writing to a FIFO nobody reads")
	}
	// The sender, and the FIFO it holds open, must not outlive the
	// session for as long as the reader stays stalled.
	ended := make(chan struct{})
	go func() { s.wg.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the sender stuck on the stalled FIFO outlived Session.Close, with the file open")
	}
}

// panicOut is a destination whose write panics, as a bug met by some
// copy would.
type panicOut struct{ closed *atomic.Bool }

func (panicOut) write([]*item) (int, error) { panic("destination bug") }
func (o panicOut) close()                   { o.closed.Store(true) }

// A panic in a session's goroutine stops that goroutine only: gvsd goes
// on, the session says so in its status, and closes.
func TestSpanPanicStopsOnlyItsGoroutine(t *testing.T) {
	src, _ := ParseSource("src0")
	d, _ := ParseDest("dev:dst0")
	s := &Session{cfg: Config{Name: "t", Sources: []Source{src}, Dests: []Dest{d}}, stop: make(chan struct{})}
	snd := newSender(s, d)
	var closed atomic.Bool
	snd.out = panicOut{&closed}
	s.dests = append(s.dests, snd)
	s.goGuarded("destination "+d.Text, snd.run)
	var vnet [vnetHdrLen]byte
	frame := ipFrame4UDP(9)
	s.fanOut(frame, len(frame), &vnet, 0, 0, false, false)
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(s.Status().Error, "destination bug"); {
		if time.Now().After(deadline) {
			t.Fatalf("status %q does not tell of the panic", s.Status().Error)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !closed.Load() {
		t.Error("the destination was not closed when its sender stopped")
	}
	s.Close()
}

// tornWriter writes the first keep bytes of its first write to f and
// fails it as a full disk does (a short write, then ENOSPC); later
// writes go to f whole.
type tornWriter struct {
	f      io.Writer
	keep   int
	failed bool
}

func (w *tornWriter) Write(p []byte) (int, error) {
	if w.failed {
		return w.f.Write(p)
	}
	w.failed = true
	n, _ := w.f.Write(p[:min(w.keep, len(p))])
	return n, unix.ENOSPC
}

// A write to a regular json: file that fails part-way (a disk that
// fills) loses its batch, counted and said in Span.error, but leaves no
// part of a record behind: the records written after it are whole lines
// that a reader can parse, with nothing glued before them.
func TestSpanJSONFileFailedWriteLeavesWholeLines(t *testing.T) {
	dir, err := netdev.PrepareCaptureDir(filepath.Join(t.TempDir(), "capture"))
	if err != nil {
		t.Fatal(err)
	}
	s, snd := openFileSession(t, dir, "json:x.json")
	o := snd.out.(*jsonOut)
	defer o.close()
	frame := ipFrame4UDP(9)
	batch := func(n int) []*item {
		var b []*item
		for range n {
			it := snd.q.get()
			if !it.fill(snd.q, frame) {
				t.Fatal("no queue item")
			}
			it.orig, it.ts = len(frame), time.Now().UnixNano()
			b = append(b, it)
		}
		return b
	}

	snd.deliver(batch(3)) // whole records before the failure
	o.w = &tornWriter{f: o.f, keep: 150}
	snd.deliver(batch(5))
	st := s.Status()
	if st.Stats.Dests[0].Dropped != 5 || !strings.Contains(st.Error, "writing to the file failed") {
		t.Fatalf("the failed batch: dropped %d (want 5), Span.error %q", st.Stats.Dests[0].Dropped, st.Error)
	}
	snd.deliver(batch(4))
	if st := s.Status(); st.Error != "" || st.Stats.Dests[0].Sent != 7 {
		t.Fatalf("after the disk has room again: sent %d (want 7), Span.error %q", st.Stats.Dests[0].Sent, st.Error)
	}

	data, err := os.ReadFile(filepath.Join(dir, "x.json"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(data), "\n")
	if last := lines[len(lines)-1]; last != "" {
		t.Errorf("the file ends inside a record: %q", last)
	}
	lines = lines[:len(lines)-1]
	for i, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("line %d is not a whole record (%v): %q", i+1, err, l)
		}
	}
	if len(lines) != 7 {
		t.Errorf("%d lines, want the 3 records before the failure and the 4 after it", len(lines))
	}
}

// openFileSession returns a session of one source and one destination
// dest in the capture directory dir (a json: one writes metadata), its
// sender open but not running.
func openFileSession(t *testing.T, dir, dest string) (*Session, *sender) {
	t.Helper()
	src, _ := ParseSource("src0")
	d, err := ParseDest(dest)
	if err != nil {
		t.Fatal(err)
	}
	s := &Session{cfg: Config{Name: "t", Sources: []Source{src}, Dests: []Dest{d}, Metadata: d.Kind == DestJSON},
		env: Env{CaptureDir: dir}, stop: make(chan struct{})}
	snd := newSender(s, d)
	s.dests = append(s.dests, snd)
	snd.open()
	if snd.out == nil {
		t.Fatalf("destination %s did not open: %v", dest, s.Status().Error)
	}
	return s, snd
}
