package connmgr

import (
	"errors"
	"fmt"
	"sort"
	"time"
	"unsafe"

	"gvs/internal/flow"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// Features OVS 3.1 reports (ovs-ofctl show prints them).
const (
	capabilities10 = 0xc7   // FLOW_STATS TABLE_STATS PORT_STATS QUEUE_STATS ARP_MATCH_IP
	capabilities13 = 0x4f   // FLOW_STATS TABLE_STATS PORT_STATS GROUP_STATS QUEUE_STATS
	capBundles     = 1 << 9 // OFPC14_BUNDLES, from 1.4
	actions10      = 0xfff  // every OpenFlow 1.0 action
	numTables      = 254
	// hiddenTable is the table after the ones a switch reports, which
	// OVS reserves for itself.
	hiddenTable = numTables
)

// OpenFlow port config and state bits.
const (
	portConfigDown = 1 << 0
	portStateDown  = 1 << 0
	portStateLive  = 1 << 2 // 1.3 only
)

func (c *conn) features() *openflow.FeaturesReply {
	info := c.s.info.Load()
	r := &openflow.FeaturesReply{DatapathID: info.DatapathID, NTables: numTables, Capabilities: capabilities13}
	if c.version == openflow.Version10 {
		r.Capabilities, r.Actions, r.Ports = capabilities10, actions10, c.portDescs()
	}
	if c.version >= openflow.Version14 {
		r.Capabilities |= capBundles
	}
	return r
}

func (c *conn) portDescs() []openflow.PortDesc {
	info := c.s.info.Load()
	out := make([]openflow.PortDesc, 0, len(info.Ports))
	for i := range info.Ports {
		v := viewOf(&info.Ports[i], true, nil, nil)
		v.config = c.s.bridge.PortConfig(v.no)
		out = append(out, v.desc(c.version))
	}
	// LOCAL last, as OVS lists it after the numbered ports in 1.0's show.
	sort.SliceStable(out, func(i, j int) bool { return out[i].PortNo < out[j].PortNo })
	return out
}

// portFeatures converts a link's speed, duplex and medium to the port
// feature bits of version v (1.0 has no bits above 10 Gb/s).
func portFeatures(m netdev.LinkMode, v uint8) uint32 {
	type rate struct {
		mbps     uint32
		half     uint32
		full     uint32
		onlyOF13 bool
	}
	var f uint32
	for _, r := range []rate{{10, 1 << 0, 1 << 1, false}, {100, 1 << 2, 1 << 3, false}, {1000, 1 << 4, 1 << 5, false},
		{10000, 0, 1 << 6, false}, {40000, 0, 1 << 7, true}, {100000, 0, 1 << 8, true}, {1000000, 0, 1 << 9, true}} {
		if m.SpeedMbps != r.mbps || r.onlyOF13 && v == openflow.Version10 {
			continue
		}
		if m.FullDuplex {
			f |= r.full
		} else {
			f |= r.half
		}
	}
	copper, fibre, autoneg := uint32(1<<7), uint32(1<<8), uint32(1<<9)
	if v != openflow.Version10 {
		copper, fibre, autoneg = 1<<11, 1<<12, 1<<13
		if f == 0 && m.SpeedMbps != 0 {
			f |= 1 << 10 // OFPPF_OTHER
		}
	}
	if m.Fibre {
		f |= fibre
	} else {
		f |= copper
	}
	if m.Autoneg {
		f |= autoneg
	}
	return f
}

// tableOf gives the table a flow mod names: without the table-id
// extension, OpenFlow 1.0 adds to table 0 and modifies or deletes in all.
func (c *conn) tableOf(m *openflow.FlowMod) uint8 {
	if c.version == openflow.Version10 && !c.tableIDExt {
		if m.Command == openflow.FlowAdd {
			return 0
		}
		return ofproto.TableAll
	}
	return m.TableID
}

// decodeFlow converts a flow mod's match and actions to the model. The
// whole flow is checked before anything changes, so a bad flow mod
// leaves the tables as they were.
func (c *conn) decodeFlow(m *openflow.FlowMod) (*flow.Flow, error) {
	fields := m.Match
	if c.version == openflow.Version10 && !m.NXM {
		fields = m.Match10.Fields()
	}
	match, err := matchFromWire(fields)
	if err != nil {
		return nil, err
	}
	var acts []flow.Action
	if c.version == openflow.Version10 {
		acts, err = actionsFromWire(m.Actions, c.version)
	} else {
		acts, err = instructionsFromWire(m.Instructions)
	}
	if err != nil {
		return nil, err
	}
	f := &flow.Flow{Table: c.tableOf(m), Priority: m.Priority, Cookie: m.Cookie, CookieMask: m.CookieMask,
		IdleTimeout: m.IdleTimeout, HardTimeout: m.HardTimeout, Importance: m.Importance, Match: match, Actions: acts,
		Flags: flow.FlowFlags{SendFlowRem: m.Flags&openflow.FlagSendFlowRem != 0, CheckOverlap: m.Flags&openflow.FlagCheckOverlap != 0,
			ResetCounts: m.Flags&openflow.FlagResetCounts != 0, NoPacketCounts: m.Flags&openflow.FlagNoPktCounts != 0,
			NoByteCounts: m.Flags&openflow.FlagNoBytCounts != 0}}
	if c.version == openflow.Version10 && m.Command == openflow.FlowAdd {
		// OpenFlow 1.0 has no flag for it: its add always starts the
		// counters again, even when it replaces a flow. OVS records that
		// as reset_counts, which a 1.3 dump-flows shows.
		f.Flags.ResetCounts = true
	}
	if err := c.checkActions(f); err != nil {
		return f, err
	}
	// A flow may not name a group that does not exist (a bucket may);
	// in a bundle, the commit checks (ofproto.Groups.Commit).
	if c.bundling {
		return f, nil
	}
	if err := c.s.bridge.Groups.CheckActions(f.Actions); err != nil {
		return f, &openflow.Error{Code: openflow.ErrActBadOutGroup, Detail: err.Error()}
	}
	return f, nil
}

// checkActions refuses what OVS refuses when a flow is added: goto_table
// or resubmit to a table that does not exist, outputs to ports OpenFlow
// does not allow.
func (c *conn) checkActions(f *flow.Flow) error {
	if err := flow.CheckConjunctions(f.Actions); err != nil {
		return &openflow.Error{Code: openflow.ErrActBadConjunction, Detail: err.Error()}
	}
	for _, a := range f.Actions {
		switch a := a.(type) {
		case flow.GotoTable:
			if a.Table <= f.Table && f.Table != ofproto.TableAll || a.Table >= ofproto.NumTables {
				return &openflow.Error{Code: openflow.ErrInstBadTableID, Detail: fmt.Sprintf("goto_table:%d from table %d", a.Table, f.Table)}
			}
		case flow.Output:
			if a.Port == flow.PortNone { // port 0 is a port number like any other (none has it), as in OVS
				return &openflow.Error{Code: openflow.ErrActBadOutPort, Detail: fmt.Sprintf("output to port %d", a.Port)}
			}
		}
	}
	return nil
}

func (c *conn) flowMod(m *openflow.FlowMod) error {
	op, err := c.flowModOp(m)
	switch {
	case err != nil:
		return err
	case op.Add != nil:
		return tableError(c.s.tables.Add(op.Add))
	case op.Modify != nil:
		_, err := c.s.tables.Modify(*op.Modify)
		return tableError(err)
	case op.Delete != nil:
		c.s.flowsRemoved(c.s.tables.Delete(*op.Delete))
	}
	return nil
}

// flowModOp checks a flow mod and returns the change it makes (none
// for a delete in the hidden table), for flowMod to apply now or a
// bundle at its commit.
func (c *conn) flowModOp(m *openflow.FlowMod) (ofproto.Op, error) {
	var none ofproto.Op
	if m.BufferID != openflow.NoBuffer && m.Command <= openflow.FlowModifyStrict {
		return none, &openflow.Error{Code: openflow.ErrBufferUnknown, Detail: "gvs buffers no packets"}
	}
	switch m.Command {
	case openflow.FlowAdd, openflow.FlowModify, openflow.FlowModifyStrict, openflow.FlowDelete, openflow.FlowDeleteStrict:
	default:
		return none, &openflow.Error{Code: openflow.ErrFlowBadCommand, Detail: fmt.Sprintf("command %d", m.Command)}
	}
	// The cookie a modify or delete selects by: OpenFlow 1.3's
	// cookie/cookie_mask, NXM_NX_COOKIE in an NXM match (1.0 has no
	// other way). A 1.0 message's cookie field is the cookie to give
	// (all ones: keep the cookies as they are); a 1.3 modify never
	// changes a cookie, as in OVS.
	selCookie, selMask := m.Cookie, m.CookieMask
	if c.version == openflow.Version10 {
		selCookie, selMask = 0, 0
		if m.NXM {
			nm := *m
			nm.Match, selCookie, selMask = nxmCookie(m.Match)
			if selMask != 0 && m.Command == openflow.FlowAdd {
				return none, &openflow.Error{Code: openflow.ErrNXMInvalid, Detail: "a cookie match in a flow add"}
			}
			m = &nm
		}
	}
	f, err := c.decodeFlow(m)
	if err != nil {
		return none, err
	}
	if f.Table == ofproto.TableAll && (m.Command == openflow.FlowAdd || c.version != openflow.Version10 && m.Command != openflow.FlowDelete && m.Command != openflow.FlowDeleteStrict) {
		return none, &openflow.Error{Code: openflow.ErrFlowBadTableID, Detail: "table 255 names every table, not one to add to"}
	}
	if f.Table != ofproto.TableAll && f.Table >= ofproto.NumTables {
		return none, &openflow.Error{Code: openflow.ErrFlowBadTableID, Detail: fmt.Sprintf("table %d", f.Table)}
	}
	if f.Table == hiddenTable {
		// OVS keeps its own flows in its last table: an add or modify
		// there is refused, a delete finds nothing to delete. gvs does
		// the same, so that a controller sees the same switch.
		if m.Command == openflow.FlowDelete || m.Command == openflow.FlowDeleteStrict {
			return none, nil
		}
		return none, &openflow.Error{Code: openflow.ErrEPerm, Detail: fmt.Sprintf("table %d is read-only", f.Table)}
	}
	sel := ofproto.Selector{Table: f.Table, Match: f.Match, Priority: f.Priority, Cookie: selCookie & selMask, CookieMask: selMask,
		OutPort: toFlowPort(m.OutPort), Strict: m.Command == openflow.FlowModifyStrict || m.Command == openflow.FlowDeleteStrict}
	sel.ByGroup, sel.OutGroup = outGroup(c.version, m.OutGroup)
	switch m.Command {
	case openflow.FlowAdd:
		return ofproto.Op{Add: f}, nil
	case openflow.FlowModify, openflow.FlowModifyStrict:
		mod := ofproto.Modify{Selector: sel, Actions: f.Actions, ResetCounts: f.Flags.ResetCounts}
		if c.version == openflow.Version10 && m.Cookie != ^uint64(0) {
			mod.SetCookie, mod.NewCookie = true, m.Cookie
			if selMask == 0 {
				// A 1.0 modify that matches nothing adds the flow,
				// unless it selects by cookie.
				add := *f
				add.CookieMask = 0
				if add.Table == ofproto.TableAll {
					add.Table = 0
				}
				mod.AddIfNone = &add
			}
		}
		return ofproto.Op{Modify: &mod}, nil
	}
	return ofproto.Op{Delete: &sel}, nil
}

func tableError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ofproto.ErrOverlap):
		return &openflow.Error{Code: openflow.ErrFlowOverlap, Detail: err.Error()}
	case errors.Is(err, ofproto.ErrTableFull):
		return &openflow.Error{Code: openflow.ErrFlowTableFull, Detail: err.Error()}
	case errors.Is(err, ofproto.ErrBadTable):
		return &openflow.Error{Code: openflow.ErrFlowBadTableID, Detail: err.Error()}
	case errors.Is(err, ofproto.ErrBadConjunction):
		return &openflow.Error{Code: openflow.ErrActBadConjunction, Detail: err.Error()}
	case errors.Is(err, ofproto.ErrBadOutGroup):
		return &openflow.Error{Code: openflow.ErrActBadOutGroup, Detail: err.Error()}
	}
	return &openflow.Error{Code: openflow.ErrFlowUnknown, Detail: err.Error()}
}

