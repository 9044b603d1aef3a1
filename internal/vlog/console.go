package vlog

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxQueued bounds the lines waiting for a console or log file that
// does not take them.
const maxQueued = 1 << 20

// closeWait bounds how long closing a log file (vlog/reopen, vlog/close,
// SIGHUP) waits for the lines still queued for it to be written.
const closeWait = time.Second

// queuedWriter writes log lines to a file (stderr, the log file) from a
// goroutine of its own. A write to a pipe or terminal whose reader is
// stopped (a paused terminal, `gvsd 2>&1 | less` stopped, a named pipe
// given as --log-file that nobody reads any more) blocks, and it was
// made under the registry's lock: every goroutine that logged then
// waited, and the switch hung. Now such a destination costs lines: past
// maxQueued bytes waiting they are dropped, and the next line written
// says how many. Lines are written in the order they were queued.
//
// A datagram writer (syslog) keeps each Write a message of its own: the
// goroutine writes them one by one, and the count of dropped messages is
// a message of its own too, made by notice.
type queuedWriter struct {
	w         io.Writer
	notice    func(dropped int) []byte
	mu        sync.Mutex
	queued    []byte
	spare     []byte
	datagrams bool
	ends      []int // datagrams only: where each message in queued ends
	spareE    []int
	busy      bool // the goroutine is writing
	dropped   int
	dropAt    int // where in queued the first of the dropped lines was
	wake      chan struct{}
	started   bool
	closed    bool
}

func newQueuedWriter(w io.Writer, what string) *queuedWriter {
	q := &queuedWriter{w: w, wake: make(chan struct{}, 1)}
	q.notice = func(dropped int) []byte {
		return fmt.Appendf(nil, "vlog: %d %s lines dropped: the %s was not read\n", dropped, what, what)
	}
	return q
}

// newDatagramWriter is a queuedWriter whose Writes are messages, each
// written to w by a Write of its own; notice says how many were dropped.
// notice is called by the writer's goroutine, with none of its locks
// held.
func newDatagramWriter(w io.Writer, notice func(dropped int) []byte) *queuedWriter {
	return &queuedWriter{w: w, notice: notice, datagrams: true, wake: make(chan struct{}, 1)}
}

// Write queues p; it never blocks on the destination.
func (c *queuedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return len(p), nil
	}
	if len(c.queued)+len(p) > maxQueued {
		if c.dropped == 0 {
			c.dropAt = len(c.queued)
		}
		c.dropped++
	} else {
		c.queued = append(c.queued, p...)
		if c.datagrams {
			c.ends = append(c.ends, len(c.queued))
		}
	}
	if !c.started {
		c.started = true
		go c.run()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *queuedWriter) run() {
	for range c.wake {
		for {
			c.mu.Lock()
			if c.closed || len(c.queued) == 0 && c.dropped == 0 {
				c.busy = false
				c.mu.Unlock()
				break
			}
			out, ends := c.queued, c.ends
			c.queued, c.spare = c.spare[:0], nil
			c.ends, c.spareE = c.spareE[:0], nil
			dropped, dropAt := c.dropped, c.dropAt
			c.dropped = 0
			c.busy = true
			c.mu.Unlock()
			c.write(out, ends, dropped, dropAt)
			c.mu.Lock()
			if cap(out) <= maxQueued {
				c.spare = out[:0]
				c.spareE = ends[:0]
			}
			c.mu.Unlock()
		}
	}
}

// write writes a batch taken from the queue, with the count of the
// lines dropped (if any) where the first of them would have been. A log
// line that cannot be written has nowhere to go: errors are ignored.
func (c *queuedWriter) write(out []byte, ends []int, dropped, dropAt int) {
	if dropped > 0 && dropAt == 0 {
		c.w.Write(c.notice(dropped))
	}
	if !c.datagrams {
		if dropped > 0 && dropAt > 0 {
			c.w.Write(out[:dropAt])
			c.w.Write(c.notice(dropped))
			out = out[dropAt:]
		}
		c.w.Write(out)
		return
	}
	start := 0
	for _, end := range ends {
		if dropped > 0 && dropAt > 0 && start == dropAt {
			c.w.Write(c.notice(dropped))
		}
		c.w.Write(out[start:end])
		start = end
	}
	if dropped > 0 && dropAt > 0 && start == dropAt {
		c.w.Write(c.notice(dropped))
	}
}

// flush waits until deadline for the queued lines to be written.
func (c *queuedWriter) flush(deadline time.Time) {
	for {
		c.mu.Lock()
		done := len(c.queued) == 0 && c.dropped == 0 && !c.busy
		c.mu.Unlock()
		if done || !time.Now().Before(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// close writes what is queued, waiting at most d, then closes the file
// (which ends a write blocked on a named pipe) and ends the goroutine;
// what could not be written by then is lost.
func (c *queuedWriter) close(d time.Duration, f io.Closer) {
	c.flush(time.Now().Add(d))
	c.mu.Lock()
	c.closed = true
	if c.started {
		close(c.wake)
	}
	c.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// console returns what the registry writes console lines to for w: a
// file (stderr, a terminal, a pipe) through a queuedWriter, anything
// else (a test's buffer) as it is.
func console(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok {
		return newQueuedWriter(f, "console")
	}
	return w
}

// Flush waits up to d for the console, log file and syslog lines still queued
// to be written, before the program exits.
func (r *Registry) Flush(d time.Duration) {
	deadline := time.Now().Add(d)
	r.mu.Lock()
	c, _ := r.console.(*queuedWriter)
	f := r.file.q
	s := r.syslog.q
	r.mu.Unlock()
	for _, q := range []*queuedWriter{c, f, s} {
		if q != nil {
			q.flush(deadline)
		}
	}
}
