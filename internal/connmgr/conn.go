package connmgr

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// helloTimeout bounds how long a peer may take to say hello, so that a
// silent peer does not hold one of the bridge's connection slots.
const helloTimeout = 10 * time.Second

// conn is one OpenFlow connection.
type conn struct {
	s  *Service
	nc net.Conn

	version uint8

	nxm        bool // NXT_SET_FLOW_FORMAT chose NXM
	tableIDExt bool // NXT_FLOW_MOD_TABLE_ID
	config     openflow.SetConfig
	bundles    bundleState // OpenFlow 1.4 bundles, used by serve's goroutine only
	// bundling is set while a flow mod is added to a bundle: its group
	// actions are checked at commit, where an earlier message of the
	// bundle may have added the group.
	bundling bool
	async    atomic.Bool // the peer asked for asynchronous messages
	// asyncCfg is which asynchronous messages the peer gets, by kind,
	// reason and role (async.go); set once the version is known.
	asyncCfg atomic.Pointer[asyncConfig]

	// primary marks a controller connection (OVS's OFCONN_PRIMARY): it
	// gets packet-ins without asking. The management socket's
	// connections are service connections, which get them only after
	// setting a miss_send_len, as in OVS.
	primary bool
	probe   time.Duration // inactivity probe interval; 0: none
	ready   atomic.Bool   // hello done: version is set
	// missSendLen is the configured miss_send_len (OpenFlow 1.0's
	// default 128 for a controller, 0 for a service connection).
	missSendLen atomic.Uint32
	ctlID       atomic.Uint32 // NXT_SET_CONTROLLER_ID
	role        atomic.Uint32 // the role the peer asked for (0: other)
	lastRx      atomic.Int64  // unix nanoseconds of the last message received
	probing     atomic.Bool   // an echo request for the inactivity probe is out
	pin         chan []byte   // encoded packet-ins waiting for the writer
	out         outQueue      // every other message, in order (output.go)
	done        chan struct{} // closed when serve returns
	wdone       chan struct{} // closed when the writer returns
}

// pinQueue bounds the packet-ins waiting to be written on one
// connection; more are dropped (ofconn_packet_in_drop).
const pinQueue = 256

func newConn(s *Service, nc net.Conn) *conn {
	c := &conn{s: s, nc: nc, pin: make(chan []byte, pinQueue), done: make(chan struct{}), wdone: make(chan struct{})}
	charge := &outCharge{}
	c.out.init(charge)
	// What is left queued when the connection ends (packet-ins sent
	// while it ended) is given back once it is garbage.
	runtime.AddCleanup(c, func(ch *outCharge) { ch.add(-int(ch.bytes.Load())) }, charge)
	c.lastRx.Store(time.Now().UnixNano())
	return c
}

// serve runs the connection until it ends, and returns why.
func (c *conn) serve() error {
	defer close(c.done)
	defer c.dropBundles()
	go c.writer()
	defer func() {
		c.out.close(false)
		<-c.wdone // what was queued is written, or the peer is dropped
	}()
	buf := make([]byte, openflow.MaxMessageLen)
	if c.primary {
		c.missSendLen.Store(128)
	}
	if err := c.hello(buf); err != nil {
		if !isClosed(err) {
			connLog.InfoRL(connErrRL, "bridge %s: OpenFlow hello: %v", c.s.name, err)
		}
		return err
	}
	c.asyncCfg.Store(defaultAsync(c.version))
	c.ready.Store(true)
	c.s.connsChanged()
	for {
		msg, err := openflow.ReadMessage(c.nc, buf)
		if err != nil {
			var oe *openflow.Error
			if errors.As(err, &oe) {
				// A length below the header: the stream is lost.
				c.sendError(err, msg, 0)
			} else if !isClosed(err) {
				connLog.InfoRL(connErrRL, "bridge %s: OpenFlow connection: %v", c.s.name, err)
			}
			if errors.Is(err, io.EOF) {
				err = errPeerClosed
			}
			return err
		}
		c.lastRx.Store(time.Now().UnixNano())
		c.probing.Store(false)
		c.handle(msg)
	}
}

