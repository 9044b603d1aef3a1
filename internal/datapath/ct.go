package datapath

import (
	"gvs/internal/conntrack"
	"gvs/internal/coverage"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// Tracker is the connection tracker that ActCT runs: conntrack.Tracker,
// or a stand-in in tests. Execute must be safe for concurrent use by
// every port thread and must not keep frame, key or off.
type Tracker interface {
	Execute(frame []byte, key *packet.Key, off *packet.Offsets, a *conntrack.Action, now int64) conntrack.Result
}

// trackerRef boxes a Tracker for an atomic pointer.
type trackerRef struct{ Tracker }

// SetTracker installs the datapath's connection tracker (gvs has one
// datapath, so one tracker); until then every ct action marks its packet
// +trk+inv.
func (dp *Datapath) SetTracker(tr Tracker) {
	dp.tracker.Store(&trackerRef{tr})
	Invalidate()
}

// maxRecircDepth bounds how many times one received packet is
// recirculated within itself, as OVS's userspace datapath bounds it: a
// loop of ct(table=N) flows drops the packet there.
const maxRecircDepth = 6

var (
	recircTooDeep = coverage.New("datapath_recirc_too_deep")
	ctNoRoom      = coverage.New("datapath_ct_no_scratch")
	ctDrops       = coverage.New("datapath_ct_drop")
)

// level is the executor's state for one recirculation depth of a packet:
// where its actions stand, the clones they nest, and the packet as the
// fork left it, to continue with after the recirculated copy is done.
type level struct {
	exec   execState
	clones [maxCloneDepth]savedState
	saved  Packet
}

// conntrack executes ActCT: the pending set-fields and VLAN edits are
// applied to the packet first (the tracker reads the frame), then the
// tracker's result goes into the key. It reports false when the packet
// has to be dropped: the rest of its actions at this recirculation depth
// are not run.
func (t *portThread) conntrack(pkt *Packet, st *execState, a *Action) bool {
	if st.changed() && !t.commitEdits(pkt, st) {
		return false
	}
	ref := t.dp.tracker.Load()
	if ref == nil || a.CT == nil {
		clearCT(&pkt.Key.Key)
		pkt.Key.CtState = conntrack.StateTrk | conntrack.StateInv
		return true
	}
	if a.CT.HasNAT && t.rawSent {
		// NAT rewrites the frame in place, and the received frame is
		// already queued for an output that must get it as it was.
		if !t.copyFrame(pkt) {
			return false
		}
	}
	r := ref.Execute(pkt.Frame, &pkt.Key.Key, &pkt.Off, a.CT, t.clock())
	if r.Drop {
		// A commit refused at a limit, a NAT without a free tuple: the
		// kernel datapath drops the packet, and so does gvs.
		ctDrops.Inc()
		return false
	}
	if r.Len != 0 {
		// An ALG resized the frame within its buffer's capacity.
		pkt.Frame = pkt.Frame[:r.Len]
	}
	if r.Rewrote {
		reparse(pkt)
		// An output before this action materialized the frame as it
		// was: later outputs must take the rewritten one.
		st.mat = nil
	}
	writeCT(&pkt.Key.Key, &r)
	return true
}

// commitEdits makes the frame what the pending actions make it, in a
// scratch buffer, and parses it again, keeping the key's metadata.
func (t *portThread) commitEdits(pkt *Packet, st *execState) bool {
	mat, off := t.materialize(pkt, st)
	if mat == nil {
		ctNoRoom.Inc()
		return false
	}
	pkt.Frame, pkt.Offload = mat, off
	reparse(pkt)
	st.edit, st.nsets, st.mat = vlanEdit{}, 0, nil
	return true
}

// copyFrame moves the frame into a scratch buffer of its own.
func (t *portThread) copyFrame(pkt *Packet) bool {
	if t.nextScr >= len(t.scratch) || len(pkt.Frame) > netdev.MaxFrame {
		ctNoRoom.Inc()
		return false
	}
	dst := t.scratch[t.nextScr]
	t.nextScr++
	n := copy(dst[packet.Headroom:], pkt.Frame)
	pkt.Frame = dst[packet.Headroom : packet.Headroom+n]
	t.rawSent = false
	return true
}

// reparse parses pkt's frame again after it changed, keeping the key's
// metadata: what the packet carries beside its headers.
func reparse(pkt *Packet) {
	old := pkt.Key.Key
	k := &pkt.Key.Key
	_ = packet.Parse(pkt.Frame, old.InPort, k, &pkt.Off)
	pkt.Key.VLANTPID = vlanTPIDs(pkt.Frame, &pkt.Off)
	k.TunID, k.Metadata, k.RecircID, k.DpHash, k.PktMark = old.TunID, old.Metadata, old.RecircID, old.DpHash, old.PktMark
	k.TunErspanIdx, k.Regs, k.TunFlags, k.TunGBPID = old.TunErspanIdx, old.Regs, old.TunFlags, old.TunGBPID
	k.TunTOS, k.TunTTL, k.TunGBPFlag = old.TunTOS, old.TunTTL, old.TunGBPFlag
	k.TunErspanVer, k.TunErspanDir, k.TunErspanHWID = old.TunErspanVer, old.TunErspanDir, old.TunErspanHWID
	k.TunSrc, k.TunDst, k.TunIPv6Src, k.TunIPv6Dst = old.TunSrc, old.TunDst, old.TunIPv6Src, old.TunIPv6Dst
	copyCT(k, &old)
}

// copyCT copies the ct_* fields of src into dst.
func copyCT(dst, src *packet.Key) {
	dst.CtState, dst.CtZone, dst.CtMark, dst.CtLabel = src.CtState, src.CtZone, src.CtMark, src.CtLabel
	dst.CtNwProto, dst.CtTpSrc, dst.CtTpDst = src.CtNwProto, src.CtTpSrc, src.CtTpDst
	dst.CtNwSrc, dst.CtNwDst, dst.CtIPv6Src, dst.CtIPv6Dst = src.CtNwSrc, src.CtNwDst, src.CtIPv6Src, src.CtIPv6Dst
}

// clearCT zeroes the ct_* fields of k (ct_clear).
func clearCT(k *packet.Key) { copyCT(k, &packet.Key{}) }

// writeCT puts the tracker's answer into the ct_* fields of k.
func writeCT(k *packet.Key, r *conntrack.Result) {
	clearCT(k)
	k.CtState, k.CtZone, k.CtMark, k.CtLabel = r.State, r.Zone, r.Mark, r.Label
	if !r.OrigValid {
		return
	}
	k.CtNwProto, k.CtTpSrc, k.CtTpDst = r.OrigProto, r.OrigSport, r.OrigDport
	if r.OrigSrc.Is4() && r.OrigDst.Is4() {
		k.CtNwSrc, k.CtNwDst = r.OrigSrc.As4(), r.OrigDst.As4()
	} else {
		k.CtIPv6Src, k.CtIPv6Dst = r.OrigSrc.As16(), r.OrigDst.As16()
	}
}

// recirculate executes ActRecirc: the packet, as the actions so far left
// it, goes through the cache (or translation) again under recirc_id id,
// one level deeper; then the packet is restored for the actions after.
func (t *portThread) recirculate(cfg *Config, pkt *Packet, st *execState, id uint32, depth int) {
	if depth+1 > maxRecircDepth {
		recircTooDeep.Inc()
		return
	}
	if st.changed() && !t.commitEdits(pkt, st) {
		return
	}
	lv := &t.levels[depth]
	lv.saved = *pkt
	pkt.Key.RecircID = id
	t.runPacket(cfg, pkt, depth+1)
	*pkt = lv.saved
	lv.saved.Frame = nil
}
