package datapath

import (
	"time"

	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// TestThread is a port thread driven by a test instead of a netdev read.
type TestThread struct {
	t     *portThread
	views [][]byte
}

// NewTestThread returns the processing half of port no's thread.
func (dp *Datapath) NewTestThread(no uint32) *TestThread {
	return &TestThread{t: newPortThread(dp, dp.cfg.Load().Ports[no]), views: make([][]byte, BatchSize)}
}

// Process runs frames (at most BatchSize) through translation and
// execution as if the port had just read them. It does not allocate.
func (tt *TestThread) Process(frames [][]byte) {
	for i, f := range frames {
		tt.views[i] = tt.t.bufs[i][packet.Headroom:]
		tt.t.sizes[i] = copy(tt.views[i], f)
	}
	tt.t.processBatch(tt.views[:len(frames)])
}

// ProcessOffload is Process for frames with offloads, on the thread of a
// port whose device is a netdev.OffloadPort.
func (tt *TestThread) ProcessOffload(frames [][]byte, offs []netdev.Offload) {
	copy(tt.t.offloads, offs)
	tt.Process(frames)
}

// SetConfigForTest installs cfg without starting port threads.
func (dp *Datapath) SetConfigForTest(cfg *Config) {
	for _, p := range cfg.Ports {
		p.prepare()
	}
	dp.cfg.Store(cfg)
}

// SetCopyPauseForTest changes how long inline mirror copies to a device
// that refused some are dropped, until the test ends.
func SetCopyPauseForTest(t interface{ Cleanup(func()) }, d time.Duration) {
	old := copyPause
	copyPause = d
	t.Cleanup(func() { copyPause = old })
}

// ProcessTunnel is Process for frames with tunnel metadata, on the
// thread of a port whose device is a netdev.TunnelReader.
func (tt *TestThread) ProcessTunnel(frames [][]byte, md []packet.TunnelMeta) {
	copy(tt.t.tun, md)
	tt.Process(frames)
}

// BeforeWait does what the port thread does before it reads again:
// held mirror copies are sent when no frame waits on the port.
func (tt *TestThread) BeforeWait() {
	if tt.t.heldN > 0 && !tt.t.rxReady() {
		tt.t.kickHeld(true)
	}
}

// SetHeldMaxAgeForTest changes how long a thread holds mirror copies at
// most, until the test ends.
func SetHeldMaxAgeForTest(t interface{ Cleanup(func()) }, d time.Duration) {
	old := heldMaxAge
	heldMaxAge = d
	t.Cleanup(func() { heldMaxAge = old })
}

// CopySenderBoosts counts idle copy senders lifted to a nice value.
func CopySenderBoosts() uint64 { return copySenderBoosts.Total() }

// CopyStarve is how long an idle copy sender may make no progress.
const CopyStarve = copyStarve

// FrameBufferSize is the size of the thread's receive buffers, without
// headroom.
func (tt *TestThread) FrameBufferSize() int { return len(tt.t.bufs[0]) - packet.Headroom }

// SetKernelPullInterval sets how often the kernel fast path's counters
// are taken, for tests; it returns the old value.
func SetKernelPullInterval(d time.Duration) time.Duration {
	old := kernelPullInterval
	kernelPullInterval = d
	return old
}
