package openflow

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

func actions10(t *testing.T) []Action {
	reg0 := header(t, "NXM_NX_REG0")
	return []Action{
		Output{Port: 3, MaxLen: 0}, Output{Port: PortController, MaxLen: 128}, Output{Port: PortLocal},
		SetVLANVID{VID: 10}, SetVLANPCP{PCP: 3}, PopVLAN{},
		SetDlAddr{Addr: [6]byte{0, 1, 2, 3, 4, 5}}, SetDlAddr{Dst: true, Addr: [6]byte{6, 7, 8, 9, 10, 11}},
		SetNwAddr{Addr: [4]byte{10, 0, 0, 1}}, SetNwAddr{Dst: true, Addr: [4]byte{10, 0, 0, 2}},
		SetNwTOS{TOS: 0x10}, SetTpPort{Port: 80}, SetTpPort{Dst: true, Port: 443},
		Enqueue{Port: 2, QueueID: 7}, SetQueue{QueueID: 4}, Group{GroupID: 9}, DecNwTTL{},
		SetField{mustField(t, "NXM_NX_REG3", []byte{0, 0, 0, 5}, []byte{0, 0, 0, 0xff})},
		Resubmit{InPort: 5, Table: 255}, Resubmit{InPort: PortInPort, Table: 3, WithTable: true},
		Resubmit{InPort: PortInPort, Table: 4, WithTable: true, CT: true},
		SetTunnel{ID: 0x55}, SetTunnel{ID: 1 << 40, Is64: true}, PopQueue{},
		RegLoad{OfsNbits: 4<<6 | 7, Dst: reg0, Value: 0xab},
		RegMove{NBits: 16, SrcOfs: 0, DstOfs: 16, Src: reg0, Dst: header(t, "NXM_NX_REG1")},
		Note{Data: []byte{1, 2, 3, 4, 5, 6}}, Note{Data: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
		OutputReg{OfsNbits: 15, Src: reg0, MaxLen: 0xffff},
		Learn{Body: bytes.Repeat([]byte{1}, 22)}, Exit{},
		Controller{MaxLen: 0xffff, ControllerID: 3, Reason: 1},
		WriteMetadata{Metadata: 1, Mask: 0xff}, Conjunction{Clause: 0, NClauses: 2, ID: 7},
		CT{Flags: 1, ZoneSrc: reg0, Zone: 15, RecircTable: 255, Alg: 21, Actions: []Action{
			NAT{Flags: 2, RangePresent: NATRangeIPv6Min | NATRangeProtoMax,
				IPv6Min: [16]byte{0x20, 0x01, 0xd, 0xb8, 15: 1}, ProtoMax: 9}}},
		CT{}, NAT{},
		OutputTrunc{Port: 4, MaxLen: 100}, Clone{Actions: []Action{Output{Port: 1}, Clone{Actions: []Action{PopVLAN{}}}}},
		CTClear{},
	}
}

func actions13(t *testing.T) []Action {
	var out []Action
	for _, a := range actions10(t) {
		switch a.(type) {
		case Enqueue:
			continue
		case SetField:
			// 1.3's set_field takes no mask.
			a = SetField{mustField(t, "OXM_OF_ETH_DST", []byte{1, 2, 3, 4, 5, 6}, nil)}
		}
		out = append(out, a)
	}
	return append(out, PushVLAN{EthType: 0x8100}, SetNwTTL{TTL: 9},
		Output{Port: 0xfffffe00}) // a 32-bit port 1.0 cannot carry
}

// TestActionsRoundTrip: every action decodes to itself in each version.
func TestActionsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		v    uint8
		acts []Action
	}{{Version10, actions10(t)}, {Version13, actions13(t)}} {
		b, err := EncodeActions(nil, tc.v, tc.acts)
		if err != nil {
			t.Fatalf("%s: %v", versionName(tc.v), err)
		}
		got, err := DecodeActions(b, tc.v)
		if err != nil {
			t.Fatalf("%s: %v", versionName(tc.v), err)
		}
		if !reflect.DeepEqual(got, tc.acts) {
			for i := range tc.acts {
				if i >= len(got) || !reflect.DeepEqual(got[i], tc.acts[i]) {
					t.Errorf("%s: action %d: got %#v want %#v", versionName(tc.v), i, got[min(i, len(got)-1)], tc.acts[i])
					break
				}
			}
		}
	}
}

