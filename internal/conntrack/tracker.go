package conntrack

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/packet"
)

// Timeouts are the connection timeouts, in nanoseconds, by protocol and
// (for TCP) state. DefaultTimeouts gives the Linux kernel's defaults.
type Timeouts struct {
	TCP        [tcpNumStates]int64 // by state (TCPNone unused)
	TCPRetrans int64               // after 3 retransmissions without an answer
	TCPUnack   int64               // while data is unacknowledged
	UDP        int64               // unreplied, or replied but younger than 2 s
	UDPStream  int64               // replied and older than 2 s
	ICMP       int64               // ICMP and ICMPv6 exchanges
	Generic    int64               // other IP protocols
}

// DefaultTimeouts returns the kernel's default timeouts
// (net.netfilter.nf_conntrack_*_timeout*).
func DefaultTimeouts() Timeouts {
	s := int64(time.Second)
	var t Timeouts
	t.TCP[TCPSynSent] = 120 * s
	t.TCP[TCPSynRecv] = 60 * s
	t.TCP[TCPEstablished] = 5 * 24 * 3600 * s
	t.TCP[TCPFinWait] = 120 * s
	t.TCP[TCPCloseWait] = 60 * s
	t.TCP[TCPLastAck] = 30 * s
	t.TCP[TCPTimeWait] = 120 * s
	t.TCP[TCPClose] = 10 * s
	t.TCP[TCPSynSent2] = 120 * s
	t.TCPRetrans = 300 * s
	t.TCPUnack = 300 * s
	t.UDP = 30 * s
	t.UDPStream = 120 * s
	t.ICMP = 30 * s
	t.Generic = 600 * s
	return t
}

// udpStreamDelay: a replied UDP flow still active this long after its
// first packet is a stream (the kernel's 2 s).
const udpStreamDelay = 2 * int64(time.Second)

// Config configures a Tracker.
type Config struct {
	// Shards is the number of independently locked parts of the table, a
	// power of two; 0 means 64.
	Shards int
	// MaxConns is the global limit on committed connections; 0 means
	// DefaultMaxConns.
	MaxConns uint32
	// Timeouts nil means DefaultTimeouts.
	Timeouts *Timeouts
	// Clock is the monotonic time in nanoseconds that Execute's now
	// comes from; Dump uses it for the remaining timeouts. nil means
	// Monotonic.
	Clock func() int64
}

var clockBase = time.Now()

// Monotonic returns the nanoseconds since the process started, from the
// monotonic clock: the default Config.Clock.
func Monotonic() int64 { return int64(time.Since(clockBase)) }

// DefaultMaxConns is the global limit when Config.MaxConns is 0 (OVS's
// userspace default).
const DefaultMaxConns = 3000000

// Stats are the tracker's counters.
type Stats struct {
	Conns      uint64            // committed connections now
	ByProto    map[string]uint64 // live connections by protocol name (tcp, udp, icmp, icmpv6, other)
	Committed  uint64            // connections committed since start
	Expired    uint64            // connections removed by timeout
	Invalid    uint64            // packets found +inv
	LimitDrops uint64            // commits refused by the global or a zone limit
	NATFailed  uint64            // NAT commits that found no free tuple
}

// Tracker is the connection table. All methods are safe for concurrent use.
type Tracker struct {
	shards    []shard
	shardBits uint
	clock     func() int64
	seed      uint64
	timeouts  atomic.Pointer[timeoutCfg]
	limits    atomic.Pointer[limitCfg]
	maxConns  atomic.Uint32
	// noSeqCheck turns the TCP window checks off, as the kernel's
	// nf_conntrack_tcp_be_liberal=1 (dpctl/ct-disable-tcp-seq-chk).
	noSeqCheck atomic.Bool
	count      atomic.Int64
	zoneCount  []atomic.Int32 // by zone: 65536 entries
	byProto    [256]atomic.Int64
	committed  atomic.Uint64
	expired    atomic.Uint64
	invalid    atomic.Uint64
	limitDrop  atomic.Uint64
	natFail    atomic.Uint64
	natMu      sync.Mutex // serialises NAT commits (see nat.go)
	exp        expectTable
}

