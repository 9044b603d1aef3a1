package vswitchd

import (
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
)

// wantBond is a bond's configuration from its Port row.
type wantBond struct {
	cfg ofproto.BondConfig
	// warning is a problem with the row that gvsd works around, as OVS
	// does (which only logs it): it goes to the members' Interface.error.
	warning string
}

// other_config:bond-rebalance-interval, in ms: OVS's default and the
// top of its range (the commit check refuses more).
const (
	defaultRebalanceMS = 10000
	maxRebalanceMS     = 10000
)

// maxBondDelay bounds bond_updelay and bond_downdelay: longer ones are
// taken as this (OVS takes any; a negative one is 0 in both).
const maxBondDelay = time.Hour

// readBond reads a bond's columns: bond_mode (the schema allows only
// OVS's three), bond_updelay, bond_downdelay, lacp, other_config's
// bond-primary, bond-detect-mode, lacp-fallback-ab, lacp-time,
// bond-rebalance-interval, bond-hash-basis, lacp-system-id and
// lacp-system-priority, and its Interfaces' other_config lacp-port-id,
// lacp-port-priority and lacp-aggregation-key.
func readBond(snap *ovsdb.Snapshot, pu ovsdb.UUID) *wantBond {
	b := &wantBond{}
	mode, _ := get(snap, "Port", pu, "bond_mode").Str()
	b.cfg.Mode, _ = ofproto.ParseBondMode(mode)
	up, _ := get(snap, "Port", pu, "bond_updelay").Int()
	down, _ := get(snap, "Port", pu, "bond_downdelay").Int()
	b.cfg.UpDelay, b.cfg.DownDelay = bondDelay(up), bondDelay(down)
	b.cfg.LACP, _ = get(snap, "Port", pu, "lacp").Str()
	oc := get(snap, "Port", pu, "other_config").StringMap()
	b.cfg.Primary = oc["bond-primary"]
	b.cfg.LACPFallbackAB = oc["lacp-fallback-ab"] == "true"
	b.cfg.LACPFast = oc["lacp-time"] == "fast"
	b.cfg.RebalanceInterval = time.Duration(defaultRebalanceMS) * time.Millisecond
	if n, err := strconv.ParseInt(oc["bond-rebalance-interval"], 10, 64); err == nil {
		b.cfg.RebalanceInterval = time.Duration(min(max(n, 0), maxRebalanceMS)) * time.Millisecond
	}
	name, _ := get(snap, "Port", pu, "name").Str()
	var warn []string
	// The LACP identities and the hash basis: the row check refuses
	// a bad value in gvsd's own database; one a remote server accepted
	// is reported and the default used (OVS, for a bad system id, turns
	// LACP off).
	if v, ok := oc[lacpSystemIDKey]; ok {
		id, err := parseLACPSystemID(v)
		if err != nil {
			warn = append(warn, fmt.Sprintf("port %s: %v: using the bridge's address", name, err))
		}
		b.cfg.LACPSystemID = id
	}
	if v, ok := oc["lacp-system-priority"]; ok {
		n, err := parseOtherInt("lacp-system-priority", v, 1, 65535)
		if err != nil {
			warn = append(warn, fmt.Sprintf("port %s: %v: using 65534", name, err))
		}
		b.cfg.LACPSystemPriority = uint16(n)
	}
	if v, ok := oc["bond-hash-basis"]; ok {
		n, err := parseOtherInt("bond-hash-basis", v, 0, math.MaxUint32)
		if err != nil {
			warn = append(warn, fmt.Sprintf("port %s: %v: using 0", name, err))
		}
		b.cfg.HashBasis = uint32(n)
	}
	for _, iu := range get(snap, "Port", pu, "interfaces").UUIDs() {
		// A bad value is in the Interface's error already (see
		// checkInterface and remoteChecks): the default is used.
		ioc := get(snap, "Interface", iu, "other_config").StringMap()
		var mc ofproto.LACPMemberConfig
		for _, k := range []struct {
			key string
			to  *uint16
		}{{"lacp-port-id", &mc.PortID}, {"lacp-port-priority", &mc.PortPriority}, {"lacp-aggregation-key", &mc.Key}} {
			if v, ok := ioc[k.key]; ok {
				n, _ := parseOtherInt(k.key, v, 1, 65535)
				*k.to = uint16(n)
			}
		}
		if mc != (ofproto.LACPMemberConfig{}) {
			if b.cfg.LACPMembers == nil {
				b.cfg.LACPMembers = map[string]ofproto.LACPMemberConfig{}
			}
			iname, _ := get(snap, "Interface", iu, "name").Str()
			b.cfg.LACPMembers[iname] = mc
		}
	}
	switch d := oc["bond-detect-mode"]; d {
	case "", "carrier", "miimon":
	default:
		warn = append(warn, fmt.Sprintf("port %s: unsupported bond-detect-mode %s, defaulting to carrier", name, quoteShort(d)))
	}
	switch t := oc["lacp-time"]; t {
	case "", "slow", "fast":
	default:
		warn = append(warn, fmt.Sprintf("port %s: unknown lacp-time %s, using slow", name, quoteShort(t)))
	}
	b.warning = strings.Join(warn, "; ")
	return b
}

