// Package idl keeps an in-memory replica of a database that another OVSDB
// server serves (ovsdb-server, standalone or clustered), as Open vSwitch's
// ovsdb-idl does for ovs-vswitchd: gvsd uses it when its DATABASE argument
// names such a server instead of its own socket.
//
// A Replica reads like the ovsdb.DB it wraps (Snapshot, Rows, OnCommit),
// so the reconciler does not know where its rows come from, and writes
// (Transact) go to the server, each asserting the lock the replica holds
// there. It connects to one remote at a time, takes the lock, monitors
// every table and column both schemas know (monitor_cond, or monitor for
// a server without it), and after a lost connection reconnects with
// exponential backoff and loads the whole database again. With several
// remotes it stays on the cluster's leader: the _Server database tells
// whether the connected member is the leader, and a follower, a member cut
// off from its cluster or one that stops being leader is left for the
// next remote, as OVS's IDL does by default (locks are per server, so two
// daemons on two members would each hold "the" lock).
package idl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/ovsdb"
	"gvs/internal/vlog"
)

var log = vlog.New("ovsdb_idl")

// Config says what to replicate and from where.
type Config struct {
	// Remotes are the servers, tried in turn: "unix:PATH" or
	// "tcp:IP:PORT" (IPv6 as tcp:[IP]:PORT).
	Remotes []string
	// Schema is the database's schema as the client knows it; its name
	// is the database to replicate.
	Schema *ovsdb.Schema
	// Lock is the lock to hold before the replica counts as writable
	// ("ovs_vswitchd"); "" for none.
	Lock string
	// OnSync runs after the replica has loaded the server's contents and
	// holds its lock: after the first connection and every reconnection.
	OnSync func()
	// MinBackoff and MaxBackoff bound the wait between connection
	// attempts once every remote has failed (defaults 250 ms and 8 s).
	MinBackoff, MaxBackoff time.Duration
	// Probe is the inactivity probe: a server silent for this long is
	// sent an echo, and one that does not answer within another Probe is
	// disconnected (default 5 s, OVS's default).
	Probe time.Duration
}

// callTimeout bounds every request but a transaction.
const callTimeout = 30 * time.Second

// Replica is a database served elsewhere, copied here.
type Replica struct {
	cfg Config
	db  *ovsdb.DB

	mu       sync.Mutex
	cur      *conn // the connection in use, nil between connections
	remote   string
	writable atomic.Bool // synced and holding the lock
	locked   atomic.Bool
	synced   atomic.Bool
}

