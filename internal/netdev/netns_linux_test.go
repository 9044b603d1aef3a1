//go:build linux

package netdev

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Helpers for tests on real kernel devices: they need root and iproute2,
// create network namespaces and veths named "gvnd<random>...", and remove
// them in t.Cleanup even when the test fails. Test traffic stays inside
// namespaces and links the test made.

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

// uniqueName returns "gvnd" plus 5 random hex digits plus suffix; it stays
// within the 15-byte interface name limit for suffixes up to 6 bytes.
func uniqueName(t testing.TB, suffix string) string {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "gvnd" + hex.EncodeToString(b[:])[:5] + suffix
}

// run runs a command with a deadline and fails the test on error.
func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := runErr(args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

func newNetns(t testing.TB) string {
	t.Helper()
	ns := uniqueName(t, "ns")
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { runErr("ip", "netns", "del", ns) })
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	return ns
}

// newSwitchNetns makes the namespace the ports under test are opened in,
// so that the test process's own namespace, and the machine's real
// network, never sees a test frame: every veth has both ends in test
// namespaces, and the switch namespace has no addresses or routes.
func newSwitchNetns(t testing.TB) string {
	return newNetns(t)
}

// newVeth makes a veth pair with its switch end in sw (up, IPv6 off so
// that namespace's stack stays quiet) and its peer in ns with addr (CIDR).
func newVeth(t testing.TB, sw, ns, addr string) (host, peer string) {
	t.Helper()
	host, peer = uniqueName(t, "h"), uniqueName(t, "p")
	run(t, "ip", "-n", sw, "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
	t.Cleanup(func() { runErr("ip", "-n", sw, "link", "del", host) })
	runErr("ip", "netns", "exec", sw, "sysctl", "-qw", "net.ipv6.conf."+host+".disable_ipv6=1")
	run(t, "ip", "-n", sw, "link", "set", host, "up")
	run(t, "ip", "-n", ns, "addr", "add", addr, "dev", peer)
	run(t, "ip", "-n", ns, "link", "set", peer, "up")
	return host, peer
}

// inNetns runs fn on an OS thread that has joined namespace ns. The thread
// stays locked, so the runtime discards it when fn returns and no other
// goroutine ever runs in ns by accident. Sockets and devices made by fn
// stay in ns.
func inNetns(t testing.TB, ns string, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose
		f, err := os.Open("/run/netns/" + ns)
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		if err == nil {
			fn()
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatalf("enter netns %s: %v", ns, err)
	}
}

// openIn opens a port from inside namespace ns and closes it at cleanup.
func openIn(t testing.TB, ns string, cfg Config) (Netdev, error) {
	t.Helper()
	var (
		dev Netdev
		err error
	)
	inNetns(t, ns, func() { dev, err = Open(cfg) })
	if err == nil {
		t.Cleanup(func() { dev.Close() })
	}
	return dev, err
}

// infoIn reads a port's Info from inside namespace ns.
func infoIn(t testing.TB, ns string, dev Netdev) (info Info) {
	t.Helper()
	inNetns(t, ns, func() { info = dev.Info() })
	return info
}

// interfaceIn looks a device up inside namespace ns.
func interfaceIn(t testing.TB, ns, name string) (ifi *net.Interface, err error) {
	t.Helper()
	inNetns(t, ns, func() { ifi, err = net.InterfaceByName(name) })
	return ifi, err
}

// fakeHost plays a machine with one IPv4 address on the far side of a
// port: it answers ARP requests and ICMP echo requests for its address,
// and passes a copy of every frame it reads to frames.
type fakeHost struct {
	dev    Netdev
	mac    net.HardwareAddr
	ip     net.IP
	frames chan []byte
	// ownFrames counts frames read back with our own source MAC: a port
	// must not receive what it sent.
	ownFrames atomic.Int64
	stopped   chan error
	writeMu   sync.Mutex // WriteBatch callers must be serialised
}

// send writes frames through the port alongside the host's own replies.
func (h *fakeHost) send(frames ...[]byte) error {
	h.writeMu.Lock()
	defer h.writeMu.Unlock()
	return h.dev.WriteBatch(frames)
}

func startFakeHost(t testing.TB, dev Netdev, mac net.HardwareAddr, ip net.IP) *fakeHost {
	h := &fakeHost{dev: dev, mac: mac, ip: ip.To4(), frames: make(chan []byte, 4096), stopped: make(chan error, 1)}
	go h.serve()
	t.Cleanup(func() {
		dev.Close()
		select {
		case <-h.stopped:
		case <-time.After(5 * time.Second):
			t.Error("port reader did not stop within 5s of Close")
		}
	})
	return h
}

func (h *fakeHost) serve() {
	bufs, sizes := makeBufs(16)
	for {
		n, err := h.dev.ReadBatch(bufs, sizes)
		if err != nil {
			h.stopped <- err
			return
		}
		for i := range n {
			frame := bufs[i][:sizes[i]]
			if len(frame) >= 14 && bytes.Equal(frame[6:12], h.mac) {
				h.ownFrames.Add(1)
			}
			if reply := h.answer(frame); reply != nil {
				h.send(reply)
			}
			select {
			case h.frames <- append([]byte(nil), frame...):
			default:
			}
		}
	}
}

func (h *fakeHost) answer(frame []byte) []byte {
	if len(frame) < 42 {
		return nil
	}
	switch binary.BigEndian.Uint16(frame[12:]) {
	case 0x0806:
		arp := frame[14:]
		if binary.BigEndian.Uint16(arp[6:]) == 1 && net.IP(arp[24:28]).Equal(h.ip) {
			return arpReply(h.mac, h.ip, net.HardwareAddr(arp[8:14]), net.IP(arp[14:18]))
		}
	case etherTypeIPv4:
		ip := frame[14:]
		ihl := int(ip[0]&0xf) * 4
		if ip[9] == 1 && net.IP(ip[16:20]).Equal(h.ip) && len(ip) > ihl+8 && ip[ihl] == 8 {
			return echoReply(frame, h.mac)
		}
	}
	return nil
}

func arpPacket(op uint16, sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP) []byte {
	dst := tha
	if op == 1 {
		dst = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	}
	b := ethernet(dst, sha, 0x0806)
	b = append(b, 0, 1, 8, 0, 6, 4, 0, byte(op))
	b = append(append(b, sha...), spa.To4()...)
	b = append(append(b, tha...), tpa.To4()...)
	return b
}

func arpReply(sha net.HardwareAddr, spa net.IP, tha net.HardwareAddr, tpa net.IP) []byte {
	return arpPacket(2, sha, spa, tha, tpa)
}

// echoReply turns an ICMP echo request frame into its reply from mac.
func echoReply(req []byte, mac net.HardwareAddr) []byte {
	r := append([]byte(nil), req...)
	copy(r[0:6], req[6:12])
	copy(r[6:12], mac)
	ip := r[14:]
	ihl := int(ip[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(ip[2:]))
	copy(ip[12:16], req[14+16:14+20])
	copy(ip[16:20], req[14+12:14+16])
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^uint16(naiveSum(ip[:ihl])))
	icmp := ip[ihl:total]
	icmp[0], icmp[2], icmp[3] = 0, 0, 0
	binary.BigEndian.PutUint16(icmp[2:], ^uint16(naiveSum(icmp)))
	return r[:14+total]
}

// waitFrame returns the first frame for which match is true, or fails.
func (h *fakeHost) waitFrame(t testing.TB, what string, timeout time.Duration, match func([]byte) bool) []byte {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f := <-h.frames:
			if match(f) {
				return f
			}
		case <-deadline:
			t.Fatalf("no %s within %v", what, timeout)
			return nil
		}
	}
}

// pingFrom pings dst from ns and fails unless every echo is answered.
func pingFrom(t testing.TB, ns, dst string, count int) {
	t.Helper()
	out, err := runErr("ip", "netns", "exec", ns, "ping", "-n", "-c", itoa(count), "-i", "0.2", "-W", "2", dst)
	if err != nil || !strings.Contains(out, itoa(count)+" received") {
		t.Fatalf("ping %s from %s: %v\n%s", dst, ns, err, out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// readUntilClosed checks that Close makes a blocked ReadBatch return
// ErrClosed promptly.
func readUntilClosed(t testing.TB, dev Netdev) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		bufs, sizes := makeBufs(8)
		for {
			if _, err := dev.ReadBatch(bufs, sizes); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := dev.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("ReadBatch after Close = %v, want ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("ReadBatch still blocked 3s after Close")
	}
}
