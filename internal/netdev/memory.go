package netdev

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The "memory" port type lives entirely inside the process, for tests: a
// test injects frames that the switch then receives with ReadBatch, and
// collects the frames the switch sent with WriteBatch. Each direction is a
// bounded queue of preallocated MaxFrame buffers, so ReadBatch and
// WriteBatch only copy; a full queue drops (counted), as a device would.

func init() { Register("memory", openMemory) }

// DefaultMemoryDepth is the queue length, per direction, of a memory port
// opened without options:depth.
const DefaultMemoryDepth = 64

// MaxMemoryDepth bounds options:depth: each unit preallocates two MaxFrame
// buffers (about 18 KiB), so this is about 19 MiB per port.
const MaxMemoryDepth = 1024

// ErrQueueFull is returned by Inject when the switch has not read the
// frames injected before.
var ErrQueueFull = errors.New("netdev: memory port queue full")

// Memory is an in-process port. Open it with netdev.Open (type "memory",
// options:depth optional) and find it with LookupMemory, or make a
// standalone one with NewMemory.
type Memory struct {
	name   string
	rx     chan []byte // injected, waiting for ReadBatch
	rxFree chan []byte
	tx     chan []byte // written by the switch, waiting for the test
	txFree chan []byte
	done   chan struct{}
	closed atomic.Bool
	linkUp atomic.Bool
	mac    net.HardwareAddr
	stats  counters
	// unregister removes a port opened through the registry from it.
	unregister func()
}

var (
	memoryMu    sync.Mutex
	memoryPorts = map[string]*Memory{}
)

// NewMemory makes a memory port with room for depth frames each way. It is
// not registered: LookupMemory does not find it. Unlike options:depth,
// depth is not bounded here: it comes from the program, not a database.
func NewMemory(name string, depth int) *Memory {
	depth = max(depth, 1)
	m := &Memory{
		name:   name,
		rx:     make(chan []byte, depth),
		rxFree: make(chan []byte, depth),
		tx:     make(chan []byte, depth),
		txFree: make(chan []byte, depth),
		done:   make(chan struct{}),
		mac:    memoryMAC(name),
	}
	for range depth {
		m.rxFree <- make([]byte, MaxFrame)
		m.txFree <- make([]byte, MaxFrame)
	}
	m.linkUp.Store(true)
	return m
}

func openMemory(cfg Config) (Netdev, error) {
	depth, err := MemoryDepth(cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("memory port %s: %w", cfg.Name, err)
	}
	memoryMu.Lock()
	defer memoryMu.Unlock()
	if _, taken := memoryPorts[cfg.Name]; taken {
		return nil, fmt.Errorf("memory port %s: already open", cfg.Name)
	}
	if memoryDepthInUse+depth > memoryDepthTotal {
		return nil, fmt.Errorf("memory port %s: depth %d: the memory ports' depths add up to at most %d (%d in use)",
			cfg.Name, depth, memoryDepthTotal, memoryDepthInUse)
	}
	m := NewMemory(cfg.Name, depth)
	memoryPorts[cfg.Name] = m
	memoryDepthInUse += depth
	m.unregister = func() {
		memoryMu.Lock()
		defer memoryMu.Unlock()
		if memoryPorts[cfg.Name] == m {
			delete(memoryPorts, cfg.Name)
			memoryDepthInUse -= depth
		}
	}
	return m, nil
}

// MaxMemoryDepthTotal bounds the depths of the memory ports opened by
// name (a database's) together, about 1 GiB of buffers: options:depth
// bounds one port, not how many a database asks for.
const MaxMemoryDepthTotal = 56 * MaxMemoryDepth

// memoryDepthTotal is MaxMemoryDepthTotal, a variable for tests.
var memoryDepthTotal = MaxMemoryDepthTotal

// memoryDepthInUse is the sum of the open registered ports' depths,
// under memoryMu.
var memoryDepthInUse int

// MemoryDepth reads a memory port's options:depth, DefaultMemoryDepth
// when absent; it is an error outside 1 .. MaxMemoryDepth.
func MemoryDepth(options map[string]string) (int, error) {
	s, ok := options["depth"]
	if !ok {
		return DefaultMemoryDepth, nil
	}
	d, err := strconv.Atoi(s)
	if err != nil || d < 1 || d > MaxMemoryDepth {
		return 0, fmt.Errorf("options:depth %q is not an integer from 1 to %d", s, MaxMemoryDepth)
	}
	return d, nil
}

