package ofproto

import (
	"encoding/binary"
	"fmt"
	"sync"

	"gvs/internal/conntrack"
	"gvs/internal/coverage"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/packet"
)

// frozen is where a translation stopped at ct(table=N), to go on from
// when its packet comes back from the connection tracker: the bridge,
// the port the packet entered it through, the table, and the registers
// and metadata, which survive recirculation as in OVS (the packet's
// headers travel with the packet, its ct_* fields come from the
// tracker). Its recirculation id stands for it in the flow cache key.
type frozen struct {
	bridge   *Bridge
	inDP     uint32 // the input port's datapath number
	table    uint8
	depth    int // patch depth
	regs     [packet.NumRegs]uint32
	metadata uint64
}

// maxRecircIDs bounds the frozen states kept at once: each distinct
// (bridge, port, table, registers, metadata) takes one.
const maxRecircIDs = 1 << 16

// recircs maps frozen states to recirculation ids and back. Only
// translation (a cache miss) reads it, so a lock is cheap enough.
var recircs = struct {
	sync.RWMutex
	ids    map[frozen]uint32
	states map[uint32]frozen
	next   uint32
}{ids: map[frozen]uint32{}, states: map[uint32]frozen{}}

var (
	recircFull    = coverage.New("ofproto_recirc_ids_exhausted")
	recircUnknown = coverage.New("ofproto_recirc_id_unknown")
)

// freeze returns the recirculation id of fz, allocating one the first
// time; false when there are too many.
func freeze(fz frozen) (uint32, bool) {
	recircs.RLock()
	id, ok := recircs.ids[fz]
	recircs.RUnlock()
	if ok {
		return id, true
	}
	recircs.Lock()
	defer recircs.Unlock()
	if id, ok := recircs.ids[fz]; ok {
		return id, true
	}
	if len(recircs.ids) >= maxRecircIDs {
		recircFull.Inc()
		return 0, false
	}
	recircs.next++
	if recircs.next == 0 {
		recircs.next = 1
	}
	id = recircs.next
	recircs.ids[fz], recircs.states[id] = id, fz
	return id, true
}

// thaw returns the frozen state of recirculation id id.
func thaw(id uint32) (frozen, bool) {
	recircs.RLock()
	defer recircs.RUnlock()
	fz, ok := recircs.states[id]
	return fz, ok
}

// ForgetBridge drops the frozen states of a bridge that is gone, so
// that their ids can be used again, and stops its group port watcher.
func ForgetBridge(b *Bridge) {
	b.Groups.Close() // its port watcher
	recircs.Lock()
	defer recircs.Unlock()
	for fz, id := range recircs.ids {
		if fz.bridge == b {
			delete(recircs.ids, fz)
			delete(recircs.states, id)
		}
	}
}

// resume translates a recirculated packet from where its translation
// froze.
func resume(x *xlate, id uint32, f frame) {
	fz, ok := thaw(id)
	if !ok {
		recircUnknown.Inc()
		return
	}
	cfg := fz.bridge.cfg.Load()
	in, ok := cfg.Ports[fz.inDP]
	if !ok {
		return
	}
	fz.bridge.pipelineFrom(x, cfg, in, f, fz.depth, &fz)
}

// ct executes ct(...): the packet goes through the connection tracker
// with the zone, commit, exec, nat and alg arguments resolved; with
// table=N the tracked copy recirculates to table N. The original goes on
// untracked, as ovs-actions(7) says.
func (c *ofctx) ct(x *xlate, a flow.CT) {
	act := &conntrack.Action{Zone: a.Zone, Commit: a.Commit, Force: a.Force}
	if a.ZoneSrc.Field != "" {
		f, ok := readable(a.ZoneSrc.Field)
		if !ok {
			c.abort(x)
			return
		}
		f.maskAll(&x.out.Mask)
		act.Zone = uint16(f.get(&c.key) >> a.ZoneSrc.Start)
	}
	for _, e := range a.Exec {
		if !c.ctExec(x, act, e) {
			c.abort(x)
			return
		}
	}
	if a.NAT != nil {
		act.HasNAT, act.NAT = true, natOf(a.NAT)
	}
	switch a.Alg {
	case "ftp":
		act.ALG = conntrack.ALGFTP
	case "tftp":
		act.ALG = conntrack.ALGTFTP
	}
	// The tracker reads the frame with the VLAN headers the actions so
	// far gave it.
	want, n := c.vlans.wire()
	x.emitVLANs(want, n)
	x.out.Actions = append(x.out.Actions, datapath.CT(act))
	if a.Table != flow.TableNone {
		id, ok := freeze(frozen{bridge: c.b, inDP: c.in.DPPort, table: a.Table, depth: c.depth,
			regs: c.key.Regs, metadata: c.key.Metadata})
		if !ok {
			c.abort(x)
			return
		}
		x.out.Actions = append(x.out.Actions, datapath.Recirc(id))
		if x.trace != nil {
			x.trace.Note(fmt.Sprintf("a tracked copy of the packet is recirculated (recirc(%#x)): its pipeline resumes at table %d", id, a.Table), c.nest)
		}
	}
	if x.trace != nil {
		x.trace.Note("the packet goes on untracked: its ct_* fields are cleared", c.nest)
	}
	clearCTFields(&c.key)
}

