package span

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// pcapOut writes copies to a pcapng file through netdev's pcap port,
// which confines the file to gvsd's capture directory and rotates it.
type pcapOut struct {
	dev    netdev.Netdev
	w      netdev.OrigLenWriter
	frames [][]byte
	origs  []int
}

func openPcap(s *Session, d Dest) (output, error) {
	if s.env.CaptureDir == "" {
		return nil, fmt.Errorf("gvsd has no capture directory for pcap files")
	}
	dev, err := netdev.Open(netdev.Config{Name: "span-" + s.cfg.Name, Type: "pcap",
		Options: map[string]string{"file": d.Target}, CaptureDir: s.env.CaptureDir})
	if err != nil {
		return nil, err
	}
	w, ok := dev.(netdev.OrigLenWriter)
	if !ok {
		dev.Close()
		return nil, fmt.Errorf("the pcap port type cannot record original lengths")
	}
	return &pcapOut{dev: dev, w: w, frames: make([][]byte, 0, batchMax), origs: make([]int, 0, batchMax)}, nil
}

func (o *pcapOut) write(items []*item) (int, error) {
	o.frames, o.origs = o.frames[:0], o.origs[:0]
	for _, it := range items {
		finishVnetChecksum(it.buf, &it.vnet)
		o.frames = append(o.frames, it.buf)
		o.origs = append(o.origs, it.orig)
	}
	before := o.dev.Stats()
	if err := o.w.WriteBatchOrig(o.frames, o.origs); err != nil {
		return len(items), nil
	}
	after := o.dev.Stats()
	return int(min(after.TxDropped-before.TxDropped+after.TxErrors-before.TxErrors, uint64(len(items)))), nil
}

func (o *pcapOut) close() { o.dev.Close() }

// interrupt closes the port under a write that a FIFO's stalled reader
// holds (the port's Close is safe during a write, and the sender's own
// close after it does nothing).
func (o *pcapOut) interrupt() { o.dev.Close() }

// fault is why the pcap file's writes fail, if they do.
func (o *pcapOut) fault() string {
	if f, ok := o.dev.(netdev.Faulter); ok {
		return f.Fault()
	}
	return ""
}

// jsonOut writes one JSON object a line for each copy: its metadata,
// never its payload. A batch's records go in one write, so that a
// failed write can be taken back whole (cut).
type jsonOut struct {
	f     *os.File
	w     io.Writer // f; a test puts a failing writer here
	fifo  bool
	batch []byte // the records of the batch being written
	key   packet.Key
	off   packet.Offsets
	s     *Session

	// A regular file's growth is checked against its filesystem's free
	// space (netdev.CaptureRoom); why is the last write's failure. size
	// is the length of its whole records; torn says that a failed write
	// may have left part of a batch past it.
	fd   int
	size int64
	torn bool
	room netdev.CaptureRoom
	why  string
}

// jsonWriteWait bounds how long a batch of records waits for a FIFO's
// reader: a reader that stopped reading (a suspended pipeline) must not
// hold the sender, and with it Session.Close, for good.
const jsonWriteWait = 2 * time.Second

func openJSON(s *Session, d Dest) (output, error) {
	f, err := netdev.OpenCaptureFile("span "+s.cfg.Name, s.env.CaptureDir, d.Target)
	if err != nil {
		return nil, err
	}
	// A FIFO comes under Go's poller (OpenCaptureFile leaves it
	// non-blocking), so that a write deadline can cut a stalled write.
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	fifo := st.Mode()&os.ModeNamedPipe != 0
	o := &jsonOut{f: f, w: f, fifo: fifo, batch: make([]byte, 0, 64<<10), s: s, fd: -1}
	if !fifo {
		// Fd puts the descriptor in blocking mode, which changes nothing
		// for a regular file (never under the poller).
		o.fd = int(f.Fd())
	}
	return o, nil
}

// write writes a batch's records; a FIFO whose reader takes none of
// them for jsonWriteWait is given up (closed, reopened later), its
// copies counted lost. A regular file takes no deadline (ErrNoDeadline).
func (o *jsonOut) write(items []*item) (int, error) {
	if o.torn {
		if err := o.cut(); err != nil {
			return len(items), o.writeError(err)
		}
	}
	o.batch = o.batch[:0]
	for _, it := range items {
		o.batch = o.record(o.batch, it)
	}
	if !o.fifo {
		n := int64(len(o.batch))
		if err := o.room.Allow(o.fd, o.size+n, n, 0); err != nil {
			return len(items), o.writeError(err)
		}
	}
	_ = o.f.SetWriteDeadline(time.Now().Add(jsonWriteWait))
	if _, err := o.w.Write(o.batch); err != nil {
		o.torn = true
		return len(items), o.writeError(err)
	}
	o.size += int64(len(o.batch))
	o.why = ""
	return 0, nil
}

// cut takes a regular file back to its whole records, removing what a
// failed write (a short write on a full disk) left of its batch: a
// record written after a part of one would be glued to it, and a reader
// could parse neither.
func (o *jsonOut) cut() error {
	if err := unix.Ftruncate(o.fd, o.size); err != nil {
		return fmt.Errorf("cannot remove the part of a record a failed write left: %w", err)
	}
	if _, err := unix.Seek(o.fd, o.size, io.SeekStart); err != nil {
		return fmt.Errorf("cannot go back to the file's last whole record: %w", err)
	}
	o.torn = false
	return nil
}

