//go:build linux

package netdev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/testutil"
)

// openTapIn creates an internal port from inside namespace sw.
func openTapIn(t *testing.T, sw, name string) Netdev {
	t.Helper()
	dev, err := openIn(t, sw, Config{Name: name, Type: "internal"})
	if err != nil {
		t.Fatalf("open internal port: %v", err)
	}
	return dev
}

// The port is created administratively down, like an OVS internal port,
// and comes up when the operator says so.
func TestInternalCreatedDownThenUp(t *testing.T) {
	needRoot(t)
	sw, name := newSwitchNetns(t), uniqueName(t, "t")
	dev := openTapIn(t, sw, name)
	ifi, err := interfaceIn(t, sw, name)
	if err != nil {
		t.Fatalf("device not created: %v", err)
	}
	info := infoIn(t, sw, dev)
	if info.AdminUp || info.LinkUp || info.Stale {
		t.Errorf("new port info %+v: want admin and link down, not stale", info)
	}
	if info.Ifindex != ifi.Index || info.MAC.String() != ifi.HardwareAddr.String() || info.MTU != 1500 {
		t.Errorf("info %+v does not match the kernel's %+v", info, ifi)
	}
	run(t, "ip", "-n", sw, "link", "set", name, "up")
	if info := infoIn(t, sw, dev); !info.AdminUp || !info.LinkUp {
		t.Errorf("after ip link set up: %+v, want admin and link up", info)
	}
	if dev.Type() != "internal" || dev.Name() != name {
		t.Errorf("Type/Name = %q/%q", dev.Type(), dev.Name())
	}
}

func TestInternalMTURequest(t *testing.T) {
	needRoot(t)
	sw := newSwitchNetns(t)
	dev, err := openIn(t, sw, Config{Name: uniqueName(t, "t"), Type: "internal", MTU: 9000})
	if err != nil {
		t.Fatal(err)
	}
	if got := infoIn(t, sw, dev).MTU; got != 9000 {
		t.Errorf("MTU = %d, want 9000", got)
	}
}

// Frames flow both ways through the TAP after it has moved into another
// namespace: that namespace's kernel pings a fake host living behind the
// port (which answers ARP and echo requests through WriteBatch), and
// answers an ARP request we write.
func TestInternalWorksAfterNetnsMove(t *testing.T) {
	needRoot(t)
	sw, ns, name := newSwitchNetns(t), newNetns(t), uniqueName(t, "t")
	dev := openTapIn(t, sw, name)
	before := infoIn(t, sw, dev)

	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns)
	run(t, "ip", "-n", ns, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	if _, err := interfaceIn(t, sw, name); err == nil {
		t.Fatal("device still in the switch namespace after the move")
	}
	after := infoIn(t, sw, dev)
	if !after.Stale || after.MAC.String() != before.MAC.String() || after.Ifindex != before.Ifindex {
		t.Errorf("Info after move = %+v, want the last known state (%+v) marked Stale", after, before)
	}

	hostIP := net.IPv4(198, 51, 100, 2)
	h := startFakeHost(t, dev, macB, hostIP)
	pingFrom(t, ns, "198.51.100.2", 3)

	// Our own ARP request for the namespace's address gets the kernel's reply.
	h.send(arpPacket(1, macB, hostIP, make(net.HardwareAddr, 6), net.IPv4(198, 51, 100, 1)))
	reply := h.waitFrame(t, "ARP reply from the namespace", 3*time.Second, func(f []byte) bool {
		return binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2 &&
			bytes.Equal(f[0:6], macB)
	})
	if !bytes.Equal(reply[6:12], before.MAC) {
		t.Errorf("ARP reply from %x, want the TAP's MAC %s", reply[6:12], before.MAC)
	}
	if n := h.ownFrames.Load(); n != 0 {
		t.Errorf("read back %d frames we sent", n)
	}
	st := dev.Stats()
	if st.RxPackets < 4 || st.TxPackets < 4 || st.TxDropped != 0 || st.RxErrors != 0 {
		t.Errorf("stats %+v: want >= 4 frames each way, no drops", st)
	}

	// Closing deletes the device, in the namespace it now lives in.
	if err := dev.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if out, err := runErr("ip", "-n", ns, "link", "show", name); err == nil {
		t.Errorf("device still exists in %s after Close:\n%s", ns, out)
	}
}

