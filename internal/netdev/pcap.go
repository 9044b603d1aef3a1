package netdev

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The "pcap" port type records every frame sent to it in a pcapng file,
// so a mirror whose output_port is a pcap port is a capture that Wireshark
// and tcpdump read directly. It receives nothing.
//
// Options:
//
//	file=PATH       required; a regular file (created with mode 0600, or
//	                truncated) or a FIFO that a reader such as `gvs capture`
//	                holds open, inside gvsd's capture directory (see
//	                pcap_file.go): a relative PATH is taken inside it
//	max-size=BYTES  start a new file when the current one would grow past
//	                this size (regular files only; at most 1 TiB)
//	max-files=N     how many full files to keep beside PATH, as PATH.1
//	                (newest) to PATH.N (oldest); default 5, at most 100
//
// Every file, and every new reader of a FIFO, gets its own Section Header
// Block and Interface Description Block, so each one stands alone.

func init() { Register("pcap", openPcap) }

const (
	// pcapSnaplen is the snapshot length the interface block announces:
	// far above MaxSuperFrame, so readers never cut what we wrote.
	pcapSnaplen = 262144
	// pcapDefaultMaxFiles is how many rotated files are kept by default.
	pcapDefaultMaxFiles = 5
	// pcapBufSize is the write buffer: a whole batch of ordinary frames
	// fits, so a batch usually costs one write system call.
	pcapBufSize = 64 << 10
	// pcapRetryInterval paces the attempts to open a FIFO that has no
	// reader, both in the background and from WriteBatch.
	pcapRetryInterval = 200 * time.Millisecond
	// pcapCloseWait bounds how long Close waits for a write that a stalled
	// FIFO reader blocks, before it closes the file under the writer.
	pcapCloseWait = 2 * time.Second
)

// pcapng block types and option codes used here.
const (
	pcapngSHB        = 0x0A0D0D0A
	pcapngIDB        = 0x00000001
	pcapngEPB        = 0x00000006
	pcapngByteOrder  = 0x1A2B3C4D
	pcapngOptEnd     = 0
	pcapngOptUserApp = 4 // shb_userappl
	pcapngOptIfName  = 2 // if_name
	pcapngOptTsResol = 9 // if_tsresol
	pcapngLinkEther  = 1 // LINKTYPE_ETHERNET
	pcapngTsNanos    = 9 // if_tsresol value: 10^-9 s
	pcapngEPBFixed   = 28
	pcapngTrailerLen = 4
)

// pcapPort is an open pcap port.
//
// The writer state (f, w, written, committed, ...) belongs to whoever holds
// lock, a one-slot channel used as a mutex so that Close can stop waiting
// for a write that a stalled FIFO reader blocks.
type pcapPort struct {
	name     string
	path     string // options:file, for messages
	dir      string // gvsd's capture directory
	dirfd    int    // the directory that holds the file, below dir; -1 once closed
	base     string // the file's name in dirfd
	maxSize  int64  // 0: no rotation
	maxFiles int
	fifo     bool
	header   []byte // SHB and IDB, the start of every file

	lock      chan struct{}
	f         *os.File // nil while no file is open
	w         *bufio.Writer
	written   int64     // bytes in the current file, buffered ones included
	committed int64     // bytes known to have reached the file
	sectionAt int64     // where this file's packets start, after the headers
	nextOpen  time.Time // earliest lazy reopen after a failure
	waiting   bool      // the background FIFO opener is running
	failing   bool      // the last write failed (log only the first)
	room      CaptureRoom
	pending   batchCount
	tally     batchCount
	epb       [pcapngEPBFixed]byte
	trailer   [pcapngTrailerLen]byte

	fileMu   sync.Mutex // guards openFile, the file Close may have to force shut
	openFile *os.File

	fault  atomic.Pointer[string] // why writes fail, for Interface.error; nil while they work
	linkUp atomic.Bool
	closed atomic.Bool
	done   chan struct{}
	stats  counters
}

var _ OrigLenWriter = (*pcapPort)(nil)

