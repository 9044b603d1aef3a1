// Package unixctl is gvsd's runtime control socket: the JSON-RPC server
// that ovs-appctl (and gvs) talk to, the registry of commands subsystems
// add to it, and the fcntl-locked pidfile through which ovs-appctl finds it.
package unixctl

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/vlog"
)

const (
	// maxConns bounds simultaneous clients (each may buffer up to
	// MaxRequestSize); more wait in the kernel's accept queue.
	maxConns = 256
	// writeTimeout stops a client that never reads from holding a
	// goroutine forever.
	writeTimeout = 10 * time.Second
	// maxSocketPath is the room in sockaddr_un.sun_path.
	maxSocketPath = 107
)

// Server answers control requests on a unix socket. Handlers run on the
// connection's goroutine, so handlers of different clients may run at the
// same time and must be safe for concurrent use.
type Server struct {
	path     string
	listener *net.UnixListener
	logs     *vlog.Registry
	cov      *coverage.Registry
	log      *vlog.Module
	received *coverage.Counter
	replied  *coverage.Counter

	stopSampling func()
	slots        chan struct{}
	wg           sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	version  string
	commands map[string]command
	conns    map[net.Conn]struct{}
	closed   bool
}

// Option adjusts a Server made by NewServer.
type Option func(*Server)

// WithVersion sets what the version command prints.
func WithVersion(text string) Option { return func(s *Server) { s.version = text } }

// WithLogs makes vlog/* act on logs instead of vlog.Default.
func WithLogs(logs *vlog.Registry) Option { return func(s *Server) { s.logs = logs } }

// WithCoverage makes coverage/* show cov instead of coverage.Default.
func WithCoverage(cov *coverage.Registry) Option { return func(s *Server) { s.cov = cov } }

// NewServer listens on the unix socket at path, replacing a stale socket
// file left by a dead process, and registers the built-in commands
// (list-commands, version, vlog/*, coverage/*). Call Serve to answer.
func NewServer(path string, opts ...Option) (*Server, error) {
	s := &Server{
		path:     path,
		logs:     vlog.Default,
		cov:      coverage.Default,
		version:  VersionText("ovs-vswitchd", "devel"),
		commands: make(map[string]command),
		conns:    make(map[net.Conn]struct{}),
		slots:    make(chan struct{}, maxConns),
	}
	for _, opt := range opts {
		opt(s)
	}
	s.log = s.logs.Module("unixctl")
	s.received = s.cov.New("unixctl_received")
	s.replied = s.cov.New("unixctl_replied")
	ln, err := listen(path)
	if err != nil {
		return nil, err
	}
	s.listener = ln
	s.stopSampling = s.cov.StartSampling()
	s.registerBuiltins()
	return s, nil
}

// Path is the socket's file name.
func (s *Server) Path() string { return s.path }

// SetVersion changes what the version command prints.
func (s *Server) SetVersion(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = text
}

func listen(path string) (*net.UnixListener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("control socket %q: path longer than %d bytes", path, maxSocketPath)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %q: %w", path, err)
	}
	// The socket controls the whole switch: its owner's group may use it,
	// nobody else (the same as OVS's sockets).
	if err := os.Chmod(path, 0o750); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %q: %w", path, err)
	}
	return ln, nil
}

// removeStaleSocket deletes a socket file nobody answers on. A live socket
// or a file that is not a socket is left alone and reported.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("control socket %q: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("control socket %q: file exists and is not a socket", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("control socket %q: another process is listening on it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %q: probing old socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("control socket %q: removing stale socket: %w", path, err)
	}
	return nil
}

// Serve accepts and answers clients until Close, then returns nil.
func (s *Server) Serve() error {
	for {
		s.slots <- struct{}{}
		conn, err := s.listener.Accept()
		if err != nil {
			<-s.slots
			if s.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("control socket %q: %w", s.path, err)
			}
			s.log.Warn("%s: accept failed: %v", s.path, err)
			time.Sleep(100 * time.Millisecond) // e.g. out of descriptors: let some close
			continue
		}
		if !s.track(conn) {
			<-s.slots
			conn.Close()
			return nil
		}
		go s.serveConn(conn)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records a live connection so Close can end it; false once closed.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	conn.Close()
	<-s.slots
	s.wg.Done()
}

// Close stops accepting, disconnects every client, waits for running
// handlers to return and removes the socket file. It is safe to call more
// than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.listener.Close() // also unlinks the socket file
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.stopSampling()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("control socket %q: %w", s.path, err)
	}
	return nil
}

// serveConn answers one client's requests in order until it hangs up or
// sends something that is not a request.
func (s *Server) serveConn(conn net.Conn) {
	defer s.untrack(conn)
	frames := newFrameReader(conn, MaxRequestSize)
	for {
		frame, err := frames.next()
		if err != nil {
			s.dropConn(conn, err)
			return
		}
		req, err := decodeRequest(frame)
		var reqErr *requestError
		switch {
		case errors.As(err, &reqErr):
			s.received.Inc()
			if !s.send(conn, encodeReply(reqErr.id, "", reqErr.msg, true)) {
				return
			}
			continue
		case err != nil:
			s.dropConn(conn, err)
			return
		}
		s.received.Inc()
		if !s.answer(conn, req) {
			return
		}
	}
}

// dropConn ends a connection whose stream cannot go on, telling the client
// why when it sent something malformed rather than just leaving.
func (s *Server) dropConn(conn net.Conn, err error) {
	if isDisconnect(err) {
		return
	}
	s.log.Dbg("%s: dropping client: %v", s.path, err)
	s.send(conn, encodeReply(nil, "", err.Error(), true))
}

func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, os.ErrDeadlineExceeded)
}

func (s *Server) send(conn net.Conn, reply []byte) bool {
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(reply); err != nil {
		s.log.Dbg("%s: writing reply: %v", s.path, err)
		return false
	}
	s.replied.Inc()
	return true
}

// VersionText is what gvsd's version command prints: OVS's layout with the
// OVS release whose interfaces gvs reproduces, then gvs's own version.
// Tools parse "(Open vSwitch) X.Y.Z" from this line to decide which
// features they may use; naming 3.1.0 there tells them the truth about
// what they are talking to, and the suffix tells people it is gvs.
func VersionText(program, gvsVersion string) string {
	return fmt.Sprintf("%s (Open vSwitch) %s (gvs %s)", program, CompatibleOVSVersion, gvsVersion)
}

// CompatibleOVSVersion is the Open vSwitch release whose control interfaces
// gvs reproduces.
const CompatibleOVSVersion = "3.1.0"

// ControlPath is where a daemon called program with this process's pid
// listens in rundir: "<rundir>/<program>.<pid>.ctl", where ovs-appctl
// looks after reading "<rundir>/<program>.pid".
func ControlPath(rundir, program string) string {
	return filepath.Join(rundir, fmt.Sprintf("%s.%d.ctl", program, os.Getpid()))
}

// Rundir is $OVS_RUNDIR, or /var/run/openvswitch as for OVS.
func Rundir() string {
	if dir := os.Getenv("OVS_RUNDIR"); dir != "" {
		return dir
	}
	return "/var/run/openvswitch"
}
