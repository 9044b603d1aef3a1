package connmgr

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// OpenFlow groups: group mods, and the group description, statistics
// and features requests, as OVS 3.1 answers them.

// groupAddOrModify is OVS's OFPGC11_ADD_OR_MOD (ovs-ofctl mod-group
// --may-create): a modify that adds a group that does not exist.
const groupAddOrModify = 0x8000

// groupMod applies a group mod. Deleting a group deletes the flows that
// name it (and sends their flow-removed messages), as in OVS.
func (c *conn) groupMod(m *openflow.GroupMod) error {
	op, err := c.groupModOp(m)
	if err != nil || op == nil {
		return err
	}
	groups := c.s.bridge.Groups
	var gerr error
	switch op.Command {
	case ofproto.GroupOpDelete:
		c.s.flowsRemoved(groups.Delete(op.Spec.ID))
	case ofproto.GroupOpAdd:
		gerr = groups.Add(&op.Spec)
	case ofproto.GroupOpModify:
		gerr = groups.Modify(&op.Spec, op.AddIfNone)
	case ofproto.GroupOpInsertBuckets:
		gerr = groups.InsertBuckets(op.Spec.ID, op.BucketID, op.Spec.Buckets)
	case ofproto.GroupOpRemoveBuckets:
		gerr = groups.RemoveBuckets(op.Spec.ID, op.BucketID)
	}
	return groupError(gerr)
}

// groupModOp checks a group mod and returns the change it makes (nil:
// none, a delete of a reserved id that names no group).
func (c *conn) groupModOp(m *openflow.GroupMod) (*ofproto.GroupOp, error) {
	switch m.Command {
	case openflow.GroupDelete:
		if m.GroupID > openflow.GroupMax && m.GroupID != openflow.GroupAll {
			return nil, nil // OFPG_ANY and the other reserved ids name no group
		}
		return &ofproto.GroupOp{Command: ofproto.GroupOpDelete, Spec: ofproto.GroupSpec{ID: m.GroupID}}, nil
	case openflow.GroupAdd, openflow.GroupModify, groupAddOrModify:
	case openflow.GroupInsertBucket, openflow.GroupRemoveBucket:
		// 1.5, and 1.0's Nicira group mod, which has 1.5's layout.
		if c.version != openflow.Version10 && c.version < openflow.Version15 {
			return nil, &openflow.Error{Code: openflow.ErrGroupBadCommand, Detail: fmt.Sprintf("command %d needs OpenFlow 1.5", m.Command)}
		}
	default:
		return nil, &openflow.Error{Code: openflow.ErrGroupBadCommand, Detail: fmt.Sprintf("command %d", m.Command)}
	}
	if m.GroupID > openflow.GroupMax {
		return nil, &openflow.Error{Code: openflow.ErrGroupInvalid, Detail: fmt.Sprintf("group id 0x%x is reserved", m.GroupID)}
	}
	if m.Type > openflow.GroupTypeFastFailover {
		return nil, &openflow.Error{Code: openflow.ErrGroupBadType, Detail: fmt.Sprintf("group type %d", m.Type)}
	}
	buckets, err := c.bucketsFromWire(m.Buckets)
	if err != nil {
		return nil, err
	}
	op := &ofproto.GroupOp{Spec: ofproto.GroupSpec{ID: m.GroupID, Type: m.Type, Buckets: buckets}, BucketID: m.CommandBucketID}
	switch m.Command {
	case openflow.GroupInsertBucket:
		op.Command = ofproto.GroupOpInsertBuckets
		return op, nil
	case openflow.GroupRemoveBucket:
		op.Command = ofproto.GroupOpRemoveBuckets
		return op, nil
	case openflow.GroupAdd:
		op.Command = ofproto.GroupOpAdd
	default:
		op.Command, op.AddIfNone = ofproto.GroupOpModify, m.Command == groupAddOrModify
	}
	if err := selectionMethod(&op.Spec, m.Props); err != nil {
		return nil, err
	}
	for _, p := range m.Props {
		op.Spec.Props = append(op.Spec.Props, ofproto.GroupProp{Type: p.Type, Data: p.Data})
	}
	return op, nil
}