// ctClear executes ct_clear.
func (c *ofctx) ctClear(x *xlate) {
	x.out.Actions = append(x.out.Actions, datapath.CTClear())
	clearCTFields(&c.key)
}

// abort drops the packet: translation cannot do what its rule asks.
func (c *ofctx) abort(x *xlate) {
	unsupportedActions.Inc()
	x.aborted = true
}

// clearCTFields zeroes the ct_* fields of k.
func clearCTFields(k *packet.Key) {
	k.CtState, k.CtZone, k.CtMark, k.CtLabel = 0, 0, 0, [16]byte{}
	k.CtNwProto, k.CtTpSrc, k.CtTpDst = 0, 0, 0
	k.CtNwSrc, k.CtNwDst, k.CtIPv6Src, k.CtIPv6Dst = [4]byte{}, [4]byte{}, [16]byte{}, [16]byte{}
}

// ctExec folds one exec(...) action, a write to ct_mark or ct_label,
// into act.
func (c *ofctx) ctExec(x *xlate, act *conntrack.Action, e flow.Action) bool {
	var field string
	var v, m u128
	switch e := e.(type) {
	case flow.SetField:
		field, v, m = e.Field, u128Of(e.Value), u128Of(e.Mask)
	case flow.Load:
		field = e.Dst.Field
		m = onesU128(e.Dst.Bits).shl(e.Dst.Start)
		v = u128Of(e.Value).shl(e.Dst.Start).and(m)
	case flow.Move:
		src, ok := readable(e.Src.Field)
		if !ok {
			return false
		}
		src.maskAll(&x.out.Mask)
		field = e.Dst.Field
		m = onesU128(e.Dst.Bits).shl(e.Dst.Start)
		v = u128{lo: src.get(&c.key) >> e.Src.Start}.and(onesU128(e.Src.Bits)).shl(e.Dst.Start).and(m)
	default:
		return false
	}
	switch field {
	case "ct_mark":
		mm, vv := uint32(m.lo), uint32(v.lo)
		act.SetMark = true
		act.Mark = act.Mark&^mm | vv&mm
		act.MarkMask |= mm
	case "ct_label":
		act.SetLabel = true
		old, oldMask := u128Of(act.Label), u128Of(act.LabelMask)
		act.Label = old.and(m.not()).or(v.and(m)).bytes()
		act.LabelMask = oldMask.or(m).bytes()
	default:
		return false
	}
	return true
}

// natOf converts ct's nat(...) argument.
func natOf(n *flow.NAT) conntrack.NAT {
	out := conntrack.NAT{AddrMin: n.AddrMin, AddrMax: n.AddrMax, PortMin: n.PortMin, PortMax: n.PortMax,
		Random: n.Random, Hash: n.Hash, Persistent: n.Persistent}
	switch n.Kind {
	case "src":
		out.Kind = conntrack.NATSrc
	case "dst":
		out.Kind = conntrack.NATDst
	}
	if out.AddrMin.IsValid() && !out.AddrMax.IsValid() {
		out.AddrMax = out.AddrMin
	}
	if out.PortMin != 0 && out.PortMax == 0 {
		out.PortMax = out.PortMin
	}
	return out
}

// emitVLANs emits the pops and pushes that leave the frame with the n
// headers of want, for an action (ct) that reads the frame itself.
func (x *xlate) emitVLANs(want VLANs, n int) {
	c, w := x.ncur, n
	for c > 0 && w > 0 && x.cur[c-1] == want[w-1] {
		c, w = c-1, w-1
	}
	if c == 0 && w == 0 {
		return
	}
	for range c {
		x.out.Actions = append(x.out.Actions, datapath.PopVLAN())
	}
	for i := w - 1; i >= 0; i-- {
		x.out.Actions = append(x.out.Actions, datapath.PushVLAN(want[i]))
	}
	// The frame's headers are now all of the actions' making.
	x.cur, x.ncur, x.npushed = want, n, n
}

// u128 is a 128-bit value (ct_label) in two halves.
type u128 struct{ hi, lo uint64 }

func u128Of(b [16]byte) u128 {
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) bytes() (b [16]byte) {
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return b
}

func onesU128(n uint16) u128 {
	switch {
	case n >= 128:
		return u128{^uint64(0), ^uint64(0)}
	case n >= 64:
		return u128{bitsMask(n - 64), ^uint64(0)}
	}
	return u128{0, bitsMask(n)}
}

func (u u128) shl(n uint16) u128 {
	switch {
	case n >= 128:
		return u128{}
	case n >= 64:
		return u128{u.lo << (n - 64), 0}
	case n == 0:
		return u
	}
	return u128{u.hi<<n | u.lo>>(64-n), u.lo << n}
}

func (u u128) and(o u128) u128 { return u128{u.hi & o.hi, u.lo & o.lo} }
func (u u128) or(o u128) u128  { return u128{u.hi | o.hi, u.lo | o.lo} }
func (u u128) not() u128       { return u128{^u.hi, ^u.lo} }
