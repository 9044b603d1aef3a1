//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// An internal port's TAP device is persistent: it stays when gvsd's file
// descriptor closes, so that a crash, or an exit without --cleanup, leaves
// the interface, with the addresses and the namespace the operator gave
// it, to the host using it (the kernel drops what it sends until someone
// attaches again). When gvsd opens an internal port whose device exists,
// it re-attaches to it, wherever it has been moved, instead of failing or
// making a new one: the same pings work again after a restart.
//
// A device is taken over only if it is a TAP device that no process has
// open and that carries the interface alias (ifalias) gvsd gave it at
// creation, which names the namespace of the gvsd that created it. So gvsd
// never takes another program's TAP (a VM's, one made with `ip tuntap`),
// nor one of another gvsd running in another namespace, nor any other kind
// of device of that name. It looks in its own namespace, then in each one
// named in /var/run/netns (the `ip netns` ones). A device moved into an
// unnamed namespace (a container's) is not found: a new one is made in
// gvsd's namespace, and the old one stays until deleted.

// namedNetnsDir is where `ip netns` keeps its named namespaces.
const namedNetnsDir = "/var/run/netns"

// tapAlias is the ifalias that marks a device as an internal port made by
// a gvsd running in namespace home.
func tapAlias(home netnsID) string {
	return fmt.Sprintf("gvs internal port (gvsd netns %d)", home.ino)
}

// isTapOf reports whether the device is a TAP device labelled alias.
func (l *kernelLink) isTapOf(alias string) bool {
	return l.kind == "tun" && l.tun == unix.IFF_TAP && l.alias == alias
}

// threadNetns identifies the network namespace of the calling thread.
func threadNetns() (netnsID, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return netnsID{}, fmt.Errorf("find own network namespace: %w", err)
	}
	return netnsID{dev: st.Dev, ino: st.Ino}, nil
}

// openTapDevice returns a TAP fd for the port: attached to the device a
// previous gvsd left, wherever it is now (found describes it), or to a
// new device in the calling thread's namespace, home (found is nil).
func openTapDevice(cfg Config, home netnsID) (fd int, found *kernelLink, err error) {
	alias := tapAlias(home)
	link, err := lookupLink(cfg.Name)
	if err != nil {
		return -1, nil, err
	}
	if link != nil {
		if !link.isTapOf(alias) {
			return -1, nil, unix.EEXIST // another device has the name
		}
		fd, err := attachTap(cfg, link)
		return fd, link, err
	}
	fd, found, err = attachInNamedNetns(cfg, home, alias)
	if err != nil || found != nil {
		return fd, found, err
	}
	fd, err = createTap(cfg, alias)
	return fd, nil, err
}

// createTap makes a new persistent TAP device labelled alias.
func createTap(cfg Config, alias string) (int, error) {
	fd, err := openTunFd()
	if err != nil {
		return -1, err
	}
	// IFF_TUN_EXCL refuses a device that appeared since the lookup
	// instead of attaching to it.
	err = setTapIff(fd, cfg.Name, unix.IFF_TUN_EXCL)
	if err == nil {
		// Until TUNSETPERSIST, closing fd deletes the device, so a
		// failure leaves nothing behind.
		err = setLinkAlias(cfg.Name, alias)
	}
	if err == nil {
		err = configureTap(fd, cfg)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// attachTap attaches a new fd to link, the port's existing device in the
// calling thread's namespace, and applies the port's settings again.
func attachTap(cfg Config, link *kernelLink) (int, error) {
	fd, err := openTunFd()
	if err != nil {
		return -1, err
	}
	err = setTapIff(fd, cfg.Name, 0)
	if err == nil {
		// Without IFF_TUN_EXCL, TUNSETIFF makes a new device if ours
		// vanished since the lookup: refuse it (it is not persistent,
		// so closing fd removes it).
		err = checkSameLink(cfg.Name, link)
	}
	if err == nil {
		err = configureTap(fd, cfg)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("re-attach: %w", err)
	}
	return fd, nil
}

func checkSameLink(name string, want *kernelLink) error {
	now, err := lookupLink(name)
	if err != nil {
		return err
	}
	if now == nil || now.index != want.index {
		return unix.ENODEV
	}
	return nil
}

func openTunFd() (int, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open /dev/net/tun: %w", err)
	}
	return fd, nil
}

// setTapIff attaches fd to the TAP device name, creating it if it does
// not exist. A device in use, or one that exists while excl
// (IFF_TUN_EXCL) is asked, is reported as EEXIST, which the operator
// reads as "File exists".
func setTapIff(fd int, name string, excl uint16) error {
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR | excl)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return unix.EEXIST
		}
		return err
	}
	return nil
}

// configureTap applies the port's settings to the device fd is attached
// to, and makes it persistent last.
func configureTap(fd int, cfg Config) error {
	if cfg.MTU > 0 {
		if err := setMTU(cfg.Name, cfg.MTU); err != nil {
			return err
		}
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETPERSIST, 1); err != nil {
		return fmt.Errorf("make persistent: %w", err)
	}
	return nil
}

// attachInNamedNetns looks for the port's device in each namespace named
// in /var/run/netns other than home, and attaches to the first one that
// gvsd made and nobody uses. The search runs on a thread of its own that
// is never unlocked, so no other goroutine ever runs in a namespace it
// entered and the runtime ends the thread when the search is over. The
// TAP fd stays valid in every thread.
func attachInNamedNetns(cfg Config, home netnsID, alias string) (int, *kernelLink, error) {
	entries, err := os.ReadDir(namedNetnsDir)
	if err != nil || len(entries) == 0 {
		return -1, nil, nil // no named namespace: nowhere else to look
	}
	type result struct {
		fd   int
		link *kernelLink
		err  error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		var r result
		r.fd, r.link, r.err = searchNamedNetns(entries, cfg, home, alias)
		done <- r
	}()
	r := <-done
	return r.fd, r.link, r.err
}

// searchNamedNetns enters each namespace in turn on the locked thread.
// Namespaces it cannot enter or read are skipped: the device may be
// anywhere, and a new one will do if it is nowhere.
func searchNamedNetns(entries []os.DirEntry, cfg Config, home netnsID, alias string) (int, *kernelLink, error) {
	for _, e := range entries {
		if entered, err := enterNetns(filepath.Join(namedNetnsDir, e.Name()), home); err != nil || !entered {
			continue
		}
		link, err := lookupLink(cfg.Name)
		if err != nil || link == nil || !link.isTapOf(alias) {
			continue
		}
		fd, err := attachTap(cfg, link)
		if errors.Is(err, unix.EEXIST) {
			continue // in use: another gvsd in our namespace has it
		}
		if err != nil {
			return -1, nil, fmt.Errorf("netns %s: %w", e.Name(), err)
		}
		return fd, link, nil
	}
	return -1, nil, nil
}

// enterNetns moves the calling (locked) thread into the namespace at
// path, unless that is home, which has been searched already.
func enterNetns(path string, home netnsID) (bool, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, err
	}
	if (netnsID{dev: st.Dev, ino: st.Ino}) == home {
		return false, nil
	}
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return false, err
	}
	return true, nil
}