// LookupMemory finds an open memory port opened through netdev.Open.
func LookupMemory(name string) (*Memory, bool) {
	memoryMu.Lock()
	defer memoryMu.Unlock()
	m, ok := memoryPorts[name]
	return m, ok
}

// memoryMAC derives a stable, locally administered unicast MAC from the
// port name, so tests can predict it.
func memoryMAC(name string) net.HardwareAddr {
	h := fnv.New64a()
	h.Write([]byte(name))
	sum := h.Sum64()
	mac := net.HardwareAddr{0x02, 0, 0, 0, 0, 0}
	for i := 1; i < 6; i++ {
		mac[i] = byte(sum >> (8 * i))
	}
	return mac
}

// Inject queues a copy of frame for the switch to receive. It never
// blocks: ErrQueueFull means the switch is behind.
func (m *Memory) Inject(frame []byte) error {
	if m.closed.Load() {
		return ErrClosed
	}
	if len(frame) > MaxFrame {
		return fmt.Errorf("memory port %s: frame of %d bytes exceeds %d", m.name, len(frame), MaxFrame)
	}
	select {
	case b := <-m.rxFree:
		m.rx <- b[:copy(b[:cap(b)], frame)]
		return nil
	default:
		return ErrQueueFull
	}
}

// Sent returns copies of the frames the switch has written so far and
// forgets them.
func (m *Memory) Sent() [][]byte {
	var frames [][]byte
	for {
		select {
		case b := <-m.tx:
			frames = append(frames, m.recycle(b))
		default:
			return frames
		}
	}
}

// Next waits up to timeout for the next frame the switch writes and
// returns a copy of it.
func (m *Memory) Next(timeout time.Duration) ([]byte, bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case b := <-m.tx:
		return m.recycle(b), true
	case <-t.C:
		return nil, false
	}
}

// recycle copies a sent frame out and returns its buffer to the pool.
func (m *Memory) recycle(b []byte) []byte {
	frame := append([]byte(nil), b...)
	m.txFree <- b[:cap(b)]
	return frame
}

// SetLinkUp sets the link state Info reports, to simulate a carrier loss.
func (m *Memory) SetLinkUp(up bool) { m.linkUp.Store(up) }

func (m *Memory) Name() string { return m.name }
func (m *Memory) Type() string { return "memory" }
func (m *Memory) Stats() Stats { return m.stats.snapshot() }

func (m *Memory) Info() Info {
	return Info{
		MAC:     append(net.HardwareAddr(nil), m.mac...),
		MTU:     1500,
		LinkUp:  m.linkUp.Load(),
		AdminUp: true,
	}
}

// ReadBatch waits for the first injected frame, then takes whatever else
// is already queued, up to the batch size.
func (m *Memory) ReadBatch(bufs [][]byte, sizes []int) (int, error) {
	if m.closed.Load() {
		return 0, ErrClosed
	}
	n, err := batchSize(m.name, bufs, sizes)
	if err != nil || n == 0 {
		return 0, err
	}
	var b []byte
	select {
	case b = <-m.rx:
	case <-m.done:
		return 0, ErrClosed
	}
	var count batchCount
	got := 0
	for b != nil {
		sizes[got] = copy(bufs[got][:len(b)], b)
		count.packets++
		count.bytes += uint64(len(b))
		m.rxFree <- b[:cap(b)]
		got++
		b = nil
		if got < n {
			select {
			case b = <-m.rx:
			default:
			}
		}
	}
	m.stats.addRx(count)
	return got, nil
}

// WriteBatch queues copies of the frames for the test; frames that find
// the queue full are dropped.
func (m *Memory) WriteBatch(frames [][]byte) error {
	_, err := m.write(frames)
	return err
}

// Transmit is WriteBatch reporting what became of the batch.
func (m *Memory) Transmit(b *Batch) (TxResult, error) { return m.write(b.Frames) }

func (m *Memory) write(frames [][]byte) (TxResult, error) {
	if m.closed.Load() {
		return TxResult{Dropped: len(frames)}, ErrClosed
	}
	var count batchCount
	for _, f := range frames {
		if len(f) == 0 || len(f) > MaxFrame {
			count.errors++
			continue
		}
		select {
		case b := <-m.txFree:
			m.tx <- b[:copy(b[:cap(b)], f)]
			count.packets++
			count.bytes += uint64(len(f))
		default:
			count.dropped++
		}
	}
	m.stats.addTx(count)
	return count.result(), nil
}

// Close wakes a blocked ReadBatch and, for a registered port, frees its
// name. Frames still queued are discarded.
func (m *Memory) Close() error {
	if !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(m.done)
	if m.unregister != nil {
		m.unregister()
	}
	return nil
}
