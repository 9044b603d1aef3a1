package datapath

import (
	"sync/atomic"
	"time"
	"unsafe"

	"gvs/internal/conntrack"
	"gvs/internal/packet"
)

// ActionKind says what one datapath action does.
type ActionKind uint8

// The datapath actions. Translation emits them in the order they apply;
// kinds still to come (tunnel push/pop, ...) take the next numbers.
const (
	// ActOutput sends the packet, as the actions before it left it, out
	// of datapath port Port. With Copy set it is a mirror copy (see
	// Action.Copy).
	ActOutput ActionKind = iota + 1
	// ActPushVLAN adds a VLAN header (TPID, TCI as on the wire) as the
	// new outermost one.
	ActPushVLAN
	// ActPopVLAN removes the outermost VLAN header; on a frame without
	// one it does nothing.
	ActPopVLAN
	// ActSetField rewrites the header field Field to Value, keeping the
	// IPv4 header and TCP/UDP checksums right.
	ActSetField
	// ActTruncate cuts the packet to Len bytes for the next output only,
	// as OVS's trunc(max_len) does; a shorter packet is left whole.
	ActTruncate
	// ActClone runs the Len actions after it on a copy of the packet's
	// state (its headers, set-fields, truncation): after them the packet
	// is as it was before the clone. Translation uses it for an output
	// whose VLAN headers would otherwise lose ones later outputs keep.
	ActClone
	// ActUserspace (added by the controller work, kept last so that
	// other new kinds can follow) hands the packet, as the actions
	// before it make it, to Action.Upcall (OVS's userspace action): a
	// packet-in to the OpenFlow controllers. The callee copies what it
	// keeps and must not block.
	ActUserspace
	// ActCT runs the packet, as the actions before it left it, through
	// the datapath's connection tracker with CT, and writes the result
	// into the packet's ct_* key fields (see the conntrack package).
	ActCT
	// ActRecirc forks the packet: a copy, as the actions so far left it
	// and with its ct_* fields, is looked up in the flow cache again
	// with recirc_id Value (translated by its bridge on a miss) and its
	// actions run; then the actions after ActRecirc continue with the
	// packet as it was before it.
	ActRecirc
	// ActCTClear clears the packet's ct_* key fields.
	ActCTClear
	// ActSetTunnel gives the outputs after it the tunnel metadata Tun
	// (OVS's set(tunnel(...))): a tunnel port whose options say "flow"
	// sends by it. Translation emits it before such an output.
	ActSetTunnel
)

// Field is a header field that ActSetField rewrites.
type Field uint8

// The fields ActSetField rewrites.
const (
	FieldEthSrc  Field = iota + 1 // Value: the MAC in the low 48 bits
	FieldEthDst                   // as FieldEthSrc
	FieldIPv4Src                  // Value: the address in the low 32 bits
	FieldIPv4Dst                  // as FieldIPv4Src
	FieldIPv4TOS                  // Value: the whole TOS byte (DSCP and ECN)
	FieldIPv4TTL                  // Value: the TTL
	FieldTpSrc                    // Value: the TCP or UDP source port
	FieldTpDst                    // Value: the TCP or UDP destination port
)

// Action is one datapath action. It is a small value whose only
// references (Copy, CT, Upcall) point at objects shared read-only by every
// packet of the flow, so that an action list is one allocation owned by its
// cache entry, copied once when the entry is installed.
type Action struct {
	Kind  ActionKind
	Field Field  // ActSetField
	TPID  uint16 // ActPushVLAN
	TCI   uint16 // ActPushVLAN: the wire TCI
	Port  uint32 // ActOutput
	Len   uint32 // ActTruncate; ActClone: how many actions it holds
	Value uint64 // ActSetField
	// Copy marks an ActOutput that is a mirror copy: a destination that
	// cannot keep up loses copies (counted here, with the copies that a
	// truncate cut) and never slows the original traffic. A destination
	// whose device never waits (netdev.NonBlocking: a kernel interface, a
	// TAP) gets its copies in the receiving thread's batch, and the
	// device's own bounded queue (socket buffer, qdisc) is the copy queue;
	// any other destination (a pcap file) gets them through a copy queue
	// of ours, with a sender of its own.
	Copy *CopyStats
	// Upcall receives the packet of an ActUserspace.
	Upcall Upcall
	// CT is ActCT's connection tracking action, shared read-only by
	// every packet of the cached flow.
	CT *conntrack.Action
	// Tun is ActSetTunnel's metadata, shared read-only likewise.
	Tun *packet.TunnelMeta
}

