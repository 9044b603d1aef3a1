// Package offload is the kernel fast path of the datapath's flow cache,
// what OVS calls hardware offload (Open_vSwitch other_config:hw-offload):
// a cached flow whose actions the kernel can run itself (outputs to
// system ports, mirror copies among them, VLAN push and pop, drop, and
// a last output into a GRE tunnel: tunnel.go) is also installed in eBPF
// maps, and the packets of system ports (and of GRE ports) that hit it
// are forwarded by a tc program without being copied to gvsd and back.
// Super-frames then cross the switch whole, and a packet costs what it
// costs the Linux bridge.
//
// The program (bpf/fastpath.c, built with `go generate`) keys packets
// exactly as packet.Parse does for the packets it understands: Ethernet
// with at most one VLAN tag (the one the kernel keeps in metadata), ARP,
// IPv4 that is not a fragment, IPv6 without extension headers, and TCP,
// UDP, SCTP, ICMP and IGMP headers. Every other packet goes to gvsd as
// before. Flows are keyed per input port and mask slot with the masked
// key words, so a lookup probes the port's masks as the cache does.
//
// The datapath owns the flows: it adds a flow when it caches it,
// deletes it when it removes it, and reads its counters to account them
// to OpenFlow rules, mirrors and MAC learning. A generation number in a
// map makes every flow stale at once when the datapath's does.
//
// Written with cilium/ebpf; the C program is ours because no library
// offers a flow cache in eBPF that matches gvsd's keys.
package offload

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

//go:generate clang -O2 -g -target bpf -Wall -Werror -fdebug-prefix-map=${PWD}=. -I/usr/include/x86_64-linux-gnu -c bpf/fastpath.c -o fastpath.o

//go:embed fastpath.o
var object []byte

// Limits of the maps, as bpf/fastpath.c sizes them.
const (
	MaxPorts     = 256   // ports with a fast path: inputs and outputs
	MaxMasks     = 32    // masks per input port
	MaxMaskWords = 16    // key words a mask looks at
	MaxOps       = 16    // actions per flow
	MaxFlows     = 65536 // flows of all ports
)

// Op kinds, as bpf/fastpath.c numbers them.
const (
	opOutput   = 1
	opPushVLAN = 2
	opPopVLAN  = 3
	opSaveVLAN = 4
	opUndoPop  = 5
	opUndoPush = 6
	opEncap    = 7
)

// Op is one action the kernel runs.
type Op struct {
	kind       uint16
	ifindex    uint32
	port       uint16 // the output port's slot
	tci, tpid  uint16
	outputPort *Port
}

// Output sends the packet out of port p's device.
func Output(p *Port) Op {
	return Op{kind: opOutput, ifindex: uint32(p.ifindex), port: uint16(p.slot), outputPort: p}
}

// Encap encapsulates the packet in tunnel port p's headers and sends it
// by the tunnel's route (SetTunnel); it must be a flow's last action.
func Encap(p *Port) Op {
	return Op{kind: opEncap, port: uint16(p.slot), outputPort: p}
}

// PushVLAN pushes a VLAN header (TPID, TCI as on the wire).
func PushVLAN(tpid, tci uint16) Op { return Op{kind: opPushVLAN, tpid: tpid, tci: tci} }

// PopVLAN pops the outer VLAN header, if there is one.
func PopVLAN() Op { return Op{kind: opPopVLAN} }

// SaveVLAN remembers the outer VLAN header, for UndoPop: the two
// surround a clone's actions that pop it.
func SaveVLAN() Op { return Op{kind: opSaveVLAN} }

// UndoPop pushes the header SaveVLAN remembered back, if there was one.
func UndoPop() Op { return Op{kind: opUndoPop} }

// UndoPush pops the header a clone's actions pushed.
func UndoPush() Op { return Op{kind: opUndoPush} }

// The maps' keys and values, laid out as bpf/fastpath.c's structs.
type portRec struct{ Slot, InPort, NMasks, _ uint32 }

type maskRec struct {
	NWords, _ uint32
	Idx       [MaxMaskWords]uint16
	Mwrd      [MaxMaskWords]uint64
}

type flowKey struct {
	Port, Mask uint32
	Vals       [MaxMaskWords]uint64
}

type opRec struct {
	Ifindex               uint32
	Kind, TCI, TPID, Port uint16
}

type flowVal struct {
	Gen, Expires uint64
	ID, NOps     uint32
	Ops          [MaxOps]opRec
}

type flowStats struct{ Packets, Bytes, Used uint64 }

// tunnelHdr is the room for a tunnel's headers, as TUN_HDR.
const tunnelHdr = 48

type tunnelRec struct {
	Ifindex, HdrLen, MTU, _ uint32
	Hdr                     [tunnelHdr]byte
}

