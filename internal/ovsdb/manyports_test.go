package ovsdb_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gvs/internal/ovsdb"
)

// addPortsOps is one ovs-vsctl transaction adding n internal ports,
// named from first on, to bridge br0: an Interface and a Port insert
// each, and one mutation of the bridge's ports (as `ovs-vsctl -- add-port
// br0 mN -- set interface mN type=internal ...` sends).
func addPortsOps(t *testing.T, first, n int) []any {
	var b strings.Builder
	b.WriteString("[")
	var ports []string
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, `{"op":"insert","table":"Interface","uuid-name":"i%d","row":{"name":"m%d","type":"internal"}},`, i, i)
		fmt.Fprintf(&b, `{"op":"insert","table":"Port","uuid-name":"p%d","row":{"name":"m%d","interfaces":["named-uuid","i%d"]}},`, i, i, i)
		ports = append(ports, fmt.Sprintf(`["named-uuid","p%d"]`, i))
	}
	fmt.Fprintf(&b, `{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["set",[%s]]]]},`, strings.Join(ports, ","))
	b.WriteString(`{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["next_cfg","+=",1]]}]`)
	return vsOps(t, b.String())
}

// addPortsTime is how long one transaction adding n ports to a bridge
// that has n ports already takes, the best of three databases.
func addPortsTime(t *testing.T, n int) time.Duration {
	best := time.Duration(1 << 62)
	for range 3 {
		db := ovsdb.NewDB(vsSchema(t), nil)
		ovs := vsUUID(t, vsMustTx(t, db, `[{"op":"insert","table":"Open_vSwitch","row":{}}]`)[0])
		vsMustTx(t, db, fmt.Sprintf(`[
			{"op":"insert","table":"Interface","uuid-name":"i0","row":{"name":"br0","type":"internal"}},
			{"op":"insert","table":"Port","uuid-name":"p0","row":{"name":"br0","interfaces":["named-uuid","i0"]}},
			{"op":"insert","table":"Bridge","uuid-name":"b0","row":{"name":"br0","ports":["named-uuid","p0"]}},
			{"op":"mutate","table":"Open_vSwitch","where":[["_uuid","==",["uuid",%q]]],"mutations":[["bridges","insert",["set",[["named-uuid","b0"]]]]]}]`, ovs))
		for _, r := range db.Transact(addPortsOps(t, 1000000, n)) {
			if tag := vsTag(r); tag != "" {
				t.Fatalf("adding the first %d ports: %v", n, r)
			}
		}
		ops := addPortsOps(t, 0, n)
		start := time.Now()
		res := db.Transact(ops)
		d := time.Since(start)
		for _, r := range res {
			if tag := vsTag(r); tag != "" {
				t.Fatalf("adding %d ports: %v", n, r)
			}
		}
		best = min(best, d)
	}
	return best
}

// TestAddPortsCostDoesNotGrowWithPorts: one transaction adding 1,024
// internal ports (docs/PERFORMANCE.md, "Adding thousands of ports")
// held the database thread for seconds; the cost per added port must
// not grow with the number of ports, in the transaction and in the
// bridge.
func TestAddPortsCostDoesNotGrowWithPorts(t *testing.T) {
	const small, large = 64, 2048
	ts, tl := addPortsTime(t, small), addPortsTime(t, large)
	perSmall, perLarge := ts/small, tl/large
	t.Logf("per port: %v with %d, %v with %d", perSmall, small, perLarge, large)
	if perLarge > 4*max(perSmall, 20*time.Microsecond) {
		t.Errorf("the cost per port grew with the number of ports: %v a port with %d (%v), %v with %d (%v)",
			perSmall, small, ts, perLarge, large, tl)
	}
}
