//go:build linux

package netdev

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// openError is how a kernel-backed port reports that it could not be
// opened, worded like OVS so operators see a familiar Interface.error:
// "could not open network device p1 (No such device)".
type openError struct {
	name string
	err  error
}

func (e *openError) Error() string {
	return fmt.Sprintf("could not open network device %s (%s)", e.name, reason(e.err))
}

func (e *openError) Unwrap() error { return e.err }

// reason gives an errno's C library text ("No such device"); Go spells the
// same strings in lower case.
func reason(err error) string {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[size:]
}

func openFailed(name string, err error) error { return &openError{name: name, err: err} }

// validDeviceName applies the kernel's rules for interface names.
func validDeviceName(name string) error {
	if name == "" || len(name) >= unix.IFNAMSIZ || name == "." || name == ".." {
		return unix.EINVAL
	}
	for _, c := range name {
		if c == '/' || c == ':' || unicode.IsSpace(c) {
			return unix.EINVAL
		}
	}
	return nil
}

// MaxMTU is the largest mtu_request gvs sets (Linux's largest IP MTU):
// the kernel takes an int, so a larger database value would be cut.
const MaxMTU = 65535

// checkMTU refuses an mtu_request above MaxMTU before anything is set
// up; 0 is none.
func checkMTU(mtu int) error {
	if mtu < 0 || mtu > MaxMTU {
		return fmt.Errorf("mtu_request %d: must be at most %d", mtu, MaxMTU)
	}
	return nil
}

// setMTU applies Interface.mtu_request to a kernel device.
func setMTU(name string, mtu int) error {
	err := withIfreq(name, func(fd int, ifr *unix.Ifreq) error {
		ifr.SetUint32(uint32(mtu))
		return unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr)
	})
	if err != nil {
		return fmt.Errorf("set mtu of %s to %d: %w", name, mtu, err)
	}
	return nil
}

// lastInfo remembers the latest Info a port could read, so that a device
// that has left gvsd's network namespace (or vanished) is still described,
// marked Stale, instead of failing.
type lastInfo struct {
	mu   sync.Mutex
	info Info
}

func (l *lastInfo) update(info Info) Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info = info
	info.MAC = append(net.HardwareAddr(nil), info.MAC...) // the cache keeps its own
	return info
}

func (l *lastInfo) stale() Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	info := l.info
	info.MAC = append(net.HardwareAddr(nil), info.MAC...)
	info.Stale = true
	return info
}
