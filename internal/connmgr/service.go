package connmgr

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
	"gvs/internal/packet"
	"gvs/internal/unixsock"
	"gvs/internal/vlog"
)

var (
	connLog     = vlog.New("connmgr")
	connPanics  = coverage.New("ofconn_panic")
	connRefused = coverage.New("ofconn_refused")
	connEvicted = coverage.New("ofconn_evicted")
	connErrors  = coverage.New("ofconn_error_sent")
	// connMoreParts counts multipart request parts that announced more.
	connMoreParts = coverage.New("ofconn_multipart_part")
	// connTooBig counts reply entries left out because no message holds them.
	connTooBig = coverage.New("ofconn_reply_entry_too_big")

	// Lines that each connection can cause are rate-limited per kind:
	// a passive controller target (ptcp: listens on every address by
	// default) is open to whoever reaches it, and the log has no size
	// limit of its own.
	connLifeRL  = vlog.NewRateLimit(20, time.Minute) // a controller connected or left
	connErrRL   = vlog.NewRateLimit(20, time.Minute) // a connection's hello, read or write failed
	connLimitRL = vlog.NewRateLimit(10, time.Minute) // a connection refused or evicted at the limit
)

// MaxConns bounds the OpenFlow connections of one bridge (a new one on
// the management socket closes the one idle longest); more are
// closed as they arrive.
const MaxConns = 64

// MaxControllerConns bounds the connections of a bridge's controllers
// together (a passive one takes any number of peers): controller
// connections are never evicted, so this leaves the management socket
// room for ovs-ofctl.
const MaxControllerConns = MaxConns / 2

// Port is a bridge port as the channel describes it.
type Port struct {
	OFPort uint32 // OpenFlow 1.0 numbering (LOCAL is 0xfffe)
	Name   string
	HWAddr [6]byte
	// Dev is the port's device, for port statistics, state and
	// packet-out; nil for a port without one (patch).
	Dev netdev.Netdev
	// DevInfo is Dev's state as the switch read it for this
	// configuration: a new port's first port status tells it.
	DevInfo netdev.Info
}

// Info is what the channel knows of its bridge; the switch replaces it
// at every reconfiguration.
type Info struct {
	DatapathID uint64
	// Versions is the bitmap of OpenFlow versions Bridge.protocols
	// allows (openflow.VersionBitmap).
	Versions uint32
	Ports    []Port
	// FailMode is Bridge.fail_mode: "secure", else standalone.
	FailMode string
	// Controllers are the bridge's Controller rows.
	Controllers []ControllerConfig
}

func (info *Info) secure() bool { return info.FailMode == "secure" }

// Service is one bridge's OpenFlow channel.
type Service struct {
	name   string
	rundir string // the management socket's directory: where unix: controllers may be
	bridge *ofproto.Bridge
	tables *ofproto.Tables
	ln     net.Listener
	info   atomic.Pointer[Info]
	start  time.Time

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}

	// async is the connections that may get packet-ins, for the port
	// threads to read without a lock.
	async atomic.Pointer[[]*conn]

	ctlMu       sync.Mutex // controllers, failSince, and the flushes they cause
	controllers map[string]*controller
	failSince   time.Time // since when no controller is connected
	onStatus    atomic.Pointer[func()]
	exec        atomic.Pointer[Executor]

	// ports is what port status messages last reported (portstatus.go).
	portsMu   sync.Mutex
	ports     map[uint32]portView
	portsPoke chan struct{}
	// electionID is the generation id of the last master or slave
	// role request, which role status messages carry, as in OVS;
	// electionSet says one was recorded (electionMu guards both writes).
	electionID  atomic.Uint64
	electionMu  sync.Mutex
	electionSet bool
}

// requestRole applies connection c's role request as one step against
// every other connection's (two master requests at once cannot leave the
// older generation id master) and returns the reply. A master or slave
// request whose generation id is behind the last one recorded, as a
// signed difference so that ids may wrap, is stale and changes nothing
// (OpenFlow 1.2+'s rule). The reply carries the recorded id, or all ones
// when none is, as OVS 3.1's does.
func (s *Service) requestRole(c *conn, role uint32, gen uint64) (*openflow.RoleReply, error) {
	s.electionMu.Lock()
	if role == roleMaster || role == roleSlave {
		if cur := s.electionID.Load(); s.electionSet && int64(gen-cur) < 0 {
			s.electionMu.Unlock()
			return nil, &openflow.Error{Code: openflow.ErrRoleStale, Detail: fmt.Sprintf("generation id %d is behind %d", gen, cur)}
		}
		s.electionID.Store(gen)
		s.electionSet = true
	}
	if role == roleMaster {
		s.demoteMasters(c)
	}
	if role != roleNoChange {
		c.role.Store(role)
	}
	reply := &openflow.RoleReply{Role: c.role.Load(), GenerationID: math.MaxUint64}
	if s.electionSet {
		reply.GenerationID = s.electionID.Load()
	}
	s.electionMu.Unlock()
	if role != roleNoChange {
		s.statusChanged()
		s.connsChanged() // a slave's masks are not a master's
	}
	if reply.Role == 0 {
		reply.Role = roleEqual
	}
	return reply, nil
}