func TestInternalCloseDeletesDevice(t *testing.T) {
	needRoot(t)
	sw, name := newSwitchNetns(t), uniqueName(t, "t")
	dev := openTapIn(t, sw, name)
	readUntilClosed(t, dev)
	if _, err := interfaceIn(t, sw, name); err == nil {
		t.Error("device still exists after Close")
	}
	if !infoIn(t, sw, dev).Stale {
		t.Error("Info of a closed port not marked Stale")
	}
	if err := dev.WriteBatch([][]byte{make([]byte, 60)}); !errors.Is(err, ErrClosed) {
		t.Errorf("WriteBatch after Close = %v, want ErrClosed", err)
	}
}

func TestInternalNameTaken(t *testing.T) {
	needRoot(t)
	sw, ns := newSwitchNetns(t), newNetns(t)
	host, _ := newVeth(t, sw, ns, "198.51.100.1/24")
	_, err := openIn(t, sw, Config{Name: host, Type: "internal"})
	want := "could not open network device " + host + " (File exists)"
	if err == nil || err.Error() != want || !errors.Is(err, unix.EEXIST) {
		t.Fatalf("Open over an existing veth = %v, want %q", err, want)
	}
	if _, err := openIn(t, sw, Config{Name: strings.Repeat("x", 16), Type: "internal"}); err == nil {
		t.Error("16-byte name accepted")
	}
}

// A frame written while the device is administratively down is dropped
// and counted, not an error.
func TestInternalWriteWhileDownIsDropped(t *testing.T) {
	needRoot(t)
	dev := openTapIn(t, newSwitchNetns(t), uniqueName(t, "t"))
	frame := arpPacket(1, macB, net.IPv4(198, 51, 100, 2), make(net.HardwareAddr, 6), net.IPv4(198, 51, 100, 1))
	if err := dev.WriteBatch([][]byte{frame, frame}); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	if st := dev.Stats(); st.TxDropped != 2 || st.TxPackets != 0 {
		t.Errorf("stats %+v, want 2 dropped", st)
	}
}

// With offloads off, the kernel hands the TAP complete checksums.
func TestInternalReceivesCompleteChecksums(t *testing.T) {
	needRoot(t)
	sw, ns, name := newSwitchNetns(t), newNetns(t), uniqueName(t, "t")
	dev := openTapIn(t, sw, name)
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns)
	run(t, "ip", "-n", ns, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", ns, "link", "set", name, "up")
	h := startFakeHost(t, dev, macB, net.IPv4(198, 51, 100, 2))
	nc := exec.Command("ip", "netns", "exec", ns, "nc", "-w", "2", "198.51.100.2", "5001")
	if err := nc.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { nc.Process.Kill(); nc.Wait() }()
	syn := h.waitFrame(t, "TCP SYN", 5*time.Second, func(f []byte) bool {
		return binary.BigEndian.Uint16(f[12:]) == etherTypeIPv4 && f[14+9] == ipProtoTCP
	})
	if ok, checked := l4ChecksumOK(syn); !ok || !checked {
		t.Errorf("TCP SYN read with a bad checksum: % x", syn[14+20:14+40])
	}
}

// A bulk TCP transfer from a namespace behind an internal port to one
// behind a system port, through the test's two-port forwarder.
func TestInternalTCPTransferToSystemPort(t *testing.T) {
	needRoot(t)
	sw, ns1, ns2, name := newSwitchNetns(t), newNetns(t), newNetns(t), uniqueName(t, "t")
	tap := openTapIn(t, sw, name)
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns1)
	run(t, "ip", "-n", ns1, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", ns1, "link", "set", name, "up")
	host, _ := newVeth(t, sw, ns2, "198.51.100.2/24")
	sys, err := openIn(t, sw, Config{Name: host})
	if err != nil {
		t.Fatal(err)
	}
	done1, done2 := make(chan struct{}), make(chan struct{})
	go forward(tap, sys, done1)
	go forward(sys, tap, done2)
	t.Cleanup(func() { tap.Close(); sys.Close(); <-done1; <-done2 })
	for _, dir := range [][2]string{{ns1, ns2}, {ns2, ns1}} {
		dst := "198.51.100.2"
		if dir[1] == ns1 {
			dst = "198.51.100.1"
		}
		elapsed := transferTCP(t, dir[0], dir[1], dst, 8<<20)
		t.Logf("8 MiB to %s in %v", dst, elapsed)
	}
	if st := tap.Stats(); st.RxDropped+st.RxErrors+st.TxDropped+st.TxErrors != 0 {
		t.Errorf("internal port stats %+v: drops or errors", st)
	}
}

