package packet

import (
	"encoding/binary"
	"errors"
)

// Headroom is how many free bytes the packet path keeps in front of each
// frame so that headers can be added without moving the payload: packet
// buffers are Headroom+netdev.MaxFrame bytes long, ports receive into
// buf[Headroom:], and the frame is buf[Headroom:Headroom+n]. A VLAN push
// then only moves the 12 MAC bytes 4 bytes to the left. 128 bytes leave
// room for the outer headers of the tunnels to come (Ethernet, two tags,
// IPv6, UDP and a Geneve header with options) as well.
const Headroom = 128

// Errors of the in-place edits.
var (
	ErrNoRoom      = errors.New("packet: no room in the buffer to grow the frame")
	ErrNotInBuffer = errors.New("packet: frame does not lie inside the buffer")
)

// PushVLAN adds a VLAN tag with the given TPID (EtherTypeVLAN or
// EtherTypeQinQ) and wire TCI (see WireTCI) as the new outermost tag of
// frame, and returns the longer frame. frame must have been sliced from buf
// without capping its capacity (buf[h:h+n], not buf[h:h+n:m]): the tag goes into
// the headroom in front of it if there are at least 4 bytes of it, and
// otherwise into the room after it, moving the frame's payload. It never
// allocates; with no room either side it returns frame and ErrNoRoom.
//
// The caller updates its Offsets with PushedVLAN, and its Key by moving
// VLANTCI to InnerVLANTCI (or re-parsing).
func PushVLAN(buf, frame []byte, tpid, tci uint16) ([]byte, error) {
	if len(frame) < 2*MACLen {
		return frame, ErrTruncated
	}
	start, ok := offsetIn(buf, frame)
	if !ok {
		return frame, ErrNotInBuffer
	}
	full := buf[:cap(buf)]
	var grown []byte
	switch {
	case start >= VLANTagLen:
		grown = full[start-VLANTagLen : start+len(frame)]
		copy(grown, grown[VLANTagLen:VLANTagLen+2*MACLen])
	case start+len(frame)+VLANTagLen <= len(full):
		grown = full[start : start+len(frame)+VLANTagLen]
		copy(grown[2*MACLen+VLANTagLen:], grown[2*MACLen:len(frame)])
	default:
		return frame, ErrNoRoom
	}
	tag := VLANTag(grown[2*MACLen:])
	tag.SetTPID(tpid)
	tag.SetTCI(tci)
	return grown, nil
}

// offsetIn returns where frame starts inside buf's backing array, and
// whether frame really is a slice of buf that shares its capacity end (so
// that buf[start:] covers frame).
func offsetIn(buf, frame []byte) (int, bool) {
	full := buf[:cap(buf)]
	start := cap(full) - cap(frame)
	if cap(frame) == 0 || start < 0 || start >= len(full) {
		return 0, false
	}
	return start, &full[start] == &frame[0]
}

// PopVLAN removes the outermost VLAN tag of frame by moving the MAC
// addresses 4 bytes to the right, and returns the shorter frame (a slice of
// the same memory, with 4 more bytes of headroom). A frame without a tag is
// returned as it is, as popping an untagged frame does nothing.
//
// The caller updates its Offsets with PoppedVLAN.
func PopVLAN(frame []byte) []byte {
	if !hasVLANTag(frame) {
		return frame
	}
	copy(frame[VLANTagLen:VLANTagLen+2*MACLen], frame[:2*MACLen])
	return frame[VLANTagLen:]
}

// SetVLAN rewrites the bits of the outermost tag's wire TCI that mask
// selects with those of tci: VLANVIDMask to change the VID, VLANPCPMask to
// change the priority, 0xffff for both (and DEI). It reports false, and
// changes nothing, for a frame without a tag.
func SetVLAN(frame []byte, tci, mask uint16) bool {
	if !hasVLANTag(frame) {
		return false
	}
	field := frame[2*MACLen+2:]
	old := binary.BigEndian.Uint16(field)
	binary.BigEndian.PutUint16(field, old&^mask|tci&mask)
	return true
}

// hasVLANTag reports whether frame holds a whole outer VLAN tag followed by
// a type field.
func hasVLANTag(frame []byte) bool {
	return len(frame) >= EthernetLen+VLANTagLen &&
		IsVLANTPID(binary.BigEndian.Uint16(frame[2*MACLen:]))
}

// VLANHeader is the value of one VLAN header: its TPID (EtherTypeVLAN or
// EtherTypeQinQ) and its wire TCI (see WireTCI).
type VLANHeader struct {
	TPID uint16
	TCI  uint16
}

// VLANHeaders returns the first n VLAN headers that Parse found in frame
// (n is capped at off.NumVLANs), outermost first, and how many it
// returned. It reads nothing past the end of frame.
func VLANHeaders(frame []byte, off *Offsets, n int) (hs [MaxVLANs]VLANHeader, got int) {
	n = min(n, int(off.NumVLANs), MaxVLANs)
	pos := int(off.VLAN)
	for ; got < n && pos > 0 && pos+VLANTagLen <= len(frame); got++ {
		tag := VLANTag(frame[pos:])
		hs[got] = VLANHeader{TPID: tag.TPID(), TCI: tag.TCI()}
		pos += VLANTagLen
	}
	return hs, got
}
