package offload

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Socket is the receive socket of a system port, which the fast path's
// socket filter keeps the packets it forwards from.
type Socket interface {
	AttachSocketProgram(progFD int) error
	DetachSocketProgram() error
}

// Flow is a flow installed in the kernel: its counters' index plus one,
// 0 for none.
type Flow uint32

// Valid reports whether f is an installed flow.
func (f Flow) Valid() bool { return f != 0 }

func (f Flow) id() uint32 { return uint32(f) - 1 }

// Port is a device with a slot in the maps: an output of flows from its
// creation, an input of flows once Attach has put the programs on it.
type Port struct {
	k       *Kernel
	ifindex int
	slot    int
	inport  uint32

	mu       sync.Mutex
	closed   bool
	attached bool
	masks    [MaxMasks]bool
	flows    map[uint32]flowKey // by counter index
	ids      map[flowKey]uint32 // the other way round
	tc       link.Link
	sock     Socket
	final    Stats // the counters at Close

	// A tunnel port (NewTunnel) has no device of its own: its record is
	// under rx in gvs_tun_rx while SetTunnel has given it a route,
	// whose device (ul) has the decapsulation program.
	tunnel  bool
	sending bool       // the kernel sends by path
	path    TunnelPath // what SetTunnel last set
	rx      tunRxKey   // what the port receives, while ul is set
	ul      int        // the device whose decapsulation program is the port's input
	nm      int        // nmasks as last written
}

// ErrFull means a map has no room left: the flow stays in gvsd only.
var ErrFull = errors.New("offload: no room in the kernel's tables")

// NewPort gives the device with ifindex, datapath port inport, a slot.
func (k *Kernel) NewPort(ifindex int, inport uint32) (*Port, error) {
	return k.newPort(ifindex, inport, false)
}

func (k *Kernel) newPort(ifindex int, inport uint32, tunnel bool) (*Port, error) {
	k.mu.Lock()
	slot := -1
	for i, used := range k.slots {
		if !used {
			slot = i
			k.slots[i] = true
			break
		}
	}
	k.mu.Unlock()
	if slot < 0 {
		return nil, fmt.Errorf("%w: %d ports", ErrFull, MaxPorts)
	}
	p := &Port{k: k, ifindex: ifindex, slot: slot, inport: inport, tunnel: tunnel, flows: map[uint32]flowKey{}, ids: map[flowKey]uint32{}}
	zero := make([]portStats, ebpf.MustPossibleCPU())
	if err := k.portStats.Update(uint32(slot), zero, ebpf.UpdateAny); err != nil {
		p.freeSlot()
		return nil, fmt.Errorf("offload: port counters: %w", err)
	}
	for m := range MaxMasks {
		if err := k.masks.Update(uint32(slot*MaxMasks+m), maskRec{}, ebpf.UpdateAny); err != nil {
			p.freeSlot()
			return nil, fmt.Errorf("offload: port masks: %w", err)
		}
	}
	if tunnel {
		if err := k.tunnels.Update(uint32(slot), tunnelRec{}, ebpf.UpdateAny); err != nil {
			p.freeSlot()
			return nil, fmt.Errorf("offload: tunnel record: %w", err)
		}
	}
	if err := p.writeRec(0); err != nil {
		p.freeSlot()
		return nil, err
	}
	return p, nil
}

func (p *Port) freeSlot() {
	p.k.mu.Lock()
	p.k.slots[p.slot] = false
	p.k.mu.Unlock()
}

// writeRec publishes the port's record with nmasks mask slots.
func (p *Port) writeRec(nmasks int) error {
	p.nm = nmasks
	rec := portRec{Slot: uint32(p.slot), InPort: p.inport, NMasks: uint32(nmasks)}
	if p.tunnel {
		if p.ul == 0 {
			return nil
		}
		if err := p.k.tunRx.Update(p.rx, rec, ebpf.UpdateAny); err != nil {
			return fmt.Errorf("offload: tunnel record: %w", err)
		}
		return nil
	}
	if err := p.k.ports.Update(uint32(p.ifindex), rec, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("offload: port record: %w", err)
	}
	return nil
}

