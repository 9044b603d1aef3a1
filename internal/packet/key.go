package packet

// Key is the flow key: every field an OpenFlow match can look at (see
// ovs-fields(7)), extracted from one frame plus the metadata that travels
// with it. It is comparable and fixed-size (no slices, no pointers), so it
// can be a map key or be hashed as plain memory. Its fields are laid out
// with no padding between them, which a test checks; keep it so when
// adding fields.
//
// Addresses: IPv4 and IPv6 addresses live in separate fields (NwSrc/NwDst
// and IPv6Src/IPv6Dst), as OpenFlow's nw_src and ipv6_src are separate
// fields; only the pair that matches DlType is ever non-zero. ARP keeps its
// own fields too, rather than reusing the IPv4 ones as OpenFlow 1.0 does.
//
// Fields a frame does not have are zero. Parse fills InPort and the packet
// fields; the metadata fields (recirculation, conntrack, tunnel, marks,
// registers, metadata) are left zero for the stages that own them.
type Key struct {
	// TunID is the tunnel key (VNI, GRE key) the frame arrived with.
	TunID uint64
	// Metadata is OpenFlow's metadata register (write_metadata,
	// set_field:...->metadata); it is zero when a frame enters the bridge.
	Metadata uint64

	RecircID uint32 // recirculation id, 0 on first pass
	DpHash   uint32 // datapath hash, when a hash action computed one
	InPort   uint32 // datapath port the frame came in on
	PktMark  uint32 // skb mark
	CtMark   uint32 // conntrack mark

	TunErspanIdx uint32 // ERSPAN v1 session index

	// Regs are the Nicira registers reg0 to reg15 (xregN is Regs[2N] as
	// its high half and Regs[2N+1] as its low half); zero when a frame
	// enters the bridge, set by the actions of the flows it meets.
	Regs [NumRegs]uint32

	// IPv6Label is the 20-bit flow label (IPv6 only).
	IPv6Label uint32
	// MPLSLSE holds the outermost MPLS label stack entries (label, TC,
	// BOS, TTL as on the wire), outermost first, up to the bottom of the
	// stack or MaxMPLSLabels, for DlType 0x8847/0x8848.
	MPLSLSE [MaxMPLSLabels]uint32

	CtZone   uint16 // conntrack zone
	CtTpSrc  uint16 // conntrack original-direction source port
	CtTpDst  uint16 // conntrack original-direction destination port
	TunFlags uint16 // tunnel flags (OAM)
	TunGBPID uint16 // VXLAN group-based policy id

	// VLANTCI is the outermost VLAN tag's TCI with VLANPresent set, or 0
	// for an untagged frame. Both 802.1Q (0x8100) and 802.1ad (0x88a8)
	// outer tags count.
	VLANTCI uint16
	// InnerVLANTCI is the second tag of a double-tagged (QinQ) frame, in
	// the same form, or 0.
	InnerVLANTCI uint16
	// DlType is the ethertype after the VLAN tags that were parsed; the
	// SNAP type for LLC/SNAP frames; EtherTypeNone for other 802.3 frames.
	DlType uint16

	// TpSrc and TpDst are the TCP, UDP or SCTP ports; for ICMP, ICMPv6
	// and IGMP they hold the type and the code.
	TpSrc, TpDst uint16
	// TCPFlags holds the 12 flag bits of a TCP header.
	TCPFlags uint16
	// ArpOp is the ARP/RARP opcode; opcodes above 255 read as 0, as in
	// OVS, which treats arp_op as 8 bits wide for matching.
	ArpOp uint16

	CtState       uint8 // conntrack state bits
	CtNwProto     uint8 // conntrack original-direction protocol
	TunTOS        uint8 // outer TOS of the tunnel
	TunTTL        uint8 // outer TTL of the tunnel
	TunGBPFlag    uint8 // VXLAN group-based policy flags
	TunErspanVer  uint8 // ERSPAN version (1 or 2)
	TunErspanDir  uint8 // ERSPAN v2 direction: 0 ingress, 1 egress
	TunErspanHWID uint8 // ERSPAN v2 engine id

	NwProto uint8 // IP protocol (or 44 for a later IPv6 fragment)
	NwTOS   uint8 // the whole TOS / traffic class byte: DSCP and ECN
	NwTTL   uint8 // TTL or hop limit
	NwFrag  uint8 // FragAny, FragAny|FragLater or 0

	TunSrc, TunDst         [4]byte  // IPv4 tunnel endpoints
	TunIPv6Src, TunIPv6Dst [16]byte // IPv6 tunnel endpoints

	CtLabel              [16]byte // conntrack label, big-endian
	CtNwSrc, CtNwDst     [4]byte  // conntrack original-direction IPv4 addresses
	CtIPv6Src, CtIPv6Dst [16]byte // conntrack original-direction IPv6 addresses
	DlSrc, DlDst         [6]byte  // Ethernet addresses
	NwSrc, NwDst         [4]byte  // IPv4 addresses
	IPv6Src, IPv6Dst     [16]byte // IPv6 addresses
	ArpSha, ArpTha       [6]byte  // ARP hardware addresses
	ArpSpa, ArpTpa       [4]byte  // ARP protocol addresses
	NdTarget             [16]byte // ICMPv6 ND target address
	NdSll, NdTll         [6]byte  // ND source/target link-layer options

	// ConjID is conj_id: 0 for every frame; an OpenFlow table sets it
	// only for the lookup of a conjunctive match's conj_id flow.
	ConjID uint32
	_      uint32 // the key stays a whole number of 64-bit words
}

