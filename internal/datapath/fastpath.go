package datapath

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"gvs/internal/coverage"
	"gvs/internal/netdev"
	"gvs/internal/offload"
	"gvs/internal/vlog"
)

// The kernel fast path (package offload, Open_vSwitch
// other_config:hw-offload=true): a cached flow of a system port whose
// actions the kernel can run is installed there too, and its packets
// never reach the port thread. The thread's cache stays the owner: it
// installs and removes the kernel's copy with its own flow, and takes
// the kernel's counters into the flow (and so into its rules, mirrors and
// MAC learning) every kernelPullInterval, before dumps and when the flow
// goes.

var (
	kernelAdded     = coverage.New("datapath_offload_flow_add")
	kernelRefused   = coverage.New("datapath_offload_flow_refused")
	kernelAttachErr = coverage.New("datapath_offload_attach_error")

	offloadRL = vlog.NewRateLimit(5, time.Minute)
)

// kernelPullInterval is how often the kernel's flow counters are
// accounted: MAC learning and rule counters lag by at most this.
var kernelPullInterval = time.Second // a variable for tests

// The program and maps, loaded on the first SetOffload(true) and kept
// for the process's life (one set serves every datapath).
var (
	kernelMu   sync.Mutex
	kernelPath atomic.Pointer[offload.Kernel]
	// genMu orders the generation's writes to the kernel, so that the
	// last one written is the latest.
	genMu sync.Mutex
)

func loadKernel() (*offload.Kernel, error) {
	kernelMu.Lock()
	defer kernelMu.Unlock()
	if k := kernelPath.Load(); k != nil {
		return k, nil
	}
	// A failure is not kept: what made it (memory, a limit) may pass.
	k, err := offload.Load(monotime)
	if err != nil {
		return nil, err
	}
	kernelPath.Store(k)
	publishGeneration()
	return k, nil
}

// publishGeneration tells the kernel the datapath's generation.
func publishGeneration() {
	k := kernelPath.Load()
	if k == nil {
		return
	}
	genMu.Lock()
	defer genMu.Unlock()
	if err := k.SetGeneration(generation.Load()); err != nil {
		dpLog.ErrRL(offloadRL, "offload: cannot set the generation, the kernel may forward by stale flows: %v", err)
	}
}

// CheckOffload loads the fast path's program if it is not yet, and
// returns the kernel's reason if it cannot be.
func CheckOffload() error {
	_, err := loadKernel()
	return err
}

// SetOffload turns the kernel fast path on or off for every system
// port. Turning it on fails, with the kernel's reason, if the program
// cannot be loaded; the switch then works as before.
func (dp *Datapath) SetOffload(on bool) error {
	dp.offloadMu.Lock()
	defer dp.offloadMu.Unlock()
	dp.mu.Lock()
	if on == dp.offloadOn {
		dp.mu.Unlock()
		return nil
	}
	if on {
		if _, err := loadKernel(); err != nil {
			dp.mu.Unlock()
			return err
		}
		dp.offloadOn = true
		for _, p := range dp.cfg.Load().Ports {
			dp.attachFast(p)
		}
		dp.pullQuit = make(chan struct{})
		dp.pullDone = make(chan struct{})
		go dp.pullKernelLoop(dp.pullQuit, dp.pullDone)
		dp.mu.Unlock()
	} else {
		dp.offloadOn = false
		quit, done := dp.pullQuit, dp.pullDone
		dp.mu.Unlock()
		// The loop takes mu: it is stopped without it.
		close(quit)
		<-done
		dp.mu.Lock()
		ports := dp.cfg.Load().Ports
		// Every program off first, so that no flow still sends to (and
		// counts on) a port closed before it.
		for _, p := range ports {
			if kp := p.fast.Load(); kp != nil {
				kp.Detach()
			}
		}
		for _, p := range ports {
			dp.detachFast(p)
		}
		dp.mu.Unlock()
	}
	// Flows cached so far are made again, and installed in the kernel
	// (or not) by the new setting.
	Invalidate()
	return nil
}

// OffloadStatus says whether the fast path is on, the programs'
// counters (see offload.Counter*), and why ports have none, by name.
func (dp *Datapath) OffloadStatus() (on bool, counters []uint64, portErrs map[string]string) {
	dp.mu.Lock()
	on = dp.offloadOn
	portErrs = maps.Clone(dp.offloadErrs)
	dp.mu.Unlock()
	if k := kernelPath.Load(); k != nil {
		c := k.Counters()
		counters = c[:]
	}
	return on, counters, portErrs
}