// TestActionsVersionOnly: an action a version cannot carry is an error,
// not a silently different encoding.
func TestActionsVersionOnly(t *testing.T) {
	for _, c := range []struct {
		v uint8
		a Action
	}{
		{Version13, Enqueue{Port: 1}},
		{Version10, PushVLAN{EthType: 0x8100}},
		{Version10, SetNwTTL{TTL: 1}},
		{Version10, Output{Port: 0x10000}},
		{Version10, SetTunnel{ID: 1 << 33}},
	} {
		if _, err := EncodeActions(nil, c.v, []Action{c.a}); err == nil {
			t.Errorf("%s: %#v encoded", versionName(c.v), c.a)
		}
	}
}

func messages(t *testing.T, v uint8) []Message {
	port := PortDesc{PortNo: 1, HWAddr: [6]byte{2, 0, 0, 0, 0, 1}, Name: "veth_l0", Config: 1, State: 4,
		Curr: 0x840, Advertised: 1, Supported: 2, Peer: 3}
	if v == Version13 {
		port.CurrSpeed, port.MaxSpeed = 10000000, 20000000
	}
	match := []Field{
		mustField(t, "NXM_OF_ETH_TYPE", []byte{8, 0}, nil),
		mustField(t, "NXM_OF_IP_SRC", []byte{10, 0, 0, 0}, []byte{255, 255, 255, 0}),
		mustField(t, "NXM_NX_CT_STATE", []byte{0, 0, 0, 0x21}, []byte{0, 0, 0, 0x21}),
		mustField(t, "ONFOXM_ET_TCP_FLAGS", []byte{0, 2}, []byte{0, 2}),
	}
	m10 := Match10{Wildcards: FW10All &^ FW10InPort, InPort: 3, NwSrc: [4]byte{1, 2, 3, 4}}
	acts := actions10(t)
	if v == Version13 {
		acts = actions13(t)
	}
	insts := []Instruction{
		Meter{MeterID: 1}, ApplyActions{Actions: acts[:5]}, ClearActions{},
		WriteActions{Actions: []Action{Output{Port: 2}}}, WriteMetadataInst{Metadata: 1, Mask: 3}, GotoTable{Table: 9},
	}
	ms := []Message{
		&Hello{}, &Hello{Versions: VersionBitmap(Version10, Version13)},
		&ErrorMsg{Err: Error{Code: ErrBadType, Data: []byte{1, 2, 3}}},
		&ErrorMsg{Err: Error{Code: ErrNXMInvalid, Data: []byte{4}}},
		&ErrorMsg{Err: Error{Code: ErrFlowOverlap}},
		&ErrorMsg{Err: Error{Code: ErrUnknown, Type: 1, RawCode: 999, Data: []byte{5}}},
		&EchoRequest{Data: []byte("ping")}, &EchoReply{}, &FeaturesRequest{},
		&GetConfigRequest{}, &GetConfigReply{Flags: 1, MissSendLen: 128}, &SetConfig{MissSendLen: 0xffff},
		&BarrierRequest{}, &BarrierReply{},
		&PortMod{PortNo: 2, HWAddr: [6]byte{1, 2, 3, 4, 5, 6}, Config: 0x10, Mask: 0x10, Advertise: 0},
		&PortStatus{Reason: 2, Desc: port},
		&PacketOut{BufferID: NoBuffer, InPort: PortLocal, Actions: acts[:3], Data: []byte{1, 2, 3}},
		&PacketOut{BufferID: NoBuffer, InPort: PortController},
		&SetFlowFormat{Format: FlowFormatNXM}, &FlowModTableID{Set: true},
		&SetPacketInFormat{Format: 2}, &SetControllerID{ID: 7},
		&PacketIn2{Props: []Prop{{Type: PacketIn2Packet, Data: []byte{1, 2, 3}}, {Type: PacketIn2Reason, Data: []byte{1}}}},
		&DescRequest{}, &DescReply{Mfr: "gvs", HW: "hw", SW: "3.1.0", Serial: "None", DPDesc: "br0"},
		&TableStatsRequest{}, &PortDescRequest{PortNo: PortAny}, &PortStatsRequest{PortNo: PortAny},
		&QueueStatsRequest{PortNo: PortAny, QueueID: QueueAll}, &QueueStatsRequest{PortNo: 3, QueueID: 1},
		&QueueStatsReply{},
		&AggregateStatsReply{PacketCount: 1, ByteCount: 2, FlowCount: 3},
		&PortDescReply{Ports: []PortDesc{port, port}},
		&PortStatsReply{Flags: ReplyMore, Ports: []PortStats{{PortNo: 1, RxPackets: 1, Collisions: 12}}},
	}
	legacy := []AsyncProp{{AsyncPacketIn, false, 3}, {AsyncPacketIn, true, 0}, {AsyncPortStatus, false, 7},
		{AsyncPortStatus, true, 1}, {AsyncFlowRemoved, false, 0xf}, {AsyncFlowRemoved, true, 2}}
	ms = append(ms, &SetAsync{NX: true, Legacy: true, Props: legacy})
	if v < Version14 {
		ms = append(ms, &SetAsync{NX: true, Props: []AsyncProp{{AsyncPortStatus, true, 1}, {AsyncRoleStatus, false, 7}}})
	}
	if v == Version13 {
		ms = append(ms, &SetAsync{Legacy: true, Props: legacy},
			&GetAsyncReply{Master: AsyncMasks{3, 7, 0xf}, Slave: AsyncMasks{0, 7, 0}})
	}
	if v >= Version13 {
		ms = append(ms, &GetAsyncRequest{})
	}
	if v >= Version14 {
		ms = append(ms, &SetAsync{Props: []AsyncProp{{AsyncPacketIn, false, 0x3b}, {AsyncTableStatus, true, 0x18}}},
			&RoleStatus{Role: RoleSlave, Reason: RoleStatusMasterRequest, GenerationID: 7},
			&GetAsyncReply{Master: AsyncMasks{0x3b, 7, 0x3f, 1, 0x8, 2}, Slave: AsyncMasks{0, 7, 0, 4, 0x10, 1}})
	}
	if v == Version10 {
		ts := TableStats{TableID: 1, Name: "classifier", Wildcards: 0x3fffff, MaxEntries: 1000000, ActiveCount: 2, LookupCount: 3, MatchedCount: 4}
		ms = append(ms,
			&FeaturesReply{DatapathID: 0xabcd, NTables: 254, Capabilities: 0xc7, Actions: 0xfff, Ports: []PortDesc{port}},
			&PacketIn{BufferID: NoBuffer, TotalLen: 60, Reason: 1, InPort: 2, Data: []byte{9, 9}},
			&FlowMod{Match10: m10, Cookie: 5, TableID: 2, Command: FlowModifyStrict, IdleTimeout: 10,
				HardTimeout: 20, Priority: 100, BufferID: NoBuffer, OutPort: PortAny, Flags: FlagSendFlowRem, Actions: acts},
			&FlowMod{NXM: true, Match: match, Command: FlowDelete, Priority: 1, OutPort: 4, Actions: acts[:4]},
			&FlowMod{NXM: true, Command: FlowAdd},
			&FlowRemoved{Match10: m10, Cookie: 1, Priority: 2, Reason: 1, DurationSec: 3, DurationNsec: 4,
				IdleTimeout: 5, PacketCount: 6, ByteCount: 7},
			&FlowRemoved{NXM: true, Match: match, Cookie: 1, Priority: 2, Reason: 1, TableID: 3, DurationSec: 3},
			&FlowStatsRequest{Match10: m10, TableID: 0xff, OutPort: PortAny},
			&FlowStatsRequest{NXM: true, Match: match, TableID: 0xff, OutPort: PortAny},
			&AggregateStatsRequest{NXM: true, Match: match, TableID: 0xff, OutPort: PortAny},
			&AggregateStatsRequest{Match10: m10, TableID: 1, OutPort: 2},
			&AggregateStatsReply{NXM: true, PacketCount: 1},
			&FlowStatsReply{Flows: []FlowStats{{TableID: 1, Match10: m10, Priority: 3, Cookie: 4, Actions: acts[:2]}}},
			&FlowStatsReply{NXM: true, Flows: []FlowStats{{TableID: 1, Match: match, IdleAge: 5, HardAge: 6, Actions: acts},
				{Priority: 9}}},
			&TableStatsReply{Tables: []TableStats{ts, ts}},
		)
	} else {
		tf := TableFeatures{TableID: 3, Name: "table3", MetadataMatch: ^uint64(0), MetadataWrite: ^uint64(0),
			MaxEntries: 1000000, Props: []TableFeatureProp{{Type: 0, Data: []byte{0, 1, 0, 4}}, {Type: 2, Data: []byte{1, 2, 3}}}}
		ms = append(ms,
			&FeaturesReply{DatapathID: 0xabcd, NTables: 254, AuxiliaryID: 1, Capabilities: 0x4f},
			&PacketIn{BufferID: NoBuffer, TotalLen: 60, Reason: 1, TableID: 3, Cookie: 9,
				Match: []Field{mustField(t, "OXM_OF_IN_PORT", []byte{0, 0, 0, 2}, nil)}, Data: []byte{9, 9}},
			&FlowMod{Match: match, Cookie: 5, CookieMask: 0xff, TableID: 2, Command: FlowModifyStrict, IdleTimeout: 10,
				HardTimeout: 20, Priority: 100, BufferID: NoBuffer, OutPort: PortAny, OutGroup: PortAny,
				Flags: FlagResetCounts, Instructions: insts},
			&FlowMod{Command: FlowDelete},
			&FlowRemoved{Match: match, Cookie: 1, Priority: 2, Reason: 1, TableID: 3, DurationSec: 3,
				DurationNsec: 4, IdleTimeout: 5, HardTimeout: 6, PacketCount: 7, ByteCount: 8},
			&FlowStatsRequest{Match: match, TableID: 0xff, OutPort: PortAny, OutGroup: PortAny, Cookie: 1, CookieMask: 1},
			&AggregateStatsRequest{TableID: 0xff, OutPort: PortAny, OutGroup: PortAny},
			&FlowStatsReply{Flows: []FlowStats{{TableID: 1, Match: match, Flags: 4, Instructions: insts}, {}}},
			&TableStatsReply{Tables: []TableStats{{TableID: 1, ActiveCount: 2, LookupCount: 3, MatchedCount: 4}}},
			&ErrorMsg{Err: Error{Code: ErrFlowBadPriority}}, &ErrorMsg{Err: Error{Code: ErrInstBadTableID}},
			&ErrorMsg{Err: Error{Code: ErrUnknown, Vendor: 0x1234, Type: 0xffff, RawCode: 5}},
			&RoleRequest{Role: RoleMaster, GenerationID: 7}, &RoleReply{Role: RoleEqual},
			&TableFeaturesRequest{}, &TableFeaturesRequest{Tables: []TableFeatures{tf}},
			&TableFeaturesReply{Flags: ReplyMore, Tables: []TableFeatures{tf, {TableID: 4}}},
		)
	}
	if v >= Version14 {
		// 1.4's importance, and the errors 1.4 made standard.
		ms = append(ms,
			&FlowMod{Match: match, Command: FlowAdd, Priority: 9, Importance: 77, BufferID: NoBuffer, Instructions: insts},
			&FlowStatsReply{Flows: []FlowStats{{TableID: 2, Match: match, Importance: 5, DurationSec: 1, PacketCount: 2}}},
			&ErrorMsg{Err: Error{Code: ErrInstDup}},
			&TableDescRequest{}, &TableDescReply{Flags: ReplyMore, Tables: []TableDesc{
				{TableID: 1, Props: []Prop{{Type: TablePropEviction, Data: []byte{0, 0, 0, 7}}}}, {TableID: 2, Config: 3}}},
			&PortStatus{Reason: 0, Desc: PortDesc{PortNo: PortLocal, Name: "br0", State: 1}},
		)
	}
	if v >= Version15 {
		// 1.5's OXS statistics, packet-out match and port desc request.
		ms = append(ms,
			&FlowStatsReply{Flows: []FlowStats{{TableID: 2, Match: match, Flags: 1, Importance: 5, DurationSec: 1,
				DurationNsec: 2, IdleAge: 3, PacketCount: 4, ByteCount: 5, Instructions: insts}}},
			&PacketOut{BufferID: NoBuffer, InPort: 3, Match: []Field{mustField(t, "NXM_NX_REG0", []byte{0, 0, 0, 1}, nil)},
				Actions: acts[:1], Data: []byte{1}},
			&PortDescRequest{PortNo: 7},
			&ErrorMsg{Err: Error{Code: ErrActBadSetMask}},
		)
	}
	return ms
}

