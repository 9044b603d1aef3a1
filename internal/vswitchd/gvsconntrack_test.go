package vswitchd

import (
	"encoding/json"
	"strings"
	"testing"

	"gvs/internal/conntrack"
	"gvs/internal/flow"
)

// TestGvsConntrackCommand: gvs/conntrack lists the committed
// connections as JSON, filtered by zone, address, port, protocol and
// state, and refuses a filter it cannot read.
func TestGvsConntrackCommand(t *testing.T) {
	sw, _, _ := flowSwitch(t)
	f, err := flow.ParseFlow("priority=100,udp,in_port=1,actions=ct(commit,zone=5,exec(set_field:7->ct_mark)),output:2", flow.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.state.bridges["br0"].Tables.Add(f); err != nil {
		t.Fatal(err)
	}
	zoneTimeoutLeft(t, sw, 1000)
	zoneTimeoutLeft(t, sw, 1001)
	get := func(args ...string) conntrack.Report {
		t.Helper()
		out, err := sw.gvsConntrack(args)
		if err != nil {
			t.Fatalf("gvs/conntrack %v: %v", args, err)
		}
		var r conntrack.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("gvs/conntrack %v: %v\n%s", args, err, out)
		}
		return r
	}
	all := get()
	if all.Matched != 2 || len(all.Connections) != 2 || all.Truncated {
		t.Fatalf("all: %+v", all)
	}
	c := all.Connections[0]
	want := conntrack.View{Proto: "udp", Zone: 5, State: "UNREPLIED", Mark: 7, Timeout: c.Timeout,
		Orig:  conntrack.TupleView{Src: "10.0.0.1", Dst: "10.0.0.2", Sport: 1000, Dport: 53},
		Reply: conntrack.TupleView{Src: "10.0.0.2", Dst: "10.0.0.1", Sport: 53, Dport: 1000}}
	if c != want || c.Timeout < 29 {
		t.Errorf("first connection %+v\nwant %+v", c, want)
	}
	for _, tc := range []struct {
		args []string
		n    int
	}{
		{[]string{"zone=5"}, 2},
		{[]string{"zone=6"}, 0},
		{[]string{"port=1001"}, 1},
		{[]string{"port=53"}, 2},
		{[]string{"addr=10.0.0.2", "port=1000"}, 1},
		{[]string{"addr=10.0.0.3"}, 0},
		{[]string{"proto=udp", "state=unreplied"}, 2},
		{[]string{"proto=tcp"}, 0},
		{[]string{"state=ESTABLISHED"}, 0},
	} {
		if r := get(tc.args...); r.Matched != tc.n || len(r.Connections) != tc.n {
			t.Errorf("%v: %d connections, want %d", tc.args, r.Matched, tc.n)
		}
	}
	for _, bad := range [][]string{{"zone=70000"}, {"addr=nowhere"}, {"port=0"}, {"colour=red"}, {"zone=1", "zone=2"}, {"zone"}} {
		if _, err := sw.gvsConntrack(bad); err == nil || !strings.Contains(err.Error(), bad[len(bad)-1]) {
			t.Errorf("%v: error %v", bad, err)
		}
	}
}
