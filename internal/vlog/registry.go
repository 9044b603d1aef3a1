package vlog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Registry is one program's set of modules and destinations. Its methods
// are safe for concurrent use.
type Registry struct {
	mu       sync.Mutex // guards all below and keeps output lines whole
	env      environment
	modules  map[string]*Module // by lowercased name
	defaults [numDestinations]Level
	patterns [numDestinations]pattern
	serial   uint64
	line     []byte // reused output buffer

	console io.Writer
	syslog  syslogSink
	file    fileSink
}

// Default is the process-wide registry that New adds to and that the
// control socket's vlog/* commands act on.
var Default = NewRegistry(filepath.Base(os.Args[0]))

// New returns the module called name in Default, creating it on first use.
func New(name string) *Module { return Default.Module(name) }

// NewRegistry returns a registry for the program called program (the %A
// escape), with every destination at info, the console on stderr, syslog
// on /dev/log and no log file until OpenFile.
func NewRegistry(program string) *Registry {
	host, _ := os.Hostname()
	r := &Registry{
		env: environment{
			program:  program,
			hostname: host,
			pid:      os.Getpid(),
			start:    time.Now(),
			facility: 3, // daemon
		},
		modules:  make(map[string]*Module),
		defaults: [numDestinations]Level{Info, Info, Info},
		console:  console(os.Stderr),
	}
	r.syslog = newSyslogSink(nil, r.syslogNotice)
	r.patterns[Console] = parsePattern(defaultConsolePattern)
	r.patterns[Syslog] = parsePattern(defaultSyslogPattern)
	r.patterns[File] = parsePattern(defaultFilePattern)
	return r
}

// SetProgram changes the program name that %A and syslog show.
func (r *Registry) SetProgram(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.env.program = name
}

// SetConsole sends console output to w; nil silences the console. A
// file (a terminal, a pipe) is written by a goroutine of its own, so that
// a reader that stops costs lines, never the daemon (queuedWriter).
func (r *Registry) SetConsole(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w == nil {
		r.console = nil
		return
	}
	r.console = console(w)
}

// SetSyslog sends syslog output to w instead of /dev/log (tests, or a
// remote syslog connection the caller dialled), each message ended by a
// newline; nil restores /dev/log. A socket or a file is written by a
// goroutine of its own, as /dev/log is (syslogSink). What is queued for
// the destination replaced is written first, for at most closeWait.
func (r *Registry) SetSyslog(w io.Writer) {
	r.mu.Lock()
	old := r.syslog
	r.syslog = newSyslogSink(w, r.syslogNotice)
	r.mu.Unlock()
	old.close()
}

// syslogNotice is the syslog message that counts those a syslog daemon
// did not take. The syslog queue's goroutine calls it, holding none of
// the registry's locks.
func (r *Registry) syslogNotice(dropped int) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := record{level: Warn, module: "vlog", when: time.Now()}
	b := syslogPrefixPattern.appendTo(nil, &rec, &r.env)
	return fmt.Appendf(b, "vlog: %d syslog messages dropped: the syslog daemon did not read them", dropped)
}

// Module returns the module called name, creating it on first use with the
// registry's current default levels. Names are matched without case.
func (r *Registry) Module(name string) *Module {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := strings.ToLower(name)
	if m, ok := r.modules[key]; ok {
		return m
	}
	m := &Module{name: name, reg: r}
	for d, l := range r.defaults {
		m.levels[d].Store(int32(l))
	}
	r.refreshLocked(m)
	r.modules[key] = m
	return m
}

// refreshLocked recomputes m's fast-path level from the active
// destinations: the file counts only while a log file is open.
func (r *Registry) refreshLocked(m *Module) {
	most := Off
	for d := range numDestinations {
		if d == File && !r.file.isOpen() {
			continue
		}
		most = max(most, Level(m.levels[d].Load()))
	}
	m.most.Store(int32(most))
}

func (r *Registry) refreshAllLocked() {
	for _, m := range r.modules {
		r.refreshLocked(m)
	}
}

// sortedModulesLocked lists the modules by name.
func (r *Registry) sortedModulesLocked() []*Module {
	mods := make([]*Module, 0, len(r.modules))
	for _, m := range r.modules {
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b *Module) int { return strings.Compare(a.name, b.name) })
	return mods
}

// List renders the vlog/list table: each module's level per destination,
// in the column layout ovs-appctl users know.
func (r *Registry) List() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("                 console    syslog    file\n")
	b.WriteString("                 -------    ------    ------\n")
	for _, m := range r.sortedModulesLocked() {
		fmt.Fprintf(&b, "%-16s  %4s       %4s       %4s\n", m.name,
			m.Level(Console), m.Level(Syslog), m.Level(File))
	}
	return b.String()
}

// ListPatterns renders the vlog/list-pattern table.
func (r *Registry) ListPatterns() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	b.WriteString("         prefix                            format\n")
	b.WriteString("         ------                            ------\n")
	for _, d := range []Destination{Syslog, Console, File} {
		prefix := "none"
		if d == Syslog {
			prefix = syslogPrefix
		}
		fmt.Fprintf(&b, "%-9s%-34s%s\n", strings.ToUpper(d.String()), prefix, r.patterns[d].source)
	}
	return b.String()
}

// write sends one formatted message to every destination that accepts it.
func (r *Registry) write(m *Module, l Level, msg string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.serial++
	rec := record{level: l, module: m.name, msg: sanitize(msg), serial: r.serial, when: now}
	for d := range numDestinations {
		if l > Level(m.levels[d].Load()) {
			continue
		}
		switch d {
		case Console:
			if r.console != nil {
				r.line = append(r.patterns[d].appendTo(r.line[:0], &rec, &r.env), '\n')
				r.console.Write(r.line) // a log line that cannot be written has nowhere to go
			}
		case File:
			if r.file.isOpen() {
				r.line = append(r.patterns[d].appendTo(r.line[:0], &rec, &r.env), '\n')
				r.file.write(r.line)
			}
		case Syslog:
			r.line = syslogPrefixPattern.appendTo(r.line[:0], &rec, &r.env)
			r.line = r.patterns[d].appendTo(r.line, &rec, &r.env)
			r.syslog.write(r.line)
		}
	}
}
