package vswitchd

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"gvs/internal/datapath"
	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
	"gvs/internal/packet"
)

// wantBridge is a bridge as the database describes it.
type wantBridge struct {
	uuid        ovsdb.UUID
	name        string
	floodVLANs  []int64
	macAging    int
	macTableMax int
	forwardBPDU bool
	vlanLimit   int      // the Open_vSwitch table's vlan-limit, see readVLANLimit
	datapathID  string   // other_config:datapath-id
	protocols   []string // Bridge.protocols; empty: OVS's default
	failMode    string   // Bridge.fail_mode
	controllers []wantController
	ports       []*wantPort
	mirrors     []*wantMirror
}

// wantPort is a port and one of its interfaces as the database
// describes them: a bond (a port of several interfaces) has one for each
// member, all with the same bond.
type wantPort struct {
	portUUID  ovsdb.UUID
	ifaceUUID ovsdb.UUID
	bridge    string
	port      string // the Port row's name
	name      string // the interface's name: the device
	typ       string
	options   map[string]string
	vlan      ofproto.PortVLAN
	vlanErr   string
	ofportReq int64
	ofport    int64 // the value in the database, to keep numbers stable
	mtuReq    int64
	bond      *wantBond // nil: a port of one interface
	bondErr   string    // why this member cannot be used (see readBond)
}

// key says when an interface must be reopened: a change of any of these.
func (w *wantPort) key() string {
	keys := make([]string, 0, len(w.options))
	for k := range w.options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := w.bridge + "\x00" + w.typ
	for _, k := range keys {
		s += "\x00" + k + "=" + w.options[k]
	}
	return s
}

