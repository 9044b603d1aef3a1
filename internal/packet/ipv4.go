package packet

import "encoding/binary"

// IP protocol numbers gvs looks into.
const (
	ProtoHopOpts  uint8 = 0
	ProtoICMPv4   uint8 = 1
	ProtoIGMP     uint8 = 2
	ProtoTCP      uint8 = 6
	ProtoUDP      uint8 = 17
	ProtoRouting  uint8 = 43
	ProtoFragment uint8 = 44
	ProtoGRE      uint8 = 47
	ProtoESP      uint8 = 50
	ProtoAH       uint8 = 51
	ProtoICMPv6   uint8 = 58
	ProtoNoNext   uint8 = 59
	ProtoDstOpts  uint8 = 60
	ProtoSCTP     uint8 = 132
)

// IPv4 header constants.
const (
	IPv4MinLen = 20
	IPv4MaxLen = 60 // IHL is 4 bits of 32-bit words

	ipv4FlagMoreFragments  = 0x2000
	ipv4FlagDontFragment   = 0x4000
	ipv4FragmentOffsetMask = 0x1fff
)

// IPv4 is a view of an IPv4 header: at least IPv4MinLen bytes.
type IPv4 []byte

// Version returns the version nibble (4 for a valid header).
func (b IPv4) Version() uint8 { return b[0] >> 4 }

// HeaderLen returns the header length in bytes, from IHL.
func (b IPv4) HeaderLen() int { return int(b[0]&0x0f) * 4 }

// TOS returns the whole type-of-service byte: DSCP and ECN.
func (b IPv4) TOS() uint8 { return b[1] }

// TotalLen returns the datagram length, header included.
func (b IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(b[2:4]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[4:6]) }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(b[6:8])&ipv4FragmentOffsetMask) * 8
}

// MoreFragments reports the MF flag.
func (b IPv4) MoreFragments() bool {
	return binary.BigEndian.Uint16(b[6:8])&ipv4FlagMoreFragments != 0
}

// DontFragment reports the DF flag.
func (b IPv4) DontFragment() bool {
	return binary.BigEndian.Uint16(b[6:8])&ipv4FlagDontFragment != 0
}

// IsFragment reports whether the datagram is a piece of a larger one.
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[6:8])&(ipv4FlagMoreFragments|ipv4FragmentOffsetMask) != 0
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[8] }

// Protocol returns the protocol of the payload.
func (b IPv4) Protocol() uint8 { return b[9] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[10:12]) }

// Src returns the source address.
func (b IPv4) Src() [4]byte { return [4]byte(b[12:16]) }

// Dst returns the destination address.
func (b IPv4) Dst() [4]byte { return [4]byte(b[16:20]) }

// SetTOS sets the type-of-service byte. The header checksum is not
// updated; see ChecksumUpdate16.
func (b IPv4) SetTOS(tos uint8) { b[1] = tos }

// SetTotalLen sets the datagram length.
func (b IPv4) SetTotalLen(n uint16) { binary.BigEndian.PutUint16(b[2:4], n) }

// SetTTL sets the time to live.
func (b IPv4) SetTTL(ttl uint8) { b[8] = ttl }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[10:12], c) }

// SetSrc sets the source address.
func (b IPv4) SetSrc(a [4]byte) { copy(b[12:16], a[:]) }

// SetDst sets the destination address.
func (b IPv4) SetDst(a [4]byte) { copy(b[16:20], a[:]) }

// ComputeChecksum returns the checksum the header should carry, computed
// over HeaderLen bytes with the checksum field taken as zero. The view must
// hold the whole header (HeaderLen bytes, at least IPv4MinLen).
func (b IPv4) ComputeChecksum() uint16 {
	hdr := b[:max(b.HeaderLen(), IPv4MinLen)]
	sum := Checksum(hdr[:10], 0)
	sum = Checksum(hdr[12:], sum)
	return ^sum
}

// IsValid reports whether the view holds a well-formed header of a
// datagram that fits in it: version 4, IHL of at least 5, and a total
// length that covers the header and does not run past the slice.
func (b IPv4) IsValid() bool {
	if len(b) < IPv4MinLen || b.Version() != 4 {
		return false
	}
	hl, tl := b.HeaderLen(), int(b.TotalLen())
	return hl >= IPv4MinLen && tl >= hl && tl <= len(b)
}
