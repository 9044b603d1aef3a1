package connmgr

import (
	"fmt"
	"sync/atomic"

	"gvs/internal/budget"
	"gvs/internal/coverage"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// OpenFlow 1.4 bundles (ovs-ofctl --bundle, ovs-ofctl bundle): a
// connection opens a bundle, adds flow mods and group mods to it, which
// are checked as they come, and commits them all or none, in order. Every size a peer chooses is bounded: a
// connection holds at most maxBundles open bundles and, in all of them
// together, maxBundleMsgs messages and maxBundleBytes bytes of memory;
// all connections together hold at most maxAllBundleBytes. Past a
// limit the add fails with OFPBFC_MSG_TOO_MANY (OFPBFC_OUT_OF_BUNDLES
// for the bundles), and the bundle stays as it was.
const (
	maxBundles  = 16
	bundleFlags = openflow.BundleAtomic | openflow.BundleOrdered
	// bundleOpCost is what a message costs besides its own bytes: the
	// flow mod decoded and checked at its add. Measured, a 56-byte flow
	// mod held 968 bytes of heap; counting the wire bytes alone let the
	// 256 MiB of all bundles hold about 4.6 GiB.
	bundleOpCost = 1 << 10
)

// The limits on what bundles hold (variables for the tests): about a
// million small flow mods per connection, two million in all (as many
// as all bridges' tables hold, ofproto's global flow bound).
var (
	maxBundleMsgs     = 1_000_000
	maxBundleBytes    = 1 << 30
	maxAllBundleBytes = int64(2 << 30)
)

// bundleCost is what the message m costs the bundle limits.
func bundleCost(m []byte) int { return len(m) + bundleOpCost }

var (
	allBundleBytes atomic.Int64

	bundleCommits = coverage.New("ofconn_bundle_commit")
	bundleFails   = coverage.New("ofconn_bundle_commit_failed")
)

type bundle struct {
	flags  uint16
	closed bool
	ops    []ofproto.Op
	msgs   [][]byte // each op's message, for the error of one that fails at commit
	xids   []uint32
}

// bundleState is a connection's open bundles and what they hold.
type bundleState struct {
	open  map[uint32]*bundle
	msgs  int
	bytes int
}

func (c *conn) bundleControl(xid uint32, m *openflow.BundleControl) error {
	bs := &c.bundles
	b := bs.open[m.BundleID]
	m.Flags &= bundleFlags // unknown flags are ignored, as OVS ignores them
	reply := func(typ uint16) {
		c.send(xid, &openflow.BundleControl{BundleID: m.BundleID, Type: typ, Flags: m.Flags})
	}
	switch m.Type {
	case openflow.BundleOpenRequest:
		if b != nil {
			return &openflow.Error{Code: openflow.ErrBundleExist, Detail: fmt.Sprintf("bundle %d", m.BundleID)}
		}
		if len(bs.open) >= maxBundles {
			return &openflow.Error{Code: openflow.ErrBundleOutOfBundles, Detail: fmt.Sprintf("a connection holds at most %d bundles", maxBundles)}
		}
		if bs.open == nil {
			bs.open = map[uint32]*bundle{}
		}
		bs.open[m.BundleID] = &bundle{flags: m.Flags}
		reply(openflow.BundleOpenReply)
		return nil
	case openflow.BundleCloseRequest, openflow.BundleCommitRequest, openflow.BundleDiscardRequest:
	default:
		return &openflow.Error{Code: openflow.ErrBundleBadType, Detail: fmt.Sprintf("bundle control type %d", m.Type)}
	}
	if b == nil {
		return &openflow.Error{Code: openflow.ErrBundleBadID, Detail: fmt.Sprintf("bundle %d", m.BundleID)}
	}
	if m.Flags != b.flags {
		return &openflow.Error{Code: openflow.ErrBundleBadFlags, Detail: fmt.Sprintf("flags %#x, the bundle was opened with %#x", m.Flags, b.flags)}
	}
	switch m.Type {
	case openflow.BundleCloseRequest:
		if b.closed {
			return &openflow.Error{Code: openflow.ErrBundleClosed, Detail: fmt.Sprintf("bundle %d", m.BundleID)}
		}
		b.closed = true
		reply(openflow.BundleCloseReply)
	case openflow.BundleDiscardRequest:
		c.dropBundle(m.BundleID)
		reply(openflow.BundleDiscardReply)
	case openflow.BundleCommitRequest:
		c.dropBundle(m.BundleID)
		// Through the group table, which also checks the bundled
		// flows' group actions at their turn.
		removed, failed, err := c.s.bridge.Groups.Commit(b.ops)
		if err != nil {
			bundleFails.Inc()
			// As OVS: the failing message's own error, then the
			// commit's.
			add, _ := openflow.Encode(c.version, b.xids[failed], &openflow.BundleAdd{BundleID: m.BundleID, Flags: b.flags, Message: b.msgs[failed]})
			oerr := tableError(err)
			if b.ops[failed].Group != nil {
				oerr = groupError(err)
			}
			c.sendError(oerr, add, b.xids[failed])
			return &openflow.Error{Code: openflow.ErrBundleMsgFailed, Detail: fmt.Sprintf("bundle %d: message %d: %v", m.BundleID, failed, err)}
		}
		bundleCommits.Inc()
		c.s.flowsRemoved(removed)
		reply(openflow.BundleCommitReply)
	}
	return nil
}

// bundleAdd checks a message as it is added, so that a bad one fails
// now, with its own error, and a commit fails only for the tables'
// reasons (overlap, full). A bundle that does not exist is opened, as
// OpenFlow 1.4 says.
func (c *conn) bundleAdd(h openflow.Header, m *openflow.BundleAdd) error {
	bs := &c.bundles
	m.Flags &= bundleFlags
	_, inner, err := openflow.Decode(m.Message)
	if err != nil {
		return err
	}
	fm, isFlow := inner.(*openflow.FlowMod)
	gm, isGroup := inner.(*openflow.GroupMod)
	if !isFlow && !isGroup {
		return &openflow.Error{Code: openflow.ErrBundleMsgUnsup, Detail: fmt.Sprintf("gvs bundles hold flow mods and group mods, not %T", inner)}
	}
	b := bs.open[m.BundleID]
	switch {
	case b == nil && len(bs.open) >= maxBundles:
		return &openflow.Error{Code: openflow.ErrBundleOutOfBundles, Detail: fmt.Sprintf("a connection holds at most %d bundles", maxBundles)}
	case b != nil && b.closed:
		return &openflow.Error{Code: openflow.ErrBundleClosed, Detail: fmt.Sprintf("bundle %d", m.BundleID)}
	case b != nil && b.flags != m.Flags:
		return &openflow.Error{Code: openflow.ErrBundleBadFlags, Detail: fmt.Sprintf("flags %#x, the bundle was opened with %#x", m.Flags, b.flags)}
	case bs.msgs >= maxBundleMsgs:
		return &openflow.Error{Code: openflow.ErrBundleMsgTooMany, Detail: fmt.Sprintf("a connection's bundles hold at most %d messages", maxBundleMsgs)}
	case bs.bytes+bundleCost(m.Message) > maxBundleBytes:
		return &openflow.Error{Code: openflow.ErrBundleMsgTooMany, Detail: fmt.Sprintf("a connection's bundles hold at most %d MiB", maxBundleBytes>>20)}
	}
	cost := bundleCost(m.Message)
	if !budget.Reserve(&allBundleBytes, int64(cost), maxAllBundleBytes) {
		return &openflow.Error{Code: openflow.ErrBundleMsgTooMany, Detail: fmt.Sprintf("all connections' bundles hold at most %d MiB", maxAllBundleBytes>>20)}
	}
	bs.msgs++
	bs.bytes += cost
	var op ofproto.Op
	if isFlow {
		c.bundling = true
		op, err = c.flowModOp(fm)
		c.bundling = false
	} else {
		op.Group, err = c.groupModOp(gm)
	}
	if err != nil {
		bs.release(1, cost)
		return err
	}
	if b == nil {
		if bs.open == nil {
			bs.open = map[uint32]*bundle{}
		}
		b = &bundle{flags: m.Flags}
		bs.open[m.BundleID] = b
	}
	if op.Add == nil && op.Modify == nil && op.Delete == nil && op.Group == nil {
		bs.release(1, cost)
		return nil // changes nothing (a delete in the hidden table, of a reserved group id)
	}
	b.ops = append(b.ops, op)
	b.msgs = append(b.msgs, m.Message)
	b.xids = append(b.xids, h.Xid)
	return nil
}

// dropBundle forgets a bundle and gives back what it held.
func (c *conn) dropBundle(id uint32) {
	bs := &c.bundles
	b := bs.open[id]
	if b == nil {
		return
	}
	n := 0
	for _, m := range b.msgs {
		n += bundleCost(m)
	}
	bs.release(len(b.msgs), n)
	delete(bs.open, id)
}

func (bs *bundleState) release(msgs, bytes int) {
	bs.msgs -= msgs
	bs.bytes -= bytes
	allBundleBytes.Add(-int64(bytes))
}

// dropBundles discards every open bundle of a connection that ends.
func (c *conn) dropBundles() {
	for id := range c.bundles.open {
		c.dropBundle(id)
	}
}
