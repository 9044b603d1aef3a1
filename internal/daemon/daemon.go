// Package daemon makes gvsd a background service the way ovs-vswitchd
// becomes one: --detach (the command returns once the daemon is ready),
// --monitor (a parent process that restarts a crashed daemon) and
// systemd's readiness notification.
//
// Go cannot fork without exec, so each stage is this same program run
// again with an environment marker saying which stage it is; the
// readiness of the daemon travels back up a pipe on descriptor 3.
package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/vlog"
)

// envStage marks a re-executed copy: "monitor" or "daemon".
const envStage = "GVSD_DAEMON_STAGE"

// readyFD is the descriptor of the readiness pipe in a re-executed copy
// (the first of exec.Cmd.ExtraFiles).
const readyFD = 3

// readyByte is what a ready daemon writes on the pipe; end of file
// without it means the daemon failed to start.
const readyByte = 'R'

var log = vlog.New("daemon")

// Config says how to run.
type Config struct {
	Detach  bool // run in the background; the caller returns once ready
	Monitor bool // restart the daemon when it crashes
	NoChdir bool // with Detach, stay in the current directory
	// OnHangup, if set, runs in a monitor process on SIGHUP (which is
	// also passed on to the daemon), to reopen the monitor's log file.
	OnHangup func()
}

// Process is the running daemon's side: it calls Ready once it serves.
type Process struct {
	ready    *os.File // pipe to the waiting parent, or nil
	detached bool
	once     sync.Once
}

// Start arranges Config. It returns only in the process that is to be the
// daemon; the foreground process of --detach and the monitor process of
// --monitor exit inside it, with the daemon's outcome as their status.
func Start(cfg Config) (*Process, error) {
	stage := os.Getenv(envStage)
	os.Unsetenv(envStage)
	var parent *os.File
	if stage != "" {
		parent = os.NewFile(readyFD, "readiness pipe")
	}
	switch {
	case stage == "daemon":
		return newProcess(cfg, parent)
	case stage == "" && cfg.Detach:
		next := "daemon"
		if cfg.Monitor {
			next = "monitor"
		}
		exit(detach(next))
	case stage == "monitor" || cfg.Monitor:
		if err := leaveDirectory(cfg); err != nil {
			return nil, err
		}
		exit(monitor(cfg, parent))
	}
	return newProcess(cfg, parent)
}

// exit ends a stage that is not the daemon, once the lines it logged
// (written by vlog's goroutines) are out or a second has passed.
func exit(code int) {
	vlog.Default.Flush(time.Second)
	os.Exit(code)
}

func newProcess(cfg Config, parent *os.File) (*Process, error) {
	if err := leaveDirectory(cfg); err != nil {
		return nil, err
	}
	return &Process{ready: parent, detached: cfg.Detach}, nil
}

// leaveDirectory changes to / in a detached process, so that the daemon
// does not keep the file system it was started from busy.
func leaveDirectory(cfg Config) error {
	if !cfg.Detach || cfg.NoChdir {
		return nil
	}
	if err := os.Chdir("/"); err != nil {
		return fmt.Errorf("--detach: %w", err)
	}
	return nil
}

// Ready tells whoever waits that the daemon serves: the foreground
// process of --detach (which then exits 0) or the monitor, and systemd
// (READY=1 on $NOTIFY_SOCKET). A detached daemon then lets go of the
// terminal's standard descriptors. Later calls do nothing.
func (p *Process) Ready() error {
	var err error
	p.once.Do(func() {
		if p.ready != nil {
			_, err = p.ready.Write([]byte{readyByte})
			p.ready.Close()
		}
		if p.detached {
			err = errors.Join(err, quietStdio())
		}
		err = errors.Join(err, Notify("READY=1"))
	})
	return err
}

// spawn runs this program again as stage, with a pipe for its readiness.
func spawn(stage string, newSession bool) (*exec.Cmd, *os.File, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("finding my own executable: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer w.Close()
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envStage+"="+stage)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: newSession}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("starting %s: %w", exe, err)
	}
	return cmd, r, nil
}

// waitReady reads the readiness pipe: true when the daemon said it is
// ready, false when the pipe closed without it (the daemon, or every
// process that held the pipe, exited first).
func waitReady(r *os.File) bool {
	defer r.Close()
	var b [1]byte
	n, _ := io.ReadFull(r, b[:])
	return n == 1 && b[0] == readyByte
}

// detach is the foreground process of --detach: it starts the next stage
// in a new session and returns the status to exit with: 0 once the
// daemon is ready, the daemon's own status when it stopped before that.
func detach(next string) int {
	closeInheritedOnExec()
	cmd, r, err := spawn(next, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gvsd: --detach:", err)
		return 1
	}
	if waitReady(r) {
		return 0
	}
	return exitStatus(cmd.Wait(), cmd.ProcessState)
}

// closeInheritedOnExec marks every descriptor above 2 close-on-exec, so
// that the daemon keeps none of what its starter left open: it outlives
// the starter, and would hold a lock a script took with flock(1) or the
// write end of a pipe someone reads to its end for as long as it runs.
// (ovs-vswitchd keeps them: a reference one started with --detach from a
// locked script held the lock for 25 minutes.) gvsd's own descriptors
// are close-on-exec already; the readiness pipe is passed explicitly.
func closeInheritedOnExec() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// exitStatus is the status a parent reports for a child that ended
// without becoming ready: its own status, never 0.
func exitStatus(err error, ps *os.ProcessState) int {
	if ps != nil && ps.Exited() && ps.ExitCode() > 0 {
		return ps.ExitCode()
	}
	if err != nil && ps == nil {
		fmt.Fprintln(os.Stderr, "gvsd:", err)
	}
	return 1
}

// quietStdio points descriptors 0, 1 and 2 at /dev/null, as a detached
// daemon must once nobody waits on its terminal (or on a pipe a caller
// reads to its end).
func quietStdio() error {
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	for fd := range 3 {
		if err := unix.Dup3(int(null.Fd()), fd, 0); err != nil {
			return fmt.Errorf("redirecting descriptor %d to %s: %w", fd, os.DevNull, err)
		}
	}
	return nil
}