type timeoutCfg struct {
	def   Timeouts
	zones map[uint16]*Timeouts
}

type limitCfg struct {
	def   uint32
	zones map[uint16]uint32
}

// New returns an empty tracker.
func New(cfg Config) *Tracker {
	n := cfg.Shards
	if n <= 0 {
		n = 64
	}
	n = min(n, maxShards)
	bitsN := uint(0)
	for 1<<bitsN < n {
		bitsN++
	}
	t := &Tracker{shards: make([]shard, 1<<bitsN), shardBits: bitsN, zoneCount: make([]atomic.Int32, 65536)}
	var b [8]byte
	_, _ = rand.Read(b[:])
	t.seed = binary.LittleEndian.Uint64(b[:]) | 1
	tm := DefaultTimeouts()
	if cfg.Timeouts != nil {
		tm = *cfg.Timeouts
	}
	t.timeouts.Store(&timeoutCfg{def: tm})
	t.limits.Store(&limitCfg{})
	mc := cfg.MaxConns
	if mc == 0 {
		mc = DefaultMaxConns
	}
	t.maxConns.Store(mc)
	t.clock = cfg.Clock
	if t.clock == nil {
		t.clock = Monotonic
	}
	return t
}

func (t *Tracker) shardIdx(h uint64) int {
	if t.shardBits == 0 {
		return 0
	}
	return int(h >> (64 - t.shardBits))
}

func (t *Tracker) timeoutsFor(zone uint16) *Timeouts {
	c := t.timeouts.Load()
	if len(c.zones) != 0 {
		if z, ok := c.zones[zone]; ok {
			return z
		}
	}
	return &c.def
}

// Execute runs one ct() action on a packet: it finds or creates the
// packet's connection, updates its state and returns the ct_* fields.
// key and off come from packet.Parse of frame; key's ct_* fields are the
// ones of a previous ct() of the same packet (zero when ct_clear'ed or
// never tracked), which tells a recirculated packet, already run through
// the state machine in this zone, from a fresh one. now is monotonic
// time in nanoseconds.
func (t *Tracker) Execute(frame []byte, key *packet.Key, off *packet.Offsets, a *Action, now int64) Result {
	r := Result{State: StateTrk, Zone: a.Zone}
	var p pkt
	if extract(frame, key, off, &p) != extOK {
		return t.invalidResult(r)
	}
	var pending conn
	r, nat := t.execute(frame, key, off, &p, a, r, now, &pending)
	if !nat {
		return r
	}
	// A new connection to commit with NAT: its reply tuple is chosen
	// under locks of its own (see commitNAT).
	res, retry := t.commitNAT(frame, off, &p, a, r, &pending, now)
	if retry {
		// The connection appeared meanwhile: track the packet in it.
		res, _ = t.execute(frame, key, off, &p, a, Result{State: StateTrk, Zone: a.Zone}, now, nil)
	}
	return res
}

