// Package netdev holds gvs's port drivers: the ways a packet enters and
// leaves the switch. Each port type (internal TAP devices, system
// interfaces over AF_PACKET, patch ports, tunnels, pcap files, and a memory
// type for tests) registers itself by its OVSDB Interface type name, so the
// reconciler can open any of them without knowing how they work.
//
// I/O is batched: a port thread reads and writes many frames per system
// call and reuses its buffers, so the packet path never allocates per packet.
package netdev

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
)

// MaxFrame is the largest frame a port reads or writes. It covers a 9000
// byte jumbo MTU plus Ethernet and VLAN headers; larger frames (e.g. GSO
// super-frames) are segmented or refused by the driver.
const MaxFrame = 9216 + 64

// Config is what the reconciler knows about an interface when it opens it.
type Config struct {
	Name    string            // Interface.name: the device name
	Type    string            // Interface.type ("" means system)
	Options map[string]string // Interface.options
	Bridge  string            // the bridge that owns the port
	MTU     int               // Interface.mtu_request, 0 for the default

	// CaptureDir is gvsd's capture directory (see PrepareCaptureDir): a
	// pcap port writes only inside it, and "" refuses pcap ports.
	CaptureDir string
}

// Stats are the counters a port reports into Interface.statistics.
type Stats struct {
	RxPackets, RxBytes, RxDropped, RxErrors uint64
	TxPackets, TxBytes, TxDropped, TxErrors uint64
}

// Info is what the reconciler writes back into the Interface row.
type Info struct {
	MAC     net.HardwareAddr // mac_in_use
	Ifindex int              // ifindex, 0 if the port has no kernel device
	MTU     int              // mtu
	LinkUp  bool             // link_state
	AdminUp bool             // admin_state

	// Stale is set when the driver could not read the device's current
	// state because it left gvsd's network namespace (an internal port
	// moved with `ip link set dev p1 netns ns1` keeps working) or was
	// removed; the other fields then hold the last values seen.
	Stale bool
}

// Netdev is an open port.
//
// ReadBatch and WriteBatch are called from one port thread each (one reader
// goroutine, and writers serialised by the caller), never concurrently with
// themselves; Close may be called from any goroutine and makes a blocked
// ReadBatch return ErrClosed.
type Netdev interface {
	Name() string
	Type() string

	// ReadBatch blocks until at least one frame is available, then fills
	// bufs[i][:sizes[i]] for i < n with whole Ethernet frames (no FCS), up
	// to len(bufs) frames. Each bufs[i] has capacity >= MaxFrame. Frames the
	// port could not receive whole are counted in RxDropped, not returned.
	ReadBatch(bufs [][]byte, sizes []int) (n int, err error)

	// WriteBatch sends frames[0..n). A frame that cannot be sent is counted
	// in TxDropped; WriteBatch does not block for long on a slow device
	// (a full device queue means drop, not wait).
	WriteBatch(frames [][]byte) error

	Stats() Stats
	Info() Info
	Close() error
}

// Faulter is implemented by a Netdev whose writes can fail after it
// opened (a pcap file on a full disk). Fault says why while they fail,
// "" when they work: the switch shows it in the port's Interface.error.
type Faulter interface {
	Fault() string
}

// NonBlocking is implemented by a Netdev whose WriteBatch never waits for
// the device: what it cannot take at once is dropped and counted (a
// kernel device written with MSG_DONTWAIT, a TAP). The datapath sends
// mirror copies to such a port from the receiving thread, in the same
// batch as the rest of its output; copies to other ports (a pcap file,
// which may wait for a disk or for a FIFO's reader) go through a queue
// with a sender of its own, so that they can never hold up the traffic
// they copy.
type NonBlocking interface {
	Netdev
	NonBlocking()
}

// CopyQueued is implemented by a NonBlocking Netdev whose sends cost the
// sending thread far more than copying the frame: a tunnel by the host's
// routing, where every frame is a trip through the kernel's IP output
// (and, over a veth, through the receiver's input as well). The datapath
// hands mirror copies to such a port to a bounded queue with a sender of
// its own, so the traffic they copy never waits for them, and reports
// the copies that found the queue full with CountTxDropped: the port
// counts them in its TxDropped, since they are what it could not carry.
type CopyQueued interface {
	NonBlocking
	CountTxDropped(n uint64)
}

// ErrClosed is returned by ReadBatch once the port has been closed.
var ErrClosed = errors.New("netdev: port closed")

// Opener opens a port of one type.
type Opener func(cfg Config) (Netdev, error)

var (
	registryMu sync.RWMutex
	registry   = map[string]Opener{}
)

// Register makes a port type available under name (the Interface.type
// value). It is called from the init function of each driver.
func Register(name string, open Opener) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registry[name] = open
}

// Open opens the port described by cfg with the driver registered for its
// type. The empty type means "system".
func Open(cfg Config) (Netdev, error) {
	t := cfg.Type
	if t == "" {
		t = "system"
	}
	registryMu.RLock()
	open, ok := registry[t]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("could not open network device %s (unsupported interface type %q)", cfg.Name, cfg.Type)
	}
	return open(cfg)
}

// Types lists the registered port types, sorted.
func Types() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
