package connmgr

import (
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// asyncConfig is a connection's asynchronous message configuration
// (OFPT_SET_ASYNC, NXT_SET_ASYNC_CONFIG): for each kind of message
// (openflow.Async*), the reasons the master-or-equal role and the slave
// role get. Packet-in masks carry two bits past 1.4's reasons, as OVS's
// do: a table-miss rule's controller action and a miss without a rule,
// which OpenFlow sends as no_match (1.0 a miss by rule as action).
type asyncConfig struct {
	master, slave openflow.AsyncMasks
}

const (
	pinExplicitMiss = 6 // a controller action of a table-miss rule
	pinImplicitMiss = 7 // a table miss without a rule
	// pinActionReasons are 1.4's reasons that refine action (action
	// set, group, packet-out): an earlier version's action bit means
	// them too.
	pinActionReasons = 1<<3 | 1<<4 | 1<<5
)

// defaultAsync is what a connection of version v gets until it sets its
// own, as in OVS: a master or equal controller gets packet-ins of every
// reason but invalid TTL (misses without a rule in 1.0 only), port
// status messages and the flow removals its version names; a slave only
// port status messages.
func defaultAsync(v uint8) *asyncConfig {
	pin := uint32(0x3f&^(1<<ofproto.ReasonInvalidTTL) | 1<<pinExplicitMiss)
	if v < openflow.Version13 {
		pin |= 1 << pinImplicitMiss
	}
	fr := uint32(0x7) // idle, hard, delete
	switch {
	case v >= openflow.Version14:
		fr = 0x3f // and group delete, meter delete, eviction
	case v == openflow.Version13:
		fr = 0xf // and group delete
	}
	a := &asyncConfig{}
	a.master[openflow.AsyncPacketIn] = pin
	a.master[openflow.AsyncPortStatus] = 0x7
	a.slave[openflow.AsyncPortStatus] = 0x7
	a.master[openflow.AsyncFlowRemoved] = fr
	return a
}

// apply returns the configuration m makes of a: the fixed (1.3 or
// Nicira) form replaces every mask, properties only those they name.
// A packet-in mask with no_match takes the misses too (those without a
// rule before 1.3), and before 1.4 one with action takes 1.4's finer
// action reasons, as OVS reads them.
func (a *asyncConfig) apply(m *openflow.SetAsync, v uint8) *asyncConfig {
	n := *a
	if m.Legacy {
		n = asyncConfig{}
	}
	for _, p := range m.Props {
		mask := p.Mask
		if p.Kind == openflow.AsyncPacketIn {
			if mask&(1<<ofproto.ReasonNoMatch) != 0 {
				mask |= 1 << pinExplicitMiss
				if v < openflow.Version13 {
					mask |= 1 << pinImplicitMiss
				}
			}
			if v < openflow.Version14 && mask&(1<<ofproto.ReasonAction) != 0 {
				mask |= pinActionReasons
			}
		}
		if p.Slave {
			n.slave[p.Kind] = mask
		} else {
			n.master[p.Kind] = mask
		}
	}
	return &n
}

// reply is the get-async reply: the masks in the reasons version v
// names.
func (a *asyncConfig) reply(v uint8) *openflow.GetAsyncReply {
	r := &openflow.GetAsyncReply{}
	for k := range openflow.NumAsyncKinds {
		allowed := openflow.AsyncAllowed(v, k)
		r.Master[k], r.Slave[k] = a.master[k]&allowed, a.slave[k]&allowed
	}
	return r
}

// receives reports whether the connection gets a message of kind for
// reason, in its current role.
func (c *conn) receives(kind int, reason uint) bool {
	a := c.asyncCfg.Load()
	if a == nil || reason >= 32 {
		return false
	}
	masks := &a.master
	if c.role.Load() == roleSlave {
		masks = &a.slave
	}
	return masks[kind]&(1<<reason) != 0
}

// setAsync serves OFPT_SET_ASYNC and NXT_SET_ASYNC_CONFIG. As in OVS,
// a service connection that sets its configuration asks for
// asynchronous messages.
func (c *conn) setAsync(m *openflow.SetAsync) {
	c.asyncCfg.Store(c.asyncCfg.Load().apply(m, c.version))
	if !c.primary {
		c.async.Store(true)
		if c.missSendLen.Load() == 0 {
			c.missSendLen.Store(128)
		}
	}
	c.s.connsChanged()
}

// pinReason is the bit of a packet-in's reason in the masks.
func pinReason(pi *ofproto.PacketIn) uint {
	switch {
	case pi.Miss:
		return pinImplicitMiss
	case pi.ExplicitMiss:
		return pinExplicitMiss
	}
	return uint(pi.Reason)
}