// execute tracks a packet under its shards' locks. nat true: the packet
// opens a connection to commit with NAT, left in pending (nil pending:
// never, the packet is tracked uncommitted instead).
func (t *Tracker) execute(frame []byte, key *packet.Key, off *packet.Offsets, p *pkt, a *Action, r Result, now int64, pending *conn) (Result, bool) {
	cached := key.CtState&StateTrk != 0 && key.CtState&StateInv == 0 && key.CtZone == a.Zone
	tup := &p.tup
	var origTup ctuple
	if cached && key.CtState&(StateSNAT|StateDNAT) != 0 && !isICMP(p.proto) {
		// The earlier ct() translated the packet: find the connection by
		// the original tuple it reported.
		origTup = origFromKey(key, p.v6)
		tup = &origTup
	}
	h := t.hash(a.Zone, p.proto, tup, isICMP(p.proto))
	si := t.shardIdx(h)
	var held lockSet
	held.add(si)
	f := t.lockAndFind(si, h, a.Zone, p, tup, &held)
	defer t.unlockAll(&held)
	c, dir := f.c, f.dir
	if tup == &origTup && c != nil && key.CtState&StateRpl != 0 {
		dir = 1
	}
	if c != nil && c.expires <= now {
		t.removeLocked(f.home, f.ci, c)
		t.expired.Add(1)
		c = nil
	}
	if p.icmpErr {
		if c == nil {
			return t.invalidResult(r), false
		}
		r.State |= StateRel
		if dir == 1 {
			r.State |= StateRpl
		}
		if a.HasNAT && !(cached && key.CtState&(StateSNAT|StateDNAT) != 0) {
			natICMPError(frame, off, p.v6, c, dir, &r)
		}
		return t.finish(r, c, a), false
	}
	if c != nil && a.Force && a.Commit && dir == 1 {
		// force: a connection seen from the other side is ended and this
		// packet starts a new one.
		t.removeLocked(f.home, f.ci, c)
		c = nil
	}
	if c != nil && cached {
		r.State = key.CtState
		var nt natTarget
		if key.CtState&(StateSNAT|StateDNAT) == 0 && a.HasNAT {
			nt = natTargetOf(c, dir)
			t.natApply(frame, off, p, &nt, &r)
		}
		if c.alg != ALGNone || c.status&stSeqAdj != 0 {
			t.algPacket(frame, off, p, c, dir, nt.valid, &r, now)
		}
		return t.finish(r, c, a), false
	}
	if c != nil {
		// The translation is read before the update, which may end the
		// connection (an RST) while its packet still needs translating.
		var nt natTarget
		if a.HasNAT {
			nt = natTargetOf(c, dir)
		}
		var ok bool
		if r, ok = t.update(f.home, f.ci, c, dir, p, r, now); ok {
			if r.State&StateInv == 0 {
				t.natApply(frame, off, p, &nt, &r)
				// c is gone (zeroed) when the packet ended it.
				if c.expires != 0 && (c.alg != ALGNone || c.status&stSeqAdj != 0) {
					t.algPacket(frame, off, p, c, dir, nt.valid, &r, now)
				}
			}
			return r, false
		}
		// The connection was ended (a SYN reopening it): track anew.
		r = Result{State: StateTrk, Zone: a.Zone}
	}
	if cached && a.Commit && key.CtState&(StateNew|StateRel) == StateNew && !t.admit(a.Zone) {
		// The earlier ct() of this packet in this zone found it a valid
		// new connection, and none appeared since: at the limit the
		// commit is refused without running the state machine again (a
		// SYN flood's packets take this way through S7's flows). An
		// expected connection (+rel) takes the long way, which consumes
		// its expectation as before.
		r.State |= StateNew
		setOrig(&r, &p.tup, p.proto, p.v6)
		return t.refused(r), false
	}
	return t.newConn(si, h, p, a, r, now, pending)
}

// lockAndFind locks shard si (and whatever other shards the connection
// found needs: a NATed connection's two index entries and its home) and
// looks tup up. held ends with every shard locked.
func (t *Tracker) lockAndFind(si int, h uint64, zone uint16, p *pkt, tup *ctuple, held *lockSet) found {
	t.lockAll(held)
	for range 4 {
		f := t.lookup(si, h, zone, p.proto, p.v6, tup, held)
		more := -1
		if f.need >= 0 {
			more = f.need
		} else if f.c != nil && f.c.status&stNAT != 0 && !held.has(int(f.c.rshard)) {
			more = int(f.c.rshard)
		}
		if more < 0 {
			return f
		}
		t.unlockAll(held)
		if !held.add(more) {
			t.lockAll(held)
			return found{need: -1}
		}
		t.lockAll(held)
	}
	return found{need: -1}
}

func (t *Tracker) invalidResult(r Result) Result {
	t.invalid.Add(1)
	r.State |= StateInv
	return r
}

