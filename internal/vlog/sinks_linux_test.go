package vlog

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// withTimeout runs f and fails the test if it does not return in 5 s.
func withTimeout(t *testing.T, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s hangs", what)
		return nil
	}
}

// isFreshLog checks that path is now a regular file with one link.
func isFreshLog(t *testing.T, path string) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Mode().IsRegular() || st.Sys().(*syscall.Stat_t).Nlink != 1 {
		t.Errorf("%s is %v with %d links, want a new regular file", path, st.Mode(), st.Sys().(*syscall.Stat_t).Nlink)
	}
}

// The log directory may be writable by a user other than gvsd's (root):
// a symbolic link that user puts at the log file's name, before a start
// or before logrotate's SIGHUP, must not make gvsd append to its target
// (nor keep it from starting): it is replaced by a new file. A link
// gvsd's own user made is still followed.
func TestLogFileReplacesAnotherUsersSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a link owned by another user")
	}
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gvsd.log")
	plant := func() {
		t.Helper()
		os.Remove(path)
		if err := os.Symlink(victim, path); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	r, _, _ := newTestRegistry(t)
	m := r.Module("mod")
	plant()
	if err := r.OpenFile(path); err != nil {
		t.Fatalf("OpenFile with another user's link at the name: %v", err)
	}
	isFreshLog(t, path)
	m.Info("at start")
	// At reopen: the file was fine at start, then replaced by a link.
	plant()
	if err := r.ReopenFile(); err != nil {
		t.Fatalf("ReopenFile with another user's link at the name: %v", err)
	}
	isFreshLog(t, path)
	m.Info("after the reopen")
	r.Flush(5 * time.Second)
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Fatalf("the link's target was written: %q", got)
	}
	if got, _ := os.ReadFile(path); !strings.HasSuffix(string(got), "|after the reopen\n") {
		t.Errorf("the new log file holds %q", got)
	}
	// gvsd's own link is followed, as OVS follows one.
	mine := filepath.Join(dir, "real.log")
	os.Remove(path)
	if err := os.Symlink(mine, path); err != nil {
		t.Fatal(err)
	}
	if err := r.ReopenFile(); err != nil {
		t.Fatalf("ReopenFile through gvsd's own link: %v", err)
	}
	m.Info("through my link")
	r.Flush(5 * time.Second)
	if got, _ := os.ReadFile(mine); !strings.HasSuffix(string(got), "|through my link\n") {
		t.Errorf("own link's target holds %q", got)
	}
}

// Another user's named pipe at the log file's name must neither hang
// gvsd's open (no reader) nor become its log (a reader that stops
// reading would block every log line, and with them gvsd): it is
// replaced. Root's own named pipe is used, and one nobody reads is an
// error, not a hang.
func TestLogFileNamedPipes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a FIFO owned by another user")
	}
	dir := t.TempDir()
	r, _, _ := newTestRegistry(t)
	theirs := func(name string) string {
		path := filepath.Join(dir, name)
		if err := syscall.Mkfifo(path, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		return path
	}
	lonely := theirs("lonely.log")
	if err := withTimeout(t, "OpenFile of another user's FIFO without a reader", func() error { return r.OpenFile(lonely) }); err != nil {
		t.Fatalf("OpenFile of another user's FIFO without a reader: %v", err)
	}
	isFreshLog(t, lonely)
	read := theirs("read.log")
	reader, err := os.OpenFile(read, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	if err := withTimeout(t, "OpenFile of another user's FIFO with a reader", func() error { return r.OpenFile(read) }); err != nil {
		t.Fatalf("OpenFile of another user's FIFO with a reader: %v", err)
	}
	isFreshLog(t, read)
	mine := filepath.Join(dir, "mine.log")
	if err := syscall.Mkfifo(mine, 0o600); err != nil {
		t.Fatal(err)
	}
	err = withTimeout(t, "OpenFile of root's FIFO without a reader", func() error { return r.OpenFile(mine) })
	if err == nil || !strings.Contains(err.Error(), "nobody reads") {
		t.Errorf("OpenFile of root's FIFO without a reader: %v", err)
	}
}

// A hard link at the log file's name is another file's second name: the
// name gets a file of its own.
func TestLogFileReplacesHardLink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "gvsd.log")
	if err := os.Link(victim, path); err != nil {
		t.Fatal(err)
	}
	r, _, _ := newTestRegistry(t)
	if err := r.OpenFile(path); err != nil {
		t.Fatalf("OpenFile with a hard link at the name: %v", err)
	}
	isFreshLog(t, path)
	r.Module("mod").Info("x")
	if got, _ := os.ReadFile(victim); string(got) != "precious\n" {
		t.Fatalf("the other name's file was written: %q", got)
	}
}

