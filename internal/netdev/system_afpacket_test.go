//go:build linux

package netdev

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// systemSetup is a switch namespace with one veth into a host namespace
// whose end carries 198.51.100.1/24, and a system port on the switch end.
type systemSetup struct {
	sw, ns, host, peer string
	port               *afpacketPort
}

func newSystemSetup(t testing.TB) *systemSetup {
	t.Helper()
	needRoot(t)
	s := &systemSetup{sw: newSwitchNetns(t), ns: newNetns(t)}
	s.host, s.peer = newVeth(t, s.sw, s.ns, "198.51.100.1/24")
	dev, err := openIn(t, s.sw, Config{Name: s.host})
	if err != nil {
		t.Fatalf("open system port: %v", err)
	}
	s.port = dev.(*afpacketPort)
	return s
}

func TestSystemMissingDevice(t *testing.T) {
	needRoot(t)
	sw := newSwitchNetns(t)
	name := uniqueName(t, "none")
	_, err := openIn(t, sw, Config{Name: name, Type: "system"})
	want := "could not open network device " + name + " (No such device)"
	if err == nil || err.Error() != want || !errors.Is(err, unix.ENODEV) {
		t.Fatalf("Open(missing) = %v, want %q", err, want)
	}
}

// A ping from the namespace crosses the veth to a fake host behind the
// port: ARP and echo requests are read, replies written, and the kernel
// must accept them for ping to succeed.
func TestSystemPingThroughVeth(t *testing.T) {
	s := newSystemSetup(t)
	ifi, err := interfaceIn(t, s.sw, s.host)
	if err != nil {
		t.Fatal(err)
	}
	info := infoIn(t, s.sw, s.port)
	if info.Ifindex != ifi.Index || info.MAC.String() != ifi.HardwareAddr.String() || !info.AdminUp || !info.LinkUp || info.Stale {
		t.Errorf("Info = %+v, kernel says %+v", info, ifi)
	}
	h := startFakeHost(t, s.port, macB, net.IPv4(198, 51, 100, 2))
	pingFrom(t, s.ns, "198.51.100.2", 3)
	if n := h.ownFrames.Load(); n != 0 {
		t.Errorf("read back %d of our own transmissions despite PACKET_IGNORE_OUTGOING", n)
	}
	st := s.port.Stats()
	if st.RxPackets < 4 || st.TxPackets < 4 || st.TxDropped+st.TxErrors+st.RxErrors != 0 {
		t.Errorf("stats %+v: want >= 4 frames each way, no errors", st)
	}
}

// Taking the interface down and up again interrupts the socket (the
// kernel reports ENETDOWN once) but the port carries on afterwards.
func TestSystemSurvivesLinkDownUp(t *testing.T) {
	s := newSystemSetup(t)
	startFakeHost(t, s.port, macB, net.IPv4(198, 51, 100, 2))
	pingFrom(t, s.ns, "198.51.100.2", 1)
	run(t, "ip", "-n", s.sw, "link", "set", s.host, "down")
	time.Sleep(100 * time.Millisecond)
	if info := infoIn(t, s.sw, s.port); info.AdminUp || info.LinkUp {
		t.Errorf("Info while down = %+v", info)
	}
	run(t, "ip", "-n", s.sw, "link", "set", s.host, "up")
	pingFrom(t, s.ns, "198.51.100.2", 2)
}

// A link that went down and up while nobody read the port leaves an
// ENETDOWN on the socket (the receive ring's reader makes no call that
// would clear it): the first frame sent after the link is back must go
// out all the same, not be refused with that stale error.
func TestSystemSendAfterLinkDownUpUnread(t *testing.T) {
	s := newSystemSetup(t)
	run(t, "ip", "-n", s.sw, "link", "set", s.host, "down")
	run(t, "ip", "-n", s.sw, "link", "set", s.host, "up")
	deadline := time.Now().Add(5 * time.Second)
	for !infoIn(t, s.sw, s.port).LinkUp && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
	if err := s.port.WriteBatch([][]byte{frame}); err != nil {
		t.Fatal(err)
	}
	if st := s.port.Stats(); st.TxPackets != 1 || st.TxDropped != 0 || st.TxErrors != 0 {
		t.Errorf("after the link came back: %+v, want the frame sent", st)
	}
}

// Once the device is gone, Info describes it as last seen, marked Stale.
func TestSystemInfoAfterDeviceDeleted(t *testing.T) {
	s := newSystemSetup(t)
	before := infoIn(t, s.sw, s.port)
	run(t, "ip", "-n", s.sw, "link", "del", s.host)
	after := infoIn(t, s.sw, s.port)
	if !after.Stale || after.Ifindex != before.Ifindex || after.MAC.String() != before.MAC.String() {
		t.Errorf("Info after delete = %+v, want %+v marked Stale", after, before)
	}
	readUntilClosed(t, s.port)
}

