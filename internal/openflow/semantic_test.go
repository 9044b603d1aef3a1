package openflow

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// firstFlowMod finds the flow mod ovs-ofctl sent in a capture.
func firstFlowMod(t *testing.T, file string) *FlowMod {
	t.Helper()
	for _, c := range loadCaptures(t) {
		if c.file != file || c.dir != "c2s" {
			continue
		}
		_, m, err := Decode(c.msg)
		if err != nil {
			t.Fatalf("%s:%d: %v", file, c.line, err)
		}
		if fm, ok := m.(*FlowMod); ok {
			return fm
		}
	}
	t.Fatalf("%s: no flow mod", file)
	return nil
}

func mustField(t *testing.T, name string, value, mask []byte) Field {
	t.Helper()
	f, err := NewField(name, value, mask)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func header(t *testing.T, name string) uint32 {
	fi, ok := FieldByName(name)
	if !ok {
		t.Fatalf("no field %s", name)
	}
	return fi.Header()
}

// TestDecodeOfctlFlowMod checks the meaning, not only the bytes, of what
// ovs-ofctl 3.1 sends for
//
//	add-flow "priority=11,udp,tp_src=0x1000/0xf000,actions=mod_tp_src:99,
//	  mod_tp_dst:100,resubmit:3,resubmit(,2),set_tunnel:0x55,
//	  load:0x1->NXM_NX_REG0[0..3],move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],
//	  note:01.02.03,output:NXM_NX_REG1[0..15],enqueue:1:2,controller:100"
//
// with no -O (NXT_FLOW_MOD) and with -O OpenFlow13.
func TestDecodeOfctlFlowMod(t *testing.T) {
	common := func(fm *FlowMod) {
		if fm.Command != FlowAdd || fm.Priority != 11 || fm.BufferID != NoBuffer || fm.OutPort != PortAny {
			t.Errorf("flow mod header: %+v", fm)
		}
	}
	fm := firstFlowMod(t, "of10_add_acts2.hex")
	common(fm)
	if !fm.NXM {
		t.Error("ovs-ofctl's 1.0 flow mod should be NXT_FLOW_MOD")
	}
	wantMatch := []Field{
		mustField(t, "NXM_OF_ETH_TYPE", []byte{0x08, 0x00}, nil),
		mustField(t, "NXM_OF_IP_PROTO", []byte{17}, nil),
		mustField(t, "NXM_OF_UDP_SRC", []byte{0x10, 0}, []byte{0xf0, 0}),
	}
	if !equalFields(fm.Match, wantMatch) {
		t.Errorf("match %+v, want %+v", fm.Match, wantMatch)
	}
	reg0 := header(t, "NXM_NX_REG0")
	reg1 := header(t, "NXM_NX_REG1")
	want10 := []Action{
		SetTpPort{Port: 99}, SetTpPort{Dst: true, Port: 100},
		Resubmit{InPort: 3, Table: 255, WithTable: true},
		Resubmit{InPort: PortInPort, Table: 2, WithTable: true},
		SetTunnel{ID: 0x55},
		RegLoad{OfsNbits: 0<<6 | 3, Dst: reg0, Value: 1},
		RegMove{NBits: 48, Src: header(t, "NXM_OF_ETH_SRC"), Dst: header(t, "NXM_OF_ETH_DST")},
		Note{Data: []byte{1, 2, 3, 0, 0, 0}},
		OutputReg{OfsNbits: 15, Src: reg1, MaxLen: 0xffff},
		Enqueue{Port: 1, QueueID: 2},
		Output{Port: PortController, MaxLen: 100},
	}
	if !reflect.DeepEqual(fm.Actions, want10) {
		t.Errorf("1.0 actions\n got %+v\nwant %+v", fm.Actions, want10)
	}

	fm = firstFlowMod(t, "of13_add_acts2.hex")
	common(fm)
	want13 := []Instruction{ApplyActions{Actions: []Action{
		SetField{mustField(t, "OXM_OF_UDP_SRC", []byte{0, 99}, nil)},
		SetField{mustField(t, "OXM_OF_UDP_DST", []byte{0, 100}, nil)},
		want10[2], want10[3],
		SetField{mustField(t, "OXM_OF_TUNNEL_ID", []byte{0, 0, 0, 0, 0, 0, 0, 0x55}, nil)},
		want10[5], want10[6], want10[7], want10[8],
		SetQueue{QueueID: 2}, Output{Port: 1, MaxLen: 0xffff}, PopQueue{},
		want10[10],
	}}}
	if !reflect.DeepEqual(fm.Instructions, want13) {
		t.Errorf("1.3 instructions\n got %+v\nwant %+v", fm.Instructions, want13)
	}
}

// TestDecodeOfctlCT checks ct(commit,zone=5,table=3,nat(src=10.0.0.1-
// 10.0.0.2:100-200)),ct_clear as ovs-ofctl encodes it.
func TestDecodeOfctlCT(t *testing.T) {
	for _, file := range []string{"of10_add_ct.hex", "of13_add_ct.hex"} {
		fm := firstFlowMod(t, file)
		acts := fm.Actions
		if len(fm.Instructions) == 1 {
			acts = fm.Instructions[0].(ApplyActions).Actions
		}
		want := []Action{
			CT{Flags: 1, Zone: 5, RecircTable: 3, Actions: []Action{NAT{
				Flags: 1, RangePresent: NATRangeIPv4Min | NATRangeIPv4Max | NATRangeProtoMin | NATRangeProtoMax,
				IPv4Min: [4]byte{10, 0, 0, 1}, IPv4Max: [4]byte{10, 0, 0, 2}, ProtoMin: 100, ProtoMax: 200}}},
			CTClear{},
		}
		if !reflect.DeepEqual(acts, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", file, acts, want)
		}
	}
}

// TestDecodeOVSAsync checks the asynchronous messages ovs-vswitchd 3.1
// sent on a connection with miss_send_len set (testdata/captures/async_*:
// packet-out to CONTROLLER, delete-strict of a send_flow_rem flow with
// cookie 0xc0ffee and priority 1234, and ovs-vsctl add-port ofwp3).
func TestDecodeOVSAsync(t *testing.T) {
	pkt := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 1, 8, 0}
	seen := map[string]int{}
	for _, c := range loadCaptures(t) {
		if !strings.HasPrefix(c.file, "async_") || c.dir != "s2c" {
			continue
		}
		_, m, err := Decode(c.msg)
		if err != nil {
			t.Fatalf("%s:%d: %v", c.file, c.line, err)
		}
		switch m := m.(type) {
		case *PacketIn:
			seen["packet-in"]++
			inPort := m.InPort
			if c.msg[0] == Version13 {
				want := []Field{mustField(t, "OXM_OF_IN_PORT", []byte{0xff, 0xff, 0xff, 0xfe}, nil)}
				if !equalFields(m.Match, want) {
					t.Errorf("%s: packet-in match %+v", c.file, m.Match)
				}
				inPort = PortLocal
			}
			if inPort != PortLocal || m.Reason != 1 || m.BufferID != NoBuffer || int(m.TotalLen) != len(m.Data) ||
				!bytes.HasPrefix(m.Data, pkt) {
				t.Errorf("%s: packet-in %+v", c.file, m)
			}
		case *FlowRemoved:
			seen["flow-removed"]++
			if m.Cookie != 0xc0ffee || m.Priority != 1234 || m.Reason != 2 || m.NXM != strings.Contains(c.file, "nxmtrue") {
				t.Errorf("%s: flow removed %+v", c.file, m)
			}
		case *PortStatus:
			seen["port-status"]++
			if m.Reason != 0 || m.Desc.Name != "ofwp3" || m.Desc.PortNo != 3 {
				t.Errorf("%s: port status %+v", c.file, m)
			}
		}
	}
	if seen["packet-in"] != 3 || seen["flow-removed"] != 3 || seen["port-status"] != 2 {
		t.Errorf("saw %v", seen)
	}
}
