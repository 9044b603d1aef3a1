package vswitchd

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
)

// bondSwitch is a switch whose bridge br0 has a bond "bond0" of memory
// interfaces bm1 and bm2 (with the given Port columns), a port bp3, and
// a mirror of the bond's traffic to bp3.
func bondSwitch(t *testing.T, portCols string) *Switch {
	t.Helper()
	db := newMemDB(t)
	sw := New(db)
	t.Cleanup(func() { sw.state.close(true) })
	err := transact(t, db, `[
		{"op":"insert","table":"Interface","uuid-name":"i1","row":{"name":"bm1","type":"memory"}},
		{"op":"insert","table":"Interface","uuid-name":"i2","row":{"name":"bm2","type":"memory"}},
		{"op":"insert","table":"Interface","uuid-name":"i3","row":{"name":"bp3","type":"memory"}},
		{"op":"insert","table":"Port","uuid-name":"bond","row":{"name":"bond0","interfaces":["set",[["named-uuid","i1"],["named-uuid","i2"]]]`+portCols+`}},
		{"op":"insert","table":"Port","uuid-name":"p3","row":{"name":"bp3","interfaces":["named-uuid","i3"]}},
		{"op":"insert","table":"Mirror","uuid-name":"m0","row":{"name":"m0","select_src_port":["named-uuid","bond"],"select_dst_port":["named-uuid","bond"],"output_port":["named-uuid","p3"]}},
		{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"br0","ports":["set",[["named-uuid","bond"],["named-uuid","p3"]]],"mirrors":["named-uuid","m0"]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	return sw
}

// TestBondMembersAreOpened: every interface of a bond is set up, with
// an OpenFlow port of its own and no error (on main the second one got
// "bonds are not supported"), is a member of one bond in the bridge's
// configuration, and a mirror of the bond selects every member.
func TestBondMembersAreOpened(t *testing.T) {
	sw := bondSwitch(t, `,"bond_mode":"active-backup"`)
	st := sw.state
	var bond *ofproto.Bond
	cfg := st.bridges["br0"].Config()
	for _, n := range []string{"bm1", "bm2"} {
		ifc := st.ifaces[n]
		if ifc == nil || ifc.errorText() != "" || ifc.ofport <= 0 {
			t.Fatalf("member %s: %+v", n, ifc)
		}
		p := cfg.Ports[ifc.dpNo]
		if p == nil || p.Bond == nil || bond != nil && p.Bond != bond {
			t.Fatalf("member %s is not in one bond: %+v", n, p)
		}
		bond = p.Bond
		m := cfg.Mirrors[0]
		if !m.Src[ifc.dpNo] || !m.Dst[ifc.dpNo] {
			t.Errorf("mirror of the bond does not select member %s", n)
		}
	}
	st.runBonds(time.Now())
	show := bond.Show()
	for _, want := range []string{"---- bond0 ----", "bond_mode: active-backup", "member bm1: enabled", "member bm2: enabled", "  active member"} {
		if !strings.Contains(show, want) {
			t.Fatalf("bond/show lacks %q:\n%s", want, show)
		}
	}
	// Carrier loss of the active member: the other takes over.
	active := bond.Active()
	st.ifaces[active].dev.(*netdev.Memory).SetLinkUp(false)
	st.runBonds(time.Now())
	if got := bond.Active(); got == active || got == "" {
		t.Fatalf("active member %q after %s lost its carrier", got, active)
	}
	// A port of one interface again: no bond.
	if err := transact(t, sw.db, `[{"op":"mutate","table":"Port","where":[["name","==","bond0"]],
		"mutations":[["interfaces","delete",["set",[["uuid","`+ifaceUUID(t, sw, "bm2")+`"]]]]]}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if p := st.bridges["br0"].Config().Ports[st.ifaces["bm1"].dpNo]; p.Bond != nil || len(st.bonds) != 0 {
		t.Fatalf("a port of one interface is still a bond")
	}
}

func ifaceUUID(t *testing.T, sw *Switch, name string) string {
	t.Helper()
	return sw.state.ifaces[name].want.ifaceUUID.String()
}

// TestBondConfigErrors: an unknown bond-detect-mode or lacp-time is
// reported in the members' Interface.error (OVS only logs it); a bad
// bond_mode or lacp is refused by the schema, and a bond of more than
// ofproto.MaxBondMembers interfaces by the row check.
func TestBondConfigErrors(t *testing.T) {
	sw := bondSwitch(t, `,"lacp":"active","other_config":["map",[["bond-detect-mode","foo"],["lacp-time","soon"]]]`)
	e := sw.state.ifaces["bm1"].errorText()
	if !strings.Contains(e, `unknown lacp-time "soon"`) || !strings.Contains(e, `unsupported bond-detect-mode "foo"`) {
		t.Fatalf("Interface.error %q", e)
	}
	for _, bad := range []string{`"bond_mode":"unknown"`, `"lacp":"bogus"`} {
		err := transact(t, sw.db, `[{"op":"update","table":"Port","where":[["name","==","bond0"]],"row":{`+bad+`}}]`)
		if err == nil || !strings.Contains(err.Error(), "constraint violation") {
			t.Errorf("%s: %v, want a constraint violation", bad, err)
		}
	}
	ops := `[`
	var refs []string
	for i := range ofproto.MaxBondMembers + 1 {
		n := "bx" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		ops += `{"op":"insert","table":"Interface","uuid-name":"` + n + `","row":{"name":"` + n + `","type":"memory"}},`
		refs = append(refs, `["named-uuid","`+n+`"]`)
	}
	ops += `{"op":"update","table":"Port","where":[["name","==","bp3"]],"row":{"interfaces":["set",[` + strings.Join(refs, ",") + `]]}}]`
	err := transact(t, sw.db, ops)
	if err == nil || !strings.Contains(err.Error(), "interfaces: 33 rows, at most 32") {
		t.Fatalf("a bond of 33 interfaces: %v", err)
	}
	err = transact(t, sw.db, `[{"op":"update","table":"Port","where":[["name","==","bond0"]],"row":{"other_config":["map",[["bond-rebalance-interval","10001"]]]}}]`)
	if err == nil || !strings.Contains(err.Error(), `other_config:bond-rebalance-interval="10001": must be an integer from 0 to 10000`) {
		t.Fatalf("bond-rebalance-interval=10001: %v", err)
	}
}

// TestBondFailoverSendsLearningPackets: when the active member changes,
// a RARP from each address learned elsewhere on the bridge goes out of
// the new active member (OVS's learning packets), and none for
// addresses learned on the bond; with lacp=active each member sends a
// LACPDU.
func TestBondFailoverSendsLearningPackets(t *testing.T) {
	sw := bondSwitch(t, `,"bond_mode":"active-backup"`)
	st := sw.state
	st.runBonds(time.Now())
	bond := st.bondByName("bond0")
	active := bond.Active()
	other := map[string]string{"bm1": "bm2", "bm2": "bm1"}[active]
	elsewhere := [6]byte{2, 0, 0, 0, 7, 1}
	onBond := [6]byte{2, 0, 0, 0, 7, 2}
	br := st.bridges["br0"]
	br.MACs.Learn(elsewhere, 0, st.ifaces["bp3"].dpNo)
	br.MACs.Learn(onBond, 0, st.ifaces[active].dpNo)
	dev := st.ifaces[other].dev.(*netdev.Memory)
	dev.Sent()
	st.ifaces[active].dev.(*netdev.Memory).SetLinkUp(false)
	st.runBonds(time.Now())
	if got := bond.Active(); got != other {
		t.Fatalf("active member %q, want %s", got, other)
	}
	f, ok := dev.Next(2 * time.Second)
	if !ok {
		t.Fatalf("no learning packet out of %s", other)
	}
	if len(f) < 60 || [6]byte(f[6:12]) != elsewhere || f[12] != 0x80 || f[13] != 0x35 || [6]byte(f[0:6]) != [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff} {
		t.Fatalf("learning packet % x, want a broadcast RARP from %x", f, elsewhere)
	}
	if f, ok := dev.Next(200 * time.Millisecond); ok {
		t.Fatalf("a second learning packet % x (none for addresses on the bond)", f)
	}

	if err := transact(t, sw.db, `[{"op":"update","table":"Port","where":[["name","==","bond0"]],"row":{"lacp":"active"}}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	st.runBonds(time.Now())
	f, ok = dev.Next(2 * time.Second)
	if !ok || len(f) != 124 || [6]byte(f[0:6]) != [6]byte{0x01, 0x80, 0xc2, 0, 0, 2} || f[12] != 0x88 || f[13] != 0x09 || f[14] != 1 {
		t.Fatalf("LACPDU out of %s: % x (%v)", other, f, ok)
	}
	out, err := appctl(sw, "lacp/show", "bond0")
	if err != nil || !strings.Contains(out, "status: active\n") || !strings.Contains(out, "member: "+other+": defaulted detached") {
		t.Fatalf("lacp/show: %v\n%s", err, out)
	}
}

// appctl runs one of the switch's ovs-appctl commands.
func appctl(sw *Switch, name string, args ...string) (string, error) {
	var c commandSet
	sw.RegisterCommands(&c)
	for i, n := range c.names {
		if n == name {
			return c.handlers[i](args)
		}
	}
	return "", fmt.Errorf("no command %s", name)
}

// TestBondCommands: the bond/ and lacp/ commands answer in OVS's words.
func TestBondCommands(t *testing.T) {
	sw := bondSwitch(t, `,"bond_mode":"balance-slb"`)
	sw.state.runBonds(time.Now())
	for _, c := range []struct {
		args []string
		out  string // a line the answer holds
		err  string // the error, when it fails
	}{
		{args: []string{"bond/list"}, out: "bond0\tbalance-slb\t0\tbm1, bm2\n"},
		{args: []string{"bond/show"}, out: "bond_mode: balance-slb\n"},
		{args: []string{"bond/show", "nosuch"}, err: "no such bond"},
		{args: []string{"bond/set-active-member", "nosuch", "bm1"}, err: "no such bond"},
		{args: []string{"bond/set-active-member", "bond0", "bp3"}, err: "no such member"},
		{args: []string{"bond/disable-member", "bond0", "bm2"}, out: "disabled"},
		{args: []string{"bond/set-active-member", "bond0", "bm2"}, err: "cannot make disabled member active"},
		{args: []string{"bond/enable-member", "bond0", "bm2"}, out: "enabled"},
		{args: []string{"bond/set-active-member", "bond0", "bm2"}, out: "done"},
		{args: []string{"bond/show", "bond0"}, out: "active member mac: 02:"},
		{args: []string{"lacp/show", "bond0"}, err: "no such lacp object"},
		{args: []string{"lacp/show-stats", "bond0"}, err: "no such lacp object"},
		{args: []string{"lacp/show"}, out: ""},
	} {
		out, err := appctl(sw, c.args[0], c.args[1:]...)
		switch {
		case c.err != "" && (err == nil || err.Error() != c.err):
			t.Errorf("%v: %q, %v; want error %q", c.args, out, err, c.err)
		case c.err == "" && (err != nil || !strings.Contains(out, c.out)):
			t.Errorf("%v: %q, %v; want %q", c.args, out, err, c.out)
		}
	}
}

// TestBondPortStatus: the bond's Port row gets bond_active_slave, the
// active member's address (as OVS writes it), and statistics
// bond_rx_dropped, the frames dropped on its members.
func TestBondPortStatus(t *testing.T) {
	sw := bondSwitch(t, `,"bond_mode":"active-backup"`)
	st := sw.state
	st.runBonds(time.Now())
	bond := st.bondByName("bond0")
	bond.RxDrops.Packets.Add(7) // as if seven frames came in on the backup member
	sw.refreshStats()
	snap := sw.db.Snapshot()
	var pu ovsdb.UUID
	for u := range snap.Tables["Port"] {
		if n, _ := get(snap, "Port", u, "name").Str(); n == "bond0" {
			pu = u
		}
	}
	info := st.ifaces[bond.Active()].dev.Info()
	if got, _ := get(snap, "Port", pu, "bond_active_slave").Str(); got != info.MAC.String() || got == "" {
		t.Errorf("bond_active_slave %q, want %s", got, info.MAC)
	}
	stats := get(snap, "Port", pu, "statistics")
	if stats.Len() != 1 || stats.Keys[0] != "bond_rx_dropped" || stats.Values[0] != int64(7) {
		t.Errorf("Port statistics %v %v, want bond_rx_dropped=7", stats.Keys, stats.Values)
	}
}

// TestBondLACPSettings: the Port's other_config lacp-system-id,
// lacp-system-priority and bond-hash-basis and the members' lacp-port-id,
// lacp-port-priority and lacp-aggregation-key reach the bond (lacp/show,
// bond/show); without them the system id is the bridge's own port's
// address. A bad value is refused with the key and the range in the
// transaction's error. On main every one was ignored, and the bad ones
// were taken.
func TestBondLACPSettings(t *testing.T) {
	sw := bondSwitch(t, `,"lacp":"active","bond_mode":"balance-tcp"`)
	// The bridge's own port (a memory device here, for its address).
	err := transact(t, sw.db, `[{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"br0","type":"memory"}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"br0","interfaces":["named-uuid","i"]}},
		{"op":"mutate","table":"Bridge","where":[["name","==","br0"]],"mutations":[["ports","insert",["named-uuid","p"]]]}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	sw.state.runBonds(time.Now())
	show, err := appctl(sw, "lacp/show", "bond0")
	local := sw.state.ifaces["br0"].dev.Info().MAC.String()
	if err != nil || !strings.Contains(show, "  sys_id: "+local+"\n  sys_priority: 65534\n") {
		t.Fatalf("lacp/show by default (the bridge's address %s): %v\n%s", local, err, show)
	}
	for _, op := range []string{
		`{"op":"update","table":"Port","where":[["name","==","bond0"]],"row":{"other_config":["map",[["lacp-system-id","02:00:5e:10:00:01"],["lacp-system-priority","77"],["bond-hash-basis","4294967295"]]]}}`,
		`{"op":"update","table":"Interface","where":[["name","==","bm1"]],"row":{"other_config":["map",[["lacp-port-id","11"],["lacp-port-priority","12"],["lacp-aggregation-key","13"]]]}}`,
		`{"op":"update","table":"Interface","where":[["name","==","bm2"]],"row":{"other_config":["map",[["lacp-port-id","21"]]]}}`,
	} {
		if err := transact(t, sw.db, `[`+op+`]`); err != nil {
			t.Fatalf("%s: %v", op, err)
		}
	}
	sw.reconcile()
	sw.state.runBonds(time.Now())
	show, _ = appctl(sw, "lacp/show", "bond0")
	for _, w := range []string{"  sys_id: 02:00:5e:10:00:01\n  sys_priority: 77\n  aggregation key: 13\n",
		"member: bm1: defaulted detached\n  port_id: 11\n  port_priority: 12\n",
		"member: bm2: defaulted detached\n  port_id: 21\n  port_priority: 65535\n"} {
		if !strings.Contains(show, w) {
			t.Errorf("lacp/show lacks %q:\n%s", w, show)
		}
	}
	if bs, _ := appctl(sw, "bond/show", "bond0"); !strings.Contains(bs, "bond-hash-basis: 4294967295\n") {
		t.Errorf("bond/show:\n%s", bs)
	}
	for _, c := range []struct{ table, row, key, val, err string }{
		{"Port", "bond0", "lacp-system-id", "02:00:5e:10:00", `other_config:lacp-system-id="02:00:5e:10:00": must be an Ethernet address`},
		{"Port", "bond0", "lacp-system-id", "00:00:00:00:00:00", `other_config:lacp-system-id="00:00:00:00:00:00": must not be zero`},
		{"Port", "bond0", "lacp-system-priority", "0", `other_config:lacp-system-priority="0": must be an integer from 1 to 65535`},
		{"Port", "bond0", "lacp-system-priority", "65536", `other_config:lacp-system-priority="65536": must be an integer from 1 to 65535`},
		{"Port", "bond0", "bond-hash-basis", "-1", `other_config:bond-hash-basis="-1": must be an integer from 0 to 4294967295`},
		{"Port", "bond0", "bond-hash-basis", "x", `other_config:bond-hash-basis="x": must be an integer from 0 to 4294967295`},
		{"Interface", "bm1", "lacp-port-id", "0", `other_config:lacp-port-id="0": must be an integer from 1 to 65535`},
		{"Interface", "bm1", "lacp-port-priority", "70000", `other_config:lacp-port-priority="70000": must be an integer from 1 to 65535`},
		{"Interface", "bm2", "lacp-aggregation-key", "k", `other_config:lacp-aggregation-key="k": must be an integer from 1 to 65535`},
	} {
		err := transact(t, sw.db, `[{"op":"update","table":"`+c.table+`","where":[["name","==","`+c.row+`"]],"row":{"other_config":["map",[["`+c.key+`","`+c.val+`"]]]}}]`)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s %s other_config:%s=%s: %v, want %q", c.table, c.row, c.key, c.val, err, c.err)
		}
	}
}

// TestBondLACPSettingsRemote: bad values already in the database (as a
// remote server, or a database file, holds them: no row check refused
// them) are reported, the Port's in the members' Interface.error, and
// the defaults are used (bm1's bad lacp-port-id: its OpenFlow port
// number 1 is the key). An Interface's own bad value reaches its error
// column through remoteChecks, as every row check's does.
func TestBondLACPSettingsRemote(t *testing.T) {
	db := newMemDB(t)
	err := transact(t, db, `[
		{"op":"insert","table":"Interface","uuid-name":"i1","row":{"name":"bm1","type":"memory","other_config":["map",[["lacp-port-id","0"]]]}},
		{"op":"insert","table":"Interface","uuid-name":"i2","row":{"name":"bm2","type":"memory"}},
		{"op":"insert","table":"Port","uuid-name":"bond","row":{"name":"bond0","lacp":"active","interfaces":["set",[["named-uuid","i1"],["named-uuid","i2"]]],
			"other_config":["map",[["lacp-system-id","nonsense"],["lacp-system-priority","0"],["bond-hash-basis","-5"]]]}},
		{"op":"insert","table":"Interface","uuid-name":"i","row":{"name":"br0","type":"memory"}},
		{"op":"insert","table":"Port","uuid-name":"p","row":{"name":"br0","interfaces":["named-uuid","i"]}},
		{"op":"insert","table":"Bridge","uuid-name":"b","row":{"name":"br0","ports":["set",[["named-uuid","bond"],["named-uuid","p"]]]}},
		{"op":"insert","table":"Open_vSwitch","row":{"bridges":["named-uuid","b"]}}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw := New(db)
	t.Cleanup(func() { sw.state.close(true) })
	sw.reconcile()
	sw.state.runBonds(time.Now())
	e := sw.state.ifaces["bm2"].errorText()
	for _, want := range []string{`other_config:lacp-system-id="nonsense": must be an Ethernet address: using the bridge's address`,
		`other_config:lacp-system-priority="0": must be an integer from 1 to 65535: using 65534`,
		`other_config:bond-hash-basis="-5": must be an integer from 0 to 4294967295: using 0`} {
		if !strings.Contains(e, want) {
			t.Errorf("bm2's Interface.error %q lacks %q", e, want)
		}
	}
	show, _ := appctl(sw, "lacp/show", "bond0")
	local := sw.state.ifaces["br0"].dev.Info().MAC.String()
	if !strings.Contains(show, "  sys_id: "+local+"\n  sys_priority: 65534\n  aggregation key: 1\n") {
		t.Errorf("lacp/show with bad settings (want the defaults, the bridge's address %s):\n%s", local, show)
	}
}
