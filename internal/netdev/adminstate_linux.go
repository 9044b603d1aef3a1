//go:build linux

package netdev

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// SetAdminUp brings the kernel device called name up or down (`ip link
// set NAME up|down`), in the calling thread's network namespace: what
// OVS does for an OpenFlow port mod of OFPPC_PORT_DOWN.
func SetAdminUp(name string, up bool) error {
	err := withIfreq(name, func(fd int, ifr *unix.Ifreq) error {
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
			return err
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
		return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	})
	if err != nil {
		return fmt.Errorf("device %s: set admin state: %w", name, err)
	}
	return nil
}

// withIfreq runs an ioctl (fn) on device name's ifreq, with a socket
// of the calling thread's namespace.
func withIfreq(name string, fn func(fd int, ifr *unix.Ifreq) error) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	return fn(fd, ifr)
}

// LinkStates reads every device of the calling thread's namespace in
// one dump, by name: what a poll of many ports' link and admin state
// reads instead of each port's Info (a netlink request apiece).
func LinkStates() (map[string]Info, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	out := make(map[string]Info, len(ifs))
	for _, ifc := range ifs {
		out[ifc.Name] = Info{MAC: ifc.HardwareAddr, Ifindex: ifc.Index, MTU: ifc.MTU,
			LinkUp: ifc.Flags&net.FlagRunning != 0, AdminUp: ifc.Flags&net.FlagUp != 0}
	}
	return out, nil
}
