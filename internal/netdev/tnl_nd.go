package netdev

import (
	"encoding/binary"
	"net/netip"

	"gvs/internal/packet"
)

// IPv6 neighbour discovery for native tunnelling: what the neighbour
// cache learns from the neighbor advertisements that reach a gvs
// internal port, and the solicitation gvs sends for a next hop it does
// not know (RFC 4861).

const (
	// ndMsgLen is a solicitation or advertisement with one link-layer
	// address option: ICMPv6 header, target, option.
	ndMsgLen = packet.ICMPv6Len + 16 + 8
	// NSFrameLen is the length of the frame BuildNeighborSolicitation
	// writes.
	NSFrameLen = packet.EthernetLen + packet.IPv6Len + ndMsgLen
	// ndHopLimit is the only hop limit an ND message may carry: it
	// proves the message was not routed (RFC 4861 section 7.1).
	ndHopLimit = 255
)

// ParseNDNeighbour reads what an Ethernet frame teaches the cache: the
// target of a neighbor advertisement with its target link-layer address
// option. OVS 3.1 learns no more (seen: after a ping either way between
// its ul and a peer, its tnl/neigh/show stayed empty, the solicitations'
// source options unlearned), so tnl/neigh/show does not list what OVS's
// would not; Linux puts the option in its answers to multicast
// solicitations, which is what gvs sends. Frames with a VLAN tag,
// routed messages (hop limit not 255), bad checksums, extension headers,
// multicast or zero MAC addresses and unspecified or multicast targets
// teach nothing. It does not allocate.
func ParseNDNeighbour(frame []byte) (netip.Addr, [6]byte, bool) {
	if len(frame) < packet.EthernetLen+packet.IPv6Len+packet.ICMPv6Len+16 ||
		binary.BigEndian.Uint16(frame[12:14]) != packet.EtherTypeIPv6 {
		return netip.Addr{}, [6]byte{}, false
	}
	ip := packet.IPv6(frame[packet.EthernetLen:])
	n := int(ip.PayloadLen())
	if ip.Version() != 6 || ip.NextHeader() != packet.ProtoICMPv6 || ip.HopLimit() != ndHopLimit ||
		n < packet.ICMPv6Len+16 || packet.IPv6Len+n > len(ip) {
		return netip.Addr{}, [6]byte{}, false
	}
	msg := packet.NDMessage(ip[packet.IPv6Len : packet.IPv6Len+n])
	icmp := packet.ICMP(msg)
	if icmp.Code() != 0 || !ndChecksumOK(ip, msg) {
		return netip.Addr{}, [6]byte{}, false
	}
	if icmp.Type() != packet.ICMPv6NeighborAdvert {
		return netip.Addr{}, [6]byte{}, false
	}
	addr := netip.AddrFrom16(msg.Target())
	mac, ok := ndLinkAddr(msg.Options(), packet.NDOptTargetLLAddr)
	if !ok || mac[0]&1 != 0 || mac == [6]byte{} || addr.IsUnspecified() || addr.IsMulticast() || addr.Is4In6() {
		return netip.Addr{}, [6]byte{}, false
	}
	return addr, mac, true
}

// ndChecksumOK verifies the ICMPv6 checksum of msg, carried in ip.
func ndChecksumOK(ip packet.IPv6, msg []byte) bool {
	sum := packet.PseudoHeaderChecksum(packet.ProtoICMPv6, ip[8:24], ip[24:40], uint32(len(msg)))
	return packet.Checksum(msg, sum) == 0xffff
}

// ndLinkAddr returns the first Ethernet link-layer address option of
// type typ in opts; a malformed option list has none.
func ndLinkAddr(opts []byte, typ uint8) ([6]byte, bool) {
	for len(opts) >= 8 {
		n := int(opts[1]) * 8
		if n == 0 || n > len(opts) {
			return [6]byte{}, false
		}
		if opts[0] == typ && n == 8 {
			return [6]byte(opts[2:8]), true
		}
		opts = opts[n:]
	}
	return [6]byte{}, false
}

// SolicitedNode returns target's solicited-node multicast address and
// the Ethernet address it maps to (RFC 4291 section 2.7.1, RFC 2464
// section 7).
func SolicitedNode(target netip.Addr) (netip.Addr, [6]byte) {
	t := target.As16()
	g := [16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: t[13], 14: t[14], 15: t[15]}
	return netip.AddrFrom16(g), [6]byte{0x33, 0x33, 0xff, t[13], t[14], t[15]}
}

// BuildNeighborSolicitation writes a neighbor solicitation for target
// from (srcMAC, srcIP), sent to target's solicited-node multicast group
// with a source link-layer address option (so that the answer carries
// the target's address option too), into b (at least NSFrameLen bytes),
// and returns its length: 0 if b is short or an address is not IPv6.
func BuildNeighborSolicitation(b []byte, srcMAC [6]byte, srcIP, target netip.Addr) int {
	if len(b) < NSFrameLen || !srcIP.Is6() || !target.Is6() || srcIP.Is4In6() || target.Is4In6() {
		return 0
	}
	group, groupMAC := SolicitedNode(target)
	e := packet.Ethernet(b)
	e.SetDst(groupMAC)
	e.SetSrc(srcMAC)
	e.SetType(packet.EtherTypeIPv6)
	ip := packet.IPv6(b[packet.EthernetLen : packet.EthernetLen+packet.IPv6Len])
	clear(ip)
	ip[0] = 6 << 4
	ip.SetPayloadLen(ndMsgLen)
	ip[6] = packet.ProtoICMPv6
	ip.SetHopLimit(ndHopLimit)
	ip.SetSrc(srcIP.As16())
	ip.SetDst(group.As16())
	msg := b[packet.EthernetLen+packet.IPv6Len : NSFrameLen]
	clear(msg)
	icmp := packet.ICMP(msg)
	icmp.SetType(packet.ICMPv6NeighborSolicit)
	t := target.As16()
	copy(msg[8:24], t[:])
	msg[24], msg[25] = packet.NDOptSourceLLAddr, 1
	copy(msg[26:32], srcMAC[:])
	sum := packet.PseudoHeaderChecksum(packet.ProtoICMPv6, ip[8:24], ip[24:40], ndMsgLen)
	icmp.SetChecksum(^packet.Checksum(msg, sum))
	return NSFrameLen
}
