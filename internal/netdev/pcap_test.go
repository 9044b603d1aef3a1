package netdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/sys/unix"
)

// openTestPcap opens a pcap port whose capture directory is the one of
// its (absolute) options:file.
func openTestPcap(t *testing.T, opts map[string]string) *pcapPort {
	t.Helper()
	dev, err := Open(Config{Name: "cap0", Type: "pcap", Options: opts, CaptureDir: filepath.Dir(opts["file"])})
	if err != nil {
		t.Fatalf("open pcap port: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev.(*pcapPort)
}

// testFrame is an Ethernet frame of size bytes whose payload starts with
// seq, so a reader can tell frames apart.
func testFrame(seq, size int) []byte {
	f := make([]byte, size)
	copy(f, []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	binary.BigEndian.PutUint32(f[14:], uint32(seq))
	for i := 18; i < size; i++ {
		f[i] = byte(i + seq)
	}
	return f
}

type readPacket struct {
	data []byte
	ci   gopacket.CaptureInfo
}

// readPcapng reads every packet of a pcapng file and checks the headers.
func readPcapng(t *testing.T, r io.Reader) []readPacket {
	t.Helper()
	ng, err := pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("pcapng reader: %v", err)
	}
	checkNgHeader(t, ng)
	var out []readPacket
	for {
		data, ci, err := ng.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("reading packet %d: %v", len(out), err)
		}
		out = append(out, readPacket{data, ci})
	}
}

func checkNgHeader(t *testing.T, ng *pcapgo.NgReader) {
	t.Helper()
	if ng.LinkType() != layers.LinkTypeEthernet {
		t.Errorf("link type %v, want Ethernet", ng.LinkType())
	}
	ifc, err := ng.Interface(0)
	if err != nil {
		t.Fatalf("interface 0: %v", err)
	}
	if ifc.TimestampResolution != 9 {
		t.Errorf("if_tsresol %v, want 9 (nanoseconds)", ifc.TimestampResolution)
	}
	if ifc.SnapLength != 0 && ifc.SnapLength != pcapSnaplen {
		t.Errorf("snaplen %d, want 0 or %d", ifc.SnapLength, pcapSnaplen)
	}
	if ifc.Name != "cap0" {
		t.Errorf("if_name %q, want cap0", ifc.Name)
	}
}

func TestPcapMissingOptions(t *testing.T) {
	cases := []struct {
		opts map[string]string
		want string
	}{
		{nil, "options:file is required"},
		{map[string]string{"max-size": "100"}, "options:file is required"},
		{map[string]string{"file": "x.pcapng", "max-size": "-1"}, "max-size"},
		{map[string]string{"file": "x.pcapng", "max-size": "lots"}, "max-size"},
		{map[string]string{"file": "x.pcapng", "max-size": "1099511627777"}, "1 to 1099511627776 (1 TiB)"},
		{map[string]string{"file": "x.pcapng", "max-files": "-2"}, "max-files"},
		{map[string]string{"file": "x.pcapng", "max-files": "101"}, "from 0 to 100"},
		{map[string]string{"file": "x.pcapng", "max-files": "2147483648"}, "from 0 to 100"},
		{map[string]string{"file": "nonexistent-dir-gvs/x.pcapng"}, "no such file or directory"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		_, err := Open(Config{Name: "cap0", Type: "pcap", Options: c.opts, CaptureDir: dir})
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "cap0") {
			t.Errorf("options %v: error %v, want one naming cap0 and saying %q", c.opts, err, c.want)
		}
	}
}

func TestPcapWritesPcapng(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.pcapng")
	p := openTestPcap(t, map[string]string{"file": path})
	if !p.Info().LinkUp || p.Info().Ifindex != 0 {
		t.Errorf("Info %+v, want link up and ifindex 0", p.Info())
	}
	// 65000: a TCP super-frame (a span's copy) is recorded whole, as
	// tcpdump records one.
	sizes := []int{60, 61, 62, 63, 64, 1514, 9000, 65000, 14}
	origs := []int{60, 200, 0, 63, 1514, 1514, 9000, 0, 65535}
	var frames [][]byte
	for i, s := range sizes {
		frames = append(frames, testFrame(i, max(s, 18)))
	}
	frames[len(frames)-1] = frames[len(frames)-1][:14]
	before := time.Now()
	if err := p.WriteBatchOrig(frames[:4], origs[:4]); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteBatch(frames[4:6]); err != nil {
		t.Fatal(err)
	}
	if err := p.WriteBatchOrig(frames[6:], origs[6:7]); err != nil { // short origLens
		t.Fatal(err)
	}
	after := time.Now()

	// The file is readable before Close: each batch is flushed.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := readPcapng(t, f)
	wantOrig := []int{60, 200, 62, 63, 64, 1514, 9000, 65000, 14}
	if len(got) != len(frames) {
		t.Fatalf("read %d packets, want %d", len(got), len(frames))
	}
	for i, pk := range got {
		if !bytes.Equal(pk.data, frames[i]) {
			t.Errorf("packet %d: data differs (got %d bytes, want %d)", i, len(pk.data), len(frames[i]))
		}
		if pk.ci.CaptureLength != len(frames[i]) || pk.ci.Length != wantOrig[i] {
			t.Errorf("packet %d: caplen %d len %d, want %d and %d", i, pk.ci.CaptureLength, pk.ci.Length, len(frames[i]), wantOrig[i])
		}
		if pk.ci.Timestamp.Before(before) || pk.ci.Timestamp.After(after) {
			t.Errorf("packet %d: timestamp %v outside [%v, %v]", i, pk.ci.Timestamp, before, after)
		}
	}
	var bytesSent uint64
	for _, fr := range frames {
		bytesSent += uint64(len(fr))
	}
	st := p.Stats()
	if st.TxPackets != uint64(len(frames)) || st.TxBytes != bytesSent || st.TxErrors != 0 || st.TxDropped != 0 {
		t.Errorf("stats %+v, want %d packets, %d bytes, no errors", st, len(frames), bytesSent)
	}
	checkWithTshark(t, path, sizes, wantOrig)
}

// checkWithTshark has Wireshark's reader confirm the lengths, when it is
// installed.
func checkWithTshark(t *testing.T, path string, capLens, origLens []int) {
	t.Helper()
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Log("tshark not installed: skipping the Wireshark cross-check")
		return
	}
	out, err := exec.Command("tshark", "-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len").Output()
	if err != nil {
		t.Fatalf("tshark -r %s: %v", path, err)
	}
	var want strings.Builder
	for i := range capLens {
		fmt.Fprintf(&want, "%d\t%d\n", origLens[i], capLens[i])
	}
	if string(out) != want.String() {
		t.Errorf("tshark frame.len/frame.cap_len:\n%s\nwant:\n%s", out, want.String())
	}
}

