package packet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"
)

// The Internet checksum (RFC 1071) is the one's complement of the one's
// complement sum of 16-bit big-endian words. Checksum returns the sum
// itself, not complemented, so sums over pieces (pseudo-header, header,
// payload) can be chained through its initial argument; the value stored
// in a header is its complement.

// vectorMin is the shortest buffer whose bulk goes to sum32Vector: below
// it the call costs more than it saves.
const vectorMin = 128

// Checksum returns the one's complement sum of b, added to initial (a sum
// over earlier bytes, 0 to start). An odd-length b is padded with a zero
// byte, so only the last piece of a chain may be odd.
func Checksum(b []byte, initial uint16) uint16 {
	// The sum is independent of byte order (RFC 1071 §2(B)): add the data
	// as little-endian words, which the CPU loads directly, and swap the
	// folded result once at the end. The bulk goes as 32-bit words into
	// four 64-bit accumulators: no carries to chain (they cannot overflow
	// below 2^31 rounds of 64 bytes) and four independent adds at a time,
	// which measured about a third faster than one chain of 64-bit adds
	// with carry. Where the CPU has them, vector adds of the same words
	// take the bulk of a long buffer first (checksum_amd64.s).
	var a0, a1, a2, a3 uint64
	a0 = uint64(bits.ReverseBytes16(initial))
	if vectorSum && len(b) >= vectorMin {
		n := len(b) &^ 63
		a0 += sum32Vector(b[:n]) // the same 32-bit words, up to 2^46 for 64 KiB
		b = b[n:]
	}
	for len(b) >= 64 {
		a0 += uint64(binary.LittleEndian.Uint32(b[0:])) + uint64(binary.LittleEndian.Uint32(b[16:]))
		a1 += uint64(binary.LittleEndian.Uint32(b[4:])) + uint64(binary.LittleEndian.Uint32(b[20:]))
		a2 += uint64(binary.LittleEndian.Uint32(b[8:])) + uint64(binary.LittleEndian.Uint32(b[24:]))
		a3 += uint64(binary.LittleEndian.Uint32(b[12:])) + uint64(binary.LittleEndian.Uint32(b[28:]))
		a0 += uint64(binary.LittleEndian.Uint32(b[32:])) + uint64(binary.LittleEndian.Uint32(b[48:]))
		a1 += uint64(binary.LittleEndian.Uint32(b[36:])) + uint64(binary.LittleEndian.Uint32(b[52:]))
		a2 += uint64(binary.LittleEndian.Uint32(b[40:])) + uint64(binary.LittleEndian.Uint32(b[56:]))
		a3 += uint64(binary.LittleEndian.Uint32(b[44:])) + uint64(binary.LittleEndian.Uint32(b[60:]))
		b = b[64:]
	}
	acc, c1 := bits.Add64(a0, a1, 0)
	acc, c2 := bits.Add64(acc, a2, 0)
	acc, c3 := bits.Add64(acc, a3, 0)
	acc += c1 + c2 + c3 // cannot overflow: each accumulator is far below 2^63
	var carry uint64
	for len(b) >= 8 {
		acc, carry = bits.Add64(acc, binary.LittleEndian.Uint64(b), 0)
		acc += carry
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint32(b)), 0)
		acc += carry
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, carry = bits.Add64(acc, uint64(binary.LittleEndian.Uint16(b)), 0)
		acc += carry
		b = b[2:]
	}
	if len(b) == 1 {
		acc, carry = bits.Add64(acc, uint64(b[0]), 0)
		acc += carry
	}
	return bits.ReverseBytes16(fold64(acc))
}

// fold64 folds a 64-bit one's complement sum into 16 bits.
func fold64(acc uint64) uint16 {
	acc = acc>>32 + acc&0xffffffff // at most 33 bits
	acc = acc>>32 + acc&0xffffffff // at most 32 bits
	acc = acc>>16 + acc&0xffff     // at most 17 bits
	acc = acc>>16 + acc&0xffff     // 16 bits
	return uint16(acc)
}