// selector converts a flow or aggregate stats request.
func (c *conn) selector(m *openflow.FlowStatsRequest) (ofproto.Selector, error) {
	fields, cookie, cookieMask := m.Match, m.Cookie, m.CookieMask
	if c.version == openflow.Version10 {
		if m.NXM {
			fields, cookie, cookieMask = nxmCookie(fields) // 1.0 selects by cookie only this way
		} else {
			fields, cookie, cookieMask = m.Match10.Fields(), 0, 0
		}
	}
	match, err := matchFromWire(fields)
	if err != nil {
		return ofproto.Selector{}, err
	}
	if m.TableID != ofproto.TableAll && m.TableID >= ofproto.NumTables {
		return ofproto.Selector{}, &openflow.Error{Code: openflow.ErrBadTableID, Detail: fmt.Sprintf("table %d", m.TableID)}
	}
	sel := ofproto.Selector{Table: m.TableID, Match: match, Cookie: cookie & cookieMask, CookieMask: cookieMask,
		OutPort: toFlowPort(m.OutPort)}
	sel.ByGroup, sel.OutGroup = outGroup(c.version, m.OutGroup)
	return sel, nil
}

// outGroup reads a 1.1+ request's out_group: a group to select flows
// by, unless OFPG_ANY (or another reserved id).
func outGroup(v uint8, g uint32) (bool, uint32) {
	return v != openflow.Version10 && g <= openflow.GroupMax, g
}

