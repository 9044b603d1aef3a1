package connmgr

import (
	"testing"

	"gvs/internal/flow"

	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

// expectError reads the next message and checks it is the error code.
func expectError(t *testing.T, f *fakeController, code openflow.ErrCode, what string) {
	t.Helper()
	m, ok := f.next().(*openflow.ErrorMsg)
	if !ok || m.Err.Code != code {
		t.Errorf("%s: got %+v, want error %v", what, m, code)
	}
}

// barrier sends a barrier and checks that its reply is the next message
// (so that the requests before it had no reply).
func barrier(t *testing.T, f *fakeController, what string) {
	t.Helper()
	f.send(&openflow.BarrierRequest{})
	if m, ok := f.next().(*openflow.BarrierReply); !ok {
		t.Fatalf("%s: got %+v, want the barrier reply", what, m)
	}
}

// TestGroupModsOverTheChannel: group mods, the group multipart requests
// and the group action in flows, in 1.3 and 1.5, with OVS 3.1's errors.
// On the old code the group mod got OFPBRC_BAD_TYPE.
func TestGroupModsOverTheChannel(t *testing.T) {
	s, b := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version13, openflow.Version15)})
	f := dialService(t, s, openflow.Version13)
	out := func(p uint32) []openflow.Action { return []openflow.Action{openflow.Output{Port: p}} }
	bucket := func(w uint16, wp uint32, acts []openflow.Action) openflow.Bucket {
		return openflow.Bucket{Weight: w, WatchPort: wp, WatchGroup: openflow.GroupAny, Actions: acts}
	}
	f.send(&openflow.GroupMod{Command: openflow.GroupAdd, Type: openflow.GroupTypeAll, GroupID: 1,
		Buckets: []openflow.Bucket{bucket(0, openflow.PortAny, out(2)), bucket(0, openflow.PortAny, out(3))}})
	f.send(&openflow.GroupMod{Command: openflow.GroupAdd, Type: openflow.GroupTypeSelect, GroupID: 2,
		Buckets: []openflow.Bucket{bucket(5, openflow.PortAny, out(2))}})
	barrier(t, f, "adds")
	for _, c := range []struct {
		m    *openflow.GroupMod
		want openflow.ErrCode
	}{
		{&openflow.GroupMod{Command: openflow.GroupAdd, Type: openflow.GroupTypeAll, GroupID: 1}, openflow.ErrGroupExists},
		{&openflow.GroupMod{Command: openflow.GroupModify, Type: openflow.GroupTypeAll, GroupID: 77}, openflow.ErrGroupUnknown},
		{&openflow.GroupMod{Command: openflow.GroupAdd, Type: 9, GroupID: 3}, openflow.ErrGroupBadType},
		{&openflow.GroupMod{Command: 9, GroupID: 3}, openflow.ErrGroupBadCommand},
		{&openflow.GroupMod{Command: openflow.GroupAdd, GroupID: openflow.GroupAll}, openflow.ErrGroupInvalid},
		{&openflow.GroupMod{Command: openflow.GroupAdd, Type: openflow.GroupTypeAll, GroupID: 3,
			Buckets: []openflow.Bucket{bucket(0, 2, out(2))}}, openflow.ErrGroupWatchUnsupported},
		{&openflow.GroupMod{Command: openflow.GroupAdd, Type: openflow.GroupTypeAll, GroupID: 3,
			Buckets: []openflow.Bucket{bucket(0, openflow.PortAny, []openflow.Action{openflow.Group{GroupID: 3}})}}, openflow.ErrGroupLoop},
		{&openflow.GroupMod{Command: openflow.GroupInsertBucket, Type: openflow.GroupTypeAll, GroupID: 1}, openflow.ErrGroupBadCommand},
	} {
		f.send(c.m)
		expectError(t, f, c.want, "group mod")
	}
	// A flow naming a group that does not exist is refused.
	f.send(&openflow.FlowMod{Command: openflow.FlowAdd, BufferID: openflow.NoBuffer, OutPort: openflow.PortAny, OutGroup: openflow.GroupAny,
		Instructions: []openflow.Instruction{openflow.ApplyActions{Actions: []openflow.Action{openflow.Group{GroupID: 99}}}}})
	expectError(t, f, openflow.ErrActBadOutGroup, "flow to group 99")
	f.send(&openflow.FlowMod{Command: openflow.FlowAdd, Priority: 5, BufferID: openflow.NoBuffer, OutPort: openflow.PortAny, OutGroup: openflow.GroupAny,
		Instructions: []openflow.Instruction{openflow.ApplyActions{Actions: []openflow.Action{openflow.Group{GroupID: 1}}}}})
	barrier(t, f, "flow to group 1")

	f.send(&openflow.GroupDescRequest{GroupID: openflow.GroupAll})
	desc, ok := f.next().(*openflow.GroupDescReply)
	if !ok || len(desc.Groups) != 2 || desc.Groups[0].GroupID != 1 || len(desc.Groups[0].Buckets) != 2 || desc.Groups[1].Buckets[0].Weight != 5 {
		t.Errorf("group desc %+v", desc)
	}
	f.send(&openflow.GroupStatsRequest{GroupID: 1})
	st, ok := f.next().(*openflow.GroupStatsReply)
	if !ok || len(st.Groups) != 1 || st.Groups[0].RefCount != 1 || len(st.Groups[0].Buckets) != 2 {
		t.Errorf("group stats %+v", st)
	}
	f.send(&openflow.GroupFeaturesRequest{})
	if feat, ok := f.next().(*openflow.GroupFeaturesReply); !ok || feat.Types != 0xf || feat.Capabilities != 7 {
		t.Errorf("group features %+v", feat)
	}
	// The flows that name a deleted group go with it; a dump by
	// out_group finds them before.
	f.send(&openflow.FlowStatsRequest{TableID: 0xff, OutPort: openflow.PortAny, OutGroup: 1})
	if fs, ok := f.next().(*openflow.FlowStatsReply); !ok || len(fs.Flows) != 1 || fs.Flows[0].Priority != 5 {
		t.Errorf("flows by out_group 1: %+v", fs)
	}
	f.send(&openflow.GroupMod{Command: openflow.GroupDelete, GroupID: 1})
	barrier(t, f, "delete")
	if b.Groups.Exists(1) || b.Tables.NumFlows() != 1 {
		t.Errorf("after deleting group 1: groups %v, %d flows (want NORMAL's only)", b.Groups.List(0xffffffff), b.Tables.NumFlows())
	}

	// 1.5: bucket ids and the bucket commands.
	g := dialService(t, s, openflow.Version15)
	g.send(&openflow.GroupMod{Command: openflow.GroupAdd, Type: openflow.GroupTypeAll, GroupID: 5, CommandBucketID: openflow.BucketAll,
		Buckets: []openflow.Bucket{{ID: 10, WatchPort: openflow.PortAny, WatchGroup: openflow.GroupAny, Actions: out(2)}}})
	g.send(&openflow.GroupMod{Command: openflow.GroupInsertBucket, Type: openflow.GroupTypeAll, GroupID: 5, CommandBucketID: openflow.BucketFirst,
		Buckets: []openflow.Bucket{{ID: 11, WatchPort: openflow.PortAny, WatchGroup: openflow.GroupAny, Actions: out(3)}}})
	barrier(t, g, "insert")
	g.send(&openflow.GroupMod{Command: openflow.GroupRemoveBucket, Type: openflow.GroupTypeAll, GroupID: 5, CommandBucketID: 99})
	expectError(t, g, openflow.ErrGroupUnknownBucket, "remove bucket 99")
	g.send(&openflow.GroupMod{Command: openflow.GroupInsertBucket, Type: openflow.GroupTypeAll, GroupID: 5, CommandBucketID: openflow.BucketLast,
		Buckets: []openflow.Bucket{{ID: 10, WatchPort: openflow.PortAny, WatchGroup: openflow.GroupAny}}})
	expectError(t, g, openflow.ErrGroupBucketExists, "insert bucket 10 again")
	g.send(&openflow.GroupDescRequest{GroupID: 5})
	d, ok := g.next().(*openflow.GroupDescReply)
	if !ok || len(d.Groups) != 1 || len(d.Groups[0].Buckets) != 2 || d.Groups[0].Buckets[0].ID != 11 || d.Groups[0].Buckets[1].ID != 10 {
		t.Errorf("1.5 group desc %+v", d)
	}
}

