package connmgr

import (
	"reflect"
	"testing"

	"gvs/internal/flow"
	"gvs/internal/openflow"
)

// TestLearnWireRoundTrip: the learn actions of OVS's tutorials and of
// OVS 3.1's golden dump survive the trip to nx_action_learn and back,
// through the codec, and print as ovs-ofctl prints them.
func TestLearnWireRoundTrip(t *testing.T) {
	for _, text := range []string{
		"learn(table=10,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15])",
		"learn(table=20,idle_timeout=10,hard_timeout=300,fin_idle_timeout=3,fin_hard_timeout=4,priority=5,send_flow_rem,delete_learned,cookie=0x99,eth_type=0x800,NXM_OF_IP_SRC[]=NXM_OF_IP_DST[],nw_proto=6,output:NXM_OF_IN_PORT[])",
		"learn(table=1,load:0x2a->NXM_NX_REG1[])",
	} {
		acts, err := flow.ParseActions(text, nil)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		for _, v := range []uint8{openflow.Version10, openflow.Version13} {
			wire, _ := actionsToWire(acts, v)
			if len(wire) != 1 {
				t.Fatalf("%s: no wire encoding", text)
			}
			fm := &openflow.FlowMod{BufferID: openflow.NoBuffer, OutPort: openflow.PortAny, OutGroup: 0xffffffff, NXM: true}
			if v == openflow.Version10 {
				fm.Actions = wire
			} else {
				fm.Instructions = []openflow.Instruction{openflow.ApplyActions{Actions: wire}}
			}
			b, err := openflow.Encode(v, 1, fm)
			if err != nil {
				t.Fatalf("%s: encode: %v", text, err)
			}
			_, m, err := openflow.Decode(b)
			if err != nil {
				t.Fatalf("%s: decode: %v", text, err)
			}
			var back []flow.Action
			if v == openflow.Version10 {
				back, err = actionsFromWire(m.(*openflow.FlowMod).Actions, v)
			} else {
				back, err = instructionsFromWire(m.(*openflow.FlowMod).Instructions)
			}
			if err != nil {
				t.Fatalf("%s: from the wire: %v", text, err)
			}
			if !reflect.DeepEqual(back, acts) {
				t.Errorf("%s (version %d): came back as %s", text, v, flow.FormatActions(back, flow.FormatOptions{}))
			}
		}
	}
}

// TestLearnWireErrors: malformed learn bodies are OpenFlow errors.
func TestLearnWireErrors(t *testing.T) {
	good, _ := learnToWire(flow.Learn{Table: 1, Specs: []flow.LearnSpec{{Kind: flow.LearnLoad, Src: flow.Subfield{Field: "in_port", Bits: 16}, Dst: flow.Subfield{Field: "reg0", Bits: 16}}}})
	body := good.(*openflow.Learn).Body
	for name, b := range map[string][]byte{
		"short":         body[:10],
		"truncated":     body[:len(body)-3],
		"bad header":    append(append([]byte{}, body[:22]...), 0xc0, 0x10),
		"bad flags":     append(append(append([]byte{}, body[:14]...), 0, 8), body[16:]...),
		"unknown nxm":   append(append([]byte{}, body[:22]...), 0x08, 0x10, 0xff, 0xff, 0x00, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
		"trailing junk": append(append([]byte{}, body...), 0, 0, 1),
	} {
		if _, err := learnFromWire(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