func TestPcapReadBatchBlocksUntilClose(t *testing.T) {
	p := openTestPcap(t, map[string]string{"file": filepath.Join(t.TempDir(), "x.pcapng")})
	done := make(chan error, 1)
	go func() {
		_, err := p.ReadBatch([][]byte{make([]byte, MaxFrame)}, []int{0})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("ReadBatch returned %v before Close", err)
	case <-time.After(100 * time.Millisecond):
	}
	p.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("ReadBatch after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
	if p.Info().LinkUp {
		t.Error("link still up after Close")
	}
	if err := p.WriteBatch([][]byte{testFrame(0, 60)}); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteBatch after Close: %v, want ErrClosed", err)
	}
}

func TestPcapRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rot.pcapng")
	const maxSize = 1500
	p := openTestPcap(t, map[string]string{"file": path, "max-size": fmt.Sprint(maxSize), "max-files": "2"})
	const total = 40
	for i := range total {
		if err := p.WriteBatch([][]byte{testFrame(i, 200)}); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	if _, err := os.Stat(path + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists (err %v): max-files=2 keeps only .1 and .2", path, err)
	}
	// Oldest first: .2, .1, then the current file; sequence numbers must
	// run on without a gap and end with the last frame written.
	var seqs []int
	for _, name := range []string{path + ".2", path + ".1", path} {
		st, err := os.Stat(name)
		if err != nil {
			t.Fatalf("rotated file: %v", err)
		}
		if st.Size() > maxSize {
			t.Errorf("%s is %d bytes, over max-size %d", name, st.Size(), maxSize)
		}
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		pkts := readPcapng(t, f) // each file starts with its own SHB and IDB
		f.Close()
		if len(pkts) == 0 {
			t.Errorf("%s holds no packet", name)
		}
		for _, pk := range pkts {
			seqs = append(seqs, int(binary.BigEndian.Uint32(pk.data[14:])))
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("sequence across rotated files has a gap: %v", seqs)
		}
	}
	if seqs[len(seqs)-1] != total-1 {
		t.Errorf("last frame recorded is %d, want %d", seqs[len(seqs)-1], total-1)
	}
	if st := p.Stats(); st.TxPackets != total {
		t.Errorf("TxPackets %d, want %d (rotation drops nothing)", st.TxPackets, total)
	}
}

