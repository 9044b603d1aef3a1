package vlog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// syslogRetry is how long to wait before dialling /dev/log again after it
// failed, so a host without syslog costs nothing per message.
const syslogRetry = 10 * time.Second

// devLog is where syslog messages go unless SetSyslog says otherwise.
const devLog = "/dev/log"

// syslogSink is where syslog messages go. /dev/log (or any socket or
// file given to SetSyslog) is written through a queuedWriter in datagram
// mode, as the console and the log file: a syslog daemon that stops
// reading fills the socket's queue, after which each send blocks, and it
// was made under the registry's lock, so every goroutine that logged
// waited. Now such a daemon costs messages, counted in the next one
// delivered. Another writer (a test's buffer) is written at once.
type syslogSink struct {
	w      io.Writer     // each Write is one message
	q      *queuedWriter // w when it is queued, for Flush and close
	closer io.Closer     // what to close when the sink is replaced (its own)
	// newline ends each message given to SetSyslog's writer (a stream
	// needs it between messages), not those to /dev/log.
	newline bool
}

// write sends one message, msg, whose spare capacity it may use.
func (s *syslogSink) write(msg []byte) {
	if s.newline {
		msg = append(msg, '\n')
	}
	s.w.Write(msg)
}

// close writes what is still queued (waiting at most closeWait), then
// closes the destination, which ends a send blocked on it.
func (s syslogSink) close() {
	if s.q != nil {
		s.q.close(closeWait, s.closer)
	}
}

// newSyslogSink returns the sink for w (nil: /dev/log); notice formats
// the message that counts dropped ones.
func newSyslogSink(w io.Writer, notice func(int) []byte) syslogSink {
	switch w.(type) {
	case nil:
		d := &syslogDialer{path: devLog}
		q := newDatagramWriter(d, notice)
		return syslogSink{w: q, q: q, closer: d}
	case *os.File, net.Conn:
		// The caller's to close: a send blocked on it ends then.
		q := newDatagramWriter(w, func(n int) []byte { return append(notice(n), '\n') })
		return syslogSink{w: q, q: q, newline: true}
	}
	return syslogSink{w: w, newline: true}
}

// syslogDialer sends each Write as one datagram to the unix socket at
// path (/dev/log), dialled at the first message, after an error, and
// after syslogRetry if dialling failed. Writes come from the syslog
// queue's goroutine; Close (from another) ends a send blocked on a
// daemon that does not read.
type syslogDialer struct {
	path     string
	mu       sync.Mutex
	conn     net.Conn
	nextDial time.Time
	closed   bool
}

func (s *syslogDialer) Write(msg []byte) (int, error) {
	s.mu.Lock()
	conn := s.conn
	if conn == nil && !s.closed {
		now := time.Now()
		if now.Before(s.nextDial) {
			s.mu.Unlock()
			return len(msg), nil
		}
		var err error
		if conn, err = net.Dial("unixgram", s.path); err != nil {
			s.nextDial = now.Add(syslogRetry)
		}
		s.conn = conn
	}
	s.mu.Unlock()
	if conn == nil {
		return len(msg), nil
	}
	if _, err := conn.Write(msg); err != nil {
		s.mu.Lock()
		if s.conn == conn {
			s.conn = nil
		}
		s.mu.Unlock()
		conn.Close()
	}
	return len(msg), nil
}

func (s *syslogDialer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.conn != nil {
		return s.conn.Close()
	}
	return nil
}

// fileSink is the log file named by OpenFile, if any. Its lines are
// written through a queuedWriter, as the console's: a named pipe whose
// reader stops (or any file whose writes stall) costs lines, never the
// goroutines that log.
type fileSink struct {
	path string
	f    *os.File
	q    *queuedWriter
}

func (s *fileSink) isOpen() bool { return s.f != nil }

func (s *fileSink) write(line []byte) {
	s.q.Write(line)
}

// open starts writing to the file at path; it returns what was open
// before, for closeOld once the registry's lock is released.
func (s *fileSink) open(path string) (old fileSink, err error) {
	f, err := openLogFile(path)
	if err != nil {
		return fileSink{}, fmt.Errorf("log file %q: %w", path, err)
	}
	old = s.take()
	s.path, s.f, s.q = path, f, newQueuedWriter(f, "log file")
	return old, nil
}

// take stops writing to the file and returns it, for closeOld.
func (s *fileSink) take() fileSink {
	old := *s
	s.f, s.q = nil, nil
	return old
}

// closeOld writes what is still queued for a file taken from the sink
// (waiting at most closeWait, outside the registry's lock, so that
// logging goes on meanwhile), then closes it.
func (s fileSink) closeOld() {
	if s.f != nil {
		s.q.close(closeWait, s.f)
	}
}

// OpenFile starts logging to the file at path (appending), the file
// destination's only target. It replaces any file already open, once
// what was queued for that one is written.
func (r *Registry) OpenFile(path string) error {
	r.mu.Lock()
	old, err := r.file.open(path)
	if err == nil {
		r.refreshAllLocked()
	}
	r.mu.Unlock()
	old.closeOld()
	return err
}

// ErrNoLogFile is ReopenFile's error when no log file was ever opened.
var ErrNoLogFile = errors.New("logging to file not configured")

// ReopenFile closes and reopens the log file, so that logging continues in
// a new file after rotation. It fails when no file was ever opened. The
// lines logged before it go to the old file (within closeWait), those
// after to the new one.
func (r *Registry) ReopenFile() error {
	r.mu.Lock()
	if r.file.path == "" {
		r.mu.Unlock()
		return ErrNoLogFile
	}
	// The old file stays open (and logged to) if the new one is refused.
	old, err := r.file.open(r.file.path)
	r.refreshAllLocked()
	r.mu.Unlock()
	old.closeOld()
	return err
}

// CloseFile stops logging to the file until ReopenFile or OpenFile; the
// lines queued for it are written first (within closeWait).
func (r *Registry) CloseFile() {
	r.mu.Lock()
	old := r.file.take()
	r.refreshAllLocked()
	r.mu.Unlock()
	old.closeOld()
}
