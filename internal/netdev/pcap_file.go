package netdev

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Where pcap ports may write. gvsd runs as root and options:file comes
// from any database client, so a pcap port writes only inside one
// directory of gvsd's (<rundir>/capture, mode 0700), reaches its file
// without following a symbolic link, and writes only to a regular file
// (with no other hard link) or a FIFO. Rotation renames and deletes names
// in the file's own directory only.

const (
	// CaptureDirMode is the mode of gvsd's capture directory: captured
	// traffic is for gvsd's user only.
	CaptureDirMode = 0o700
	// pcapFileMode is the mode of the files pcap ports create.
	pcapFileMode = 0o600
	// pcapMaxFilesLimit caps options:max-files.
	pcapMaxFilesLimit = 100
	// pcapMaxSizeLimit caps options:max-size (1 TiB).
	pcapMaxSizeLimit = 1 << 40
	// openat2Retries bounds the retries of an openat2 that a concurrent
	// rename made fail with EAGAIN.
	openat2Retries = 4
)

// openat2 is unix.Openat2, a variable so that tests can play a kernel
// without it (before Linux 5.6) and exercise the fallback.
var openat2 = unix.Openat2

// PrepareCaptureDir creates gvsd's capture directory if it is missing and
// checks it: a directory (not a symbolic link) owned by gvsd's user, with
// mode 0700. It returns the directory's absolute path.
func PrepareCaptureDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("capture directory %s: %w", dir, err)
	}
	if err := unix.Mkdir(abs, CaptureDirMode); err != nil && !errors.Is(err, unix.EEXIST) {
		return "", fmt.Errorf("capture directory %s: %w", abs, err)
	}
	fd, err := unix.Open(abs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("capture directory %s: must be a directory, not a symbolic link: %w", abs, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("capture directory %s: %w", abs, err)
	}
	if int(st.Uid) != os.Geteuid() {
		return "", fmt.Errorf("capture directory %s: owned by uid %d, must be owned by gvsd's user (uid %d)", abs, st.Uid, os.Geteuid())
	}
	// An existing directory may have been made with a wider mode.
	if st.Mode&0o7777 != CaptureDirMode {
		if err := unix.Fchmod(fd, CaptureDirMode); err != nil {
			return "", fmt.Errorf("capture directory %s: chmod 0700: %w", abs, err)
		}
	}
	return abs, nil
}

// captureRuleError is a refused options:file, with the rule it breaks.
func captureRuleError(port, file, dir, why string) error {
	return fmt.Errorf("pcap port %s: options:file %q %s: pcap files must be regular files or FIFOs inside gvsd's capture directory %s (a relative name is taken inside it), reached without symbolic links or \"..\"", port, file, why, dir)
}

// resolveCaptureFile returns where options:file names, relative to the
// capture directory dir, or an error that names the rule it breaks.
func resolveCaptureFile(port, dir, file string) (string, error) {
	for _, c := range strings.Split(file, "/") {
		if c == ".." {
			return "", captureRuleError(port, file, dir, `has a ".." component`)
		}
	}
	rel := filepath.Clean(file)
	if filepath.IsAbs(file) {
		var ok bool
		if rel, ok = pathBelow(dir, file); !ok {
			return "", captureRuleError(port, file, dir, "is outside gvsd's capture directory")
		}
	}
	if rel == "." || rel == "" {
		return "", captureRuleError(port, file, dir, "names no file")
	}
	return rel, nil
}

// pathBelow returns file relative to dir if it lies below it, also when
// it is spelled through dir's real path (/run for /var/run).
func pathBelow(dir, file string) (string, bool) {
	dirs := []string{filepath.Clean(dir)}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dirs[0] {
		dirs = append(dirs, real)
	}
	for _, d := range dirs {
		rel, err := filepath.Rel(d, filepath.Clean(file))
		if err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, "../") {
			return rel, true
		}
	}
	return "", false
}