func openPcap(cfg Config) (Netdev, error) {
	p, err := newPcapPort(cfg)
	if err != nil {
		return nil, err
	}
	if p.dirfd, p.base, err = openCaptureParent(p.name, p.dir, p.path); err != nil {
		return nil, err
	}
	if err := p.start(); err != nil {
		unix.Close(p.dirfd)
		return nil, err
	}
	return p, nil
}

// newPcapPort checks the options; it opens nothing.
func newPcapPort(cfg Config) (*pcapPort, error) {
	p := &pcapPort{
		name:     cfg.Name,
		path:     cfg.Options["file"],
		dir:      cfg.CaptureDir,
		dirfd:    -1,
		maxFiles: pcapDefaultMaxFiles,
		lock:     make(chan struct{}, 1),
		w:        bufio.NewWriterSize(io.Discard, pcapBufSize),
		done:     make(chan struct{}),
	}
	if p.path == "" {
		return nil, fmt.Errorf("pcap port %s: options:file is required (the pcapng file or FIFO to write)", cfg.Name)
	}
	if p.dir == "" {
		return nil, fmt.Errorf("pcap port %s: gvsd has no capture directory for pcap files", cfg.Name)
	}
	if s, ok := cfg.Options["max-size"]; ok {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 || n > pcapMaxSizeLimit {
			return nil, fmt.Errorf("pcap port %s: options:max-size %q is not a number of bytes from 1 to %d (1 TiB)", cfg.Name, s, int64(pcapMaxSizeLimit))
		}
		p.maxSize = n
	}
	if s, ok := cfg.Options["max-files"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > pcapMaxFilesLimit {
			return nil, fmt.Errorf("pcap port %s: options:max-files %q is not a number from 0 to %d", cfg.Name, s, pcapMaxFilesLimit)
		}
		p.maxFiles = n
	}
	p.header = pcapngHeader(cfg.Name)
	return p, nil
}

// start opens the file, or for a FIFO without a reader yet, starts
// waiting for one in the background.
func (p *pcapPort) start() error {
	kind, err := captureFileKind(p.name, p.path, p.dir, p.dirfd, p.base)
	if err != nil {
		return err
	}
	p.fifo = kind == unix.S_IFIFO
	f, err := p.openTarget(true)
	if p.fifo && errors.Is(err, unix.ENXIO) {
		p.waiting = true
		go p.waitForReader()
		return nil
	}
	if err != nil {
		return err
	}
	if err := p.install(f); err != nil {
		return fmt.Errorf("pcap port %s: %s: %w", p.name, p.path, err)
	}
	return nil
}

// openTarget opens the file for writing: a FIFO without blocking (ENXIO
// means nobody reads it yet), a regular file created and either truncated
// or, when a failed file is reopened, appended to (a pcapng file may hold
// several sections, so what it had stays readable). The caller holds lock
// (or is the only goroutine that knows p), which keeps dirfd open.
func (p *pcapPort) openTarget(truncate bool) (*os.File, error) {
	if p.dirfd < 0 {
		return nil, ErrClosed
	}
	return openCaptureFile(p.name, p.path, p.dir, p.dirfd, p.base, p.fifo, truncate)
}

// waitForReader retries opening the FIFO until a reader appears or the
// port closes.
func (p *pcapPort) waitForReader() {
	tick := time.NewTicker(pcapRetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
		// The open happens under lock: Close closes dirfd under it.
		select {
		case p.lock <- struct{}{}:
		case <-p.done:
			return
		}
		if p.closed.Load() {
			<-p.lock
			return
		}
		f, err := p.openTarget(true)
		if err != nil {
			<-p.lock
			continue // still no reader, or the FIFO is not there (yet)
		}
		p.waiting = false
		if p.f != nil {
			f.Close()
		} else if err := p.install(f); err != nil {
			pcapStartError.Inc()
			netdevLog.WarnRL(pcapRL, "pcap port %s: cannot start the capture in %s: %v", p.name, p.path, err)
			p.waiting = true // try again with the next reader
			<-p.lock
			continue
		}
		<-p.lock
		return
	}
}

