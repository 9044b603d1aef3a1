package flow

// OpenFlow10Actions rewrites actions into the form OpenFlow 1.0 with
// Nicira extensions carries them, which is how ovs-ofctl dump-flows
// prints them by default: set_field becomes mod_dl_src, mod_nw_dst,
// mod_tp_dst... where OpenFlow 1.0 has such an action and load otherwise;
// mod_nw_ecn and mod_nw_ttl become loads; goto_table becomes resubmit;
// pop_vlan prints as strip_vlan; a note is padded with zero bytes to fill
// its 8-byte aligned action. The result prints as the dump of a flow
// added with the original actions. The input is not changed.
func OpenFlow10Actions(acts []Action) []Action {
	return openFlow10Actions(acts, false)
}

// openFlow10Actions is OpenFlow10Actions; with keepIPMods, mod_nw_ecn and
// mod_nw_ttl stay as they are instead of becoming loads.
func openFlow10Actions(acts []Action, keepIPMods bool) []Action {
	out := make([]Action, 0, len(acts))
	for _, a := range acts {
		out = append(out, of10Action(a, keepIPMods)...)
	}
	return out
}

// OpenFlow10 returns the flow as an OpenFlow 1.0 flow stats reply with
// Nicira extensions describes it (ovs-ofctl's default): its actions in
// OpenFlow10Actions form, and without flags and importance, which that
// reply does not carry.
func (f *Flow) OpenFlow10() *Flow {
	c := *f
	c.Actions = OpenFlow10Actions(f.Actions)
	if f.Match != nil && checkActionPrereqs(f.Match, c.Actions) != nil {
		// mod_nw_ecn and mod_nw_ttl in a flow that does not match IP
		// (allowed, as in OVS: they do nothing to other packets) would
		// print as loads that no flow line without ip may hold.
		c.Actions = openFlow10Actions(f.Actions, true)
	}
	c.Flags, c.Importance = FlowFlags{}, 0
	return &c
}

func of10Action(a Action, keepIPMods bool) []Action {
	switch a := a.(type) {
	case SetField:
		return of10SetField(a)
	case SetIPECN:
		if keepIPMods {
			return []Action{a}
		}
		return []Action{loadWhole("nw_ecn", uint64(a.ECN))}
	case SetIPTTL:
		if keepIPMods {
			return []Action{a}
		}
		return []Action{loadWhole("nw_ttl", uint64(a.TTL))}
	case GotoTable:
		return []Action{Resubmit{InPort: PortInPort, Table: a.Table}}
	case StripVLAN:
		return []Action{StripVLAN{}}
	case Note:
		// The action is a 10-byte header and the data, in 8-byte units.
		n := (len(a.Data)+10+7)/8*8 - 10
		data := make([]byte, n)
		copy(data, a.Data)
		return []Action{Note{data}}
	case Clone:
		return []Action{Clone{openFlow10Actions(a.Actions, keepIPMods)}}
	case CT:
		a.Exec = openFlow10Actions(a.Exec, keepIPMods)
		if len(a.Exec) == 0 {
			a.Exec = nil
		}
		return []Action{a}
	}
	return []Action{a}
}

func loadWhole(field string, v uint64) Load {
	w, _ := fieldWidth(field)
	return Load{Dst: Subfield{Field: field, Bits: w}, Value: putUint(v)}
}

// of10SetField maps a set_field onto OpenFlow 1.0's own actions where one
// exists (as OVS does, dropping any mask: the value is already masked),
// else onto loads, one per run of mask bits, each at most 64 bits wide
// (NXM's reg_load limit), the low bits first.
func of10SetField(a SetField) []Action {
	v := getUint64(a.Value)
	switch a.Field {
	case "eth_src", "eth_dst":
		return []Action{SetEthAddr{a.Field == "eth_dst", [6]byte(a.Value[10:])}}
	case "ip_src", "ip_dst":
		return []Action{SetIPv4Addr{a.Field == "ip_dst", [4]byte(a.Value[12:])}}
	case "tcp_src", "tcp_dst", "udp_src", "udp_dst":
		return []Action{SetL4Port{a.Field == "tcp_dst" || a.Field == "udp_dst", uint16(v)}}
	case "nw_tos":
		return []Action{SetIPTOS{uint8(v)}}
	case "ip_dscp":
		return []Action{SetIPTOS{uint8(v << 2)}}
	case "vlan_pcp", "dl_vlan_pcp":
		return []Action{SetVLANPCP{uint8(v)}}
	case "vlan_vid", "dl_vlan":
		return []Action{SetVLANVID{uint16(v & 0xfff)}}
	}
	w, ok := fieldWidth(a.Field)
	if !ok {
		return []Action{a}
	}
	var out []Action
	for start := uint16(0); start < w; {
		if !bitAt(a.Mask, start) {
			start++
			continue
		}
		n := uint16(0)
		var val uint64
		for start+n < w && n < 64 && bitAt(a.Mask, start+n) {
			if bitAt(a.Value, start+n) {
				val |= 1 << n
			}
			n++
		}
		out = append(out, Load{Dst: Subfield{Field: a.Field, Start: start, Bits: n}, Value: putUint(val)})
		start += n
	}
	return out
}

// bitAt reports bit i (0 the least significant) of a right-aligned value.
func bitAt(b [16]byte, i uint16) bool { return b[15-i/8]>>(i%8)&1 != 0 }
