// Package connmgr is a bridge's OpenFlow channel (OVS's connmgr and
// ofconn): it listens on <rundir>/<bridge>.mgmt, where ovs-ofctl looks
// with no flags, negotiates OpenFlow 1.0 (with the Nicira extensions
// ovs-ofctl uses by default), 1.3, 1.4 or 1.5, and serves flow mods,
// bundles of them (bundle.go, committed all or nothing), flow,
// aggregate, table and port statistics, port descriptions, features,
// configuration, barriers, echo and packet-out against the bridge's
// ofproto.Tables. It converts between the wire values of
// internal/openflow and the flow model of internal/flow (conv.go), so
// that neither of those packages knows the other.
//
// The same channel serves the bridge's controllers (controller.go): the
// Controller rows' targets, dialled with backoff or listened on, their
// inactivity probes and status, the fail mode's flushes and fail-open,
// and the packet-ins translation sends (packetin.go), queued per
// connection without ever blocking the port thread. Packet-outs run
// through the datapath (Executor) as a rule's actions would.
//
// One goroutine serves each connection and recovers from a panic through
// internal/guard; a bad message gets the OpenFlow error OVS would send
// and the connection goes on. Connections per bridge are limited
// (MaxConns); messages are limited by the codec (64 KiB), flows by the
// tables' MaxFlows.
package connmgr
