// Package datapath moves packets: one receive thread per port reads frames
// in batches, parses each once into a flow key, looks the key up in the
// thread's flow cache and, on a miss, asks the port's bridge (a
// Translator, implemented by ofproto) what to do with it; then it applies
// the translation's side effects and executes its actions, sending in
// batches per output port.
//
// A translation is data, so that it can be cached (the model is OVS's
// xlate cache and dpif-netdev's megaflows): an ordered list of actions
// (output, push/pop VLAN, set-field, truncate, clone, ct, recirculation;
// tunnels will join them), the mask of the key bits it read, and side
// effects (MAC learning, mirror statistics) applied to every packet it
// serves. The cache keeps it under the key masked with that mask, so a
// hit costs a few hash probes and no allocation. What the mask cannot
// say (configuration, MAC table contents, flow tables) changes one
// generation number, which makes every cached flow stale at once: whoever
// changes such state calls Invalidate before reporting the change done,
// so the next packet is translated anew.
//
// The executor applies VLAN and set-field actions lazily, at each
// output, to a copy of the received frame: an output that the actions
// leave as received goes out without a copy.
//
// gvs has one datapath for all bridges, as OVS's userspace datapath does;
// ports are numbered in it independently of their OpenFlow numbers. The
// configuration (which ports exist and which bridge each belongs to) is an
// immutable value swapped through one atomic pointer, so the packet path
// takes no lock to read it.
package datapath

import (
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/netdev"
	"gvs/internal/offload"
	"gvs/internal/packet"
	"gvs/internal/vlog"
)

var (
	dpLog = vlog.New("datapath")
	// A failing port or copy destination would otherwise log for every
	// batch; a debug line per flow miss, likewise.
	rxFailRL = vlog.NewRateLimit(5, time.Minute)
	copyRL   = vlog.NewRateLimit(5, time.Minute)
	missRL   = vlog.NewRateLimit(60, time.Minute)

	rxError       = coverage.New("datapath_rx_error")
	copySendError = coverage.New("datapath_mirror_copy_send_error")
	// copySenderBoosts counts idle copy senders lifted to a nice value
	// because they sent nothing for a while with a full queue.
	copySenderBoosts = coverage.New("datapath_mirror_copy_sender_boost")
	// threadPanics counts panics that restarted a port thread or a copy
	// queue's sender.
	threadPanics = coverage.New("datapath_thread_panic")
)

// BatchSize is how many frames a port thread reads per system call.
const BatchSize = 32

// Translator decides the fate of a packet; a bridge implements it.
type Translator interface {
	// Translate fills x (which the datapath has reset) with what to do
	// with pkt, which arrived on datapath port pkt.InPort: the actions,
	// the mask of the key bits it read, the side effects. It must not
	// apply the side effects itself (the datapath does, for this packet
	// and every later one the cached translation applies to), nor keep
	// pkt or x.
	Translate(pkt *Packet, x *Xlate)
}

// Packet is a received frame with its parsed key.
type Packet struct {
	Frame  []byte // the Ethernet frame
	InPort uint32 // datapath port it arrived on
	Key    Key
	Off    packet.Offsets
	// Offload is set for a GSO super-frame that an OffloadPort handed
	// over whole (see netdev.OffloadPort).
	Offload netdev.Offload
}

// Port is a datapath port: an open netdev and the bridge it belongs to.
type Port struct {
	No         uint32
	Name       string
	Dev        netdev.Netdev
	Translator Translator

	txMu sync.Mutex // serialises WriteBatch from several receive threads
	// holders counts the threads that hold mirror copies in this port's
	// transmit ring (guarded by txMu): a thread about to wait leaves its
	// copies to another holder's send, and only the last one has them
	// sent (by the port's copy sender).
	holders int
	// heldCharge is the mirror of the copies last held in this port's
	// transmit ring (guarded by txMu), which held copies that a later
	// send drops are charged to: the device's ring does not know whose
	// copies it holds, and a port is nearly always one mirror's output.
	// It is nil once a send leaves nothing held, and for a deleted
	// mirror (ForgetCopyStats).
	heldCharge    *CopyStats
	copyMu        sync.Mutex
	copiesStopped bool                      // guarded by copyMu: p left the datapath
	copies        atomic.Pointer[copyQueue] // created on the first mirror copy to this port
	// copyPauseUntil (monotonic ns, see monotime) is when inline mirror
	// copies to this port are tried again after its device refused some.
	copyPauseUntil atomic.Int64

	// fast is the port's kernel fast path, nil without one (see
	// fastpath.go).
	fast atomic.Pointer[offload.Port]

	// What Dev can do, found once (see prepare) rather than by a type
	// assertion per packet.
	prepared bool
	inline   bool                       // Dev is netdev.NonBlocking: see copiesInline
	queued   netdev.CopyQueued          // Dev wants its copies queued and counts their drops, or nil
	offload  netdev.OffloadPort         // Dev passes super-frames through, or nil
	tunRx    netdev.TunnelReader        // Dev knows received frames' tunnel metadata, or nil
	tunOff   netdev.TunnelOffloadReader // both of the above at once, or nil
	held     netdev.HeldTransmitter     // Dev can hold inline copies for one send, or nil
	rxReady  netdev.RxReadier           // Dev tells whether a read would wait, or nil
}