// Attach puts the tc program on the device's ingress and the socket
// filter on sock, gvsd's receive socket of the device: from then on the
// packets of the port's flows are forwarded in the kernel.
func (p *Port) Attach(sock Socket) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.tc != nil {
		return errors.New("offload: port closed or already attached")
	}
	// tc first: a verdict the filter leaves must find it there.
	l, err := link.AttachTCX(link.TCXOptions{Interface: p.ifindex, Program: p.k.ingress, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("offload: attaching to tc ingress: %w", err)
	}
	if err := sock.AttachSocketProgram(p.k.sockFilter.FD()); err != nil {
		l.Close()
		return fmt.Errorf("offload: attaching the socket filter: %w", err)
	}
	p.tc, p.sock, p.attached = l, sock, true
	return nil
}

// Attached reports whether the programs are on the device: only then
// are the port's own flows worth installing.
func (p *Port) Attached() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attached || p.ul != 0
}

// Detach takes the programs off the device: from then on gvsd receives
// every packet. The flows stay until Close.
func (p *Port) Detach() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.detach()
}

func (p *Port) detach() {
	p.attached = false
	if p.tunnel {
		p.clearTunnel() // the decapsulation stops with the route
	}
	// The filter first: a packet it lets through reaches gvsd.
	if p.sock != nil {
		_ = p.sock.DetachSocketProgram()
		p.sock = nil
	}
	if p.tc != nil {
		p.tc.Close()
		p.tc = nil
	}
}

// Close detaches the port and takes its flows, masks and slot out of
// the maps; Stats keeps returning its last counters. Flows of other
// ports that output to it are the datapath's to make stale (a new
// generation).
func (p *Port) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.detach()
	if p.tunnel {
		p.clearTunnel()
	} else {
		// The record is this port's unless a port of the same device
		// took it over (a device moved between bridges).
		var rec portRec
		if p.k.ports.Lookup(uint32(p.ifindex), &rec) == nil && rec.Slot == uint32(p.slot) {
			_ = p.k.ports.Delete(uint32(p.ifindex))
		}
	}
	for id, key := range p.flows {
		_ = p.k.flows.Delete(key)
		p.k.freeID(id)
	}
	p.flows, p.ids = nil, nil
	for m := range MaxMasks {
		if p.masks[m] {
			_ = p.k.masks.Update(uint32(p.slot*MaxMasks+m), maskRec{}, ebpf.UpdateAny)
		}
	}
	p.final = p.readStats()
	p.closed = true
	p.freeSlot()
}

// SetMask fills mask slot m with the key words idx and their masks.
func (p *Port) SetMask(m int, idx []uint16, mwrd []uint64) error {
	if m < 0 || m >= MaxMasks || len(idx) == 0 || len(idx) > MaxMaskWords || len(idx) != len(mwrd) {
		return fmt.Errorf("offload: bad mask %d of %d words", m, len(idx))
	}
	var rec maskRec
	rec.NWords = uint32(len(idx))
	copy(rec.Idx[:], idx)
	copy(rec.Mwrd[:], mwrd)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New("offload: port closed")
	}
	if err := p.k.masks.Update(uint32(p.slot*MaxMasks+m), rec, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("offload: mask: %w", err)
	}
	p.masks[m] = true
	return p.writeRec(p.nmasks())
}

// ClearMask frees mask slot m; the caller has deleted its flows.
func (p *Port) ClearMask(m int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || m < 0 || m >= MaxMasks || !p.masks[m] {
		return
	}
	p.masks[m] = false
	_ = p.writeRec(p.nmasks())
	_ = p.k.masks.Update(uint32(p.slot*MaxMasks+m), maskRec{}, ebpf.UpdateAny)
}

// nmasks is one past the highest slot in use.
func (p *Port) nmasks() int {
	n := 0
	for m, used := range p.masks {
		if used {
			n = m + 1
		}
	}
	return n
}