// dumpBatch is how many flows a flow dump converts and encodes at a
// time.
const dumpBatch = 64

// flowStats streams the selected flows' stats: a batch of flows at a
// time is encoded and queued, waiting while the peer is behind (as any
// reply does), so a dump of a million flows holds at most a
// connection's budget of encoded messages (outBudget) instead of all of
// them. The snapshot of the selected flows it works from (a pointer and
// the counters per flow) is charged to the shared budget while the
// dump runs; when that budget cannot take it, the request is refused.
func (c *conn) flowStats(xid uint32, m *openflow.FlowStatsRequest) error {
	sel, err := c.selector(m)
	if err != nil {
		return err
	}
	dump := c.s.tables.Dump(sel)
	held := len(dump) * int(unsafe.Sizeof(ofproto.FlowStats{}))
	if !c.out.charge.reserve(held) {
		dumpRefused.Inc()
		err := &openflow.Error{Code: openflow.ErrEPerm, Detail: fmt.Sprintf(
			"a dump of %d flows refused: the OpenFlow output memory (%d MiB for all connections) is full, try again", len(dump), outMemBudget.Load()>>20)}
		connLog.InfoRL(connErrRL, "bridge %s: %s", c.s.name, err.Detail)
		return err
	}
	defer c.out.charge.add(-held)
	nxm := c.version == openflow.Version10 && m.NXM
	e := &openflow.ReplyEncoder{Version: c.version, Xid: xid}
	for first := true; first || len(dump) > 0; first = false {
		batch := dump[:min(len(dump), dumpBatch)]
		r := &openflow.FlowStatsReply{NXM: nxm, Flows: make([]openflow.FlowStats, 0, len(batch))}
		for _, d := range batch {
			r.Flows = append(r.Flows, c.flowStatsEntry(d, nxm))
		}
		clear(batch) // flows deleted meanwhile need not stay alive
		dump = dump[len(batch):]
		bs, err := e.Add(r)
		if err != nil {
			return err
		}
		if !c.putEach(bs) {
			return nil // the connection is ending
		}
	}
	c.noteSkipped(e.Skipped, &openflow.FlowStatsReply{})
	c.putEach([][]byte{e.Finish()})
	return nil
}