// checkProbe sends an echo request to a controller that has been silent
// for the probe interval, and drops one that stayed silent for another,
// as OVS's inactivity probe does.
func (c *conn) checkProbe(now time.Time) {
	if c.probe <= 0 || !c.ready.Load() {
		return
	}
	idle := now.Sub(time.Unix(0, c.lastRx.Load()))
	switch {
	case idle >= 2*c.probe && c.probing.Load():
		connLog.Warn("bridge %s: controller idle for %v: disconnecting", c.s.name, idle.Truncate(time.Second))
		c.nc.Close()
	case idle >= c.probe && !c.probing.Load():
		c.probing.Store(true)
		c.s.statusChanged()
		c.sendAsync(&openflow.EchoRequest{})
	}
}

func (c *conn) roleName() string {
	switch c.role.Load() {
	case roleMaster:
		return "master"
	case roleSlave:
		return "slave"
	}
	return "other"
}

// OpenFlow 1.3 controller roles (NX roles are converted to them).
const (
	roleNoChange = 0
	roleEqual    = 1
	roleMaster   = 2
	roleSlave    = 3
)

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// hello sends ours and negotiates the version from the peer's.
func (c *conn) hello(buf []byte) error {
	ours := c.s.info.Load().Versions
	b, err := openflow.Encode(highest(ours), 0, &openflow.Hello{Versions: ours})
	if err != nil {
		return err
	}
	c.out.put(true, b)
	_ = c.nc.SetReadDeadline(time.Now().Add(helloTimeout))
	msg, err := openflow.ReadMessage(c.nc, buf)
	_ = c.nc.SetReadDeadline(time.Time{})
	if err != nil {
		return err
	}
	h, m, err := openflow.Decode(msg)
	hello, ok := m.(*openflow.Hello)
	if err == nil && !ok {
		err = &openflow.Error{Code: openflow.ErrHelloIncompatible, Detail: "first message is not a hello"}
	}
	if err == nil {
		c.version, err = openflow.Negotiate(ours, h, hello)
	}
	if err != nil {
		c.version = highest(ours)
		c.sendError(err, msg, h.Xid)
		return err
	}
	return nil
}

func highest(bitmap uint32) uint8 {
	for v := 31; v > 0; v-- {
		if bitmap&(1<<v) != 0 {
			return uint8(v)
		}
	}
	return openflow.Version10
}

// send queues one reply (or a chain of multipart replies), waiting for
// room while the peer is behind.
func (c *conn) send(xid uint32, m openflow.Message) {
	bs, skipped, err := openflow.EncodeRepliesSkipping(c.version, xid, m)
	c.noteSkipped(skipped, m)
	if err != nil {
		connLog.Warn("bridge %s: encoding %T: %v", c.s.name, m, err)
		c.sendError(err, nil, xid)
		return
	}
	c.putEach(bs)
}

// noteSkipped counts and logs the entries of a reply of m's kind that
// no message could carry: as OVS, the reply leaves them out.
func (c *conn) noteSkipped(skipped int, m openflow.Message) {
	if skipped > 0 {
		connTooBig.Add(uint64(skipped))
		connLog.Warn("bridge %s: %d entries of a %T too big for an OpenFlow %#x message, left out", c.s.name, skipped, m, c.version)
	}
}

// putEach queues the messages of a reply one at a time, each waiting
// for room, so that a long reply holds at most the connection's budget
// (and one message) while its peer is behind. It reports false once the
// connection is ending.
func (c *conn) putEach(bs [][]byte) bool {
	for _, b := range bs {
		if c.out.put(true, b) == putClosed {
			return false
		}
	}
	return true
}

// sendAsync queues an asynchronous message (flow-removed, an echo
// probe) without waiting: the goroutine that sends it serves every
// connection. A peer too far behind loses it, counted
// (ofconn_async_drop); one whose connection is ending too
// (ofconn_async_closed).
func (c *conn) sendAsync(m openflow.Message) {
	b, err := openflow.Encode(c.version, 0, m)
	if err != nil {
		connLog.Warn("bridge %s: encoding %T: %v", c.s.name, m, err)
		return
	}
	switch c.out.put(false, b) {
	case putFull:
		asyncDrops.Inc()
	case putClosed:
		asyncClosed.Inc()
	}
}

