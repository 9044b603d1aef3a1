package vswitchd

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// fuzzTunnelTypes are the tunnel interface types a fuzzed options map is
// tried on.
var fuzzTunnelTypes = []string{"gre", "vxlan", "geneve", "erspan", "ip6gre", "ip6erspan"}

// fuzzConfigDB is a database with bridge br0 holding two memory ports, a
// patch port to br1, a tunnel port of type tunType and a select_all
// mirror, with column of table row name set to {key: value} (or, for
// the Mirror's filter, to value), written before the switch's checks
// exist, as a database file written by another program would be.
func fuzzConfigDB(t testing.TB, table, row, column, tunType, key, value string) (Database, bool) {
	db := newMemDB(t)
	mapOf := func(m map[string]string) string {
		pairs := [][2]string{}
		for k, v := range m {
			pairs = append(pairs, [2]string{k, v})
		}
		b, _ := json.Marshal(pairs)
		return `["map",` + string(b) + `]`
	}
	// column names the row's map columns, with the fuzzed pair added to
	// the one the input chose.
	columns := func(tbl, name string, base map[string]map[string]string) string {
		out := ""
		if tbl == table && name == row && column == "filter" {
			v, _ := json.Marshal(value)
			out += `,"filter":` + string(v)
		} else if tbl == table && name == row {
			if base[column] == nil {
				base[column] = map[string]string{}
			}
			base[column][key] = value
		}
		for col, m := range base {
			out += `,"` + col + `":` + mapOf(m)
		}
		return out
	}
	remote := "192.0.2.9"
	if strings.HasPrefix(tunType, "ip6") {
		remote = "2001:db8::9"
	}
	iface := func(name, typ string, options map[string]string) string {
		return `{"op":"insert","table":"Interface","uuid-name":"i` + name + `","row":{"name":"` + name + `","type":"` + typ + `"` +
			columns("Interface", name, map[string]map[string]string{"options": options}) + `}},
		{"op":"insert","table":"Port","uuid-name":"p` + name + `","row":{"name":"` + name + `","interfaces":["named-uuid","i` + name + `"]` +
			columns("Port", name, map[string]map[string]string{}) + `}},`
	}
	ops := `[` + iface("fzm1", "memory", nil) + iface("fzm2", "memory", nil) +
		iface("fzpa", "patch", map[string]string{"peer": "fzpb"}) + iface("fzpb", "patch", map[string]string{"peer": "fzpa"}) +
		iface("fzt1", tunType, map[string]string{"remote_ip": remote}) + `
		{"op":"insert","table":"Mirror","uuid-name":"mir","row":{"name":"fzmir","select_all":true,"output_port":["named-uuid","pfzm2"]` +
		columns("Mirror", "fzmir", map[string]map[string]string{}) + `}},
		{"op":"insert","table":"Bridge","uuid-name":"b0","row":{"name":"br0","mirrors":["named-uuid","mir"],
			"ports":["set",[["named-uuid","pfzm1"],["named-uuid","pfzm2"],["named-uuid","pfzpa"],["named-uuid","pfzt1"]]]` +
		columns("Bridge", "br0", map[string]map[string]string{}) + `}},
		{"op":"insert","table":"Bridge","uuid-name":"b1","row":{"name":"br1","ports":["named-uuid","pfzpb"]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["set",[["named-uuid","b0"],["named-uuid","b1"]]]` +
		columns("Open_vSwitch", "", map[string]map[string]string{}) + `}}]`
	if err := transact(t, db, ops); err != nil {
		return nil, false // the schema refuses it: nothing for the switch to apply
	}
	return db, true
}

// fuzzTargets are the columns a fuzzed key and value go into.
var fuzzTargets = [][3]string{
	{"Open_vSwitch", "", "other_config"},
	{"Bridge", "br0", "other_config"},
	{"Interface", "fzm1", "options"},
	{"Interface", "fzm1", "other_config"},
	{"Port", "fzm1", "other_config"},
	{"Interface", "fzt1", "options"},
	{"Mirror", "fzmir", "filter"},
	{"Interface", "fzpa", "options"},
}

