package span

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// Paths a source's packets take, as Status reports them.
const (
	PathEBPF     = "tc-ebpf"   // a TCX program filters and clones in the kernel
	PathAFPacket = "af_packet" // a packet socket with a classic filter, copies through gvsd
)

// tcProg is a session's loaded eBPF programs (one per attach direction:
// the records of sampled packets carry it) and their maps.
type tcProg struct {
	progs                 [2]*ebpf.Program // at ingress (In), at egress (Out)
	stats, dests, samples *ebpf.Map

	mu      sync.Mutex // serializes writes of dests
	ifindex [MaxDests]uint32
}

// prog is the program for attach point dir (In or Out).
func (t *tcProg) prog(dir Direction) *ebpf.Program {
	if dir == Out {
		return t.progs[1]
	}
	return t.progs[0]
}

// loadTC builds and loads the session's tc programs. An error means the
// session takes the AF_PACKET path; it says why.
func loadTC(c *Config) (*tcProg, error) {
	var insns [2]asm.Instructions
	for i, dir := range []Direction{In, Out} {
		var err error
		if insns[i], err = c.EBPFProgram(dir); err != nil {
			return nil, err
		}
	}
	return newTCProg(insns, c.ToUserSpace())
}

// newTCProg makes the maps (the perf event array if withSamples) and
// loads the programs.
func newTCProg(insns [2]asm.Instructions, withSamples bool) (*tcProg, error) {
	var err error
	t := &tcProg{}
	t.stats, err = ebpf.NewMap(&ebpf.MapSpec{Name: statsMap, Type: ebpf.PerCPUArray, KeySize: 4,
		ValueSize: 8 * statsWords, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("creating the counters map: %w", err)
	}
	t.dests, err = ebpf.NewMap(&ebpf.MapSpec{Name: destsMap, Type: ebpf.Array, KeySize: 4,
		ValueSize: 4 * MaxDests, MaxEntries: 1})
	if err != nil {
		t.close()
		return nil, fmt.Errorf("creating the destinations map: %w", err)
	}
	maps := map[string]*ebpf.Map{statsMap: t.stats, destsMap: t.dests}
	if withSamples {
		// One ring per possible CPU (MaxEntries 0 asks for that).
		t.samples, err = ebpf.NewMap(&ebpf.MapSpec{Name: samplesMap, Type: ebpf.PerfEventArray})
		if err != nil {
			t.close()
			return nil, fmt.Errorf("creating the perf event array: %w", err)
		}
		maps[samplesMap] = t.samples
	}
	for i := range insns {
		for name, m := range maps {
			// A program with no destination does not refer to destsMap.
			if err := insns[i].AssociateMap(name, m); err != nil && !errors.Is(err, asm.ErrUnreferencedSymbol) {
				t.close()
				return nil, err
			}
		}
		// The license string lets the kernel accept any helper; the
		// program is generated here at run time, from the session's rules.
		t.progs[i], err = ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{Name: "gvs_span", Type: ebpf.SchedCLS,
			Instructions: insns[i], License: "GPL"}, ebpf.ProgramOptions{})
		if err != nil {
			t.close()
			return nil, fmt.Errorf("loading the eBPF program: %w", err)
		}
	}
	return t, nil
}

func (t *tcProg) close() {
	for _, c := range []interface{ Close() error }{t.progs[0], t.progs[1], t.stats, t.dests, t.samples} {
		if c != nil && !isNilCloser(c) {
			c.Close()
		}
	}
}

func isNilCloser(c interface{ Close() error }) bool {
	switch v := c.(type) {
	case *ebpf.Program:
		return v == nil
	case *ebpf.Map:
		return v == nil
	}
	return false
}