// NumRegs is how many 32-bit registers (reg0 to reg15) a flow key has.
const NumRegs = 16

// NwFrag bits, as OpenFlow's ip_frag field defines them.
const (
	FragAny   uint8 = 1 // the datagram is a fragment (any offset)
	FragLater uint8 = 2 // the fragment's offset is not zero
)

// Offsets says where each header of a parsed frame starts, counted from
// the first byte of the Ethernet header, so that actions can rewrite
// fields without parsing again. It is kept apart from Key because it
// describes one frame's layout, not what the frame matches.
//
// An offset of 0 means the header is absent or was not parsed: no header
// other than Ethernet can start at 0.
type Offsets struct {
	// VLAN is the offset of the outermost VLAN tag (its TPID), 0 if the
	// frame is untagged.
	VLAN uint16
	// L3 is the first byte after the L2 headers (Ethernet, VLAN tags,
	// LLC/SNAP): the IP or ARP header, or the MPLS label stack.
	L3 uint16
	// L4 is the transport header (TCP, UDP, SCTP, ICMP, ICMPv6), past any
	// IPv6 extension headers. 0 for later fragments and for protocols
	// whose header was not parsed.
	L4 uint16
	// Payload is the first byte after the L4 header.
	Payload uint16
	// L3End is the end of the IP datagram as its header gives it; bytes
	// from here to the end of the frame are Ethernet padding.
	L3End uint16
	// NumVLANs is how many VLAN tags were parsed (0 to MaxVLANs).
	NumVLANs uint8
	// L4Proto is the protocol of the header at L4.
	L4Proto uint8
	// Fragment reports an IP fragment (first or later), whose transport
	// checksum cannot be computed from this frame alone.
	Fragment bool
}

// PushedVLAN updates the offsets after PushVLAN added a tag.
func (o *Offsets) PushedVLAN() {
	o.VLAN = 2 * MACLen
	o.NumVLANs++
	o.shift(VLANTagLen)
}

// PoppedVLAN updates the offsets after PopVLAN removed the outer tag.
func (o *Offsets) PoppedVLAN() {
	if o.NumVLANs == 0 {
		return
	}
	o.NumVLANs--
	if o.NumVLANs == 0 {
		o.VLAN = 0
	}
	o.shift(-VLANTagLen)
}

// shift moves every present L3 and later offset by n bytes.
func (o *Offsets) shift(n int) {
	o.L3 = shiftOffset(o.L3, n)
	o.L4 = shiftOffset(o.L4, n)
	o.Payload = shiftOffset(o.Payload, n)
	o.L3End = shiftOffset(o.L3End, n)
}

func shiftOffset(off uint16, n int) uint16 {
	if off == 0 {
		return 0
	}
	return uint16(int(off) + n)
}
