package conntrack

import (
	"encoding/binary"

	"gvs/internal/packet"
)

// When NAT rewrites an FTP announcement to a text of another length, the
// sender's later sequence numbers no longer match what the receiver
// counts, so the NATed packets of both directions are corrected: the
// sequence numbers of the direction that changed size, and the
// acknowledgements (and SACK edges) going back. As in the kernel's
// nf_ct_seqadj, one direction remembers the sequence number of the last
// segment that changed size and the offsets before and after it.

// seqAdj is one direction's adjustment.
type seqAdj struct {
	pos           uint32 // sequence number (sender's, unadjusted) of the last resized segment
	before, after int32  // offset for segments up to pos, and after it
}

// offset is the adjustment of sequence number seq of this direction.
func (s *seqAdj) offset(seq uint32) int32 {
	if after(seq, s.pos) {
		return s.after
	}
	return s.before
}

// ackOffset is the adjustment to take from an acknowledgement of this
// direction's data (the acknowledgement is in the receiver's, adjusted,
// numbers).
func (s *seqAdj) ackOffset(ack uint32) int32 {
	if after(ack-uint32(s.before), s.pos) {
		return s.after
	}
	return s.before
}

// record notes that the segment at seq grew by delta bytes. A segment at
// or before the last one recorded (a retransmission) changes nothing.
func (s *seqAdj) record(seq uint32, delta int32) {
	if s.before == s.after || before(s.pos, seq) {
		s.pos = seq
		s.before = s.after
		s.after += delta
	}
}

// seqAdjust corrects the sequence number, acknowledgement and SACK edges
// of a TCP segment of c in direction dir, fixing the checksum
// incrementally. It reports whether anything changed.
func seqAdjust(l4 []byte, c *conn, dir int) bool {
	if len(l4) < 20 {
		return false
	}
	changed := false
	set := func(at int, v uint32) {
		if binary.BigEndian.Uint32(l4[at:]) == v {
			return
		}
		// The checksum update needs a run at an even offset: an option
		// at an odd one takes a byte on each side.
		lo, hi := at&^1, (at+5)&^1
		if hi > len(l4) {
			hi = len(l4)
		}
		var old [6]byte
		n := copy(old[:], l4[lo:hi])
		binary.BigEndian.PutUint32(l4[at:], v)
		cs := binary.BigEndian.Uint16(l4[16:])
		binary.BigEndian.PutUint16(l4[16:], packet.ChecksumUpdateBytes(cs, old[:n], l4[lo:hi]))
		changed = true
	}
	seq := binary.BigEndian.Uint32(l4[4:])
	set(4, seq+uint32(c.seq[dir].offset(seq)))
	if l4[13]&byte(packet.TCPFlagACK) == 0 {
		return changed
	}
	other := &c.seq[1-dir]
	ack := binary.BigEndian.Uint32(l4[8:])
	set(8, ack-uint32(other.ackOffset(ack)))
	doff := int(l4[12]>>4) * 4
	if doff > len(l4) {
		return changed
	}
	// SACK edges (option 5) name the other direction's data too.
	for i := 20; i < doff; {
		switch l4[i] {
		case 0:
			return changed
		case 1:
			i++
			continue
		}
		if i+1 >= doff || l4[i+1] < 2 || i+int(l4[i+1]) > doff {
			return changed
		}
		n := int(l4[i+1])
		if l4[i] == 5 {
			for e := i + 2; e+4 <= i+n; e += 4 {
				v := binary.BigEndian.Uint32(l4[e:])
				set(e, v-uint32(other.ackOffset(v)))
			}
		}
		i += n
	}
	return changed
}