// attachFast gives port p a fast path if its device can have one.
func (dp *Datapath) attachFast(p *Port) {
	k := kernelPath.Load()
	if k == nil || p.fast.Load() != nil {
		return
	}
	if td, ok := p.Dev.(netdev.FastTunnelDev); ok {
		if td.KernelTunnelable() {
			dp.attachTunnel(k, p, td)
		}
		return
	}
	dev, ok := p.Dev.(netdev.FastPathDev)
	if !ok {
		return
	}
	kp, err := k.NewPort(dev.IfIndex(), p.No)
	if err != nil {
		kernelAttachErr.Inc()
		dpLog.WarnRL(offloadRL, "port %s: no kernel fast path: %v", p.Name, err)
		return
	}
	// A port the programs cannot go on is still an output of others'
	// flows.
	if err := kp.Attach(dev); err != nil {
		kernelAttachErr.Inc()
		dpLog.WarnRL(offloadRL, "port %s: the kernel fast path forwards nothing it receives: %v", p.Name, err)
		dp.offloadErrs[p.Name] = err.Error()
	}
	dev.SetKernelStats(kernelStats(kp))
	p.fast.Store(kp)
}

// kernelStats returns what the kernel counted for kp, as a device's
// counters.
func kernelStats(kp *offload.Port) func() netdev.Stats {
	return func() netdev.Stats {
		s := kp.Stats()
		return netdev.Stats{RxPackets: s.RxPackets, RxBytes: s.RxBytes,
			TxPackets: s.TxPackets, TxBytes: s.TxBytes, TxDropped: s.TxDropped}
	}
}

// attachTunnel gives tunnel port p a fast path: an output of flows at
// once, which the kernel sends while the tunnel has a route it can
// use (refreshTunnels), and an input while it has one.
func (dp *Datapath) attachTunnel(k *offload.Kernel, p *Port, td netdev.FastTunnelDev) {
	kp, err := k.NewTunnel(p.No)
	if err != nil {
		kernelAttachErr.Inc()
		dpLog.WarnRL(offloadRL, "port %s: no kernel fast path: %v", p.Name, err)
		return
	}
	td.SetKernelStats(kernelStats(kp))
	p.fast.Store(kp)
	dp.setTunnelPath(p, kp, tunnelPath(td))
}

// tunnelPath asks the tunnel's device how the kernel may carry it now
// (a zero path: not at all). It asks the kernel's tables: no lock held.
func tunnelPath(td netdev.FastTunnelDev) offload.TunnelPath {
	kt, ok := td.KernelTunnel()
	if !ok {
		return offload.TunnelPath{}
	}
	return offload.TunnelPath{Header: kt.Header, Ifindex: kt.Ifindex, MTU: kt.MTU,
		Remote: kt.Remote, Local: kt.Local, Key: kt.Key, Receive: kt.Receive}
}

// setTunnelPath gives the kernel tunnel port p's path; dp.mu held.
func (dp *Datapath) setTunnelPath(p *Port, kp *offload.Port, path offload.TunnelPath) {
	if err := kp.SetTunnel(path); err != nil {
		kernelAttachErr.Inc()
		dpLog.WarnRL(offloadRL, "port %s: the kernel fast path neither sends nor receives its packets: %v", p.Name, err)
		dp.offloadErrs[p.Name] = err.Error()
		return
	}
	delete(dp.offloadErrs, p.Name)
}

// refreshTunnels follows the routes of the tunnel ports with a fast
// path.
func (dp *Datapath) refreshTunnels() {
	for _, p := range dp.cfg.Load().Ports {
		td, ok := p.Dev.(netdev.FastTunnelDev)
		kp := p.fast.Load()
		if !ok || kp == nil {
			continue
		}
		path := tunnelPath(td)
		dp.mu.Lock()
		// Set only if the port still has this fast path: detachFast,
		// under mu, may have taken it away meanwhile.
		if p.fast.Load() == kp {
			dp.setTunnelPath(p, kp, path)
		}
		dp.mu.Unlock()
	}
}

// detachFast takes port p's fast path away: its flows' counters are
// accounted, then the programs and the flows leave the kernel.
func (dp *Datapath) detachFast(p *Port) {
	delete(dp.offloadErrs, p.Name)
	kp := p.fast.Swap(nil)
	if kp == nil {
		return
	}
	kp.Detach() // from here on, gvsd gets every packet
	if t := dp.threads[p]; t != nil {
		t.cache.mu.Lock()
		t.cache.forgetKernel()
		t.cache.mu.Unlock()
	}
	kp.Close()
	if dev, ok := p.Dev.(interface{ SetKernelStats(func() netdev.Stats) }); ok {
		dev.SetKernelStats(nil)
	}
}

