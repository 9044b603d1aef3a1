// Package span mirrors host interfaces that are on no bridge: a session
// reads copies of the packets of one or more Linux interfaces through
// AF_PACKET sockets, with a classic BPF program attached to each socket so
// that the kernel drops every packet the session's rules do not select
// before it reaches user space, and hands the copies to destinations (a
// device, a pcapng file, JSON metadata records) through bounded queues.
//
// The source's own traffic never passes through gvs: the kernel gives the
// socket a clone of each selected packet, so a slow destination or a dead
// gvsd costs copies, never the original packets.
//
// Rules are OVS match syntax (internal/flow), "accept MATCH" or "reject
// MATCH", evaluated in order; the first that matches decides. Compile
// turns them into the filter. Nothing here knows about OVSDB rows:
// vswitchd turns the Span table into Config values.
package span