// prepare records what p's device can do. A port is prepared before the
// first configuration that holds it is published, and its device never
// changes, so the packet path reads these fields without synchronisation.
func (p *Port) prepare() {
	if p.prepared {
		return
	}
	_, p.inline = p.Dev.(netdev.NonBlocking)
	if p.queued, _ = p.Dev.(netdev.CopyQueued); p.queued != nil {
		p.inline = false
	}
	p.offload, _ = p.Dev.(netdev.OffloadPort)
	if src, ok := p.Dev.(netdev.SuperFrameSource); ok && !src.PassesSuperFrames() {
		p.offload = nil // its thread then reads into MaxFrame buffers
	}
	p.tunRx, _ = p.Dev.(netdev.TunnelReader)
	if p.offload != nil && p.tunRx != nil {
		p.tunOff, _ = p.Dev.(netdev.TunnelOffloadReader)
	}
	if p.inline {
		p.held, _ = p.Dev.(netdev.HeldTransmitter)
	}
	p.rxReady, _ = p.Dev.(netdev.RxReadier)
	p.prepared = true
}

// Config is one immutable configuration of the datapath.
type Config struct {
	Ports map[uint32]*Port
}

// Datapath runs the port threads of the current configuration.
type Datapath struct {
	cfg       atomic.Pointer[Config]
	flowLimit atomic.Int64      // per port thread's flow cache
	poll      *netdev.PollGroup // the port threads that take turns at spinning (SetBusyPoll)
	tracker   atomic.Pointer[trackerRef]
	mu        sync.Mutex
	threads   map[*Port]*portThread
	// wg counts the goroutines started for ports: receive threads and
	// copy-queue senders, including those of ports already removed.
	wg sync.WaitGroup
	// inject executes packet-outs (see Execute).
	inject injector

	// The kernel fast path (fastpath.go), guarded by mu: on, and the
	// goroutine that accounts its counters. offloadMu serialises
	// SetOffload, which lets go of mu to stop that goroutine.
	offloadOn          bool
	pullQuit, pullDone chan struct{}
	offloadMu          sync.Mutex
	offloadErrs        map[string]string // ports the programs could not go on, and why
}

// New returns an empty datapath.
func New() *Datapath {
	dp := &Datapath{threads: map[*Port]*portThread{}, poll: netdev.NewPollGroup(), offloadErrs: map[string]string{}}
	dp.cfg.Store(&Config{Ports: map[uint32]*Port{}})
	dp.flowLimit.Store(DefaultFlowLimit)
	return dp
}

// Config returns the current configuration.
func (dp *Datapath) Config() *Config { return dp.cfg.Load() }

// SetConfig installs cfg: threads start for new ports and stop for ports
// that are gone (the caller closes their netdevs). A port whose *Port value
// is the same in both configurations keeps its thread undisturbed.
func (dp *Datapath) SetConfig(cfg *Config) {
	dp.mu.Lock()
	defer dp.mu.Unlock()
	for _, p := range cfg.Ports {
		p.prepare()
	}
	dp.cfg.Store(cfg)
	Invalidate() // cached flows may output to ports that are gone
	live := map[*Port]bool{}
	for _, p := range cfg.Ports {
		live[p] = true
	}
	// A device that moves between bridges is another Port: its old fast
	// path goes before the new one comes.
	for p := range dp.threads {
		if !live[p] {
			dp.detachFast(p)
		}
	}
	for _, p := range cfg.Ports {
		if _, ok := dp.threads[p]; !ok {
			if dp.offloadOn {
				dp.attachFast(p)
			}
			if bp, ok := p.Dev.(netdev.BusyPoller); ok {
				bp.JoinPollGroup(dp.poll) // before its thread's first read
			}
			p.startCopies()
			t := newPortThread(dp, p)
			dp.threads[p] = t
			dp.wg.Add(1)
			go t.run()
		}
	}
	for p, t := range dp.threads {
		if !live[p] {
			t.stop()
			p.stopCopies()
			delete(dp.threads, p)
		}
	}
}

// Close stops every port thread and copy-queue sender and waits until
// they have ended. A thread blocked in ReadBatch ends when its device is
// closed, so the caller closes (or detaches) the devices first; a thread
// that has not ended after closeWait is reported and left behind, so
// that a stuck driver cannot hang the daemon's exit.
func (dp *Datapath) Close() {
	_ = dp.SetOffload(false)
	dp.SetConfig(&Config{Ports: map[uint32]*Port{}})
	done := make(chan struct{})
	go func() {
		dp.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(closeWait):
		dpLog.Err("port threads still running %v after close: a device did not release its reader", closeWait)
	}
}

// closeWait bounds how long Close waits for threads.
const closeWait = 5 * time.Second

// ForgetCopyStats makes the datapath charge c, the copy counters of a
// mirror that was deleted, nothing more: held copies of it that a later
// send drops are counted in their port's tx_dropped only. Only ports
// that hold copies are locked, and their writes never wait.
func (dp *Datapath) ForgetCopyStats(c *CopyStats) {
	for _, p := range dp.cfg.Load().Ports {
		if p.held == nil {
			continue
		}
		p.txMu.Lock()
		if p.heldCharge == c {
			p.heldCharge = nil
		}
		p.txMu.Unlock()
	}
}
