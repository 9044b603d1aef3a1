package vswitchd

import (
	"fmt"
	"slices"
	"time"

	"gvs/internal/conntrack"
	"gvs/internal/ovsdb"
)

// The connection tracker's per-zone timeouts come from the database as
// OVS configures them (ovs-vswitchd.conf.db(5), `ovs-vsctl add-zone-tp`):
// Open_vSwitch.datapaths maps a datapath type to a Datapath row, whose
// ct_zones map zone numbers to CT_Zone rows, whose timeout_policy names a
// CT_Timeout_Policy row. gvs has one datapath, which serves both types
// it accepts, so the zones of "system" and "netdev" both apply to its
// tracker ("netdev" wins where both configure one zone). OVS 3.1's schema
// has no zone limits in the database (CT_Zone.limit came with 3.2): they
// are set with dpctl/ct-set-limits.

// ctDatapathTypes are the Open_vSwitch.datapaths keys gvs applies, the
// last one winning for a zone both configure.
var ctDatapathTypes = []string{"system", "netdev"}

// desiredZoneTimeouts reads the zones' timeout policies.
func desiredZoneTimeouts(snap *ovsdb.Snapshot) map[uint16]conntrack.Timeouts {
	out := map[uint16]conntrack.Timeouts{}
	for ovs := range snap.Tables["Open_vSwitch"] {
		dps := get(snap, "Open_vSwitch", ovs, "datapaths")
		for _, typ := range ctDatapathTypes {
			i := slices.IndexFunc(dps.Keys, func(k ovsdb.Atom) bool { return k == typ })
			if i < 0 {
				continue
			}
			dp, ok := dps.Values[i].(ovsdb.UUID)
			if !ok {
				continue
			}
			zones := get(snap, "Datapath", dp, "ct_zones")
			for j, k := range zones.Keys {
				z, _ := k.(int64)
				zu, _ := zones.Values[j].(ovsdb.UUID)
				tps := get(snap, "CT_Zone", zu, "timeout_policy").UUIDs()
				if len(tps) == 0 || z < 0 || z > 65535 {
					continue // no policy: the zone keeps the defaults
				}
				out[uint16(z)] = policyTimeouts(get(snap, "CT_Timeout_Policy", tps[0], "timeouts"))
			}
		}
	}
	return out
}

// policyTimeouts turns a CT_Timeout_Policy's timeouts (seconds, by OVS's
// key names) into the tracker's, the kernel's defaults where a key is
// absent. The tracker keeps the kernel's timeouts, so keys map as the
// kernel datapath maps them: udp_first and udp_single are the unreplied
// timeout (udp_first wins when both are given), udp_multiple the replied
// one; icmp_first and icmp_reply are the one ICMP timeout (icmp_reply
// wins).
func policyTimeouts(d ovsdb.Datum) conntrack.Timeouts {
	tm := conntrack.DefaultTimeouts()
	secs := map[string]int64{}
	for i, k := range d.Keys {
		name, _ := k.(string)
		if n, ok := d.Values[i].(int64); ok && n >= 0 {
			secs[name] = n * int64(time.Second)
		}
	}
	set := func(dst *int64, keys ...string) {
		for _, k := range keys {
			if v, ok := secs[k]; ok {
				*dst = v
			}
		}
	}
	set(&tm.TCP[conntrack.TCPSynSent], "tcp_syn_sent")
	set(&tm.TCP[conntrack.TCPSynRecv], "tcp_syn_recv")
	set(&tm.TCP[conntrack.TCPEstablished], "tcp_established")
	set(&tm.TCP[conntrack.TCPFinWait], "tcp_fin_wait")
	set(&tm.TCP[conntrack.TCPCloseWait], "tcp_close_wait")
	set(&tm.TCP[conntrack.TCPLastAck], "tcp_last_ack")
	set(&tm.TCP[conntrack.TCPTimeWait], "tcp_time_wait")
	set(&tm.TCP[conntrack.TCPClose], "tcp_close")
	set(&tm.TCP[conntrack.TCPSynSent2], "tcp_syn_sent2")
	set(&tm.TCPRetrans, "tcp_retransmit")
	set(&tm.TCPUnack, "tcp_unack")
	set(&tm.UDP, "udp_single", "udp_first")
	set(&tm.UDPStream, "udp_multiple")
	set(&tm.ICMP, "icmp_first", "icmp_reply")
	return tm
}

// applyZoneTimeouts gives the tracker the zones' timeout policies,
// touching only the zones whose policy changed; a zone whose policy went
// returns to the defaults. A connection takes its zone's current policy
// at its next packet.
func (st *datapathState) applyZoneTimeouts(snap *ovsdb.Snapshot) {
	want := desiredZoneTimeouts(snap)
	for z := range st.zoneTimeouts {
		if _, ok := want[z]; !ok {
			st.ct.SetZoneTimeouts(z, nil)
		}
	}
	for z, tm := range want {
		if old, ok := st.zoneTimeouts[z]; !ok || old != tm {
			st.ct.SetZoneTimeouts(z, &tm)
		}
	}
	st.zoneTimeouts = want
}

// checkDatapaths refuses an Open_vSwitch.datapaths key that names a
// datapath type gvs does not have: its zones would silently apply
// nowhere.
func checkDatapaths(t *ovsdb.Table, old, new *ovsdb.Row) error {
	for _, k := range new.Column(t, "datapaths").Keys {
		typ, _ := k.(string)
		if !slices.Contains(ctDatapathTypes, typ) {
			return fmt.Errorf("datapaths:%q: gvs has the datapath types %q and %q only", typ, ctDatapathTypes[1], ctDatapathTypes[0])
		}
	}
	return nil
}