// --log-file=/dev/stdout (a link root made, to a magic link, to whatever
// stdout is: here a pipe) and /dev/null still work.
func TestLogFileInheritedPipeAndDevices(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	saved, err := syscall.Dup(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Dup2(int(pw.Fd()), 1); err != nil {
		t.Fatal(err)
	}
	r, _, _ := newTestRegistry(t)
	err = r.OpenFile("/dev/stdout")
	syscall.Dup2(saved, 1)
	syscall.Close(saved)
	pw.Close()
	if err != nil {
		t.Fatalf("OpenFile(/dev/stdout) on a pipe: %v", err)
	}
	r.Module("mod").Info("to the pipe")
	r.CloseFile()
	buf := make([]byte, 256)
	n, _ := pr.Read(buf)
	if !strings.HasSuffix(string(buf[:n]), "|to the pipe\n") {
		t.Errorf("the pipe got %q", buf[:n])
	}
	if err := r.OpenFile(os.DevNull); err != nil {
		t.Errorf("OpenFile(/dev/null): %v", err)
	}
	r.CloseFile()
}

// TestLogFileNobodyReads: --log-file names a named pipe whose reader
// stopped reading (not closed). Each line was written under the
// registry's lock, so once the pipe was full every goroutine that
// logged hung, as with the console (TestConsoleNobodyReads). Logging
// now goes on; lines the pipe cannot take are dropped, and once it is
// read again the lines come in order with the count of those lost.
// vlog/reopen and vlog/close do not hang on it either.
func TestLogFileNobodyReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvsd.log")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	reader, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	r, _, _ := newTestRegistry(t)
	for _, spec := range []string{"console:off", "syslog:off"} {
		if err := r.Set(spec); err != nil {
			t.Fatal(err)
		}
	}
	if err := withTimeout(t, "OpenFile of a named pipe with a reader", func() error { return r.OpenFile(path) }); err != nil {
		t.Fatal(err)
	}
	m := r.Module("m")
	flood := floodOf(m)
	withTimeout(t, "logging to a named pipe nobody reads", flood)

	// The reader comes back: lines in order, the count of those lost,
	// and a line logged after.
	got := make(chan *floodResult, 1)
	go func() {
		res := newFloodResult("log file lines dropped")
		sc := bufio.NewScanner(reader)
		sc.Buffer(make([]byte, 4096), 1<<20)
		for sc.Scan() {
			if res.see(sc.Text()) {
				break
			}
		}
		got <- res
	}()
	m.Info("after the flood")
	res := waitFlood(t, got, "the lines did not come once the pipe was read again")
	res.check(t, "line")

	// The reader stops again: reopening (logrotate's SIGHUP) and
	// closing the file give up on what is queued instead of hanging.
	withTimeout(t, "logging to a named pipe nobody reads", flood)
	if err := withTimeout(t, "ReopenFile of a named pipe nobody reads", r.ReopenFile); err != nil {
		t.Fatal(err)
	}
	withTimeout(t, "logging after the reopen", flood)
	withTimeout(t, "CloseFile of a named pipe nobody reads", func() error { r.CloseFile(); return nil })
}

// TestLogFileFlushedAtReopenAndExit: log file lines are written by a
// goroutine of their own (TestLogFileNobodyReads); what is queued still
// reaches the file before vlog/reopen, vlog/close or gvsd's exit
// (Flush) return. A guard: the old code, which wrote each line at once,
// passes it too.
func TestLogFileFlushedAtReopenAndExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gvsd.log")
	r, _, _ := newTestRegistry(t)
	if err := r.OpenFile(path); err != nil {
		t.Fatal(err)
	}
	m := r.Module("m")
	const n = 2000
	lines := func(what string) {
		for i := range n {
			m.Info("%s %d", what, i)
		}
	}
	count := func(p, what string) int {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Count(string(b), "|"+what+" ")
	}
	lines("before-reopen")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := r.ReopenFile(); err != nil {
		t.Fatal(err)
	}
	if c := count(path+".1", "before-reopen"); c != n {
		t.Errorf("the rotated file holds %d of the %d lines logged before vlog/reopen", c, n)
	}
	lines("before-exit")
	r.Flush(5 * time.Second)
	if c := count(path, "before-exit"); c != n {
		t.Errorf("the log file holds %d of the %d lines logged before Flush", c, n)
	}
	lines("before-close")
	r.CloseFile()
	if c := count(path, "before-close"); c != n {
		t.Errorf("the log file holds %d of the %d lines logged before vlog/close", c, n)
	}
}