// install makes f the current file and writes the headers to it at once,
// so that a reader knows the stream before the first packet. The caller
// holds lock (or is the only goroutine that knows p).
func (p *pcapPort) install(f *os.File) error {
	var base int64 // what an appended-to file already holds
	if !p.fifo {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		base = st.Size()
	}
	p.w.Reset(f)
	if _, err := p.w.Write(p.header); err != nil {
		f.Close()
		return err
	}
	if err := p.w.Flush(); err != nil {
		p.w.Reset(io.Discard)
		f.Close()
		return err
	}
	p.f = f
	p.room.Reset()
	p.written = base + int64(len(p.header))
	p.committed, p.sectionAt = p.written, p.written
	p.setOpenFile(f)
	p.linkUp.Store(true)
	return nil
}

func (p *pcapPort) setOpenFile(f *os.File) {
	p.fileMu.Lock()
	p.openFile = f
	p.fileMu.Unlock()
}

// dropFile closes the current file after a failure or at Close.
func (p *pcapPort) dropFile() {
	if p.f == nil {
		return
	}
	p.linkUp.Store(false)
	p.setOpenFile(nil)
	p.f.Close()
	p.f = nil
	p.w.Reset(io.Discard)
}

func (p *pcapPort) Name() string { return p.name }

// Fault says why writes to a regular file fail, while they do.
func (p *pcapPort) Fault() string {
	if why := p.fault.Load(); why != nil {
		return *why
	}
	return ""
}

var _ Faulter = (*pcapPort)(nil)

func (p *pcapPort) Type() string { return "pcap" }
func (p *pcapPort) Stats() Stats { return p.stats.snapshot() }

// Info reports the link up while a file is open: for a FIFO, while a
// reader takes the capture.
func (p *pcapPort) Info() Info {
	return Info{LinkUp: p.linkUp.Load(), AdminUp: true}
}

// ReadBatch blocks until Close: nothing ever arrives on a pcap port.
func (p *pcapPort) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	<-p.done
	return 0, ErrClosed
}

// WriteBatch records frames that were not truncated.
func (p *pcapPort) WriteBatch(frames [][]byte) error {
	return p.WriteBatchOrig(frames, nil)
}

// WriteBatchOrig records frames, each with the length it had before a
// mirror's snaplen cut it (origLens[i]; missing or smaller values mean
// the frame is whole). Frames are counted as sent once they are flushed
// to the file; frames that arrive with no file open are dropped, and
// frames lost to a failed write are errors.
func (p *pcapPort) WriteBatchOrig(frames [][]byte, origLens []int) error {
	_, err := p.write(frames, origLens, nil)
	return err
}

// Transmit is WriteBatchOrig reporting what became of the batch.
func (p *pcapPort) Transmit(b *Batch) (TxResult, error) { return p.write(b.Frames, nil, b.Meta) }

// write records frames, whose lengths before truncation are in origLens
// or else in meta.
func (p *pcapPort) write(frames [][]byte, origLens []int, meta []FrameMeta) (TxResult, error) {
	select {
	case p.lock <- struct{}{}:
	case <-p.done:
		return TxResult{Dropped: len(frames)}, ErrClosed
	}
	defer func() { <-p.lock }()
	if p.closed.Load() {
		return TxResult{Dropped: len(frames)}, ErrClosed
	}
	p.tally = batchCount{}
	if p.f == nil {
		p.reopenLazily()
	}
	if p.f == nil {
		p.tally.dropped += uint64(len(frames))
	} else {
		p.writeFrames(frames, origLens, meta)
	}
	p.stats.addTx(p.tally)
	return p.tally.result(), nil
}

// writeFrames appends one Enhanced Packet Block per frame and flushes.
func (p *pcapPort) writeFrames(frames [][]byte, origLens []int, meta []FrameMeta) {
	ts := uint64(time.Now().UnixNano())
	for i, f := range frames {
		if len(f) == 0 || len(f) > MaxSuperFrame {
			p.tally.errors++
			continue
		}
		orig := len(f)
		if i < len(origLens) && origLens[i] > orig {
			orig = origLens[i]
		}
		if i < len(meta) && meta[i].Orig > orig {
			orig = meta[i].Orig
		}
		if err := p.writeRecord(f, orig, ts); err != nil {
			p.writeFailed(err)
			p.tally.errors++ // this frame, lost with the buffered ones
			// The rest of the batch: lost to the same failure while the
			// file stays open (a full disk), or finding no file open.
			if rest := uint64(len(frames) - i - 1); p.f != nil {
				p.tally.errors += rest
			} else {
				p.tally.dropped += rest
			}
			return
		}
	}
	if err := p.commit(); err != nil {
		p.writeFailed(err)
	}
}

