//go:build linux

package netdev

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// AF_XDP transmit, measured and not used by ports (docs/PERFORMANCE.md,
// "AF_XDP on system ports"): on a veth it runs in copy mode, where the
// kernel builds a socket buffer per frame and sends it as the packet
// socket's ring does.

// mapTx maps the transmit and completion rings and frees the transmit
// frames, which follow the receive ones in the UMEM.
func (x *xskSocket) mapTx(fd int, off unix.XDPMmapOffsets) error {
	if err := mapXSKRing(&x.tx, fd, off.Tx, unix.XDP_PGOFF_TX_RING, uint64(unsafe.Sizeof(unix.XDPDesc{}))); err != nil {
		return err
	}
	if err := mapXSKRing(&x.comp, fd, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, 8); err != nil {
		return err
	}
	x.txFree = make([]uint64, 0, xskTxFrames)
	for i := range uint64(xskTxFrames) {
		x.txFree = append(x.txFree, (xskFrames+i)*xskFrameSize)
	}
	return nil
}

// openXSKTx is a socket with transmit only (no program attached): the
// transmit experiment's.
func openXSKTx(ifindex int) (*xskSocket, error) {
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("XDP socket: %w", err)
	}
	x := &xskSocket{}
	if err := x.setup(fd, ifindex, true); err != nil {
		unix.Close(fd)
		x.close()
		return nil, err
	}
	x.file, x.txFd = os.NewFile(uintptr(fd), "xsk-tx"), uintptr(fd)
	return x, nil
}

// reclaim takes the frames the kernel has sent back into txFree.
func (x *xskSocket) reclaim() {
	cons := *x.comp.consumer
	prod := atomic.LoadUint32(x.comp.producer)
	for i := cons; i != prod; i++ {
		x.txFree = append(x.txFree, *x.comp.addr(i))
	}
	atomic.StoreUint32(x.comp.consumer, prod)
}

// transmit copies frames into free UMEM frames, queues them on the
// transmit ring and kicks the kernel, which sends them within the call
// (copy mode). It returns how many were queued; the rest found no frame
// free or were too large.
func (x *xskSocket) transmit(frames [][]byte) int {
	x.reclaim()
	prod := *x.tx.producer
	n := 0
	for _, f := range frames {
		if len(x.txFree) == 0 || len(f) > xskFrameSize {
			continue
		}
		addr := x.txFree[len(x.txFree)-1]
		x.txFree = x.txFree[:len(x.txFree)-1]
		copy(x.umem[addr:addr+xskFrameSize], f)
		d := x.tx.rxDesc(prod)
		d.Addr, d.Len, d.Options = addr, uint32(len(f)), 0
		prod++
		n++
	}
	atomic.StoreUint32(x.tx.producer, prod)
	// The kernel sends at most 32 frames a call (TX_BATCH_SIZE) and
	// says EAGAIN while more wait.
	for {
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, x.txFd, 0, 0, unix.MSG_DONTWAIT, 0, 0)
		if e != unix.EAGAIN && e != unix.EINTR {
			break
		}
		if atomic.LoadUint32(x.tx.consumer) == prod {
			break
		}
	}
	return n
}
