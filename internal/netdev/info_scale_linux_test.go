//go:build linux

package netdev

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPortInfoCostDoesNotGrowWithDevices checks that reading a port's
// Info asks the kernel about that device only: the time of a batch of
// Info calls on an internal and a system port must not grow when the
// namespace gains 1,024 more devices. net.InterfaceByName and
// InterfaceByIndex, used before, read the whole link table per call, so
// gvsd's reconciliation, which reads every port's Info, was quadratic
// in the number of ports (a transaction adding 1,024 internal ports to a
// bridge of 2,048 did not finish in six minutes). The bound is a ratio
// of the best of several batches, with a floor, not an absolute time.
func TestPortInfoCostDoesNotGrowWithDevices(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	tap, err := openIn(t, ns, Config{Name: uniqueName(t, "t"), Type: "internal"})
	if err != nil {
		t.Fatal(err)
	}
	host := uniqueName(t, "h")
	run(t, "ip", "-n", ns, "link", "add", host, "type", "veth", "peer", "name", uniqueName(t, "p"))
	sys, err := openIn(t, ns, Config{Name: host, Type: "system"})
	if err != nil {
		t.Fatal(err)
	}
	const calls = 50
	best := func() time.Duration {
		b := time.Duration(1 << 62)
		for range 5 {
			var d time.Duration
			inNetns(t, ns, func() {
				start := time.Now()
				for range calls {
					if tap.Info().Stale || sys.Info().Stale {
						t.Error("Info of a present device is stale")
					}
				}
				d = time.Since(start)
			})
			b = min(b, d)
		}
		return b
	}
	few := best()
	var batch strings.Builder
	prefix := uniqueName(t, "")[:9]
	for i := range 512 {
		fmt.Fprintf(&batch, "link add %sa%d type veth peer name %sb%d\n", prefix, i, prefix, i)
	}
	file := filepath.Join(t.TempDir(), "batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "ip", "-n", ns, "-batch", file)
	many := best()
	t.Logf("%d Info calls on two ports: %v with 4 devices, %v with 1,028", calls, few, many)
	if floor := 5 * time.Millisecond; many > 5*max(few, floor) {
		t.Errorf("Info cost grew with the number of devices: %v with 4, %v with 1,028 (more than 5 times)", few, many)
	}
}
