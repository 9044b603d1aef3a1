package vswitchd

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gvs/internal/netdev"
)

// addPortsReconcileTime adds n memory ports to br0 in one transaction and
// returns how long the reconciliation that applies it takes (the
// reconciler's pass and the Interface status written back). run keeps
// the ports' names apart from those of other runs (memory ports are
// registered by name until the test ends).
func addPortsReconcileTime(t *testing.T, run string, n int) time.Duration {
	sw := newSwitchWithBridge(t, `[]`)
	sw.reconcile()
	var b strings.Builder
	b.WriteString("[")
	var ports []string
	for i := range n {
		fmt.Fprintf(&b, `{"op":"insert","table":"Interface","uuid-name":"i%d","row":{"name":"%s%d","type":"memory","options":["map",[["depth","1"]]]}},`, i, run, i)
		fmt.Fprintf(&b, `{"op":"insert","table":"Port","uuid-name":"p%d","row":{"name":"%s%d","interfaces":["named-uuid","i%d"]}},`, i, run, i, i)
		ports = append(ports, fmt.Sprintf(`["named-uuid","p%d"]`, i))
	}
	fmt.Fprintf(&b, `{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["set",[%s]]]]}]`, strings.Join(ports, ","))
	if err := transact(t, sw.db, b.String()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sw.reconcile()
	d := time.Since(start)
	open := 0
	for _, ifc := range sw.state.ifaces {
		if ifc.dev != nil {
			open++
		}
	}
	if open != n {
		t.Fatalf("%d of %d ports set up", open, n)
	}
	return d
}

// TestAddPortsReconcileCostDoesNotGrowWithPorts: the reconciliation of
// one transaction adding 2,048 ports, up to the Interface status written
// back, must cost about as much a port as one adding 64. On the old
// database, whose unique-index check compared each row the status
// transaction wrote with every other (TestAddPortsCostDoesNotGrowWithPorts
// in internal/ovsdb), it cost 230 µs a port with 64 and 875 µs with
// 2,048; now 180 and 155 µs.
func TestAddPortsReconcileCostDoesNotGrowWithPorts(t *testing.T) {
	const small, large = 64, 2048
	best := func(n int) time.Duration {
		return min(addPortsReconcileTime(t, fmt.Sprintf("a%d_", n), n), addPortsReconcileTime(t, fmt.Sprintf("b%d_", n), n))
	}
	ts, tl := best(small), best(large)
	perSmall, perLarge := ts/small, tl/large
	t.Logf("per port: %v with %d (%v), %v with %d (%v)", perSmall, small, ts, perLarge, large, tl)
	// The floor keeps a loaded machine from failing it: the old code cost
	// 875-901 µs a port with 2,048, past 2.5 times the floor.
	if perLarge > 5*max(perSmall, 200*time.Microsecond)/2 {
		t.Errorf("the reconciliation's cost per port grew with the number of ports: %v a port with %d (%v), %v with %d (%v)",
			perSmall, small, ts, perLarge, large, tl)
	}
}

// infoCounted is a memory port that counts the reads of its Info.
type infoCounted struct {
	*netdev.Memory
	reads *atomic.Int64
}

func (d infoCounted) Info() netdev.Info {
	d.reads.Add(1)
	return d.Memory.Info()
}

func (d infoCounted) Type() string { return "infocount" }

var infoReads atomic.Int64

func init() {
	netdev.Register("infocount", func(cfg netdev.Config) (netdev.Netdev, error) {
		return infoCounted{netdev.NewMemory(cfg.Name, 1), &infoReads}, nil
	})
}

// TestReconcileReadsEachDeviceInfoOnce: a reconciliation read every
// device's Info twice, for its bridge's OpenFlow channel and for the
// status written back, each read a few system calls and an rtnetlink
// request for an internal port: with 1,024 ports, a third of the time
// of the reconciliation that added them. It reads each once. On the old
// code: "a reconciliation of 32 ports read Info 64 times".
func TestReconcileReadsEachDeviceInfoOnce(t *testing.T) {
	sw := newSwitchWithBridge(t, `[]`)
	sw.SetRunDir(t.TempDir())
	const n = 32
	var b strings.Builder
	b.WriteString("[")
	var ports []string
	for i := range n {
		fmt.Fprintf(&b, `{"op":"insert","table":"Interface","uuid-name":"i%d","row":{"name":"ic%d","type":"infocount"}},`, i, i)
		fmt.Fprintf(&b, `{"op":"insert","table":"Port","uuid-name":"p%d","row":{"name":"ic%d","interfaces":["named-uuid","i%d"]}},`, i, i, i)
		ports = append(ports, fmt.Sprintf(`["named-uuid","p%d"]`, i))
	}
	fmt.Fprintf(&b, `{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["set",[%s]]]]}]`, strings.Join(ports, ","))
	if err := transact(t, sw.db, b.String()); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		infoReads.Store(0)
		sw.reconcile()
		if got := infoReads.Load(); got != n {
			t.Errorf("reconciliation %d: a reconciliation of %d ports read Info %d times", round+1, n, got)
		}
	}
	snap := sw.db.Snapshot(configTables...)
	for u := range snap.Tables["Interface"] {
		name, _ := get(snap, "Interface", u, "name").Str()
		if mac, _ := get(snap, "Interface", u, "mac_in_use").Str(); strings.HasPrefix(name, "ic") && mac == "" {
			t.Errorf("%s: no mac_in_use written back", name)
		}
	}
}