func (c *conn) flowStatsEntry(d ofproto.FlowStats, nxm bool) openflow.FlowStats {
	f, st := d.Flow, d.Stats
	// Durations in milliseconds, and NXST ages plus one (0: unknown),
	// as OVS reports them, so that ovs-ofctl prints the same text.
	dur := st.Duration.Truncate(time.Millisecond)
	fs := openflow.FlowStats{TableID: f.Table, DurationSec: uint32(dur / time.Second),
		DurationNsec: uint32(dur % time.Second), Priority: f.Priority, IdleTimeout: f.IdleTimeout,
		HardTimeout: f.HardTimeout, IdleAge: uint16(min(st.IdleAge+1, 0xffff)), HardAge: uint16(min(st.HardAge+1, 0xffff)),
		Cookie: f.Cookie, PacketCount: st.Packets, ByteCount: st.Bytes}
	acts, gotoTable := actionsToWire(f.Actions, c.version)
	switch {
	case c.version != openflow.Version10:
		fs.Match = matchToWire(f.Match, true)
		fs.Flags = flowFlags(f.Flags)
		if c.version >= openflow.Version14 {
			fs.Importance = f.Importance
		}
		if c.version >= openflow.Version15 {
			// OXS's idle time is the age itself, not NXST's age plus one.
			fs.IdleAge = uint16(min(st.IdleAge, 0xffff))
		}
		if len(acts) > 0 {
			fs.Instructions = append(fs.Instructions, openflow.ApplyActions{Actions: acts})
		}
		if gotoTable != nil {
			fs.Instructions = append(fs.Instructions, openflow.GotoTable{Table: *gotoTable})
		}
	case nxm:
		fs.Match, fs.Actions = matchToWire(f.Match, false), acts
	default:
		fs.Match10, _ = openflow.Match10FromFields(matchToWire(f.Match, false))
		fs.Actions = acts
	}
	return fs
}

