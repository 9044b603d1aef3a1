package netdev

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeStatfs makes statfs report a filesystem of total bytes with free
// bytes available, counting the looks.
func fakeStatfs(t *testing.T, total, free *int64, looks *int) {
	t.Helper()
	old := statfs
	statfs = func(fd int, st *unix.Statfs_t) error {
		*looks++
		st.Bsize = 4096
		st.Blocks = uint64(*total / 4096)
		st.Bavail = uint64(*free / 4096)
		return nil
	}
	t.Cleanup(func() { statfs = old })
}

func TestCaptureRoomKeepsReserve(t *testing.T) {
	total, free, looks := int64(100<<20), int64(50<<20), 0
	fakeStatfs(t, &total, &free, &looks)
	var r CaptureRoom
	size := int64(0)
	// 10 MiB in 1 KiB writes: one look per MiB.
	for i := 0; i < 10<<10; i++ {
		size += 1024
		if err := r.Allow(0, size, 1024, 0); err != nil {
			t.Fatalf("write %d refused with half the disk free: %v", i, err)
		}
	}
	if looks < 10 || looks > 11 {
		t.Errorf("%d looks at the filesystem for 10 MiB, want one per MiB", looks)
	}
	// 5 MiB free is the reserve itself: refused, and looked at again
	// at every try while it lasts.
	free = 5 << 20
	r.Reset()
	err := r.Allow(0, size+1024, 1024, 0)
	if err == nil || !strings.Contains(err.Error(), "leaves the last 5 %") {
		t.Fatalf("a write into the reserve: %v", err)
	}
	before := looks
	_ = r.Allow(0, size+1024, 1024, 0)
	if looks != before+1 {
		t.Errorf("a refused write did not look again")
	}
	// Unflushed bytes count against the room.
	free = 5<<20 + 8192
	if err := r.Allow(0, size+1024, 1024, 0); err != nil {
		t.Fatalf("8 KiB above the reserve refused 1 KiB: %v", err)
	}
	r.Reset()
	if err := r.Allow(0, size+1024, 1024, 8192); err == nil {
		t.Fatal("8 KiB above the reserve with 8 KiB buffered took 1 KiB more")
	}
	// A filesystem that reports no size at all is not refused.
	total, free = 0, 0
	r.Reset()
	if err := r.Allow(0, size+1024, 1024, 0); err != nil {
		t.Fatalf("a filesystem of unknown size: %v", err)
	}
}

func TestPcapPortStopsAtReserveAndSaysWhy(t *testing.T) {
	total, free, looks := int64(100<<20), int64(50<<20), 0
	fakeStatfs(t, &total, &free, &looks)
	dir := t.TempDir()
	dev, err := Open(Config{Name: "cap0", Type: "pcap", Options: map[string]string{"file": "room.pcapng"}, CaptureDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	f := dev.(Faulter)
	frame := make([]byte, 1000)
	if err := dev.WriteBatch([][]byte{frame}); err != nil || f.Fault() != "" {
		t.Fatalf("first write: %v, fault %q", err, f.Fault())
	}
	free = 4 << 20 // below the 5 MiB reserve
	for i := 0; i < 2000; i++ {
		_ = dev.WriteBatch([][]byte{frame})
	}
	if !strings.Contains(f.Fault(), "leaves the last 5 %") || !strings.Contains(f.Fault(), "room.pcapng") {
		t.Fatalf("Fault() with the disk in the reserve: %q", f.Fault())
	}
	if s := dev.Stats(); s.TxErrors == 0 {
		t.Errorf("frames refused for space not counted: %+v", s)
	}
	free = 50 << 20
	if err := dev.WriteBatch([][]byte{frame}); err != nil || f.Fault() != "" {
		t.Fatalf("write with space back: %v, fault %q", err, f.Fault())
	}
}

// Every frame of a batch that the reserve refuses is counted in
// tx_errors, as the documentation says, not only the first: the file
// stays open, and the rest of the batch is lost to the same failure
// (it was counted in tx_dropped, as frames that find no file open).
func TestPcapPortCountsABatchRefusedForRoomAsErrors(t *testing.T) {
	total, free, looks := int64(100<<20), int64(50<<20), 0
	fakeStatfs(t, &total, &free, &looks)
	dev, err := Open(Config{Name: "cap0", Type: "pcap", Options: map[string]string{"file": "room.pcapng"}, CaptureDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	free = 4 << 20 // below the 5 MiB reserve
	batch := make([][]byte, 8)
	for i := range batch {
		batch[i] = make([]byte, 1000)
	}
	_ = dev.WriteBatch(batch)
	if s := dev.Stats(); s.TxErrors != 8 || s.TxDropped != 0 || s.TxPackets != 0 {
		t.Fatalf("a batch of 8 refused for room: tx_errors %d, tx_dropped %d, tx_packets %d; want 8, 0, 0", s.TxErrors, s.TxDropped, s.TxPackets)
	}
}
