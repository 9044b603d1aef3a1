// Package openflow is gvs's OpenFlow wire codec: it turns the bytes
// ovs-ofctl and controllers send into Go values and back, for OpenFlow 1.0
// with the Nicira extensions ovs-ofctl uses by default (NXM matches,
// NXT_FLOW_MOD, NXST_FLOW, Nicira actions) and for OpenFlow 1.3, 1.4 and
// 1.5 with OXM matches and instructions (of14.go: the messages whose
// layout 1.4 and 1.5 changed, OXS statistics, bundles). It frames messages (ReadMessage, a 64 KiB
// limit, EncodeReplies to chain long replies with the MORE flag), decodes
// and encodes every message ovs-ofctl 3.1 exchanges for show, add-flow,
// dump-flows, del-flows, mod-flows, dump-ports(-desc), dump-tables,
// dump-aggregate, dump-desc, packet-out, monitor and probe, and the
// switch-to-controller messages (packet-in, NXT_PACKET_IN2, flow-removed,
// port-status, role). It does not serve connections; the channel does,
// and it is the channel that refuses a message whose header version is not
// the negotiated one (ErrBadVersion, as OVS does): Decode accepts all four.
//
// Every decoder returns an *Error naming the OpenFlow error a switch
// answers with (OFPBRC_BAD_LEN, OFPBAC_BAD_TYPE, OFPBMC_BAD_FIELD...), in
// the numbers of the connection's version (errTable), and never panics.
// Decoded values do not alias the input buffer. Re-encoding a decoded
// message gives back the bytes OVS and ovs-ofctl send (testdata/captures
// holds their traffic, recorded from the real 3.1 binaries, and the tests
// replay it); input with non-zero padding or unknown hello elements comes
// back in that canonical form. testdata/ovs_errors.txt holds malformed
// requests with the error replies ovs-vswitchd 3.1 sent for them, which
// the decoders reproduce byte for byte.
//
// FieldInfo (fields.go) is the one bridge to internal/flow: it maps each
// NXM/OXM field to the ovs-fields(7) name internal/flow parses, so the
// channel converts a []Field to a flow.Match by name without this package
// importing anything above it. Match10.Fields and Match10FromFields turn
// OpenFlow 1.0's fixed match, which ovs-ofctl sends whenever a flow fits
// it, into the same entries and back.
//
// Why hand-written: no maintained Go library speaks OpenFlow 1.0 with
// NXM, which is what ovs-ofctl sends when given no -O flag.
// antrea.io/libOpenflow (maintained, used by Antrea) implements OpenFlow
// 1.3 and 1.5 with Nicira actions, but no 1.0, no NXT_FLOW_MOD and no
// NXST_FLOW; github.com/netrack/openflow is 1.3 only and unmaintained;
// github.com/digitalocean/go-openvswitch drives ovs-ofctl by its text and
// has no wire codec.
package openflow
