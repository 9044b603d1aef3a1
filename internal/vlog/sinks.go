package vlog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// syslogRetry is how long to wait before dialling /dev/log again after it
// failed, so a host without syslog costs nothing per message.
const syslogRetry = 10 * time.Second

// syslogSink writes datagrams to /dev/log, or to a writer set for it.
type syslogSink struct {
	override io.Writer
	conn     net.Conn
	nextDial time.Time
}

func (s *syslogSink) setWriter(w io.Writer) {
	s.override = w
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

func (s *syslogSink) write(msg []byte, now time.Time) {
	if s.override != nil {
		s.override.Write(append(msg, '\n'))
		return
	}
	if s.conn == nil {
		if now.Before(s.nextDial) {
			return
		}
		conn, err := net.Dial("unixgram", "/dev/log")
		if err != nil {
			s.nextDial = now.Add(syslogRetry)
			return
		}
		s.conn = conn
	}
	if _, err := s.conn.Write(msg); err != nil {
		s.conn.Close()
		s.conn = nil
	}
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
