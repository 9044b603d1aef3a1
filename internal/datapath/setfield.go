package datapath

import (
	"encoding/binary"

	"gvs/internal/packet"
)

// setField rewrites one header field of frame, laid out as off says and
// described by k, updating the checksums that cover it incrementally. A
// field the frame does not have (an IPv4 field of an ARP frame, a port of
// a later fragment) is left alone: translation only emits set-fields
// whose prerequisites the match checked, and this keeps a mistake from
// writing into the payload.
func setField(frame []byte, k *packet.Key, off *packet.Offsets, a *Action) {
	switch a.Field {
	case FieldEthDst, FieldEthSrc:
		if len(frame) < packet.EthernetLen {
			return
		}
		var mac [6]byte
		for i := range mac {
			mac[i] = byte(a.Value >> (40 - 8*i))
		}
		if a.Field == FieldEthDst {
			packet.Ethernet(frame).SetDst(mac)
		} else {
			packet.Ethernet(frame).SetSrc(mac)
		}
	case FieldIPv4Src, FieldIPv4Dst, FieldIPv4TOS, FieldIPv4TTL:
		if ip := ipv4Header(frame, k, off); ip != nil {
			setIPv4(frame, ip, k, off, a)
		}
	case FieldTpSrc, FieldTpDst:
		setPort(frame, off, a)
	}
}

// ipv4Header returns the frame's IPv4 header, or nil.
func ipv4Header(frame []byte, k *packet.Key, off *packet.Offsets) packet.IPv4 {
	l3 := int(off.L3)
	if k.DlType != packet.EtherTypeIPv4 || l3 == 0 || l3+20 > len(frame) {
		return nil
	}
	ip := packet.IPv4(frame[l3:])
	if ip.HeaderLen() < 20 || l3+ip.HeaderLen() > len(frame) {
		return nil
	}
	return ip
}

// setIPv4 rewrites an IPv4 header field, and for an address the TCP or
// UDP checksum too, whose pseudo-header covers it.
func setIPv4(frame []byte, ip packet.IPv4, k *packet.Key, off *packet.Offsets, a *Action) {
	switch a.Field {
	case FieldIPv4TOS, FieldIPv4TTL:
		// TOS and TTL share a 16-bit checksum word with their neighbour.
		pos := 0 // the word of TOS: version/IHL and TOS
		if a.Field == FieldIPv4TTL {
			pos = 8 // TTL and protocol
		}
		old := binary.BigEndian.Uint16(ip[pos:])
		if a.Field == FieldIPv4TOS {
			ip.SetTOS(uint8(a.Value))
		} else {
			ip.SetTTL(uint8(a.Value))
		}
		ip.SetChecksum(packet.ChecksumUpdate16(ip.Checksum(), old, binary.BigEndian.Uint16(ip[pos:])))
		return
	}
	pos := 12
	if a.Field == FieldIPv4Dst {
		pos = 16
	}
	old := binary.BigEndian.Uint32(ip[pos:])
	v := uint32(a.Value)
	binary.BigEndian.PutUint32(ip[pos:], v)
	ip.SetChecksum(packet.ChecksumUpdate32(ip.Checksum(), old, v))
	if field, udp := l4Checksum(frame, off); field >= 0 {
		c := binary.BigEndian.Uint16(frame[field:])
		if !udp || c != 0 {
			storeL4(frame, field, udp, packet.ChecksumUpdate32(c, old, v))
		}
	}
}

// setPort rewrites a TCP or UDP port and the transport checksum.
func setPort(frame []byte, off *packet.Offsets, a *Action) {
	field, udp := l4Checksum(frame, off)
	if field < 0 {
		return
	}
	pos := int(off.L4)
	if a.Field == FieldTpDst {
		pos += 2
	}
	old := binary.BigEndian.Uint16(frame[pos:])
	v := uint16(a.Value)
	binary.BigEndian.PutUint16(frame[pos:], v)
	c := binary.BigEndian.Uint16(frame[field:])
	if !udp || c != 0 {
		storeL4(frame, field, udp, packet.ChecksumUpdate16(c, old, v))
	}
}

// l4Checksum returns where the TCP or UDP checksum of the frame is, and
// whether it is UDP's; -1 if the frame has no whole TCP or UDP header
// (not TCP or UDP, a later fragment, cut short).
func l4Checksum(frame []byte, off *packet.Offsets) (int, bool) {
	l4 := int(off.L4)
	switch {
	case l4 == 0:
	case off.L4Proto == packet.ProtoTCP && l4+20 <= len(frame):
		return l4 + 16, false
	case off.L4Proto == packet.ProtoUDP && l4+8 <= len(frame):
		return l4 + 6, true
	}
	return -1, false
}

// storeL4 stores a transport checksum. A UDP checksum of 0 means none (the
// callers leave it so); a computed 0 goes out as 0xffff, its other form,
// as RFC 768 asks.
func storeL4(frame []byte, field int, udp bool, c uint16) {
	if udp && c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], c)
}
