package conntrack

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"

	"gvs/internal/packet"
)

// NAT: a connection committed with nat(src=...) or nat(dst=...) gets a
// reply tuple that says where its answers come back to (SNAT: the
// translated source; DNAT: the translated destination). Its packets, when
// a ct() with nat meets them, are rewritten so that each looks like the
// inverse of the other direction's tuple: that one rule covers both
// directions and both kinds. Checksums are updated incrementally.
//
// A NATed connection's reply entry usually hashes to another shard than
// its home: lookups that meet it lock both (in shard order), and new NAT
// connections are committed one at a time under natMu, so that choosing
// a free reply tuple and inserting it is atomic.

// natTries bounds the reply tuples tried for one new connection.
const natTries = 128

// natTarget is how a packet of a NATed connection is rewritten.
type natTarget struct {
	valid      bool
	tup        ctuple
	snat, dnat bool
}

// natTargetOf returns the translation of a packet in direction dir of c
// (valid false when c has no NAT).
func natTargetOf(c *conn, dir int) natTarget {
	if c.status&stNAT == 0 {
		return natTarget{}
	}
	other := &c.tup[1-dir]
	nt := natTarget{valid: true, tup: other.inverse()}
	if isICMP(c.proto) {
		nt.tup.sport = other.sport // the id: the same field in both directions
	}
	src, dst := c.status&stSrcNAT != 0, c.status&stDstNAT != 0
	if dir == 0 {
		nt.snat, nt.dnat = src, dst
	} else {
		nt.snat, nt.dnat = dst, src
	}
	return nt
}

// natApply rewrites the packet as nt says and reports it in r.
func (t *Tracker) natApply(frame []byte, off *packet.Offsets, p *pkt, nt *natTarget, r *Result) {
	if !nt.valid {
		return
	}
	if nt.snat {
		r.State |= StateSNAT
	}
	if nt.dnat {
		r.State |= StateDNAT
	}
	if rewrite(frame, off, p, &nt.tup) {
		r.Rewrote = true
	}
}

// rewrite changes the packet's addresses and ports (ICMP: id) to those of
// to, fixing the IPv4 header and transport checksums incrementally. It
// reports whether anything changed.
func rewrite(frame []byte, off *packet.Offsets, p *pkt, to *ctuple) bool {
	l3, l4 := int(off.L3), int(off.L4)
	alen, srcAt, dstAt := 4, l3+12, l3+16
	if p.v6 {
		alen, srcAt, dstAt = 16, l3+8, l3+24
	}
	if dstAt+alen > len(frame) {
		return false
	}
	csumAt, pseudo := -1, true
	switch p.proto {
	case packet.ProtoTCP:
		csumAt = l4 + 16
	case packet.ProtoUDP:
		csumAt = l4 + 6
		if !p.v6 && frame[csumAt] == 0 && frame[csumAt+1] == 0 {
			csumAt = -1 // IPv4 UDP without a checksum stays so
		}
	case packet.ProtoICMPv4:
		csumAt, pseudo = l4+2, false
	case packet.ProtoICMPv6:
		csumAt = l4 + 2
	}
	if l4 == 0 || csumAt+2 > len(frame) {
		csumAt = -1
	}
	changed := false
	set := func(at int, old, new []byte, inPseudo bool) {
		if bytes.Equal(old, new) {
			return
		}
		if !p.v6 && (at == srcAt || at == dstAt) {
			c := binary.BigEndian.Uint16(frame[l3+10:])
			binary.BigEndian.PutUint16(frame[l3+10:], packet.ChecksumUpdateBytes(c, old, new))
		}
		if csumAt >= 0 && inPseudo {
			c := binary.BigEndian.Uint16(frame[csumAt:])
			c = packet.ChecksumUpdateBytes(c, old, new)
			if p.proto == packet.ProtoUDP && c == 0 {
				c = 0xffff
			}
			binary.BigEndian.PutUint16(frame[csumAt:], c)
		}
		copy(frame[at:at+len(new)], new)
		changed = true
	}
	from := p.tup
	set(srcAt, from.src[:alen], to.src[:alen], pseudo)
	set(dstAt, from.dst[:alen], to.dst[:alen], pseudo)
	var o, n [2]byte
	switch p.proto {
	case packet.ProtoTCP, packet.ProtoUDP:
		binary.BigEndian.PutUint16(o[:], from.sport)
		binary.BigEndian.PutUint16(n[:], to.sport)
		set(l4, o[:], n[:], true)
		binary.BigEndian.PutUint16(o[:], from.dport)
		binary.BigEndian.PutUint16(n[:], to.dport)
		set(l4+2, o[:], n[:], true)
		p.tup = *to
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		binary.BigEndian.PutUint16(o[:], from.sport)
		binary.BigEndian.PutUint16(n[:], to.sport)
		set(l4+4, o[:], n[:], true)
		p.tup.src, p.tup.dst, p.tup.sport = to.src, to.dst, to.sport
	default:
		p.tup.src, p.tup.dst = to.src, to.dst
	}
	return changed
}