// TestPcapRotationOversizedFrame checks that a frame bigger than max-size
// still gets recorded, alone in its file, instead of rotating forever.
func TestPcapRotationOversizedFrame(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.pcapng")
	p := openTestPcap(t, map[string]string{"file": path, "max-size": "300", "max-files": "0"})
	for i := range 3 {
		if err := p.WriteBatch([][]byte{testFrame(i, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path + ".1"); !os.IsNotExist(err) {
		t.Errorf("max-files=0 kept %s.1", path)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if pkts := readPcapng(t, f); len(pkts) != 1 || binary.BigEndian.Uint32(pkts[0].data[14:]) != 2 {
		t.Errorf("current file holds %d packets, want only the last one", len(pkts))
	}
}

func TestPcapWriteAllocs(t *testing.T) {
	p := openTestPcap(t, map[string]string{"file": filepath.Join(t.TempDir(), "a.pcapng"), "max-size": "1000000"})
	frames := [][]byte{testFrame(1, 60), testFrame(2, 1514), testFrame(3, 101)}
	origs := []int{60, 4000, 101}
	allocs := testing.AllocsPerRun(200, func() {
		if err := p.WriteBatchOrig(frames, origs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("WriteBatchOrig allocates %.1f times per batch, want 0", allocs)
	}
}

func makeFIFO(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cap.fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	return path
}

// fifoReader opens the FIFO for reading in the background (the open
// blocks until the port opens its end) and sends what it reads.
func fifoReader(t *testing.T, path string) (packets chan readPacket, stop func()) {
	packets = make(chan readPacket, 64)
	opened := make(chan *os.File, 1)
	go func() {
		defer close(packets)
		f, err := os.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			t.Errorf("open FIFO for reading: %v", err)
			close(opened)
			return
		}
		opened <- f
		ng, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return // closed before the header came
		}
		for {
			data, ci, err := ng.ReadPacketData()
			if err != nil {
				return
			}
			packets <- readPacket{append([]byte(nil), data...), ci}
		}
	}()
	stop = func() {
		select {
		case f, ok := <-opened:
			if ok {
				f.Close()
			}
		case <-time.After(5 * time.Second):
			t.Error("FIFO reader never opened")
		}
		for range packets {
		}
	}
	return packets, stop
}

// writeUntilRead writes frame seq every 20 ms until the reader returns it.
func writeUntilRead(t *testing.T, p *pcapPort, packets chan readPacket, seq int) readPacket {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := p.WriteBatch([][]byte{testFrame(seq, 100)}); err != nil {
			t.Fatal(err)
		}
		select {
		case pk, ok := <-packets:
			if !ok {
				t.Fatal("FIFO reader ended")
			}
			return pk
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("frame %d never reached the FIFO reader", seq)
	return readPacket{}
}

func TestPcapFIFO(t *testing.T) {
	path := makeFIFO(t)
	p := openTestPcap(t, map[string]string{"file": path}) // no reader: must not block
	if p.Info().LinkUp {
		t.Error("link up with no reader on the FIFO")
	}
	if err := p.WriteBatch([][]byte{testFrame(0, 100), testFrame(1, 100)}); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.TxDropped != 2 || st.TxPackets != 0 {
		t.Errorf("with no reader: stats %+v, want 2 dropped", st)
	}

	packets, stop := fifoReader(t, path)
	pk := writeUntilRead(t, p, packets, 7)
	if got := binary.BigEndian.Uint32(pk.data[14:]); got != 7 || pk.ci.Length != 100 {
		t.Errorf("reader got frame %d of length %d, want frame 7 of 100", got, pk.ci.Length)
	}
	if !p.Info().LinkUp {
		t.Error("link down while a reader holds the FIFO")
	}

	// The reader leaves: writes fail with EPIPE, are counted and dropped.
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().TxErrors == 0 && time.Now().Before(deadline) {
		if err := p.WriteBatch([][]byte{testFrame(8, 100)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p.Stats().TxErrors == 0 || p.Info().LinkUp {
		t.Fatalf("after the reader left: stats %+v, link up %v; want errors and link down", p.Stats(), p.Info().LinkUp)
	}

	// A new reader gets a fresh stream, header included.
	packets, stop = fifoReader(t, path)
	defer stop()
	pk = writeUntilRead(t, p, packets, 9)
	if got := binary.BigEndian.Uint32(pk.data[14:]); got != 9 {
		t.Errorf("second reader got frame %d, want 9", got)
	}
}

// TestPcapCloseStalledReader checks that Close returns even when a write
// is stuck on a FIFO whose reader stopped reading.
func TestPcapCloseStalledReader(t *testing.T) {
	path := makeFIFO(t)
	rd, err := os.OpenFile(path, os.O_RDWR, 0) // a reader that never reads
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	dev, err := Open(Config{Name: "cap0", Type: "pcap", Options: map[string]string{"file": path}, CaptureDir: filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	p := dev.(*pcapPort)
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		big := [][]byte{testFrame(1, 9000), testFrame(2, 9000), testFrame(3, 9000), testFrame(4, 9000)}
		for p.WriteBatch(big) == nil {
		}
	}()
	time.Sleep(300 * time.Millisecond) // the pipe (64 KiB) is full by now
	start := time.Now()
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(pcapCloseWait + 3*time.Second):
		t.Fatal("Close blocked behind a stalled FIFO write")
	}
	t.Logf("Close took %v", time.Since(start).Round(time.Millisecond))
	// Close shut the file under the writer, whose write then fails: the
	// thread that wrote (a port's) goes on while the reader still sleeps.
	select {
	case <-writing:
	case <-time.After(5 * time.Second):
		t.Fatal("writer still blocked after Close, with the reader still stalled")
	}
}
