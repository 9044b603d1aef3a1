package netdev

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// A capture file grows as long as its mirror or span copies frames into
// it, and any database client can start one. The capture directory is
// below gvsd's run directory, often a tmpfs that the host's services
// need too (and whose pages are memory), so gvsd stops writing captures
// while the filesystem that holds them has less than a reserve free: a
// capture then loses its frames (counted as tx_errors, and said in the
// port's Interface.error) instead of taking the host's last bytes.
const (
	// captureReserveDivisor: the reserve is 1/20 (5 %) of the
	// filesystem's size.
	captureReserveDivisor = 20
	// captureRoomStep is how many bytes a writer may add between two
	// looks at the filesystem (one fstatfs per MiB).
	captureRoomStep = 1 << 20
)

// CaptureRoom decides whether a capture file may grow: it looks at the
// filesystem under fd at most once per captureRoomStep bytes written. The
// zero value looks at the first write.
type CaptureRoom struct {
	allowedTo int64 // the file may grow to this size without a new look
}

// statfs is unix.Fstatfs; a test replaces it to fake a filling disk.
var statfs = unix.Fstatfs

// Allow reports whether a file on fd's filesystem, which will hold size
// bytes once the next write (of need bytes) is in, may take that write.
// unflushed is what the writer holds in buffers, not yet on the disk.
func (r *CaptureRoom) Allow(fd int, size, need, unflushed int64) error {
	if size <= r.allowedTo {
		return nil
	}
	var st unix.Statfs_t
	if err := statfs(fd, &st); err != nil {
		return fmt.Errorf("cannot see the capture directory's free space: %w", err)
	}
	bsize := int64(st.Bsize)
	total, avail := int64(st.Blocks)*bsize, int64(st.Bavail)*bsize
	if total == 0 {
		// A filesystem that reports no size (some FUSE and 9p mounts)
		// has no 5 % to keep: its own errors are what stop the write.
		r.allowedTo = size - need + captureRoomStep
		return nil
	}
	reserve := total / captureReserveDivisor
	room := avail - reserve - unflushed
	if room < need {
		return fmt.Errorf("the capture directory's filesystem has %d MiB free of %d MiB, and gvsd leaves the last 5 %% (%d MiB) for the host: free space there or set a smaller max-size",
			avail>>20, total>>20, reserve>>20)
	}
	r.allowedTo = size - need + min(room, captureRoomStep)
	return nil
}

// Reset makes the next Allow look at the filesystem (a new file).
func (r *CaptureRoom) Reset() { r.allowedTo = 0 }
