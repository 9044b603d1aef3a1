package vswitchd

import (
	"fmt"
	"sort"

	"gvs/internal/ofproto"
	"gvs/internal/ovsdb"
)

// wantBridge is a bridge as the database describes it.
type wantBridge struct {
	uuid        ovsdb.UUID
	name        string
	floodVLANs  []int64
	macAging    int
	macTableMax int
	forwardBPDU bool
	ports       []*wantPort
	mirrors     []*wantMirror
}

// wantPort is a port and its (first) interface as the database describes
// them.
type wantPort struct {
	portUUID  ovsdb.UUID
	ifaceUUID ovsdb.UUID
	bridge    string
	name      string // the interface's name: the device
	typ       string
	options   map[string]string
	vlan      ofproto.PortVLAN
	vlanErr   string
	ofportReq int64
	ofport    int64 // the value in the database, to keep numbers stable
	mtuReq    int64
	bondExtra bool // a second or later interface of one port
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
		for _, bu := range get(snap, "Open_vSwitch", ovs, "bridges").UUIDs() {
			if b := readBridge(snap, bu); b != nil {
				out = append(out, b)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func readBridge(snap *ovsdb.Snapshot, bu ovsdb.UUID) *wantBridge {
	name, ok := get(snap, "Bridge", bu, "name").Str()
	if !ok {
		return nil
	}
	oc := get(snap, "Bridge", bu, "other_config").StringMap()
	b := &wantBridge{uuid: bu, name: name, floodVLANs: get(snap, "Bridge", bu, "flood_vlans").Ints(),
		macAging: macAgingTime(oc), macTableMax: macTableSize(oc),
		forwardBPDU: oc["forward-bpdu"] == "true"}
	for _, pu := range get(snap, "Bridge", bu, "ports").UUIDs() {
		for i, iu := range get(snap, "Port", pu, "interfaces").UUIDs() {
			w := readPort(snap, name, pu, iu)
			w.bondExtra = i > 0
			b.ports = append(b.ports, w)
		}
	}
	sort.Slice(b.ports, func(i, j int) bool { return b.ports[i].name < b.ports[j].name })
	b.mirrors = readMirrors(snap, bu)
	return b
}

func readPort(snap *ovsdb.Snapshot, bridge string, pu, iu ovsdb.UUID) *wantPort {
	w := &wantPort{portUUID: pu, ifaceUUID: iu, bridge: bridge}
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
	v.Mode = m
	if m != ofproto.ModeTrunk && !hasTag {
		// Without a tag these modes have no VLAN to work on; OVS falls
		// back to a trunk port, and so do we.
		v.Mode = ofproto.ModeTrunk
	}
	return v, ""
}

func get(snap *ovsdb.Snapshot, table string, u ovsdb.UUID, column string) ovsdb.Datum {
	d, _ := snap.Get(table, u, column)
	return d
}
