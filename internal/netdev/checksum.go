package netdev

import "gvs/internal/packet"

// Checksums come from internal/packet, the one home of header code; this
// file only names the offsets the virtio header uses.

// Checksum field offsets inside an L4 header, as the kernel reports them in
// virtio_net_hdr.csum_offset.
const (
	udpChecksumOffset = 6
	tcpChecksumOffset = 16
)

// completeChecksum fills in a checksum the sender offloaded
// (VIRTIO_NET_HDR_F_NEEDS_CSUM); false if the offsets do not fit in the
// frame.
func completeChecksum(frame []byte, start, offset int) bool {
	return packet.FinishChecksum(frame, start, offset) == nil
}
