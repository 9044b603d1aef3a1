// Package conntrack is gvs's connection tracker: connections keyed by zone
// and 5-tuple in both directions, TCP/UDP/ICMP state as the Linux kernel's
// tracker decides and names it, marks, labels, NAT, ALGs, limits and
// timeouts. It is a leaf: the datapath calls Execute for a ct() action and
// copies the Result into the packet's flow key; it knows nothing of
// OpenFlow or OVSDB.
//
// This file is the contract between the tracker and the datapath; the
// tracker's implementation lives in the other files of the package.
package conntrack

import "net/netip"

// State bits, as OpenFlow's ct_state field numbers them (ovs-fields(7)).
const (
	StateNew  uint8 = 1 << 0
	StateEst  uint8 = 1 << 1
	StateRel  uint8 = 1 << 2
	StateRpl  uint8 = 1 << 3
	StateInv  uint8 = 1 << 4
	StateTrk  uint8 = 1 << 5
	StateSNAT uint8 = 1 << 6
	StateDNAT uint8 = 1 << 7
)

// NATKind says which side of a connection a NAT action rewrites.
type NATKind uint8

// The NAT kinds. NATNone with Action.NAT set means a bare nat: apply the
// connection's existing translation, set up nothing new.
const (
	NATNone NATKind = iota
	NATSrc
	NATDst
)

// NAT is ct's nat(...) argument, resolved: address range (both ends of the
// same family; AddrMax == AddrMin for one address) and port range (0, 0
// for "keep the port").
type NAT struct {
	Kind             NATKind
	AddrMin, AddrMax netip.Addr
	PortMin, PortMax uint16
	Random, Hash     bool
	Persistent       bool
}

// ALG names the application-level gateway a committed connection gets.
type ALG uint8

// The ALGs.
const (
	ALGNone ALG = iota
	ALGFTP
	ALGTFTP
)

// Action is one ct() action, with its zone already resolved (a zone taken
// from a register is read by the datapath before the call).
type Action struct {
	Zone   uint16
	Commit bool
	Force  bool
	// SetMark: the connection's mark becomes (mark &^ MarkMask) |
	// (Mark & MarkMask) when it is committed (exec(set_field:...->ct_mark)).
	SetMark  bool
	Mark     uint32
	MarkMask uint32
	// SetLabel likewise for the 128-bit label, big-endian.
	SetLabel  bool
	Label     [16]byte
	LabelMask [16]byte
	// HasNAT says that NAT applies (nat or nat(...)).
	HasNAT bool
	NAT    NAT
	ALG    ALG
}

// Result is what the tracker says about one packet: the values of the ct_*
// fields that the datapath writes into the packet's flow key (ovs-fields(7):
// ct_state, ct_zone, ct_mark, ct_label, and the original direction's tuple,
// set only for a tracked connection that is not +inv).
type Result struct {
	State uint8
	Zone  uint16
	Mark  uint32
	Label [16]byte
	// Orig is the connection's original-direction tuple (ct_nw_src/dst,
	// ct_ipv6_src/dst, ct_nw_proto, ct_tp_src/dst); OrigValid false when
	// the packet belongs to no connection.
	OrigValid        bool
	OrigSrc, OrigDst netip.Addr
	OrigProto        uint8
	OrigSport        uint16
	OrigDport        uint16
	// Rewrote says that NAT changed the frame's addresses or ports: the
	// caller must parse the frame again (or update its key) before
	// matching on them.
	Rewrote bool
	// Len, when not 0, is the frame's new length: an ALG rewrote an
	// announcement to a text of another length, writing within the
	// frame's capacity (the rest of the frame, Ethernet padding, is
	// gone). The caller reslices the frame to Len.
	Len int
	// LimitDrop says that a commit was refused because the global or the
	// zone's connection limit was reached: nothing was stored. The
	// kernel datapath drops such a packet.
	LimitDrop bool
	// Drop says that the kernel datapath would drop the packet: a commit
	// refused by a limit, or a NAT that found no free tuple.
	Drop bool
}
