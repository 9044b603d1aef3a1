package idl

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// Monitor ids: one for the replicated database, one for _Server.
const (
	dbMonitorID     = "gvs-db"
	serverMonitorID = "gvs-server"
)

// sessionState is what one connection knows.
type sessionState struct {
	r          *Replica
	cn         *conn
	remote     string
	leaderLost chan error // the member stopped being a usable leader

	mu      sync.Mutex
	servers map[string]map[string]any // _Server Database rows by UUID
}

// start checks that the member may be used, then loads the database.
func (s *sessionState) start() error {
	if err := s.watchServer(); err != nil {
		return err
	}
	cols, err := s.monitorRequests()
	if err != nil {
		return err
	}
	name := s.r.cfg.Schema.Name
	apply := func(version int) func(json.RawMessage) error {
		return func(res json.RawMessage) error { return s.r.db.ApplyUpdate(version, res, true) }
	}
	_, err = s.cn.call("monitor_cond", []any{name, dbMonitorID, cols}, callTimeout, apply(2))
	if rpcErr, ok := err.(*RPCError); ok {
		// A server without monitor_cond (before OVS 2.6).
		log.Info("%s: monitor_cond refused (%s); using monitor", s.remote, rpcErr.Text)
		_, err = s.cn.call("monitor", []any{name, dbMonitorID, cols}, callTimeout, apply(1))
	}
	if err != nil {
		return fmt.Errorf("monitoring %s: %w", name, err)
	}
	return nil
}

// watchServer monitors the _Server database's row for our database and
// refuses a clustered member that is not the connected leader, when
// there are other remotes to try.
func (s *sessionState) watchServer() error {
	req := map[string]any{"Database": map[string]any{"columns": []string{"name", "model", "connected", "leader"}}}
	_, err := s.cn.call("monitor", []any{"_Server", serverMonitorID, req}, callTimeout, func(res json.RawMessage) error {
		s.serverUpdate(res)
		return nil
	})
	if _, ok := err.(*RPCError); ok {
		return nil // a server without _Server: standalone
	}
	if err != nil {
		return fmt.Errorf("monitoring _Server: %w", err)
	}
	return s.usable()
}

// serverUpdate applies an "update" of the _Server monitor (version 1).
func (s *sessionState) serverUpdate(raw json.RawMessage) {
	var tables map[string]map[string]struct {
		New map[string]any `json:"new"`
	}
	if json.Unmarshal(raw, &tables) != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.servers == nil {
		s.servers = map[string]map[string]any{}
	}
	for u, ru := range tables["Database"] {
		if ru.New == nil {
			delete(s.servers, u)
			continue
		}
		row := s.servers[u]
		if row == nil {
			row = map[string]any{}
			s.servers[u] = row
		}
		for k, v := range ru.New {
			row[k] = v
		}
	}
}

// usable returns errNotLeader when the member serves the database as a
// follower, or is cut off from its cluster, and other remotes exist.
func (s *sessionState) usable() error {
	if len(s.r.cfg.Remotes) < 2 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, row := range s.servers {
		if row["name"] != s.r.cfg.Schema.Name || row["model"] != "clustered" {
			continue
		}
		if row["connected"] != true {
			return fmt.Errorf("%w: it is not connected to its cluster", errNotLeader)
		}
		if row["leader"] != true {
			return errNotLeader
		}
	}
	return nil
}

// lock asks for the replica's lock; the reply or a later "locked"
// notification grants it.
func (s *sessionState) lock() error {
	if s.r.cfg.Lock == "" {
		return nil
	}
	res, err := s.cn.call("lock", []any{s.r.cfg.Lock}, callTimeout, nil)
	if err != nil {
		return fmt.Errorf("lock %s: %w", s.r.cfg.Lock, err)
	}
	var reply struct {
		Locked bool `json:"locked"`
	}
	if err := json.Unmarshal(res, &reply); err != nil {
		return fmt.Errorf("lock %s: %w", s.r.cfg.Lock, err)
	}
	if reply.Locked {
		s.r.locked.Store(true)
	} else {
		log.Err("%s: another process holds the lock %q: not configuring until it is released", s.remote, s.r.cfg.Lock)
	}
	return nil
}

// notify handles a notification, in the reading goroutine.
func (s *sessionState) notify(method string, params json.RawMessage) {
	var args []json.RawMessage
	if json.Unmarshal(params, &args) != nil || len(args) == 0 {
		return
	}
	var id string
	_ = json.Unmarshal(args[0], &id)
	switch {
	case (method == "update" || method == "update2") && id == dbMonitorID && len(args) == 2:
		version := 1
		if method == "update2" {
			version = 2
		}
		if err := s.r.db.ApplyUpdate(version, args[1], false); err != nil {
			// The replica can no longer be trusted: load it again.
			s.cn.close(err)
		}
	case method == "update" && id == serverMonitorID && len(args) == 2:
		s.serverUpdate(args[1])
		if err := s.usable(); err != nil {
			select {
			case s.leaderLost <- err:
			default:
			}
		}
	case method == "locked" && id == s.r.cfg.Lock:
		log.Info("%s: lock %q acquired", s.remote, id)
		s.r.locked.Store(true)
		s.r.updateWritable()
	case method == "stolen" && id == s.r.cfg.Lock:
		log.Err("%s: lock %q stolen by another client: not configuring until it is released", s.remote, id)
		s.r.locked.Store(false)
		s.r.updateWritable()
		go func() { _ = s.lock() }() // wait in line again
	}
}

// wait keeps the session until it fails, the member stops being the
// leader, or ctx ends; a silent server is probed with an echo.
func (s *sessionState) wait(ctx context.Context) error {
	probe := s.r.cfg.Probe
	t := time.NewTicker(probe / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.cn.closed:
			return s.cn.Err()
		case err := <-s.leaderLost:
			return err
		case <-t.C:
			if time.Since(time.Unix(0, s.cn.lastRead.Load())) < probe {
				continue
			}
			if _, err := s.cn.call("echo", []any{}, probe, nil); err != nil {
				return fmt.Errorf("inactivity probe: %w", err)
			}
		}
	}
}

// monitorRequests asks for every table and column that both the server's
// schema and ours have.
func (s *sessionState) monitorRequests() (map[string]any, error) {
	raw, err := s.cn.call("get_schema", []any{s.r.cfg.Schema.Name}, callTimeout, nil)
	if err != nil {
		return nil, fmt.Errorf("get_schema %s: %w", s.r.cfg.Schema.Name, err)
	}
	var theirs struct {
		Tables map[string]struct {
			Columns map[string]json.RawMessage `json:"columns"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(raw, &theirs); err != nil {
		return nil, fmt.Errorf("get_schema %s: %w", s.r.cfg.Schema.Name, err)
	}
	out := map[string]any{}
	for name, t := range s.r.cfg.Schema.Tables {
		other, ok := theirs.Tables[name]
		if !ok {
			continue
		}
		var cols []string
		for _, c := range t.Columns {
			if _, ok := other.Columns[c.Name]; ok && c.Name != "_uuid" && c.Name != "_version" {
				cols = append(cols, c.Name)
			}
		}
		out[name] = map[string]any{"columns": cols}
	}
	return out, nil
}
