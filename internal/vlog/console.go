package vlog

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// maxConsoleQueued bounds the console lines waiting for a console that
// does not take them.
const maxConsoleQueued = 1 << 20

// consoleWriter writes console lines to a file (stderr) from a goroutine
// of its own. A write to a pipe or terminal whose reader is stopped
// (a paused terminal, `gvsd 2>&1 | less` stopped, a pipe nobody reads)
// blocks, and it was made under the registry's lock: every goroutine
// that logged then waited, and the switch hung. Now such a console costs
// lines: past maxConsoleQueued bytes waiting they are dropped, and the
// next line written says how many.
type consoleWriter struct {
	w       io.Writer
	mu      sync.Mutex
	queued  []byte
	spare   []byte
	busy    bool // the goroutine is writing
	dropped int
	wake    chan struct{}
	started bool
}

func newConsoleWriter(w io.Writer) *consoleWriter {
	return &consoleWriter{w: w, wake: make(chan struct{}, 1)}
}

// Write queues p; it never blocks on the console.
func (c *consoleWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	if len(c.queued)+len(p) > maxConsoleQueued {
		c.dropped++
	} else {
		c.queued = append(c.queued, p...)
	}
	if !c.started {
		c.started = true
		go c.run()
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *consoleWriter) run() {
	for range c.wake {
		for {
			c.mu.Lock()
			if len(c.queued) == 0 && c.dropped == 0 {
				c.busy = false
				c.mu.Unlock()
				break
			}
			out := c.queued
			c.queued, c.spare = c.spare[:0], nil
			dropped := c.dropped
			c.dropped = 0
			c.busy = true
			c.mu.Unlock()
			if dropped > 0 {
				fmt.Fprintf(c.w, "vlog: %d console lines dropped: the console was not read\n", dropped)
			}
			c.w.Write(out) // a log line that cannot be written has nowhere to go
			c.mu.Lock()
			if cap(out) <= maxConsoleQueued {
				c.spare = out[:0]
			}
			c.mu.Unlock()
		}
	}
}

// flush waits up to d for the queued lines to be written.
func (c *consoleWriter) flush(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		done := len(c.queued) == 0 && c.dropped == 0 && !c.busy
		c.mu.Unlock()
		if done {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// console returns what the registry writes console lines to for w: a
// file (stderr, a terminal, a pipe) through a consoleWriter, anything
// else (a test's buffer) as it is.
func console(w io.Writer) io.Writer {
	if f, ok := w.(*os.File); ok {
		return newConsoleWriter(f)
	}
	return w
}

// FlushConsole waits up to d for the console lines still queued to be
// written, before the program exits.
func (r *Registry) FlushConsole(d time.Duration) {
	r.mu.Lock()
	c, _ := r.console.(*consoleWriter)
	r.mu.Unlock()
	if c != nil {
		c.flush(d)
	}
}