// sendError answers request with err, echoing its start.
func (c *conn) sendError(err error, request []byte, xid uint32) {
	connErrors.Inc()
	connLog.Dbg("bridge %s: OpenFlow error reply: %v", c.s.name, err)
	b, encErr := openflow.Encode(c.version, xid, openflow.ErrorFor(err, request))
	if encErr != nil {
		return
	}
	c.out.put(true, b)
}

// handle serves one message; a request that fails gets its error.
func (c *conn) handle(msg []byte) {
	h, m, err := openflow.Decode(msg)
	if err == nil && c.morePart(msg) {
		return
	}
	if err == nil && h.Version != c.version {
		if _, hello := m.(*openflow.Hello); !hello {
			err = &openflow.Error{Code: openflow.ErrBadVersion, Detail: "message version is not the negotiated one"}
		}
	}
	if err == nil {
		err = c.dispatch(h, m)
	}
	if err != nil {
		c.sendError(err, msg, h.Xid)
	}
}

// refuseSlave is the error for a message that changes the switch when
// it comes from a controller whose role is slave, as OVS 3.1 refuses
// them: OFPBRC_IS_SLAVE. (Roles are OpenFlow 1.2+: a 1.0 connection is
// never a slave.) Service connections (ovs-ofctl on the bridge's mgmt
// socket) have no role.
func (c *conn) refuseSlave() error {
	if !c.primary || c.role.Load() != roleSlave {
		return nil
	}
	return &openflow.Error{Code: openflow.ErrIsSlave, Detail: "the controller's role is slave"}
}

// morePart reports a 1.3 multipart request that says more parts follow
// (OFPMPF_REQ_MORE). OVS answers only the last part; gvs too, without
// keeping the earlier ones, since no request it serves needs their
// bodies joined.
func (c *conn) morePart(msg []byte) bool {
	const multipartRequest, reqMore = 18, 1
	if c.version == openflow.Version10 || len(msg) < 12 || msg[1] != multipartRequest {
		return false
	}
	if msg[11]&reqMore == 0 {
		return false
	}
	connMoreParts.Inc()
	return true
}