// setDests looks up the dev: destinations' interfaces and tells the
// program, so that a destination that appears (or comes back with a new
// index) gets copies; 0 for one that is not there (copies counted lost).
func (t *tcProg) setDests(c *Config) {
	var idx [MaxDests]uint32
	for i, d := range c.Dests {
		if !c.KernelClones(d) {
			continue
		}
		if ifi, err := net.InterfaceByName(d.Target); err == nil {
			idx[i] = uint32(ifi.Index)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if idx == t.ifindex {
		return
	}
	var b [4 * MaxDests]byte
	for i, v := range idx {
		binary.NativeEndian.PutUint32(b[4*i:], v)
	}
	if err := t.dests.Put(uint32(0), b[:]); err == nil {
		t.ifindex = idx
	}
}

// counters sums the per-CPU counters.
func (t *tcProg) counters() [statsWords]uint64 {
	var sum [statsWords]uint64
	var per [][statsWords]uint64
	if err := t.stats.Lookup(uint32(0), &per); err != nil {
		return sum
	}
	for _, c := range per {
		for i, v := range c {
			sum[i] += v
		}
	}
	return sum
}

// tcSource keeps the program attached to one source: at ingress, egress
// or both as the direction says, again whenever the device is made anew.
// The links are not pinned, so the kernel detaches the program when
// gvsd's descriptors close, even if gvsd is killed.
type tcSource struct {
	s       *Session
	idx     int // the source's index in the session
	src     Source
	links   []link.Link
	ifindex int
	err     atomic.Pointer[string]
	// fallback is set when attaching failed for another reason than a
	// missing device: the source then takes the AF_PACKET path, reader.
	fallback atomic.Pointer[string]
	reader   *sourceReader
	// live is the attached device's index, for the sample reader to
	// tell which source a sample comes from; 0 while not attached.
	live atomic.Int32
}

func (a *tcSource) fellBack() bool { return a.fallback.Load() != nil }

func (a *tcSource) setErr(e string) {
	old := a.err.Load()
	if (old == nil && e == "") || (old != nil && *old == e) {
		return
	}
	if e == "" {
		a.err.Store(nil)
	} else {
		a.err.Store(&e)
	}
	a.s.changed()
}

// attach attaches the program to the source as it is now; false if it
// could not (the error says why).
func (a *tcSource) attach() error {
	ifi, err := net.InterfaceByName(a.src.Dev)
	if err != nil {
		return errNoDevice
	}
	for _, at := range []struct {
		dir Direction
		at  ebpf.AttachType
	}{{In, ebpf.AttachTCXIngress}, {Out, ebpf.AttachTCXEgress}} {
		if a.src.Dir != Both && a.src.Dir != at.dir {
			continue
		}
		// At the head: a span sees every packet, before a program that
		// forwards some elsewhere (the datapath's fast path, package offload).
		l, err := attachTCX(link.TCXOptions{Interface: ifi.Index, Program: a.s.tc.prog(at.dir), Attach: at.at, Anchor: link.Head()})
		if err != nil {
			a.detach()
			return fmt.Errorf("attaching at tc (TCX) to %s: %w", a.src.Dev, err)
		}
		a.links = append(a.links, l)
	}
	a.ifindex = ifi.Index
	a.live.Store(int32(ifi.Index))
	return nil
}

var errNoDevice = errors.New("no such interface")

// attachTCX and loadTCProg are link.AttachTCX and loadTC, replaced by
// tests that make the kernel's refusal happen.
var (
	attachTCX  = link.AttachTCX
	loadTCProg = loadTC
)

func (a *tcSource) detach() {
	for _, l := range a.links {
		l.Close()
	}
	a.links, a.ifindex = nil, 0
	a.live.Store(0)
}

// tryAttach attaches the program if it is not, and reports whether the
// source fell back to the AF_PACKET path.
func (a *tcSource) tryAttach() bool {
	if a.fellBack() {
		return true
	}
	if a.links != nil && !a.sameDevice() {
		a.detach() // deleted, or deleted and made again
	}
	if a.links != nil {
		return false
	}
	switch err := a.attach(); {
	case errors.Is(err, errNoDevice):
		a.setErr(fmt.Sprintf("source %s: no such interface (waiting for it)", a.src.Dev))
	case err != nil:
		why := err.Error()
		spanLog.Warn("span %s: source %s takes the AF_PACKET path: %s", a.s.cfg.Name, a.src.Dev, why)
		a.fallback.Store(&why)
		a.setErr("")
		a.s.changed()
		a.reader.tryOpen()
		return true
	default:
		a.setErr("")
	}
	return false
}

// run keeps the program attached until the session closes, or runs the
// source's AF_PACKET reader if attaching failed.
func (a *tcSource) run() {
	defer a.detach()
	for !a.s.closed.Load() {
		if a.tryAttach() {
			a.reader.run()
			return
		}
		a.s.tc.setDests(&a.s.cfg)
		a.s.sleep(retryInterval)
	}
}

func (a *tcSource) sameDevice() bool {
	ifi, err := net.InterfaceByName(a.src.Dev)
	return err == nil && ifi.Index == a.ifindex
}