// The port is promiscuous: it receives frames for MACs other than the
// veth's own, and stops being promiscuous when closed.
func TestSystemPromiscuous(t *testing.T) {
	s := newSystemSetup(t)
	h := startFakeHost(t, s.port, macB, net.IPv4(198, 51, 100, 2))
	// A static neighbour entry sends the echo request to a MAC that is
	// neither the veth's nor broadcast.
	run(t, "ip", "-n", s.ns, "neigh", "replace", "198.51.100.9", "lladdr", "02:00:00:00:00:99", "dev", s.peer)
	runErr("ip", "netns", "exec", s.ns, "ping", "-c", "1", "-W", "1", "198.51.100.9")
	h.waitFrame(t, "frame to a foreign unicast MAC", 3*time.Second, func(f []byte) bool {
		return net.HardwareAddr(f[:6]).String() == "02:00:00:00:00:99"
	})
	if p := promiscuity(t, s.sw, s.host); p != "1" {
		t.Errorf("promiscuity %s while open, want 1", p)
	}
	s.port.Close()
	if p := promiscuity(t, s.sw, s.host); p != "0" {
		t.Errorf("promiscuity %s after Close, want 0", p)
	}
}

func promiscuity(t *testing.T, ns, dev string) string {
	f := strings.Fields(run(t, "ip", "-n", ns, "-d", "link", "show", dev))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "promiscuity" {
			return f[i+1]
		}
	}
	t.Fatalf("no promiscuity in ip -d link output")
	return ""
}

// With the veth's checksum offload left on, a TCP SYN from the namespace
// reaches the socket with only the pseudo-header sum in place; the port
// must hand it on with a valid checksum.
func TestSystemFinishesOffloadedChecksum(t *testing.T) {
	s := newSystemSetup(t)
	h := startFakeHost(t, s.port, macB, net.IPv4(198, 51, 100, 2))
	nc := exec.Command("ip", "netns", "exec", s.ns, "nc", "-w", "2", "198.51.100.2", "5001")
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
	if s.port.rd.checksumsFinished.Load() == 0 {
		t.Error("no frame arrived with a partial checksum: offload is off, so this test proves nothing")
	}
}

// The kernel strips VLAN tags from received frames into metadata; the
// port must put them back, outer 802.1ad tag included. The tagged frames
// are sent from the namespace through a system port opened there (this
// kernel may lack the 8021q module).
func TestSystemRestoresVLANTags(t *testing.T) {
	s := newSystemSetup(t)
	h := startFakeHost(t, s.port, macB, net.IPv4(198, 51, 100, 2))
	sender, err := openIn(t, s.ns, Config{Name: s.peer})
	if err != nil {
		t.Fatal(err)
	}
	arp := arpPacket(1, macA, net.IPv4(203, 0, 113, 1), make(net.HardwareAddr, 6), net.IPv4(203, 0, 113, 2))
	single := append(append(append([]byte{}, arp[:12]...), 0x81, 0x00, 0x20, 0x07), arp[12:]...)
	double := append(append(append([]byte{}, arp[:12]...), 0x88, 0xa8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x07), arp[12:]...)
	if err := sender.WriteBatch([][]byte{single, double}); err != nil {
		t.Fatal(err)
	}
	for _, want := range [][]byte{single, double} {
		got := h.waitFrame(t, "tagged frame", 3*time.Second, func(f []byte) bool {
			return bytes.Equal(f[6:12], macA)
		})
		if !bytes.Equal(got, want) {
			t.Errorf("received\n% x\nwant\n% x", got, want)
		}
	}
}

func TestSystemCloseUnblocksRead(t *testing.T) {
	readUntilClosed(t, newSystemSetup(t).port)
}

// forward copies every frame read from one port to the other until the
// source is closed: the smallest possible switch.
func forward(from, to Netdev, done chan<- struct{}) {
	defer close(done)
	bufs, sizes := makeBufs(32)
	frames := make([][]byte, 32)
	for {
		n, err := from.ReadBatch(bufs, sizes)
		if err != nil {
			return
		}
		for i := range n {
			frames[i] = bufs[i][:sizes[i]]
		}
		to.WriteBatch(frames[:n])
	}
}

// newTwoPorts makes namespaces ns1 (198.51.100.1) and ns2 (198.51.100.2),
// each joined by a veth to a switch namespace where a system port is
// opened on its end.
func newTwoPorts(t *testing.T) (ns1, ns2 string, p1, p2 *afpacketPort) {
	needRoot(t)
	sw := newSwitchNetns(t)
	ns1, ns2 = newNetns(t), newNetns(t)
	h1, _ := newVeth(t, sw, ns1, "198.51.100.1/24")
	h2, _ := newVeth(t, sw, ns2, "198.51.100.2/24")
	d1, err1 := openIn(t, sw, Config{Name: h1})
	d2, err2 := openIn(t, sw, Config{Name: h2})
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	p1, p2 = d1.(*afpacketPort), d2.(*afpacketPort)
	return ns1, ns2, p1, p2
}

