package conntrack

// conn is one tracked connection. It holds no pointers.
type conn struct {
	tup     [2]ctuple // original and reply direction
	expires int64     // monotonic ns; 0 marks a free slot
	label   [16]byte
	mark    uint32
	zone    uint16
	proto   uint8
	status  uint8
	tcp     tcpConn
	// seq is the TCP sequence adjustment of each direction, for an FTP
	// control connection whose payload NAT resized (see seqadj.go).
	seq [2]seqAdj
	alg ALG
	// rshard is the shard of the reply direction's index entry (the
	// original's is the home shard, where the connection lives).
	rshard uint8
}

// status bits, named as the kernel's (and OVS's -m dump) call them.
const (
	stV6        uint8 = 1 << 0
	stSeenReply uint8 = 1 << 1
	stAssured   uint8 = 1 << 2
	stSrcNAT    uint8 = 1 << 3
	stDstNAT    uint8 = 1 << 4
	stNAT             = stSrcNAT | stDstNAT
	stRelated   uint8 = 1 << 5 // opened as an expected (ALG data) connection
	stSeqAdj    uint8 = 1 << 6 // seq holds adjustments
)

func (c *conn) isV6() bool { return c.status&stV6 != 0 }

// tcpConn is the TCP tracker's per-connection state, as the kernel keeps
// it (struct ip_ct_tcp): one window record per direction and the last
// packet seen, for the retransmission and "ignored packet" logic.
type tcpConn struct {
	seen      [2]tcpSeen
	lastSeq   uint32
	lastAck   uint32
	lastEnd   uint32
	lastWin   uint16
	state     uint8
	lastDir   uint8
	lastIndex uint8
	retrans   uint8
	lastWscl  uint8
	lastFlags uint8
}

type tcpSeen struct {
	end    uint32 // highest sequence number seen + length
	maxend uint32 // highest ack + window seen from the other side
	maxwin uint32 // largest window seen
	maxack uint32 // highest ack sent
	scale  uint8
	flags  uint8
}

// UDP keeps the time after which a replied flow counts as a stream in
// the TCP record's sequence fields (a UDP connection has no use for them).
func (c *conn) udpStreamAt() int64 {
	return int64(uint64(c.tcp.lastSeq)<<32 | uint64(c.tcp.lastAck))
}

func (c *conn) setUDPStreamAt(t int64) {
	c.tcp.lastSeq = uint32(uint64(t) >> 32)
	c.tcp.lastAck = uint32(uint64(t))
}
