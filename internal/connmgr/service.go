package connmgr

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/guard"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/unixsock"
	"gvs/internal/vlog"
)

var (
	connLog     = vlog.New("connmgr")
	connPanics  = coverage.New("ofconn_panic")
	connRefused = coverage.New("ofconn_refused")
	connErrors  = coverage.New("ofconn_error_sent")
	// connMoreParts counts multipart request parts that announced more.
	connMoreParts = coverage.New("ofconn_multipart_part")
	// connTooBig counts reply entries left out because no message holds them.
	connTooBig = coverage.New("ofconn_reply_entry_too_big")
)

// MaxConns bounds the OpenFlow connections of one bridge; more are
// closed as they arrive.
const MaxConns = 64

// Port is a bridge port as the channel describes it.
type Port struct {
	OFPort uint32 // OpenFlow 1.0 numbering (LOCAL is 0xfffe)
	Name   string
	HWAddr [6]byte
	// Dev is the port's device, for port statistics, state and
	// packet-out; nil for a port without one (patch).
	Dev netdev.Netdev
}

// Info is what the channel knows of its bridge; the switch replaces it
// at every reconfiguration.
type Info struct {
	DatapathID uint64
	// Versions is the bitmap of OpenFlow versions Bridge.protocols
	// allows (openflow.VersionBitmap).
	Versions uint32
	Ports    []Port
}

// Service is one bridge's OpenFlow channel.
type Service struct {
	name   string
	tables *ofproto.Tables
	ln     net.Listener
	info   atomic.Pointer[Info]
	start  time.Time

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
	wg     sync.WaitGroup
	stop   chan struct{}
}

// Listen opens the bridge's management socket at path and serves it.
func Listen(path, bridge string, tables *ofproto.Tables, info *Info) (*Service, error) {
	ln, err := unixsock.Listen(path, 0o700)
	if err != nil {
		return nil, fmt.Errorf("bridge %q: OpenFlow management socket: %w", bridge, err)
	}
	s := &Service{name: bridge, tables: tables, ln: ln, start: time.Now(), conns: map[*conn]struct{}{}, stop: make(chan struct{})}
	s.info.Store(info)
	s.wg.Add(2)
	go s.accept()
	go s.expire()
	return s, nil
}

// SetInfo installs the bridge's current ports and settings.
func (s *Service) SetInfo(info *Info) { s.info.Store(info) }

// Close stops listening and closes every connection.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
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
			connLog.Warn("bridge %s: accepting an OpenFlow connection: %v", s.name, err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c := &conn{s: s, nc: nc}
		s.mu.Lock()
		if s.closed || len(s.conns) >= MaxConns {
			s.mu.Unlock()
			connRefused.Inc()
			connLog.Warn("bridge %s: refusing an OpenFlow connection: %d connections already (the limit)", s.name, MaxConns)
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
			c.serve()
		}()
	}
}

func (s *Service) drop(c *conn) {
	c.nc.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
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
		case <-t.C:
			_ = guard.Call(connLog, connPanics, "bridge "+s.name+": expiring flows", func() {
				s.flowsRemoved(s.tables.Expire())
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
		if c.async.Load() {
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
			c.sendFlowRemoved(r, now)
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
