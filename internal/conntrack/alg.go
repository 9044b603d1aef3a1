package conntrack

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/packet"
)

// ALGs: a connection committed with alg=ftp or alg=tftp is read for the
// data connections it announces, and each announcement becomes an
// expectation: the tuple the data connection's first packet will have
// (source port left open) and the translation it must get to follow its
// master's NAT. A new connection that matches an expectation is +rel (and
// +new until it is committed); it stays +rel for its whole life, as the
// kernel datapath reports it. Committing it with nat gives it the
// expectation's translation.
//
// Expectations are few and short-lived, so they live in one small map
// under its own lock, taken only for ALG packets and, when the map is not
// empty, for the first packet of a new connection. The lock order is
// shard locks, then expMu.

// Bounds on expectations.
const (
	// MaxExpectations bounds the expectations of the whole tracker.
	MaxExpectations = 4096
	// maxExpectPerMaster bounds one control connection's open
	// expectations; a new one replaces its oldest.
	maxExpectPerMaster = 4
	// expectTimeout is how long an expectation waits for its data
	// connection (the kernel's FTP and TFTP helpers: 5 minutes).
	expectTimeout = 5 * 60 * int64(time.Second)
)

// expectKey is the tuple of an expected connection's first packet, its
// source port left out.
type expectKey struct {
	src, dst [16]byte
	dport    uint16
	zone     uint16
	proto    uint8
	v6       bool
}

// masterID names a control connection.
type masterID struct {
	tup   ctuple
	zone  uint16
	proto uint8
	v6    bool
}

type expectation struct {
	master  masterID
	expires int64
	born    int64
	// The translation of the data connection: its reply comes from
	// natSrc:natSport (the announcer, as it knows itself) and goes to
	// natDst (the peer, as the announcer knows it).
	natSrc, natDst [16]byte
	natSport       uint16
}

type expectTable struct {
	mu      sync.Mutex
	m       map[expectKey]expectation
	n       atomic.Int32 // len(m), read without the lock
	refused atomic.Uint64
}

func masterOf(c *conn) masterID {
	return masterID{tup: c.tup[0], zone: c.zone, proto: c.proto, v6: c.isV6()}
}

// expect records that the peer of announcer direction d of master c will
// open a connection to port (as the peer sees the announcer) that must
// reach the announcer at aport.
func (t *Tracker) expect(c *conn, d int, port, aport uint16, proto uint8, now int64) bool {
	peer := &c.tup[1-d]
	k := expectKey{src: peer.src, dst: peer.dst, dport: port, zone: c.zone, proto: proto, v6: c.isV6()}
	e := expectation{master: masterOf(c), expires: now + expectTimeout, born: now,
		natSrc: c.tup[d].src, natDst: c.tup[d].dst, natSport: aport}
	x := &t.exp
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.m[k]; ok {
		if old.master != e.master && old.expires > now {
			x.refused.Add(1)
			return false // another control connection's: not taken over
		}
		e.born = old.born
		x.m[k] = e
		return true
	}
	if x.m == nil {
		x.m = map[expectKey]expectation{}
	}
	// Bounds: drop the expired, then this master's oldest beyond its
	// share; refuse when the table is full.
	var oldest expectKey
	mine, oldestAt := 0, int64(0)
	for ok, oe := range x.m {
		if oe.expires <= now {
			delete(x.m, ok)
			continue
		}
		if oe.master == e.master {
			mine++
			if oldestAt == 0 || oe.born < oldestAt {
				oldest, oldestAt = ok, oe.born
			}
		}
	}
	if mine >= maxExpectPerMaster {
		delete(x.m, oldest)
	}
	if len(x.m) >= MaxExpectations {
		x.n.Store(int32(len(x.m)))
		x.refused.Add(1)
		return false
	}
	x.m[k] = e
	x.n.Store(int32(len(x.m)))
	return true
}

