package unixctl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"gvs/internal/procinfo"
)

// Pidfile is a file holding this process's pid, write-locked with fcntl
// for as long as the process runs. ovs-appctl only trusts a pidfile whose
// lock is held by the pid written in it, and a second daemon finds the
// lock taken and refuses to start.
//
// The lock is a classic POSIX record lock (ovs-appctl checks its owner's
// pid, which open-file-description locks do not report). Such a lock is
// dropped when this process closes ANY descriptor of the file, so nothing
// else in the process may open the pidfile while it is held.
type Pidfile struct {
	path string
	mu   sync.Mutex
	f    *os.File // nil once removed
}

// heldPidfiles are the pidfiles this process has locked. A second
// CreatePidfile of the same file in this process must be refused without
// opening it: the record lock would not conflict with our own, and
// closing the second descriptor would silently release the first lock.
var heldPidfiles struct {
	sync.Mutex
	files []os.FileInfo
}

// maxCreateAttempts bounds retries when the file we locked was removed by
// the previous owner just before we locked it.
const maxCreateAttempts = 5

// CreatePidfile writes this process's pid to path and locks it. It fails
// when another live process holds the lock, naming that process by its
// command name (gvsd, ovs-vswitchd) and pid; a stale
// file left by a dead process is taken over.
func CreatePidfile(path string) (*Pidfile, error) {
	heldPidfiles.Lock()
	defer heldPidfiles.Unlock()
	for range maxCreateAttempts {
		if fi, err := os.Stat(path); err == nil && heldByThisProcess(fi) {
			return nil, fmt.Errorf("pidfile %q: already held by %s, this process", path, procinfo.Describe(os.Getpid()))
		}
		f, retry, err := lockPidfile(path)
		if err != nil {
			return nil, err
		}
		if retry {
			continue
		}
		if err := writePid(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("pidfile %q: %w", path, err)
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("pidfile %q: %w", path, err)
		}
		heldPidfiles.files = append(heldPidfiles.files, fi)
		return &Pidfile{path: path, f: f}, nil
	}
	return nil, fmt.Errorf("pidfile %q: kept disappearing while being locked", path)
}

func heldByThisProcess(fi os.FileInfo) bool {
	for _, held := range heldPidfiles.files {
		if os.SameFile(held, fi) {
			return true
		}
	}
	return false
}

// lockPidfile opens and write-locks path. retry is true when the file was
// unlinked or replaced between open and lock, so the lock guards nothing.
func lockPidfile(path string) (f *os.File, retry bool, err error) {
	f, err = openPidfile(path)
	if err != nil {
		return nil, false, err
	}
	lock := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lock); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, false, fmt.Errorf("pidfile %q: already held by %s", path, procinfo.Describe(lockHolder(f)))
		}
		return nil, false, fmt.Errorf("pidfile %q: locking: %w", path, err)
	}
	opened, err1 := f.Stat()
	current, err2 := os.Stat(path)
	if err1 != nil || err2 != nil || !os.SameFile(opened, current) {
		f.Close()
		return nil, true, nil
	}
	return f, false, nil
}

// openPidfile opens or creates path as a pidfile must be: a regular file
// with one link, owned by this process's user, reached without following
// a symbolic link at its name. The run directory may be one that others
// can write (OVS_RUNDIR=/tmp), where a symbolic link or a hard link
// planted at the pidfile's name would otherwise make gvsd truncate and
// write another file as root, and another user's file would be theirs to
// rewrite. Whatever else is at the name is replaced (unlinked, then
// created afresh with O_EXCL), as OVS's rename of a new pidfile over the
// name replaces it, unless a live process holds a lock on it. O_NONBLOCK
// keeps a FIFO there from blocking the open.
func openPidfile(path string) (*os.File, error) {
	for range maxCreateAttempts {
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
		switch {
		case errors.Is(err, unix.EISDIR):
			return nil, fmt.Errorf("pidfile %q: is a directory", path)
		case err == nil:
			ok, err := usablePidfile(fd, path)
			if ok || err != nil {
				if err != nil {
					unix.Close(fd)
					return nil, err
				}
				return os.NewFile(uintptr(fd), path), nil
			}
			unix.Close(fd)
		case !errors.Is(err, unix.ELOOP):
			return nil, fmt.Errorf("pidfile %q: %w", path, err)
		}
		// A symbolic link, a hard link, a FIFO or another user's file.
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("pidfile %q: removing what is at that name: %w", path, err)
		}
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			return os.NewFile(uintptr(fd), path), nil
		}
		if !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("pidfile %q: %w", path, err)
		}
		// Someone put something there again: look at it again.
	}
	return nil, fmt.Errorf("pidfile %q: something keeps appearing at that name", path)
}

// usablePidfile reports whether fd, opened at path, may be this
// process's pidfile as it is. It is an error when a live process holds
// a lock on the file, which is then no leftover to replace.
func usablePidfile(fd int, path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, fmt.Errorf("pidfile %q: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1 && int(st.Uid) == os.Geteuid() {
		return true, nil
	}
	probe := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &probe); err == nil && probe.Type != unix.F_UNLCK {
		return false, fmt.Errorf("pidfile %q: already held by %s", path, procinfo.Describe(int(probe.Pid)))
	}
	return false, nil
}

// lockHolder is the pid of the process holding f's lock, from the kernel
// or, failing that, from the file's contents.
func lockHolder(f *os.File) int {
	probe := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &probe); err == nil && probe.Type != unix.F_UNLCK && probe.Pid > 0 {
		return int(probe.Pid)
	}
	buf := make([]byte, 32)
	n, _ := f.ReadAt(buf, 0)
	pid, _ := strconv.Atoi(string(bytes.TrimSpace(buf[:n])))
	return pid
}

func writePid(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return err
	}
	return f.Sync()
}

// Path is the pidfile's name.
func (p *Pidfile) Path() string { return p.path }

// Remove deletes the pidfile, if it is still ours, and releases its lock.
// It is safe to call more than once.
func (p *Pidfile) Remove() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return nil
	}
	opened, statErr := p.f.Stat()
	var err error
	// Unlink before unlocking, so no other process can lock a file that
	// is about to vanish; and only our own file, never a successor's.
	if current, err2 := os.Stat(p.path); statErr == nil && err2 == nil && os.SameFile(opened, current) {
		if err = os.Remove(p.path); err != nil {
			err = fmt.Errorf("pidfile %q: %w", p.path, err)
		}
	}
	p.f.Close()
	p.f = nil
	if statErr == nil {
		forgetHeld(opened)
	}
	return err
}

func forgetHeld(fi os.FileInfo) {
	heldPidfiles.Lock()
	defer heldPidfiles.Unlock()
	heldPidfiles.files = slices.DeleteFunc(heldPidfiles.files, func(held os.FileInfo) bool { return os.SameFile(held, fi) })
}
