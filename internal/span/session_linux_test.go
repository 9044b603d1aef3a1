package span

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// inOwnNetns runs the calling test again in a network namespace of its
// own (a new process under ip netns exec, so that every thread of the
// session is in it) and reports false in the calling process, which
// then returns; true means this process is the one inside.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("GVS_SPAN_TEST_NETNS") == t.Name() {
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ns := fmt.Sprintf("gvspan%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run", "^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "GVS_SPAN_TEST_NETNS="+t.Name())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("in namespace %s: %v\n%s", ns, err, out)
	}
	return false
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// A session copies what a veth receives to a GRE destination: the copy
// arrives at the remote (here the loopback) inside GRE with the key,
// byte for byte, and the destination's counters say so.
func TestSessionToTunnel(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	sh(t, "ip", "link", "set", "lo", "up")
	sh(t, "ip", "link", "add", "src0", "type", "veth", "peer", "name", "src1")
	sh(t, "ip", "link", "set", "src0", "up")
	sh(t, "ip", "link", "set", "src1", "up")
	gre, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_GRE)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(gre)
	_ = unix.SetsockoptTimeval(gre, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 2})
	src, _ := ParseSource("src0:in")
	dst, _ := ParseDest("gre:127.0.0.1,key=5")
	s, err := Start(Config{Name: "t", Sources: []Source{src}, Dests: []Dest{dst},
		Rules: mustRules(t, "accept udp,tp_dst=9999")}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st := s.Status(); st.Error != "" {
		t.Fatalf("session error: %s", st.Error)
	}
	// The program filters at tc and hands the packet to gvsd, which
	// encapsulates it.
	if p := s.Path(); len(p) != 1 || p[0].Path != PathEBPF || s.smp == nil {
		t.Fatalf("path %+v, sampler %v: want %s with a sampler", p, s.smp != nil, PathEBPF)
	}
	frame := ipFrame4UDP(9999)
	other := ipFrame4UDP(9998)
	inject(t, "src1", other, frame)
	buf := make([]byte, 4096)
	n, err := unix.Read(gre, buf)
	if err != nil {
		t.Fatalf("no GRE packet at the remote: %v", err)
	}
	p := buf[:n]
	ihl := int(p[0]&0xf) * 4
	g := p[ihl:]
	if binary.BigEndian.Uint16(g[0:]) != 0x2000 || binary.BigEndian.Uint16(g[2:]) != 0x6558 || binary.BigEndian.Uint32(g[4:]) != 5 {
		t.Fatalf("GRE header % x: want key 5, transparent Ethernet bridging", g[:8])
	}
	if !bytes.Equal(g[8:], frame) {
		t.Fatalf("inner frame\n% x\nwant\n% x", g[8:], frame)
	}
	if n, err := unix.Read(gre, buf); err == nil {
		t.Fatalf("a second GRE packet (%d bytes): the filter let the other frame through", n)
	}
	st := s.Status().Stats
	if st.Selected != 1 || len(st.Dests) != 1 || st.Dests[0].Sent != 1 || st.Dests[0].Dropped != 0 {
		t.Fatalf("stats %+v: want 1 selected, sent 1", st)
	}
}

// ipFrame4UDP is a minimal Ethernet/IPv4/UDP frame to port dport.
func ipFrame4UDP(dport uint16) []byte {
	f := make([]byte, 14+20+8+10)
	copy(f, []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0})
	ip := f[14:]
	ip[0], ip[8], ip[9] = 0x45, 64, 17
	binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
	copy(ip[12:], []byte{192, 0, 2, 1, 192, 0, 2, 2})
	binary.BigEndian.PutUint16(ip[20:], 1234)
	binary.BigEndian.PutUint16(ip[22:], dport)
	binary.BigEndian.PutUint16(ip[24:], uint16(len(ip)-20))
	return f
}

