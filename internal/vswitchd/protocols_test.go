package vswitchd

import (
	"testing"

	"gvs/internal/openflow"
)

// TestProtocolVersions: an empty Bridge.protocols allows 1.0, 1.3, 1.4
// and 1.5 (OVS's default allows 1.0 to 1.5; gvs does not speak 1.1 and
// 1.2), and each name allows its version alone.
func TestProtocolVersions(t *testing.T) {
	bm := openflow.VersionBitmap
	for _, c := range []struct {
		in   []string
		want uint32
	}{
		{nil, bm(openflow.Version10, openflow.Version13, openflow.Version14, openflow.Version15)},
		{[]string{"OpenFlow14"}, bm(openflow.Version14)},
		{[]string{"OpenFlow10", "OpenFlow15"}, bm(openflow.Version10, openflow.Version15)},
		{[]string{"OpenFlow11", "OpenFlow12"}, 0},
	} {
		if got := protocolVersions(c.in); got != c.want {
			t.Errorf("protocols %q: bitmap %#x, want %#x", c.in, got, c.want)
		}
	}
}