// commitNAT commits pending, a new connection, with the translation a
// asks for: it picks a reply tuple no other connection uses, stores the
// connection and rewrites the packet. retry: the connection appeared
// meanwhile (another thread committed it); track the packet again.
func (t *Tracker) commitNAT(frame []byte, off *packet.Offsets, p *pkt, a *Action, r Result, c *conn, now int64) (Result, bool) {
	t.natMu.Lock()
	defer t.natMu.Unlock()
	if !t.admit(c.zone) {
		return t.limitDropResult(r, c), false
	}
	n := &a.NAT
	// An expected connection's reply tuple is fixed by its expectation.
	fixed := c.status&stRelated != 0 && c.status&stNAT != 0
	if (p.proto == packet.ProtoSCTP) || (!fixed && n.AddrMin.IsValid() && n.AddrMin.Unmap().Is4() == p.v6) {
		return t.natFailResult(r, c), false // SCTP's CRC32c is not updated; wrong family
	}
	icmp := isICMP(c.proto)
	h0 := t.hash(c.zone, c.proto, &c.tup[0], icmp)
	home := t.shardIdx(h0)
	base := natBase(c, n, t.seed)
	for try := range natTries {
		rt, ok := c.tup[1], try == 0
		if !fixed {
			rt, ok = natCandidate(c, n, base, try)
		}
		if !ok {
			break
		}
		h1 := t.hash(c.zone, c.proto, &rt, icmp)
		rs := t.shardIdx(h1)
		var held lockSet
		held.add(home)
		held.add(rs)
		if f := t.lockAndFind(home, h0, c.zone, p, &c.tup[0], &held); f.c != nil {
			t.unlockAll(&held)
			return r, true
		}
		if g := t.lookup(rs, h1, c.zone, c.proto, p.v6, &rt, &held); g.c != nil || g.need >= 0 {
			t.unlockAll(&held)
			continue // taken (or unverifiable: as good as taken)
		}
		res, ok := t.insertNAT(frame, off, p, a, r, c, rt, home, rs, h0, h1, now)
		t.unlockAll(&held)
		if !ok {
			return t.limitDropResult(r, c), false
		}
		return res, false
	}
	return t.natFailResult(r, c), false
}

func (t *Tracker) insertNAT(frame []byte, off *packet.Offsets, p *pkt, a *Action, r Result, c *conn, rt ctuple, home, rs int, h0, h1 uint64, now int64) (Result, bool) {
	s := &t.shards[home]
	ci, ok := s.alloc()
	if !ok {
		return r, false
	}
	nc := *c
	nc.tup[1] = rt
	nc.rshard = uint8(rs)
	switch {
	case nc.status&stNAT != 0: // an expected connection's, already set
	case a.NAT.Kind == NATSrc:
		nc.status |= stSrcNAT
	default:
		nc.status |= stDstNAT
	}
	*s.conn(ci) = nc
	s.put(uint32(h0), makeRef(ci, home, 0))
	t.shards[rs].put(uint32(h1), makeRef(ci, home, 1))
	s.n++
	t.counted(&nc)
	stored := s.conn(ci)
	res := t.finish(r, stored, a)
	nt := natTargetOf(stored, 0)
	t.natApply(frame, off, p, &nt, &res)
	if stored.alg != ALGNone {
		t.algPacket(frame, off, p, stored, 0, true, &res, now)
	}
	return res, true
}

