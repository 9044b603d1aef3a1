// Package span mirrors host interfaces that are on no bridge: a session
// selects packets of one or more Linux interfaces with a BPF program
// compiled from its rules, so that the kernel leaves every packet the
// rules do not select, and copies the selected ones to destinations (a
// device, a pcapng file, JSON metadata records, a tunnel).
//
// Two paths:
//   - eBPF at tc (ebpf.go), for every session: a program attached with
//     TCX links at each source's ingress and/or egress tests the rules,
//     clones the selected packets to the plain dev: destinations itself
//     (bpf_clone_redirect), as tc mirred does, and hands them to gvsd
//     through a perf event array (sample_linux.go) for the destinations
//     gvsd writes (pcap, json, tunnels, dev: with a VLAN tag, snaplen),
//     with a record of their length, VLAN tag, segment size, attach point
//     (the direction) and time. Why: a packet socket on a device makes
//     the kernel clone every packet it sends before the socket's filter
//     runs (dev_queue_xmit_nit), so even a filter that selects nothing
//     costs the mirrored traffic (docs/PERFORMANCE.md). The links are not
//     pinned, so the kernel detaches the program when gvsd exits or is
//     killed.
//   - AF_PACKET (source_linux.go): a packet socket per source with the
//     classic filter, feeding the same bounded per-destination queues;
//     the fallback when the kernel refuses to load or attach the eBPF
//     program (Session.Path says why).
//
// The eBPF program is the classic filter translated instruction by
// instruction, so both paths select exactly the same packets.
//
// The source's own traffic never passes through gvs: a slow destination
// or a dead gvsd costs copies, never the original packets.
//
// Rules are OVS match syntax (internal/flow), "accept MATCH" or "reject
// MATCH", evaluated in order; the first that matches decides. Compile
// turns them into the filter. Nothing here knows about OVSDB rows:
// vswitchd turns the Span table into Config values.
package span
