package daemon

import (
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"
)

// crashSignals are the signals that mean the daemon crashed, so the
// monitor starts it again: those ovs-vswitchd(8) lists for --monitor,
// plus SIGKILL, which is how the kernel's OOM killer ends a process.
var crashSignals = map[syscall.Signal]bool{
	syscall.SIGABRT: true, syscall.SIGALRM: true, syscall.SIGBUS: true,
	syscall.SIGFPE: true, syscall.SIGILL: true, syscall.SIGPIPE: true,
	syscall.SIGSEGV: true, syscall.SIGXCPU: true, syscall.SIGXFSZ: true,
	syscall.SIGKILL: true,
}

// goCrashStatus is the exit status of a Go program that died of an
// unrecovered panic or a fatal runtime error (a SIGSEGV included).
const goCrashStatus = 2

// crashed says whether a daemon that ended with ps died of a bug (and is
// restarted) rather than exited on purpose (and is not).
func crashed(ps *os.ProcessState) bool {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		return false
	}
	if ws.Signaled() {
		return crashSignals[ws.Signal()]
	}
	return ws.Exited() && ws.ExitStatus() == goCrashStatus
}

// Restart pacing: a daemon that crashes within stableRun of its start is
// restarted after a delay that doubles from firstDelay up to maxDelay, so
// a crash loop does not spin.
const (
	stableRun  = 10 * time.Second
	firstDelay = 500 * time.Millisecond
	maxDelay   = 10 * time.Second
)

// monitor runs daemons one after another until one ends without crashing,
// and returns the status to exit with. parent, if set, is the pipe to the
// foreground process of --detach, told when the first daemon is ready.
func monitor(cfg Config, parent *os.File) int {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	everReady := false
	onReady := func() {
		if everReady {
			return
		}
		everReady = true
		if parent != nil {
			parent.Write([]byte{readyByte})
			parent.Close()
		}
		if cfg.Detach {
			quietStdio()
		}
	}
	delay := firstDelay
	for crashes := 1; ; crashes++ {
		started := time.Now()
		cmd, r, err := spawn("daemon", false)
		if err != nil {
			log.Err("monitor: %v", err)
			return 1
		}
		ps := superviseOne(cmd, r, sigs, cfg, onReady)
		if !everReady {
			// A daemon that never started would only fail again.
			return exitStatus(nil, ps)
		}
		if !crashed(ps) {
			if ps.Exited() {
				return ps.ExitCode()
			}
			return 0
		}
		log.Err("%d crashes: pid %d died, %v, restarting", crashes, ps.Pid(), ps)
		if time.Since(started) >= stableRun {
			delay = firstDelay
			continue
		}
		if !pause(delay, sigs) {
			return 0
		}
		delay = min(2*delay, maxDelay)
	}
}

// superviseOne waits for one daemon to end, passing on the signals an
// operator sends the monitor and calling onReady when it is ready.
func superviseOne(cmd *exec.Cmd, r *os.File, sigs <-chan os.Signal, cfg Config, onReady func()) *os.ProcessState {
	readyc := make(chan bool, 1)
	go func() { readyc <- waitReady(r) }()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP && cfg.OnHangup != nil {
				cfg.OnHangup()
			}
			cmd.Process.Signal(s)
		case ready := <-readyc:
			if ready {
				onReady()
			}
			readyc = nil
		case <-done:
			// The pipe reaches end of file once the daemon is gone,
			// so a readiness sent just before the end is not lost.
			if readyc != nil && <-readyc {
				onReady()
			}
			return cmd.ProcessState
		}
	}
}

// pause waits d before the next restart; false when the operator asked
// the monitor to stop meanwhile.
func pause(d time.Duration, sigs <-chan os.Signal) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case s := <-sigs:
			if s != syscall.SIGHUP {
				return false
			}
		}
	}
}
