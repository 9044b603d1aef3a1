package netdev

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A UDP GSO socket is bound to a flow's source port, which the inner
// frame's hash picks in the ephemeral range, so a VM could choose flows
// that keep a given port of the host's taken. Like a port the kernel
// gives a client, it stays out of the ports the administrator reserved
// for services (net.ipv4.ip_local_reserved_ports): a flow whose port is
// reserved is sent through the raw socket, which binds nothing.

// reservedPortsFile is the kernel's list of reserved ports (the same
// list serves IPv4 and IPv6); a test points it elsewhere.
var reservedPortsFile = "/proc/sys/net/ipv4/ip_local_reserved_ports"

// reservedPortsTTL is how long a read of the list is used.
const reservedPortsTTL = time.Second

// reservedPorts caches the parsed list.
var reservedPorts struct {
	mu   sync.Mutex
	read time.Time
	set  [65536 / 64]uint64
}

// portReserved reports whether port is in ip_local_reserved_ports.
func portReserved(port uint16, now time.Time) bool {
	r := &reservedPorts
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.read) > reservedPortsTTL || now.Before(r.read) {
		r.set = parseReservedPorts(readReservedPorts())
		r.read = now
	}
	return r.set[port/64]&(1<<(port%64)) != 0
}

// readReservedPorts returns the list's text; "" if it cannot be read
// (then nothing is reserved, as for the kernel).
func readReservedPorts() string {
	b, err := os.ReadFile(reservedPortsFile)
	if err != nil {
		return ""
	}
	return string(b)
}

// parseReservedPorts turns "8080,51820-51830" into a set of ports; parts
// that do not parse are left out.
func parseReservedPorts(text string) (set [65536 / 64]uint64) {
	for part := range strings.SplitSeq(strings.TrimSpace(text), ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err1 := strconv.ParseUint(lo, 10, 16)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = strconv.ParseUint(hi, 10, 16)
		}
		if err1 != nil || err2 != nil || last < first {
			continue
		}
		for p := first; p <= last; p++ {
			set[p/64] |= 1 << (p % 64)
		}
	}
	return set
}
