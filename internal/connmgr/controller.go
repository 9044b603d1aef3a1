package connmgr

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"gvs/internal/guard"
	"gvs/internal/unixsock"
)

// Controller defaults, as OVS's (ovs-vswitchd.conf.db(5)).
const (
	DefaultMaxBackoff = 8 * time.Second
	DefaultProbe      = 5 * time.Second
	minBackoff        = time.Second
	dialTimeout       = 5 * time.Second
	defaultOFPort     = "6653"
)

// ControllerConfig is one row of the Controller table.
type ControllerConfig struct {
	Target     string        // tcp:IP[:PORT], unix:PATH, ptcp:[PORT][:IP], punix:PATH
	MaxBackoff time.Duration // reconnection backoff cap; 0: DefaultMaxBackoff
	Probe      time.Duration // inactivity_probe; 0 disables
	// UnixDir, when set, is the directory a unix: or punix: target's
	// socket must be in (gvsd's run directory): gvsd runs as root, and a
	// database client must not make it create, replace or remove a
	// socket file anywhere else, nor talk to another service's socket.
	UnixDir string
}

// ControllerStatus is what the Controller table's status columns say.
type ControllerStatus struct {
	Target    string
	Connected bool
	Role      string // "other", "master" or "slave"; "" when not connected
	State     string // VOID, BACKOFF, CONNECTING, ACTIVE, IDLE, LISTENING
	LastError string
	// LastConnected and LastDisconnected are zero until it happens.
	LastConnected, LastDisconnected time.Time
}

// controller keeps one Controller row's connection: an active target
// dials and redials with exponential backoff, a passive one listens.
type controller struct {
	s    *Service
	cfg  ControllerConfig
	stop chan struct{}
	done chan struct{}

	mu    sync.Mutex
	st    ControllerStatus
	conns map[*conn]struct{}
	ln    net.Listener
}

func passive(target string) bool {
	return strings.HasPrefix(target, "ptcp:") || strings.HasPrefix(target, "punix:")
}

// target is the network and address of k's target, a unix socket's
// confined to the run directory as OVS confines it: gvsd runs as root,
// and a Controller row is any database writer's. An active unix: target
// must lie in the run directory (else gvsd would connect to, and speak
// OpenFlow to, any socket on the host), a passive punix: one must be
// named <rundir>/<bridge>.* (else gvsd would create socket files
// anywhere). A relative name is taken in the run directory, and ".." is
// resolved before the check (OVS compares the text only).
func (k *controller) target() (network, addr string, err error) {
	network, addr, err = parseTarget(k.cfg.Target)
	if err != nil || network != "unix" {
		return network, addr, err
	}
	rundir := k.s.rundir
	if !filepath.IsAbs(addr) {
		addr = filepath.Join(rundir, addr)
	}
	addr = filepath.Clean(addr)
	if err := checkUnixDir(k.cfg.Target, addr, k.cfg.UnixDir); err != nil {
		return "", "", err
	}
	if passive(k.cfg.Target) {
		if filepath.Dir(addr) != rundir || !strings.HasPrefix(filepath.Base(addr), k.s.name+".") {
			return "", "", fmt.Errorf("controller %q: gvsd listens for controllers only on sockets in its run directory named after the bridge, %s/%s.* (or connect to unix:%s/%s.mgmt)", k.cfg.Target, rundir, k.s.name, rundir, k.s.name)
		}
	} else if rel, err := filepath.Rel(rundir, addr); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", "", fmt.Errorf("controller %q: gvsd connects only to controller sockets in its run directory %s", k.cfg.Target, rundir)
	}
	return network, addr, nil
}

// parseTarget returns the network and address a target names.
func parseTarget(target string) (network, addr string, err error) {
	kind, rest, _ := strings.Cut(target, ":")
	switch kind {
	case "unix", "punix":
		if rest == "" {
			return "", "", fmt.Errorf("controller %q: no socket path", target)
		}
		return "unix", rest, nil
	case "tcp":
		host, port, ok := strings.Cut(rest, ":")
		if strings.HasPrefix(rest, "[") {
			i := strings.Index(rest, "]")
			if i < 0 {
				return "", "", fmt.Errorf("controller %q: unterminated IPv6 address", target)
			}
			host, port, ok = rest[1:i], strings.TrimPrefix(rest[i+1:], ":"), true
		}
		if !ok || port == "" {
			port = defaultOFPort
		}
		if net.ParseIP(host) == nil {
			return "", "", fmt.Errorf("controller %q: %q is not an IP address", target, host)
		}
		return "tcp", net.JoinHostPort(host, port), checkPort(target, port)
	case "ptcp":
		port, host, _ := strings.Cut(rest, ":")
		if port == "" {
			port = defaultOFPort
		}
		if strings.HasPrefix(host, "[") {
			host = strings.Trim(host, "[]")
		}
		if host != "" && net.ParseIP(host) == nil {
			return "", "", fmt.Errorf("controller %q: %q is not an IP address", target, host)
		}
		return "tcp", net.JoinHostPort(host, port), checkPort(target, port)
	}
	return "", "", fmt.Errorf("controller %q: unsupported connection method %q (tcp, unix, ptcp, punix)", target, kind)
}

// checkUnixDir refuses a unix: or punix: target whose socket is not in
// dir (the path cleaned, so "dir/../x" is outside). An empty dir allows
// any path.
func checkUnixDir(target, path, dir string) error {
	if dir == "" {
		return nil
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	if err != nil || !filepath.IsAbs(path) || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("controller %q: a unix or punix socket must be in gvsd's run directory %s", target, dir)
	}
	return nil
}

