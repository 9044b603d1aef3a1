package flow

import (
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