// pullKernelLoop accounts the kernel's counters every
// kernelPullInterval until quit closes.
func (dp *Datapath) pullKernelLoop(quit, done chan struct{}) {
	defer close(done)
	tick := time.NewTicker(kernelPullInterval)
	defer tick.Stop()
	for {
		select {
		case <-quit:
			return
		case <-tick.C:
		}
		dp.mu.Lock()
		caches := make([]*flowCache, 0, len(dp.threads))
		for _, t := range dp.threads {
			caches = append(caches, t.cache)
		}
		dp.mu.Unlock()
		for _, c := range caches {
			c.pullKernel()
		}
		dp.refreshTunnels()
	}
}

// offloadFlow installs f, just cached, in the kernel if its input port
// has a fast path and the kernel can run its actions.
func (t *portThread) offloadFlow(cfg *Config, f *cacheFlow) {
	kp := t.port.fast.Load()
	if kp == nil || !kp.Attached() || !kernelEffects(f.effects) {
		return
	}
	ops, ok := t.kernelOps(cfg, f.actions)
	if !ok {
		return
	}
	c := t.cache
	slot, ok := c.kernelMask(kp, f.st)
	if !ok {
		kernelRefused.Inc()
		return
	}
	kf, err := kp.AddFlow(slot, f.vals[:len(f.st.idx)], ops, f.gen, f.expires)
	if err != nil {
		kernelRefused.Inc()
		if !errors.Is(err, offload.ErrFull) {
			dpLog.WarnRL(offloadRL, "port %s: flow not offloaded: %v", t.port.Name, err)
		}
		c.releaseKernelMask(kp, f.st)
		return
	}
	f.kf, f.kport, f.kPackets, f.kBytes = kf, kp, 0, 0
	f.st.kflows++
	kernelAdded.Inc()
}

// kernelEffects reports whether effects can be applied in bulk, from the
// kernel's counters.
func kernelEffects(effects []Effect) bool {
	for i := range effects {
		switch effects[i].Kind {
		case EffectAccount, EffectCount, EffectLearn:
		default:
			return false
		}
	}
	return true
}

// kernelOps translates acts into the kernel's actions, in t's scratch
// list; false if the kernel cannot run one of them (an output to a port
// without a fast path, a set-field, a truncation, conntrack...).
func (t *portThread) kernelOps(cfg *Config, acts []Action) ([]offload.Op, bool) {
	ops := t.kops[:0]
	for i := 0; i < len(acts); i++ {
		a := &acts[i]
		var ok bool
		if a.Kind == ActClone {
			n := min(int(a.Len), len(acts)-i-1)
			ops, ok = kernelClone(cfg, ops, acts[i+1:i+1+n])
			i += n
		} else {
			ops, ok = kernelOp(cfg, ops, a)
		}
		if !ok || len(ops) > offload.MaxOps {
			return nil, false
		}
	}
	t.kops = ops
	return offload.OrderEncap(ops)
}

// kernelOp appends the kernel's form of a, an output or a VLAN action.
func kernelOp(cfg *Config, ops []offload.Op, a *Action) ([]offload.Op, bool) {
	switch a.Kind {
	case ActOutput:
		out := cfg.Ports[a.Port]
		if out == nil {
			return ops, false
		}
		op := out.fast.Load()
		if op == nil {
			return ops, false
		}
		if _, tunnel := out.Dev.(netdev.FastTunnelDev); tunnel {
			return append(ops, offload.Encap(op)), true
		}
		return append(ops, offload.Output(op)), true
	case ActPushVLAN:
		return append(ops, offload.PushVLAN(a.TPID, a.TCI)), true
	case ActPopVLAN:
		return append(ops, offload.PopVLAN()), true
	}
	return ops, false
}

// kernelClone appends a clone of body, as translation makes them for
// NORMAL's outputs: outputs and at most one VLAN push or pop, which the
// kernel undoes after them (a pop by pushing the tag it saved before).
func kernelClone(cfg *Config, ops []offload.Op, body []Action) ([]offload.Op, bool) {
	var vlan ActionKind
	for i := range body {
		switch k := body[i].Kind; k {
		case ActOutput:
		case ActPushVLAN, ActPopVLAN:
			if vlan != 0 {
				return ops, false
			}
			vlan = k
		default:
			return ops, false
		}
	}
	if vlan == ActPopVLAN {
		ops = append(ops, offload.SaveVLAN())
	}
	for i := range body {
		var ok bool
		if ops, ok = kernelOp(cfg, ops, &body[i]); !ok {
			return ops, false
		}
	}
	switch vlan {
	case ActPopVLAN:
		ops = append(ops, offload.UndoPop())
	case ActPushVLAN:
		ops = append(ops, offload.UndoPush())
	}
	return ops, true
}

