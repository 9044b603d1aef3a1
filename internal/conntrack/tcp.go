package conntrack

import (
	"encoding/binary"

	"gvs/internal/packet"
)

// TCP states, numbered and named as the Linux kernel's tracker
// (nf_conntrack_proto_tcp) numbers them.
const (
	TCPNone uint8 = iota
	TCPSynSent
	TCPSynRecv
	TCPEstablished
	TCPFinWait
	TCPCloseWait
	TCPLastAck
	TCPTimeWait
	TCPClose
	TCPSynSent2
	tcpNumStates
	sIV = tcpNumStates     // invalid
	sIG = tcpNumStates + 1 // ignored
)

// KernelTCPStateName is the kernel's own name of a state, as conntrack -L
// prints it.
func KernelTCPStateName(s uint8) string {
	names := [...]string{"NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
		"CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2"}
	if int(s) < len(names) {
		return names[s]
	}
	return "INVALID"
}

// What the TCP flags of a packet amount to, the row of the state table.
const (
	tcpSynSet = iota
	tcpSynAckSet
	tcpFinSet
	tcpAckSet
	tcpRstSet
	tcpNoneSet
)

// Per-direction flags (tcpSeen.flags), the kernel's IP_CT_TCP_FLAG_*
// bits in the kernel's order (OVS's verbose dump names them so).
const (
	tfWindowScale uint8 = 1 << iota
	tfSackPerm
	tfCloseInit
	tfBeLiberal
	tfDataUnacked
	tfMaxackSet
	tfChallengeAck // in lastFlags only
	tfSimOpen      // in lastFlags only
)

var tcpFlagNames = [...]string{"WINDOW_SCALE", "SACK_PERM", "CLOSE_INIT", "BE_LIBERAL",
	"DATA_UNACKNOWLEDGED", "MAXACK_SET"}

// tcpTable[dir][index][state] is the next state: the kernel's transition
// table (see nf_conntrack_proto_tcp.c for the reasoning behind each cell).
var tcpTable = [2][6][tcpNumStates]uint8{
	{ // original direction
		//  NO          SS          SR          ES          FW          CW          LA          TW          CL          S2
		{TCPSynSent, TCPSynSent, sIG, sIG, sIG, sIG, sIG, TCPSynSent, TCPSynSent, TCPSynSent2},                                     // syn
		{sIV, sIV, TCPSynRecv, sIV, sIV, sIV, sIV, sIV, sIV, TCPSynRecv},                                                           // synack
		{sIV, sIV, TCPFinWait, TCPFinWait, TCPLastAck, TCPLastAck, TCPLastAck, TCPTimeWait, TCPClose, sIV},                         // fin
		{TCPEstablished, sIV, TCPEstablished, TCPEstablished, TCPCloseWait, TCPCloseWait, TCPTimeWait, TCPTimeWait, TCPClose, sIV}, // ack
		{sIV, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose},                            // rst
		{sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},                                                                         // none
	},
	{ // reply direction
		{sIV, TCPSynSent2, sIV, sIV, sIV, sIV, sIV, TCPSynSent, sIV, TCPSynSent2},                                   // syn
		{sIV, TCPSynRecv, sIG, sIG, sIG, sIG, sIG, sIG, sIG, TCPSynRecv},                                            // synack
		{sIV, sIV, TCPFinWait, TCPFinWait, TCPLastAck, TCPLastAck, TCPLastAck, TCPTimeWait, TCPClose, sIV},          // fin
		{sIV, sIG, TCPSynRecv, TCPEstablished, TCPCloseWait, TCPCloseWait, TCPTimeWait, TCPTimeWait, TCPClose, sIG}, // ack
		{sIV, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose, TCPClose},             // rst
		{sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV},                                                          // none
	},
}

// tcpValidFlags: the flag combinations (FIN, SYN, RST, ACK, URG; PSH, ECE
// and CWR do not matter) a segment may carry; anything else is +inv.
var tcpValidFlags = func() (v [64]bool) {
	const fin, syn, rst, ack, urg = 1, 2, 4, 16, 32
	for _, f := range []int{syn, syn | urg, syn | ack, rst, rst | ack, fin | ack, fin | ack | urg, ack, ack | urg} {
		v[f] = true
	}
	return v
}()

