//go:build race

package ofproto

// raceEnabled: the race detector is on; its sync.Pool drops pooled
// items at random, so allocation counts through a pool mean nothing.
const raceEnabled = true
