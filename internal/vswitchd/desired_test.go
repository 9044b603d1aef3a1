package vswitchd

import (
	"testing"

	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
	"gvs/internal/packet"
)

// vlanDB returns a database with one bridge "br" whose ports are given
// as Port rows (each gets an Interface of the same name), and the root
// row's other_config.
func vlanDB(t *testing.T, rootConfig []any, ports map[string]map[string]any) *ovsdb.Snapshot {
	t.Helper()
	schema, err := ovsdb.ParseSchema(SchemaJSON)
	if err != nil {
		t.Fatal(err)
	}
	db := ovsdb.NewDB(schema, nil)
	var ops []any
	var portRefs []any
	for name, row := range ports {
		row["name"] = name
		row["interfaces"] = []any{"named-uuid", "i_" + name}
		ops = append(ops,
			map[string]any{"op": "insert", "table": "Interface", "uuid-name": "i_" + name, "row": map[string]any{"name": name}},
			map[string]any{"op": "insert", "table": "Port", "uuid-name": "p_" + name, "row": row})
		portRefs = append(portRefs, []any{"named-uuid", "p_" + name})
	}
	ops = append(ops,
		map[string]any{"op": "insert", "table": "Bridge", "uuid-name": "br", "row": map[string]any{"name": "br", "ports": []any{"set", portRefs}}},
		map[string]any{"op": "insert", "table": "Open_vSwitch", "row": map[string]any{
			"bridges": []any{"set", []any{[]any{"named-uuid", "br"}}}, "other_config": []any{"map", rootConfig}}})
	if err := checkResults(db.Transact(ops)); err != nil {
		t.Fatal(err)
	}
	return db.Snapshot(configTables...)
}

func wantPorts(t *testing.T, snap *ovsdb.Snapshot) (*wantBridge, map[string]*wantPort) {
	t.Helper()
	bridges := desiredBridges(snap)
	if len(bridges) != 1 {
		t.Fatalf("%d bridges", len(bridges))
	}
	ports := map[string]*wantPort{}
	for _, p := range bridges[0].ports {
		ports[p.name] = p
	}
	return bridges[0], ports
}

func set64(vals ...int) []any {
	elems := make([]any, len(vals))
	for i, v := range vals {
		elems[i] = v
	}
	return []any{"set", elems}
}

// TestReadDot1qTunnel checks that a dot1q-tunnel port's tag, cvlans and
// qinq-ethtype reach its VLAN configuration, and that a bad qinq-ethtype
// is reported in the interface's error.
func TestReadDot1qTunnel(t *testing.T) {
	snap := vlanDB(t, nil, map[string]map[string]any{
		"plain":  {"vlan_mode": "dot1q-tunnel", "tag": 100},
		"cv":     {"vlan_mode": "dot1q-tunnel", "tag": 100, "cvlans": set64(10, 20)},
		"q":      {"vlan_mode": "dot1q-tunnel", "tag": 100, "other_config": []any{"map", []any{[]any{"qinq-ethtype", "802.1q"}}}},
		"ad":     {"vlan_mode": "dot1q-tunnel", "tag": 100, "other_config": []any{"map", []any{[]any{"qinq-ethtype", "802.1ad"}}}},
		"bad":    {"vlan_mode": "dot1q-tunnel", "tag": 100, "other_config": []any{"map", []any{[]any{"qinq-ethtype", "0x9100"}}}},
		"access": {"tag": 100, "cvlans": set64(10)},
	})
	_, ports := wantPorts(t, snap)
	if v := ports["plain"].vlan; v.Mode != ofproto.ModeDot1qTunnel || v.Tag != 100 || v.CVLANs != nil || v.QinQTPID != packet.EtherTypeQinQ {
		t.Errorf("plain dot1q-tunnel port: %+v", v)
	}
	if v := ports["cv"].vlan; v.CVLANs == nil || !v.CVLANs.Has(10) || !v.CVLANs.Has(20) || v.CVLANs.Has(30) || v.CVLANs.Has(0) {
		t.Errorf("cvlans 10,20 read as %v", v.CVLANs)
	}
	if v := ports["q"].vlan; v.QinQTPID != packet.EtherTypeVLAN {
		t.Errorf("qinq-ethtype=802.1q: TPID %#x", v.QinQTPID)
	}
	if v := ports["ad"].vlan; v.QinQTPID != packet.EtherTypeQinQ || ports["ad"].vlanErr != "" {
		t.Errorf("qinq-ethtype=802.1ad: TPID %#x, error %q", v.QinQTPID, ports["ad"].vlanErr)
	}
	if p := ports["bad"]; p.vlan.QinQTPID != packet.EtherTypeQinQ || p.vlanErr == "" {
		t.Errorf("qinq-ethtype=0x9100: TPID %#x, error %q; want 802.1ad and an error", p.vlan.QinQTPID, p.vlanErr)
	}
	if v := ports["access"].vlan; v.Mode != ofproto.ModeAccess || v.CVLANs != nil {
		t.Errorf("access port with cvlans: %+v (cvlans are for dot1q-tunnel ports only)", v)
	}
}

// TestReadVLANLimit checks other_config:vlan-limit: absent 1, 0 no limit
// (the datapath's 2), above 2 capped.
func TestReadVLANLimit(t *testing.T) {
	for _, tt := range []struct {
		value string // "": absent
		want  int
	}{{"", 1}, {"1", 1}, {"2", 2}, {"0", 2}, {"5", 2}, {"x", 1}} {
		var oc []any
		if tt.value != "" {
			oc = []any{[]any{"vlan-limit", tt.value}}
		}
		b, _ := wantPorts(t, vlanDB(t, oc, map[string]map[string]any{"p": {}}))
		if b.vlanLimit != tt.want {
			t.Errorf("vlan-limit %q: %d, want %d", tt.value, b.vlanLimit, tt.want)
		}
	}
}