// update runs a packet of existing connection c through its protocol's
// state machine. ok false: the connection is gone and the packet must be
// tracked as new.
func (t *Tracker) update(home int, ci uint32, c *conn, dir int, p *pkt, r Result, now int64) (Result, bool) {
	// The ct_state of the packet depends on what was seen before it.
	// An expected connection is +rel for its whole life and, once
	// committed, never +new (the kernel datapath's report).
	switch {
	case dir == 1:
		r.State |= StateEst | StateRpl
	case c.status&stSeenReply != 0:
		r.State |= StateEst
	case c.status&stRelated == 0:
		r.State |= StateNew
	}
	if c.status&stRelated != 0 {
		r.State |= StateRel
	}
	tm := t.timeoutsFor(c.zone)
	var to int64
	kill := false
	switch c.proto {
	case packet.ProtoTCP:
		seg, valid := parseSeg(p)
		if !valid {
			return t.invalidResult(Result{State: StateTrk, Zone: r.Zone}), true
		}
		if c.status&stSeqAdj != 0 {
			// The acknowledgement counts the other direction's data as
			// NAT resized it; the windows count it as sent.
			seg.ackAdj = uint32(c.seq[1-dir].ackOffset(seg.ack))
			seg.ack -= seg.ackAdj
		}
		var v int
		v, to, kill = t.tcpPacket(c, dir, &seg, tm)
		switch v {
		case tcpRepeat:
			t.removeLocked(home, ci, c)
			return r, false
		case tcpInvalid:
			if to > 0 && c.expires > now+to {
				c.expires = now + to
			}
			return t.invalidResult(Result{State: StateTrk, Zone: r.Zone}), true
		}
	case packet.ProtoUDP, packet.ProtoSCTP, 136:
		to = tm.UDP
		if c.status&stSeenReply != 0 && now > c.udpStreamAt() {
			to = tm.UDPStream
			c.status |= stAssured
		}
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		to = tm.ICMP
	default:
		to = tm.Generic
	}
	if dir == 1 {
		c.status |= stSeenReply
	}
	if to > 0 {
		c.expires = now + to
	}
	r = t.finish(r, c, nil)
	if kill {
		t.removeLocked(home, ci, c)
	}
	return r, true
}

// newConn tracks the first packet of a connection and, on commit, stores
// the connection (in shard si, whose lock the caller holds).
func (t *Tracker) newConn(si int, h uint64, p *pkt, a *Action, r Result, now int64, pending *conn) (Result, bool) {
	var c conn
	c.zone = a.Zone
	c.proto = p.proto
	if p.v6 {
		c.status |= stV6
	}
	c.tup[0] = p.tup
	tm := t.timeoutsFor(a.Zone)
	switch p.proto {
	case packet.ProtoTCP:
		seg, valid := parseSeg(p)
		if !valid || !tcpNew(&c, &seg) {
			return t.invalidResult(r), false
		}
		v, to, _ := t.tcpPacket(&c, 0, &seg, tm)
		if v != tcpAccept {
			return t.invalidResult(r), false
		}
		if to == 0 {
			to = tm.TCP[c.tcp.state]
		}
		c.expires = now + to
	case packet.ProtoUDP, packet.ProtoSCTP, 136:
		c.expires = now + tm.UDP
		c.setUDPStreamAt(now + udpStreamDelay)
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		if _, ok := icmpAnswerOf(p.v6, uint8(p.tup.dport>>8)); !ok {
			return t.invalidResult(r), false // an answer to nothing
		}
		c.expires = now + tm.ICMP
	default:
		c.expires = now + tm.Generic
	}
	r.State |= StateNew
	if !a.Commit && t.exp.n.Load() == 0 {
		// Tracked, not stored, and related to nothing: no reply tuple
		// needed (ct(table=N) of a SYN flood's packet).
		return t.finish(r, &c, nil), false
	}
	c.tup[1] = invertFor(p.proto, p.v6, &p.tup)
	needNAT := a.HasNAT && a.NAT.Kind != NATNone
	if e, ok := t.expected(a.Zone, p, now, a.Commit); ok {
		r.State |= StateRel
		needNAT = relate(&c, &e, a.HasNAT)
	}
	if !a.Commit {
		return t.finish(r, &c, nil), false // not stored: forgotten after this packet
	}
	c.alg = a.ALG
	if needNAT && pending != nil {
		*pending = c
		return r, true
	}
	if !t.admit(a.Zone) {
		return t.limitDropResult(r, &c), false
	}
	s := &t.shards[si]
	ci, ok := s.alloc()
	if !ok {
		return t.limitDropResult(r, &c), false
	}
	c.rshard = uint8(si)
	*s.conn(ci) = c
	s.put(uint32(h), makeRef(ci, si, 0))
	s.put(uint32(h), makeRef(ci, si, 1))
	s.n++
	t.counted(&c)
	stored := s.conn(ci)
	r = t.finish(r, stored, a)
	if stored.alg != ALGNone {
		t.algPacket(nil, nil, p, stored, 0, false, &r, now) // a TFTP request opens its connection
	}
	return r, false
}