// Upcall takes packets out of the datapath to the slow path (a packet-in
// to a controller). Upcall is called on the port thread with the frame
// as the actions before it make it; it must copy what it keeps, never
// block, and drop (counting the drop) what it cannot take.
type Upcall interface {
	Upcall(frame []byte)
}

// Userspace returns an action handing the packet to u.
func Userspace(u Upcall) Action { return Action{Kind: ActUserspace, Upcall: u} }

// Output returns an output action to datapath port port.
func Output(port uint32) Action { return Action{Kind: ActOutput, Port: port} }

// PushVLAN returns an action pushing the header h.
func PushVLAN(h packet.VLANHeader) Action {
	return Action{Kind: ActPushVLAN, TPID: h.TPID, TCI: h.TCI}
}

// PopVLAN returns an action popping the outer VLAN header.
func PopVLAN() Action { return Action{Kind: ActPopVLAN} }

// SetField returns an action rewriting f to v.
func SetField(f Field, v uint64) Action { return Action{Kind: ActSetField, Field: f, Value: v} }

// Clone returns an action that runs the next n actions on a copy.
func Clone(n int) Action { return Action{Kind: ActClone, Len: uint32(n)} }

// CT returns an action running the connection tracker with a, which
// the caller must not change afterwards.
func CT(a *conntrack.Action) Action { return Action{Kind: ActCT, CT: a} }

// Recirc returns an action recirculating the packet with recirc_id id.
func Recirc(id uint32) Action { return Action{Kind: ActRecirc, Value: uint64(id)} }

// SetTunnel returns an action giving later outputs the tunnel metadata
// m, which the caller must not change afterwards.
func SetTunnel(m *packet.TunnelMeta) Action { return Action{Kind: ActSetTunnel, Tun: m} }

// CTClear returns an action clearing the packet's ct_* fields.
func CTClear() Action { return Action{Kind: ActCTClear} }

// Truncate returns an action cutting the next output to n bytes.
func Truncate(n uint32) Action { return Action{Kind: ActTruncate, Len: n} }

// CopyStats counts what happened to a mirror's copies in the datapath.
type CopyStats struct {
	Dropped   atomic.Uint64 // the destination's queue (ours or the device's) was full
	Truncated atomic.Uint64 // cut to the mirror's snaplen
}

// Counter is a packet and byte count that a side effect adds to.
type Counter struct {
	Packets atomic.Uint64
	Bytes   atomic.Uint64
}

// Accounter is an OpenFlow rule, whose counters an account side effect
// adds to.
type Accounter interface {
	Account(packets, bytes uint64, now time.Time)
}

// Learner is a MAC learning table, which a learn side effect feeds.
type Learner interface {
	Learn(mac [6]byte, vlan uint16, port uint32)
}

// EffectKind says what one side effect of a translation does.
type EffectKind uint8

// The side effects.
const (
	// EffectLearn: Learner learns that MAC on VLAN is behind Port.
	EffectLearn EffectKind = iota + 1
	// EffectCount: Counter counts the packet and its bytes as received
	// (a mirror's statistics). Like EffectAccount, a cached flow adds a
	// batch's packets up and counts them once: the port threads of both
	// directions would otherwise bounce one counter's cache line between
	// cores for every packet.
	EffectCount
	// EffectAccount: Accounter (a rule) counts the packet, its bytes and
	// the time. For a cached flow the datapath adds a batch's packets up
	// and accounts them once, so that port threads do not all write one
	// rule's counters for every packet.
	EffectAccount
	// EffectRun (added for OpenFlow's learn, kept last so that other new
	// kinds can follow): Runner runs for the packet.
	EffectRun
)

