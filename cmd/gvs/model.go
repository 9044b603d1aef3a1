package main

import (
	"fmt"
	"sort"
)

// switchState is what gvs show reports: its text output is printed from
// it and `gvs show --json` is it, encoded. The JSON shape is documented
// in the README and is stable: fields are added, never renamed or
// removed, and every field is always present (null or [] when empty).
type switchState struct {
	OVSVersion string        `json:"ovs_version"`
	Bridges    []bridgeState `json:"bridges"`
	// Spans are gvs's span sessions (gvs span), mirrors of interfaces on
	// no bridge.
	Spans []spanState `json:"spans"`
	// Problems are what show highlights as errors; show exits 1 when
	// there is any.
	Problems []problem `json:"problems"`
}

type bridgeState struct {
	Name    string        `json:"name"`
	Ports   []portState   `json:"ports"`
	Mirrors []mirrorState `json:"mirrors"`
}

type portState struct {
	Name string `json:"name"`
	// VLANMode is the mode in effect: an empty vlan_mode column is
	// access when the port has a tag and trunk otherwise.
	VLANMode   string           `json:"vlan_mode"`
	Tag        *int64           `json:"tag"`
	Trunks     []int64          `json:"trunks"` // empty: all VLANs
	Interfaces []interfaceState `json:"interfaces"`
}

type interfaceState struct {
	Name    string            `json:"name"`
	Type    string            `json:"type"` // "system" for an empty type column
	OFPort  *int64            `json:"ofport"`
	Options map[string]string `json:"options"`
	Error   *string           `json:"error"`
}

type mirrorState struct {
	Name       string       `json:"name"`
	Select     mirrorSelect `json:"select"`
	OutputPort *string      `json:"output_port"`
	OutputVLAN *int64       `json:"output_vlan"`
	// Statistics has at least tx_packets and tx_bytes.
	Statistics map[string]int64 `json:"statistics"`
	Error      *string          `json:"error"`
}

type mirrorSelect struct {
	All      bool     `json:"all"`
	SrcPorts []string `json:"src_ports"`
	DstPorts []string `json:"dst_ports"`
	VLANs    []int64  `json:"vlans"` // empty: every VLAN
	Filter   *string  `json:"filter"`
}

// problem is one error show highlights, with where it is.
type problem struct {
	Bridge string `json:"bridge"`
	Kind   string `json:"kind"` // "interface", "mirror" or "span" (Bridge empty)
	Name   string `json:"name"`
	Error  string `json:"error"`
}

// buildState turns the database rows into the report.
func buildState(v *dbView) switchState {
	st := switchState{Bridges: []bridgeState{}, Spans: []spanState{}, Problems: []problem{}}
	for _, o := range v.ovs {
		if st.OVSVersion == "" {
			st.OVSVersion = str(o["ovs_version"])
		}
		for _, b := range sortedByName(v.bridges, elems(o["bridges"])) {
			br := buildBridge(v, b)
			st.Bridges = append(st.Bridges, br)
			st.Problems = append(st.Problems, bridgeProblems(br)...)
		}
	}
	for _, r := range v.spans {
		s := buildSpan(r)
		st.Spans = append(st.Spans, s)
		if s.Error != nil {
			st.Problems = append(st.Problems, problem{Kind: "span", Name: s.Name, Error: *s.Error})
		}
	}
	sort.Slice(st.Spans, func(i, j int) bool { return st.Spans[i].Name < st.Spans[j].Name })
	return st
}

func buildBridge(v *dbView, b map[string]any) bridgeState {
	br := bridgeState{Name: str(b["name"]), Ports: []portState{}, Mirrors: []mirrorState{}}
	portNames := map[string]string{}
	for _, port := range sortedByName(v.ports, elems(b["ports"])) {
		portNames[uuidOf(port["_uuid"])] = str(port["name"])
		br.Ports = append(br.Ports, buildPort(v, port))
	}
	for _, m := range sortedByName(v.mirrors, elems(b["mirrors"])) {
		br.Mirrors = append(br.Mirrors, buildMirror(m, portNames))
	}
	return br
}

func buildPort(v *dbView, port map[string]any) portState {
	p := portState{Name: str(port["name"]), VLANMode: str(port["vlan_mode"]), Tag: num(port["tag"]),
		Trunks: nums(port["trunks"]), Interfaces: []interfaceState{}}
	if p.VLANMode == "" {
		p.VLANMode = "trunk"
		if p.Tag != nil {
			p.VLANMode = "access"
		}
	}
	for _, iu := range elems(port["interfaces"]) {
		if ifc := v.interfaces[uuidOf(iu)]; ifc != nil {
			p.Interfaces = append(p.Interfaces, buildInterface(ifc))
		}
	}
	return p
}

func buildInterface(ifc map[string]any) interfaceState {
	typ := str(ifc["type"])
	if typ == "" {
		typ = "system"
	}
	return interfaceState{Name: str(ifc["name"]), Type: typ, OFPort: num(ifc["ofport"]),
		Options: strMap(ifc["options"]), Error: optString(str(ifc["error"]))}
}

func buildMirror(m map[string]any, portNames map[string]string) mirrorState {
	all, _ := m["select_all"].(bool)
	ms := mirrorState{
		Name: str(m["name"]),
		Select: mirrorSelect{All: all, SrcPorts: refNames(m["select_src_port"], portNames),
			DstPorts: refNames(m["select_dst_port"], portNames), VLANs: nums(m["select_vlan"]),
			Filter: optString(str(m["filter"]))},
		OutputVLAN: num(m["output_vlan"]),
		Statistics: map[string]int64{"tx_packets": 0, "tx_bytes": 0},
	}
	for k, s := range strMap(m["statistics"]) {
		if n := num(s); n != nil {
			ms.Statistics[k] = *n
		}
	}
	if out := elems(m["output_port"]); len(out) > 0 {
		name, ok := portNames[uuidOf(out[0])]
		ms.OutputPort = &name
		if !ok {
			ms.Error = optString("the output_port is not a port of this bridge, so the mirror copies nothing")
		}
	} else if ms.OutputVLAN == nil {
		ms.Error = optString("the mirror has no output_port or output_vlan, so it copies nothing")
	}
	return ms
}

// refNames names the ports a set of Port references points to.
func refNames(v any, portNames map[string]string) []string {
	out := []string{}
	for _, u := range elems(v) {
		name, ok := portNames[uuidOf(u)]
		if !ok {
			name = fmt.Sprintf("(not on this bridge: %s)", uuidOf(u))
		}
		out = append(out, name)
	}
	return out
}

func bridgeProblems(br bridgeState) []problem {
	var out []problem
	for _, p := range br.Ports {
		for _, ifc := range p.Interfaces {
			if ifc.Error != nil {
				out = append(out, problem{Bridge: br.Name, Kind: "interface", Name: ifc.Name, Error: *ifc.Error})
			}
		}
	}
	for _, m := range br.Mirrors {
		if m.Error != nil {
			out = append(out, problem{Bridge: br.Name, Kind: "mirror", Name: m.Name, Error: *m.Error})
		}
	}
	return out
}
