//go:build !linux

package datapath

// lowerCopySenderPriority does nothing where threads have no nice value
// of their own.
func lowerCopySenderPriority() {}