func (t *Tracker) natFailResult(r Result, c *conn) Result {
	t.natFail.Add(1)
	r = t.finish(r, c, nil)
	r.Drop = true
	return r
}

// natBase is where the search for a free tuple starts: random with
// random, else a hash of the client (and, without persistent, the
// server) so that one client keeps its address.
func natBase(c *conn, n *NAT, seed uint64) uint64 {
	if n.Random {
		return rand.Uint64()
	}
	o := &c.tup[0]
	h := mix(seed^binary.LittleEndian.Uint64(o.src[0:8]), binary.LittleEndian.Uint64(o.src[8:16]))
	if !n.Persistent {
		h = mix(h^binary.LittleEndian.Uint64(o.dst[0:8]), binary.LittleEndian.Uint64(o.dst[8:16])^uint64(o.dport))
	}
	return h
}

// natCandidate returns the try'th reply tuple to consider.
func natCandidate(c *conn, n *NAT, base uint64, try int) (ctuple, bool) {
	rt := c.tup[1]
	o := &c.tup[0]
	icmp := isICMP(c.proto)
	hasPorts := c.proto == packet.ProtoTCP || c.proto == packet.ProtoUDP || c.proto == 136
	// The port (ICMP: id) that NAT may change, and where it sits.
	var orig uint16
	var port *uint16
	switch {
	case n.Kind == NATSrc && icmp:
		orig, port = o.sport, &rt.sport
	case n.Kind == NATSrc && hasPorts:
		orig, port = o.sport, &rt.dport
	case n.Kind == NATDst && hasPorts:
		orig, port = o.dport, &rt.sport
	}
	if n.AddrMin.IsValid() {
		addr := nthAddr(n.AddrMin, n.AddrMax, base)
		if n.Kind == NATSrc {
			putAddr(&rt.dst, addr)
		} else {
			putAddr(&rt.src, addr)
		}
	}
	if port == nil {
		return rt, try == 0 // nothing else to vary
	}
	lo, hi := n.PortMin, n.PortMax
	if lo == 0 && hi == 0 {
		// No range: keep the port if free, else one of its class (the
		// kernel's: below 512, below 1024, the rest).
		switch {
		case icmp:
			lo, hi = 0, 65535
		case orig < 512:
			lo, hi = 1, 511
		case orig < 1024:
			lo, hi = 600, 1023
		default:
			lo, hi = 1024, 65535
		}
		if try == 0 {
			*port = orig
			return rt, true
		}
	} else if try == 0 && orig >= lo && orig <= hi {
		*port = orig
		return rt, true
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	count := uint64(hi) - uint64(lo) + 1
	if uint64(try) > count {
		return rt, false
	}
	*port = lo + uint16((base>>32+uint64(try))%count)
	return rt, true
}

// nthAddr returns the address at offset base (modulo the range's size)
// in [lo, hi].
func nthAddr(lo, hi netip.Addr, base uint64) netip.Addr {
	lo, hi = lo.Unmap(), hi.Unmap()
	if !hi.IsValid() || hi.Less(lo) || hi.BitLen() != lo.BitLen() {
		return lo
	}
	a, b := lo.As16(), hi.As16()
	if !bytes.Equal(a[:8], b[:8]) {
		return lo // ranges wider than 2^64: the first address
	}
	l, h := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	count := h - l + 1
	if count == 0 {
		count = ^uint64(0)
	}
	binary.BigEndian.PutUint64(a[8:], l+base%count)
	if lo.Is4() {
		return netip.AddrFrom4([4]byte(a[12:16]))
	}
	return netip.AddrFrom16(a)
}

func putAddr(dst *[16]byte, a netip.Addr) {
	*dst = [16]byte{}
	if a.Is4() {
		b := a.As4()
		copy(dst[:4], b[:])
		return
	}
	*dst = a.As16()
}

// natICMPError translates an ICMP error about a NATed connection, as the
// kernel does: the outer header like any packet of the error's direction
// dir (addresses only), the quoted datagram like a packet of the other
// direction, then the ICMP checksum computed again over the message.
func natICMPError(frame []byte, off *packet.Offsets, v6 bool, c *conn, dir int, r *Result) {
	nt := natTargetOf(c, dir)
	if !nt.valid {
		return
	}
	l3, l4 := int(off.L3), int(off.L4)
	end := int(off.L3End)
	if end == 0 || end > len(frame) {
		end = len(frame)
	}
	alen, srcAt, dstAt, innerAt := 4, l3+12, l3+16, l4+8
	if v6 {
		alen, srcAt, dstAt = 16, l3+8, l3+24
	}
	if l4 == 0 || innerAt >= end {
		return
	}
	var tgt ctuple
	if nt.snat {
		tgt.src = nt.tup.src
		setAddr(frame, l3, v6, srcAt, tgt.src[:alen])
		r.State |= StateSNAT
	}
	if nt.dnat {
		tgt.dst = nt.tup.dst
		setAddr(frame, l3, v6, dstAt, tgt.dst[:alen])
		r.State |= StateDNAT
	}
	// The quoted datagram travelled the other way: it takes the other
	// direction's tuple, on the side the outer header's change mirrors.
	q := &c.tup[1-dir]
	in := frame[innerAt:end]
	ihl, isrc, idst := 20, 12, 16
	if v6 {
		ihl, isrc, idst = 40, 8, 24
	} else if len(in) > 0 {
		ihl = int(in[0]&0xf) * 4
	}
	if len(in) < ihl+8 {
		return
	}
	inL4 := in[ihl:]
	proto := c.proto
	portField := func(at int, v uint16) {
		old := binary.BigEndian.Uint16(inL4[at:])
		if old == v {
			return
		}
		binary.BigEndian.PutUint16(inL4[at:], v)
		innerL4Fix(inL4, proto, v6, []byte{byte(old >> 8), byte(old)}, []byte{byte(v >> 8), byte(v)})
	}
	addrField := func(at int, a []byte) {
		old := append([]byte(nil), in[at:at+alen]...)
		if bytes.Equal(old, a) {
			return
		}
		if !v6 {
			cs := binary.BigEndian.Uint16(in[10:])
			binary.BigEndian.PutUint16(in[10:], packet.ChecksumUpdateBytes(cs, old, a))
		}
		copy(in[at:], a)
		if proto != packet.ProtoICMPv4 {
			innerL4Fix(inL4, proto, v6, old, a)
		}
	}
	icmp := isICMP(proto)
	if nt.dnat {
		addrField(isrc, q.src[:alen])
		if icmp {
			portField(4, q.sport)
		} else {
			portField(0, q.sport)
		}
	}
	if nt.snat {
		addrField(idst, q.dst[:alen])
		if icmp {
			portField(4, q.sport)
		} else {
			portField(2, q.dport)
		}
	}
	msg := frame[l4:end]
	msg[2], msg[3] = 0, 0
	var sum uint16
	if v6 {
		sum = packet.PseudoHeaderChecksum(packet.ProtoICMPv6, frame[srcAt:srcAt+16], frame[dstAt:dstAt+16], uint32(len(msg)))
	}
	binary.BigEndian.PutUint16(msg[2:], ^packet.Checksum(msg, sum))
	r.Rewrote = true
}

// setAddr writes an outer address, fixing the IPv4 header checksum.
func setAddr(frame []byte, l3 int, v6 bool, at int, a []byte) {
	if !v6 {
		cs := binary.BigEndian.Uint16(frame[l3+10:])
		binary.BigEndian.PutUint16(frame[l3+10:], packet.ChecksumUpdateBytes(cs, frame[at:at+len(a)], a))
	}
	copy(frame[at:], a)
}

// innerL4Fix updates the checksum of a quoted transport header when the
// quote holds it (ICMP quotes may stop after 8 bytes).
func innerL4Fix(l4 []byte, proto uint8, v6 bool, old, new []byte) {
	at := -1
	switch proto {
	case packet.ProtoTCP:
		at = 16
	case packet.ProtoUDP:
		at = 6
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		at = 2
	}
	if at < 0 || at+2 > len(l4) {
		return
	}
	cs := binary.BigEndian.Uint16(l4[at:])
	if proto == packet.ProtoUDP && cs == 0 && !v6 {
		return
	}
	cs = packet.ChecksumUpdateBytes(cs, old, new)
	if proto == packet.ProtoUDP && cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(l4[at:], cs)
}