func flowFlags(f flow.FlowFlags) uint16 {
	var v uint16
	for _, b := range []struct {
		on  bool
		bit uint16
	}{{f.SendFlowRem, openflow.FlagSendFlowRem}, {f.CheckOverlap, openflow.FlagCheckOverlap},
		{f.ResetCounts, openflow.FlagResetCounts}, {f.NoPacketCounts, openflow.FlagNoPktCounts}, {f.NoByteCounts, openflow.FlagNoBytCounts}} {
		if b.on {
			v |= b.bit
		}
	}
	return v
}

func (c *conn) aggregate(xid uint32, m *openflow.FlowStatsRequest) error {
	sel, err := c.selector(m)
	if err != nil {
		return err
	}
	a := c.s.tables.Aggregate(sel)
	c.send(xid, &openflow.AggregateStatsReply{NXM: c.version == openflow.Version10 && m.NXM,
		PacketCount: a.Packets, ByteCount: a.Bytes, FlowCount: uint32(a.Flows)})
	return nil
}

// tableDescs answers a 1.4 table description request as OVS 3.1 does:
// every table with config 0 and an eviction property whose flags say
// other factors, importance and lifetime (OFPTMPEF14_*); gvs evicts no
// flows, and OVS evicts only from tables configured to.
func tableDescs() *openflow.TableDescReply {
	r := &openflow.TableDescReply{}
	for i := range numTables {
		r.Tables = append(r.Tables, openflow.TableDesc{TableID: uint8(i),
			Props: []openflow.Prop{{Type: openflow.TablePropEviction, Data: []byte{0, 0, 0, 7}}}})
	}
	return r
}

func (c *conn) tableStats() *openflow.TableStatsReply {
	counts := make([]uint32, numTables)
	tc, _ := c.s.tables.Counts() // not a dump of every flow, to count them
	for _, n := range tc {
		if int(n.Table) < numTables {
			counts[n.Table] = uint32(n.Flows)
		}
	}
	r := &openflow.TableStatsReply{}
	for i := range numTables {
		r.Tables = append(r.Tables, openflow.TableStats{TableID: uint8(i), Wildcards: 0x3fffff,
			MaxEntries: ofproto.DefaultMaxFlows, ActiveCount: counts[i]})
	}
	return r
}

// queueStats answers a queue stats request: gvs has no queues, so the
// reply to one for all queues lists none, as OVS's for ports without
// QoS; as in OVS, a port the bridge does not have is OFPQOFC_BAD_PORT
// and a queue of its own number OFPQOFC_BAD_QUEUE.
func (c *conn) queueStats(xid uint32, m *openflow.QueueStatsRequest) error {
	if m.PortNo != openflow.PortAny && m.PortNo != openflow.PortAll {
		found := false
		for _, p := range c.s.info.Load().Ports {
			found = found || toWirePort(p.OFPort) == m.PortNo
		}
		if !found {
			return &openflow.Error{Code: openflow.ErrQueueBadPort, Detail: fmt.Sprintf("port %d", m.PortNo)}
		}
	}
	if m.QueueID != openflow.QueueAll {
		return &openflow.Error{Code: openflow.ErrQueueBadQueue, Detail: fmt.Sprintf("queue %d: gvs has no queues", m.QueueID)}
	}
	c.send(xid, &openflow.QueueStatsReply{})
	return nil
}