func tcpIndex(flags uint16) int {
	switch {
	case flags&packet.TCPFlagRST != 0:
		return tcpRstSet
	case flags&packet.TCPFlagSYN != 0:
		if flags&packet.TCPFlagACK != 0 {
			return tcpSynAckSet
		}
		return tcpSynSet
	case flags&packet.TCPFlagFIN != 0:
		return tcpFinSet
	case flags&packet.TCPFlagACK != 0:
		return tcpAckSet
	}
	return tcpNoneSet
}

// tcpSeg is one segment's header fields the tracker uses.
type tcpSeg struct {
	seq, ack, end uint32
	win           uint16
	flags         uint16
	hdr           []byte // the TCP header with options
	// ackAdj was taken from the packet's ack (see seqadj.go): its SACK
	// edges need the same.
	ackAdj uint32
	// liberal skips the window checks (Tracker.SetTCPSeqCheck(false)).
	liberal bool
}

func parseSeg(p *pkt) (tcpSeg, bool) {
	b := p.l4
	var s tcpSeg
	doff := int(b[12]>>4) * 4
	s.hdr = b[:doff]
	s.seq = binary.BigEndian.Uint32(b[4:8])
	s.ack = binary.BigEndian.Uint32(b[8:12])
	s.win = binary.BigEndian.Uint16(b[14:16])
	s.flags = p.tcpFlags
	s.end = s.seq + uint32(len(b)-doff)
	if s.flags&packet.TCPFlagSYN != 0 {
		s.end++
	}
	if s.flags&packet.TCPFlagFIN != 0 {
		s.end++
	}
	return s, tcpValidFlags[s.flags&0x37]
}

func before(a, b uint32) bool { return int32(a-b) < 0 }
func after(a, b uint32) bool  { return int32(b-a) < 0 }

// tcpOptions reads the window scale and SACK-permitted options.
func tcpOptions(hdr []byte, st *tcpSeen) {
	opts := hdr[20:]
	if len(opts) == 0 {
		return
	}
	st.scale = 0
	st.flags = 0
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return
		case 1:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return
		}
		size := int(opts[1])
		switch {
		case opts[0] == 4 && size == 2:
			st.flags |= tfSackPerm
		case opts[0] == 3 && size == 3:
			st.scale = min(opts[2], 14)
			st.flags |= tfWindowScale
		}
		opts = opts[size:]
	}
}

