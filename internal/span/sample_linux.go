package span

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"golang.org/x/sys/unix"

	"gvs/internal/packet"
)

// Sizes of the perf event array's rings: sampleRing bytes per CPU
// (pinned kernel memory, a power of two pages), less on a machine with
// so many CPUs that the rings would pass sampleRings in all; the reader is woken once
// sampleWatermark bytes wait, or after sampleWait of quiet, so that a
// busy session costs one wake-up per batch and a quiet one delays a copy
// by sampleWait at most.
const (
	sampleRing      = 4 << 20
	sampleRings     = 32 << 20
	sampleRingMin   = 256 << 10
	sampleWatermark = 64 << 10
	sampleWait      = 50 * time.Millisecond
	// clockEvery is how many samples pass between two readings of the
	// offset between the monotonic clock (the records') and the wall
	// clock (the copies').
	clockEvery = 4096
)

// sampler reads the packets the tc programs hand to gvsd and gives them
// to the destinations the kernel does not clone to.
type sampler struct {
	s  *Session
	rd *perf.Reader

	samples, truncated, lost, errors atomic.Uint64

	// Used only by the reading goroutine.
	rec     perf.Record
	buf     []byte // a frame with its VLAN tag put back
	key     packet.Key
	off     packet.Offsets
	wallOff int64 // wall clock minus monotonic clock, ns
	since   int   // samples since the offset was read
}

func newSampler(s *Session, t *tcProg) (*sampler, error) {
	rd, err := perf.NewReaderWithOptions(t.samples, ringSize(), perf.ReaderOptions{Watermark: sampleWatermark})
	if err != nil {
		return nil, fmt.Errorf("opening the perf event array's rings: %w", err)
	}
	p := &sampler{s: s, rd: rd, buf: make([]byte, MaxSample+4)}
	p.clock()
	return p, nil
}

// ringSize is the size of each CPU's ring.
func ringSize() int {
	n, err := ebpf.PossibleCPU()
	size := sampleRing
	for err == nil && size > sampleRingMin && size*n > sampleRings {
		size /= 2
	}
	return size
}

// clock reads the offset from the records' clock to the wall clock.
func (p *sampler) clock() {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) == nil {
		p.wallOff = time.Now().UnixNano() - ts.Nano()
	}
	p.since = 0
}

// run reads samples until the session closes (Close closes the reader).
func (p *sampler) run() {
	for !p.s.closed.Load() {
		p.rd.SetDeadline(time.Now().Add(sampleWait))
		err := p.rd.ReadInto(&p.rec)
		switch {
		case err == nil:
			p.record(&p.rec)
		case errors.Is(err, os.ErrDeadlineExceeded):
			p.clock()
		case errors.Is(err, perf.ErrClosed):
			return
		default:
			p.errors.Add(1)
			spanLog.Warn("span %s: reading samples: %v", p.s.cfg.Name, err)
			p.s.sleep(sampleWait)
		}
	}
}

// record takes one perf record: a sample, or a count of samples the
// kernel lost because the ring was full (dropped copies).
func (p *sampler) record(r *perf.Record) {
	if r.LostSamples > 0 {
		p.lost.Add(r.LostSamples)
		return
	}
	p.take(r.RawSample)
}

// take hands one sample to the destinations gvsd writes.
func (p *sampler) take(raw []byte) {
	var m sampleRec
	frame, err := decodeSample(raw, &m)
	if err != nil {
		p.errors.Add(1)
		return
	}
	src := p.s.sourceOf(m.Ifindex)
	if src < 0 {
		p.errors.Add(1) // from a device no longer attached
		return
	}
	orig := int(m.Len)
	if m.VLANPresent {
		frame = withTag(p.buf, frame, m.VLANTPID, m.VLANTCI)
		orig += 4
	}
	cut := orig > len(frame)
	if cut && !p.s.cfg.Metadata {
		p.truncated.Add(1)
	}
	if !cut && !finishChecksum(frame, &m, m.VLANPresent) {
		p.errors.Add(1) // the copy goes with the checksum the kernel had
	}
	var vnet [vnetHdrLen]byte
	if m.GSOSize > 0 && !cut {
		superFrameVnet(frame, m.GSOSize, m.Summed == checksumPartial, &p.key, &p.off, &vnet)
	}
	if p.since++; p.since >= clockEvery {
		p.clock()
	}
	p.samples.Add(1)
	p.s.fanOut(frame, orig, &vnet, int64(m.Time)+p.wallOff, src, m.Dir == Out, true)
}

func (p *sampler) close() { p.rd.Close() }