func (c *conn) dispatch(h openflow.Header, m openflow.Message) error {
	switch m.(type) {
	case *openflow.FlowMod, *openflow.GroupMod, *openflow.PortMod, *openflow.PacketOut,
		*openflow.BundleControl, *openflow.BundleAdd:
		if err := c.refuseSlave(); err != nil {
			return err
		}
	}
	switch m := m.(type) {
	case *openflow.Hello, *openflow.EchoReply, *openflow.ErrorMsg:
		return nil
	case *openflow.EchoRequest:
		c.send(h.Xid, &openflow.EchoReply{Data: m.Data})
	case *openflow.FeaturesRequest:
		c.send(h.Xid, c.features())
	case *openflow.GetConfigRequest:
		// The fragment mode is the bridge's; the other flags and
		// miss_send_len are the connection's own.
		flags := c.config.Flags&^ofproto.FragMask | uint16(c.s.bridge.FragMode())
		c.send(h.Xid, &openflow.GetConfigReply{Flags: flags, MissSendLen: c.config.MissSendLen})
	case *openflow.SetConfig:
		c.config = *m
		// A slave controller may not change the bridge's fragment mode;
		// reassembly is not implemented: the mode stays, which is what
		// ovs-ofctl set-frags reads back and reports, as from OVS.
		if !c.primary || c.role.Load() != roleSlave {
			mode := ofproto.FragMode(m.Flags & ofproto.FragMask)
			if !c.s.bridge.SetFragMode(mode) {
				connLog.WarnRL(connErrRL, "bridge %s: fragment handling mode %v is not supported", c.s.name, mode)
			}
		}
		c.async.Store(true)
		c.missSendLen.Store(uint32(m.MissSendLen))
		c.s.connsChanged()
	case *openflow.BarrierRequest:
		c.send(h.Xid, &openflow.BarrierReply{})
	case *openflow.SetFlowFormat:
		switch m.Format {
		case openflow.FlowFormatOpenFlow10:
			c.nxm = false
		case openflow.FlowFormatNXM:
			c.nxm = true
		default:
			return &openflow.Error{Code: openflow.ErrEPerm, Detail: "unknown flow format"}
		}
	case *openflow.FlowModTableID:
		c.tableIDExt = m.Set
	case *openflow.SetPacketInFormat:
		c.async.Store(true)
	case *openflow.SetControllerID:
		c.async.Store(true)
		c.ctlID.Store(uint32(m.ID))
	case *openflow.RoleRequest:
		if m.Role > roleSlave {
			return &openflow.Error{Code: openflow.ErrRoleBadRole, Detail: fmt.Sprintf("role %d", m.Role)}
		}
		reply, err := c.s.requestRole(c, m.Role, m.GenerationID)
		if err != nil {
			return err
		}
		c.send(h.Xid, reply)
	case *openflow.GetAsyncRequest:
		c.send(h.Xid, c.asyncCfg.Load().reply(c.version))
	case *openflow.SetAsync:
		c.setAsync(m)
	case *openflow.FlowMod:
		return c.flowMod(m)
	case *openflow.BundleControl:
		return c.bundleControl(h.Xid, m)
	case *openflow.BundleAdd:
		return c.bundleAdd(h, m)
	case *openflow.PacketOut:
		return c.packetOut(m)
	case *openflow.DescRequest:
		c.send(h.Xid, &openflow.DescReply{Mfr: "gvs", HW: "gvs", SW: "3.1.0 (gvs)", Serial: "None", DPDesc: "None"})
	case *openflow.FlowStatsRequest:
		return c.flowStats(h.Xid, m)
	case *openflow.AggregateStatsRequest:
		return c.aggregate(h.Xid, (*openflow.FlowStatsRequest)(m))
	case *openflow.TableStatsRequest:
		c.send(h.Xid, c.tableStats())
	case *openflow.PortStatsRequest:
		return c.portStats(h.Xid, m)
	case *openflow.PortDescRequest:
		ports := c.portDescs()
		if m.PortNo != openflow.PortAny {
			// 1.5 asks for one port; one the bridge lacks gets an empty
			// reply, as from OVS.
			ports = slices.DeleteFunc(ports, func(p openflow.PortDesc) bool { return p.PortNo != m.PortNo })
		}
		c.send(h.Xid, &openflow.PortDescReply{Ports: ports})
	case *openflow.QueueStatsRequest:
		return c.queueStats(h.Xid, m)
	case *openflow.TableDescRequest:
		c.send(h.Xid, tableDescs())
	case *openflow.TableFeaturesRequest:
		if len(m.Tables) > 0 {
			return &openflow.Error{Code: openflow.ErrTableFeaturesEPerm, Detail: "gvs does not change its tables' features"}
		}
		c.send(h.Xid, tableFeatures())
	case *openflow.PortMod:
		return c.portMod(m)
	case *openflow.GroupMod:
		return c.groupMod(m)
	case *openflow.GroupDescRequest:
		c.groupDescs(h.Xid, m)
	case *openflow.GroupStatsRequest:
		c.groupStats(h.Xid, m)
	case *openflow.GroupFeaturesRequest:
		c.send(h.Xid, groupFeatures(c.version))
	default:
		return &openflow.Error{Code: openflow.ErrBadType, Detail: "message not supported by a switch"}
	}
	return nil
}

