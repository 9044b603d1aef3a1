//go:build linux

package netdev

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// SetAdminUp brings the kernel device called name up or down (`ip link
// set NAME up|down`), in the calling thread's network namespace: what
// OVS does for an OpenFlow port mod of OFPPC_PORT_DOWN.
func SetAdminUp(name string, up bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("device %s: socket: %w", name, err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return fmt.Errorf("device %s: %w", name, err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("device %s: read flags: %w", name, err)
	}
	flags := ifr.Uint16()
	want := flags &^ unix.IFF_UP
	if up {
		want |= unix.IFF_UP
	}
	if want == flags {
		return nil
	}
	ifr.SetUint16(want)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("device %s: set flags: %w", name, err)
	}
	return nil
}