// ChecksumCombine returns the one's complement sum of two sums.
func ChecksumCombine(a, b uint16) uint16 {
	s := uint32(a) + uint32(b)
	return uint16(s + s>>16)
}

// PseudoHeaderChecksum returns the sum of the pseudo-header that TCP, UDP
// and ICMPv6 checksums cover: source and destination addresses (4 or 16
// bytes each), the protocol and the upper-layer length.
func PseudoHeaderChecksum(proto uint8, src, dst []byte, length uint32) uint16 {
	sum := Checksum(src, 0)
	sum = Checksum(dst, sum)
	var tail [8]byte
	binary.BigEndian.PutUint32(tail[0:4], length)
	tail[7] = proto
	return Checksum(tail[:], sum)
}

// ChecksumUpdate16 returns a header checksum field value csum updated for
// one 16-bit word of the covered data changing from old to new (RFC 1624,
// equation 3), without summing the data again.
func ChecksumUpdate16(csum, old, new uint16) uint16 {
	s := uint32(^csum) + uint32(^old) + uint32(new)
	s = s>>16 + s&0xffff
	s = s>>16 + s&0xffff
	return ^uint16(s)
}

// ChecksumUpdate32 is ChecksumUpdate16 for a 32-bit value, such as an IPv4
// address, that sits at an even offset in the covered data.
func ChecksumUpdate32(csum uint16, old, new uint32) uint16 {
	csum = ChecksumUpdate16(csum, uint16(old>>16), uint16(new>>16))
	return ChecksumUpdate16(csum, uint16(old), uint16(new))
}

// ChecksumUpdateBytes is ChecksumUpdate16 for a run of bytes that sits at an
// even offset in the covered data, such as an IPv6 address. old and new
// have the same, even length.
func ChecksumUpdateBytes(csum uint16, old, new []byte) uint16 {
	s := uint64(^csum)
	n := min(len(old), len(new)) &^ 1
	for i := 0; i < n; i += 2 {
		s += uint64(^binary.BigEndian.Uint16(old[i:])) + uint64(binary.BigEndian.Uint16(new[i:]))
	}
	return ^fold64(s)
}

// ErrChecksumRange reports checksum offsets outside the frame.
var ErrChecksumRange = errors.New("packet: checksum offsets out of range")

// FinishChecksum completes a checksum that a sender left partial for
// offload (virtio_net_hdr NEEDS_CSUM, Linux CHECKSUM_PARTIAL): the field at
// csumStart+csumOffset already holds the pseudo-header sum, so the
// checksum is the complement of the sum from csumStart to the end of the
// frame, stored in that field. A zero result is stored as 0xffff, its
// equal in one's complement, because 0 means "no checksum" to UDP. SCTP,
// the only protocol whose field sits at offset 8, uses CRC32c over the
// packet with the field zeroed instead.
func FinishChecksum(frame []byte, csumStart, csumOffset int) error {
	field := csumStart + csumOffset
	size := 2
	if csumOffset == sctpChecksumOffset {
		size = 4
	}
	if csumStart < 0 || csumOffset < 0 || field+size > len(frame) || field < csumStart {
		return fmt.Errorf("%w: start %d offset %d in a %d-byte frame",
			ErrChecksumRange, csumStart, csumOffset, len(frame))
	}
	if size == 4 {
		clear(frame[field : field+4])
		binary.LittleEndian.PutUint32(frame[field:], crc32.Checksum(frame[csumStart:], crc32c))
		return nil
	}
	binary.BigEndian.PutUint16(frame[field:], nonZero(^Checksum(frame[csumStart:], 0)))
	return nil
}

func nonZero(csum uint16) uint16 {
	if csum == 0 {
		return 0xffff
	}
	return csum
}

