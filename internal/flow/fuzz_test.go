package flow

import (
	"reflect"
	"testing"

	"gvs/internal/packet"
)

// FuzzParseMatch: no input makes the parser panic; whatever parses prints
// as text that parses back to the same match, and can be matched against.
func FuzzParseMatch(f *testing.F) {
	for _, c := range ofctlCases {
		f.Add(c, false)
	}
	f.Add("ct_state=+trk,+new,ip,ct_nw_src=10.0.0.1", true)
	f.Add("in_port=eth0,tcp", false)
	f.Add("tcp,tp_dst(80),nw_src:1.2.3.4", false)
	var key packet.Key
	if err := packet.Parse(testFrames["tcp80"], 1, &key, nil); err != nil {
		f.Fatal(err)
	}
	byName := func(s string) (uint32, bool) { return uint32(len(s)), s != "" && s[0] == 'e' }
	f.Fuzz(func(t *testing.T, s string, lenient bool) {
		m, err := ParseMatchWith(s, ParseOptions{LenientCtState: lenient, PortByName: byName})
		if err != nil {
			if err.Error() == "" {
				t.Errorf("ParseMatch(%q): empty error message", s)
			}
			return
		}
		m.Matches(&key)
		checkRoundTrip(t, s, m)
	})
}

// FuzzParseFlow: no flow line makes the parser panic; whatever parses
// prints, in gvs's form and in OpenFlow 1.0 form, with and without port
// names and statistics, as text that parses back to the same flow.
func FuzzParseFlow(f *testing.F) {
	for _, c := range ofctlActionCases {
		f.Add(c.flow, false)
	}
	for _, c := range extraFlows {
		f.Add(c, true)
	}
	f.Add("table=0, priority=50, ct_state=+trk,+new, tcp, in_port=veth_l0, actions=ct(commit),veth_r0", true)
	f.Add("priority=10,conj_id=4294967295,tcp,actions=NORMAL", false)
	f.Add("priority=10,ip,nw_src=10.0.0.2,actions=conjunction(1,1/2),note:aa,conjunction(2,3/3)", false)
	f.Fuzz(func(t *testing.T, s string, lenient bool) {
		fl, err := ParseFlow(s, ParseOptions{LenientCtState: lenient, PortByName: goldenByName})
		if err != nil {
			if err.Error() == "" {
				t.Errorf("ParseFlow(%q): empty error message", s)
			}
			return
		}
		fl.FormatStats(Stats{IdleAge: 1, HardAge: 2}, FormatOptions{PortName: goldenName})
		checkFlowRoundTrip(t, s, fl)
		checkFlowRoundTrip(t, s+" (OpenFlow 1.0 form)", fl.OpenFlow10())
	})
}

// FuzzParseActions: no action text makes the parser panic; whatever
// parses prints as text that parses back to the same actions.
func FuzzParseActions(f *testing.F) {
	for _, c := range ofctlActionCases {
		_, acts, _ := cutActions(c.flow)
		f.Add(acts)
	}
	f.Add("ct(commit,nat(src=[fe80::1]-[fe80::9]:5,persistent),exec(set_field:1->ct_mark))")
	f.Add("learn(table=1,NXM_OF_VLAN_TCI[0..11]=0x5,load:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15])")
	f.Fuzz(func(t *testing.T, s string) {
		acts, err := ParseActions(s, goldenByName)
		if err != nil {
			if err.Error() == "" {
				t.Errorf("ParseActions(%q): empty error message", s)
			}
			return
		}
		for _, form := range [][]Action{acts, OpenFlow10Actions(acts)} {
			for _, o := range []FormatOptions{{}, {PortName: goldenName}} {
				text := FormatActions(form, o)
				back, err := ParseActions(text, goldenByName)
				if err != nil {
					t.Errorf("ParseActions(%q) prints as %q, which does not parse: %v", s, text, err)
					continue
				}
				if !reflect.DeepEqual(back, form) {
					t.Errorf("ParseActions(%q) prints as %q, which parses to %#v, not %#v", s, text, back, form)
				}
			}
		}
	})
}
