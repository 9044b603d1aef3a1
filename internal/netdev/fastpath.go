package netdev

import (
	"net/netip"
	"sync"
)

// FastPathDev is a device whose received packets a kernel fast path (the
// offload package) may forward itself, without them reaching gvsd: a
// system port. The fast path's socket filter goes on the device's
// receive socket, to keep what it forwards from being copied to gvsd
// too, and what it forwards is added to the device's counters.
type FastPathDev interface {
	IfIndex() int
	AttachSocketProgram(progFD int) error
	DetachSocketProgram() error
	// SetKernelStats makes Stats add what live returns (counters kept
	// in the kernel); nil folds live's last reading into the device's
	// own counters and stops asking.
	SetKernelStats(live func() Stats)
}

// FastTunnelDev is a tunnel port whose packets a kernel fast path may
// encapsulate and decapsulate itself: GRE over IPv4 by the host's
// routing, sent straight to the route's device as the port's direct
// sending does (tnl_direct_linux.go).
type FastTunnelDev interface {
	// KernelTunnel asks the kernel for the tunnel's route, device and
	// next hop now, and returns how to send and receive in the kernel;
	// false when the kernel cannot (then gvsd sends and receives).
	KernelTunnel() (KernelTunnel, bool)
	// KernelTunnelable reports whether the port's options let the
	// kernel carry it at all (KernelTunnel may still say no, for now).
	KernelTunnelable() bool
	SetKernelStats(live func() Stats)
}

// KernelTunnel is how a tunnel port's packets leave and arrive.
type KernelTunnel struct {
	// Header is the Ethernet (to the next hop), IPv4 and GRE headers of
	// every frame, the IPv4 total length and checksum left zero.
	Header []byte
	// Ifindex is the route's device, MTU the longest IPv4 packet it
	// carries.
	Ifindex, MTU int
	// What a received packet carries to be the port's: outer source and
	// destination and the key (0 for none).
	Remote, Local netip.Addr
	Key           uint32
	// Receive: gvsd gives such packets to this port (no other port
	// matches them better), so the kernel may decapsulate them for it.
	Receive bool
}

// kernelStats holds what a fast path counted for a device.
type kernelStats struct {
	mu   sync.Mutex
	live func() Stats
	base Stats
}

func (k *kernelStats) set(live func() Stats) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.live != nil {
		k.base = k.base.plus(k.live())
	}
	k.live = live
}

// add returns s with what the fast path counted.
func (k *kernelStats) add(s Stats) Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	s = s.plus(k.base)
	if k.live != nil {
		s = s.plus(k.live())
	}
	return s
}

func (s Stats) plus(o Stats) Stats {
	return Stats{
		RxPackets: s.RxPackets + o.RxPackets, RxBytes: s.RxBytes + o.RxBytes,
		RxDropped: s.RxDropped + o.RxDropped, RxErrors: s.RxErrors + o.RxErrors,
		TxPackets: s.TxPackets + o.TxPackets, TxBytes: s.TxBytes + o.TxBytes,
		TxDropped: s.TxDropped + o.TxDropped, TxErrors: s.TxErrors + o.TxErrors,
	}
}
