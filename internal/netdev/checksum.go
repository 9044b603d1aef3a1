package netdev

import (
	"encoding/binary"
	"hash/crc32"
)

// This file finishes checksums that the sending kernel left for "hardware"
// to fill in. It is deliberately small and private; internal/packet owns
// the general checksum code.

// onesSum adds b to acc as a sequence of big-endian 16-bit words (a
// trailing odd byte is padded with zero), without folding. Summing 32-bit
// halves of 64-bit loads is equivalent, because 2^16 is 1 modulo 0xffff,
// and is several times faster than a word loop.
func onesSum(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		v := binary.BigEndian.Uint64(b)
		acc += v>>32 + v&0xffffffff
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8
	}
	return acc
}

// fold reduces a running sum to 16 bits with end-around carries.
func fold(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return uint16(acc)
}

// Checksum field offsets inside an L4 header, as the kernel reports them in
// virtio_net_hdr.csum_offset.
const (
	udpChecksumOffset  = 6
	sctpChecksumOffset = 8
	tcpChecksumOffset  = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// completeChecksum fills in a checksum the sender offloaded
// (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at start+offset already holds
// the pseudo-header sum, so the ones' complement of the sum from start to
// the end of the frame is the final value. SCTP (the only offload at
// offset 8) uses CRC32c over the packet with the field zeroed instead.
// It returns false if the offsets do not fit in the frame.
func completeChecksum(frame []byte, start, offset int) bool {
	field := start + offset
	if start < 0 || offset < 0 || field+2 > len(frame) {
		return false
	}
	if offset == sctpChecksumOffset {
		if field+4 > len(frame) {
			return false
		}
		clear(frame[field : field+4])
		binary.LittleEndian.PutUint32(frame[field:], crc32.Checksum(frame[start:], castagnoli))
		return true
	}
	sum := ^fold(onesSum(frame[start:], 0))
	if sum == 0 && offset == udpChecksumOffset {
		sum = 0xffff // zero means "no checksum" in UDP
	}
	binary.BigEndian.PutUint16(frame[field:], sum)
	return true
}
