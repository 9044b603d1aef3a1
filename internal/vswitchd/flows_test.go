package vswitchd

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"gvs/internal/netdev"
)

// flowSwitch is a switch with bridge br0 of memory ports fl1 and fl2.
func flowSwitch(t *testing.T) (*Switch, *netdev.Memory, *netdev.Memory) {
	t.Helper()
	db := newMemDB(t)
	sw := New(db)
	t.Cleanup(func() { sw.state.close(true) })
	port := func(name string) string {
		return `{"op":"insert","table":"Interface","uuid-name":"i` + name + `","row":{"name":"` + name + `","type":"memory"}},
			{"op":"insert","table":"Port","uuid-name":"` + name + `","row":{"name":"` + name + `","interfaces":["named-uuid","i` + name + `"]}},`
	}
	err := transact(t, db, `[`+port("fl1")+port("fl2")+`
		{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"br0",
			"ports":["set",[["named-uuid","fl1"],["named-uuid","fl2"]]]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	return sw, sw.state.ifaces["fl1"].dev.(*netdev.Memory), sw.state.ifaces["fl2"].dev.(*netdev.Memory)
}

// send injects a broadcast frame into in and waits for it on out.
func send(t *testing.T, in, out *netdev.Memory) {
	t.Helper()
	f := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5}, make([]byte, 46)...)
	if err := in.Inject(f); err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Next(2 * time.Second); !ok {
		t.Fatal("frame not forwarded")
	}
}

// TestDumpAndDeleteCachedFlows checks dpif/dump-flows, dpctl/dump-flows
// and dpctl/del-flows on a bridge that forwarded packets, and
// other_config:flow-limit: checked at commit, 0 caches nothing.
func TestDumpAndDeleteCachedFlows(t *testing.T) {
	sw, p1, p2 := flowSwitch(t)
	send(t, p1, p2) // learns the source: the flow it made is stale
	send(t, p1, p2)
	send(t, p1, p2)
	out, err := sw.dpifDumpFlows([]string{"br0"})
	if err != nil {
		t.Fatal(err)
	}
	// nw_frag: in the default fragment mode (normal) whether a packet is
	// a fragment decides how the tables see it, so every cached
	// translation depends on it (ofproto's TestFragMaskProperty).
	line := regexp.MustCompile(`^recirc_id\(0\),in_port\(fl1\),vlan_tci=0x0000,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff,nw_frag=no, ` +
		`packets:2, bytes:120, used:\d+\.\d{3}s, actions:fl2\n$`)
	if !line.MatchString(out) {
		t.Fatalf("dpif/dump-flows br0:\n%s", out)
	}
	if out, _ := sw.dpctlDumpFlows(nil); !strings.Contains(out, "in_port(1)") || !strings.Contains(out, "actions:2\n") {
		t.Errorf("dpctl/dump-flows prints port numbers:\n%s", out)
	}
	if _, err := sw.dpifDumpFlows([]string{"nobr"}); err == nil {
		t.Error("dpif/dump-flows of a bridge that does not exist succeeded")
	}
	if _, err := sw.dpctlDumpFlows([]string{"system@nope"}); err == nil {
		t.Error("dpctl/dump-flows of a datapath that does not exist succeeded")
	}
	if _, err := sw.dpctlDelFlows(nil); err != nil {
		t.Fatal(err)
	}
	if out, _ := sw.dpctlDumpFlows(nil); out != "" {
		t.Fatalf("flows left after dpctl/del-flows:\n%s", out)
	}

	setLimit := func(v string) error {
		return transact(t, sw.db, `[{"op":"mutate","table":"Open_vSwitch","where":[],
			"mutations":[["other_config","insert",["map",[["flow-limit","`+v+`"]]]]]}]`)
	}
	for _, bad := range []string{"-1", "1000001", "many"} {
		if err := setLimit(bad); err == nil || !strings.Contains(err.Error(), "flow-limit") {
			t.Errorf("flow-limit=%s: err = %v, want a constraint violation", bad, err)
		}
	}
	if err := setLimit("0"); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	send(t, p1, p2)
	if out, _ := sw.dpctlDumpFlows(nil); out != "" {
		t.Fatalf("flows cached with flow-limit=0:\n%s", out)
	}
}

// other_config:gvs-busy-poll-us is checked at commit, with the key and
// its range in the error, and reaches the datapath; removing it turns
// spinning off.
func TestBusyPollOption(t *testing.T) {
	sw, _, _ := flowSwitch(t)
	set := func(v string) error {
		return transact(t, sw.db, `[{"op":"mutate","table":"Open_vSwitch","where":[],
			"mutations":[["other_config","insert",["map",[["gvs-busy-poll-us","`+v+`"]]]]]}]`)
	}
	for _, bad := range []string{"-1", "1001", "fast", "1.5", ""} {
		err := set(bad)
		if err == nil || !strings.Contains(err.Error(), "gvs-busy-poll-us") || !strings.Contains(err.Error(), "from 0 to 1000") {
			t.Errorf("gvs-busy-poll-us=%q: err = %v, want a constraint violation naming the key and range", bad, err)
		}
	}
	if err := set("50"); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if got := sw.state.dp.BusyPoll(); got != 50*time.Microsecond {
		t.Fatalf("datapath busy-poll time %v, want 50µs", got)
	}
	if err := transact(t, sw.db, `[{"op":"mutate","table":"Open_vSwitch","where":[],
		"mutations":[["other_config","delete",["set",["gvs-busy-poll-us"]]]]}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if got := sw.state.dp.BusyPoll(); got != 0 {
		t.Fatalf("busy-poll time %v after the key was removed, want 0", got)
	}
}
