// Package vlog is gvs's leveled logging: named modules, each with its own
// level for each destination (console, syslog, file), changeable at run time
// through `ovs-appctl vlog/set` and shown by `vlog/list`, in the vocabulary
// of Open vSwitch's logging so operators need to learn nothing new.
//
// A package declares its module once and logs through it:
//
//	var log = vlog.New("ofproto")
//	log.Info("bridge %s: added port %s", br, port)
//
// A call whose level is disabled costs one atomic load. On the packet path,
// guard calls that box arguments so nothing is allocated when off:
//
//	if log.Enabled(vlog.Dbg) { log.Dbg("flow miss on %s", port) }
package vlog

import (
	"fmt"
	"strings"
)

// Level is a message severity and, for a destination, the least severe
// message it accepts. Larger is more verbose; Off accepts nothing.
type Level int32

// The levels, from least to most verbose.
const (
	Off Level = iota
	Emer
	Err
	Warn
	Info
	Dbg
)

var levelNames = [...]string{Off: "off", Emer: "emer", Err: "err", Warn: "warn", Info: "info", Dbg: "dbg"}

// syslogSeverity maps a level to its RFC 5424 severity for %B and syslog.
var syslogSeverity = [...]int{Off: 0, Emer: 1, Err: 3, Warn: 4, Info: 6, Dbg: 7}

// String is the level's name in capitals, as logs and vlog/list show it.
func (l Level) String() string {
	if l < Off || l > Dbg {
		return fmt.Sprintf("LEVEL(%d)", int32(l))
	}
	return strings.ToUpper(levelNames[l])
}

// ParseLevel reads a level name in any case ("dbg", "WARN", ...).
func ParseLevel(s string) (Level, error) {
	for l, name := range levelNames {
		if strings.EqualFold(s, name) {
			return Level(l), nil
		}
	}
	return Off, fmt.Errorf("unknown log level %q", s)
}

// Destination is where messages go.
type Destination int

// The destinations, in vlog/list column order.
const (
	Console Destination = iota
	Syslog
	File
	numDestinations
)

var destinationNames = [numDestinations]string{Console: "console", Syslog: "syslog", File: "file"}

// String is the destination's lowercase name.
func (d Destination) String() string {
	if d < 0 || d >= numDestinations {
		return fmt.Sprintf("destination(%d)", int(d))
	}
	return destinationNames[d]
}

// ParseDestination reads a destination name in any case.
func ParseDestination(s string) (Destination, error) {
	for d, name := range destinationNames {
		if strings.EqualFold(s, name) {
			return Destination(d), nil
		}
	}
	return 0, fmt.Errorf("unknown destination %q", s)
}

// facilities are the syslog facility names vlog/set FACILITY:<name> accepts,
// indexed by their RFC 5424 code.
var facilities = [...]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "clock", "authpriv", "ftp", "ntp", "audit", "alert", "clock2",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

func parseFacility(s string) (int, error) {
	for code, name := range facilities {
		if name != "authpriv" && strings.EqualFold(s, name) {
			return code, nil
		}
	}
	return 0, fmt.Errorf("invalid facility %q", s)
}