// inject sends frames out of dev (so that its veth peer receives them).
func inject(t *testing.T, dev string, frames ...[]byte) {
	t.Helper()
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, f := range frames {
		if err := unix.Sendto(fd, f, 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_IP)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
}

// A session whose destinations are all dev: takes the eBPF path: the
// program is attached at the source's ingress only (direction in), the
// selected frame arrives at the destination's far end byte for byte and
// the other one does not, the counters say so, and closing the session
// leaves no program on the source.
func TestSessionEBPFClone(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	rx := ebpfLab(t)
	defer unix.Close(rx)
	s := startDevSession(t, "accept udp,tp_dst=9999")
	defer s.Close()
	if in, out := tcxPrograms(t, "src0"); in != 1 || out != 0 {
		t.Fatalf("src0: %d programs at ingress, %d at egress: want 1 and 0", in, out)
	}
	frame, other := ipFrame4UDP(9999), ipFrame4UDP(9998)
	inject(t, "src1", other, frame)
	if got := receiveAll(rx); len(got) != 1 || !bytes.Equal(got[0], frame) {
		t.Fatalf("dst1 received %d frames %x: want only\n%x", len(got), got, frame)
	}
	st := s.Status().Stats
	if st.Seen != 2 || st.Selected != 1 || len(st.Dests) != 1 || st.Dests[0].Sent != 1 || st.Dests[0].Dropped != 0 {
		t.Fatalf("stats %+v: want 2 seen, 1 selected, sent 1", st)
	}
	s.Close()
	if in, out := tcxPrograms(t, "src0"); in != 0 || out != 0 {
		t.Fatalf("after Close, src0 still has %d programs at ingress, %d at egress", in, out)
	}
}

// The kernel takes a received frame's VLAN tag out of it before tc
// (skb_vlan_untag): the program reads it from __sk_buff, as the classic
// filter reads it with its VLAN extensions, so dl_vlan rules still hold.
func TestSessionEBPFVLANOffloaded(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	rx := ebpfLab(t)
	defer unix.Close(rx)
	s := startDevSession(t, "accept dl_vlan=10,udp,tp_dst=9999")
	defer s.Close()
	tagged := func(vid uint16, mark byte) []byte {
		f := ipFrame4UDP(9999)
		f[len(f)-1] = mark
		return append(append(append([]byte{}, f[:12]...), 0x81, 0, byte(vid>>8), byte(vid)), f[12:]...)
	}
	inject(t, "src1", tagged(11, 'B'), tagged(10, 'A'))
	got := receiveAll(rx)
	if len(got) != 1 || got[0][len(got[0])-1] != 'A' {
		t.Fatalf("dst1 received %d frames %x: want only the one of VLAN 10", len(got), got)
	}
	if st := s.Status().Stats; st.Seen != 2 || st.Selected != 1 {
		t.Fatalf("stats %+v: want 2 seen, 1 selected", st)
	}
}

// When the kernel refuses the eBPF program (loading it, or attaching it
// to a source), the session takes the AF_PACKET path, says why, and
// still copies exactly the selected frame.
func TestSessionEBPFFallback(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	rx := ebpfLab(t)
	defer unix.Close(rx)
	for _, c := range []struct {
		what string
		set  func() func()
		why  string
	}{
		{"load", func() func() {
			loadTCProg = func(*Config) (*tcProg, error) { return nil, errors.New("loading the eBPF program: refused") }
			return func() { loadTCProg = loadTC }
		}, "loading the eBPF program: refused"},
		{"attach", func() func() {
			attachTCX = func(link.TCXOptions) (link.Link, error) { return nil, errors.New("refused") }
			return func() { attachTCX = link.AttachTCX }
		}, "attaching at tc (TCX) to src0: refused"},
	} {
		restore := c.set()
		src, _ := ParseSource("src0:in")
		dst, _ := ParseDest("dev:dst0")
		s, err := Start(Config{Name: "t", Sources: []Source{src}, Dests: []Dest{dst},
			Rules: mustRules(t, "accept udp,tp_dst=9999")}, Env{})
		restore()
		if err != nil {
			t.Fatal(err)
		}
		if p := s.Path(); len(p) != 1 || p[0].Path != PathAFPacket || p[0].Why != c.why {
			s.Close()
			t.Fatalf("%s refused: path %+v, want %s because %q", c.what, p, PathAFPacket, c.why)
		}
		if in, out := tcxPrograms(t, "src0"); in+out != 0 {
			s.Close()
			t.Fatalf("%s refused: src0 has %d+%d TCX programs", c.what, in, out)
		}
		frame, other := ipFrame4UDP(9999), ipFrame4UDP(9998)
		inject(t, "src1", other, frame)
		got := receiveAll(rx)
		st := s.Status()
		s.Close()
		if len(got) != 1 || !bytes.Equal(got[0], frame) {
			t.Fatalf("%s refused: dst1 received %d frames %x: want only\n%x", c.what, len(got), got, frame)
		}
		if st.Error != "" || st.Stats.Selected != 1 || st.Stats.Dests[0].Sent != 1 {
			t.Fatalf("%s refused: status %+v: want no error, 1 selected and sent", c.what, st)
		}
	}
}

// ebpfLab makes veths src0-src1 (the source) and dst0-dst1 (the
// destination) and returns a packet socket that receives what dst1 does.
func ebpfLab(t *testing.T) int {
	t.Helper()
	_ = os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
	sh(t, "ip", "link", "add", "src0", "type", "veth", "peer", "name", "src1")
	sh(t, "ip", "link", "add", "dst0", "type", "veth", "peer", "name", "dst1")
	for _, d := range []string{"src0", "src1", "dst0", "dst1"} {
		sh(t, "ip", "link", "set", d, "up")
	}
	ifi, err := net.InterfaceByName("dst1")
	if err != nil {
		t.Fatal(err)
	}
	rx, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(rx, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	_ = unix.SetsockoptTimeval(rx, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	return rx
}

// startDevSession starts a session of src0:in to dev:dst0 with --mark 7,
// checking that it takes the eBPF path.
func startDevSession(t *testing.T, rules ...string) *Session {
	t.Helper()
	src, _ := ParseSource("src0:in")
	dst, _ := ParseDest("dev:dst0")
	s, err := Start(Config{Name: "t", Sources: []Source{src}, Dests: []Dest{dst}, Mark: 7, HasMark: true,
		Rules: mustRules(t, rules...)}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	if p := s.Path(); len(p) != 1 || p[0].Path != PathEBPF {
		s.Close()
		t.Fatalf("path %+v: want %s", p, PathEBPF)
	}
	if st := s.Status(); st.Error != "" {
		s.Close()
		t.Fatalf("session error: %s", st.Error)
	}
	return s
}

// receiveAll reads frames until none came for a second.
func receiveAll(rx int) [][]byte {
	var got [][]byte
	buf := make([]byte, 2048)
	for {
		n, err := unix.Read(rx, buf)
		if err != nil {
			return got
		}
		got = append(got, append([]byte{}, buf[:n]...))
	}
}

// tcxPrograms counts the TCX programs attached to dev.
func tcxPrograms(t *testing.T, dev string) (in, out int) {
	t.Helper()
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		at ebpf.AttachType
		n  *int
	}{{ebpf.AttachTCXIngress, &in}, {ebpf.AttachTCXEgress, &out}} {
		r, err := link.QueryPrograms(link.QueryOptions{Target: ifi.Index, Attach: c.at})
		if err != nil {
			t.Fatalf("querying %s's TCX programs: %v", dev, err)
		}
		*c.n = len(r.Programs)
	}
	return in, out
}

// A frame whose checksum is partial (sent with a virtio header that says
// NEEDS_CSUM, as a VM or a local socket with checksum offload leaves it;
// the veth keeps it partial) reaches a destination gvsd writes with its
// checksum finished: the program read the state from the sk_buff.
func TestSessionEBPFPartialChecksum(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	rx := ebpfLab(t)
	defer unix.Close(rx)
	src, _ := ParseSource("src0:in")
	dst, _ := ParseDest("dev:dst0,vlan=5")
	s, err := Start(Config{Name: "t", Sources: []Source{src}, Dests: []Dest{dst}, Rules: mustRules(t, "accept tcp")}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if p := s.Path(); len(p) != 1 || p[0].Path != PathEBPF {
		t.Fatalf("path %+v: want %s", p, PathEBPF)
	}
	time.Sleep(200 * time.Millisecond) // attached by Start; let the reader start
	f := tcpFrame4(300)
	injectPartial(t, "src1", f, 34, 16)
	got := receiveAll(rx)
	if len(got) != 1 {
		t.Fatalf("dst1 received %d frames, want 1", len(got))
	}
	l3 := 14
	if binary.BigEndian.Uint16(got[0][12:]) == 0x8100 {
		l3 = 18
	}
	if len(got[0]) != len(f)+l3-14 || !tcpChecksumOK(got[0], l3) {
		t.Fatalf("copy's TCP checksum not finished:\n% x", got[0])
	}
	if st := s.Status().Stats; st.Selected != 1 || st.Errors != 0 {
		t.Fatalf("stats %+v: want 1 selected, no error", st)
	}
}

// injectPartial sends frame out of dev through a packet socket with a
// virtio header that leaves its L4 checksum (at start+offset) partial:
// the kernel keeps it CHECKSUM_PARTIAL, as it does a local socket's.
func injectPartial(t *testing.T, dev string, frame []byte, start, offset uint16) {
	t.Helper()
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		t.Fatal(err)
	}
	var h [vnetHdrLen]byte
	h[0] = vnetNeedsCsum
	binary.NativeEndian.PutUint16(h[6:], start)
	binary.NativeEndian.PutUint16(h[8:], offset)
	if err := unix.Sendto(fd, append(h[:], frame...), 0, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_IP)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
}

// A kernel whose eBPF programs cannot read the checksum state (no
// bpf_cast_to_kern_ctx, no BTF) sends the sessions that gvsd writes
// copies for to the AF_PACKET path, whose virtio header carries that
// state, and says why; sessions the kernel clones for, and metadata-only
// sessions, keep the eBPF path.
func TestSessionNoChecksumState(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	rx := ebpfLab(t)
	defer unix.Close(rx)
	kernelSkbCsum = func() (*SkbCsum, error) { return nil, errors.New("kfunc bpf_cast_to_kern_ctx: not found") }
	defer func() { kernelSkbCsum = sync.OnceValues(readSkbCsum) }()
	src, _ := ParseSource("src0:in")
	for _, c := range []struct {
		dest     string
		metadata bool
		path     string
	}{{"dev:dst0,vlan=5", false, PathAFPacket}, {"dev:dst0", false, PathEBPF}, {"json:x.json", true, PathEBPF}} {
		dst, _ := ParseDest(c.dest)
		s, err := Start(Config{Name: "t", Sources: []Source{src}, Dests: []Dest{dst}, Metadata: c.metadata}, Env{CaptureDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		p := s.Path()
		s.Close()
		why := "cannot tell which packets' checksums are partial, which gvsd must finish in its copies: kfunc bpf_cast_to_kern_ctx: not found"
		if len(p) != 1 || p[0].Path != c.path || (c.path == PathAFPacket) != strings.Contains(p[0].Why, why) {
			t.Errorf("%s: path %+v, want %s (and why %q on af_packet)", c.dest, p, c.path, why)
		}
	}
}