func checkPort(target, port string) error {
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("controller %q: bad port %q", target, port)
	}
	return nil
}

func newController(s *Service, cfg ControllerConfig) *controller {
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	k := &controller{s: s, cfg: cfg, stop: make(chan struct{}), done: make(chan struct{}), conns: map[*conn]struct{}{}}
	k.st = ControllerStatus{Target: cfg.Target, State: "VOID"}
	go func() {
		defer close(k.done)
		defer guard.Recover(connLog, connPanics, "bridge "+s.name+": controller "+cfg.Target)
		if passive(cfg.Target) {
			k.listen()
		} else {
			k.connectLoop()
		}
	}()
	return k
}

// close stops the controller and its connections and waits for them.
func (k *controller) close() {
	close(k.stop)
	k.mu.Lock()
	if k.ln != nil {
		k.ln.Close()
	}
	for c := range k.conns {
		c.nc.Close()
	}
	k.mu.Unlock()
	<-k.done
}

func (k *controller) status() ControllerStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.st
	st.Connected = len(k.conns) > 0
	st.Role = ""
	for c := range k.conns {
		st.Role = c.roleName()
		if c.probing.Load() {
			st.State = "IDLE"
		}
	}
	return st
}

func (k *controller) set(f func(st *ControllerStatus)) {
	k.mu.Lock()
	f(&k.st)
	k.mu.Unlock()
	k.s.statusChanged()
}

// connectLoop connects to an active target, serves the connection, and
// reconnects after a failure with exponential backoff (1 s doubling up to
// max_backoff; a connection that lived longer than the backoff starts
// over from 1 s).
func (k *controller) connectLoop() {
	network, addr, err := k.target()
	if err != nil {
		k.set(func(st *ControllerStatus) { st.LastError = err.Error() })
		connLog.Warn("bridge %s: %v", k.s.name, err)
		return
	}
	backoff := time.Duration(0)
	for {
		k.set(func(st *ControllerStatus) { st.State = "CONNECTING" })
		d := net.Dialer{Timeout: dialTimeout}
		nc, err := d.Dial(network, addr)
		if err == nil {
			began := time.Now()
			k.serve(nc)
			if time.Since(began) > backoff {
				backoff = 0
			}
		} else {
			k.set(func(st *ControllerStatus) { st.LastError = describe(err) })
			connLog.Info("bridge %s: controller %s: connecting: %v", k.s.name, k.cfg.Target, err)
		}
		backoff = min(max(backoff*2, minBackoff), k.cfg.MaxBackoff)
		k.set(func(st *ControllerStatus) { st.State = "BACKOFF" })
		select {
		case <-k.stop:
			return
		case <-time.After(backoff):
		}
	}
}

// describe turns a connection error into the words OVS's last_error uses.
func describe(err error) string {
	switch {
	case errors.Is(err, errPeerClosed):
		return "End of file"
	case isClosed(err):
		return "Connection closed"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		s := op.Err.Error()
		if _, after, ok := strings.Cut(s, ": "); ok {
			s = after
		}
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return err.Error()
}

var errPeerClosed = errors.New("peer closed the connection")

// listen accepts connections on a passive target; each is served like
// an active controller's.
func (k *controller) listen() {
	network, addr, err := k.target()
	var ln net.Listener
	if err == nil {
		if network == "unix" {
			ln, err = unixsock.Listen(addr, 0o700)
		} else {
			ln, err = net.Listen(network, addr)
		}
	}
	if err != nil {
		k.set(func(st *ControllerStatus) { st.LastError = err.Error() })
		connLog.Warn("bridge %s: controller %s: %v", k.s.name, k.cfg.Target, err)
		return
	}
	k.mu.Lock()
	k.ln = ln
	stopped := isStopped(k.stop)
	k.mu.Unlock()
	if stopped {
		ln.Close()
		return
	}
	k.set(func(st *ControllerStatus) { st.State = "LISTENING" })
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if isStopped(k.stop) || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(100 * time.Millisecond)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer guard.Recover(connLog, connPanics, "bridge "+k.s.name+": controller "+k.cfg.Target)
			k.serve(nc)
		}()
	}
}

func isStopped(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// serve runs one controller connection until it ends.
func (k *controller) serve(nc net.Conn) {
	c := newConn(k.s, nc)
	c.primary, c.probe = true, k.cfg.Probe
	k.mu.Lock()
	if isStopped(k.stop) || len(k.conns) >= MaxConns || !k.s.addConn(c) {
		k.mu.Unlock()
		nc.Close()
		return
	}
	k.conns[c] = struct{}{}
	k.mu.Unlock()
	now := time.Now()
	k.set(func(st *ControllerStatus) { st.State, st.LastConnected = "ACTIVE", now })
	connLog.InfoRL(connLifeRL, "bridge %s: connected to controller %s", k.s.name, k.cfg.Target)
	err := c.serve()
	k.s.drop(c)
	k.mu.Lock()
	delete(k.conns, c)
	if len(k.conns) == 0 && passive(k.cfg.Target) {
		k.st.State = "LISTENING"
	}
	k.mu.Unlock()
	if err == nil {
		err = errPeerClosed
	}
	now = time.Now()
	k.set(func(st *ControllerStatus) {
		st.LastDisconnected = now
		if !isStopped(k.stop) {
			st.LastError = describe(err)
		}
	})
	connLog.InfoRL(connLifeRL, "bridge %s: controller %s: disconnected: %v", k.s.name, k.cfg.Target, describe(err))
}
