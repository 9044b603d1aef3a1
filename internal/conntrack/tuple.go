package conntrack

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"gvs/internal/packet"
)

// Tuple is one direction of a connection as users see it: in dumps, and
// as the ct-orig-tuple argument of a flush. For ICMP and ICMPv6 the ports
// are unused and ICMPID, ICMPType and ICMPCode name the exchange.
type Tuple struct {
	Src, Dst         netip.Addr
	Proto            uint8
	SrcPort, DstPort uint16
	ICMPID           uint16
	ICMPType         uint8
	ICMPCode         uint8
}

// ctuple is a Tuple as the table stores it: no pointers (so that the GC
// never scans the connection slabs) and fixed size. IPv4 addresses use the
// first 4 bytes. For ICMP, sport is the echo id and dport holds the type
// (high byte) and code (low byte).
type ctuple struct {
	src, dst     [16]byte
	sport, dport uint16
}

func (t *ctuple) inverse() ctuple {
	return ctuple{src: t.dst, dst: t.src, sport: t.dport, dport: t.sport}
}

// pkt is what the tracker reads from one packet.
type pkt struct {
	tup      ctuple
	proto    uint8
	v6       bool
	l4       []byte // the transport header and payload, to the end of the datagram
	tcpFlags uint16
	// icmpErr: the packet is an ICMP error whose quoted datagram is in
	// tup (already inverted, so that it names the connection in the
	// direction the error travels).
	icmpErr bool
	length  int // bytes of L3 datagram, for the window checks
}

// icmpAnswer gives, for each ICMP request type that can open an exchange,
// the type of its answer (the kernel's valid_new table). A zero entry
// means the type cannot open a connection.
var icmpAnswer = [256]uint8{
	8:  0 + 0x80, // echo -> echo reply (bit 7 marks an entry, as 0 is a type)
	13: 14 + 0x80,
	15: 16 + 0x80,
	17: 18 + 0x80,
}

var icmpv6Answer = [256]uint8{
	128: 129,
	139: 140,
}

// icmpAnswerOf returns the answer type of an ICMP request and whether the
// type opens a connection.
func icmpAnswerOf(v6 bool, typ uint8) (uint8, bool) {
	if v6 {
		a := icmpv6Answer[typ]
		return a, a != 0
	}
	a := icmpAnswer[typ]
	return a &^ 0x80, a != 0
}

// icmpRequestOf is the inverse: for an answer type, the request type.
func icmpRequestOf(v6 bool, typ uint8) (uint8, bool) {
	if v6 {
		switch typ {
		case 129:
			return 128, true
		case 140:
			return 139, true
		}
		return 0, false
	}
	switch typ {
	case 0:
		return 8, true
	case 14, 16, 18:
		return typ - 1, true
	}
	return 0, false
}

func icmpIsError(v6 bool, typ uint8) bool {
	if v6 {
		return typ >= 1 && typ <= 4
	}
	switch typ {
	case 3, 4, 5, 11, 12:
		return true
	}
	return false
}

// verdict of packet extraction.
type extractResult uint8

const (
	extOK        extractResult = iota
	extInvalid                 // tracked as +inv
	extUntracked               // not IP: the tracker says +trk+inv too, see Execute
)

// extract reads the tuple of frame. IP fragments are not reassembled:
// they are +inv (documented in COMPATIBILITY.md).
func extract(frame []byte, key *packet.Key, off *packet.Offsets, p *pkt) extractResult {
	var l3 []byte
	switch key.DlType {
	case packet.EtherTypeIPv4:
		p.v6 = false
		copy(p.tup.src[:4], key.NwSrc[:])
		copy(p.tup.dst[:4], key.NwDst[:])
	case packet.EtherTypeIPv6:
		p.v6 = true
		p.tup.src = key.IPv6Src
		p.tup.dst = key.IPv6Dst
	default:
		return extUntracked
	}
	if key.NwFrag != 0 || off.Fragment {
		return extInvalid
	}
	p.proto = key.NwProto
	end := int(off.L3End)
	if end == 0 || end > len(frame) {
		end = len(frame)
	}
	if int(off.L3) >= end {
		return extInvalid
	}
	l3 = frame[off.L3:end]
	p.length = len(l3)
	if off.L4 == 0 {
		if p.proto == packet.ProtoTCP || p.proto == packet.ProtoUDP ||
			p.proto == packet.ProtoICMPv4 || p.proto == packet.ProtoICMPv6 || p.proto == packet.ProtoSCTP {
			return extInvalid
		}
		return extOK // generic: addresses and protocol only
	}
	if int(off.L4) > end {
		return extInvalid
	}
	p.l4 = frame[off.L4:end]
	return p.extractL4(key)
}

func (p *pkt) extractL4(key *packet.Key) extractResult {
	b := p.l4
	switch p.proto {
	case packet.ProtoTCP:
		if len(b) < 20 {
			return extInvalid
		}
		p.tup.sport = binary.BigEndian.Uint16(b[0:2])
		p.tup.dport = binary.BigEndian.Uint16(b[2:4])
		p.tcpFlags = binary.BigEndian.Uint16(b[12:14]) & 0x0fff
		doff := int(b[12]>>4) * 4
		if doff < 20 || doff > len(b) {
			return extInvalid
		}
		return extOK
	case packet.ProtoUDP, packet.ProtoSCTP, 136: // 136: UDP-Lite
		if len(b) < 8 {
			return extInvalid
		}
		p.tup.sport = binary.BigEndian.Uint16(b[0:2])
		p.tup.dport = binary.BigEndian.Uint16(b[2:4])
		return extOK
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		return p.extractICMP(key)
	}
	return extOK
}