// TestMessagesRoundTrip: decode(encode(m)) == m for every message kind in
// both versions, with the version and xid carried through.
func TestMessagesRoundTrip(t *testing.T) {
	for _, v := range []uint8{Version10, Version13, Version14, Version15} {
		for i, m := range messages(t, v) {
			b, err := Encode(v, uint32(1000+i), m)
			if err != nil {
				t.Errorf("%s: encode %T: %v", versionName(v), m, err)
				continue
			}
			h, got, err := Decode(b)
			if err != nil {
				t.Errorf("%s: decode %T: %v\n%x", versionName(v), m, err, b)
				continue
			}
			if h.Version != v || h.Xid != uint32(1000+i) || int(h.Length) != len(b) {
				t.Errorf("%s: %T: header %+v", versionName(v), m, h)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("%s: %T round trip\n got %+v\nwant %+v", versionName(v), m, got, m)
			}
		}
	}
}

// TestEncodeRepliesChains: a flow dump larger than one message is cut
// into messages of at most 64 KiB, all but the last flagged ReplyMore,
// and their entries put together are the dump.
func TestEncodeRepliesChains(t *testing.T) {
	for _, v := range []uint8{Version10, Version13, Version15} {
		var flows []FlowStats
		for i := 0; i < 3000; i++ {
			f := FlowStats{Priority: uint16(i), Match: []Field{mustField(t, "NXM_NX_REG0", []byte{0, 0, byte(i >> 8), byte(i)}, nil)}}
			if v == Version10 {
				f.Actions = []Action{Output{Port: uint32(i)}}
			} else {
				f.Instructions = []Instruction{ApplyActions{Actions: []Action{Output{Port: uint32(i)}}}}
			}
			flows = append(flows, f)
		}
		msgs, err := EncodeReplies(v, 7, &FlowStatsReply{NXM: true, Flows: flows})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) < 2 {
			t.Fatalf("%s: %d messages for 3000 flows", versionName(v), len(msgs))
		}
		var got []FlowStats
		for i, b := range msgs {
			if len(b) > MaxMessageLen {
				t.Fatalf("message of %d bytes", len(b))
			}
			h, m, err := Decode(b)
			if err != nil {
				t.Fatal(err)
			}
			r := m.(*FlowStatsReply)
			if more := r.Flags&ReplyMore != 0; more != (i < len(msgs)-1) || h.Xid != 7 {
				t.Errorf("message %d of %d: flags %d xid %d", i, len(msgs), r.Flags, h.Xid)
			}
			got = append(got, r.Flows...)
		}
		if !reflect.DeepEqual(got, flows) {
			t.Errorf("%s: chained flows differ", versionName(v))
		}
		// An empty dump is still one message.
		if msgs, _ := EncodeReplies(v, 1, &FlowStatsReply{}); len(msgs) != 1 {
			t.Errorf("empty dump: %d messages", len(msgs))
		}
	}
}

