package unixctl

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"gvs/internal/guard"
	"gvs/internal/vlog"
)

// Handler runs one command with its arguments and returns the text to
// print, or an error whose text ovs-appctl prints on stderr (exit status 2).
type Handler func(args []string) (string, error)

// command is a registered command and how many arguments it takes.
type command struct {
	usage    string
	min, max int
	handler  Handler
	// afterReply, if set, runs on its own goroutine once the reply has been
	// sent (or failed to send); exit uses it so the client hears back
	// before the process goes away.
	afterReply func(args []string)
}

// Register adds the command name. usage is the argument synopsis
// list-commands shows ("BRIDGE [FLOW]"). A request with fewer than minArgs
// or more than maxArgs arguments is refused before handler runs; a
// negative maxArgs means no upper limit. Registering a name again
// replaces the earlier command.
func (s *Server) Register(name, usage string, minArgs, maxArgs int, handler func(args []string) (string, error)) {
	s.register(name, command{usage: usage, min: minArgs, max: maxArgs, handler: handler})
}

func (s *Server) register(name string, cmd command) {
	if cmd.max < 0 {
		cmd.max = int(^uint(0) >> 1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands[name] = cmd
}

// RegisterExit adds the exit command: "exit" or "exit --cleanup". The
// client gets its (empty) reply first; then fn runs on a new goroutine,
// told whether --cleanup was given (release every datapath resource,
// internal ports included, rather than leave them for a restart). fn may
// call Close.
func (s *Server) RegisterExit(fn func(cleanup bool)) {
	s.register("exit", command{
		usage: "[--cleanup]",
		min:   0,
		max:   1,
		handler: func(args []string) (string, error) {
			if len(args) == 1 && args[0] != "--cleanup" {
				return "", fmt.Errorf("exit: unknown option %q (only --cleanup is accepted)", args[0])
			}
			return "", nil
		},
		afterReply: func(args []string) { fn(len(args) == 1) },
	})
}

// maxExitWait bounds how long an exit's reply waits for the daemon to
// finish; past it the client hears back anyway.
const maxExitWait = time.Minute

// RegisterExitWaiting adds the exit command with a reply that waits, as
// ovs-vswitchd's does: begin starts the exit (cleanup tells whether
// --cleanup was given) and returns a channel that closes once the daemon
// has done what the exit asks, internal devices deleted included; the
// client is answered then, so that `ovs-appctl exit --cleanup` returns
// only when nothing is left. The returned channel closes once that reply
// has been sent, for the daemon to close the control socket after it.
func (s *Server) RegisterExitWaiting(begin func(cleanup bool) <-chan struct{}) (replied <-chan struct{}) {
	ch := make(chan struct{})
	var once sync.Once
	s.register("exit", command{
		usage: "[--cleanup]",
		min:   0,
		max:   1,
		handler: func(args []string) (string, error) {
			if len(args) == 1 && args[0] != "--cleanup" {
				return "", fmt.Errorf("exit: unknown option %q (only --cleanup is accepted)", args[0])
			}
			t := time.NewTimer(maxExitWait)
			defer t.Stop()
			select {
			case <-begin(len(args) == 1):
			case <-t.C:
				s.log.Warn("exit: the daemon did not finish within %v; answering anyway", maxExitWait)
			}
			return "", nil
		},
		afterReply: func([]string) { once.Do(func() { close(ch) }) },
	})
	return ch
}

func (s *Server) lookup(name string) (command, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd, ok := s.commands[name]
	return cmd, ok
}

// answer runs one request and sends its reply; false when the connection
// is no longer usable.
func (s *Server) answer(conn net.Conn, req request) bool {
	if s.log.Enabled(vlog.Dbg) {
		s.log.Dbg("%s: request %q %q", s.path, req.method, req.params)
	}
	cmd, ok := s.lookup(req.method)
	if !ok {
		msg := fmt.Sprintf("%q is not a valid command (use \"list-commands\" to see a list of valid commands)", req.method)
		return s.send(conn, encodeReply(req.id, "", msg, true))
	}
	if msg := checkArgCount(req.method, cmd, len(req.params)); msg != "" {
		return s.send(conn, encodeReply(req.id, "", msg, true))
	}
	result, err := s.run(req.method, cmd, req.params)
	var sent bool
	if err != nil {
		sent = s.send(conn, encodeReply(req.id, "", err.Error(), true))
	} else {
		sent = s.send(conn, encodeReply(req.id, result, "", false))
	}
	if err == nil && cmd.afterReply != nil {
		go func() {
			defer guard.Recover(s.log, s.panics, fmt.Sprintf("command %q after its reply", req.method))
			cmd.afterReply(req.params)
		}()
	}
	return sent
}

func checkArgCount(name string, cmd command, n int) string {
	switch {
	case n < cmd.min:
		return fmt.Sprintf("%q command requires at least %d arguments", name, cmd.min)
	case n > cmd.max:
		return fmt.Sprintf("%q command takes at most %d arguments", name, cmd.max)
	}
	return ""
}

// run calls the handler, turning a panic into an error reply: a bug in one
// command must not take the switch down with it.
func (s *Server) run(name string, cmd command, args []string) (result string, err error) {
	what := fmt.Sprintf("command %q", name)
	if perr := guard.Call(s.log, s.panics, what, func() { result, err = cmd.handler(slices.Clone(args)) }); perr != nil {
		return "", perr
	}
	return result, err
}

// listCommands is the list-commands table, one "  name usage" per line.
func (s *Server) listCommands([]string) (string, error) {
	s.mu.Lock()
	names := make([]string, 0, len(s.commands))
	for name := range s.commands {
		names = append(names, name)
	}
	usages := make(map[string]string, len(names))
	for _, name := range names {
		usages[name] = s.commands[name].usage
	}
	s.mu.Unlock()
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("The available commands are:\n")
	for _, name := range names {
		line := fmt.Sprintf("  %-23s %s", name, usages[name])
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

func (s *Server) versionCommand([]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.version, nil
}

// registerBuiltins adds the commands every daemon answers.
func (s *Server) registerBuiltins() {
	s.Register("list-commands", "", 0, 0, s.listCommands)
	s.Register("version", "", 0, 0, s.versionCommand)
	s.registerLogCommands()
	s.registerCoverageCommands()
}

func (s *Server) registerLogCommands() {
	logs := s.logs
	s.Register("vlog/list", "", 0, 0, func([]string) (string, error) { return logs.List(), nil })
	s.Register("vlog/list-pattern", "", 0, 0, func([]string) (string, error) { return logs.ListPatterns(), nil })
	s.Register("vlog/set", "[[MODULE][:DEST][:LEVEL]]... | PATTERN:DEST:PATTERN | FACILITY:NAME", 0, -1, func(args []string) (string, error) {
		if len(args) == 0 {
			args = []string{""} // no spec: everything to dbg
		}
		for _, spec := range args {
			if err := logs.Set(spec); err != nil {
				return "", err
			}
		}
		return "", nil
	})
	s.Register("vlog/reopen", "", 0, 0, func([]string) (string, error) {
		if err := logs.ReopenFile(); !errors.Is(err, vlog.ErrNoLogFile) {
			return "", err
		}
		return "", nil // without a log file there is nothing to reopen: OVS says nothing either
	})
	s.Register("vlog/close", "", 0, 0, func([]string) (string, error) { logs.CloseFile(); return "", nil })
}

func (s *Server) registerCoverageCommands() {
	cov := s.cov
	s.Register("coverage/show", "", 0, 0, func([]string) (string, error) { return cov.Show(), nil })
	s.Register("coverage/read-counter", "COUNTER", 1, 1, func(args []string) (string, error) {
		c, ok := cov.Lookup(args[0])
		if !ok {
			return "", fmt.Errorf("no such counter %q", args[0])
		}
		return fmt.Sprintf("%d\n", c.Total()), nil
	})
}