// bucketsFromWire converts buckets, checking their actions as a flow's.
func (c *conn) bucketsFromWire(bs []openflow.Bucket) ([]ofproto.Bucket, error) {
	if len(bs) > ofproto.MaxBuckets {
		return nil, &openflow.Error{Code: openflow.ErrGroupOutOfBuckets,
			Detail: fmt.Sprintf("%d buckets, at most %d", len(bs), ofproto.MaxBuckets)}
	}
	out := make([]ofproto.Bucket, 0, len(bs))
	for _, b := range bs {
		if b.ID > openflow.BucketMax {
			return nil, &openflow.Error{Code: openflow.ErrGroupBadBucket, Detail: fmt.Sprintf("bucket id 0x%x is reserved", b.ID)}
		}
		acts, err := actionsFromWire(b.Actions, c.version)
		if err != nil {
			return nil, err
		}
		if err := c.checkActions(&flow.Flow{Table: ofproto.TableAll, Actions: acts}); err != nil {
			return nil, err
		}
		out = append(out, ofproto.Bucket{ID: b.ID, Weight: b.Weight, WatchPort: toFlowWatch(b.WatchPort),
			WatchGroup: b.WatchGroup, Actions: acts})
	}
	return out, nil
}

// selectionMethod reads OVS's selection method property (Netronome's
// experimenter property, OpenFlow 1.5) into spec: dp_hash is what gvs
// does by default; hash with fields(...) hashes those fields, under
// their masks, with selection_method_param as the hash's basis. Any
// other method or property is refused visibly (OFPBPC_BAD_EXP_TYPE)
// rather than ignored.
func selectionMethod(spec *ofproto.GroupSpec, ps []openflow.Prop) error {
	for _, p := range ps {
		d := p.Data
		if p.Type != 0xffff || len(d) < 36 {
			return &openflow.Error{Code: openflow.ErrPropBadExpType, Detail: fmt.Sprintf("group property type %d is not supported by gvs", p.Type)}
		}
		vendor, expType := binary.BigEndian.Uint32(d), binary.BigEndian.Uint32(d[4:])
		if vendor != 0x154d && vendor != 0x1540 || expType != 1 {
			return &openflow.Error{Code: openflow.ErrPropBadExpType,
				Detail: fmt.Sprintf("group property of experimenter 0x%x type %d is not supported by gvs", vendor, expType)}
		}
		method := string(bytes.TrimRight(d[12:28], "\x00"))
		switch method {
		case "", "dp_hash":
			continue
		case "hash":
		default:
			return &openflow.Error{Code: openflow.ErrPropBadExpType, Detail: fmt.Sprintf("selection method %q is not supported by gvs", method)}
		}
		spec.HashBasis = binary.BigEndian.Uint64(d[28:])
		var wfs []flow.WireField
		for rest := d[36:]; len(rest) >= 4; {
			h := binary.BigEndian.Uint32(rest)
			if h == 0 {
				break // padding
			}
			f := openflow.Field{Class: uint16(h >> 16), Field: uint8(h>>9) & 0x7f}
			n, hdr := int(h&0xff), 4
			if f.Class == openflow.ClassExperimenter && len(rest) >= 8 {
				f.Experimenter, n, hdr = binary.BigEndian.Uint32(rest[4:]), n-4, 8
			}
			// Each entry is a field whose value is the mask to hash
			// it under (all ones: the whole field), as OVS writes them.
			fi, ok := f.Info()
			if !ok || h&0x100 != 0 || fi.Len != n || len(rest) < hdr+n {
				return &openflow.Error{Code: openflow.ErrPropBadExpType, Detail: fmt.Sprintf("selection method field 0x%08x is not one gvs hashes", h)}
			}
			f.Value, f.Mask = make([]byte, n), rest[hdr:hdr+n]
			wf, _ := wireField(&f)
			wfs = append(wfs, wf)
			rest = rest[hdr+n:]
		}
		if len(wfs) > 0 {
			m, err := flow.FieldsMask(wfs)
			if err != nil {
				return &openflow.Error{Code: openflow.ErrPropBadExpType, Detail: err.Error()}
			}
			spec.HashFields = &m
		}
	}
	return nil
}

// toFlowWatch converts a watch_port: OFPP_ANY stays ofproto.WatchAny.
func toFlowWatch(p uint32) uint32 {
	if p == openflow.PortAny {
		return ofproto.WatchAny
	}
	return toFlowPort(p)
}

func toWireWatch(p uint32) uint32 {
	if p == ofproto.WatchAny {
		return openflow.PortAny
	}
	return toWirePort(p)
}

