//go:build !linux

package datapath

// lowerCopySenderPriority does nothing where threads have no priority of
// their own.
func lowerCopySenderPriority() int { return 0 }

func setIdlePolicy(int) error { return nil }

var boostPolicy = func(int) error { return nil }