// lacpSystemIDKey is the Port's other_config key of its LACP system id.
const lacpSystemIDKey = "lacp-system-id"

// parseLACPSystemID reads an other_config:lacp-system-id: a nonzero
// Ethernet address, as ovs-vswitchd.conf.db(5) asks.
func parseLACPSystemID(s string) ([6]byte, error) {
	var id [6]byte
	mac, err := net.ParseMAC(s)
	if err != nil || len(mac) != 6 {
		return id, fmt.Errorf("other_config:%s=%s: must be an Ethernet address", lacpSystemIDKey, quoteShort(s))
	}
	copy(id[:], mac)
	if id == [6]byte{} {
		return id, fmt.Errorf("other_config:%s=%s: must not be zero", lacpSystemIDKey, quoteShort(s))
	}
	return id, nil
}

// parseOtherInt reads other_config:key=s, an integer from lo to hi; a
// bad one is an error and 0.
func parseOtherInt(key, s string, lo, hi int64) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("other_config:%s=%s: must be an integer from %d to %d", key, quoteShort(s), lo, hi)
	}
	return n, nil
}

// bondDelay is a bond delay column in milliseconds, forced into
// 0 .. maxBondDelay.
func bondDelay(ms int64) time.Duration {
	return time.Duration(min(max(ms, 0), int64(maxBondDelay/time.Millisecond))) * time.Millisecond
}

// joinErrors joins two Interface.error texts.
func joinErrors(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}

// bondMonitorInterval is how often the members' carrier is read, as
// OVS's default bond-miimon-interval (OVS's carrier mode is told of
// changes; gvsd reads them this often in both modes).
const bondMonitorInterval = 100 * time.Millisecond

// bondFor returns the bond of Port row u (named name), made if new.
// The caller holds st.mu.
func (st *datapathState) bondFor(u ovsdb.UUID, name string) *ofproto.Bond {
	bd := st.bonds[u]
	if bd == nil || bd.Name != name {
		bd = ofproto.NewBond(name)
		st.bonds[u] = bd
	}
	st.liveBonds[u] = true
	return bd
}

// forgetBonds drops the bonds no Port row of the last apply has.
func (st *datapathState) forgetBonds() {
	for u := range st.bonds {
		if !st.liveBonds[u] {
			delete(st.bonds, u)
		}
	}
}

// runBonds reads each bond member's carrier and updates the bonds; a
// goroutine calls it every bondMonitorInterval. The devices are read
// without st.mu held (each read is a few system calls). A bond whose
// active member changed sends learning packets through the new one.
func (st *datapathState) runBonds(now time.Time) {
	type bondAt struct {
		bond  *ofproto.Bond
		br    *ofproto.Bridge
		local string // the bridge's name, and its own port's
	}
	st.mu.Lock()
	devs := map[string]*iface{}
	bonds := make([]bondAt, 0, len(st.bonds))
	for _, bd := range st.bonds {
		at := bondAt{bond: bd}
		for _, n := range bd.Members() {
			if ifc := st.ifaces[n]; ifc != nil && ifc.dev != nil {
				devs[n] = ifc
				at.br = st.bridges[ifc.want.bridge]
				at.local = ifc.want.bridge
			}
		}
		// The bridge's own port, named as the bridge: its address is
		// the default LACP system id.
		if ifc := st.ifaces[at.local]; ifc != nil && ifc.dev != nil && ifc.want.bridge == at.local {
			devs[at.local] = ifc
		}
		bonds = append(bonds, at)
	}
	st.mu.Unlock()
	up := map[string]bool{}
	macs := map[string][6]byte{}
	for n, ifc := range devs {
		info := ifc.dev.Info()
		up[n] = info.LinkUp && !info.Stale
		var a [6]byte
		copy(a[:], info.MAC)
		macs[n] = a
	}
	for _, at := range bonds {
		at.bond.SetBridgeMAC(macs[at.local])
		_, active := at.bond.Run(now, func(p *ofproto.Port) (bool, [6]byte) { return up[p.Name], macs[p.Name] })
		for _, f := range at.bond.LACPTx(now) {
			if err := st.dp.Execute(f.Frame, f.DPPort, outputTo(f.DPPort)); err != nil {
				vswitchdLog.Warn("bond %s: LACPDU: %v", at.bond.Name, err)
			}
		}
		if active != "" && at.br != nil {
			st.sendLearningPackets(at.br, at.bond, active)
		}
	}
}

