package vlog

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// logFlags open the log file for appending. O_NONBLOCK keeps a named pipe
// without a reader from blocking the open; it is cleared once the file
// is known to be one gvsd may log to.
const logFlags = unix.O_WRONLY | unix.O_APPEND | unix.O_CREAT | unix.O_NONBLOCK | unix.O_CLOEXEC

// openLogFile opens the log file at path for gvsd, which runs as root,
// while its directory may be writable by others (OVS's --ovs-user setups
// give /var/log/openvswitch to that user). What someone else could have
// put at that name is refused: a symbolic link not made by gvsd's own
// user or root (as fs.protected_symlinks does in sticky directories,
// but everywhere), a hard link (a second name of another file), a named pipe
// (a reader that stops reading would block every log line). A regular
// file, a device (/dev/null, a terminal) and an inherited pipe
// (/dev/stdout) are fine.
func openLogFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, logFlags|unix.O_NOFOLLOW, 0o640)
	if errors.Is(err, unix.ELOOP) {
		fd, err = openThroughLink(path)
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
	if before.Uid != 0 && int(before.Uid) != os.Geteuid() {
		return -1, fmt.Errorf("a symbolic link owned by uid %d; gvsd follows a link at its log file's name only if root or its own user (uid %d) made it", before.Uid, os.Geteuid())
	}
	fd, err := unix.Open(path, logFlags, 0o640)
	if err != nil {
		return -1, err
	}
	var after unix.Stat_t
	if err := unix.Lstat(path, &after); err != nil || after.Ino != before.Ino || after.Dev != before.Dev {
		unix.Close(fd)
		return -1, errors.New("the symbolic link was replaced while it was opened")
	}
	return fd, nil
}

// checkLogFile accepts fd as a log file or says why not, and makes its
// writes blocking again.
func checkLogFile(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Nlink > 1 {
			return fmt.Errorf("has %d links; a log file must have one (another file's second name would be written)", st.Nlink)
		}
	case unix.S_IFIFO:
		var fs unix.Statfs_t
		if err := unix.Fstatfs(fd, &fs); err != nil {
			return err
		}
		if fs.Type != unix.PIPEFS_MAGIC {
			return errors.New("a named pipe; a log file must be a regular file, a device or an inherited pipe")
		}
	}
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, unix.O_APPEND)
	return err
}
