package netdev

import "sync"

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