// AddFlow installs, for packets of this port whose key words masked by
// mask slot m are vals, the actions ops, made at generation gen and
// expiring at expires (the datapath's clock; 0: never).
func (p *Port) AddFlow(m int, vals []uint64, ops []Op, gen uint64, expires int64) (Flow, error) {
	if m < 0 || m >= MaxMasks || len(vals) > MaxMaskWords || len(ops) > MaxOps {
		return 0, fmt.Errorf("offload: flow too large for the kernel")
	}
	key := flowKey{Port: uint32(p.slot), Mask: uint32(m)}
	copy(key.Vals[:], vals)
	val := flowVal{Gen: gen, NOps: uint32(len(ops))}
	if expires != 0 {
		val.Expires = uint64(expires + p.k.clockOffset)
	}
	for i, o := range ops {
		val.Ops[i] = opRec{Ifindex: o.ifindex, Kind: o.kind, TCI: o.tci, TPID: o.tpid, Port: o.port}
	}
	id, ok := p.k.allocID()
	if !ok {
		return 0, fmt.Errorf("%w: %d flows", ErrFull, MaxFlows)
	}
	val.ID = id
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		p.k.freeID(id)
		return 0, errors.New("offload: port closed")
	}
	if err := p.k.flowStats.Update(id, p.k.zeroFlowStats, ebpf.UpdateAny); err != nil {
		p.k.freeID(id)
		return 0, fmt.Errorf("offload: flow counters: %w", err)
	}
	if _, dup := p.ids[key]; dup {
		// The cache removes a flow before it installs another of the
		// same mask and values, so this cannot happen; refusing keeps
		// two flows from sharing one entry if it does.
		p.k.freeID(id)
		return 0, errors.New("offload: a flow with this match is already installed")
	}
	if err := p.k.flows.Update(key, val, ebpf.UpdateAny); err != nil {
		p.k.freeID(id)
		if errors.Is(err, ebpf.ErrKeyNotExist) || errors.Is(err, errNoSpace) {
			return 0, fmt.Errorf("%w: %v", ErrFull, err)
		}
		return 0, fmt.Errorf("offload: flow: %w", err)
	}
	p.flows[id] = key
	p.ids[key] = id
	return Flow(id + 1), nil
}

// DelFlow deletes f, if it is still there, and returns its counters as
// FlowStats does, read after it left the map (a packet whose verdict was
// taken just before may still count after the read, and is missed).
func (p *Port) DelFlow(f Flow) (packets, bytes uint64, used int64, ok bool) {
	if !f.Valid() {
		return 0, 0, 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	key, ok := p.flows[f.id()]
	if !ok {
		return 0, 0, 0, false
	}
	delete(p.flows, f.id())
	delete(p.ids, key)
	_ = p.k.flows.Delete(key)
	packets, bytes, used, ok = p.readFlowStats(f.id())
	p.k.freeID(f.id())
	return packets, bytes, used, ok
}

// FlowStats returns what f forwarded: packets, bytes (with their VLAN
// tags, as gvsd counts them) and when it last did (the datapath's clock;
// 0: never).
func (p *Port) FlowStats(f Flow) (packets, bytes uint64, used int64, ok bool) {
	if !f.Valid() {
		return 0, 0, 0, false
	}
	p.mu.Lock()
	_, live := p.flows[f.id()]
	p.mu.Unlock()
	if !live {
		return 0, 0, 0, false
	}
	return p.readFlowStats(f.id())
}

func (p *Port) readFlowStats(id uint32) (packets, bytes uint64, used int64, ok bool) {
	var per []flowStats
	if p.k.flowStats.Lookup(id, &per) != nil {
		return 0, 0, 0, false
	}
	var last uint64
	for _, s := range per {
		packets += s.Packets
		bytes += s.Bytes
		last = max(last, s.Used)
	}
	if last != 0 {
		used = int64(last) - p.k.clockOffset
	}
	return packets, bytes, used, true
}

// Stats is what the kernel forwarded for a port.
type Stats struct{ RxPackets, RxBytes, TxPackets, TxBytes, TxDropped uint64 }

// Stats returns the port's counters in the kernel, summed over CPUs.
func (p *Port) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return p.final
	}
	return p.readStats()
}

func (p *Port) readStats() Stats {
	var per []portStats
	var s Stats
	if p.k.portStats.Lookup(uint32(p.slot), &per) != nil {
		return s
	}
	for _, c := range per {
		s.RxPackets += c.RxPackets
		s.RxBytes += c.RxBytes
		s.TxPackets += c.TxPackets
		s.TxBytes += c.TxBytes
		s.TxDropped += c.TxDropped
	}
	return s
}
