package openflow

import (
	"errors"
	"strings"
	"testing"

	"gvs/internal/flow"
)

// TestFieldTableNamesFlowFields: every field the wire table maps to an
// ovs-fields(7) name is a name internal/flow knows (as a field it
// matches, or one it names as not supported by gvs), so the channel's
// conversion by name cannot fall on a typo. The NXM/OXM numbers come
// from OVS's meta-flow.h.
func TestFieldTableNamesFlowFields(t *testing.T) {
	if len(fieldTable) < 100 {
		t.Fatalf("only %d fields", len(fieldTable))
	}
	// The check below must be able to fail: an unknown name is reported
	// as such.
	var fe *flow.Error
	if _, err := flow.ParseMatch("no_such_field=1"); !errors.As(err, &fe) || !strings.HasPrefix(fe.Msg, "unknown field") {
		t.Fatalf("flow reports an unknown field as %v", err)
	}
	seen := map[string]bool{}
	for _, fi := range fieldTable {
		if seen[fi.Name] {
			t.Errorf("%s listed twice", fi.Name)
		}
		seen[fi.Name] = true
		if fi.FlowName == "cookie" {
			continue // NXM_NX_COOKIE matches the flow's cookie, not the packet
		}
		_, err := flow.ParseMatch(fi.FlowName + "=1")
		var fe *flow.Error
		if errors.As(err, &fe) && strings.HasPrefix(fe.Msg, "unknown field") {
			t.Errorf("%s maps to %q, which internal/flow does not know: %v", fi.Name, fi.FlowName, err)
		}
		if got, ok := LookupField(fi.Class, fi.Field, fi.Experimenter); !ok || got.Name != fi.Name {
			t.Errorf("%s: lookup by number gives %v", fi.Name, got)
		}
	}
	// A few numbers checked against ovs-ofctl's own output (captures).
	for name, h := range map[string]uint32{
		"NXM_NX_REG0": 0x00010004, "NXM_NX_REG1": 0x00010204, "NXM_OF_ETH_SRC": 0x00000406,
		"NXM_OF_ETH_DST": 0x00000206, "OXM_OF_IN_PORT": 0x80000004,
	} {
		if fi, _ := FieldByName(name); fi == nil || fi.Header() != h {
			t.Errorf("%s header %v, want 0x%08x", name, fi, h)
		}
	}
}