// FuzzReconcileConfig applies databases whose configuration maps hold an
// arbitrary key and value: the switch must apply them, or refuse what it
// cannot use where the user sees it, without panicking.
func FuzzReconcileConfig(f *testing.F) {
	keys := []string{"mac-table-size", "mac-aging-time", "flow-limit", "vlan-limit", "max-idle", "datapath-id",
		"stats-update-interval", "gvs-busy-poll-us", "qinq-ethtype", "forward-bpdu", "depth", "peer",
		"remote_ip", "local_ip", "key", "in_key", "out_key", "dst_port", "ttl", "tos", "df_default", "csum",
		"erspan_ver", "erspan_idx", "erspan_dir", "erspan_hwid", "gvs-gro", "gvs-direct"}
	values := []string{"0", "1", "-1", "4096", "99999999999999999999", "flow", "true", "no", "0x10", "::1",
		"192.0.2.1", "10.0.0.300", "", "fzm1", "br0", "ip,nw_src=10.0.0.1"}
	for i, k := range keys {
		f.Add(uint8(i), k, values[i%len(values)])
		f.Add(uint8(i*7+3), k, values[(i+5)%len(values)])
	}
	f.Add(uint8(6), "", "tcp and port 80")
	f.Fuzz(func(t *testing.T, target uint8, key, value string) {
		if len(key) > 64 || len(value) > 256 {
			return
		}
		tg := fuzzTargets[int(target)%len(fuzzTargets)]
		tunType := fuzzTunnelTypes[int(target/8)%len(fuzzTunnelTypes)]
		db, ok := fuzzConfigDB(t, tg[0], tg[1], tg[2], tunType, key, value)
		if !ok {
			return
		}
		sw := New(db)
		defer sw.state.close(true)
		sw.reconcile()
		if sw.state.bridges["br0"] == nil {
			t.Fatalf("%s %s %s[%s]=%s: bridge br0 not applied", tg[0], tg[1], tg[2], strconv.Quote(key), strconv.Quote(value))
		}
	})
}

// commandSet collects the switch's ovs-appctl commands.
type commandSet struct {
	names    []string
	min, max []int
	handlers []func([]string) (string, error)
}

func (c *commandSet) Register(name, usage string, minArgs, maxArgs int, h func([]string) (string, error)) {
	c.names = append(c.names, name)
	c.min, c.max = append(c.min, minArgs), append(c.max, maxArgs)
	c.handlers = append(c.handlers, h)
}

// FuzzAppctl calls each of the switch's ovs-appctl commands with
// arbitrary arguments (as many as the command takes) on a switch with
// two bridges, a mirror and a tunnel port: each must answer or refuse,
// without panicking.
func FuzzAppctl(f *testing.F) {
	seeds := []string{"br0", "br0 in_port=1,tcp,nw_dst=10.0.0.1", "--ct-next trk,new br0 ip", "zone=5 state=new",
		"-m --names br0", "ovs-netdev", "br0 dl_vlan=10 -generate", "10.0.0.0/8 fzt1 10.0.0.1", "fzm1", "ul 10.0.0.1 aa:bb:cc:dd:ee:ff",
		"zone=3,limit=10", "default limit=5", "ANY:dbg", "br0 in_port=fzm1,dl_src=02:00:00:00:00:01,dl_dst=ff:ff:ff:ff:ff:ff"}
	for i := range 64 {
		f.Add(uint8(i), seeds[i%len(seeds)])
	}
	db, ok := fuzzConfigDB(f, "", "", "", "vxlan", "", "")
	if !ok {
		f.Fatal("the base database was refused")
	}
	sw := New(db)
	f.Cleanup(func() { sw.state.close(true) })
	sw.reconcile()
	var cmd commandSet
	sw.RegisterCommands(&cmd)
	f.Fuzz(func(t *testing.T, which uint8, args string) {
		i := int(which) % len(cmd.names)
		if cmd.names[i] == "exit" || len(args) > 4096 {
			return
		}
		list := strings.Fields(args)
		if len(list) < cmd.min[i] || len(list) > cmd.max[i] {
			return
		}
		_, _ = cmd.handlers[i](list)
	})
}
