package vlog

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// logFlags open the log file for appending. O_NONBLOCK keeps a named pipe
// without a reader from blocking the open; it is cleared once the file
// is known to be one gvsd may log to, unless it is a pipe (checkLogFile).
const logFlags = unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT | unix.O_NONBLOCK | unix.O_CLOEXEC

// maxLogAttempts bounds the replacements of what keeps appearing at the
// log file's name.
const maxLogAttempts = 3

// plantedError is what another user may have put at the log file's name:
// it is replaced by a new file, never written to.
type plantedError struct{ what string }

func (e *plantedError) Error() string { return e.what }

// openLogFile opens the log file at path for gvsd, which runs as root,
// while its directory may be writable by others (OVS's --ovs-user setups
// give /var/log/openvswitch to that user). What someone else could have
// put at that name is replaced by a new file, never written through: a
// symbolic link made by neither root nor gvsd's user (as
// fs.protected_symlinks does in sticky directories, but everywhere), a
// hard link (a second name of another file), another user's named pipe
// (a reader that stops reading would block every log line). A regular
// file, a device (/dev/null, a terminal), an inherited pipe
// (/dev/stdout) and root's own links and named pipes are used as they
// are.
func openLogFile(path string) (*os.File, error) {
	for range maxLogAttempts {
		f, err := openExistingLog(path)
		var planted *plantedError
		if !errors.As(err, &planted) {
			return f, err
		}
		if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%v; removing it: %w", planted, err)
		}
		fd, err := unix.Open(path, logFlags|unix.O_EXCL|unix.O_NOFOLLOW, 0o640)
		if errors.Is(err, unix.EEXIST) {
			continue // something appeared there again: look at it again
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), path), nil
	}
	return nil, errors.New("something keeps appearing at that name")
}

// openExistingLog opens path as it is, or returns a *plantedError.
func openExistingLog(path string) (*os.File, error) {
	fd, err := unix.Open(path, logFlags|unix.O_NOFOLLOW, 0o640)
	if errors.Is(err, unix.ELOOP) {
		fd, err = openThroughLink(path)
	}
	if errors.Is(err, unix.ENXIO) {
		return nil, fifoWithoutReader(path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkLogFile(fd); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// trusted reports whether uid may have made what gvsd logs to.
func trusted(uid uint32) bool { return uid == 0 || int(uid) == os.Geteuid() }

// openThroughLink opens path, a symbolic link, if root or gvsd's user
// owns the link, and only if it is still that link once open.
func openThroughLink(path string) (int, error) {
	var before unix.Stat_t
	if err := unix.Lstat(path, &before); err != nil {
		return -1, err
	}
	if before.Mode&unix.S_IFMT != unix.S_IFLNK {
		return -1, unix.ELOOP // too many links further up the path
	}
	if !trusted(before.Uid) {
		return -1, &plantedError{fmt.Sprintf("a symbolic link owned by uid %d", before.Uid)}
	}
	fd, err := unix.Open(path, logFlags, 0o640)
	if err != nil {
		return -1, err
	}
	var after unix.Stat_t
	if err := unix.Lstat(path, &after); err != nil || after.Ino != before.Ino || after.Dev != before.Dev {
		unix.Close(fd)
		return -1, &plantedError{"a symbolic link replaced while it was opened"}
	}
	return fd, nil
}

// fifoWithoutReader is the error for an open that found a named pipe
// without a reader at path (ENXIO).
func fifoWithoutReader(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO && !trusted(st.Uid) {
		return &plantedError{fmt.Sprintf("a named pipe owned by uid %d", st.Uid)}
	}
	return errors.New("a named pipe that nobody reads")
}

// checkLogFile accepts fd as a log file or says why not, and makes its
// writes blocking again, except a named pipe's: the Go runtime's poller
// waits for a pipe whose reader is behind, so that closing the file
// (vlog/reopen, vlog/close) ends a write that waits.
func checkLogFile(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Nlink > 1 {
			return &plantedError{fmt.Sprintf("a file with %d links (another file's second name)", st.Nlink)}
		}
	case unix.S_IFIFO:
		var fs unix.Statfs_t
		if err := unix.Fstatfs(fd, &fs); err != nil {
			return err
		}
		if fs.Type != unix.PIPEFS_MAGIC && !trusted(st.Uid) {
			return &plantedError{fmt.Sprintf("a named pipe owned by uid %d", st.Uid)}
		}
		return nil
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_APPEND)
	return err
}