// writeError is what a failed write means to the sender. A FIFO whose
// reader stalled or left is gone: the sender closes it and opens it
// again later, for the next reader. A regular file (a full disk) keeps
// its place, cut back to its whole records; the batch is lost.
func (o *jsonOut) writeError(err error) error {
	if !o.fifo {
		o.why = "writing to the file failed, records are lost: " + err.Error()
		if o.torn {
			if cerr := o.cut(); cerr != nil {
				o.why += "; " + cerr.Error()
			}
		}
		return nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Errorf("the FIFO's reader took no record for %v", jsonWriteWait)
	}
	return err
}

// fault is why the file's writes fail, if they do.
func (o *jsonOut) fault() string { return o.why }

func (o *jsonOut) close() { o.f.Close() }

// record appends the JSON record of one copy to b.
func (o *jsonOut) record(b []byte, it *item) []byte {
	_ = packet.Parse(it.buf, 0, &o.key, &o.off)
	k := &o.key
	b = append(b, `{"time":"`...)
	b = time.Unix(0, it.ts).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","interface":`...)
	b = strconv.AppendQuote(b, o.s.cfg.Sources[it.src].Dev)
	b = append(b, `,"direction":"`...)
	if it.outgoing {
		b = append(b, "out"...)
	} else {
		b = append(b, "in"...)
	}
	b = append(b, `","eth_src":"`...)
	b = appendMAC(b, k.DlSrc)
	b = append(b, `","eth_dst":"`...)
	b = appendMAC(b, k.DlDst)
	b = append(b, `","eth_type":`...)
	b = strconv.AppendUint(b, uint64(k.DlType), 10)
	if k.VLANTCI != 0 {
		b = append(b, `,"vlan":`...)
		b = strconv.AppendUint(b, uint64(k.VLANTCI&0xfff), 10)
		b = append(b, `,"vlan_pcp":`...)
		b = strconv.AppendUint(b, uint64(k.VLANTCI>>13), 10)
	}
	switch k.DlType {
	case packet.EtherTypeIPv4:
		b = appendIPs(b, netip.AddrFrom4(k.NwSrc), netip.AddrFrom4(k.NwDst))
		b = o.appendL4(b)
	case packet.EtherTypeIPv6:
		b = appendIPs(b, netip.AddrFrom16(k.IPv6Src), netip.AddrFrom16(k.IPv6Dst))
		b = o.appendL4(b)
	case packet.EtherTypeARP:
		b = appendIPs(b, netip.AddrFrom4(k.ArpSpa), netip.AddrFrom4(k.ArpTpa))
		b = append(b, `,"arp_op":`...)
		b = strconv.AppendUint(b, uint64(k.ArpOp), 10)
	}
	b = append(b, `,"len":`...)
	b = strconv.AppendInt(b, int64(it.orig), 10)
	return append(b, "}\n"...)
}

func (o *jsonOut) appendL4(b []byte) []byte {
	k := &o.key
	b = append(b, `,"proto":`...)
	b = strconv.AppendUint(b, uint64(k.NwProto), 10)
	switch k.NwProto {
	case packet.ProtoTCP, packet.ProtoUDP, packet.ProtoSCTP:
		if o.off.L4 == 0 {
			return b
		}
		b = append(b, `,"src_port":`...)
		b = strconv.AppendUint(b, uint64(k.TpSrc), 10)
		b = append(b, `,"dst_port":`...)
		b = strconv.AppendUint(b, uint64(k.TpDst), 10)
		if k.NwProto == packet.ProtoTCP {
			b = append(b, `,"tcp_flags":"`...)
			b = appendTCPFlags(b, k.TCPFlags)
			b = append(b, '"')
		}
	case packet.ProtoICMPv4, packet.ProtoICMPv6:
		if o.off.L4 == 0 {
			return b
		}
		b = append(b, `,"icmp_type":`...)
		b = strconv.AppendUint(b, uint64(k.TpSrc), 10)
		b = append(b, `,"icmp_code":`...)
		b = strconv.AppendUint(b, uint64(k.TpDst), 10)
	}
	return b
}

func appendIPs(b []byte, src, dst netip.Addr) []byte {
	b = append(b, `,"ip_src":"`...)
	b = src.AppendTo(b)
	b = append(b, `","ip_dst":"`...)
	b = dst.AppendTo(b)
	return append(b, '"')
}

func appendMAC(b []byte, m [6]byte) []byte {
	const hex = "0123456789abcdef"
	for i, c := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hex[c>>4], hex[c&0xf])
	}
	return b
}

// tcpFlagNames are TCP's flag bits from the lowest, as tcpdump names them.
var tcpFlagNames = []string{"fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr", "ns"}

func appendTCPFlags(b []byte, flags uint16) []byte {
	first := true
	for i, n := range tcpFlagNames {
		if flags&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, '|')
		}
		first = false
		b = append(b, n...)
	}
	return b
}
