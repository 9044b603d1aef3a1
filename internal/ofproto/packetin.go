package ofproto

import (
	"sync/atomic"

	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/flow"
)

// OpenFlow packet-in reasons.
const (
	ReasonNoMatch    = 0
	ReasonAction     = 1
	ReasonInvalidTTL = 2
)

// NoBufferLen is the max_len that asks for the whole packet
// (OFPCML_NO_BUFFER); a table miss uses it too, and each connection cuts
// the packet to its own miss_send_len.
const NoBufferLen = 0xffff

// PacketIn describes a packet-in that a translation made: everything
// but the packet, which comes with each call. It never changes once
// made, because cached translations share it.
type PacketIn struct {
	Reason uint8
	// Miss marks a table miss without a rule (OVS's implicit miss),
	// which only OpenFlow 1.0 connections get; ExplicitMiss a
	// controller action of a table-miss rule (priority 0, matching
	// everything), which OpenFlow 1.3 reports as no_match and 1.0 as
	// action, as OVS does.
	Miss         bool
	ExplicitMiss bool
	MaxLen       uint16
	Table        uint8
	Cookie       uint64
	InPort       uint32 // OpenFlow port number
	Metadata     uint64
	ControllerID uint16 // 0: every controller
}

// PacketInSink takes a bridge's packet-ins (the bridge's OpenFlow
// channel). PacketIn runs on a port thread: it must copy frame if it
// keeps it, and never block.
type PacketInSink interface {
	PacketIn(pi *PacketIn, frame []byte)
}

// packetInNoSink counts packet-ins of a bridge without a channel.
var packetInNoSink = coverage.New("ofproto_packet_in_no_channel")

type sinkHolder struct{ s PacketInSink }

// SetPacketInSink sets who receives the bridge's packet-ins (nil: none).
func (b *Bridge) SetPacketInSink(s PacketInSink) {
	if s == nil {
		b.sink.Store(nil)
		return
	}
	b.sink.Store(&sinkHolder{s})
}

// SetFailOpen switches the bridge to fail-open ("standalone" fail mode
// with no controller reachable): it then switches every packet with
// NORMAL, its flow tables aside, as OVS's fail-open flow does.
func (b *Bridge) SetFailOpen(on bool) {
	if b.failOpen.Swap(on) != on {
		datapath.Invalidate()
	}
}

// SetMissPacketIn says whether a table miss sends a packet-in: whether a
// connection of the bridge's channel wants them (as OVS asks its
// connection manager when it translates a miss). Without one, a miss
// drops the packet and the cached flow says so.
func (b *Bridge) SetMissPacketIn(on bool) {
	if b.missIn.Swap(on) != on {
		datapath.Invalidate()
	}
}

// FailOpen reports whether the bridge is in fail-open mode.
func (b *Bridge) FailOpen() bool { return b.failOpen.Load() }

// upcall is the datapath's handle on a packet-in: its ActUserspace calls
// it for every packet the (possibly cached) translation applies to.
type upcall struct {
	sink *atomic.Pointer[sinkHolder]
	pi   PacketIn
}

func (u *upcall) Upcall(frame []byte) {
	h := u.sink.Load()
	if h == nil {
		packetInNoSink.Inc()
		return
	}
	h.s.PacketIn(&u.pi, frame)
}

// packetIn emits a packet-in of the frame as the actions so far leave
// it. Translation allocates the description (a slow-path action, as in
// OVS); executing it allocates nothing.
func (c *ofctx) packetIn(x *xlate, pi PacketIn) {
	pi.InPort, pi.Metadata = c.key.InPort, c.key.Metadata
	x.out.Mask.Metadata = ^uint64(0)
	want, n := c.vlans.wire()
	x.emitWith(want, n, 0, datapath.Userspace(&upcall{sink: &c.b.sink, pi: pi}))
}

// controller executes a controller action.
func (c *ofctx) controller(x *xlate, a flow.Controller) {
	reason := uint8(ReasonAction)
	switch a.Reason {
	case "no_match":
		reason = ReasonNoMatch
	case "invalid_ttl":
		reason = ReasonInvalidTTL
	}
	pi := PacketIn{Reason: reason, MaxLen: a.MaxLen, Table: c.cur, ControllerID: a.ID}
	if c.rule != nil {
		f := c.rule.Flow()
		pi.Cookie = f.Cookie
		pi.ExplicitMiss = reason == ReasonAction && f.Priority == 0 && (f.Match == nil || f.Match.IsCatchAll())
	}
	c.packetIn(x, pi)
}

// miss sends a packet that no rule of table id took to the controllers,
// as OVS's table-miss does (each connection decides whether it wants
// it: OpenFlow 1.3 controllers do not by default).
func (c *ofctx) miss(x *xlate, id uint8) {
	if !c.b.missIn.Load() {
		return
	}
	c.packetIn(x, PacketIn{Reason: ReasonNoMatch, Miss: true, MaxLen: NoBufferLen, Table: id, Cookie: ^uint64(0)})
}