func (t *Tracker) limitDropResult(r Result, c *conn) Result {
	return t.refused(t.finish(r, c, nil))
}

// refused counts a commit refused by a limit and says to drop its packet.
func (t *Tracker) refused(r Result) Result {
	t.limitDrop.Add(1)
	r.LimitDrop = true
	r.Drop = true
	return r
}

// counted counts a committed connection.
func (t *Tracker) counted(c *conn) {
	t.count.Add(1)
	t.zoneCount[c.zone].Add(1)
	t.byProto[c.proto].Add(1)
	t.committed.Add(1)
}

// admit says whether a new connection in zone fits the limits.
func (t *Tracker) admit(zone uint16) bool {
	if t.count.Load() >= int64(t.maxConns.Load()) {
		return false
	}
	l := t.limits.Load()
	lim := l.def
	if z, ok := l.zones[zone]; ok {
		lim = z
	}
	return lim == 0 || t.zoneCount[zone].Load() < int32(min(lim, 1<<31-1))
}

// finish applies a commit's mark and label (a nil a: no commit) and
// copies the connection's fields into r.
func (t *Tracker) finish(r Result, c *conn, a *Action) Result {
	if a != nil && a.Commit {
		if a.SetMark {
			c.mark = c.mark&^a.MarkMask | a.Mark&a.MarkMask
		}
		if a.SetLabel {
			for i := range c.label {
				c.label[i] = c.label[i]&^a.LabelMask[i] | a.Label[i]&a.LabelMask[i]
			}
		}
	}
	r.Mark = c.mark
	r.Label = c.label
	setOrig(&r, &c.tup[0], c.proto, c.isV6())
	return r
}

// setOrig copies an original-direction tuple into r's ct_nw_*, ct_tp_*
// fields.
func setOrig(r *Result, o *ctuple, proto uint8, v6 bool) {
	r.OrigValid = true
	if v6 {
		r.OrigSrc = addrFrom16(&o.src)
		r.OrigDst = addrFrom16(&o.dst)
	} else {
		r.OrigSrc = addrFrom4(&o.src)
		r.OrigDst = addrFrom4(&o.dst)
	}
	r.OrigProto = proto
	r.OrigSport, r.OrigDport = o.sport, o.dport
	if isICMP(proto) {
		// ct_tp_src/dst of ICMP are the type and code (ovs-fields(7)).
		r.OrigSport, r.OrigDport = o.dport>>8, o.dport&0xff
	}
}

// removeLocked deletes connection ci of shard home; the caller holds
// the locks of home and of the connection's reply shard.
func (t *Tracker) removeLocked(home int, ci uint32, c *conn) {
	h0 := t.hash(c.zone, c.proto, &c.tup[0], isICMP(c.proto))
	h1 := t.hash(c.zone, c.proto, &c.tup[1], isICMP(c.proto))
	if c.alg != ALGNone {
		t.forgetMaster(c)
	}
	zone, proto, rs := c.zone, c.proto, int(c.rshard)
	s := &t.shards[home]
	s.unput(uint32(h0), makeRef(ci, home, 0))
	t.shards[rs].unput(uint32(h1), makeRef(ci, home, 1))
	s.release(ci)
	s.shrink()
	t.shards[rs].shrink()
	t.count.Add(-1)
	t.zoneCount[zone].Add(-1)
	t.byProto[proto].Add(-1)
}

// origFromKey reads the original-direction tuple a previous ct() left in
// the flow key (TCP, UDP and other port-less protocols).
func origFromKey(key *packet.Key, v6 bool) ctuple {
	var t ctuple
	if v6 {
		t.src, t.dst = key.CtIPv6Src, key.CtIPv6Dst
	} else {
		copy(t.src[:4], key.CtNwSrc[:])
		copy(t.dst[:4], key.CtNwDst[:])
	}
	t.sport, t.dport = key.CtTpSrc, key.CtTpDst
	return t
}