// desiredBridges reads the bridges, ports and interfaces of the snapshot,
// in a stable order.
func desiredBridges(snap *ovsdb.Snapshot) []*wantBridge {
	var out []*wantBridge
	for ovs := range snap.Tables["Open_vSwitch"] {
		vlanLimit := readVLANLimit(get(snap, "Open_vSwitch", ovs, "other_config").StringMap())
		for _, bu := range get(snap, "Open_vSwitch", ovs, "bridges").UUIDs() {
			if b := readBridge(snap, bu); b != nil {
				b.vlanLimit = vlanLimit
				out = append(out, b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out[:min(len(out), MaxBridges)] // the check refuses more, but not a remote server's
}

func readBridge(snap *ovsdb.Snapshot, bu ovsdb.UUID) *wantBridge {
	name, ok := get(snap, "Bridge", bu, "name").Str()
	if !ok {
		return nil
	}
	oc := get(snap, "Bridge", bu, "other_config").StringMap()
	b := &wantBridge{uuid: bu, name: name, floodVLANs: get(snap, "Bridge", bu, "flood_vlans").Ints(),
		macAging: macAgingTime(oc), macTableMax: macTableSize(oc),
		forwardBPDU: oc["forward-bpdu"] == "true", datapathID: oc["datapath-id"]}
	for _, p := range get(snap, "Bridge", bu, "protocols").Keys {
		if ps, ok := p.(string); ok {
			b.protocols = append(b.protocols, ps)
		}
	}
	b.failMode, _ = get(snap, "Bridge", bu, "fail_mode").Str()
	b.controllers = readControllers(snap, bu)
	for _, pu := range get(snap, "Bridge", bu, "ports").UUIDs() {
		ius := get(snap, "Port", pu, "interfaces").UUIDs()
		var bond *wantBond
		if len(ius) > 1 {
			bond = readBond(snap, pu)
		}
		for i, iu := range ius {
			w := readPort(snap, name, pu, iu)
			if bond != nil {
				w.bond = bond
				w.vlanErr = joinErrors(w.vlanErr, bond.warning)
				if i >= ofproto.MaxBondMembers {
					w.bondErr = fmt.Sprintf("%s: bond %s has more than %d interfaces: gvsd uses the first %d", w.name, w.port, ofproto.MaxBondMembers, ofproto.MaxBondMembers)
				}
			}
			b.ports = append(b.ports, w)
		}
	}
	sort.Slice(b.ports, func(i, j int) bool { return b.ports[i].name < b.ports[j].name })
	b.mirrors = readMirrors(snap, bu)
	return b
}

func readPort(snap *ovsdb.Snapshot, bridge string, pu, iu ovsdb.UUID) *wantPort {
	w := &wantPort{portUUID: pu, ifaceUUID: iu, bridge: bridge}
	w.port, _ = get(snap, "Port", pu, "name").Str()
	w.name, _ = get(snap, "Interface", iu, "name").Str()
	w.typ, _ = get(snap, "Interface", iu, "type").Str()
	w.options = get(snap, "Interface", iu, "options").StringMap()
	w.ofportReq, _ = get(snap, "Interface", iu, "ofport_request").Int()
	w.ofport, _ = get(snap, "Interface", iu, "ofport").Int()
	w.mtuReq, _ = get(snap, "Interface", iu, "mtu_request").Int()
	if w.name == bridge && w.typ == "" {
		w.typ = "internal"
	}
	w.vlan, w.vlanErr = readVLAN(snap, pu)
	return w
}

// readVLAN reads a port's VLAN columns.
func readVLAN(snap *ovsdb.Snapshot, pu ovsdb.UUID) (ofproto.PortVLAN, string) {
	tag, hasTag := get(snap, "Port", pu, "tag").Int()
	mode, _ := get(snap, "Port", pu, "vlan_mode").Str()
	trunks := get(snap, "Port", pu, "trunks").Ints()
	v := ofproto.PortVLAN{Tag: uint16(tag), AllTrunks: len(trunks) == 0}
	for _, t := range trunks {
		v.Trunks.Add(uint16(t))
	}
	m, ok := ofproto.ParseVLANMode(mode, hasTag)
	if !ok {
		return v, fmt.Sprintf("unknown vlan_mode %q", mode)
	}
	if m == ofproto.ModeDot1qTunnel {
		if errText := readDot1qTunnel(snap, pu, &v); errText != "" {
			return v, errText
		}
	}
	v.Mode = m
	if m != ofproto.ModeTrunk && !hasTag {
		// Without a tag these modes have no VLAN to work on; OVS falls
		// back to a trunk port, and so do we.
		v.Mode = ofproto.ModeTrunk
	}
	return v, ""
}

// readFlowLimit reads the Open_vSwitch table's other_config:flow-limit,
// how many flows each port thread's cache holds; absent or not a number
// (which the commit check refuses), datapath.DefaultFlowLimit.
func readFlowLimit(snap *ovsdb.Snapshot) int {
	for ovs := range snap.Tables["Open_vSwitch"] {
		oc := get(snap, "Open_vSwitch", ovs, "other_config").StringMap()
		if n, err := strconv.Atoi(oc["flow-limit"]); err == nil && n >= 0 && n <= datapath.MaxFlowLimit {
			return n
		}
	}
	return datapath.DefaultFlowLimit
}

// readBusyPoll reads the Open_vSwitch table's other_config:
// gvs-busy-poll-us; absent or out of range (which the commit check
// refuses), 0: no spinning.
func readBusyPoll(snap *ovsdb.Snapshot) time.Duration {
	for ovs := range snap.Tables["Open_vSwitch"] {
		oc := get(snap, "Open_vSwitch", ovs, "other_config").StringMap()
		if n, err := strconv.ParseInt(oc[busyPollKey], 10, 64); err == nil && n >= 0 && n <= maxBusyPollUS {
			return time.Duration(n) * time.Microsecond
		}
	}
	return 0
}

// readHWOffload reads the Open_vSwitch table's other_config:hw-offload
// (the commit check keeps it true or false).
func readHWOffload(snap *ovsdb.Snapshot) bool {
	for ovs := range snap.Tables["Open_vSwitch"] {
		oc := get(snap, "Open_vSwitch", ovs, "other_config").StringMap()
		on, _ := parseHWOffload(oc[hwOffloadKey])
		return on
	}
	return false
}

// readVLANLimit reads other_config:vlan-limit as OVS does: absent or not
// a number, 1 (the default); 0 or less, no limit but the datapath's; gvs,
// like OVS's userspace datapath, sees at most two headers.
func readVLANLimit(oc map[string]string) int {
	n, err := strconv.Atoi(oc["vlan-limit"])
	switch {
	case err != nil:
		return 1
	case n <= 0:
		return packet.MaxVLANs
	}
	return min(n, packet.MaxVLANs)
}

// readDot1qTunnel reads the columns only a dot1q-tunnel port uses: cvlans
// and other_config:qinq-ethtype. An unknown qinq-ethtype is reported and
// taken as 802.1ad, which is what OVS does with it (silently).
func readDot1qTunnel(snap *ovsdb.Snapshot, pu ovsdb.UUID, v *ofproto.PortVLAN) string {
	if cvlans := get(snap, "Port", pu, "cvlans").Ints(); len(cvlans) > 0 {
		v.CVLANs = &ofproto.VLANSet{}
		for _, c := range cvlans {
			v.CVLANs.Add(uint16(c))
		}
	}
	switch e := get(snap, "Port", pu, "other_config").StringMap()["qinq-ethtype"]; e {
	case "", "802.1ad":
		v.QinQTPID = packet.EtherTypeQinQ
	case "802.1q":
		v.QinQTPID = packet.EtherTypeVLAN
	default:
		v.QinQTPID = packet.EtherTypeQinQ
		return fmt.Sprintf("unknown other_config:qinq-ethtype %q (802.1ad or 802.1q): using 802.1ad", e)
	}
	return ""
}

func get(snap *ovsdb.Snapshot, table string, u ovsdb.UUID, column string) ovsdb.Datum {
	d, _ := snap.Get(table, u, column)
	return d
}
