package vswitchd

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestMirrorFilterLengthBounded: a Mirror filter is flow text, whose
// other entry points (ovs-appctl, span rules) take at most
// flow.MaxFlowText bytes. A database client's filter of megabytes was
// parsed at every reconfiguration and, refused, quoted whole in the
// transaction error (4 MiB of control bytes made a 16 MiB error). A
// filter that long is refused with a short error.
func TestMirrorFilterLengthBounded(t *testing.T) {
	sw := newSwitchWithBridge(t, `[]`)
	for _, filter := range []string{strings.Repeat("\x01", 4<<20), strings.Repeat("ip,", 1<<20) + "ip"} {
		text, _ := json.Marshal(filter)
		start := time.Now()
		err := transact(t, sw.db, `[{"op":"insert","table":"Mirror","uuid-name":"m","row":{"name":"lm","filter":`+string(text)+`}},
			{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["mirrors","insert",["set",[["named-uuid","m"]]]]]}]`)
		took := time.Since(start)
		if err == nil {
			t.Errorf("a filter of %d bytes was accepted (%v)", len(filter), took)
			continue
		}
		if len(err.Error()) > 4096 || !strings.Contains(err.Error(), "too long") {
			t.Errorf("a filter of %d bytes: error of %d bytes (%.200s...), want a short one saying it is too long", len(filter), len(err.Error()), err.Error())
		}
	}
}