func TestReadMessage(t *testing.T) {
	a, _ := Encode(Version10, 1, &EchoRequest{Data: []byte("abc")})
	b, _ := Encode(Version13, 2, &BarrierRequest{})
	r := bytes.NewReader(append(append([]byte{}, a...), b...))
	buf := make([]byte, 0, MaxMessageLen)
	m1, err := ReadMessage(r, buf)
	if err != nil || !bytes.Equal(m1, a) {
		t.Fatalf("first: %x %v", m1, err)
	}
	m2, err := ReadMessage(r, buf)
	if err != nil || !bytes.Equal(m2, b) {
		t.Fatalf("second: %x %v", m2, err)
	}
	if _, err := ReadMessage(r, buf); err != io.EOF {
		t.Errorf("at end: %v", err)
	}
	if _, err := ReadMessage(bytes.NewReader(a[:len(a)-1]), buf); err != io.ErrUnexpectedEOF {
		t.Errorf("truncated: %v", err)
	}
	var e *Error
	if _, err := ReadMessage(bytes.NewReader([]byte{1, 2, 0, 4, 0, 0, 0, 0}), buf); !errors.As(err, &e) || e.Code != ErrBadLen {
		t.Errorf("length 4: %v", err)
	}
}

func TestEncodeTooLong(t *testing.T) {
	_, err := Encode(Version10, 1, &EchoRequest{Data: make([]byte, MaxMessageLen)})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrBadLen {
		t.Errorf("oversized echo: %v", err)
	}
}