// openBeneath opens rel below the directory dirfd without following any
// symbolic link and without leaving it: openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS, or, on kernels without openat2, one openat with
// O_NOFOLLOW per component (rel has no ".." component).
func openBeneath(dirfd int, rel string, flags int, mode uint32) (int, error) {
	// No O_NOFOLLOW here: with O_DIRECTORY it makes a final link fail
	// as ENOTDIR, and RESOLVE_NO_SYMLINKS already refuses it (ELOOP).
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	}
	if flags&unix.O_CREAT != 0 {
		how.Mode = uint64(mode)
	}
	for range openat2Retries {
		fd, err := openat2(dirfd, rel, &how)
		switch {
		case errors.Is(err, unix.ENOSYS):
			return openWalk(dirfd, rel, flags, mode)
		case errors.Is(err, unix.EAGAIN):
			continue // a rename raced the lookup
		}
		return fd, err
	}
	return -1, unix.EAGAIN
}

// openWalk is openBeneath for kernels without openat2.
func openWalk(dirfd int, rel string, flags int, mode uint32) (int, error) {
	parts := strings.Split(rel, "/")
	cur := dirfd
	defer func() {
		if cur != dirfd {
			unix.Close(cur)
		}
	}()
	for _, name := range parts[:len(parts)-1] {
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			return -1, unix.EXDEV
		}
		next, err := unix.Openat(cur, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, linkError(cur, name, err)
		}
		if cur != dirfd {
			unix.Close(cur)
		}
		cur = next
	}
	last := parts[len(parts)-1]
	if last == ".." {
		return -1, unix.EXDEV
	}
	fd, err := unix.Openat(cur, last, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return -1, linkError(cur, last, err)
	}
	return fd, nil
}

// linkError reports ELOOP, as openat2 does, when an O_NOFOLLOW open
// failed with ENOTDIR because name is a symbolic link.
func linkError(dirfd int, name string, err error) error {
	var st unix.Stat_t
	if errors.Is(err, unix.ENOTDIR) && unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return unix.ELOOP
	}
	return err
}

// openCaptureParent opens the directory that will hold options:file,
// below the capture directory, and returns it with the file's base name.
func openCaptureParent(port, dir, file string) (int, string, error) {
	rel, err := resolveCaptureFile(port, dir, file)
	if err != nil {
		return -1, "", err
	}
	top, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("pcap port %s: gvsd's capture directory: %w", port, err)
	}
	defer unix.Close(top)
	parent, err := openBeneath(top, filepath.Dir(rel), unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, "", captureOpenError(port, file, dir, err)
	}
	return parent, filepath.Base(rel), nil
}

// captureOpenError explains a failed open below the capture directory.
func captureOpenError(port, file, dir string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP):
		return captureRuleError(port, file, dir, "goes through a symbolic link")
	case errors.Is(err, unix.EXDEV):
		return captureRuleError(port, file, dir, "leads outside gvsd's capture directory")
	case errors.Is(err, unix.ENOTDIR):
		return captureRuleError(port, file, dir, "has a component that is not a directory")
	}
	return fmt.Errorf("pcap port %s: options:file %q in gvsd's capture directory %s: %w", port, file, dir, err)
}

// captureFileKind says what is at name in dirfd: 0 if nothing,
// unix.S_IFREG or unix.S_IFIFO, or an error naming the rule it breaks.
func captureFileKind(port, file, dir string, dirfd int, name string) (uint32, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, captureOpenError(port, file, dir, err)
	}
	return checkCaptureStat(port, file, dir, &st)
}

// checkCaptureStat accepts a regular file with one name, or a FIFO.
func checkCaptureStat(port, file, dir string, st *unix.Stat_t) (uint32, error) {
	switch kind := st.Mode & unix.S_IFMT; kind {
	case unix.S_IFIFO:
		return kind, nil
	case unix.S_IFREG:
		if st.Nlink > 1 {
			return 0, captureRuleError(port, file, dir, "has "+strconv.Itoa(int(st.Nlink))+" hard links, a pcap file may have only one")
		}
		return kind, nil
	case unix.S_IFLNK:
		return 0, captureRuleError(port, file, dir, "is a symbolic link")
	case unix.S_IFDIR:
		return 0, captureRuleError(port, file, dir, "is a directory")
	case unix.S_IFCHR, unix.S_IFBLK:
		return 0, captureRuleError(port, file, dir, "is a device")
	case unix.S_IFSOCK:
		return 0, captureRuleError(port, file, dir, "is a socket")
	default:
		return 0, captureRuleError(port, file, dir, "is not a regular file or FIFO")
	}
}

