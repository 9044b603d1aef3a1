package vswitchd

import (
	"strings"
	"testing"
	"time"

	"gvs/internal/conntrack"
	"gvs/internal/flow"
	"gvs/internal/ovsdb"
)

func ovsdbMap(key string, v int64) ovsdb.Datum {
	return ovsdb.Datum{Keys: []ovsdb.Atom{key}, Values: []ovsdb.Atom{v}}
}

// zoneTimeoutLeft commits a UDP connection from sport into zone 5 and
// returns the seconds it has left, as dump-conntrack -m would print.
func zoneTimeoutLeft(t *testing.T, sw *Switch, sport uint16) uint32 {
	t.Helper()
	p1, p2 := sw.state.ifaces["fl1"].dev, sw.state.ifaces["fl2"].dev
	if err := p1.(interface{ Inject([]byte) error }).Inject(udpFrame(t, sport)); err != nil {
		t.Fatal(err)
	}
	if _, ok := p2.(interface {
		Next(time.Duration) ([]byte, bool)
	}).Next(2 * time.Second); !ok {
		t.Fatal("UDP frame not forwarded")
	}
	var left uint32
	found := false
	z := uint16(5)
	sw.state.ct.Dump(&z, true, func(e conntrack.Entry) {
		if e.Orig.SrcPort == sport {
			left, found = e.Timeout, true
		}
	})
	if !found {
		t.Fatalf("connection from port %d not committed", sport)
	}
	return left
}

// TestZoneTimeoutPolicyFromDatabase: a CT_Timeout_Policy reached from
// Open_vSwitch.datapaths:netdev through Datapath.ct_zones and
// CT_Zone.timeout_policy gives zone 5 its UDP timeout; changing the
// policy changes it, removing the zone returns to the kernel's default.
// A datapath type gvs does not have is refused.
func TestZoneTimeoutPolicyFromDatabase(t *testing.T) {
	sw, _, _ := flowSwitch(t)
	f, err := flow.ParseFlow("priority=100,udp,in_port=1,actions=ct(commit,zone=5),output:2", flow.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.state.bridges["br0"].Tables.Add(f); err != nil {
		t.Fatal(err)
	}
	if left := zoneTimeoutLeft(t, sw, 1000); left < 29 || left > 30 {
		t.Fatalf("default UDP timeout: %d s left, want 30", left)
	}
	// What `ovs-vsctl add-zone-tp netdev zone=5 udp_first=7 udp_multiple=9`
	// writes, after the Datapath row is made.
	err = transact(t, sw.db, `[{"op":"insert","table":"CT_Timeout_Policy","uuid-name":"tp",
		"row":{"timeouts":["map",[["udp_first",7],["udp_multiple",9]]]}},
		{"op":"insert","table":"CT_Zone","uuid-name":"z","row":{"timeout_policy":["named-uuid","tp"]}},
		{"op":"insert","table":"Datapath","uuid-name":"dp","row":{"datapath_version":"0","ct_zones":["map",[[5,["named-uuid","z"]]]]}},
		{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["datapaths","insert",["map",[["netdev",["named-uuid","dp"]]]]]]}]`)
	if err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if left := zoneTimeoutLeft(t, sw, 1001); left < 6 || left > 7 {
		t.Fatalf("with udp_first=7: %d s left", left)
	}
	if err := transact(t, sw.db, `[{"op":"update","table":"CT_Timeout_Policy","where":[],
		"row":{"timeouts":["map",[["udp_first",3]]]}}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if left := zoneTimeoutLeft(t, sw, 1002); left < 2 || left > 3 {
		t.Fatalf("with udp_first=3: %d s left", left)
	}
	if err := transact(t, sw.db, `[{"op":"update","table":"Datapath","where":[],"row":{"ct_zones":["map",[]]}}]`); err != nil {
		t.Fatal(err)
	}
	sw.reconcile()
	if left := zoneTimeoutLeft(t, sw, 1003); left < 29 {
		t.Fatalf("zone removed: %d s left, want the default 30", left)
	}

	err = transact(t, sw.db, `[{"op":"insert","table":"Datapath","uuid-name":"dp","row":{"datapath_version":"0"}},
		{"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["datapaths","insert",["map",[["dummy",["named-uuid","dp"]]]]]]}]`)
	if err == nil || !strings.Contains(err.Error(), `datapaths:"dummy"`) {
		t.Errorf("a datapath type gvs does not have: %v", err)
	}
}

// TestPolicyTimeoutsMapping: every CT_Timeout_Policy key reaches its
// timeout, absent keys keep the kernel's defaults.
func TestPolicyTimeoutsMapping(t *testing.T) {
	def := conntrack.DefaultTimeouts()
	s := int64(time.Second)
	cases := []struct {
		key string
		get func(*conntrack.Timeouts) int64
	}{
		{"tcp_syn_sent", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPSynSent] }},
		{"tcp_syn_recv", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPSynRecv] }},
		{"tcp_established", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPEstablished] }},
		{"tcp_fin_wait", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPFinWait] }},
		{"tcp_close_wait", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPCloseWait] }},
		{"tcp_last_ack", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPLastAck] }},
		{"tcp_time_wait", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPTimeWait] }},
		{"tcp_close", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPClose] }},
		{"tcp_syn_sent2", func(m *conntrack.Timeouts) int64 { return m.TCP[conntrack.TCPSynSent2] }},
		{"tcp_retransmit", func(m *conntrack.Timeouts) int64 { return m.TCPRetrans }},
		{"tcp_unack", func(m *conntrack.Timeouts) int64 { return m.TCPUnack }},
		{"udp_first", func(m *conntrack.Timeouts) int64 { return m.UDP }},
		{"udp_single", func(m *conntrack.Timeouts) int64 { return m.UDP }},
		{"udp_multiple", func(m *conntrack.Timeouts) int64 { return m.UDPStream }},
		{"icmp_first", func(m *conntrack.Timeouts) int64 { return m.ICMP }},
		{"icmp_reply", func(m *conntrack.Timeouts) int64 { return m.ICMP }},
	}
	for _, c := range cases {
		tm := policyTimeouts(ovsdbMap(c.key, 4242))
		if got := c.get(&tm); got != 4242*s {
			t.Errorf("%s=4242: timeout %d ns", c.key, got)
		}
		if tm.Generic != def.Generic {
			t.Errorf("%s changed the generic timeout", c.key)
		}
	}
	if tm := policyTimeouts(ovsdbMap("udp_first", 1)); tm.TCP != def.TCP || tm.UDPStream != def.UDPStream {
		t.Error("udp_first changed other timeouts")
	}
}
