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
	"gvs/internal/guard"
	"gvs/internal/unixsock"
	"gvs/internal/vlog"
)

const (
	// maxConns bounds simultaneous clients (each may buffer up to
	// MaxRequestSize). A client beyond it makes room by closing the one
	// that has been idle longest, so idle clients can never lock out an
	// operator's ovs-appctl.
	maxConns = 256
	// writeTimeout stops a client that never reads from holding a
	// goroutine forever.
	writeTimeout = 10 * time.Second
	// maxReplying bounds the large replies (over largeReply bytes) being
	// written at once: a conntrack or flow dump can be hundreds of MB,
	// and a client that does not read holds its reply until writeTimeout.
	// A new one drops the client that has been writing longest.
	maxReplying = 8
	largeReply  = 64 << 10
)

// readTimeout is how long a client has to send a whole request after it
// connects or after its last reply; ovs-appctl sends at once, so only an
// idle or stalled client ever reaches it. A variable for tests.
var readTimeout = 30 * time.Second

// Server answers control requests on a unix socket. Handlers run on the
// connection's goroutine, so handlers of different clients may run at the
// same time and must be safe for concurrent use.
type Server struct {
	path     string
	listener *unixsock.Listener
	logs     *vlog.Registry
	cov      *coverage.Registry
	log      *vlog.Module
	received *coverage.Counter
	replied  *coverage.Counter
	evicted  *coverage.Counter
	panics   *coverage.Counter

	stopSampling func()
	wg           sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	version  string
	commands map[string]command
	conns    map[net.Conn]*client
	closed   bool
	writers  map[net.Conn]time.Time // writing a large reply, since when
}

// client is what the server knows about one connection.
type client struct {
	busy bool      // running a request, so not to be evicted
	idle time.Time // since when it has been waiting for a request
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
		conns:    make(map[net.Conn]*client),
		writers:  make(map[net.Conn]time.Time),
	}
	for _, opt := range opts {
		opt(s)
	}
	s.log = s.logs.Module("unixctl")
	s.received = s.cov.New("unixctl_received")
	s.replied = s.cov.New("unixctl_replied")
	s.evicted = s.cov.New("unixctl_evicted")
	s.panics = s.cov.New("unixctl_panic")
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

// listen opens the control socket. It controls the whole switch: its
// owner's group may look, only its owner may connect (as for OVS's sockets
// under the usual umask).
func listen(path string) (*unixsock.Listener, error) {
	ln, err := unixsock.Listen(path, 0o750)
	if err != nil {
		return nil, fmt.Errorf("control %w", err)
	}
	return ln, nil
}

// Serve accepts and answers clients until Close, then returns nil.
func (s *Server) Serve() error {
	for {
		conn, err := s.listener.Accept()
		if err != nil {
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

// track records a live connection so Close can end it, making room for
// it if needed; false once closed.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.conns) >= maxConns {
		s.evictIdlestLocked()
	}
	s.conns[conn] = &client{idle: time.Now()}
	s.wg.Add(1)
	return true
}

// evictIdlestLocked disconnects the client that has waited longest for
// its own next request. Clients running a request are left alone; if
// every client is busy, the server goes over its limit for a while, since
// those clients are doing work that ends.
func (s *Server) evictIdlestLocked() {
	var idlest net.Conn
	var since time.Time
	for conn, c := range s.conns {
		if !c.busy && (idlest == nil || c.idle.Before(since)) {
			idlest, since = conn, c.idle
		}
	}
	if idlest == nil {
		return
	}
	delete(s.conns, idlest) // its goroutine ends as its read fails
	idlest.Close()
	s.evicted.Inc()
	s.log.Dbg("%s: too many clients, dropped one idle for %v", s.path, time.Since(since).Round(time.Millisecond))
}

// setBusy marks conn as running a request (or done with it); false if
// conn was evicted meanwhile.
func (s *Server) setBusy(conn net.Conn, busy bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[conn]
	if ok {
		c.busy = busy
		c.idle = time.Now()
	}
	return ok
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
	conn.Close()
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
	defer guard.Recover(s.log, s.panics, s.path+": client connection")
	frames := newFrameReader(conn, MaxRequestSize)
	for {
		// The whole request must arrive in time, however it is split.
		conn.SetReadDeadline(time.Now().Add(readTimeout))
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
		if !s.setBusy(conn, true) || !s.answer(conn, req) || !s.setBusy(conn, false) {
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
	if len(reply) > largeReply {
		s.startLargeWrite(conn)
		defer s.endLargeWrite(conn)
	}
	conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := conn.Write(reply); err != nil {
		s.log.Dbg("%s: writing reply: %v", s.path, err)
		return false
	}
	s.replied.Inc()
	return true
}

// startLargeWrite counts conn among the clients writing a large reply,
// first dropping the one that has been at it longest if there are
// maxReplying already: its write fails, and its reply is freed.
func (s *Server) startLargeWrite(conn net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.writers) >= maxReplying {
		var oldest net.Conn
		var since time.Time
		for c, t := range s.writers {
			if oldest == nil || t.Before(since) {
				oldest, since = c, t
			}
		}
		delete(s.writers, oldest)
		delete(s.conns, oldest)
		oldest.Close()
		s.evicted.Inc()
		s.log.Dbg("%s: too many large replies being written, dropped a client writing for %v", s.path, time.Since(since).Round(time.Millisecond))
	}
	s.writers[conn] = time.Now()
}

func (s *Server) endLargeWrite(conn net.Conn) {
	s.mu.Lock()
	delete(s.writers, conn)
	s.mu.Unlock()
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

// RemoveStaleControls deletes the control sockets that earlier runs of
// program left in rundir (<program>.<pid>.ctl) and that nobody answers
// on any more: a crashed daemon cannot remove its own. It returns the
// paths removed.
func RemoveStaleControls(rundir, program string) []string {
	paths, _ := filepath.Glob(filepath.Join(rundir, program+".*.ctl"))
	var removed []string
	for _, p := range paths {
		if unixsock.CheckStale(p) == nil && os.Remove(p) == nil {
			removed = append(removed, p)
		}
	}
	return removed
}

// Rundir is $OVS_RUNDIR, or /var/run/openvswitch as for OVS.
func Rundir() string {
	if dir := os.Getenv("OVS_RUNDIR"); dir != "" {
		return dir
	}
	return "/var/run/openvswitch"
}