// writeRecord buffers one Enhanced Packet Block, first starting a new
// file if this one would grow past max-size.
func (p *pcapPort) writeRecord(frame []byte, orig int, ts uint64) error {
	pad := (4 - len(frame)%4) % 4
	total := pcapngEPBFixed + len(frame) + pad + pcapngTrailerLen
	if p.maxSize > 0 && !p.fifo && p.written+int64(total) > p.maxSize && p.written > p.sectionAt {
		if err := p.rotate(); err != nil {
			return err
		}
	}
	if !p.fifo {
		if err := p.room.Allow(p.dirfd, p.written+int64(total), int64(total), p.written-p.committed); err != nil {
			return err
		}
	}
	le := binary.LittleEndian
	le.PutUint32(p.epb[0:], pcapngEPB)
	le.PutUint32(p.epb[4:], uint32(total))
	le.PutUint32(p.epb[8:], 0) // interface 0, the only one
	le.PutUint32(p.epb[12:], uint32(ts>>32))
	le.PutUint32(p.epb[16:], uint32(ts))
	le.PutUint32(p.epb[20:], uint32(len(frame)))
	le.PutUint32(p.epb[24:], uint32(orig))
	le.PutUint32(p.trailer[:], uint32(total))
	p.w.Write(p.epb[:])
	p.w.Write(frame)
	p.w.Write(pcapPadding[:pad])
	if _, err := p.w.Write(p.trailer[:]); err != nil {
		return err // bufio errors are sticky: this one covers the writes above
	}
	p.written += int64(total)
	p.pending.packets++
	p.pending.bytes += uint64(len(frame))
	return nil
}

var pcapPadding [4]byte

// commit flushes the buffer and counts the frames it held as sent.
func (p *pcapPort) commit() error {
	if err := p.w.Flush(); err != nil {
		return err
	}
	p.committed = p.written
	p.tally.packets += p.pending.packets
	p.tally.bytes += p.pending.bytes
	p.pending = batchCount{}
	if p.failing {
		p.failing = false
		p.fault.Store(nil)
		netdevLog.Info("pcap port %s: writing to %s again", p.name, p.path)
	}
	return nil
}

// writeFailed counts the frames not yet committed as errors and leaves a
// readable file behind: a FIFO whose reader left is closed (and reopened
// lazily, for a next reader), a regular file is cut back to its last
// whole record.
func (p *pcapPort) writeFailed(err error) {
	p.tally.errors += p.pending.packets
	p.pending = batchCount{}
	if !p.failing {
		pcapWriteError.Inc()
		netdevLog.WarnRL(pcapRL, "pcap port %s: writing to %s failed, dropping frames: %v", p.name, p.path, err)
	}
	p.failing = true
	if !p.fifo {
		why := fmt.Sprintf("pcap port %s: writing to %s failed, frames are lost: %v", p.name, p.path, err)
		p.fault.Store(&why)
	}
	p.nextOpen = time.Now().Add(pcapRetryInterval)
	if p.fifo || p.f == nil {
		p.dropFile()
		return
	}
	if p.f.Truncate(p.committed) != nil {
		p.dropFile()
		return
	}
	if _, err := p.f.Seek(p.committed, io.SeekStart); err != nil {
		p.dropFile()
		return
	}
	p.w.Reset(p.f)
	p.written = p.committed
}

// reopenLazily tries, at most once per retry interval, to open the file
// again after a failure: for a FIFO, a new reader may have come.
func (p *pcapPort) reopenLazily() {
	if p.waiting || time.Now().Before(p.nextOpen) {
		return
	}
	p.nextOpen = time.Now().Add(pcapRetryInterval)
	f, err := p.openTarget(false)
	if err != nil {
		return
	}
	if err := p.install(f); err != nil {
		netdevLog.DbgRL(pcapRL, "pcap port %s: reopen failed: %v", p.name, err)
	}
}

