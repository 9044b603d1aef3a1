// Package flow is gvs's model of an OpenFlow match: which bits of a packet's
// flow key (packet.Key) a rule looks at and what they must be. It reads and
// prints matches in the text syntax of ovs-ofctl and ovs-fields(7)
// ("tcp,nw_src=10.0.0.0/24,tp_dst=0x50/0xfff0"), enforces the field
// prerequisites OpenFlow defines, and tests a flow key against a match
// without allocating.
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
//   - Fields gvs's flow key does not carry (NSH, tun_metadata, conj_id,
//     packet_type...) are refused as unsupported.
//
// As in OVS, fields that share a key member in OpenFlow 1.0 are
// interchangeable: tp_dst, tcp_dst, udp_dst and sctp_dst (and icmp_code)
// all mean the transport destination of whatever protocol the match names;
// nw_src is arp_spa in an ARP match; arp_sha is nd_sll in a neighbor
// solicitation match.
package flow