// Executor runs a packet through a translation and executes it: the
// datapath (datapath.Datapath.Execute), for packet-outs.
type Executor interface {
	Execute(frame []byte, inPort uint32, tr datapath.Translator) error
}

// SetExecutor sets who executes packet-outs.
func (s *Service) SetExecutor(e Executor) { s.exec.Store(&e) }

// Listen opens the bridge's management socket at path and serves it.
// The bridge's flows start as OVS's: "priority=0 actions=NORMAL" only
// in standalone mode without controllers (see flush).
func Listen(path string, b *ofproto.Bridge, info *Info) (*Service, error) {
	ln, err := unixsock.Listen(path, 0o700)
	if err != nil {
		return nil, fmt.Errorf("bridge %q: OpenFlow management socket: %w", b.Name, err)
	}
	s := &Service{name: b.Name, rundir: filepath.Dir(ln.Path()), bridge: b, tables: b.Tables, ln: ln, start: time.Now(), conns: map[*conn]struct{}{},
		stop: make(chan struct{}), controllers: map[string]*controller{}, failSince: time.Now(), portsPoke: make(chan struct{}, 1)}
	s.info.Store(info)
	if info.secure() || len(info.Controllers) > 0 {
		s.flush(info)
	}
	s.syncControllers(info)
	b.SetPacketInSink(s)
	s.wg.Add(3)
	go s.accept()
	go s.expire()
	go s.watchPorts()
	return s, nil
}

// SetInfo installs the bridge's current ports and settings, and
// connects to its controllers. As in OVS, the flows are flushed when
// the bridge gains its first controller or loses its last one, or
// changes fail mode without controllers.
func (s *Service) SetInfo(info *Info) {
	old := s.info.Swap(info)
	had, has := len(old.Controllers) > 0, len(info.Controllers) > 0
	if had != has || !has && old.secure() != info.secure() {
		s.flush(info)
	}
	s.syncControllers(info)
	s.pokePorts()
}

// OnStatusChange sets f to be called (on any goroutine) when a
// controller's status changes.
func (s *Service) OnStatusChange(f func()) { s.onStatus.Store(&f) }

func (s *Service) statusChanged() {
	if f := s.onStatus.Load(); f != nil {
		(*f)()
	}
}

// flush deletes every flow and, in standalone mode without controllers,
// adds "priority=0 actions=NORMAL", as OVS's connection manager does.
func (s *Service) flush(info *Info) {
	s.flowsRemoved(s.tables.Delete(ofproto.Selector{Table: ofproto.TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})}))
	if !info.secure() && len(info.Controllers) == 0 {
		_ = s.tables.Add(&flow.Flow{Match: flow.NewMatch(packet.Key{}, packet.Key{}),
			Actions: []flow.Action{flow.Output{Port: flow.PortNormal}}})
	}
}

// syncControllers starts the controllers info names and stops the others.
func (s *Service) syncControllers(info *Info) {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	want := map[string]ControllerConfig{}
	for _, cc := range info.Controllers {
		want[cc.Target] = cc
	}
	for t, k := range s.controllers {
		if cc, ok := want[t]; !ok || cc != k.cfg && !(cc.MaxBackoff == 0 && k.cfg.MaxBackoff == DefaultMaxBackoff && cc.Probe == k.cfg.Probe) {
			k.close()
			delete(s.controllers, t)
		}
	}
	for t, cc := range want {
		if s.controllers[t] == nil && !s.closed {
			s.controllers[t] = newController(s, cc)
		}
	}
	s.updateFailOpen(time.Now())
}

// Controllers returns the status of each controller, by target.
func (s *Service) Controllers() []ControllerStatus {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	out := make([]ControllerStatus, 0, len(s.controllers))
	for _, k := range s.controllers {
		out = append(out, k.status())
	}
	return out
}

// updateFailOpen puts a standalone bridge whose controllers have all
// been unreachable for three inactivity probe intervals into fail-open:
// its flows are flushed and it switches with NORMAL (OVS's hidden
// fail-open flow) until a controller connects. A secure bridge never
// fails open. Call it with ctlMu held.
func (s *Service) updateFailOpen(now time.Time) {
	info := s.info.Load()
	connected := false
	probe := time.Duration(0)
	for _, k := range s.controllers {
		k.mu.Lock()
		connected = connected || len(k.conns) > 0
		k.mu.Unlock()
		probe = max(probe, k.cfg.Probe)
	}
	if connected || len(s.controllers) == 0 {
		s.failSince = now
	}
	trigger := max(3*probe, 3*time.Second)
	open := !info.secure() && len(s.controllers) > 0 && !connected && now.Sub(s.failSince) >= trigger
	switch was := s.bridge.FailOpen(); {
	case open && !was:
		// As OVS: the controllers' flows go, the bridge switches alone
		// until a controller is back (and programs it again).
		connLog.Warn("bridge %s: could not connect to a controller for %v, failing open", s.name, now.Sub(s.failSince).Truncate(time.Second))
		s.flowsRemoved(s.tables.Delete(ofproto.Selector{Table: ofproto.TableAll, Match: flow.NewMatch(packet.Key{}, packet.Key{})}))
	case !open && was:
		connLog.Info("bridge %s: leaving fail-open mode", s.name)
	}
	s.bridge.SetFailOpen(open)
}