// kernelMask returns the kernel's mask slot of subtable s, giving it one
// if it has none.
func (c *flowCache) kernelMask(kp *offload.Port, s *subtable) (int, bool) {
	if s.kmask > 0 {
		return s.kmask - 1, true
	}
	for slot, owner := range c.kslots {
		if owner != nil {
			continue
		}
		if err := kp.SetMask(slot, s.idx, s.mwrd); err != nil {
			dpLog.WarnRL(offloadRL, "offload: mask not installed: %v", err)
			return 0, false
		}
		c.kslots[slot] = s
		s.kmask = slot + 1
		return slot, true
	}
	return 0, false
}

// releaseKernelMask frees s's mask slot once no kernel flow uses it.
func (c *flowCache) releaseKernelMask(kp *offload.Port, s *subtable) {
	if s.kmask == 0 || s.kflows > 0 {
		return
	}
	kp.ClearMask(s.kmask - 1)
	c.kslots[s.kmask-1] = nil
	s.kmask = 0
}

// pullFlow takes what the kernel forwarded for f since the last pull
// into f's counters.
func (c *flowCache) pullFlow(f *cacheFlow) {
	if p, b, used, ok := f.kport.FlowStats(f.kf); ok {
		c.takeKernelCounts(f, p, b, used)
	}
}

// kernelIdle is how long a flow the kernel forwards may go unused before
// it leaves the kernel and the cache (OVS's default max-idle): the
// kernel's table is shared by all ports.
var kernelIdle = 10 * time.Second

// kernelRead is one flow's kernel counters, read by pullKernel without
// the cache's lock.
type kernelRead struct {
	f      *cacheFlow
	seq    uint64 // f's installation, which the counters are of
	kf     offload.Flow
	kp     *offload.Port
	p, b   uint64
	used   int64
	readOK bool
}

// pullKernel accounts what the kernel forwarded for every flow of c,
// and removes the flows that are stale, expired or idle. The counters
// are read (a system call per flow) without c's lock, so that the port
// thread is not held up meanwhile.
func (c *flowCache) pullKernel() {
	c.mu.Lock()
	reads := c.kreads[:0]
	for _, s := range c.subtables {
		if s.kflows == 0 {
			continue
		}
		for i := range s.slots {
			if f := s.slots[i].f; f != nil && f.kf.Valid() {
				reads = append(reads, kernelRead{f: f, seq: f.seq, kf: f.kf, kp: f.kport})
			}
		}
	}
	c.mu.Unlock()
	for i := range reads {
		r := &reads[i]
		r.p, r.b, r.used, r.readOK = r.kp.FlowStats(r.kf)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	gen, now := generation.Load(), monotime()
	gone := c.kgone[:0]
	for i := range reads {
		r := &reads[i]
		f := r.f
		if f.dead || f.seq != r.seq || f.kf != r.kf || !r.readOK {
			continue // removed meanwhile: accounted then
		}
		c.takeKernelCounts(f, r.p, r.b, r.used)
		live := f.gen == gen && (f.expires == 0 || now < f.expires)
		// A stale flow's packets are counted but teach nothing: the
		// host may have moved since (a learned address that changed
		// made it stale).
		c.accountEffects(f, live)
		if !live || now-f.used > int64(kernelIdle) {
			gone = append(gone, f)
		}
	}
	for i, f := range gone {
		c.remove(f)
		gone[i] = nil
	}
	c.wall = time.Time{}
	clear(reads)
	c.kreads, c.kgone = reads[:0], gone[:0]
}

// takeKernelCounts takes the kernel's counters of f, p packets and b
// bytes in all, into f's.
func (c *flowCache) takeKernelCounts(f *cacheFlow, p, b uint64, used int64) {
	if p <= f.kPackets {
		return
	}
	f.packets += p - f.kPackets
	f.bytes += b - f.kBytes
	f.kPackets, f.kBytes = p, b
	f.used = max(f.used, used)
}

// unoffload takes f out of the kernel, accounting what it forwarded.
func (c *flowCache) unoffload(f *cacheFlow) {
	if !f.kf.Valid() {
		return
	}
	kp := f.kport
	if p, b, used, ok := kp.DelFlow(f.kf); ok && p > f.kPackets {
		c.takeKernelCounts(f, p, b, used)
		live := f.gen == generation.Load() && (f.expires == 0 || monotime() < f.expires)
		c.accountEffects(f, live)
		c.wall = time.Time{}
	}
	f.kf, f.kport, f.kPackets, f.kBytes = 0, nil, 0, 0
	f.st.kflows--
	c.releaseKernelMask(kp, f.st)
}

// forgetKernel takes every flow of c out of the kernel.
func (c *flowCache) forgetKernel() {
	for _, s := range c.subtables {
		if s.kflows == 0 {
			continue
		}
		for i := range s.slots {
			if f := s.slots[i].f; f != nil && f.kf.Valid() {
				c.unoffload(f)
			}
		}
	}
}