// When the namespace holding the device is deleted, the kernel destroys
// the device: ReadBatch reports that once, then waits for Close instead
// of failing in a loop.
func TestInternalDeviceDestroyedWithNamespace(t *testing.T) {
	needRoot(t)
	sw, name := newSwitchNetns(t), uniqueName(t, "t")
	dev := openTapIn(t, sw, name)
	ns := uniqueName(t, "ns")
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { runErr("ip", "netns", "del", ns) })
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns)
	errc := make(chan error, 2)
	go func() {
		bufs, sizes := makeBufs(4)
		for range 2 {
			_, err := dev.ReadBatch(bufs, sizes)
			errc <- err
		}
	}()
	run(t, "ip", "netns", "del", ns)
	select {
	case err := <-errc:
		if err == nil || errors.Is(err, ErrClosed) {
			t.Fatalf("first ReadBatch after the device died = %v, want an error", err)
		}
		t.Logf("ReadBatch: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("ReadBatch did not notice the device was destroyed")
	}
	select {
	case err := <-errc:
		t.Fatalf("second ReadBatch returned %v before Close", err)
	case <-time.After(200 * time.Millisecond):
	}
	dev.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("ReadBatch after Close = %v, want ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("ReadBatch still blocked after Close")
	}
	if !infoIn(t, sw, dev).Stale {
		t.Error("Info not Stale")
	}
}

// With offloads on, TCP super-frames cross an internal port whole in both
// directions: the host's stack hands the TAP super-frames with partial
// checksums (read whole, with their virtio header), and super-frames
// written to the TAP behind a virtio header are taken whole by the host's
// stack, whose TCP verifies every byte (the transfer's SHA-256 too).
func TestInternalSuperFramesBothWays(t *testing.T) {
	needRoot(t)
	sw, ns1, ns2, name := newSwitchNetns(t), newNetns(t), newNetns(t), uniqueName(t, "t")
	tap := openTapIn(t, sw, name).(*tapPort)
	if !tap.tso {
		t.Fatal("the TAP was opened without TSO")
	}
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns1)
	run(t, "ip", "-n", ns1, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", ns1, "link", "set", name, "up")
	host, _ := newVeth(t, sw, ns2, "198.51.100.2/24")
	dev, err := openIn(t, sw, Config{Name: host})
	if err != nil {
		t.Fatal(err)
	}
	sys := dev.(*afpacketPort)
	var fromTap, toTap atomic.Int64
	done1, done2 := make(chan struct{}), make(chan struct{})
	go forwardCounting(tap, sys, false, &fromTap, done1)
	go forwardCounting(sys, tap, false, &toTap, done2)
	t.Cleanup(func() { tap.Close(); sys.Close(); <-done1; <-done2 })

	transferTCP(t, ns1, ns2, "198.51.100.2", 16<<20)
	transferTCP(t, ns2, ns1, "198.51.100.1", 16<<20)
	t.Logf("super-frames read whole from the TAP %d, written whole to it %d; tap %+v", fromTap.Load(), toTap.Load(), tap.Stats())
	if fromTap.Load() == 0 {
		t.Error("no super-frame was read whole from the TAP")
	}
	if toTap.Load() == 0 {
		t.Error("no super-frame was written whole to the TAP")
	}
	if st := tap.Stats(); st.RxDropped+st.RxErrors+st.TxDropped+st.TxErrors != 0 {
		t.Errorf("internal port stats %+v: drops or errors", st)
	}
}

// A super-frame read with ReadBatch (a caller that takes only complete
// frames) is cut on receive, its segments continuing into later calls
// when the batch is full.
func TestInternalSuperFramesCutOnReadBatch(t *testing.T) {
	needRoot(t)
	sw, ns1, ns2, name := newSwitchNetns(t), newNetns(t), newNetns(t), uniqueName(t, "t")
	tap := openTapIn(t, sw, name).(*tapPort)
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns1)
	run(t, "ip", "-n", ns1, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", ns1, "link", "set", name, "up")
	host, _ := newVeth(t, sw, ns2, "198.51.100.2/24")
	sys, err := openIn(t, sw, Config{Name: host})
	if err != nil {
		t.Fatal(err)
	}
	done1, done2 := make(chan struct{}), make(chan struct{})
	go forward(tap, sys, done1)
	go forward(sys, tap, done2)
	t.Cleanup(func() { tap.Close(); sys.Close(); <-done1; <-done2 })
	transferTCP(t, ns1, ns2, "198.51.100.2", 8<<20)
	if st := tap.Stats(); st.RxDropped+st.RxErrors != 0 {
		t.Errorf("internal port stats %+v: receive drops or errors", st)
	}
}