func (p *pkt) extractICMP(key *packet.Key) extractResult {
	b := p.l4
	v6 := p.proto == packet.ProtoICMPv6
	if (v6 && key.DlType != packet.EtherTypeIPv6) || (!v6 && key.DlType != packet.EtherTypeIPv4) {
		return extInvalid
	}
	if len(b) < 8 {
		return extInvalid
	}
	typ, code := b[0], b[1]
	if icmpIsError(v6, typ) {
		return p.extractICMPError(b[8:])
	}
	p.tup.sport = binary.BigEndian.Uint16(b[4:6])
	p.tup.dport = uint16(typ)<<8 | uint16(code)
	if _, ok := icmpAnswerOf(v6, typ); ok {
		return extOK
	}
	if _, ok := icmpRequestOf(v6, typ); ok {
		return extOK // an answer: valid only for an existing exchange
	}
	return extInvalid // ND, MLD, router discovery...: untracked, reported +inv
}

// extractICMPError reads the datagram an ICMP error quotes and sets tup
// to the tuple of the connection in the direction the error travels (the
// inverse of the quoted packet's tuple).
func (p *pkt) extractICMPError(q []byte) extractResult {
	var inner ctuple
	var proto uint8
	var l4 []byte
	if !p.v6 {
		if len(q) < 20 || q[0]>>4 != 4 {
			return extInvalid
		}
		ihl := int(q[0]&0xf) * 4
		if ihl < 20 || len(q) < ihl+8 {
			return extInvalid
		}
		if binary.BigEndian.Uint16(q[6:8])&0x1fff != 0 {
			return extInvalid // the quote of a later fragment names no ports
		}
		proto = q[9]
		copy(inner.src[:4], q[12:16])
		copy(inner.dst[:4], q[16:20])
		l4 = q[ihl:]
	} else {
		if len(q) < 48 || q[0]>>4 != 6 {
			return extInvalid
		}
		proto = q[6] // extension headers in the quote are not walked
		copy(inner.src[:], q[8:24])
		copy(inner.dst[:], q[24:40])
		l4 = q[40:]
	}
	switch proto {
	case packet.ProtoTCP, packet.ProtoUDP, packet.ProtoSCTP, 136:
		inner.sport = binary.BigEndian.Uint16(l4[0:2])
		inner.dport = binary.BigEndian.Uint16(l4[2:4])
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		typ := l4[0]
		if _, ok := icmpAnswerOf(p.v6, typ); !ok {
			if _, ok := icmpRequestOf(p.v6, typ); !ok {
				return extInvalid // no error about an error
			}
		}
		inner.sport = binary.BigEndian.Uint16(l4[4:6])
		inner.dport = uint16(typ)<<8 | uint16(l4[1])
	}
	p.proto = proto
	p.tup = invertFor(proto, p.v6, &inner)
	p.icmpErr = true
	return extOK
}

// invertFor returns the tuple of the other direction of a connection:
// addresses and ports swapped; for ICMP the id is kept and the type
// becomes its answer (or request).
func invertFor(proto uint8, v6 bool, t *ctuple) ctuple {
	if proto == packet.ProtoICMPv4 || proto == packet.ProtoICMPv6 {
		typ, code := uint8(t.dport>>8), uint8(t.dport)
		inv, ok := icmpAnswerOf(v6, typ)
		if !ok {
			inv, _ = icmpRequestOf(v6, typ)
		}
		return ctuple{src: t.dst, dst: t.src, sport: t.sport, dport: uint16(inv)<<8 | uint16(code)}
	}
	return t.inverse()
}

// hash of a tuple, the same for both directions of a connection that NAT
// did not change, so that both directions live in one shard. Endpoint
// hashes are added, not XORed, so that a tuple whose two endpoints are
// equal does not hash to a constant. ICMP's type is left out (it differs
// between the directions).
func (t *Tracker) hash(zone uint16, proto uint8, tup *ctuple, icmp bool) uint64 {
	sp, dp := uint64(tup.sport), uint64(tup.dport)
	if icmp {
		dp = sp
	}
	a := t.endpointHash(&tup.src, sp)
	b := t.endpointHash(&tup.dst, dp)
	return mix(a+b, t.seed^uint64(zone)<<8^uint64(proto))
}

func (t *Tracker) endpointHash(addr *[16]byte, port uint64) uint64 {
	lo := binary.LittleEndian.Uint64(addr[0:8])
	hi := binary.LittleEndian.Uint64(addr[8:16])
	return mix(lo^t.seed, hi^port<<32^0x9e3779b97f4a7c15)
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b^0xe7037ed1a0b428db)
	return hi ^ lo
}

func isICMP(proto uint8) bool { return proto == packet.ProtoICMPv4 || proto == packet.ProtoICMPv6 }

// publicTuple converts a stored tuple for users.
func publicTuple(t *ctuple, proto uint8, v6 bool) Tuple {
	var u Tuple
	if v6 {
		u.Src = netip.AddrFrom16(t.src)
		u.Dst = netip.AddrFrom16(t.dst)
	} else {
		u.Src = netip.AddrFrom4([4]byte(t.src[:4]))
		u.Dst = netip.AddrFrom4([4]byte(t.dst[:4]))
	}
	u.Proto = proto
	if isICMP(proto) {
		u.ICMPID = t.sport
		u.ICMPType = uint8(t.dport >> 8)
		u.ICMPCode = uint8(t.dport)
	} else {
		u.SrcPort, u.DstPort = t.sport, t.dport
	}
	return u
}

func addrFrom16(b *[16]byte) netip.Addr { return netip.AddrFrom16(*b) }
func addrFrom4(b *[16]byte) netip.Addr  { return netip.AddrFrom4([4]byte(b[:4])) }