// expected finds the expectation the first packet p of a new connection
// in zone meets; take removes it (the connection is committed).
func (t *Tracker) expected(zone uint16, p *pkt, now int64, take bool) (expectation, bool) {
	x := &t.exp
	if x.n.Load() == 0 || (p.proto != packet.ProtoTCP && p.proto != packet.ProtoUDP) {
		return expectation{}, false
	}
	k := expectKey{src: p.tup.src, dst: p.tup.dst, dport: p.tup.dport, zone: zone, proto: p.proto, v6: p.v6}
	x.mu.Lock()
	defer x.mu.Unlock()
	e, ok := x.m[k]
	if ok && (e.expires <= now || take) {
		delete(x.m, k)
		x.n.Store(int32(len(x.m)))
	}
	return e, ok && e.expires > now
}

// forgetMaster removes the expectations of c, a connection that goes.
func (t *Tracker) forgetMaster(c *conn) {
	x := &t.exp
	if x.n.Load() == 0 {
		return
	}
	id := masterOf(c)
	x.mu.Lock()
	for k, e := range x.m {
		if e.master == id {
			delete(x.m, k)
		}
	}
	x.n.Store(int32(len(x.m)))
	x.mu.Unlock()
}

// sweepExpectations removes the expired expectations.
func (t *Tracker) sweepExpectations(now int64) {
	x := &t.exp
	if x.n.Load() == 0 {
		return
	}
	x.mu.Lock()
	for k, e := range x.m {
		if e.expires <= now {
			delete(x.m, k)
		}
	}
	x.n.Store(int32(len(x.m)))
	x.mu.Unlock()
}

// Expectations returns the number of open expectations.
func (t *Tracker) Expectations() int { return int(t.exp.n.Load()) }

// relate makes c, a new connection p opens, an expected one: +rel, and
// with nat the translation the expectation carries (in c's reply tuple
// and status). It reports whether c needs NAT.
func relate(c *conn, e *expectation, nat bool) bool {
	c.status |= stRelated
	if !nat {
		return false
	}
	rt := ctuple{src: e.natSrc, dst: e.natDst, sport: e.natSport, dport: c.tup[0].sport}
	if rt == c.tup[1] {
		return false
	}
	if rt.src != c.tup[1].src || rt.sport != c.tup[1].sport {
		c.status |= stDstNAT
	}
	if rt.dst != c.tup[1].dst {
		c.status |= stSrcNAT
	}
	c.tup[1] = rt
	return true
}

// algPacket runs the ALG of committed connection c on packet p of
// direction dir: announcements become expectations and, when nat says
// that this ct() translates the packet, FTP announcements are rewritten
// to the translated addresses and the TCP sequence numbers corrected.
// It reports in r a frame whose length changed.
func (t *Tracker) algPacket(frame []byte, off *packet.Offsets, p *pkt, c *conn, dir int, nat bool, r *Result, now int64) {
	switch c.alg {
	case ALGTFTP:
		if dir == 0 && c.proto == packet.ProtoUDP && len(p.l4) >= 10 {
			// A read or write request: the server answers from a new port.
			if op := binary.BigEndian.Uint16(p.l4[8:]); op == 1 || op == 2 {
				t.expect(c, 0, c.tup[1].dport, c.tup[0].sport, packet.ProtoUDP, now)
			}
		}
		return
	case ALGFTP:
		if c.proto == packet.ProtoTCP {
			t.ftpPacket(frame, off, p, c, dir, nat, r, now)
		}
		return
	}
	if nat && c.status&stSeqAdj != 0 && c.proto == packet.ProtoTCP && seqAdjust(p.l4, c, dir) {
		r.Rewrote = true
	}
}

