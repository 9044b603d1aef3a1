package openflow

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// Groups in OpenFlow 1.0 (OVS's Nicira extension). The wire strings
// below were captured from the real ovs-ofctl 3.1 (without -O, so in
// 1.0) and from OVS 3.1's replies, on 2026-12-05.

func unhex10(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGroupNXWireAsOVS: what ovs-ofctl sends for add-group, mod-group,
// --may-create mod-group, insert-buckets, remove-buckets, del-groups,
// dump-groups, dump-group-stats and dump-group-features, and what OVS
// answers, decode to the messages they are and encode back to the same
// bytes. On the old code the first failed with OFPBRC_BAD_SUBTYPE.
func TestGroupNXWireAsOVS(t *testing.T) {
	for _, c := range []struct {
		name, wire string
		check      func(m Message) bool
	}{
		{"add-group group_id=2,type=select,bucket=weight:5,watch_port:1,output:1,bucket=output:2",
			"0104005800000006 00002320 0000001f 0000 0100 00000002 0038 0000 ffffffff" +
				" 0020 0008 00000000 0000000800010000 0000000800050000 0001000800000001" +
				" 0018 0008 00000001 0000000800020000 0000000800010000",
			func(m Message) bool {
				g, ok := m.(*GroupMod)
				return ok && g.Command == GroupAdd && g.Type == GroupTypeSelect && g.GroupID == 2 && len(g.Buckets) == 2 &&
					g.Buckets[0].Weight == 5 && g.Buckets[0].WatchPort == 1 && g.Buckets[1].ID == 1 && g.Buckets[1].Weight == 1 &&
					g.Buckets[1].WatchPort == PortAny
			}},
		{"--may-create mod-group group_id=9,type=indirect,bucket=output:2",
			"0104003000000006000023200000001f800002000000000900100000ffffffff00100008000000000000000800020000",
			func(m Message) bool {
				g, ok := m.(*GroupMod)
				return ok && g.Command == 0x8000 && g.Type == GroupTypeIndirect
			}},
		{"insert-buckets group_id=1,command_bucket_id=first,bucket=bucket_id:7,actions=output:3",
			"0104003000000006000023200000001f000300000000000100100000fffffffd00100008000000070000000800030000",
			func(m Message) bool {
				g, ok := m.(*GroupMod)
				return ok && g.Command == GroupInsertBucket && g.CommandBucketID == BucketFirst && g.Buckets[0].ID == 7
			}},
		{"remove-buckets group_id=1,command_bucket_id=7",
			"0104002000000006000023200000001f00050000000000010000000000000007",
			func(m Message) bool {
				g, ok := m.(*GroupMod)
				return ok && g.Command == GroupRemoveBucket && g.CommandBucketID == 7
			}},
		{"del-groups", "0104002000000006000023200000001f00020000fffffffc00000000ffffffff",
			func(m Message) bool {
				g, ok := m.(*GroupMod)
				return ok && g.Command == GroupDelete && g.GroupID == GroupAll
			}},
		{"dump-groups", "0110002000000002ffff0000000023200000000800000000fffffffc00000000",
			func(m Message) bool { g, ok := m.(*GroupDescRequest); return ok && g.GroupID == GroupAll }},
		{"dump-group-stats", "0110002000000006ffff0000000023200000000700000000fffffffc00000000",
			func(m Message) bool { g, ok := m.(*GroupStatsRequest); return ok && g.GroupID == GroupAll }},
		{"dump-group-features", "0110001800000002ffff0000000023200000000900000000",
			func(m Message) bool { _, ok := m.(*GroupFeaturesRequest); return ok }},
		{"OVS's NXST_GROUP_DESC reply",
			"011100780000007effff0000000023200000000800000000003000000000003200200000000000000010000800000000000000080002000000100008000000090000000800030000002000000000003c001000000000000000100008000000070000000800020000001000000000003d0000000000000000",
			func(m Message) bool {
				g, ok := m.(*GroupDescReply)
				return ok && len(g.Groups) == 3 && g.Groups[0].Buckets[1].ID == 9 && g.Groups[1].Buckets[0].ID == 7 && len(g.Groups[2].Buckets) == 0
			}},
		{"OVS's NXST_GROUP reply",
			"011100c00000007fffff0000000023200000000700000000004800000000003200000000000000000000000000000000000000000000000000000000006acfc00000000000000000000000000000000000000000000000000000000000000000003800000000003c00000000000000000000000000000000000000000000000000000000002dc6c000000000000000000000000000000000002800000000003d00000000000000000000000000000000000000000000000000000000002dc6c0",
			func(m Message) bool {
				g, ok := m.(*GroupStatsReply)
				return ok && len(g.Groups) == 3 && len(g.Groups[0].Buckets) == 2 && g.Groups[2].GroupID == 0x3d
			}},
		{"OVS's NXST_GROUP_FEATURES reply",
			"0111004000000080ffff00000000232000000009000000000000000f00000007ffffff00ffffff00ffffff00ffffff0000000fff00000fff00000fff00000fff",
			func(m Message) bool {
				g, ok := m.(*GroupFeaturesReply)
				return ok && g.Types == 0xf && g.Capabilities == 7 && g.Actions[3] == 0xfff
			}},
	} {
		b := unhex10(t, c.wire)
		h, m, err := Decode(b)
		if err != nil {
			t.Errorf("%s: %x: %v", c.name, b, err)
			continue
		}
		if !c.check(m) {
			t.Errorf("%s: decoded to %+v", c.name, m)
		}
		again, err := Encode(h.Version, h.Xid, m)
		if err != nil || !bytes.Equal(again, b) {
			t.Errorf("%s: re-encoded %x, %v\n       want %x", c.name, again, err, b)
		}
	}
}

// TestGroupNXBadInput: malformed Nicira group messages get the error
// OVS 3.1 sent for the same bytes (captured with a raw connection), and
// no panic. The errors OVS finds only when it applies the group mod
// (unknown type or command, a reserved id, a watch in an all group)
// are connmgr's (TestGroupModNX).
func TestGroupNXBadInput(t *testing.T) {
	const nxt = "0104000000000000 00002320 0000001f "
	const nxst = "0110000000000000 ffff0000 00002320 "
	for _, c := range []struct {
		name, wire string
		want       ErrCode
	}{
		{"body of 4 bytes", nxt + "00000000", ErrBadLen},
		{"bucket array past the end", nxt + "0000 0000 00000033 0040 0000 ffffffff 0010000800000000 0000000800020000", ErrBadLen},
		{"bucket of 4 bytes", nxt + "0000 0000 00000034 0010 0000 ffffffff 0004000800000000 0000000800020000", ErrGroupBadBucket},
		{"unknown action", nxt + "0000 0000 00000035 0010 0000 ffffffff 0010000800000000 00fe000800000000", ErrActBadType},
		{"unknown bucket property", nxt + "0000 0000 00000038 0018 0000 ffffffff 0018000800000000 0000000800020000 0009000800000001", ErrPropBadType},
		{"weight of 4 bytes", nxt + "0000 0100 00000039 0018 0000 ffffffff 0018000800000000 0000000800020000 0000000400000000", ErrPropBadLen},
		{"group property of length 0", nxt + "0000 0000 0000003b 0010 0000 ffffffff 0010000800000000 0000000800020000 0000000000000000", ErrPropBadLen},
		{"insert before all", nxt + "0003 0000 00000032 0010 0000 ffffffff 0010000800000000 0000000800030000", ErrGroupBadBucket},
		{"add naming a bucket", nxt + "0000 0000 0000003e 0010 0000 00000005 0010000800000000 0000000800020000", ErrGroupBadBucket},
		{"group description request without a group", nxst + "00000008 00000000", ErrBadLen},
		{"group description request of 4 bytes", nxst + "00000008 00000000 00000032", ErrBadLen},
		{"group stats request of 16 bytes", nxst + "00000007 00000000 00000032 00000000 00000000 00000000", ErrBadLen},
		{"group features request of 4 bytes", nxst + "00000009 00000000 00000000", ErrBadLen},
	} {
		b := unhex10(t, c.wire)
		b[2], b[3] = byte(len(b)>>8), byte(len(b))
		_, _, err := Decode(b)
		var e *Error
		if err == nil || !asError(err, &e) || e.Code != c.want {
			t.Errorf("%s: %x: got %v, want %s", c.name, b, err, errTable[c.want].name)
		}
	}
}