func (c *conn) sendFlowRemoved(r ofproto.Removed, now time.Time) {
	f := r.Rule.Flow()
	st := r.Rule.Stats(now)
	reason := uint8(r.Reason)
	if r.Reason == ofproto.RemovedGroupDelete && c.version == openflow.Version10 {
		reason = uint8(ofproto.RemovedDelete) // 1.0 has no OFPRR_GROUP_DELETE
	}
	fr := &openflow.FlowRemoved{Cookie: f.Cookie, Priority: f.Priority, Reason: reason, TableID: f.Table,
		DurationSec: uint32(st.Duration / time.Second), DurationNsec: uint32(st.Duration % time.Second),
		IdleTimeout: f.IdleTimeout, HardTimeout: f.HardTimeout, PacketCount: st.Packets, ByteCount: st.Bytes}
	switch {
	case c.version != openflow.Version10:
		fr.Match = matchToWire(f.Match, true)
	case c.nxm:
		fr.NXM, fr.Match = true, matchToWire(f.Match, false)
	default:
		m10, ok := openflow.Match10FromFields(matchToWire(f.Match, false))
		if !ok {
			fr.NXM, fr.Match = true, matchToWire(f.Match, false)
		} else {
			fr.Match10 = m10
		}
	}
	c.sendAsync(fr)
}

// demoteMasters makes every other master connection a slave, as a new
// master does in OpenFlow, and tells each with a role status: from 1.4
// (OVS 3.1 sends none before), whatever its role status masks say, as
// OVS 3.1 sends it (TestRoleStatusDifferential).
func (s *Service) demoteMasters(master *conn) {
	s.mu.Lock()
	var demoted []*conn
	for c := range s.conns {
		if c != master && c.role.CompareAndSwap(roleMaster, roleSlave) {
			demoted = append(demoted, c)
		}
	}
	s.mu.Unlock()
	if len(demoted) == 0 {
		return
	}
	s.statusChanged()
	s.connsChanged() // a slave's masks are not a master's
	for _, c := range demoted {
		if c.version >= openflow.Version14 {
			c.sendAsync(&openflow.RoleStatus{Role: roleSlave, Reason: openflow.RoleStatusMasterRequest, GenerationID: s.electionID.Load()})
		}
	}
}

// portMod serves OFPT_PORT_MOD as OVS 3.1 does. OFPPC_PORT_DOWN brings
// the port's device down or up; the other config bits of the message's
// version (all of 1.0's; from 1.1 NO_RECV, NO_FWD and NO_PACKET_IN:
// ovs-ofctl's no-flood changes no bit there) are kept by the bridge,
// whose translation obeys them. Bits the version lacks are ignored, as
// by OVS. A change goes to the other connections as a port status.
func (c *conn) portMod(m *openflow.PortMod) error {
	p := c.s.info.Load().port(toFlowPort(m.PortNo))
	if p == nil {
		return &openflow.Error{Code: openflow.ErrPortModBadPort, Detail: fmt.Sprintf("port %d", m.PortNo)}
	}
	if m.HWAddr != p.HWAddr {
		return &openflow.Error{Code: openflow.ErrPortModBadHwAddr, Detail: fmt.Sprintf("port %d has another hardware address", m.PortNo)}
	}
	mask := m.Mask & portConfigBits(c.version)
	if mask == 0 {
		return nil
	}
	if mask&portConfigDown != 0 {
		if p.Dev == nil {
			return &openflow.Error{Code: openflow.ErrEPerm, Detail: fmt.Sprintf("port %d has no kernel device to bring up or down", m.PortNo)}
		}
		if di := p.Dev.Info(); di.Ifindex == 0 || di.Stale {
			return &openflow.Error{Code: openflow.ErrEPerm, Detail: fmt.Sprintf("port %d has no kernel device to bring up or down", m.PortNo)}
		}
	}
	c.s.bridge.ModPortConfig(p.OFPort, mask&^portConfigDown, m.Config)
	if mask&portConfigDown != 0 {
		if err := netdev.SetAdminUp(p.Dev.Name(), m.Config&portConfigDown == 0); err != nil {
			c.s.syncPorts(c, false, true) // the other bits did change
			return &openflow.Error{Code: openflow.ErrEPerm, Detail: err.Error()}
		}
	}
	c.s.syncPorts(c, false, true)
	return nil
}

// portConfigBits are the port config bits of version v: 1.1 dropped
// NO_STP, NO_RECV_STP and NO_FLOOD.
func portConfigBits(v uint8) uint32 {
	if v == openflow.Version10 {
		return portConfigDown | ofproto.PortConfigBits
	}
	return portConfigDown | ofproto.PortNoRecv | ofproto.PortNoFwd | ofproto.PortNoPacketIn
}
