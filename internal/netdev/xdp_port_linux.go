//go:build linux

package netdev

import (
	"fmt"
	"sync"

	"gvs/internal/coverage"
)

// A system port asked for XDP that receives through its packet ring.
var xdpSetupFailed = coverage.New("netdev_xdp_setup_failed")

// xdpState is a system port's AF_XDP receive (xdp_linux.go), when
// options:gvs-xdp=true asked for it.
type xdpState struct {
	// mu is held by the reader and by Close's release of the socket,
	// so the rings are never unmapped under a reader.
	mu   sync.Mutex
	sock *xskSocket // nil: the port receives through its packet ring
	// tx is the socket the port transmits plain frames through (the
	// transmit experiment), or nil; used under the port's txMu.
	tx *xskSocket
	// fault is why the option could not be honoured in full: shown in
	// Interface.error (Fault).
	fault string
}

// openXDP gives the port its XDP socket if cfg asks for one. Failing
// to attach is not fatal: the port keeps its packet ring, and the
// reason goes to Interface.error.
func (p *afpacketPort) openXDP(mtu int, rx, tx bool) {
	if !rx {
		x, err := openXSKTx(p.ifindex)
		if err != nil {
			p.xdp.fault = fmt.Sprintf("options:%s: %v; transmitting through the packet ring", xdpOption, err)
			return
		}
		p.xdp.tx = x
		return
	}
	x, err := openXSK(p.name, p.ifindex, mtu, tx)
	if err != nil {
		xdpSetupFailed.Inc()
		p.xdp.fault = fmt.Sprintf("options:%s: %v; receiving through the packet ring", xdpOption, err)
		netdevLog.Warn("port %s: %s", p.name, p.xdp.fault)
		return
	}
	p.xdp.sock = x
	if tx {
		p.xdp.tx = x
	}
	p.xdp.fault = x.fault
	netdevLog.Info("port %s: receiving through an XDP socket (%s mode)", p.name, x.mode)
}

// Fault is why options:gvs-xdp=true is not honoured in full, or "".
func (p *afpacketPort) Fault() string { return p.xdp.fault }

// readXDP fills bufs from the XDP socket's receive ring, waiting for a
// frame when it is empty.
func (p *afpacketPort) readXDP(bufs [][]byte, sizes []int) (int, error) {
	p.xdp.mu.Lock()
	defer p.xdp.mu.Unlock()
	x := p.xdp.sock
	r := &p.rd
	for {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if n := x.deliver(bufs, sizes, &r.count); n > 0 {
			return n, nil
		}
		err := x.conn.Read(x.waitFn)
		if p.closed.Load() {
			return 0, ErrClosed
		}
		if err != nil {
			return 0, fmt.Errorf("port %s: read: %w", p.name, err)
		}
	}
}

// closeXDP detaches the program and frees the socket; the port is
// already marked closed.
func (p *afpacketPort) closeXDP() {
	if t := p.xdp.tx; t != nil && t != p.xdp.sock {
		p.txMu.Lock()
		t.close()
		p.txMu.Unlock()
	}
	x := p.xdp.sock
	if x == nil {
		return
	}
	// Closing the file wakes a waiting reader, which then lets go of mu.
	_ = x.file.Close()
	p.xdp.mu.Lock()
	p.txMu.Lock()
	x.close()
	p.txMu.Unlock()
	p.xdp.mu.Unlock()
}

// xskWrite sends a batch of plain frames through the XDP socket (the
// transmit experiment); false leaves the batch to the packet ring.
// Called under txMu.
func (p *afpacketPort) xskWrite(frames [][]byte, offs []FrameMeta) bool {
	x := p.xdp.tx
	if x.umem == nil {
		return false
	}
	for i, f := range frames {
		if len(f) > xskFrameSize || (offs != nil && offs[i].Off != (Offload{})) {
			return false
		}
	}
	sent := x.transmit(frames)
	for _, f := range frames[:sent] {
		p.wr.count.add(len(f), 0)
	}
	p.wr.count.dropped += uint64(len(frames) - sent)
	return true
}

// xdpDropped is what the XDP socket could not take, for RxDropped.
func (p *afpacketPort) xdpDropped() uint64 {
	if p.xdp.sock == nil || p.closed.Load() {
		return 0
	}
	return p.xdp.sock.dropped()
}

// xdpReady is RxReady for a port receiving through XDP.
func (p *afpacketPort) xdpReady() bool {
	p.xdp.mu.Lock()
	defer p.xdp.mu.Unlock()
	return !p.closed.Load() && p.xdp.sock.ready()
}
