package packet

import "encoding/binary"

// IPv6 header constants.
const (
	IPv6Len         = 40
	IPv6FragmentLen = 8

	// MaxIPv6ExtHeaders bounds the walk through an extension header chain,
	// so a frame made of nothing but extension headers costs little.
	MaxIPv6ExtHeaders = 16

	ipv6FlowLabelMask = 0x000fffff
	ipv6FragOffMask   = 0xfff8
	ipv6FragMore      = 0x0001
)

// IPv6 is a view of an IPv6 fixed header: at least IPv6Len bytes.
type IPv6 []byte

// Version returns the version nibble (6 for a valid header).
func (b IPv6) Version() uint8 { return b[0] >> 4 }

// TrafficClass returns the traffic class byte: DSCP and ECN.
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[0:2]) >> 4)
}

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(b[0:4]) & ipv6FlowLabelMask
}

// PayloadLen returns the length of everything after the fixed header.
func (b IPv6) PayloadLen() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// NextHeader returns the type of the header after the fixed one.
func (b IPv6) NextHeader() uint8 { return b[6] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[7] }

// Src returns the source address.
func (b IPv6) Src() [16]byte { return [16]byte(b[8:24]) }

// Dst returns the destination address.
func (b IPv6) Dst() [16]byte { return [16]byte(b[24:40]) }

// SetTrafficClass sets the traffic class byte.
func (b IPv6) SetTrafficClass(tc uint8) {
	v := binary.BigEndian.Uint16(b[0:2])
	v = v&0xf00f | uint16(tc)<<4
	binary.BigEndian.PutUint16(b[0:2], v)
}

// SetFlowLabel sets the 20-bit flow label; higher bits of l are ignored.
func (b IPv6) SetFlowLabel(l uint32) {
	v := binary.BigEndian.Uint32(b[0:4])
	v = v&^ipv6FlowLabelMask | l&ipv6FlowLabelMask
	binary.BigEndian.PutUint32(b[0:4], v)
}

// SetPayloadLen sets the payload length.
func (b IPv6) SetPayloadLen(n uint16) { binary.BigEndian.PutUint16(b[4:6], n) }

// SetHopLimit sets the hop limit.
func (b IPv6) SetHopLimit(h uint8) { b[7] = h }

// SetSrc sets the source address.
func (b IPv6) SetSrc(a [16]byte) { copy(b[8:24], a[:]) }

// SetDst sets the destination address.
func (b IPv6) SetDst(a [16]byte) { copy(b[24:40], a[:]) }

// IPv6Fragment is a view of an IPv6 fragment extension header:
// IPv6FragmentLen bytes.
type IPv6Fragment []byte

// NextHeader returns the type of the header after this one.
func (b IPv6Fragment) NextHeader() uint8 { return b[0] }

// FragmentOffset returns the offset of this piece in bytes.
func (b IPv6Fragment) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(b[2:4]) & ipv6FragOffMask)
}

// MoreFragments reports the M flag.
func (b IPv6Fragment) MoreFragments() bool {
	return binary.BigEndian.Uint16(b[2:4])&ipv6FragMore != 0
}

// offsetFlags returns the 16-bit word that holds the offset, the reserved
// bits and the M flag.
func (b IPv6Fragment) offsetFlags() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// ID returns the identification field.
func (b IPv6Fragment) ID() uint32 { return binary.BigEndian.Uint32(b[4:8]) }

// isIPv6ExtHeader reports whether proto is an extension header that the
// parser walks through to reach the upper-layer protocol. ESP is not one:
// what follows it is encrypted, so it is the flow's protocol.
func isIPv6ExtHeader(proto uint8) bool {
	switch proto {
	case ProtoHopOpts, ProtoRouting, ProtoDstOpts, ProtoAH, ProtoFragment:
		return true
	}
	return false
}

// ipv6ExtHeaderLen returns the length in bytes of the extension header of
// type proto whose first two bytes are next header and length. b must hold
// at least two bytes.
func ipv6ExtHeaderLen(proto uint8, b []byte) int {
	switch proto {
	case ProtoFragment:
		return IPv6FragmentLen
	case ProtoAH:
		return (int(b[1]) + 2) * 4 // in 32-bit words, less two
	default:
		return (int(b[1]) + 1) * 8 // in 64-bit words, less one
	}
}