func (c *conn) portStats(xid uint32, m *openflow.PortStatsRequest) error {
	info := c.s.info.Load()
	r := &openflow.PortStatsReply{}
	d := time.Since(c.s.start).Truncate(time.Millisecond) // OVS counts in milliseconds
	for _, p := range info.Ports {
		no := toWirePort(p.OFPort)
		if m.PortNo != openflow.PortAny && m.PortNo != no {
			continue
		}
		ps := openflow.PortStats{PortNo: no, DurationSec: uint32(d / time.Second), DurationNsec: uint32(d % time.Second)}
		if p.Dev != nil {
			s := p.Dev.Stats()
			ps.RxPackets, ps.RxBytes, ps.RxDropped, ps.RxErrors = s.RxPackets, s.RxBytes, s.RxDropped, s.RxErrors
			ps.TxPackets, ps.TxBytes, ps.TxDropped, ps.TxErrors = s.TxPackets, s.TxBytes, s.TxDropped, s.TxErrors
		}
		r.Ports = append(r.Ports, ps)
	}
	// A port that does not exist gets an empty reply, as from OVS.
	// LOCAL first, then by number, as OVS lists them.
	sort.Slice(r.Ports, func(i, j int) bool {
		a, b := r.Ports[i].PortNo, r.Ports[j].PortNo
		if (a >= openflow.PortMax) != (b >= openflow.PortMax) {
			return a >= openflow.PortMax
		}
		return a < b
	})
	c.send(xid, r)
	return nil
}

// packetOut executes a packet-out: its frame runs through its actions
// as a rule's actions would, through the flow tables too (TABLE,
// resubmit, goto_table, NORMAL), as if it had been received on its
// in_port (CONTROLLER or NONE: no port), by the datapath, mirrors
// included. An action gvs cannot execute is an error and nothing is
// sent.
func (c *conn) packetOut(m *openflow.PacketOut) error {
	if m.BufferID != openflow.NoBuffer {
		return &openflow.Error{Code: openflow.ErrBufferUnknown, Detail: "gvs buffers no packets"}
	}
	if len(m.Data) < 14 {
		return &openflow.Error{Code: openflow.ErrBadPacket, Detail: "packet-out frame shorter than an Ethernet header"}
	}
	if len(m.Match) > 0 {
		// A 1.5 packet-out may set pipeline fields (metadata, registers,
		// tunnel) in its match; gvs takes in_port only.
		return &openflow.Error{Code: openflow.ErrMatchBadField, Detail: "gvs takes only in_port in a packet-out match"}
	}
	acts, err := actionsFromWire(m.Actions, c.version)
	if err != nil {
		return err
	}
	for _, a := range acts {
		if o, ok := a.(flow.Output); ok && (o.Port == flow.PortNone || o.Port == 0) {
			return &openflow.Error{Code: openflow.ErrActBadOutPort, Detail: fmt.Sprintf("output to port %d", o.Port)}
		}
	}
	if err := c.s.bridge.Groups.CheckActions(acts); err != nil {
		return &openflow.Error{Code: openflow.ErrActBadOutGroup, Detail: err.Error()}
	}
	inPort := toFlowPort(m.InPort)
	exec := c.s.exec.Load()
	if exec == nil {
		return &openflow.Error{Code: openflow.ErrEPerm, Detail: "the bridge has no datapath"}
	}
	tr, dpPort, err := c.s.bridge.PacketOut(inPort, acts)
	if err != nil {
		if c.s.info.Load().port(inPort) == nil && inPort != flow.PortController && inPort != flow.PortNone {
			return &openflow.Error{Code: openflow.ErrBadPort, Detail: err.Error()}
		}
		return &openflow.Error{Code: openflow.ErrActBadType, Detail: err.Error()}
	}
	if err := (*exec).Execute(m.Data, dpPort, tr); err != nil {
		return &openflow.Error{Code: openflow.ErrBadPacket, Detail: err.Error()}
	}
	return nil
}
