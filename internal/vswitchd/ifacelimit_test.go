package vswitchd

import (
	"fmt"
	"strings"
	"testing"

	"gvs/internal/ovsdb"
)

// TestInterfacesBounded: each interface costs a port thread and its
// buffers (megabytes), so a database client adding ports without end
// must not grow gvsd without end. Past the limit an interface is not
// set up and its Interface.error says why; once another is deleted, it
// is set up at the next reconfiguration.
func TestInterfacesBounded(t *testing.T) {
	defer func(n int) { maxInterfaces = n }(maxInterfaces)
	maxInterfaces = 3
	sw := newSwitchWithBridge(t, `[]`)
	for i := range 5 {
		err := transact(t, sw.db, fmt.Sprintf(`[
			{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"lim%d","type":"memory","options":["map",[["depth","1"]]]}},
			{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"lim%d","interfaces":["named-uuid","i"]}},
			{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["set",[["named-uuid","p"]]]]]}]`, i, i))
		if err != nil {
			t.Fatal(err)
		}
	}
	sw.reconcile()
	count := func() (open int, refused []string) {
		snap := sw.db.Snapshot(configTables...)
		for u := range snap.Tables["Interface"] {
			name, _ := get(snap, "Interface", u, "name").Str()
			e, _ := get(snap, "Interface", u, "error").Str()
			switch {
			case e == "":
				open++
			case strings.Contains(e, "too many interfaces: gvsd sets up at most 3"):
				refused = append(refused, name)
			default:
				t.Errorf("%s: error %q", name, e)
			}
		}
		return open, refused
	}
	if open, refused := count(); open != 3 || len(refused) != 2 {
		t.Fatalf("%d interfaces set up, %v refused; want 3 and 2", open, refused)
	}
	devs := 0
	for _, ifc := range sw.state.ifaces {
		if ifc.dev != nil {
			devs++
		}
	}
	if devs != 3 {
		t.Errorf("%d devices open, want 3", devs)
	}
	err := transact(t, sw.db, `[{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],
		"mutations":[["ports","delete",["set",[["uuid","`+portUUID(t, sw.db.(*ovsdb.DB), "lim0")+`"]]]]]}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if open, refused := count(); open != 3 || len(refused) != 1 {
		t.Fatalf("after deleting one: %d interfaces set up, %v refused; want 3 and 1", open, refused)
	}
}
