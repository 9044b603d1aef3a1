//go:build !amd64

package packet

// vectorSum: no vector loop on this architecture.
var vectorSum = false

func sum32Vector([]byte) uint64 { return 0 }