// TestGroupSelectionMethodProperty: OVS's selection method property:
// dp_hash is the default hashing, hash with fields hashes those fields
// (their key bits, from the basis), anything else is refused visibly.
func TestGroupSelectionMethodProperty(t *testing.T) {
	prop := func(method string, basis byte, fields ...byte) openflow.Prop {
		d := make([]byte, 36)
		copy(d, []byte{0, 0, 0x15, 0x4d, 0, 0, 0, 1})
		copy(d[12:], method)
		d[35] = basis
		return openflow.Prop{Type: 0xffff, Data: append(d, fields...)}
	}
	var spec ofproto.GroupSpec
	if err := selectionMethod(&spec, []openflow.Prop{prop("dp_hash", 0)}); err != nil || spec.HashFields != nil {
		t.Errorf("dp_hash: %v, fields %v", err, spec.HashFields)
	}
	// fields(ip_src,tcp_dst), then eth_src under a mask, basis 7: each
	// field with the mask as its value, as ovs-ofctl 3.1 sends them.
	ipSrcTCPDst := []byte{0x80, 0, 0x16, 0x04, 0xff, 0xff, 0xff, 0xff, 0x80, 0, 0x1c, 0x02, 0xff, 0xff}
	if err := selectionMethod(&spec, []openflow.Prop{prop("hash", 7, ipSrcTCPDst...)}); err != nil || spec.HashFields == nil {
		t.Fatalf("hash: %v", err)
	}
	if m := spec.HashFields; m.NwSrc != [4]byte{255, 255, 255, 255} || m.TpDst != 0xffff || m.NwDst != [4]byte{} || spec.HashBasis != 7 {
		t.Errorf("hash fields mask %+v basis %d", m, spec.HashBasis)
	}
	ethSrcMasked := []byte{0x80, 0, 0x08, 0x06, 0xff, 0xff, 0xff, 0, 0, 0}
	spec = ofproto.GroupSpec{}
	if err := selectionMethod(&spec, []openflow.Prop{prop("hash", 0, ethSrcMasked...)}); err != nil || spec.HashFields.DlSrc != [6]byte{255, 255, 255} {
		t.Errorf("masked eth_src: %v %+v", err, spec.HashFields)
	}
	for _, p := range []openflow.Prop{prop("frob", 0), {Type: 3, Data: []byte{1}}, prop("hash", 0, 0x80, 0, 0x16, 0x09, 1, 2, 3, 4)} {
		if err, ok := selectionMethod(&ofproto.GroupSpec{}, []openflow.Prop{p}).(*openflow.Error); !ok || err.Code != openflow.ErrPropBadExpType {
			t.Errorf("%+v: %v, want OFPBPC_BAD_EXP_TYPE", p, err)
		}
	}
}

