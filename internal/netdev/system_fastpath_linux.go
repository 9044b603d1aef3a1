//go:build linux

package netdev

import "golang.org/x/sys/unix"

// The system port is a FastPathDev.
var _ FastPathDev = (*afpacketPort)(nil)

// IfIndex returns the interface's index.
func (p *afpacketPort) IfIndex() int { return p.ifindex }

// AttachSocketProgram puts the eBPF socket filter progFD on the receive
// socket: the packets it drops are not copied to gvsd.
func (p *afpacketPort) AttachSocketProgram(progFD int) error {
	return p.setsockopt(unix.SO_ATTACH_BPF, progFD)
}

// DetachSocketProgram takes the filter off again.
func (p *afpacketPort) DetachSocketProgram() error {
	return p.setsockopt(unix.SO_DETACH_BPF, 0)
}

func (p *afpacketPort) setsockopt(opt, val int) error {
	var serr error
	if err := p.conn.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, val)
	}); err != nil {
		return err
	}
	return serr
}

// SetKernelStats: see FastPathDev.
func (p *afpacketPort) SetKernelStats(live func() Stats) { p.kstats.set(live) }