func (t *Tracker) ftpPacket(frame []byte, off *packet.Offsets, p *pkt, c *conn, dir int, nat bool, r *Result, now int64) {
	if len(p.l4) < 20 {
		return
	}
	doff := int(p.l4[12]>>4) * 4
	seq := binary.BigEndian.Uint32(p.l4[4:])
	if nat && c.status&stSeqAdj != 0 && seqAdjust(p.l4, c, dir) {
		r.Rewrote = true
	}
	if doff >= len(p.l4) {
		return
	}
	cmd, ok := parseFTP(p.l4[doff:], dir == 0)
	if !ok {
		return
	}
	// The announcer's own address, as the control connection shows it
	// before translation; EPSV names none (it is the server's).
	me := &c.tup[dir]
	if cmd.kind != ftpEPSV && !sameAddr(cmd.addr, &me.src, c.isV6()) {
		return // a third party's address: the kernel ignores it too
	}
	if !t.expect(c, dir, cmd.port, cmd.port, packet.ProtoTCP, now) || !nat || c.status&stNAT == 0 {
		return
	}
	// As the peer sees the announcer: the other direction's destination.
	seen := &c.tup[1-dir].dst
	if cmd.kind == ftpEPSV || sameAddr(cmd.addr, seen, c.isV6()) {
		return
	}
	var buf [64]byte
	text := formatFTP(buf[:], &cmd, addrOf(seen, c.isV6()), cmd.port)
	delta, ok := mangle(frame, off, p, doff+cmd.start, doff+cmd.end, text)
	if !ok {
		algMangleFailed.Add(1)
		return
	}
	r.Rewrote = true
	if delta != 0 {
		r.Len = int(off.L4) + len(p.l4)
		c.seq[dir].record(seq, int32(delta))
		c.status |= stSeqAdj
	}
}

// algMangleFailed counts rewrites that did not fit the frame.
var algMangleFailed atomic.Uint64

func sameAddr(a netip.Addr, b *[16]byte, v6 bool) bool {
	if a.Is4() == v6 {
		return false
	}
	if !v6 {
		return a.As4() == [4]byte(b[:4])
	}
	return a.As16() == *b
}

func addrOf(b *[16]byte, v6 bool) netip.Addr {
	if v6 {
		return addrFrom16(b)
	}
	return addrFrom4(b)
}

// mangle replaces bytes [start, end) of p's TCP segment (offsets from the
// TCP header) with text, moving the rest of the datagram, and fixes the
// IP length and the checksums. The frame may grow into its capacity; the
// caller learns the datagram's new end from the returned delta. false:
// the frame has no room, nothing was changed.
func mangle(frame []byte, off *packet.Offsets, p *pkt, start, end int, text []byte) (int, bool) {
	l3, l4 := int(off.L3), int(off.L4)
	l3end := l4 + len(p.l4)
	delta := len(text) - (end - start)
	newEnd := l3end + delta
	if newEnd > cap(frame) || newEnd-l3 > 65535 || end > len(p.l4) || start > end {
		return 0, false
	}
	frame = frame[:max(len(frame), newEnd)]
	copy(frame[l4+end+delta:newEnd], frame[l4+end:l3end])
	copy(frame[l4+start:], text)
	if p.v6 {
		n := binary.BigEndian.Uint16(frame[l3+4:])
		binary.BigEndian.PutUint16(frame[l3+4:], n+uint16(delta))
	} else {
		n := binary.BigEndian.Uint16(frame[l3+2:])
		binary.BigEndian.PutUint16(frame[l3+2:], n+uint16(delta))
		cs := binary.BigEndian.Uint16(frame[l3+10:])
		binary.BigEndian.PutUint16(frame[l3+10:], packet.ChecksumUpdate16(cs, n, n+uint16(delta)))
	}
	seg := frame[l4:newEnd]
	alen, srcAt := 4, l3+12
	if p.v6 {
		alen, srcAt = 16, l3+8
	}
	seg[16], seg[17] = 0, 0
	sum := packet.PseudoHeaderChecksum(packet.ProtoTCP, frame[srcAt:srcAt+alen], frame[srcAt+alen:srcAt+2*alen], uint32(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], ^packet.Checksum(seg, sum))
	p.l4 = seg
	return delta, true
}