// A bulk TCP transfer between two namespaces through two system ports
// joined by the test: TSO on the sending veth produces super-frames that
// the port must segment, with checksums the receiver accepts, or the
// transfer stalls or arrives corrupted.
func TestSystemTCPTransferThroughTwoPorts(t *testing.T) {
	ns1, ns2, p1, p2 := newTwoPorts(t)
	done1, done2 := make(chan struct{}), make(chan struct{})
	go forward(p1, p2, done1)
	go forward(p2, p1, done2)
	t.Cleanup(func() { p1.Close(); p2.Close(); <-done1; <-done2 })

	elapsed := transferTCP(t, ns1, ns2, "198.51.100.2", 16<<20)
	t.Logf("16 MiB in %v; p1 %+v; super-frames segmented %d, checksums finished %d",
		elapsed, p1.Stats(), p1.rd.superFrames.Load(), p1.rd.checksumsFinished.Load())
	if p1.rd.superFrames.Load() == 0 {
		t.Error("no GSO super-frame was received: segmentation went untested")
	}
}

// transferTCP sends size random bytes with nc from namespace from to a
// listener at dstIP in namespace to, checks they arrive intact, and
// returns how long it took.
func transferTCP(t *testing.T, from, to, dstIP string, size int) time.Duration {
	t.Helper()
	if _, err := exec.LookPath("nc"); err != nil {
		t.Skip("needs nc")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}
	outFile, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	server := exec.Command("ip", "netns", "exec", to, "timeout", "60", "nc", "-l", "5001")
	server.Stdout = outFile
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	waitListening(t, to, "5001")

	start := time.Now()
	if msg, err := runErr("sh", "-c", "ip netns exec "+from+" timeout 30 nc -N "+dstIP+" 5001 < "+in); err != nil {
		t.Fatalf("client: %v\n%s", err, msg)
	}
	waitExit(t, server, 30*time.Second)
	elapsed := time.Since(start)
	got, _ := os.ReadFile(out)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("received %d bytes that differ from the %d sent", len(got), len(data))
	}
	return elapsed
}

// waitListening waits until a TCP listener on port exists in ns.
func waitListening(t *testing.T, ns, port string) {
	t.Helper()
	for range 50 {
		if out, _ := runErr("ip", "netns", "exec", ns, "ss", "-Hltn", "sport", "= :"+port); strings.TrimSpace(out) != "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on port %s in %s", port, ns)
}

func waitExit(t *testing.T, cmd *exec.Cmd, timeout time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v did not finish within %v", cmd.Args, timeout)
	}
}

// forwardOffload is forward for ports read with ReadBatchOffload, written
// through a Sender: super-frames go to the other port whole or, with cut,
// to a view of it that cannot take them, so the Sender cuts them (what
// happens for any such output of the datapath).
func forwardOffload(from OffloadPort, to Netdev, cut bool, done chan<- struct{}) {
	forwardCounting(from, to, cut, nil, done)
}

// forwardCounting is forwardOffload counting the super-frames read whole.
func forwardCounting(from OffloadPort, to Netdev, cut bool, supers *atomic.Int64, done chan<- struct{}) {
	defer close(done)
	bufs, sizes, offs := make([][]byte, 32), make([]int, 32), make([]Offload, 32)
	for i := range bufs {
		bufs[i] = make([]byte, MaxSuperFrame)
	}
	var dev Netdev = to
	if cut {
		dev = plainPort{to}
	}
	var s Sender
	b := NewBatch(32)
	for {
		n, err := from.ReadBatchOffload(bufs, sizes, offs)
		if err != nil {
			return
		}
		b.Reset()
		for i := range n {
			b.Add(bufs[i][:sizes[i]], offs[i], 0, 0)
			if supers != nil && offs[i].IsSuper() {
				supers.Add(1)
			}
		}
		s.Send(dev, b)
	}
}

// plainPort hides everything of a port but the Netdev interface, as a
// driver written against it alone.
type plainPort struct{ Netdev }

// With ReadBatchOffload, TSO super-frames come whole and go out whole
// through Transmit (the kernel segments them), or are cut by a Sender
// for a port that cannot take them; either way the transfer arrives intact.
func TestSystemSuperFramesPassedWhole(t *testing.T) {
	for _, cut := range []bool{false, true} {
		t.Run(map[bool]string{false: "whole", true: "segmented"}[cut], func(t *testing.T) {
			ns1, ns2, p1, p2 := newTwoPorts(t)
			done1, done2 := make(chan struct{}), make(chan struct{})
			go forwardOffload(p1, p2, cut, done1)
			go forwardOffload(p2, p1, cut, done2)
			t.Cleanup(func() { p1.Close(); p2.Close(); <-done1; <-done2 })

			elapsed := transferTCP(t, ns1, ns2, "198.51.100.2", 16<<20)
			t.Logf("16 MiB in %v; p1 %+v; p2 %+v; super-frames whole %d, segmented on receive %d",
				elapsed, p1.Stats(), p2.Stats(), p1.rd.superFramesWhole.Load(), p1.rd.superFrames.Load())
			if p1.rd.superFramesWhole.Load() == 0 {
				t.Error("no super-frame was handed over whole")
			}
		})
	}
}
