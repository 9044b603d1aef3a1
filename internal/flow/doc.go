// Package flow is gvs's model of OpenFlow flows: matches (which bits of a
// packet's flow key, packet.Key, a rule looks at and what they must be),
// actions, and whole flows, read from and printed to the text syntax of
// ovs-ofctl, ovs-fields(7) and ovs-actions(7). It enforces the field
// prerequisites OpenFlow defines and tests a flow key against a match
// without allocating. It executes nothing and keeps no tables: ofproto
// does that, and the OpenFlow codec turns these values into messages.
//
// Registers (reg0-reg15, xreg0-xreg7, xxreg0-xxreg3), metadata, pkt_mark,
// the tunnel fields and every ct_* field live in packet.Key itself, beside
// the header fields, rather than in a side structure the caller fills: a
// match is then one masked compare over one fixed-size key, and the flow
// cache can key on the same memory. packet.Parse zeroes them (it writes
// the whole key, so the bigger key costs no allocation and no measurable
// time); the pipeline stages that own them (actions, conntrack, tunnels)
// set them.
//
// Port names (in_port=veth_l0, output:veth_r0, resubmit(veth_r0,1)) are
// resolved through functions the caller supplies (ParseOptions.PortByName,
// FormatOptions.PortName), so that this package needs no bridge. Names
// print as ovs-ofctl --names prints them: quoted unless they are a letter
// followed by letters and digits.
//
// Actions are an ordered []Action of the concrete types in actions.go, ct.go
// and learn.go; ParseActions reads them and FormatActions prints them as
// OVS prints the same actions after parsing them (OpenFlow 1.5's view).
// ovs-ofctl's default, OpenFlow 1.0 with Nicira extensions, carries some of
// them differently (set_field as load or mod_dl_dst, goto_table as resubmit,
// notes padded); OpenFlow10Actions and Flow.OpenFlow10 give that form, which
// is what ovs-ofctl dump-flows prints by default. ParseFlow reads a whole
// add-flow line; Flow.Format prints it as dump-flows --no-stats does and
// Flow.FormatStats as dump-flows does. testdata/ovs31 holds what the real
// OVS 3.1 printed for the same flows, and gen.sh, which produced it.
//
// A Match is a value key and a mask key of the same layout: a bit the mask
// leaves zero is wildcarded. ParseMatch builds one from text; String prints
// it the way ovs-ofctl prints the same match, and parsing the printed text
// gives the same Match again. Matches compares only the 64-bit words of
// the key the mask touches.
//
// ParseMatch accepts what ovs-ofctl accepts, with these deliberate
// differences, all of them inputs ovs-ofctl silently changes:
//   - A field whose prerequisites are missing (tp_dst=80 with no tcp or
//     udp, nw_src with no ip or arp) is an error; ovs-ofctl drops it.
//   - A value that does not fit is an error: dl_vlan=4096, vlan_pcp=8,
//     nw_tos=3 (ECN bits), nw_ecn=4, arp_op=256, mpls_label=0x100000,
//     nw_src=10.0.0.256; ovs-ofctl truncates them.
//   - "field=" with no value and a bare field name are errors; ovs-ofctl
//     ignores them.
//   - ct_state values no packet can have (+new+est, +inv+new, +new-trk)
//     are refused here; OVS refuses them only when the flow is added.
//   - ip_frag also takes value/mask numbers (nw_frag=0x2/0x3), so that
//     every match prints as text that parses back.
//   - Fields gvs's flow key does not carry (NSH, tun_metadata,
//     packet_type...) are refused as unsupported.
//
// ParseActions and ParseFlow differ from ovs-ofctl in these ways:
//   - ct(nat(src)) and other nat with arguments without commit are refused
//     here; ovs-ofctl passes them and the OVS switch refuses them.
//   - drop must be the only action; goto_table the last.
//   - conjunction nested in clone(...) or ct(exec(...)) is refused.
//   - An unbalanced parenthesis is an error wherever it is.
//   - Actions gvs does not parse yet are "unknown action": enqueue,
//     meter, write_metadata, set_queue, multipath, bundle,
//     output(port=...,max_len=...), check_pkt_larger, sample, encap/decap,
//     push_mpls/pop_mpls, and ct's timeout= argument.
//   - ct_state=+trk,+new (the tutorials' spelling) is accepted with
//     ParseOptions.LenientCtState, as gvs's own CLI does; ovs-ofctl refuses.
//
// As in OVS, fields that share a key member in OpenFlow 1.0 are
// interchangeable: tp_dst, tcp_dst, udp_dst and sctp_dst (and icmp_code)
// all mean the transport destination of whatever protocol the match names;
// nw_src is arp_spa in an ARP match; arp_sha is nd_sll in a neighbor
// solicitation match.
package flow
