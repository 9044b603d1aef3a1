package openflow

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

func groupMessages(v uint8) []Message {
	out := Output{Port: 2}
	b := func(id uint32, w uint16, wp, wg uint32, acts ...Action) Bucket {
		return Bucket{ID: id, Weight: w, WatchPort: wp, WatchGroup: wg, Actions: acts}
	}
	ms := []Message{
		&GroupMod{Command: GroupAdd, Type: GroupTypeAll, GroupID: 1, CommandBucketID: BucketAll,
			Buckets: []Bucket{b(0, 0, PortAny, GroupAny, out), b(1, 0, PortAny, GroupAny, Output{Port: 3}, Group{GroupID: 7})}},
		&GroupMod{Command: GroupModify, Type: GroupTypeSelect, GroupID: 2, CommandBucketID: BucketAll,
			Buckets: []Bucket{b(0, 5, PortAny, GroupAny, out), b(1, 1, 3, GroupAny)}},
		&GroupMod{Command: GroupAdd, Type: GroupTypeFastFailover, GroupID: GroupMax, CommandBucketID: BucketAll,
			Buckets: []Bucket{b(0, 0, 2, GroupAny, out), b(1, 0, PortAny, 9, DecNwTTL{})}},
		&GroupMod{Command: GroupDelete, GroupID: GroupAll, CommandBucketID: BucketAll},
		&GroupStatsRequest{GroupID: GroupAll},
		&GroupFeaturesRequest{},
		&GroupFeaturesReply{Types: 0xf, Capabilities: 7, MaxGroups: [4]uint32{1, 2, 3, 4}, Actions: [4]uint32{5, 6, 7, 8}},
		&GroupStatsReply{Groups: []GroupStats{{GroupID: 1, RefCount: 2, PacketCount: 3, ByteCount: 4, DurationSec: 5,
			DurationNsec: 6, Buckets: []BucketCounter{{1, 2}, {3, 4}}}, {GroupID: 9}}},
		&GroupDescReply{Groups: []GroupDesc{{Type: GroupTypeSelect, GroupID: 3, Buckets: []Bucket{b(0, 2, PortAny, GroupAny, out)}},
			{Type: GroupTypeIndirect, GroupID: 4, Buckets: []Bucket{b(0, 0, PortAny, GroupAny)}}}},
	}
	if groups15(v) {
		ms = append(ms,
			&GroupMod{Command: GroupInsertBucket, Type: GroupTypeAll, GroupID: 1, CommandBucketID: BucketFirst,
				Buckets: []Bucket{b(7, 0, PortAny, GroupAny, out)}, Props: []Prop{{Type: 0xffff, Data: []byte{0, 0, 0x15, 0x4d, 0, 0, 0, 1}}}},
			&GroupMod{Command: GroupRemoveBucket, Type: GroupTypeAll, GroupID: 1, CommandBucketID: 7},
			&GroupDescRequest{GroupID: 5},
			&GroupDescReply{Groups: []GroupDesc{{Type: GroupTypeAll, GroupID: 3, Buckets: []Bucket{b(4, 0, PortAny, GroupAny, out)},
				Props: []Prop{{Type: 0xffff, Data: []byte{1, 2, 3, 4}}}}}},
		)
	} else {
		ms = append(ms, &GroupDescRequest{GroupID: GroupAll})
	}
	return ms
}

// TestGroupMessagesRoundTrip: every group message decodes to itself in
// 1.0 (OVS's Nicira extension), 1.3, 1.4 and 1.5.
func TestGroupMessagesRoundTrip(t *testing.T) {
	for _, v := range []uint8{Version10, Version13, Version14, Version15} {
		for i, m := range groupMessages(v) {
			b, err := Encode(v, uint32(i), m)
			if err != nil {
				t.Errorf("%s: encode %T: %v", versionName(v), m, err)
				continue
			}
			_, got, err := Decode(b)
			if err != nil {
				t.Errorf("%s: decode %T: %v\n%x", versionName(v), m, err, b)
				continue
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("%s: %T round trip\n got %+v\nwant %+v", versionName(v), m, got, m)
			}
		}
	}
}

// TestGroupModWireAsOVS: the group mods ovs-ofctl 3.1 sent (add-group
// group_id=6,type=all,bucket=watch_port:2,output:2, captured with
// -vvconn) decode to that group and encode back to the same bytes.
func TestGroupModWireAsOVS(t *testing.T) {
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	out2 := []Action{Output{Port: 2}}
	for _, c := range []struct {
		wire string
		want *GroupMod
	}{
		{"040f0030 00000006 0000 0000 00000006 0020 0000 00000002 ffffffff 00000000 0000001000000002 0000000000000000",
			&GroupMod{Type: GroupTypeAll, GroupID: 6, CommandBucketID: BucketAll,
				Buckets: []Bucket{{ID: 0, WatchPort: 2, WatchGroup: GroupAny, Actions: out2}}}},
		{"060f0038 00000006 0000 0000 00000006 0020 0000 ffffffff 0020 0010 00000000 0000001000000002 0000000000000000 0001 0008 00000002",
			&GroupMod{Type: GroupTypeAll, GroupID: 6, CommandBucketID: BucketAll,
				Buckets: []Bucket{{ID: 0, WatchPort: 2, WatchGroup: GroupAny, Actions: out2}}}},
	} {
		b := unhex(c.wire)
		h, m, err := Decode(b)
		if err != nil {
			t.Fatalf("%x: %v", b, err)
		}
		if !reflect.DeepEqual(m, c.want) {
			t.Errorf("%x:\n got %+v\nwant %+v", b, m, c.want)
		}
		again, err := Encode(h.Version, h.Xid, m)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("re-encoded %x, %v\n       want %x", again, err, b)
		}
	}
}

// TestGroupModBadInput: malformed group mods get OFPGMFC_BAD_BUCKET or
// OFPBRC_BAD_LEN, never a panic.
func TestGroupModBadInput(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want ErrCode
	}{
		{[]byte{4, 15, 0, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0, 0}, ErrGroupBadBucket}, // 8-byte bucket
		{[]byte{4, 15, 0, 32, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, ErrGroupBadBucket},
		{[]byte{6, 15, 0, 24, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 64, 0, 0, 0xff, 0xff, 0xff, 0xff}, ErrBadLen}, // array past the end, as OVS
		{[]byte{4, 15, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0}, ErrBadLen},
		{[]byte{4, 18, 0, 16, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0}, ErrBadLen}, // group stats request without its group
	} {
		_, _, err := Decode(c.b)
		var e *Error
		if err == nil || !asError(err, &e) || e.Code != c.want {
			t.Errorf("%x: got %v, want %s", c.b, err, errTable[c.want].name)
		}
	}
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}