// ParseRemotes splits "tcp:IP:PORT,tcp:IP:PORT" or "unix:PATH" into
// remotes and checks each.
func ParseRemotes(s string) ([]string, error) {
	var out []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if _, _, err := parseRemote(r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// parseRemote returns the network and address of an active OVSDB
// connection method.
func parseRemote(r string) (network, addr string, err error) {
	switch {
	case strings.HasPrefix(r, "unix:") && len(r) > len("unix:"):
		return "unix", strings.TrimPrefix(r, "unix:"), nil
	case strings.HasPrefix(r, "tcp:"):
		hostport := strings.TrimPrefix(r, "tcp:")
		host, port, err := net.SplitHostPort(hostport)
		if err != nil {
			// OVS's default port when only the address is given.
			host, port, err = strings.Trim(hostport, "[]"), "6640", nil
		}
		if net.ParseIP(host) == nil {
			return "", "", fmt.Errorf("remote %q: %q is not an IP address", r, host)
		}
		return "tcp", net.JoinHostPort(host, port), nil
	case strings.HasPrefix(r, "ssl:"):
		return "", "", fmt.Errorf("remote %q: gvsd makes no SSL connections (use tcp or unix)", r)
	}
	return "", "", fmt.Errorf("remote %q: expected unix:PATH or tcp:IP:PORT", r)
}

// New returns a replica of cfg.Schema's database, empty until Run has
// connected.
func New(cfg Config) (*Replica, error) {
	if len(cfg.Remotes) == 0 {
		return nil, errors.New("no remote to connect to")
	}
	for _, r := range cfg.Remotes {
		if _, _, err := parseRemote(r); err != nil {
			return nil, err
		}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(8*time.Second, cfg.MinBackoff)
	}
	if cfg.Probe <= 0 {
		cfg.Probe = 5 * time.Second
	}
	return &Replica{cfg: cfg, db: ovsdb.NewDB(cfg.Schema, nil)}, nil
}

// Schema, Rows, Snapshot and OnCommit read the replica.
func (r *Replica) Schema() *ovsdb.Schema                     { return r.db.Schema() }
func (r *Replica) Rows(table string) []*ovsdb.Row            { return r.db.Rows(table) }
func (r *Replica) Snapshot(tables ...string) *ovsdb.Snapshot { return r.db.Snapshot(tables...) }
func (r *Replica) OnCommit(fn func(*ovsdb.Commit))           { r.db.OnCommit(fn) }
func (r *Replica) DB() *ovsdb.DB                             { return r.db }

// Writable reports whether the replica holds the server's contents and
// its lock, so that what it says is current and writes can succeed.
func (r *Replica) Writable() bool { return r.writable.Load() }

// Remote is the remote of the connection in use, "" when none.
func (r *Replica) Remote() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.remote
}

// Transact runs ops on the server, with an assertion of the lock first
// when the replica has one, and returns their results (the assertion's
// left out, unless it failed). Without a connection, or when the
// connection fails before the reply, the result is one error, as a
// server's refusal would be.
func (r *Replica) Transact(ops []any) []any {
	r.mu.Lock()
	cn := r.cur
	r.mu.Unlock()
	if cn == nil || !r.synced.Load() {
		return []any{txnError("not connected", "no connection to the OVSDB server")}
	}
	params := []any{r.cfg.Schema.Name}
	if r.cfg.Lock != "" {
		params = append(params, map[string]any{"op": "assert", "lock": r.cfg.Lock})
	}
	params = append(params, ops...)
	raw, err := cn.call("transact", params, callTimeout, nil)
	if err != nil {
		return []any{txnError("not connected", err.Error())}
	}
	var results []any
	if err := decodeNumbers(raw, &results); err != nil {
		return []any{txnError("syntax error", fmt.Sprintf("transaction reply: %v", err))}
	}
	if r.cfg.Lock != "" && len(results) > 0 {
		if m, ok := results[0].(map[string]any); ok && m["error"] == nil {
			results = results[1:]
		}
	}
	return results
}

func txnError(tag, details string) map[string]any {
	return map[string]any{"error": tag, "details": details}
}

func decodeNumbers(raw json.RawMessage, v any) error {
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	return d.Decode(v)
}

// Run keeps the replica connected until ctx ends.
func (r *Replica) Run(ctx context.Context) {
	backoff := r.cfg.MinBackoff
	for i := 0; ctx.Err() == nil; i++ {
		remote := r.cfg.Remotes[i%len(r.cfg.Remotes)]
		served, err := r.session(ctx, remote)
		if ctx.Err() != nil {
			return
		}
		switch {
		case served:
			backoff = r.cfg.MinBackoff
			log.Warn("%s: connection dropped: %v", remote, err)
		case errors.Is(err, errNotLeader):
			log.Info("%s: %v; trying the next remote", remote, err)
		default:
			log.Warn("%s: %v", remote, err)
		}
		// A full turn of the remotes without a session waits, longer
		// each time; moving on from a follower does not.
		if served || (i+1)%len(r.cfg.Remotes) != 0 {
			if !served && !errors.Is(err, errNotLeader) {
				sleep(ctx, r.cfg.MinBackoff)
			}
			continue
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, r.cfg.MaxBackoff)
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

var errNotLeader = errors.New("not the cluster leader")

// session runs one connection: it returns whether the replica was synced
// on it, and why it ended.
func (r *Replica) session(ctx context.Context, remote string) (served bool, err error) {
	nc, err := dial(ctx, remote)
	if err != nil {
		return false, err
	}
	s := &sessionState{r: r, remote: remote, leaderLost: make(chan error, 1)}
	cn := newConn(nc, s.notify)
	s.cn = cn
	defer func() {
		r.mu.Lock()
		r.cur, r.remote = nil, ""
		r.mu.Unlock()
		r.writable.Store(false)
		r.synced.Store(false)
		r.locked.Store(false)
		cn.close(errors.New("session ended"))
		<-cn.closed
	}()
	if err := s.start(); err != nil {
		return false, err
	}
	r.mu.Lock()
	r.cur, r.remote = cn, remote
	r.mu.Unlock()
	r.synced.Store(true)
	log.Info("%s: connected, %s database loaded", remote, r.cfg.Schema.Name)
	if err := s.lock(); err != nil {
		return true, err
	}
	r.updateWritable()
	return true, s.wait(ctx)
}

// updateWritable recomputes Writable and runs OnSync when it becomes
// true.
func (r *Replica) updateWritable() {
	w := r.synced.Load() && (r.cfg.Lock == "" || r.locked.Load())
	if was := r.writable.Swap(w); w && !was && r.cfg.OnSync != nil {
		r.cfg.OnSync()
	}
}