// syslogToSocket makes r send its syslog messages to the unix datagram
// socket at path, as it sends them to /dev/log.
func syslogToSocket(r *Registry, path string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syslog.closer.(*syslogDialer).path = path
}

// TestSyslogNobodyReads: the syslog daemon stops reading /dev/log (a
// real unix datagram socket here, whose queue fills). Each message was
// sent under the registry's lock, so once the socket was full every
// goroutine that logged hung, as with the console (TestConsoleNobodyReads).
// Logging now goes on; the messages the socket cannot take are dropped,
// and once it is read again the messages come one per datagram, in
// order, with one that counts those lost. Flush (at exit) and replacing
// the destination do not hang on it either.
func TestSyslogNobodyReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	r := NewRegistry("gvsd")
	r.SetConsole(nil)
	syslogToSocket(r, path)
	m := r.Module("m")
	flood := floodOf(m)
	withTimeout(t, "logging to a syslog socket nobody reads", flood)

	// The daemon reads again: one message a datagram, in order, the
	// count of those lost, and a message logged after.
	got := make(chan *floodResult, 1)
	go func() {
		res := newFloodResult("gvsd: vlog: ", " syslog messages dropped: ")
		whole := true
		buf := make([]byte, 65536)
		for {
			sock.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := sock.Read(buf)
			if err != nil {
				break
			}
			d := string(buf[:n])
			if !strings.HasPrefix(d, "<") || strings.Count(d, "<") != 1 {
				whole = false
			}
			if res.see(d) {
				break
			}
		}
		if !whole {
			res.problems = append(res.problems, "a datagram does not hold one whole message")
		}
		got <- res
	}()
	r.Flush(10 * time.Second)
	m.Info("after the flood")
	res := waitFlood(t, got, "the messages did not come once the socket was read again")
	res.check(t, "message")

	// The daemon stops again: Flush at exit gives up within its bound,
	// and replacing the destination does not hang.
	withTimeout(t, "logging to a syslog socket nobody reads", flood)
	start := time.Now()
	r.Flush(200 * time.Millisecond)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Flush(200ms) took %v with a syslog socket nobody reads", d)
	}
	withTimeout(t, "SetSyslog away from a socket nobody reads", func() error { r.SetSyslog(nopWriter{}); return nil })
}

// floodOf returns what logs 5 MB through m: far more than a pipe (64
// KiB) or a datagram socket holds.
func floodOf(m *Module) func() error {
	pad := strings.Repeat("x", 1000)
	return func() error {
		for i := range 5000 {
			m.Info("line %05d %s", i, pad)
		}
		return nil
	}
}

// floodResult is what a reader of a destination flooded by floodOf
// saw once it read again, up to the line logged "after the flood".
type floodResult struct {
	droppedText    []string // what the line counting the dropped ones holds
	inOrder        bool
	dropped, after bool
	prev, n        int
	last           string
	problems       []string
}

func newFloodResult(droppedText ...string) *floodResult {
	return &floodResult{droppedText: droppedText, inOrder: true, prev: -1}
}

// see notes line l; it reports whether l is the one logged after the
// flood, the last to wait for.
func (r *floodResult) see(l string) bool {
	r.n++
	r.last = l
	if i := strings.Index(l, "|line "); i >= 0 {
		var n int
		if _, err := fmt.Sscanf(l[i+6:], "%d", &n); err != nil || n <= r.prev {
			r.inOrder = false
		}
		r.prev = n
	}
	counted := true
	for _, s := range r.droppedText {
		counted = counted && strings.Contains(l, s)
	}
	r.dropped = r.dropped || counted
	r.after = strings.HasSuffix(l, "|after the flood")
	return r.after
}

func waitFlood(t *testing.T, got <-chan *floodResult, what string) *floodResult {
	t.Helper()
	select {
	case res := <-got:
		return res
	case <-time.After(15 * time.Second):
		t.Fatal(what)
		return nil
	}
}

// check reports what is wrong with what was read; a line is what the
// destination holds ("line", "message").
func (r *floodResult) check(t *testing.T, line string) {
	t.Helper()
	for _, p := range r.problems {
		t.Error(p)
	}
	if !r.inOrder {
		t.Errorf("the %ss read are not in the order they were logged", line)
	}
	if !r.dropped {
		t.Errorf("no %s says %ss were dropped (%q)", line, line, r.droppedText)
	}
	if !r.after {
		t.Errorf("the %s logged after the flood did not come (%d read); last %.80q", line, r.n, r.last)
	}
}
