// Package unixsock creates the daemon's listening unix sockets (db.sock,
// punix: remotes, the control socket) the way they must be: with their
// final mode from the moment their name appears, and without taking the
// name over from a process that still serves on it.
package unixsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/procinfo"
)

// MaxPath is the room in sockaddr_un.sun_path.
const MaxPath = 107

// Listener is a listening unix socket that removes its file on Close, if
// the file is still its own.
type Listener struct {
	*net.UnixListener
	path string
	ino  uint64 // the socket file's inode, to tell it from a successor's
}

// Addr is the socket's path (the file was bound under another name and
// renamed, so the kernel's idea of it is stale).
func (l *Listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Path is the socket file's name.
func (l *Listener) Path() string { return l.path }

// Close stops listening and removes the socket file, unless another
// process has since put its own socket there.
func (l *Listener) Close() error {
	err := l.UnixListener.Close()
	var st syscall.Stat_t
	if syscall.Lstat(l.path, &st) == nil && st.Ino == l.ino {
		os.Remove(l.path)
	}
	return err
}

// Listen creates a listening socket at path whose mode is perm less the
// process's umask (so the umask can make it stricter, never looser), set
// before the name appears: the socket is bound in a private directory
// beside path, given its mode there and renamed into place. A socket file
// already at path is replaced only when nobody answers on it; anything
// else there (a live server's socket, a regular file, a symlink) is left
// alone and reported.
func Listen(path string, perm os.FileMode) (*Listener, error) {
	if len(path) > MaxPath {
		return nil, fmt.Errorf("socket %q: path longer than %d bytes", path, MaxPath)
	}
	if err := CheckStale(path); err != nil {
		return nil, err
	}
	removeStaleDirs(filepath.Dir(path))
	tmp, err := os.MkdirTemp(filepath.Dir(path), tmpPrefix+strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return nil, fmt.Errorf("socket %q: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	ln, err := bindIn(tmp, perm)
	if err != nil {
		return nil, fmt.Errorf("socket %q: %w", path, err)
	}
	l, err := publish(ln, filepath.Join(tmp, "s"), path)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket %q: %w", path, err)
	}
	return l, nil
}

// tmpPrefix starts the name of the private directory a socket is bound
// in, followed by the pid of the process that made it.
const tmpPrefix = ".sock-"

// staleAge is how old a private directory of an older gvsd (".sock"
// and digits, no pid) must be to be taken as left by a crash: Listen
// holds one for a moment only.
const staleAge = time.Minute

// removeStaleDirs removes the private directories that a process of this
// user left in dir when it died between making one and removing it (a
// crash at bind time): those whose process is gone, or, named by an
// older gvsd, older than staleAge. Another user's, a live process's, and
// anything that is not a directory are left alone.
func removeStaleDirs(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || len(name) < len(".sock")+1 || name[:len(".sock")] != ".sock" {
			continue
		}
		full := filepath.Join(dir, name)
		var st syscall.Stat_t
		if syscall.Lstat(full, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR || int(st.Uid) != os.Geteuid() {
			continue
		}
		if !staleDir(name, time.Unix(st.Mtim.Sec, st.Mtim.Nsec)) {
			continue
		}
		// Only what Listen puts there: the socket "s".
		os.Remove(filepath.Join(full, "s"))
		os.Remove(full)
	}
}

// staleDir says whether a private directory called name, last changed at
// mtime, was left by a process that is gone.
func staleDir(name string, mtime time.Time) bool {
	rest, ok := strings.CutPrefix(name, tmpPrefix)
	if !ok {
		if _, err := strconv.ParseUint(name[len(".sock"):], 10, 64); err != nil {
			return false
		}
		return time.Since(mtime) > staleAge
	}
	pidText, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}

// bindIn binds a socket called "s" in the private directory dir and
// gives it its mode. A dir too long for sun_path is reached through its
// descriptor in /proc.
func bindIn(dir string, perm os.FileMode) (*net.UnixListener, error) {
	name := filepath.Join(dir, "s")
	bindName := name
	if len(name) > MaxPath {
		fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
		bindName = "/proc/self/fd/" + strconv.Itoa(fd) + "/s"
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: bindName, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// The file moves away from this name; never unlink by it.
	ln.SetUnlinkOnClose(false)
	fi, err := os.Lstat(name)
	if err == nil {
		// bind applied the umask: keep what it took away.
		err = os.Chmod(name, fi.Mode().Perm()&perm)
	}
	if err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// publish renames the bound socket from tmp to path.
func publish(ln *net.UnixListener, tmp, path string) (*Listener, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(tmp, &st); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return &Listener{UnixListener: ln, path: path, ino: st.Ino}, nil
}

// CheckStale returns nil when path is free for a new socket: nothing is
// there, or a socket nobody answers on (left by a dead process). A live
// socket or a file that is not a socket gets an error naming it, and a
// live socket's error names the process serving it (ovsdb-server,
// ovs-vswitchd, gvsd).
func CheckStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("socket %q: %w", path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("socket %q: file exists and is not a socket", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		defer conn.Close()
		return fmt.Errorf("socket %q: another process is listening on it, %s", path, procinfo.Describe(procinfo.Peer(conn)))
	}
	if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("socket %q: probing old socket: %w", path, err)
	}
	return nil
}
