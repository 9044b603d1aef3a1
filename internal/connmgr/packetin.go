package connmgr

import (
	"time"

	"gvs/internal/coverage"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
	"gvs/internal/packet"
)

var (
	// pinDrops counts packet-ins dropped because a connection's queue
	// (or all connections' budget, OutputMemory) was full: a slow
	// controller never slows the packet path.
	pinDrops = coverage.New("ofconn_packet_in_drop")
	pinSent  = coverage.New("ofconn_packet_in")
)

// PacketIn implements ofproto.PacketInSink: it queues a packet-in for
// every connection that wants it, without blocking (a full queue drops
// it, counted). It runs on a port thread; it allocates the message (a
// packet-in is the slow path, as in OVS), never locks.
func (s *Service) PacketIn(pi *ofproto.PacketIn, frame []byte) {
	conns := s.async.Load()
	if conns == nil {
		return
	}
	for _, c := range *conns {
		if !c.wantsPacketIn(pi) {
			continue
		}
		b, err := openflow.Encode(c.version, 0, c.packetInMsg(pi, frame))
		if err != nil {
			continue
		}
		if outMemFull(len(b)) {
			pinDrops.Inc()
			continue
		}
		c.out.charge.add(len(b))
		select {
		case c.pin <- b:
			pinSent.Inc()
		default:
			c.out.charge.add(-len(b))
			pinDrops.Inc()
		}
	}
}

// wantsPacketIn applies the connection's asynchronous configuration
// for its role (by default, as in OVS, a slave gets none and a table
// miss without a rule goes to OpenFlow 1.0 connections only, OpenFlow
// 1.3 controllers adding a table-miss flow instead); a controller
// action with an id goes to the connections with that id.
func (c *conn) wantsPacketIn(pi *ofproto.PacketIn) bool {
	if !c.receives(openflow.AsyncPacketIn, pinReason(pi)) {
		return false
	}
	return uint32(pi.ControllerID) == c.ctlID.Load()
}

// packetInMsg builds the packet-in: no buffer id (gvs buffers nothing)
// and the frame, cut to the controller action's max_len. As in OVS, a
// table miss carries the whole frame (miss_send_len only decides
// whether a service connection gets packet-ins).
func (c *conn) packetInMsg(pi *ofproto.PacketIn, frame []byte) *openflow.PacketIn {
	data := frame
	if pi.MaxLen != ofproto.NoBufferLen && int(pi.MaxLen) < len(data) {
		data = data[:pi.MaxLen]
	}
	reason := pi.Reason
	if pi.ExplicitMiss && c.version != openflow.Version10 {
		reason = ofproto.ReasonNoMatch
	}
	m := &openflow.PacketIn{BufferID: openflow.NoBuffer, TotalLen: uint16(min(len(frame), 0xffff)), Reason: reason,
		InPort: toWirePort(pi.InPort), Data: data}
	if c.version != openflow.Version10 {
		m.TableID, m.Cookie = pi.Table, pi.Cookie
		var k, mask packet.Key
		k.InPort, mask.InPort = pi.InPort, ^uint32(0)
		if pi.Metadata != 0 {
			k.Metadata, mask.Metadata = pi.Metadata, ^uint64(0)
		}
		m.Match = matchToWire(flow.NewMatch(k, mask), true)
	}
	return m
}

// probe runs the inactivity probes of the controller connections and
// re-evaluates fail-open.
func (s *Service) probe(now time.Time) {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.primary {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.checkProbe(now)
	}
	s.ctlMu.Lock()
	s.updateFailOpen(now)
	s.ctlMu.Unlock()
}
