package datapath

import (
	"fmt"
	"sync"

	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// injector executes packets that did not arrive on a port (OpenFlow
// packet-outs) with an executor of its own, so that they never touch a
// port thread's state.
type injector struct {
	mu sync.Mutex
	t  *portThread
}

// Execute runs frame, as if it had been received on datapath port
// inPort (which need not exist: a packet-out from the controller), through
// tr and executes the actions it returns: effects are applied, outputs
// sent, nothing is cached. It is the slow path of OpenFlow packet-out;
// packets are executed one at a time.
func (dp *Datapath) Execute(frame []byte, inPort uint32, tr Translator) error {
	if len(frame) < packet.EthernetLen || len(frame) > netdev.MaxFrame {
		return fmt.Errorf("packet of %d bytes: an Ethernet frame has %d to %d", len(frame), packet.EthernetLen, netdev.MaxFrame)
	}
	dp.inject.mu.Lock()
	defer dp.inject.mu.Unlock()
	if dp.inject.t == nil {
		dp.inject.t = newPortThread(dp, &Port{Name: "packet-out"})
		dp.inject.t.cache.release() // it caches nothing
	}
	t := dp.inject.t
	cfg := dp.cfg.Load()
	buf := t.bufs[0][packet.Headroom:]
	n := copy(buf, frame)
	pkt := &t.pkt
	pkt.Frame, pkt.InPort, pkt.Offload = buf[:n], inPort, netdev.Offload{}
	_ = packet.Parse(pkt.Frame, inPort, &pkt.Key.Key, &pkt.Off)
	pkt.Key.VLANTPID = vlanTPIDs(pkt.Frame, &pkt.Off)
	// A ct(table=N) in the actions recirculates through this executor's
	// own cache, translated by the same bridge.
	t.port.Translator = tr
	xl := &t.xls[0]
	xl.Reset()
	tr.Translate(pkt, xl)
	t.nextScr, t.now, t.rawSent = 0, 0, false
	for i := range xl.Effects {
		xl.Effects[i].apply(len(pkt.Frame), false, false, t.cache.wallClock)
	}
	t.execute(cfg, pkt, xl.Actions, 0)
	t.flush()
	// Mirror copies the flush held in a transmit ring go now: this
	// executor has no loop that would send them later, and a holder
	// that never kicks would keep port threads leaving theirs to it.
	t.kickHeld(true)
	return nil
}
