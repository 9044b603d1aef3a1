package vlog

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Module is one named source of messages (usually a package) with a level
// per destination. Its methods are safe for concurrent use.
type Module struct {
	name string
	reg  *Registry

	levels [numDestinations]atomic.Int32
	// most is the most verbose level any active destination accepts, so a
	// disabled call costs a single atomic load.
	most atomic.Int32
}

// Name is the module's name as vlog/list shows it.
func (m *Module) Name() string { return m.name }

// Level is the module's level for destination d.
func (m *Module) Level(d Destination) Level {
	if d < 0 || d >= numDestinations {
		return Off
	}
	return Level(m.levels[d].Load())
}

// SetLevel changes the module's level for destination d.
func (m *Module) SetLevel(d Destination, l Level) error {
	if d < 0 || d >= numDestinations {
		return fmt.Errorf("module %s: %v: no such destination", m.name, d)
	}
	if l < Off || l > Dbg {
		return fmt.Errorf("module %s: %v: no such level", m.name, l)
	}
	m.reg.mu.Lock()
	defer m.reg.mu.Unlock()
	m.levels[d].Store(int32(l))
	m.reg.refreshLocked(m)
	return nil
}

// Enabled reports whether a message at level l would reach any destination.
// Guard expensive or allocating log calls on hot paths with it.
func (m *Module) Enabled(l Level) bool {
	return l > Off && int32(l) <= m.most.Load()
}

// Log formats and writes a message at level l (fmt.Sprintf semantics).
func (m *Module) Log(l Level, format string, args ...any) {
	if !m.Enabled(l) {
		return
	}
	m.reg.write(m, l, fmt.Sprintf(format, args...), time.Now())
}

// Emer logs that a major failure is forcing the program to stop.
func (m *Module) Emer(format string, args ...any) {
	if m.Enabled(Emer) {
		m.reg.write(m, Emer, fmt.Sprintf(format, args...), time.Now())
	}
}

// Err logs that an operation or a subsystem failed.
func (m *Module) Err(format string, args ...any) {
	if m.Enabled(Err) {
		m.reg.write(m, Err, fmt.Sprintf(format, args...), time.Now())
	}
}

// Warn logs a failure that a higher layer may recover from.
func (m *Module) Warn(format string, args ...any) {
	if m.Enabled(Warn) {
		m.reg.write(m, Warn, fmt.Sprintf(format, args...), time.Now())
	}
}

// Info logs something worth knowing in retrospect.
func (m *Module) Info(format string, args ...any) {
	if m.Enabled(Info) {
		m.reg.write(m, Info, fmt.Sprintf(format, args...), time.Now())
	}
}

// Dbg logs detail that only matters while debugging.
func (m *Module) Dbg(format string, args ...any) {
	if m.Enabled(Dbg) {
		m.reg.write(m, Dbg, fmt.Sprintf(format, args...), time.Now())
	}
}
