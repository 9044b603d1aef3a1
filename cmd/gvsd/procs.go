package main

import "runtime"

// spareProcs is how many Ps gvsd runs with beyond Go's default.
//
// The system ports' non-blocking sends are raw system calls (netdev's
// flushRing, sendChunk): the runtime's bookkeeping for an ordinary one
// woke Go's sysmon thread for every send, about 10 % of gvsd's CPU under
// 64-byte UDP. A raw call keeps its P while the kernel runs the send's
// softirq (the receiving namespace's TCP or UDP input), tens of µs for
// MTU-size frames, and with as many Ps as CPUs the other direction's
// woken thread then waited for one: TCP without a mirror lost 8 %. Two
// spare Ps, one for each direction of a flow, let a thread run while
// another is inside a send (docs/PERFORMANCE.md, "Raw sends with spare
// Ps").
const spareProcs = 2

// procsFor returns the GOMAXPROCS gvsd sets, given the runtime's
// default and whether the user chose it with the GOMAXPROCS variable
// (then it is left alone: 0).
func procsFor(defaultProcs int, userSet bool) int {
	if userSet {
		return 0
	}
	return defaultProcs + spareProcs
}

// setProcs gives gvsd its spare Ps (procsFor).
func setProcs(getenv func(string) string) {
	if n := procsFor(runtime.GOMAXPROCS(0), getenv("GOMAXPROCS") != ""); n > 0 {
		runtime.GOMAXPROCS(n)
	}
}