// Runner is a side effect that is work to do for each packet: OpenFlow's
// learn action adding (or refreshing) its flow. Run is called on the
// port thread and must not block for long.
type Runner interface {
	Run(now time.Time)
}

// Effect is a side effect of translating a packet: something that must
// happen for every packet the translation applies to, cache hits
// included, rather than once when the translation is made.
type Effect struct {
	Kind      EffectKind
	VLAN      uint16
	MAC       [6]byte
	Port      uint32
	Learner   Learner
	Counter   *Counter
	Accounter Accounter
	Runner    Runner
}

// apply performs e for one packet of size bytes; cached says that the
// packet's flow accounts its rules and counters itself, and hit that it
// learns too (see flowCache.account): a hit refreshes an address the
// flow's own translation learned, which once a batch is enough, and
// saves a clock read per packet. The packet that made the flow learns
// at once, so that the rest of its batch already finds the address.
func (e *Effect) apply(size int, cached, hit bool, now func() time.Time) {
	switch e.Kind {
	case EffectAccount:
		if !cached {
			e.Accounter.Account(1, uint64(size), now())
		}
	case EffectLearn:
		if !hit {
			e.Learner.Learn(e.MAC, e.VLAN, e.Port)
		}
	case EffectCount:
		if !cached {
			e.Counter.Packets.Add(1)
			e.Counter.Bytes.Add(uint64(size))
		}
	case EffectRun:
		e.Runner.Run(now())
	}
}

// Key is what the flow cache matches packets on: the flow key, and the
// TPIDs of the VLAN headers it parsed, which the key itself leaves out
// (an 802.1Q and an 802.1ad outer tag look the same to OpenFlow) but
// NORMAL's VLAN encoding depends on.
type Key struct {
	packet.Key
	// VLANTPID holds the TPIDs of the outer and inner VLAN headers that
	// Parse read, 0 where there is none.
	VLANTPID [packet.MaxVLANs]uint16
	_        [4 - packet.MaxVLANs]uint16 // a whole number of words
}

// Xlate is what translating one packet produces: the actions to execute,
// the key bits the decision depended on, the side effects to apply to
// every packet with the same masked key, and how long it holds. The
// translator fills it; the datapath resets it before each translation
// and keeps it (with Ctx) with the port thread.
type Xlate struct {
	Actions []Action
	Effects []Effect
	// Mask has a bit set for every bit of Key the translation read: any
	// packet whose key agrees with this one under Mask gets the same
	// actions and effects.
	Mask Key
	// TTL bounds how long the translation holds (a learned address it
	// used expires); 0 for no bound but the generation.
	TTL time.Duration
	// NoCache asks that the translation be used for this packet only.
	NoCache bool
	// Ctx is the translator's own per-thread scratch space: the datapath
	// keeps it with the thread and never looks inside.
	Ctx any
}

// Reset empties x for the next packet, keeping its storage.
func (x *Xlate) Reset() {
	x.Actions, x.Effects = x.Actions[:0], x.Effects[:0]
	x.Mask, x.TTL, x.NoCache = Key{}, 0, false
}

// generation changes whenever anything a cached translation depended on
// may have changed: a bridge's configuration, the datapath's ports, a
// MAC table's contents, flow tables. It is one counter for the whole
// datapath (gvs has one), read once per packet.
var generation atomic.Uint64

// Invalidate makes every cached translation stale: the next packet of
// each flow is translated again. Whoever changes what translation reads
// calls it after the change is visible and before reporting the change
// done, so that the very next packet sees it.
func Invalidate() {
	generation.Add(1)
	publishGeneration()
}

// Generation returns the current generation, for tests and diagnostics.
func Generation() uint64 { return generation.Load() }

// OrMask adds the bits of m to k's flow key part: a translation that
// evaluated a match with mask m looked at them.
func (k *Key) OrMask(m *packet.Key) {
	kw := (*[unsafe.Sizeof(packet.Key{}) / 8]uint64)(unsafe.Pointer(&k.Key))
	mw := (*[unsafe.Sizeof(packet.Key{}) / 8]uint64)(unsafe.Pointer(m))
	for i := range kw {
		kw[i] |= mw[i]
	}
}