func TestNegotiate(t *testing.T) {
	ours := VersionBitmap(Version10, Version13)
	for _, c := range []struct {
		peer  uint8
		hello *Hello
		want  uint8
		fail  bool
	}{
		{peer: 1, hello: &Hello{}, want: 1},                                 // ovs-ofctl, no -O
		{peer: 4, hello: &Hello{Versions: VersionBitmap(4)}, want: 4},       // ovs-ofctl -O OpenFlow13
		{peer: 6, hello: &Hello{}, want: 4},                                 // a 1.5 peer without bitmap
		{peer: 6, hello: &Hello{Versions: VersionBitmap(1, 4, 6)}, want: 4}, // bitmap: highest common
		{peer: 6, hello: &Hello{Versions: VersionBitmap(5, 6)}, fail: true}, // nothing in common
		{peer: 2, hello: &Hello{Versions: VersionBitmap(2, 3)}, fail: true}, // 1.1 and 1.2 only
		{peer: 3, hello: &Hello{}, want: 1},                                 // a 1.2 peer falls back to 1.0
	} {
		got, err := Negotiate(ours, Header{Version: c.peer}, c.hello)
		if c.fail {
			var e *Error
			if !errors.As(err, &e) || e.Code != ErrHelloIncompatible {
				t.Errorf("peer %d %+v: %d %v, want OFPHFC_INCOMPATIBLE", c.peer, c.hello, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("peer %d %+v: %d %v, want %d", c.peer, c.hello, got, err, c.want)
		}
	}
}

// TestErrorTable: each error has a name and no two share numbers in a
// version, so that decoding a reply names the error that was sent.
func TestErrorTable(t *testing.T) {
	for _, v := range []uint8{Version10, Version13} {
		seen := map[errEnc]ErrCode{}
		for c := ErrCode(1); c < numErrCodes; c++ {
			if errTable[c].name == "" {
				t.Errorf("error %d has no name", c)
			}
			e := c.enc(v)
			if !e.ok {
				continue
			}
			if d, dup := seen[e]; dup {
				t.Errorf("%s: %s and %s share %+v", versionName(v), d, c, e)
			}
			seen[e] = c
			b, _ := Encode(v, 1, &ErrorMsg{Err: Error{Code: c}})
			_, m, err := Decode(b)
			if err != nil || m.(*ErrorMsg).Err.Code != c {
				t.Errorf("%s: %s decodes as %v %v", versionName(v), c, m, err)
			}
		}
	}
	// An error 1.0 has no number for goes out as NXBRC_UNENCODABLE_ERROR,
	// as OVS sends it (captured: testdata/captures/of10_add_acts4.out).
	b, _ := Encode(Version10, 1, &ErrorMsg{Err: Error{Code: ErrInstBadTableID}})
	if _, m, _ := Decode(b); m.(*ErrorMsg).Err.Code != ErrUnencodable {
		t.Errorf("OFPBIC_BAD_TABLE_ID in 1.0: %v", m)
	}
}