// maxLearningPackets bounds the learning packets one failover sends.
const maxLearningPackets = 4096

// sendLearningPackets sends, as OVS does when a bond's active member
// changes, a RARP from each address the bridge learned elsewhere than on
// the bond out of the new active member, so that the switch on the
// other side learns where they are now.
func (st *datapathState) sendLearningPackets(br *ofproto.Bridge, bd *ofproto.Bond, active string) {
	cfg := br.Config()
	var out *ofproto.Port
	for _, p := range cfg.Ports {
		if p.Name == active && p.Bond == bd {
			out = p
		}
	}
	if out == nil {
		return
	}
	sent := 0
	for _, e := range br.MACs.Entries() {
		if p := cfg.Ports[e.Port]; p == nil || p.Bond == bd {
			continue
		}
		if sent >= maxLearningPackets {
			vswitchdLog.Warn("bond %s: sent learning packets for %d addresses, not the others", bd.Name, sent)
			return
		}
		tagged := e.VLAN != 0 && e.VLAN != out.VLAN.Tag
		if err := st.dp.Execute(rarp(e.MAC, e.VLAN, tagged), out.DPPort, outputTo(out.DPPort)); err != nil {
			vswitchdLog.Warn("bond %s: learning packet: %v", bd.Name, err)
			return
		}
		sent++
	}
}

// rarp builds a RARP request from mac (OVS's learning packet), tagged
// with vlan if tagged.
func rarp(mac [6]byte, vlan uint16, tagged bool) []byte {
	f := make([]byte, 0, 64)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, mac[:]...)
	if tagged {
		f = append(f, 0x81, 0x00, byte(vlan>>8), byte(vlan))
	}
	f = append(f, 0x80, 0x35, 0, 1, 0x08, 0x00, 6, 4, 0, 3)
	f = append(f, mac[:]...)
	f = append(f, 0, 0, 0, 0)
	f = append(f, mac[:]...)
	f = append(f, 0, 0, 0, 0)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// outputTo is a translator that sends every packet out of one datapath
// port.
type outputTo uint32

func (o outputTo) Translate(_ *datapath.Packet, x *datapath.Xlate) {
	x.Actions = append(x.Actions, datapath.Output(uint32(o)))
}

// bondByName returns the bond named name, or nil. The caller holds st.mu.
func (st *datapathState) bondByName(name string) *ofproto.Bond {
	for _, bd := range st.bonds {
		if bd.Name == name {
			return bd
		}
	}
	return nil
}