// openCaptureFile opens name in dirfd for writing: a FIFO without
// blocking (ENXIO: nobody reads it yet), a regular file created with mode
// 0600 and either emptied or appended to. What it opened is checked again
// after the open, against a swap since captureFileKind; a regular file is
// only emptied once it is known to be one.
func openCaptureFile(port, file, dir string, dirfd int, name string, fifo, truncate bool) (*os.File, error) {
	flags := unix.O_WRONLY | unix.O_NONBLOCK | unix.O_NOCTTY
	if !fifo {
		flags |= unix.O_CREAT
		if !truncate {
			flags |= unix.O_APPEND
		}
	}
	fd, err := openBeneath(dirfd, name, flags, pcapFileMode)
	if err != nil {
		if fifo && errors.Is(err, unix.ENXIO) {
			return nil, err
		}
		return nil, captureOpenError(port, file, dir, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("pcap port %s: %s: %w", port, file, err)
	}
	kind, err := checkCaptureStat(port, file, dir, &st)
	if err == nil && (kind == unix.S_IFIFO) != fifo {
		err = fmt.Errorf("pcap port %s: options:file %q changed type while being opened", port, file)
	}
	if err == nil && !fifo && truncate {
		err = unix.Ftruncate(fd, 0)
	}
	// A FIFO stays non-blocking, so that os.NewFile puts it under Go's
	// poller: a write waits there for the reader (and writes a record
	// whole), and closing the file from another goroutine ends the wait,
	// which is how the port's Close frees a writer that a stalled reader
	// holds. A blocking descriptor's write could not be cut short: its
	// close waits for the write. A regular file is never pollable.
	if err == nil && !fifo {
		err = unix.SetNonblock(fd, false)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), file), nil
}

// rotateNames renames name to name.1, name.1 to name.2 and so on in
// dirfd, keeping at most keep old files. Renaming and unlinking act on
// the names themselves, never on what a symbolic link points to.
func rotateNames(dirfd int, name string, keep int) error {
	if keep == 0 {
		return ignoreNotExist(unix.Unlinkat(dirfd, name, 0))
	}
	if err := ignoreNotExist(unix.Unlinkat(dirfd, rotatedName(name, keep), 0)); err != nil {
		return err
	}
	for i := keep - 1; i >= 1; i-- {
		if err := ignoreNotExist(unix.Renameat(dirfd, rotatedName(name, i), dirfd, rotatedName(name, i+1))); err != nil {
			return err
		}
	}
	return ignoreNotExist(unix.Renameat(dirfd, name, dirfd, rotatedName(name, 1)))
}

func rotatedName(name string, i int) string { return name + "." + strconv.Itoa(i) }

func ignoreNotExist(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	return err
}

// RemoveCaptureFIFO removes the FIFO that options:file names in the
// capture directory dir, as the pcap port would find it; anything that
// is not a FIFO stays. gvsd uses it for the FIFO of a `gvs capture` that
// was killed before it could remove it.
func RemoveCaptureFIFO(port, dir, file string) error {
	dirfd, name, err := openCaptureParent(port, dir, file)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	kind, err := captureFileKind(port, file, dir, dirfd, name)
	if err != nil || kind != unix.S_IFIFO {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		return fmt.Errorf("pcap port %s: remove FIFO %q: %w", port, file, err)
	}
	return nil
}

// OpenCaptureFile opens file for writing under the rules of a pcap port's
// options:file (inside the capture directory dir, no symbolic link, a
// regular file with one link or a FIFO, mode 0600), emptied if it is a
// regular file. owner names the user of the file in messages. A FIFO
// without a reader is an error (ENXIO).
func OpenCaptureFile(owner, dir, file string) (*os.File, error) {
	if dir == "" {
		return nil, fmt.Errorf("%s: gvsd has no capture directory for files", owner)
	}
	dirfd, base, err := openCaptureParent(owner, dir, file)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dirfd)
	kind, err := captureFileKind(owner, file, dir, dirfd, base)
	if err != nil {
		return nil, err
	}
	return openCaptureFile(owner, file, dir, dirfd, base, kind == unix.S_IFIFO, true)
}

// CheckCaptureName reports whether file could name a file inside the
// capture directory dir (no ".." component, not outside it), without
// opening anything: what a configuration can be refused for up front.
func CheckCaptureName(owner, dir, file string) error {
	_, err := resolveCaptureFile(owner, dir, file)
	return err
}
