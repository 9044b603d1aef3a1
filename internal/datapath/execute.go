package datapath

import (
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// maxPushes bounds the VLAN headers an action list may have pushed (net
// of pops) at any point; an output past that is dropped.
const maxPushes = 4

// vlanEdit is the net change that the VLAN actions executed so far make
// to the received frame: pop outer headers come off, then push[:npush] go
// on, push[0] outermost. Executing it at an output, rather than each
// action as it comes, is what lets an output that the actions leave as
// received go out without a copy.
type vlanEdit struct {
	pop, npush uint8
	overflow   bool
	push       [maxPushes]packet.VLANHeader
}

func (e *vlanEdit) pushHeader(h packet.VLANHeader) {
	if e.npush == maxPushes {
		e.overflow = true
		return
	}
	copy(e.push[1:], e.push[:e.npush])
	e.push[0] = h
	e.npush++
}

func (e *vlanEdit) popHeader() {
	if e.npush > 0 {
		copy(e.push[:], e.push[1:e.npush])
		e.npush--
		return
	}
	e.pop++
}

// maxSets bounds the set-field actions in effect at one output; an
// output past that is dropped.
const maxSets = 8

// execState is where the execution of one packet's actions stands.
type execState struct {
	edit   vlanEdit
	sets   [maxSets]*Action // the set-fields in effect, in order
	nsets  int
	trunc  uint32             // from a truncate, for the next output
	tun    *packet.TunnelMeta // from a set-tunnel, for the outputs after it
	mat    []byte             // the frame as the actions so far make it; nil: not made yet
	matOff netdev.Offload
	matGen uint32 // t.superGen when mat was made
}

// changed reports whether the actions so far change the frame.
func (s *execState) changed() bool { return s.edit.pop > 0 || s.edit.npush > 0 || s.nsets > 0 }

// outArgs is one output as the executor sees it.
type outArgs struct {
	port  uint32
	trunc uint32
	copy  *CopyStats
	tun   *packet.TunnelMeta
}

// execute runs acts on pkt, at recirculation depth level: frames are
// queued on each output port in the encoding the actions give them; a
// frame the actions leave as received is queued without copying. Clones
// nest through a fixed stack of saved states in the thread, so that
// nothing escapes to the heap.
func (t *portThread) execute(cfg *Config, pkt *Packet, acts []Action, level int) {
	lv := &t.levels[level]
	st := &lv.exec
	*st = execState{}
	depth := 0
	for i := 0; i < len(acts); i++ {
		for depth > 0 && i >= lv.clones[depth-1].end {
			depth--
			*st = lv.clones[depth].saved
		}
		a := &acts[i]
		switch a.Kind {
		case ActOutput:
			t.executeOutput(cfg, pkt, st, outArgs{port: a.Port, trunc: st.trunc, copy: a.Copy, tun: st.tun})
			st.trunc = 0
		case ActPushVLAN:
			st.edit.pushHeader(packet.VLANHeader{TPID: a.TPID, TCI: a.TCI})
			st.mat = nil
		case ActPopVLAN:
			st.edit.popHeader()
			st.mat = nil
		case ActSetField:
			if st.nsets == maxSets {
				st.edit.overflow = true
				continue
			}
			st.sets[st.nsets] = a
			st.nsets++
			st.mat = nil
		case ActTruncate:
			st.trunc = a.Len
		case ActUserspace:
			t.executeUpcall(pkt, st, a.Upcall)
		case ActClone:
			n := min(int(a.Len), len(acts)-i-1)
			if depth == maxCloneDepth {
				i += n // too deep: skipped
				continue
			}
			lv.clones[depth] = savedState{end: i + 1 + n, saved: *st}
			depth++
		case ActCT:
			if !t.conntrack(pkt, st, a) {
				*st = execState{}
				return
			}
		case ActRecirc:
			t.recirculate(cfg, pkt, st, uint32(a.Value), level)
		case ActCTClear:
			clearCT(&pkt.Key.Key)
		case ActSetTunnel:
			st.tun = a.Tun
		}
	}
	*st = execState{} // drop the references to frames and actions
}

// executeUpcall hands the packet, as the actions so far make it, to u.
func (t *portThread) executeUpcall(pkt *Packet, st *execState, u Upcall) {
	if u == nil || st.edit.overflow {
		return
	}
	if st.mat == nil || (st.matOff.IsSuper() && st.matGen != t.superGen) {
		st.mat, st.matOff = t.materialize(pkt, st)
		st.matGen = t.superGen
	}
	if st.mat != nil {
		u.Upcall(st.mat)
	}
}

// maxCloneDepth bounds the nesting of clones.
const maxCloneDepth = 8

// savedState is the state a clone restores once its actions, which end
// at index end, are done.
type savedState struct {
	end   int
	saved execState
}

// executeOutput sends the packet, as the actions before make it, to one
// port.
func (t *portThread) executeOutput(cfg *Config, pkt *Packet, st *execState, o outArgs) {
	p, ok := cfg.Ports[o.port]
	if !ok || st.edit.overflow {
		return
	}
	if st.mat == nil || (st.matOff.IsSuper() && st.matGen != t.superGen) {
		// (A changed super-frame's buffer may have been reused since a
		// clone saved st: see materializeSuper.)
		st.mat, st.matOff = t.materialize(pkt, st)
		st.matGen = t.superGen
	}
	if st.mat != nil {
		t.rawSent = t.rawSent || &st.mat[0] == &pkt.Frame[0]
		countCopy(o.copy, t.output(p, o, st.mat, st.matOff))
	} else {
		countCopy(o.copy, copyFate{dropped: true})
	}
}

// materialize returns the frame as st makes it: the received frame
// itself when st changes nothing, else a copy in a scratch buffer; nil
// when this batch has used up its scratch buffers.
func (t *portThread) materialize(pkt *Packet, st *execState) ([]byte, netdev.Offload) {
	if !st.changed() {
		return pkt.Frame, pkt.Offload
	}
	if pkt.Offload.IsSuper() {
		return t.materializeSuper(pkt, st)
	}
	if t.nextScr >= len(t.scratch) || len(pkt.Frame) > netdev.MaxFrame {
		return nil, netdev.Offload{} // more re-encodings than budgeted in this batch: drop
	}
	dst := t.scratch[t.nextScr]
	t.nextScr++
	body := dst[packet.Headroom : packet.Headroom+len(pkt.Frame)]
	copy(body, pkt.Frame)
	return rewrite(dst, body, pkt, st), netdev.Offload{}
}

// materializeSuper is materialize for a super-frame: it is rewritten
// whole, and its offload description follows the headers (a VLAN tag
// moves the checksum start; a set-field the pseudo-header sum), so that
// whoever cuts it, the kernel or a Sender, cuts the rewritten frame. The
// big buffers are made on first use; when they run out mid-batch, what is
// queued goes out first so that they can be reused.
func (t *portThread) materializeSuper(pkt *Packet, st *execState) ([]byte, netdev.Offload) {
	if len(pkt.Frame) > netdev.MaxSuperFrame {
		return nil, netdev.Offload{}
	}
	if t.superScr == nil {
		for range superScratch {
			t.superScr = append(t.superScr, make([]byte, packet.Headroom+netdev.MaxSuperFrame))
		}
	}
	if t.nextSup == len(t.superScr) {
		t.flush()
		t.nextSup = 0
		t.superGen++
	}
	dst := t.superScr[t.nextSup]
	t.nextSup++
	body := dst[packet.Headroom : packet.Headroom+len(pkt.Frame)]
	copy(body, pkt.Frame)
	frame := rewrite(dst, body, pkt, st)
	if frame == nil {
		return nil, netdev.Offload{}
	}
	off, ok := pkt.Offload.Rebase(frame, st.nsets > 0)
	if !ok {
		return nil, netdev.Offload{}
	}
	return frame, off
}

// rewrite applies st's set-fields and VLAN edit to frame, which lies in
// buf with headroom in front and has pkt's layout; nil if there is no
// room. Set-fields go first, on the received layout that pkt.Off
// describes, then the VLAN edit: the fields they touch move with the
// VLAN headers but do not depend on them, so this gives the same bytes
// as executing each action in turn.
func rewrite(buf, frame []byte, pkt *Packet, st *execState) []byte {
	for _, a := range st.sets[:st.nsets] {
		setField(frame, &pkt.Key.Key, &pkt.Off, a)
	}
	return reencode(buf, frame, &st.edit)
}

// reencode applies e to frame, which lies in buf with headroom in front,
// in place; nil if there is no room.
func reencode(buf, frame []byte, e *vlanEdit) []byte {
	for range e.pop {
		frame = packet.PopVLAN(frame)
	}
	for i := int(e.npush) - 1; i >= 0; i-- {
		h := e.push[i]
		out, err := packet.PushVLAN(buf, frame, h.TPID, h.TCI)
		if err != nil {
			return nil
		}
		frame = out
	}
	return frame
}
