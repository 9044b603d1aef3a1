package openflow

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// TestBundleMessagesRoundTrip: bundle control and add decode to
// themselves in 1.4 and 1.5, and are no messages of 1.3.
func TestBundleMessagesRoundTrip(t *testing.T) {
	for _, v := range []uint8{Version14, Version15} {
		inner, err := Encode(v, 9, &FlowMod{Command: FlowDelete, BufferID: NoBuffer})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []Message{
			&BundleControl{BundleID: 1, Type: BundleOpenRequest, Flags: BundleAtomic | BundleOrdered},
			&BundleControl{BundleID: 2, Type: BundleCommitReply, Props: []Prop{{Type: 0xffff, Data: []byte{1, 2, 3, 4}}}},
			&BundleAdd{BundleID: 3, Flags: BundleOrdered, Message: inner},
			&BundleAdd{BundleID: 4, Message: inner, Props: []Prop{{Type: 0xffff, Data: []byte{5}}}},
		} {
			b, err := Encode(v, 9, m)
			if err != nil {
				t.Fatalf("%s: encode %T: %v", versionName(v), m, err)
			}
			_, got, err := Decode(b)
			if err != nil || !reflect.DeepEqual(got, m) {
				t.Fatalf("%s: %T round trip: %v\n got %+v\nwant %+v", versionName(v), m, err, got, m)
			}
		}
	}
	if _, err := Encode(Version13, 1, &BundleControl{}); err == nil {
		t.Error("a bundle control encodes in 1.3")
	}
	b := []byte{Version13, t14BundleControl, 0, 16, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0}
	if _, _, err := Decode(b); AsError(err).Code != ErrBadType {
		t.Errorf("a 1.3 message of type 33: %v, want OFPBRC_BAD_TYPE", err)
	}
}

// TestOF14MalformedGetErrors: every truncated or inconsistent 1.4/1.5
// message gets the error OVS gives, not a panic.
func TestOF14MalformedGetErrors(t *testing.T) {
	msg := func(v, typ uint8, xid uint32, body ...byte) []byte {
		b := []byte{v, typ, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], xid)
		b = append(b, body...)
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
		return b
	}
	inner := msg(Version14, t13BarrierReq, 5)
	for _, c := range []struct {
		name string
		b    []byte
		want ErrCode
	}{
		{"bundle add without a message", msg(Version14, t14BundleAdd, 5, 0, 0, 0, 1, 0, 0, 0, 0), ErrBundleMsgBadLen},
		{"bundle add, inner xid differs", msg(Version14, t14BundleAdd, 6, append([]byte{0, 0, 0, 1, 0, 0, 0, 0}, inner...)...), ErrBundleMsgBadXid},
		{"bundle add, inner version differs", msg(Version15, t14BundleAdd, 5, append([]byte{0, 0, 0, 1, 0, 0, 0, 0}, inner...)...), ErrBundleBadVersion},
		{"bundle add, inner longer than the outer", msg(Version14, t14BundleAdd, 5, append([]byte{0, 0, 0, 1, 0, 0, 0, 0}, 5, 20, 0, 200, 0, 0, 0, 5)...), ErrBundleMsgBadLen},
		{"bundle control truncated", msg(Version14, t14BundleControl, 1, 0, 0, 0, 1), ErrBadLen},
		{"bundle control, bad property", msg(Version14, t14BundleControl, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 99), ErrBadLen},
		{"1.4 port status, short port", msg(Version14, t13PortStatus, 1, make([]byte, 8+39)...), ErrBadLen},
		{"1.4 port status, port length past the end", msg(Version14, t13PortStatus, 1, append(make([]byte, 12), append([]byte{0, 80}, make([]byte, 34)...)...)...), ErrBadLen},
		{"1.4 port mod, bad property", msg(Version14, t13PortMod, 1, append(make([]byte, 24), 0, 0, 0, 12, 0, 0, 0, 0)...), ErrPropBadLen},
		{"1.5 packet-out without a match", msg(Version15, t13PacketOut, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), ErrMatchBadLen},
		{"1.5 flow removed, OXS past the end", msg(Version15, t13FlowRemoved, 1, append(make([]byte, 16), 0, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 40)...), ErrBadLen},
		{"1.5 port desc request, no port", msg(Version15, t13MultipartReq, 1, 0, 13, 0, 0, 0, 0, 0, 0), ErrBadLen},
	} {
		_, _, err := Decode(c.b)
		if e := AsError(err); err == nil || e.Code != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestErrorNumbersByVersion: the errors 1.4 and 1.5 made standard are
// sent with their standard numbers there, and as ONF experimenter
// errors in 1.3, as OVS sends them; each decodes back to its name.
func TestErrorNumbersByVersion(t *testing.T) {
	for _, c := range []struct {
		code ErrCode
		v    uint8
		typ  uint16
		num  uint16 // code, or the experimenter code when typ is 0xffff
	}{
		{ErrFlowBadPriority, Version13, 0xffff, 2360},
		{ErrFlowBadPriority, Version14, 5, 9},
		{ErrInstDup, Version15, 3, 9},
		{ErrActBadSetMask, Version14, 0xffff, 4250},
		{ErrActBadSetMask, Version15, 2, 16},
		{ErrBundleMsgFailed, Version13, 0xffff, 2313},
		{ErrBundleMsgFailed, Version14, 17, 13},
		{ErrBundleBadID, Version15, 17, 2},
		{ErrBadType, Version15, 1, 1},
	} {
		b, err := Encode(c.v, 1, &ErrorMsg{Err: Error{Code: c.code}})
		if err != nil {
			t.Fatal(err)
		}
		typ, num := binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
		if typ != c.typ || num != c.num {
			t.Errorf("%v in %s: type %d code %d, want %d %d", c.code, versionName(c.v), typ, num, c.typ, c.num)
		}
		_, m, err := Decode(b)
		if err != nil || m.(*ErrorMsg).Err.Code != c.code {
			t.Errorf("%v in %s decodes to %+v %v", c.code, versionName(c.v), m, err)
		}
	}
}

// TestNegotiate1415: a switch allowing 1.0 to 1.5 meets each ovs-ofctl
// -O in its version, and an older peer in the highest it shares.
func TestNegotiate1415(t *testing.T) {
	ours := VersionBitmap(Version10, Version13, Version14, Version15)
	for _, c := range []struct {
		peer  uint8
		hello *Hello
		want  uint8
	}{
		{Version15, &Hello{Versions: VersionBitmap(Version15)}, Version15},
		{Version14, &Hello{Versions: VersionBitmap(Version14)}, Version14},
		{Version15, &Hello{Versions: VersionBitmap(Version10, Version13, Version14, Version15)}, Version15},
		{Version15, &Hello{}, Version15},
		{0x07, &Hello{}, Version15}, // a newer peer without a bitmap
		{Version13, &Hello{}, Version13},
	} {
		got, err := Negotiate(ours, Header{Version: c.peer}, c.hello)
		if err != nil || got != c.want {
			t.Errorf("peer 0x%02x %+v: 0x%02x %v, want 0x%02x", c.peer, c.hello, got, err, c.want)
		}
	}
}