// groupErrors are the OpenFlow errors of the group table's errors.
var groupErrors = []struct {
	err  error
	code openflow.ErrCode
}{
	{ofproto.ErrGroupExists, openflow.ErrGroupExists},
	{ofproto.ErrGroupUnknown, openflow.ErrGroupUnknown},
	{ofproto.ErrGroupInvalid, openflow.ErrGroupInvalid},
	{ofproto.ErrGroupWatch, openflow.ErrGroupWatchUnsupported},
	{ofproto.ErrGroupLoop, openflow.ErrGroupLoop},
	{ofproto.ErrGroupChain, openflow.ErrGroupChainingUnsupported},
	{ofproto.ErrGroupTooMany, openflow.ErrGroupOutOfGroups},
	{ofproto.ErrBucketTooMany, openflow.ErrGroupOutOfBuckets},
	{ofproto.ErrBadOutGroup, openflow.ErrActBadOutGroup},
	{ofproto.ErrBucketUnknown, openflow.ErrGroupUnknownBucket},
	{ofproto.ErrBucketExists, openflow.ErrGroupBucketExists},
}

func groupError(err error) error {
	if err == nil {
		return nil
	}
	code := openflow.ErrGroupEPerm
	for _, e := range groupErrors {
		if errors.Is(err, e.err) {
			code = e.code
			break
		}
	}
	return &openflow.Error{Code: code, Detail: err.Error()}
}

func (c *conn) bucketsToWire(bs []ofproto.Bucket) []openflow.Bucket {
	out := make([]openflow.Bucket, 0, len(bs))
	for _, b := range bs {
		acts, _ := actionsToWire(b.Actions, c.version)
		out = append(out, openflow.Bucket{ID: b.ID, Weight: b.Weight, WatchPort: toWireWatch(b.WatchPort),
			WatchGroup: b.WatchGroup, Actions: acts})
	}
	return out
}

func (c *conn) groupDescs(xid uint32, m *openflow.GroupDescRequest) {
	r := &openflow.GroupDescReply{}
	for _, g := range c.s.bridge.Groups.List(m.GroupID) {
		d := openflow.GroupDesc{Type: g.Type, GroupID: g.ID, Buckets: c.bucketsToWire(g.Buckets)}
		if c.version >= openflow.Version15 || c.version == openflow.Version10 {
			for _, p := range g.Props {
				d.Props = append(d.Props, openflow.Prop{Type: p.Type, Data: p.Data})
			}
		}
		r.Groups = append(r.Groups, d)
	}
	c.send(xid, r)
}

func (c *conn) groupStats(xid uint32, m *openflow.GroupStatsRequest) {
	groups, stats := c.s.bridge.Groups.Stats(m.GroupID)
	r := &openflow.GroupStatsReply{}
	for i, g := range groups {
		s := stats[i]
		d := s.Duration.Truncate(time.Millisecond) // as OVS counts
		gs := openflow.GroupStats{GroupID: g.ID, RefCount: s.RefCount, PacketCount: s.Packets, ByteCount: s.Bytes,
			DurationSec: uint32(d / time.Second), DurationNsec: uint32(d % time.Second)}
		for _, b := range s.Buckets {
			gs.Buckets = append(gs.Buckets, openflow.BucketCounter{PacketCount: b.Packets, ByteCount: b.Bytes})
		}
		r.Groups = append(r.Groups, gs)
	}
	c.send(xid, r)
}

// groupActions13 are the actions a bucket may hold, as OVS's bitmap of
// OFPAT_* numbers: output, push_vlan, pop_vlan, group, set_nw_ttl,
// dec_nw_ttl, set_field. OVS 3.1 also lists the MPLS actions and
// set_queue, which gvs does not execute.
const groupActions13 = 1<<0 | 1<<17 | 1<<18 | 1<<22 | 1<<23 | 1<<24 | 1<<25

// groupActions10 are the same in OpenFlow 1.0's numbers (NXST_GROUP_FEATURES):
// output, and what set_field and strip_vlan do there (set_vlan_vid,
// set_vlan_pcp, strip_vlan, mod_dl_src/dst, mod_nw_src/dst, mod_nw_tos,
// mod_tp_src/dst). OVS 3.1 also lists enqueue, as set_queue above.
const groupActions10 = 1<<11 - 1

// groupFeatures is what OVS 3.1's userspace datapath reports (the four
// types; weights, liveness and chaining), with gvs's own limit of
// groups (OVS says OFPG_MAX) and the actions above in version v's
// numbers.
func groupFeatures(v uint8) *openflow.GroupFeaturesReply {
	r := &openflow.GroupFeaturesReply{Types: 0xf, Capabilities: 0x7}
	acts := uint32(groupActions13)
	if v == openflow.Version10 {
		acts = groupActions10
	}
	for i := range r.MaxGroups {
		r.MaxGroups[i] = ofproto.MaxGroups
		r.Actions[i] = acts
	}
	return r
}