// sortedBonds returns the bonds in name order. The caller holds st.mu.
func (st *datapathState) sortedBonds() []*ofproto.Bond {
	out := make([]*ofproto.Bond, 0, len(st.bonds))
	for _, bd := range st.bonds {
		out = append(out, bd)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// registerBondCommands adds bond/show, bond/list,
// bond/set-active-member, bond/enable-member and bond/disable-member.
func (sw *Switch) registerBondCommands(r Registrar) {
	st := sw.state
	r.Register("bond/list", "", 0, 0, func([]string) (string, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		var s strings.Builder
		s.WriteString("bond\ttype\trecircID\tmembers\n")
		for _, bd := range st.sortedBonds() {
			fmt.Fprintf(&s, "%s\t%s\t%d\t%s\n", bd.Name, bd.Mode(), 0, strings.Join(bd.Members(), ", "))
		}
		return s.String(), nil
	})
	r.Register("bond/show", "[port]", 0, 1, func(args []string) (string, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		if len(args) == 1 {
			bd := st.bondByName(args[0])
			if bd == nil {
				return "", fmt.Errorf("no such bond")
			}
			return bd.Show(), nil
		}
		var s strings.Builder
		for _, bd := range st.sortedBonds() {
			s.WriteString(bd.Show())
		}
		return s.String(), nil
	})
	for _, c := range []struct {
		name string
		show func(*ofproto.Bond) string
	}{{"lacp/show", (*ofproto.Bond).ShowLACP}, {"lacp/show-stats", (*ofproto.Bond).ShowLACPStats}} {
		r.Register(c.name, "[port]", 0, 1, func(args []string) (string, error) {
			st.mu.Lock()
			defer st.mu.Unlock()
			if len(args) == 1 {
				bd := st.bondByName(args[0])
				if bd == nil || !bd.LACPOn() {
					return "", fmt.Errorf("no such lacp object")
				}
				return c.show(bd), nil
			}
			var s strings.Builder
			for _, bd := range st.sortedBonds() {
				if bd.LACPOn() {
					s.WriteString(c.show(bd))
				}
			}
			return s.String(), nil
		})
	}
	member := func(args []string) (*ofproto.Bond, error) {
		st.mu.Lock()
		defer st.mu.Unlock()
		bd := st.bondByName(args[0])
		if bd == nil {
			return nil, fmt.Errorf("no such bond")
		}
		return bd, nil
	}
	r.Register("bond/set-active-member", "port member", 2, 2, func(args []string) (string, error) {
		bd, err := member(args)
		if err != nil {
			return "", err
		}
		if err := bd.SetActive(args[1]); err != nil {
			return "", err
		}
		return "done", nil
	})
	for _, c := range []struct {
		name string
		on   bool
	}{{"bond/enable-member", true}, {"bond/disable-member", false}} {
		r.Register(c.name, "port member", 2, 2, func(args []string) (string, error) {
			bd, err := member(args)
			if err != nil {
				return "", err
			}
			if err := bd.SetEnabled(args[1], c.on); err != nil {
				return "", err
			}
			return map[bool]string{true: "enabled", false: "disabled"}[c.on], nil
		})
	}
}

// wantBondOf returns the configuration of the bond whose member is port.
func (st *datapathState) wantBondOf(b *wantBridge, port *ofproto.Port) ofproto.BondConfig {
	for _, p := range b.ports {
		if p.name == port.Name && p.bond != nil {
			return p.bond.cfg
		}
	}
	return ofproto.BondConfig{}
}

// mirrorBondMembers makes a mirror that selects a bond (by its Port row,
// which byPortRow maps to one member) select every member, as OVS's
// select_src_port and select_dst_port of a bond do; a bond that is a
// mirror's output_port leaves normal switching with all its members
// (the copies go out of the member the bond picks).
func mirrorBondMembers(mirrors []*ofproto.Mirror, byPortRow map[ovsdb.UUID]*ofproto.Port, bonds map[ovsdb.UUID][]*ofproto.Port) {
	for u, members := range bonds {
		one := byPortRow[u]
		if one == nil {
			continue
		}
		for _, m := range mirrors {
			if m.OutPort == one {
				for _, p := range members {
					p.MirrorOut = true
				}
			}
			for _, set := range []map[uint32]bool{m.Src, m.Dst} {
				if set[one.DPPort] {
					for _, p := range members {
						set[p.DPPort] = true
					}
				}
			}
		}
	}
}

// startBondMonitor runs runBonds every bondMonitorInterval until the
// returned function is called.
func (st *datapathState) startBondMonitor() func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(bondMonitorInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				st.runBonds(now)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// bondStatsOps returns the updates of the bonds' Port rows: statistics
// bond_rx_dropped (gvs's: the frames NORMAL dropped on the members, see
// ofproto.Bond.RxDrops) and bond_active_slave, the active member's MAC
// address as OVS writes it (empty with none). The caller holds st.mu.
func (st *datapathState) bondStatsOps(snap *ovsdb.Snapshot) []any {
	var ops []any
	for u, bd := range st.bonds {
		if _, ok := snap.Tables["Port"][u]; !ok {
			continue
		}
		row := map[string]any{}
		stats := map[string]uint64{"bond_rx_dropped": bd.RxDrops.Packets.Load()}
		if !sameStats(get(snap, "Port", u, "statistics"), stats) {
			row["statistics"] = statsMap(stats)
		}
		active := []any{"set", []any{}}
		if mac := bd.ActiveMAC(); mac != "" {
			active = []any{"set", []any{mac}}
		}
		if have, _ := get(snap, "Port", u, "bond_active_slave").Str(); have != bd.ActiveMAC() {
			row["bond_active_slave"] = active
		}
		if len(row) > 0 {
			ops = append(ops, updateRow("Port", u, row))
		}
	}
	return ops
}
