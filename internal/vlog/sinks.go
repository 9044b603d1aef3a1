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

// fileSink is the log file named by OpenFile, if any.
type fileSink struct {
	path string
	f    *os.File
}

func (s *fileSink) isOpen() bool { return s.f != nil }

func (s *fileSink) write(line []byte) {
	s.f.Write(line) // a log line that cannot be written has nowhere to go
}

func (s *fileSink) open(path string) error {
	f, err := openLogFile(path)
	if err != nil {
		return fmt.Errorf("log file %q: %w", path, err)
	}
	s.close()
	s.path, s.f = path, f
	return nil
}

func (s *fileSink) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// OpenFile starts logging to the file at path (appending), the file
// destination's only target. It replaces any file already open.
func (r *Registry) OpenFile(path string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.file.open(path); err != nil {
		return err
	}
	r.refreshAllLocked()
	return nil
}

// ErrNoLogFile is ReopenFile's error when no log file was ever opened.
var ErrNoLogFile = errors.New("logging to file not configured")

// ReopenFile closes and reopens the log file, so that logging continues in
// a new file after rotation. It fails when no file was ever opened.
func (r *Registry) ReopenFile() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.file.path == "" {
		return ErrNoLogFile
	}
	// The old file stays open (and logged to) if the new one is refused.
	err := r.file.open(r.file.path)
	r.refreshAllLocked()
	return err
}

// CloseFile stops logging to the file until ReopenFile or OpenFile.
func (r *Registry) CloseFile() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.file.close()
	r.refreshAllLocked()
}