// TestGroupModsInBundle: a bundle holds group mods with flow mods, as
// OVS 3.1's do (ovs-ofctl bundle, --bundle add-group): they apply in
// order at commit, a flow may name a group the bundle adds before it,
// and a failure anywhere undoes everything, group deletes (and the flows
// they took) included, with the failing message's own error and then
// OFPBFC_MSG_FAILED. On the old code the first group mod got
// OFPBFC_MSG_UNSUP.
func TestGroupModsInBundle(t *testing.T) {
	s, b := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version14)})
	f := dialService(t, s, openflow.Version14)
	const flags = openflow.BundleAtomic | openflow.BundleOrdered
	enc := func(m openflow.Message) []byte {
		t.Helper()
		w, err := openflow.Encode(openflow.Version14, 1, m)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	group := func(cmd uint16, id uint32, port uint32) []byte {
		return enc(&openflow.GroupMod{Command: cmd, Type: openflow.GroupTypeAll, GroupID: id, Buckets: []openflow.Bucket{
			{WatchPort: openflow.PortAny, WatchGroup: openflow.GroupAny, Actions: []openflow.Action{openflow.Output{Port: port}}}}})
	}
	flowTo := func(prio uint16, act openflow.Action) []byte {
		return enc(&openflow.FlowMod{Command: openflow.FlowAdd, Priority: prio, BufferID: openflow.NoBuffer, OutPort: openflow.PortAny,
			OutGroup: openflow.GroupAny, Instructions: []openflow.Instruction{openflow.ApplyActions{Actions: []openflow.Action{act}}}})
	}
	// run sends one bundle of msgs and commits it; fails is the index of
	// the message that must fail at commit (-1: none).
	run := func(id uint32, fails int, want openflow.ErrCode, msgs ...[]byte) {
		t.Helper()
		f.send(&openflow.BundleControl{BundleID: id, Type: openflow.BundleOpenRequest, Flags: flags})
		wantControl(t, f, openflow.BundleOpenReply)
		for _, m := range msgs {
			f.send(&openflow.BundleAdd{BundleID: id, Flags: flags, Message: m})
		}
		f.send(&openflow.BundleControl{BundleID: id, Type: openflow.BundleCommitRequest, Flags: flags})
		if fails < 0 {
			wantControl(t, f, openflow.BundleCommitReply)
			return
		}
		wantError(t, f, want)
		wantError(t, f, openflow.ErrBundleMsgFailed)
	}
	base := flowsIn(s, ofproto.TableAll) // the bridge's own flows
	flows := func() int { return flowsIn(s, ofproto.TableAll) - base }

	// A group and a flow that sends to it, in one bundle.
	run(1, -1, 0, group(openflow.GroupAdd, 60, 1), flowTo(5, openflow.Group{GroupID: 60}),
		group(openflow.GroupModify, 60, 2))
	if g := b.Groups.Get(60); g == nil || len(g.Buckets) != 1 || flows() != 1 {
		t.Fatalf("after the bundle: group %+v, %d flows", g, flows())
	}
	// A flow to a group that does not exist fails the bundle, and the
	// group and flow added before it are undone.
	run(2, 2, openflow.ErrActBadOutGroup, flowTo(6, openflow.Output{Port: 2}), group(openflow.GroupAdd, 62, 1),
		flowTo(7, openflow.Group{GroupID: 99}))
	if b.Groups.Get(62) != nil || flows() != 1 {
		t.Errorf("after the failed bundle: group 62 %v, %d flows, want none and 1", b.Groups.Get(62), flows())
	}
	// A group delete takes the flows that name it; a later add of a
	// group that exists fails, and both come back.
	run(3, 3, openflow.ErrGroupExists, group(openflow.GroupDelete, 60, 0), group(openflow.GroupAdd, 60, 3),
		group(openflow.GroupAdd, 63, 3), group(openflow.GroupAdd, 60, 3))
	if g := b.Groups.Get(60); g == nil || b.Groups.Get(63) != nil || b.Groups.Len() != 1 || flows() != 1 {
		t.Errorf("after the failed delete: group 60 %+v, %d groups, %d flows, want group 60 alone and 1 flow", g, b.Groups.Len(), flows())
	} else if out, ok := g.Buckets[0].Actions[0].(flow.Output); !ok || out.Port != 2 {
		t.Errorf("group 60 came back as %+v, want its output:2", g.Buckets)
	}
	// A committed delete takes the flow (its flow-removed is sent to
	// who asked for it; none here).
	run(4, -1, 0, group(openflow.GroupDelete, openflow.GroupAll, 0))
	if b.Groups.Len() != 0 || flows() != 0 {
		t.Errorf("after the delete: %d groups, %d flows", b.Groups.Len(), flows())
	}
	// A bundle of flows alone still checks their groups at commit.
	run(6, 0, openflow.ErrActBadOutGroup, flowTo(8, openflow.Group{GroupID: 98}))
	if flows() != 0 {
		t.Errorf("a bundled flow to group 98 was added")
	}
	// A group mod that is wrong in itself fails as it is added.
	f.send(&openflow.BundleControl{BundleID: 5, Type: openflow.BundleOpenRequest, Flags: flags})
	wantControl(t, f, openflow.BundleOpenReply)
	f.send(&openflow.BundleAdd{BundleID: 5, Flags: flags, Message: enc(&openflow.GroupMod{Command: openflow.GroupAdd, Type: 9, GroupID: 1})})
	wantError(t, f, openflow.ErrGroupBadType)
}