// tcpSack returns the highest right edge of the packet's SACK blocks, or
// ack when it has none.
func tcpSack(hdr []byte, ack uint32) uint32 {
	opts := hdr[20:]
	for len(opts) > 0 {
		switch opts[0] {
		case 0:
			return ack
		case 1:
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || opts[1] < 2 || int(opts[1]) > len(opts) {
			return ack
		}
		size := int(opts[1])
		if opts[0] == 5 && size >= 10 && (size-2)%8 == 0 {
			for i := 2; i+8 <= size; i += 8 {
				if r := binary.BigEndian.Uint32(opts[i+4 : i+8]); after(r, ack) {
					ack = r
				}
			}
			return ack
		}
		opts = opts[size:]
	}
	return ack
}

// tcpNew checks that a segment may open a connection and initialises the
// tracker's record from it (the kernel's tcp_new; loose pick-up of a
// connection already under way is on, as in the kernel by default).
func tcpNew(c *conn, seg *tcpSeg) bool {
	ns := tcpTable[0][tcpIndex(seg.flags)][TCPNone]
	if ns >= tcpNumStates {
		return false
	}
	c.tcp = tcpConn{lastIndex: tcpNoneSet}
	s0 := &c.tcp.seen[0]
	s0.end = seg.end
	s0.maxwin = max(uint32(seg.win), 1)
	if ns == TCPSynSent {
		s0.maxend = s0.end
		tcpOptions(seg.hdr, s0)
		return true
	}
	s0.maxend = s0.end + s0.maxwin
	s0.flags = tfSackPerm | tfBeLiberal
	c.tcp.seen[1].flags = tfSackPerm | tfBeLiberal
	return true
}

// tcp verdicts.
const (
	tcpAccept  = iota // valid: state updated
	tcpIgnore         // let through, state unchanged (the kernel's NF_ACCEPT without update)
	tcpInvalid        // +inv
	tcpRepeat         // a SYN reopens a closed connection: delete and track as new
)

// tcpInWindow is the kernel's window check (Rooij's "Real Stateful TCP
// Packet Filtering", as nf_conntrack_proto_tcp adapts it).
func tcpInWindow(t *tcpConn, dir int, index int, seg *tcpSeg) int {
	sender := &t.seen[dir]
	receiver := &t.seen[1-dir]
	seq, ack, end, win := seg.seq, seg.ack, seg.end, uint32(seg.win)
	syn := seg.flags&packet.TCPFlagSYN != 0
	hasAck := seg.flags&packet.TCPFlagACK != 0
	rst := seg.flags&packet.TCPFlagRST != 0
	sack := ack
	if receiver.flags&tfSackPerm != 0 {
		sack = tcpSack(seg.hdr, ack+seg.ackAdj) - seg.ackAdj
	}
	if sender.maxwin == 0 {
		if syn {
			tcpInitSender(sender, receiver, seg)
			if !hasAck {
				return tcpAccept // simultaneous open
			}
		} else {
			sender.end = end
			swin := win << sender.scale
			sender.maxwin = max(swin, 1)
			sender.maxend = end + sender.maxwin
			if receiver.maxwin == 0 {
				receiver.end, receiver.maxend = sack, sack
			} else if sack == receiver.end+1 {
				receiver.end++ // likely the answer to a keepalive
			}
		}
	} else if syn && after(end, sender.end) && (t.state == TCPSynSent || t.state == TCPSynRecv) {
		// A reinitialised sender (RFC 793): start again from this SYN.
		tcpInitSender(sender, receiver, seg)
		if dir == 1 && !hasAck {
			return tcpAccept
		}
	}
	if !hasAck || (rst && ack == 0) {
		ack, sack = receiver.end, receiver.end
	}
	if seq == end && (!rst || (seq == 0 && t.state == TCPSynSent)) {
		// No data: only the ack is checked.
		seq, end = sender.end, sender.end
	}
	liberal := sender.flags&tfBeLiberal != 0 || seg.liberal
	maxAckWin := max(sender.maxwin, 66000)
	switch {
	case !before(seq, sender.maxend+1):
		if !liberal {
			return tcpInvalid // over the receiver's window
		}
		return tcpAccept
	case receiver.maxwin != 0 && !after(end, sender.end-receiver.maxwin-1):
		if !liberal {
			return tcpIgnore // data already acked, retransmitted
		}
		return tcpAccept
	case !before(sack, receiver.end+1):
		if !liberal {
			return tcpInvalid // acks data not seen yet
		}
		return tcpAccept
	case !after(sack, receiver.end-maxAckWin-1):
		if !liberal {
			return tcpIgnore // an overly delayed ack
		}
		return tcpAccept
	}
	if !syn {
		win <<= sender.scale
	}
	if swin := win + (sack - ack); sender.maxwin < swin {
		sender.maxwin = swin
	}
	if after(end, sender.end) {
		sender.end = end
		sender.flags |= tfDataUnacked
	}
	if hasAck {
		if sender.flags&tfMaxackSet == 0 {
			sender.maxack = ack
			sender.flags |= tfMaxackSet
		} else if after(ack, sender.maxack) {
			sender.maxack = ack
		}
	}
	if receiver.maxwin != 0 && after(end, sender.maxend) {
		receiver.maxwin += end - sender.maxend
	}
	if after(sack+win, receiver.maxend-1) {
		receiver.maxend = sack + win
		if win == 0 {
			receiver.maxend++
		}
	}
	if ack == receiver.end {
		receiver.flags &^= tfDataUnacked
	}
	if index == tcpAckSet {
		if int(t.lastDir) == dir && t.lastSeq == seq && t.lastAck == ack && t.lastEnd == end && t.lastWin == uint16(win) {
			t.retrans++
		} else {
			t.lastDir, t.lastSeq, t.lastAck, t.lastEnd, t.lastWin = uint8(dir), seq, ack, end, uint16(win)
			t.retrans = 0
		}
	}
	return tcpAccept
}

func tcpInitSender(sender, receiver *tcpSeen, seg *tcpSeg) {
	sender.end = seg.end
	sender.maxend = seg.end
	sender.maxwin = max(uint32(seg.win), 1)
	tcpOptions(seg.hdr, sender)
	// Window scaling applies only when both sides offer it (RFC 1323).
	if sender.flags&tfWindowScale == 0 || receiver.flags&tfWindowScale == 0 {
		sender.scale, receiver.scale = 0, 0
	}
}

// tcpEstablishedAssured is the kernel's nf_conntrack_tcp_established.
func tcpEstablishedAssured(c *conn) bool {
	return c.tcp.state == TCPEstablished && c.status&stAssured != 0
}

func tcpCanEarlyDrop(state uint8) bool {
	switch state {
	case TCPFinWait, TCPLastAck, TCPTimeWait, TCPClose, TCPCloseWait:
		return true
	}
	return false
}

// tcpPacket runs one segment of an existing (or just created) connection
// through the state machine: the kernel's tcp_packet. It returns the
// verdict and the connection's new timeout (0: keep it); kill says the connection
// ends now (an RST answering a connection that never saw a reply).
func (t *Tracker) tcpPacket(c *conn, dir int, seg *tcpSeg, tm *Timeouts) (verdict int, timeout int64, kill bool) {
	tc := &c.tcp
	old := tc.state
	seg.liberal = t.noSeqCheck.Load()
	index := tcpIndex(seg.flags)
	ns := tcpTable[dir][index][old]
	inWindow := false
	switch ns {
	case TCPSynSent:
		if old < TCPTimeWait {
			break
		}
		if (tc.seen[dir].flags|tc.seen[1-dir].flags)&tfCloseInit != 0 ||
			(int(tc.lastDir) == dir && tc.lastIndex == tcpRstSet) {
			return tcpRepeat, 0, false
		}
		if v := t.tcpIgnored(c, dir, index, seg, old); v != tcpRepeatAsSynRecv {
			return v, 0, false
		}
		old, ns = TCPSynSent, TCPSynRecv
	case sIG:
		if v := t.tcpIgnored(c, dir, index, seg, old); v != tcpRepeatAsSynRecv {
			return v, 0, false
		}
		old, ns = TCPSynSent, TCPSynRecv
	case sIV:
		return tcpInvalid, 0, false
	case TCPTimeWait:
		if old == TCPLastAck && index == tcpAckSet && int(tc.lastDir) != dir &&
			tc.lastIndex == tcpSynSet && tc.lastFlags&tfChallengeAck != 0 {
			tc.lastFlags &^= tfChallengeAck
			return tcpIgnore, 0, false // an RFC 5961 challenge ACK, not the last ACK
		}
	case TCPSynSent2:
		tc.lastFlags |= tfSimOpen
	case TCPSynRecv:
		if dir == 1 && index == tcpAckSet && tc.lastFlags&tfSimOpen != 0 {
			ns = TCPEstablished
		}
	case TCPClose:
		if index != tcpRstSet {
			break
		}
		if tcpCanEarlyDrop(old) {
			inWindow = true
			break
		}
		other := &tc.seen[1-dir]
		if other.flags&tfMaxackSet != 0 && tc.lastIndex != tcpSynSet {
			if seg.seq == 0 && !tcpEstablishedAssured(c) {
				break
			}
			if before(seg.seq, other.maxack) {
				return tcpInvalid, 0, false
			}
			if !tcpEstablishedAssured(c) || seg.seq == other.maxack {
				break
			}
			if tc.lastIndex == tcpAckSet && int(tc.lastDir) == dir && seg.seq == tc.lastEnd {
				break
			}
			// Not exactly at the expected sequence number: keep the
			// state, so that a challenge ACK can follow.
			ns = old
		}
		if ((c.status&stSeenReply != 0 && tc.lastIndex == tcpSynSet) ||
			(c.status&stAssured == 0 && tc.lastIndex == tcpAckSet)) && seg.ack == tc.lastEnd {
			inWindow = true // an RST answering a SYN or ACK we let through
		}
	}
	if !inWindow {
		switch v := tcpInWindow(tc, dir, index, seg); v {
		case tcpIgnore:
			return tcpIgnore, 0, false
		case tcpInvalid:
			return tcpInvalid, t.tcpInvalidTimeout(c, index, tm), false
		}
	}
	tc.lastIndex = uint8(index)
	tc.lastDir = uint8(dir)
	tc.state = ns
	if old != ns && ns == TCPFinWait {
		tc.seen[dir].flags |= tfCloseInit
	}
	to := tm.TCP[ns]
	switch {
	case tc.retrans >= 3 && to > tm.TCPRetrans:
		to = tm.TCPRetrans
	case index == tcpRstSet:
		to = tm.TCP[TCPClose]
	case (tc.seen[0].flags|tc.seen[1].flags)&tfDataUnacked != 0 && to > tm.TCPUnack:
		to = tm.TCPUnack
	case tc.lastWin == 0 && to > tm.TCPRetrans:
		to = tm.TCPRetrans
	}
	if c.status&stSeenReply == 0 {
		if seg.flags&packet.TCPFlagRST != 0 {
			return tcpAccept, 0, true
		}
		if index == tcpSynSet && old == TCPSynSent {
			return tcpAccept, 0, false // a retransmitted SYN does not renew the timeout
		}
		if ns == TCPEstablished && to > tm.TCPUnack {
			to = tm.TCPUnack // a picked-up connection without a reply yet
		}
	} else if c.status&stAssured == 0 && (old == TCPSynRecv || old == TCPEstablished) && ns == TCPEstablished {
		c.status |= stAssured
	}
	return tcpAccept, to, false
}

// tcpIgnored records a packet the kernel lets through without changing
// the state ("ignored"), so that a later answer can resynchronise.
func (t *Tracker) tcpIgnored(c *conn, dir, index int, seg *tcpSeg, old uint8) int {
	tc := &c.tcp
	if index == tcpSynAckSet && tc.lastIndex == tcpSynSet && int(tc.lastDir) != dir && seg.ack == tc.lastEnd {
		// This SYN-ACK answers a SYN we ignored: the ends are in sync
		// and we were not; take the annotated SYN as the new start.
		ld := tc.lastDir
		s := &tc.seen[ld]
		s.end, s.maxend = tc.lastEnd, tc.lastEnd
		s.maxwin = max(uint32(tc.lastWin), 1)
		s.scale = tc.lastWscl
		s.flags = tc.lastFlags &^ (tfChallengeAck | tfSimOpen)
		tc.seen[1-ld] = tcpSeen{}
		tc.state = TCPSynSent
		return tcpRepeatAsSynRecv
	}
	tc.lastIndex = uint8(index)
	tc.lastDir = uint8(dir)
	tc.lastSeq = seg.seq
	tc.lastEnd = seg.end
	tc.lastWin = seg.win
	if index == tcpSynSet && dir == 0 {
		var seen tcpSeen
		tc.lastFlags, tc.lastWscl = 0, 0
		tcpOptions(seg.hdr, &seen)
		if seen.flags&tfWindowScale != 0 {
			tc.lastFlags |= tfWindowScale
			tc.lastWscl = seen.scale
		}
		if seen.flags&tfSackPerm != 0 {
			tc.lastFlags |= tfSackPerm
		}
		if old == TCPLastAck {
			tc.lastFlags |= tfChallengeAck
		}
	}
	return tcpIgnore
}

// tcpRepeatAsSynRecv: the resynchronising SYN-ACK; the caller runs the
// packet again from SYN_SENT so it moves the connection to SYN_RECV.
const tcpRepeatAsSynRecv = 100

// tcpInvalidTimeout shortens an assured, established connection's timeout
// when a FIN or RST arrives out of window, as the kernel does, so that
// it does not linger for days; 0 keeps the timeout.
func (t *Tracker) tcpInvalidTimeout(c *conn, index int, tm *Timeouts) int64 {
	if c.status&stAssured == 0 || c.tcp.state != TCPEstablished || index == tcpAckSet || index == tcpNoneSet {
		return 0
	}
	return tm.TCPUnack
}