// SetIPv4Checksum recomputes the header checksum of ip, which must hold a
// whole header.
func SetIPv4Checksum(ip IPv4) {
	ip.SetChecksum(ip.ComputeChecksum())
}

// ErrNoChecksum reports that a frame's checksums cannot be recomputed from
// its offsets.
var ErrNoChecksum = errors.New("packet: no checksum to recompute")

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// sctpChecksumOffset is where SCTP's CRC32c sits in its common header; no
// other transport's checksum field is at that offset.
const sctpChecksumOffset = 8

// RecomputeChecksums recomputes, from scratch, the IPv4 header checksum and
// the transport checksum (TCP, UDP, SCTP, ICMP, ICMPv6) of a frame that off
// describes (as Parse left it), for frames that gvs built or rewrote. The
// transport checksum of a fragment is left alone: it covers bytes this
// frame does not hold. UDP over IPv4 gets a checksum even if it had none.
func RecomputeChecksums(frame []byte, off *Offsets) error {
	l3, end := int(off.L3), int(off.L3End)
	if l3 < EthernetLen || end > len(frame) || l3+IPv4MinLen > end {
		return ErrNoChecksum
	}
	ip := frame[l3:end]
	// The type field right before L3 (Ethernet or SNAP) says which IP
	// this is; the version nibble is not checked by Parse, so not trusted.
	var v4 bool
	switch binary.BigEndian.Uint16(frame[l3-2:]) {
	case EtherTypeIPv4:
		v4 = true
	case EtherTypeIPv6:
	default:
		return ErrNoChecksum
	}
	if v4 {
		if IPv4(ip).HeaderLen() > len(ip) {
			return ErrNoChecksum
		}
		SetIPv4Checksum(IPv4(ip))
	} else if len(ip) < IPv6Len {
		return ErrNoChecksum
	}
	l4 := int(off.L4)
	if l4 == 0 || off.Fragment {
		return nil
	}
	if l4 < l3 || l4 > end {
		return ErrNoChecksum
	}
	return setL4Checksum(frame[l4:end], ip, off.L4Proto, v4)
}

// setL4Checksum computes the checksum of the transport segment seg inside
// the IP datagram ip.
func setL4Checksum(seg, ip []byte, proto uint8, v4 bool) error {
	field, hdrLen := l4ChecksumField(proto, v4)
	if hdrLen == 0 {
		return nil
	}
	if hdrLen > len(seg) {
		return ErrNoChecksum
	}
	if proto == ProtoSCTP {
		binary.LittleEndian.PutUint32(seg[8:12], 0)
		binary.LittleEndian.PutUint32(seg[8:12], crc32.Checksum(seg, crc32c))
		return nil
	}
	binary.BigEndian.PutUint16(seg[field:], 0)
	var sum uint16
	switch {
	case proto == ProtoICMPv4:
		// ICMPv4 has no pseudo-header.
	case v4:
		sum = PseudoHeaderChecksum(proto, ip[12:16], ip[16:20], uint32(len(seg)))
	default:
		sum = PseudoHeaderChecksum(proto, ip[8:24], ip[24:40], uint32(len(seg)))
	}
	csum := ^Checksum(seg, sum)
	if proto == ProtoUDP {
		csum = nonZero(csum)
	}
	binary.BigEndian.PutUint16(seg[field:], csum)
	return nil
}

// l4ChecksumField returns where a transport protocol keeps its checksum
// and the header length that holds it; 0, 0 for a protocol without one.
func l4ChecksumField(proto uint8, v4 bool) (field, hdrLen int) {
	switch {
	case proto == ProtoTCP:
		return 16, TCPMinLen
	case proto == ProtoUDP:
		return 6, UDPLen
	case proto == ProtoSCTP:
		return 8, SCTPLen
	case proto == ProtoICMPv4 && v4, proto == ProtoICMPv6 && !v4:
		return 2, ICMPv4Len
	}
	return 0, 0
}