// rotate closes the current file, shifts PATH.i to PATH.i+1 (the oldest
// falls off), moves PATH to PATH.1 and starts a fresh PATH.
func (p *pcapPort) rotate() error {
	if err := p.commit(); err != nil {
		return err
	}
	p.dropFile()
	if err := rotateNames(p.dirfd, p.base, p.maxFiles); err != nil {
		pcapRotateError.Inc()
		netdevLog.WarnRL(pcapRL, "pcap port %s: rotation: %v", p.name, err)
	}
	f, err := p.openTarget(true)
	if err != nil {
		return err
	}
	return p.install(f)
}

// Close flushes and closes the file. If a write is stuck on a FIFO whose
// reader stopped reading, Close does not wait for it past pcapCloseWait:
// it closes the file under the writer, which then fails.
func (p *pcapPort) Close() error {
	if !p.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(p.done)
	wait := time.NewTimer(pcapCloseWait)
	defer wait.Stop()
	select {
	case p.lock <- struct{}{}:
		var err error
		if p.f != nil {
			err = p.w.Flush()
		}
		p.dropFile()
		p.closeDir()
		<-p.lock
		return err
	case <-wait.C:
		p.linkUp.Store(false)
		p.fileMu.Lock()
		f := p.openFile
		p.openFile = nil
		p.fileMu.Unlock()
		if f != nil {
			f.Close()
		}
		// The stuck writer holds lock and may still use dirfd (to
		// rotate): the directory is closed once it lets go.
		go func() {
			p.lock <- struct{}{}
			p.dropFile()
			p.closeDir()
			<-p.lock
		}()
		return nil
	}
}

// closeDir closes the file's directory; the caller holds lock.
func (p *pcapPort) closeDir() {
	if p.dirfd >= 0 {
		unix.Close(p.dirfd)
		p.dirfd = -1
	}
}

// pcapngHeader builds the Section Header Block and the one Interface
// Description Block (Ethernet, nanosecond timestamps) that open a file.
func pcapngHeader(ifName string) []byte {
	var shbOpts []byte
	shbOpts = appendPcapngOption(shbOpts, pcapngOptUserApp, []byte("gvs"))
	shbOpts = appendPcapngOption(shbOpts, pcapngOptEnd, nil)
	shbBody := binary.LittleEndian.AppendUint32(nil, pcapngByteOrder)
	shbBody = binary.LittleEndian.AppendUint16(shbBody, 1) // major version
	shbBody = binary.LittleEndian.AppendUint16(shbBody, 0) // minor version
	shbBody = binary.LittleEndian.AppendUint64(shbBody, ^uint64(0))
	shbBody = append(shbBody, shbOpts...)

	var idbOpts []byte
	if ifName != "" {
		idbOpts = appendPcapngOption(idbOpts, pcapngOptIfName, []byte(ifName))
	}
	idbOpts = appendPcapngOption(idbOpts, pcapngOptTsResol, []byte{pcapngTsNanos})
	idbOpts = appendPcapngOption(idbOpts, pcapngOptEnd, nil)
	idbBody := binary.LittleEndian.AppendUint16(nil, pcapngLinkEther)
	idbBody = binary.LittleEndian.AppendUint16(idbBody, 0) // reserved
	idbBody = binary.LittleEndian.AppendUint32(idbBody, pcapSnaplen)
	idbBody = append(idbBody, idbOpts...)

	out := appendPcapngBlock(nil, pcapngSHB, shbBody)
	return appendPcapngBlock(out, pcapngIDB, idbBody)
}

// appendPcapngBlock frames body (already a multiple of 4 bytes) as a
// block: type, total length, body, total length again.
func appendPcapngBlock(b []byte, typ uint32, body []byte) []byte {
	total := uint32(12 + len(body))
	b = binary.LittleEndian.AppendUint32(b, typ)
	b = binary.LittleEndian.AppendUint32(b, total)
	b = append(b, body...)
	return binary.LittleEndian.AppendUint32(b, total)
}

// appendPcapngOption appends one option, its value padded to 32 bits.
func appendPcapngOption(b []byte, code uint16, value []byte) []byte {
	b = binary.LittleEndian.AppendUint16(b, code)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(value)))
	b = append(b, value...)
	return append(b, pcapPadding[:(4-len(value)%4)%4]...)
}
