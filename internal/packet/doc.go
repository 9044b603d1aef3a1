// Package packet reads and edits Ethernet frames on gvs's packet path: it
// extracts the flow key a frame is matched on, records where each header
// starts so later stages can rewrite it, and offers the few in-place edits
// (VLAN push/pop/set, checksums) that switching and mirroring need.
//
// Nothing here allocates per packet. Headers are read through views: named
// byte-slice types (Ethernet, IPv4, TCP, ...) whose methods read or write
// fields in place, in the style of gVisor's pkg/tcpip/header. A view's
// accessors assume the slice is at least as long as the header's fixed part
// (EthernetLen, IPv4MinLen, ...); Parse checks lengths before it builds a
// view, and so must any other caller. Parse itself never panics, whatever
// the input.
//
// Buffers that may grow at the front (VLAN push, and later tunnel
// encapsulation) keep Headroom free bytes before the frame; see PushVLAN.
package packet