// Close stops listening and closes every connection.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.mu.Unlock()
	s.bridge.SetPacketInSink(nil)
	s.ctlMu.Lock()
	for t, k := range s.controllers {
		k.close()
		delete(s.controllers, t)
	}
	s.ctlMu.Unlock()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Service) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			connLog.WarnRL(connErrRL, "bridge %s: accepting an OpenFlow connection: %v", s.name, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c := newConn(s, nc)
		s.mu.Lock()
		if !s.closed && len(s.conns) >= MaxConns {
			s.evictIdlestLocked()
		}
		if s.closed || len(s.conns) >= MaxConns {
			s.mu.Unlock()
			connRefused.Inc()
			connLog.WarnRL(connLimitRL, "bridge %s: refusing an OpenFlow connection: %d connections already (the limit)", s.name, MaxConns)
			nc.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer s.drop(c)
			defer guard.Recover(connLog, connPanics, "bridge "+s.name+": OpenFlow connection")
			_ = c.serve()
		}()
	}
}

// evictIdlestLocked closes the service connection (not a controller's)
// that has received nothing for longest, so that idle peers on the
// management socket can never lock ovs-ofctl out (called with s.mu held).
func (s *Service) evictIdlestLocked() {
	var idlest *conn
	for c := range s.conns {
		if !c.primary && (idlest == nil || c.lastRx.Load() < idlest.lastRx.Load()) {
			idlest = c
		}
	}
	if idlest == nil {
		return
	}
	delete(s.conns, idlest) // its serve ends as its read fails
	idlest.nc.Close()
	connEvicted.Inc()
	connLog.InfoRL(connLimitRL, "bridge %s: %d OpenFlow connections (the limit): closed the one idle for %v", s.name, MaxConns,
		time.Since(time.Unix(0, idlest.lastRx.Load())).Round(time.Millisecond))
}

func (s *Service) drop(c *conn) {
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.connsChanged()
}

// addConn registers a controller's connection, unless the bridge has
// MaxControllerConns of them already.
func (s *Service) addConn(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	n := 0
	for other := range s.conns {
		if other.primary {
			n++
		}
	}
	if n >= MaxControllerConns {
		connRefused.Inc()
		connLog.WarnRL(ctlConnsRL, "bridge %s: refusing a controller connection: %d already (the limit)", s.name, MaxControllerConns)
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// ctlConnsRL limits the warnings of controller connections refused: a
// peer may try again and again.
var ctlConnsRL = vlog.NewRateLimit(5, time.Minute)

// connsChanged recomputes the connections that may get packet-ins and
// tells the bridge whether a table miss should make one.
func (s *Service) connsChanged() {
	s.mu.Lock()
	before := s.async.Load()
	var async []*conn
	miss := false
	for c := range s.conns {
		if c.ready.Load() && (c.primary || c.missSendLen.Load() != 0) {
			async = append(async, c)
			miss = miss || c.receives(openflow.AsyncPacketIn, pinImplicitMiss)
		}
	}
	s.async.Store(&async)
	s.mu.Unlock()
	s.bridge.SetMissPacketIn(miss)
	if (before == nil || len(*before) == 0) && len(async) > 0 {
		// Ports are not polled while nobody listens: what changed
		// meanwhile is not news to the first listener.
		s.syncPorts(nil, true, true)
	}
}

// expire removes timed-out flows once a second and reports them.
func (s *Service) expire() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			_ = guard.Call(connLog, connPanics, "bridge "+s.name+": expiring flows", func() {
				s.flowsRemoved(s.tables.Expire())
				s.probe(now)
			})
		}
	}
}

// flowsRemoved sends flow-removed messages for the flows that asked, to
// the connections that asked for asynchronous messages.
func (s *Service) flowsRemoved(rs []ofproto.Removed) {
	var any bool
	for _, r := range rs {
		if r.Rule.Flow().Flags.SendFlowRem {
			any = true
		}
	}
	if !any {
		return
	}
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.async.Load() || c.primary && c.ready.Load() {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	now := time.Now()
	for _, r := range rs {
		if !r.Rule.Flow().Flags.SendFlowRem {
			continue
		}
		for _, c := range conns {
			if c.receives(openflow.AsyncFlowRemoved, uint(r.Reason)) {
				c.sendFlowRemoved(r, now)
			}
		}
	}
}

func (info *Info) port(no uint32) *Port {
	for i := range info.Ports {
		if info.Ports[i].OFPort == no {
			return &info.Ports[i]
		}
	}
	return nil
}