// The virtio header both ways, without a kernel: what a super-frame's
// Offload encodes is what the reader decodes.
func TestVnetHeaderRoundTrip(t *testing.T) {
	super, off := testSuperFrame(t, 3000, 1400)
	var b [vnetHdrLen]byte
	off.ecn = true
	off.encode(b[:])
	h := decodeVnetHdr(b[:])
	if h != off.h || b[1]&vnetGSOECN == 0 {
		t.Fatalf("decoded %+v (ECN %v), encoded %+v", h, b[1]&vnetGSOECN != 0, off.h)
	}
	if h.gsoType != vnetGSOTCPv4 || h.gsoSize != 1400 || h.csumStart != 34 || h.csumOffset != 16 || !h.needsCsum() {
		t.Fatalf("header %+v does not describe the IPv4 TCP super-frame", h)
	}
	if !passThrough(super, h, false, false) || passThrough(super, h, true, false) {
		t.Fatal("passThrough: untagged TCP must pass, tagged must not")
	}
}

// With USO (kernels from 6.2), a UDP GSO super-frame (UDP_SEGMENT) is
// read whole from the TAP and written whole to a system port, whose
// kernel cuts it: the receiver gets every datagram, checksums verified.
func TestInternalUDPSuperFramesWhole(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("needs python3")
	}
	sw, ns1, ns2, name := newSwitchNetns(t), newNetns(t), newNetns(t), uniqueName(t, "t")
	tap := openTapIn(t, sw, name).(*tapPort)
	if !tap.uso {
		t.Skip("this kernel has no USO on TAP devices (before 6.2)")
	}
	run(t, "ip", "-n", sw, "link", "set", "dev", name, "netns", ns1)
	run(t, "ip", "-n", ns1, "addr", "add", "198.51.100.1/24", "dev", name)
	run(t, "ip", "-n", ns1, "link", "set", name, "up")
	host, _ := newVeth(t, sw, ns2, "198.51.100.2/24")
	dev, err := openIn(t, sw, Config{Name: host})
	if err != nil {
		t.Fatal(err)
	}
	sys := dev.(*afpacketPort)
	var fromTap, toTap atomic.Int64
	done1, done2 := make(chan struct{}), make(chan struct{})
	go forwardCounting(tap, sys, false, &fromTap, done1)
	go forwardCounting(sys, tap, false, &toTap, done2)
	t.Cleanup(func() { tap.Close(); sys.Close(); <-done1; <-done2 })
	pingFrom(t, ns1, "198.51.100.2", 1)

	const segs, size = 20, 1000
	recv := exec.Command("ip", "netns", "exec", ns2, "timeout", "10", "python3", "-c", `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.51.100.2", 5005))
print("ready", flush=True)
n = 0
while n < `+itoa(segs*3)+`:
    d = s.recv(65536)
    if len(d) != `+itoa(size)+` or d != bytes([n % 251]) * `+itoa(size)+`:
        break
    n += 1
print(n, flush=True)
`)
	out := &testutil.SyncBuffer{}
	recv.Stdout = out
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	defer recv.Process.Kill()
	for i := 0; i < 100 && !strings.Contains(out.String(), "ready"); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	// Three super-frames of 20 datagrams, each datagram's bytes its number.
	run(t, "ip", "netns", "exec", ns1, "python3", "-c", `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, 103, `+itoa(size)+`)  # UDP_SEGMENT
for k in range(3):
    s.sendto(b"".join(bytes([(k * `+itoa(segs)+` + i) % 251]) * `+itoa(size)+` for i in range(`+itoa(segs)+`)), ("198.51.100.2", 5005))
`)
	recv.Wait()
	if got := strings.Fields(out.String()); len(got) < 2 || got[1] != itoa(segs*3) {
		t.Fatalf("the receiver got %q datagrams intact, want %d", got, segs*3)
	}
	if fromTap.Load() == 0 {
		t.Error("no UDP super-frame was read whole from the TAP")
	}
}