type tunRxKey struct{ Src, Dst, Key, _ uint32 }

type portStats struct{ RxPackets, RxBytes, TxPackets, TxBytes, TxDropped uint64 }

// Counters of the programs, by index in gvs_counters.
const (
	CounterHit = iota
	CounterMiss
	CounterUnparsed
	CounterStale
	CounterLostVerdict
	CounterError
	CounterTunnelSlow
	numCounters
)

// Kernel is the loaded program and its maps, shared by all ports.
type Kernel struct {
	ports, masks, flows, flowStats, portStats, gen, counters *ebpf.Map
	tunnels, tunRx                                           *ebpf.Map
	scratch                                                  *ebpf.Map // tests read the key the program built
	ingress, sockFilter, classifyProg, decap                 *ebpf.Program
	// clockOffset is ktime (CLOCK_MONOTONIC) minus the datapath's clock.
	clockOffset int64
	// zeroFlowStats resets a flow's per-CPU counters (one per CPU).
	zeroFlowStats []flowStats

	mu       sync.Mutex
	slots    [MaxPorts]bool
	decaps   map[int]*decapLink // the decapsulation program, by device
	rxOwners map[tunRxKey]*Port // the tunnel port whose record each gvs_tun_rx key holds
	freeIDs  []uint32
	nextID   uint32
}

// Load loads the program and creates its maps. now is the datapath's
// clock (monotonic nanoseconds from any origin), for flow expiry and the
// time a flow was last used.
func Load(now func() int64) (*Kernel, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(object))
	if err != nil {
		return nil, fmt.Errorf("offload: reading the program: %w", err)
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("offload: the kernel refused the program: %v", ve)
		}
		return nil, fmt.Errorf("offload: loading the program: %w", err)
	}
	k := &Kernel{
		ports: coll.Maps["gvs_ports"], masks: coll.Maps["gvs_masks"], flows: coll.Maps["gvs_flows"],
		flowStats: coll.Maps["gvs_flow_stats"], portStats: coll.Maps["gvs_port_stats"],
		gen: coll.Maps["gvs_gen"], counters: coll.Maps["gvs_counters"],
		scratch: coll.Maps["gvs_scratch"],
		tunnels: coll.Maps["gvs_tunnels"], tunRx: coll.Maps["gvs_tun_rx"],
		ingress: coll.Programs["gvs_ingress"], sockFilter: coll.Programs["gvs_sockfilter"],
		classifyProg: coll.Programs["gvs_classify"], decap: coll.Programs["gvs_decap"],
		decaps: map[int]*decapLink{}, rxOwners: map[tunRxKey]*Port{},
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		coll.Close()
		return nil, fmt.Errorf("offload: reading the clock: %w", err)
	}
	if err := probeTCX(k.ingress); err != nil {
		coll.Close()
		return nil, err
	}
	k.clockOffset = ts.Nano() - now()
	k.zeroFlowStats = make([]flowStats, ebpf.MustPossibleCPU())
	return k, nil
}

// probeTCX attaches prog to the loopback device's tc ingress and takes
// it off again: a kernel that loads the program but cannot attach it
// (no TCX before Linux 6.6) is refused here, where the user sees why,
// rather than port by port. With no port in the maps the program lets
// every packet go on.
func probeTCX(prog *ebpf.Program) error {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		return fmt.Errorf("offload: no loopback device to probe tc with: %w", err)
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: lo.Index, Program: prog, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("offload: the kernel cannot attach programs at tc (TCX, Linux 6.6 and later): %w", err)
	}
	return l.Close()
}

// SetGeneration makes the flows of every other generation stale.
func (k *Kernel) SetGeneration(gen uint64) error {
	return k.gen.Update(uint32(0), gen, ebpf.UpdateAny)
}

// Counters returns the programs' counters, summed over CPUs.
func (k *Kernel) Counters() [numCounters]uint64 {
	var out [numCounters]uint64
	for i := range out {
		var per []uint64
		if k.counters.Lookup(uint32(i), &per) == nil {
			for _, v := range per {
				out[i] += v
			}
		}
	}
	return out
}

// allocID returns a free flow counter index.
func (k *Kernel) allocID() (uint32, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if n := len(k.freeIDs); n > 0 {
		id := k.freeIDs[n-1]
		k.freeIDs = k.freeIDs[:n-1]
		return id, true
	}
	if k.nextID >= MaxFlows {
		return 0, false
	}
	k.nextID++
	return k.nextID - 1, true
}

func (k *Kernel) freeID(id uint32) {
	k.mu.Lock()
	k.freeIDs = append(k.freeIDs, id)
	k.mu.Unlock()
}

// errNoSpace is what a full hash map returns (E2BIG).
var errNoSpace = unix.E2BIG