// TestGroupModsNX: group mods and the group stats in OpenFlow 1.0, as
// ovs-ofctl sends them without -O (OVS's Nicira extension, in 1.5's
// layout: bucket ids, bucket commands), with the errors OVS 3.1 sent for
// the same requests. On the old code the first group mod got
// OFPBRC_BAD_SUBTYPE.
func TestGroupModsNX(t *testing.T) {
	s, b := newTestService(t, &Info{Versions: openflow.VersionBitmap(openflow.Version10)})
	f := dialService(t, s, openflow.Version10)
	bucket := func(id, watch, port uint32) openflow.Bucket {
		return openflow.Bucket{ID: id, WatchPort: watch, WatchGroup: openflow.GroupAny, Actions: []openflow.Action{openflow.Output{Port: port}}}
	}
	mod := func(cmd uint16, typ uint8, id, bucketID uint32, bs ...openflow.Bucket) *openflow.GroupMod {
		return &openflow.GroupMod{Command: cmd, Type: typ, GroupID: id, CommandBucketID: bucketID, Buckets: bs}
	}
	f.send(mod(openflow.GroupAdd, openflow.GroupTypeAll, 1, openflow.BucketAll, bucket(0, openflow.PortAny, 1)))
	f.send(mod(openflow.GroupInsertBucket, openflow.GroupTypeAll, 1, openflow.BucketFirst, bucket(7, openflow.PortAny, 3)))
	f.send(mod(openflow.GroupInsertBucket, openflow.GroupTypeAll, 1, openflow.BucketLast, bucket(8, openflow.PortAny, 2)))
	f.send(mod(openflow.GroupRemoveBucket, openflow.GroupTypeAll, 1, 8))
	barrier(t, f, "add, insert, remove")
	if g := b.Groups.Get(1); g == nil || len(g.Buckets) != 2 || g.Buckets[0].ID != 7 || g.Buckets[1].ID != 0 {
		t.Fatalf("group 1: %+v", g)
	}
	for _, c := range []struct {
		m    *openflow.GroupMod
		want openflow.ErrCode
	}{
		{mod(openflow.GroupAdd, openflow.GroupTypeAll, 1, openflow.BucketAll), openflow.ErrGroupExists},
		{mod(openflow.GroupModify, openflow.GroupTypeAll, 9, openflow.BucketAll), openflow.ErrGroupUnknown},
		{mod(openflow.GroupAdd, 7, 0x37, openflow.BucketAll), openflow.ErrGroupBadType},
		{mod(9, openflow.GroupTypeAll, 0x36, openflow.BucketAll), openflow.ErrGroupBadCommand},
		{mod(openflow.GroupAdd, openflow.GroupTypeAll, 0xfffffffd, openflow.BucketAll), openflow.ErrGroupInvalid},
		{mod(openflow.GroupAdd, openflow.GroupTypeAll, 0x3a, openflow.BucketAll, bucket(0, 1, 2)), openflow.ErrGroupWatchUnsupported},
		{mod(openflow.GroupInsertBucket, openflow.GroupTypeAll, 1, 99, bucket(8, openflow.PortAny, 3)), openflow.ErrGroupUnknownBucket},
		{mod(openflow.GroupRemoveBucket, openflow.GroupTypeAll, 1, 99), openflow.ErrGroupUnknownBucket},
		{mod(openflow.GroupRemoveBucket, openflow.GroupTypeAll, 99, openflow.BucketAll), openflow.ErrGroupUnknown},
	} {
		f.send(c.m)
		expectError(t, f, c.want, "group mod")
	}
	f.send(&openflow.GroupDescRequest{GroupID: openflow.GroupAll})
	if d, ok := f.next().(*openflow.GroupDescReply); !ok || len(d.Groups) != 1 || d.Groups[0].Buckets[0].ID != 7 {
		t.Errorf("group desc %+v", d)
	}
	f.send(&openflow.GroupStatsRequest{GroupID: 1})
	if st, ok := f.next().(*openflow.GroupStatsReply); !ok || len(st.Groups) != 1 || len(st.Groups[0].Buckets) != 2 {
		t.Errorf("group stats %+v", st)
	}
	f.send(&openflow.GroupFeaturesRequest{})
	if ft, ok := f.next().(*openflow.GroupFeaturesReply); !ok || ft.Types != 0xf || ft.Actions[0] != groupActions10 {
		t.Errorf("group features %+v", ft)
	}
	f.send(mod(openflow.GroupDelete, 0, openflow.GroupAll, openflow.BucketAll))
	barrier(t, f, "delete all")
	if b.Groups.Len() != 0 {
		t.Errorf("%d groups after del-groups", b.Groups.Len())
	}
}
