//go:build linux

package netdev

import (
	"encoding/binary"
	"sync"

	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// A GRE port sent by the host's routing is a FastTunnelDev: the kernel
// fast path sends its frames with the headers the port's direct sending
// would write, to the same device and next hop, and decapsulates what
// arrives for it on that device.
var _ FastTunnelDev = (*tunnelPort)(nil)

// kernelTunnel is the port's own route state for the fast path, apart
// from the sending thread's (directTx belongs to it).
type kernelTunnel struct {
	mu     sync.Mutex
	opened bool
	d      directTx
	route  int // UDP socket for the source address's lookup (no local_ip), -1: none
}

// kernelTunnelable reports whether the kernel can carry the port at
// all: GRE over IPv4 with fixed endpoints and key, no checksum or
// sequence number, DF (as direct sending), and direct sending allowed.
func kernelTunnelable(o *tunnelOptions) bool {
	e := &o.encap
	return e.Type == packet.TunnelGRE && !o.v6 && !o.flowBased() && !o.inKeyFlow && !o.remoteFlow &&
		!o.localFlow && !e.Csum && !e.Seq && e.DF && o.direct && o.remote.Is4()
}

// KernelTunnel: see FastTunnelDev. The route and its device are asked
// afresh (the datapath asks every second); a route through a native
// underlay (a gvs internal port) or an IPsec policy leaves the port to
// gvsd. The next hop is the kernel's neighbour layer's to resolve, per
// packet (bpf_redirect_neigh), as for the kernel's own.
func (p *tunnelPort) KernelTunnel() (KernelTunnel, bool) {
	o := p.opts
	if !kernelTunnelable(o) || p.closed.Load() {
		return KernelTunnel{}, false
	}
	if r, ok := tunnelRouter.Lookup(o.remote, 0); ok && !r.Local {
		if _, s := nativeDevNamed(r.Dev); s != nil {
			return KernelTunnel{}, false // native tunnelling: gvsd's bridge carries it
		}
	}
	k := &p.ktun
	k.mu.Lock()
	defer k.mu.Unlock()
	if p.closed.Load() {
		return KernelTunnel{}, false // Close may have closed the sockets before we locked
	}
	if !k.opened {
		k.opened, k.route = true, -1
		k.d.init(o)
		if o.autoSrc && k.d.nl >= 0 {
			if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
				k.route = fd
			}
		}
	}
	src := o.local
	if o.autoSrc {
		if k.route < 0 {
			return KernelTunnel{}, false
		}
		s, err := routeSource(k.route, o.remote)
		if err != nil {
			return KernelTunnel{}, false
		}
		src = s
	}
	if !k.d.routeDev(o.remote, o.local) {
		return KernelTunnel{}, false
	}
	cfg := o.encap
	cfg.Src = src
	e, err := packet.NewEncap(cfg)
	if err != nil {
		return KernelTunnel{}, false
	}
	hdr := make([]byte, packet.EthernetLen+e.Len())
	// The kernel's neighbour layer writes the Ethernet addresses; the
	// header only has to be unicast until then.
	copy(hdr, k.d.dev.mac[:])
	copy(hdr[6:], k.d.dev.mac[:])
	binary.BigEndian.PutUint16(hdr[12:], packet.EtherTypeIPv4)
	if _, err := e.Build(hdr[packet.EthernetLen:], nil, 0); err != nil {
		return KernelTunnel{}, false
	}
	ip := hdr[packet.EthernetLen:]
	ip[2], ip[3], ip[10], ip[11] = 0, 0, 0, 0 // the kernel's, per packet
	// The kernel decapsulates for this port only what gvsd's reader would
	// give it: the best match of its underlay's ports (another may have
	// local_ip set to this source, and win).
	receive := p.ul != nil && p.ul.match(packet.TunnelGRE, o.remote, src, o.inKey) == p
	return KernelTunnel{Header: hdr, Ifindex: k.d.dev.ifindex, MTU: k.d.dev.mtu,
		Remote: o.remote, Local: src, Key: o.inKey, Receive: receive}, true
}

// KernelTunnelable: see FastTunnelDev.
func (p *tunnelPort) KernelTunnelable() bool { return kernelTunnelable(p.opts) }

// close closes the lookup sockets.
func (k *kernelTunnel) close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.opened {
		return
	}
	k.d.close()
	if k.route >= 0 {
		unix.Close(k.route)
		k.route = -1
	}
}

// SetKernelStats: see FastTunnelDev.
func (p *tunnelPort) SetKernelStats(live func() Stats) { p.kstats.set(live) }
