package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// This file compares gvsd with the real Open vSwitch: the same scenario
// runs on OVS's userspace datapath and then on gvsd, over the same veths,
// and the frames each port receives must be the same.

// gvsyOVSSchema is where openvswitch-common installs the database schema.
const gvsyOVSSchema = "/usr/share/openvswitch/vswitch.ovsschema"

// gvsyOVS is a reference ovsdb-server and ovs-vswitchd pair running in a
// private directory, so it never touches a system-wide Open vSwitch.
type gvsyOVS struct {
	t   *testing.T
	dir string
	env []string
	// hadNetdevTap is true if the userspace datapath's own tap existed
	// before this instance started: then it belongs to someone else.
	hadNetdevTap bool
	stopped      bool
	// netns is the namespace ovs-vswitchd runs in ("" for the test's):
	// its devices go with the namespace.
	netns string
}

// gvsyStartOVS starts the reference daemons; they are stopped when the
// test ends at the latest.
func gvsyStartOVS(t *testing.T) *gvsyOVS {
	t.Helper()
	return gvsyStartOVSNetns(t, "")
}

// gvsyStartOVSNetns is gvsyStartOVS with ovs-vswitchd inside network
// namespace ns (a host of a multi-host test); ovsdb-server and the
// clients stay outside, on the unix socket.
func gvsyStartOVSNetns(t *testing.T, ns string) *gvsyOVS {
	t.Helper()
	dir := t.TempDir()
	o := &gvsyOVS{t: t, dir: dir, hadNetdevTap: gvsyLinkExists("ovs-netdev"), netns: ns}
	o.env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir, "OVS_SYSCONFDIR="+dir)
	t.Cleanup(o.Stop)
	db := filepath.Join(dir, "conf.db")
	o.must("ovsdb-tool", "create", db, gvsyOVSSchema)
	o.must("ovsdb-server", db, "--remote=punix:"+o.socket(), "--pidfile="+o.pidfile("ovsdb-server"),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"), "--detach", "--log-file="+filepath.Join(dir, "ovsdb-server.log"))
	o.must("ovs-vsctl", "--db=unix:"+o.socket(), "--timeout=20", "--no-wait", "init")
	vswitchd := []string{"ovs-vswitchd", "unix:" + o.socket(), "--pidfile=" + o.pidfile("ovs-vswitchd"),
		"--unixctl=" + filepath.Join(dir, "ovs-vswitchd.ctl"), "--detach", "--log-file=" + filepath.Join(dir, "ovs-vswitchd.log")}
	if ns != "" {
		vswitchd = append([]string{"ip", "netns", "exec", ns}, vswitchd...)
	}
	o.must(vswitchd...)
	return o
}

func (o *gvsyOVS) socket() string               { return filepath.Join(o.dir, "db.sock") }
func (o *gvsyOVS) pidfile(daemon string) string { return filepath.Join(o.dir, daemon+".pid") }

// run runs an OVS program in the reference's environment.
func (o *gvsyOVS) run(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gvsyCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = o.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func (o *gvsyOVS) must(args ...string) string {
	o.t.Helper()
	out, errOut, err := o.run(args...)
	if err != nil {
		o.t.Fatalf("reference OVS: %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// MustVsctl runs ovs-vsctl against the reference and fails the test if it
// fails or complains.
func (o *gvsyOVS) MustVsctl(args ...string) string {
	o.t.Helper()
	out, errOut, err := o.run(append([]string{"ovs-vsctl", "--db=unix:" + o.socket(), "--timeout=20"}, args...)...)
	if err != nil || errOut != "" {
		o.t.Fatalf("reference ovs-vsctl %s: err=%v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// Stop deletes the bridges (the userspace datapath keeps its tap devices
// across a daemon exit), ends both daemons through their pidfiles
// (SIGTERM, SIGKILL after 5 s), removes taps left behind, and shows the
// switch's log tail if the test failed. It may be called more than once.
func (o *gvsyOVS) Stop() {
	if o.stopped {
		return
	}
	o.stopped = true
	vsctl := []string{"ovs-vsctl", "--db=unix:" + o.socket(), "--timeout=10"}
	out, _, _ := o.run(append(vsctl, "list-br")...)
	bridges := strings.Fields(out)
	for _, br := range bridges {
		_, _, _ = o.run(append(vsctl, "--if-exists", "del-br", br)...)
	}
	for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
		if err := gvsyKillPidfile(o.pidfile(d)); err != nil {
			o.t.Logf("stopping reference %s: %v", d, err)
		}
	}
	if !o.hadNetdevTap {
		bridges = append(bridges, "ovs-netdev")
	}
	if o.netns != "" {
		bridges = nil // its devices are in its namespace, which goes with them
	}
	for _, dev := range bridges {
		if gvsyLinkExists(dev) {
			_, _ = gvsyRun("ip", "link", "del", dev)
		}
	}
	if o.t.Failed() {
		if log, err := os.ReadFile(filepath.Join(o.dir, "ovs-vswitchd.log")); err == nil {
			o.t.Logf("reference ovs-vswitchd log tail:\n%s", gvsyTail(string(log), 40))
		}
	}
}

// gvsyKillPidfile stops the process named in a pidfile and removes the
// file; a missing pidfile means nothing runs.
func gvsyKillPidfile(path string) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("pidfile %s holds %q", path, b)
	}
	defer os.Remove(path)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if !gvsyAlive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if !gvsyAlive(pid) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("pid %d survived SIGKILL", pid)
}

// gvsyAlive reports whether pid runs; a zombie (the daemons detach, so
// their parent may not reap them) counts as gone.
func gvsyAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// gvsyLinkExists reports whether the root namespace has a device name.
func gvsyLinkExists(name string) bool {
	_, err := os.Stat(filepath.Join("/sys/class/net", name))
	return err == nil
}

func gvsyTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// gvsyInNetns runs fn on an OS thread that has entered namespace ns.
// Sockets fn opens stay in that namespace afterwards.
func gvsyInNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open(filepath.Join("/var/run/netns", ns))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering netns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// The thread stays locked: the runtime ends it with this
			// goroutine, so nothing else runs in the wrong namespace.
			errc <- fmt.Errorf("leaving netns %s: %w", ns, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// gvsyRaw is an AF_PACKET socket on a namespace's veth end: it sends the
// scenario's frames and captures what the port receives.
type gvsyRaw struct {
	label   string
	fd      int
	ifindex int
}

func gvsyHtons(v uint16) uint16 { return v<<8 | v>>8 }

// gvsyOpenRaw opens a packet socket on interface ifname in namespace ns,
// closed when the test ends. It asks for auxiliary data so that VLAN tags
// the kernel took out of the frame can be put back.
func gvsyOpenRaw(t *testing.T, label, ns, ifname string) *gvsyRaw {
	t.Helper()
	r := &gvsyRaw{label: label, fd: -1}
	err := gvsyInNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		r.ifindex = ifi.Index
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(gvsyHtons(unix.ETH_P_ALL)))
		if err != nil {
			return err
		}
		r.fd = fd
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: gvsyHtons(unix.ETH_P_ALL), Ifindex: ifi.Index})
	})
	if r.fd >= 0 {
		t.Cleanup(func() { unix.Close(r.fd) })
	}
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", ifname, ns, err)
	}
	return r
}

// send transmits one frame out of the port's namespace end.
func (r *gvsyRaw) send(frame []byte) error {
	return unix.Sendto(r.fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifindex})
}

// recv returns the next frame the interface received, with its VLAN tag
// restored, waiting at most 100 ms (unix.EAGAIN then). Frames the socket
// itself sent are skipped (nil frame, nil error).
func (r *gvsyRaw) recv(flags int) ([]byte, error) {
	buf := make([]byte, 65600)
	oob := make([]byte, 256)
	n, oobn, rflags, from, err := unix.Recvmsg(r.fd, buf, oob, flags)
	if err != nil {
		return nil, err
	}
	if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
		return nil, nil
	}
	if rflags&unix.MSG_TRUNC != 0 {
		return nil, fmt.Errorf("%s: frame truncated", r.label)
	}
	return gvsyRestoreVLAN(buf[:n], oob[:oobn]), nil
}

// gvsyRestoreVLAN puts back the 802.1Q tag that the kernel moved into the
// packet's metadata, as tcpdump does.
func gvsyRestoreVLAN(frame, oob []byte) []byte {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil || len(frame) < 12 {
		return frame
	}
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 {
			continue
		}
		status := binary.NativeEndian.Uint32(m.Data[0:4])
		if status&unix.TP_STATUS_VLAN_VALID == 0 {
			return frame
		}
		tci := binary.NativeEndian.Uint16(m.Data[16:18])
		tpid := uint16(0x8100)
		if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = binary.NativeEndian.Uint16(m.Data[18:20])
		}
		out := make([]byte, 0, len(frame)+4)
		out = append(out, frame[:12]...)
		out = binary.BigEndian.AppendUint16(out, tpid)
		out = binary.BigEndian.AppendUint16(out, tci)
		return append(out, frame[12:]...)
	}
	return frame
}

// drain discards every frame waiting on the socket.
func (r *gvsyRaw) drain() {
	for {
		if _, err := r.recv(unix.MSG_DONTWAIT); err != nil {
			return
		}
	}
}

// gvsyTag is one VLAN header of a crafted frame.
type gvsyTag struct {
	TPID uint16
	VID  uint16
	PCP  uint16
}

// gvsyEther builds an Ethernet frame with optional VLAN headers.
func gvsyEther(dst, src string, tags []gvsyTag, etherType uint16, payload []byte) []byte {
	f := append(gvsyMAC(dst), gvsyMAC(src)...)
	for _, tag := range tags {
		f = binary.BigEndian.AppendUint16(f, tag.TPID)
		f = binary.BigEndian.AppendUint16(f, tag.PCP<<13|tag.VID)
	}
	f = binary.BigEndian.AppendUint16(f, etherType)
	return append(f, payload...)
}

func gvsyMAC(s string) []byte {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err) // only constant, known-good addresses reach here
	}
	return m
}

func gvsyIP4(s string) []byte { return net.ParseIP(s).To4() }

// gvsyARP builds an ARP payload for Ethernet/IPv4.
func gvsyARP(op uint16, sha, spa, tha, tpa string) []byte {
	p := []byte{0, 1, 8, 0, 6, 4}
	p = binary.BigEndian.AppendUint16(p, op)
	p = append(p, gvsyMAC(sha)...)
	p = append(p, gvsyIP4(spa)...)
	p = append(p, gvsyMAC(tha)...)
	return append(p, gvsyIP4(tpa)...)
}

// gvsyChecksum is the Internet checksum of b.
func gvsyChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// gvsyICMPEcho builds an IPv4 packet carrying an ICMP echo request (typ 8)
// or reply (typ 0), with valid checksums.
func gvsyICMPEcho(src, dst string, typ uint8, id, seq uint16, data string) []byte {
	icmp := []byte{typ, 0, 0, 0}
	icmp = binary.BigEndian.AppendUint16(icmp, id)
	icmp = binary.BigEndian.AppendUint16(icmp, seq)
	icmp = append(icmp, data...)
	binary.BigEndian.PutUint16(icmp[2:], gvsyChecksum(icmp))
	ip := []byte{0x45, 0, 0, 0, 0, byte(seq), 0x40, 0, 64, 1, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
	ip = append(ip, gvsyIP4(src)...)
	ip = append(ip, gvsyIP4(dst)...)
	binary.BigEndian.PutUint16(ip[10:], gvsyChecksum(ip))
	return append(ip, icmp...)
}

// gvsyDiffPorts is the differential topology: p1 and p2 access ports of
// VLAN 10, p3 a trunk of VLANs 10 and 20, p4 native-untagged in VLAN 10
// that also trunks VLAN 20.
var gvsyDiffPorts = gvsyPorts("gvsy-diff-", "gvsyd", 0x79, 4)

// gvsyDiffPortColumns are the Port columns of each port, for add-port.
var gvsyDiffPortColumns = [][]string{
	{"tag=10"},
	{"tag=10"},
	{"trunks=10,20"},
	{"tag=10", "trunks=20", "vlan_mode=native-untagged"},
}

// gvsyConfigureDiff builds the differential bridge with either switch's
// ovs-vsctl.
func gvsyConfigureDiff(t *testing.T, vsctl func(...string) string, bridge string) {
	t.Helper()
	gvsyFreeBridgeName(bridge)
	vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
	for i, p := range gvsyDiffPorts {
		vsctl(append([]string{"add-port", bridge, p.Host}, gvsyDiffPortColumns[i]...)...)
	}
	for _, p := range gvsyDiffPorts {
		gvsyRequirePortUp(t, vsctl, p.Host)
	}
}

// gvsySent is one frame of the scenario, sent from port From (index into
// gvsyDiffPorts).
type gvsySent struct {
	Name  string
	From  int
	Frame []byte
}

// gvsyDiffScenario is the fixed list of frames: learning, flooding,
// unicast to learned and unknown MACs, and VLAN edge cases. Comments say
// what an 802.1Q switch is expected to do; the test itself only compares
// gvsd with OVS.
func gvsyDiffScenario() []gvsySent {
	const bcast, unknown, mcast = "ff:ff:ff:ff:ff:ff", "02:67:76:79:ee:ee", "01:00:5e:00:00:fb"
	m := func(i int) string { return gvsyDiffPorts[i-1].MAC }
	ip := func(i int) string { return fmt.Sprintf("10.231.8.%d", i) }
	zero := "00:00:00:00:00:00"
	tag := func(vid uint16) []gvsyTag { return []gvsyTag{{TPID: 0x8100, VID: vid}} }
	data := func(s string) []byte { return []byte("gvsy differential: " + s) }
	return []gvsySent{
		{"p1 ARP request (broadcast, VLAN 10)", 0, gvsyEther(bcast, m(1), nil, 0x0806, gvsyARP(1, m(1), ip(1), zero, ip(2)))},
		{"p2 ARP reply to p1", 1, gvsyEther(m(1), m(2), nil, 0x0806, gvsyARP(2, m(2), ip(2), m(1), ip(1)))},
		{"p1 echo request to p2", 0, gvsyEther(m(2), m(1), nil, 0x0800, gvsyICMPEcho(ip(1), ip(2), 8, 0x6776, 1, "ping one"))},
		{"p2 echo reply to p1", 1, gvsyEther(m(1), m(2), nil, 0x0800, gvsyICMPEcho(ip(2), ip(1), 0, 0x6776, 1, "ping one"))},
		{"p1 unknown unicast", 0, gvsyEther(unknown, m(1), nil, 0x88b5, data("unknown unicast from p1"))},
		{"p3 ARP request in VLAN 20 (tagged broadcast)", 2, gvsyEther(bcast, m(3), tag(20), 0x0806, gvsyARP(1, m(3), ip(3), zero, ip(4)))},
		{"p4 ARP reply in VLAN 20 (tagged, to p3)", 3, gvsyEther(m(3), m(4), tag(20), 0x0806, gvsyARP(2, m(4), ip(4), m(3), ip(3)))},
		{"p3 echo request in VLAN 10 to p1", 2, gvsyEther(m(1), m(3), tag(10), 0x0800, gvsyICMPEcho(ip(3), ip(1), 8, 0x6776, 2, "ping two"))},
		{"p4 native untagged unicast to p1", 3, gvsyEther(m(1), m(4), nil, 0x88b5, data("native untagged from p4"))},
		{"p3 broadcast in VLAN 30 (not trunked)", 2, gvsyEther(bcast, m(3), tag(30), 0x88b5, data("vlan 30 from p3"))},
		{"p1 tagged VLAN 10 broadcast on access port", 0, gvsyEther(bcast, m(1), tag(10), 0x88b5, data("tagged on access p1"))},
		{"p3 untagged broadcast on trunk", 2, gvsyEther(bcast, m(3), nil, 0x88b5, data("untagged on trunk p3"))},
		{"p4 untagged broadcast (native VLAN 10)", 3, gvsyEther(bcast, m(4), nil, 0x88b5, data("untagged on native p4"))},
		{"p4 broadcast tagged with its native VLAN 10", 3, gvsyEther(bcast, m(4), tag(10), 0x88b5, data("native vlan tagged on p4"))},
		{"p1 priority-tagged broadcast (VID 0, PCP 5)", 0, gvsyEther(bcast, m(1), []gvsyTag{{TPID: 0x8100, PCP: 5}}, 0x88b5, data("priority tagged from p1"))},
		{"p2 unicast to p3's MAC learned in VLAN 10", 1, gvsyEther(m(3), m(2), nil, 0x88b5, data("p2 to p3 in vlan 10"))},
		{"p1 unicast to p4's MAC learned in VLAN 10", 0, gvsyEther(m(4), m(1), nil, 0x88b5, data("p1 to p4 in vlan 10"))},
		{"p3 VLAN 20 unicast to p1's MAC (unknown in VLAN 20)", 2, gvsyEther(m(1), m(3), tag(20), 0x88b5, data("p3 to p1 in vlan 20"))},
		{"p2 IPv4 multicast MAC", 1, gvsyEther(mcast, m(2), nil, 0x88b5, data("multicast from p2"))},
		{"p1 unicast to its own MAC (hairpin)", 0, gvsyEther(m(1), m(1), nil, 0x88b5, data("hairpin p1"))},
		{"p3 double-tagged VLAN 10 over 99", 2, gvsyEther(bcast, m(3), []gvsyTag{{TPID: 0x8100, VID: 10}, {TPID: 0x8100, VID: 99}}, 0x88b5, data("qinq from p3"))},
		{"p3 VLAN 10 with PCP 3 to p2", 2, gvsyEther(m(2), m(3), []gvsyTag{{TPID: 0x8100, VID: 10, PCP: 3}}, 0x88b5, data("pcp 3 from p3"))},
	}
}

// gvsyProbeMAC is the source address of port i's readiness probes; the
// scenario never sends to it.
func gvsyProbeMAC(i int) string { return fmt.Sprintf("02:67:76:79:ff:%02x", i+1) }

// gvsyWaitForwarding waits until the switch forwards from every port: it
// broadcasts a probe from each port in a VLAN the port carries and waits
// for it on a port of VLAN 10, resending for up to 15 s.
func gvsyWaitForwarding(t *testing.T, raws []*gvsyRaw) {
	t.Helper()
	for i, from := range raws {
		to := raws[0]
		if i == 0 {
			to = raws[1]
		}
		var tags []gvsyTag
		if i == 2 { // the trunk
			tags = []gvsyTag{{TPID: 0x8100, VID: 10}}
		}
		probe := gvsyEther("ff:ff:ff:ff:ff:ff", gvsyProbeMAC(i), tags, 0x88b5, []byte("gvsy readiness probe"))
		if !gvsyProbe(from, to, probe) {
			t.Fatalf("the switch forwarded no probe from %s to %s within 15s", from.label, to.label)
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, r := range raws {
		r.drain()
	}
}

func gvsyProbe(from, to *gvsyRaw, probe []byte) bool {
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); {
		if err := from.send(probe); err != nil {
			return false
		}
		for wait := time.Now().Add(300 * time.Millisecond); time.Now().Before(wait); {
			f, err := to.recv(0)
			if err == nil && len(f) >= 12 && bytes.Equal(f[6:12], probe[6:12]) {
				return true
			}
		}
	}
	return false
}

// gvsyCapture sends the scenario's frames 100 ms apart (so that each is
// learned from before the next, even on a busy machine) while capturing
// on every port, and returns the frames each port received.
func gvsyCapture(t *testing.T, raws []*gvsyRaw, scenario []gvsySent) [][][]byte {
	t.Helper()
	got := make([][][]byte, len(raws))
	errs := make([]error, len(raws))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, r := range raws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = gvsyCollect(r, stop)
		}()
	}
	for _, s := range scenario {
		if err := raws[s.From].send(s.Frame); err != nil {
			t.Errorf("sending %q: %v", s.Name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func gvsyCollect(r *gvsyRaw, stop <-chan struct{}) ([][]byte, error) {
	var frames [][]byte
	for {
		select {
		case <-stop:
			return frames, nil
		default:
		}
		f, err := r.recv(0)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
		case err != nil:
			return frames, fmt.Errorf("capturing on %s: %w", r.label, err)
		case f != nil:
			frames = append(frames, f)
		}
	}
}

// gvsyDescribe turns a captured frame into the text that is compared:
// addresses, outer VLAN header, EtherType, and the payload named after the
// scenario frame it came from. ignore is true for frames the kernel sends
// by itself (IPv6, link-local control protocols).
func gvsyDescribe(f []byte, payloads map[[32]byte]string) (desc string, ignore bool) {
	if len(f) < 14 {
		return fmt.Sprintf("runt frame of %d bytes %x", len(f), f), false
	}
	dst, src := net.HardwareAddr(f[0:6]), net.HardwareAddr(f[6:12])
	etherType, rest := binary.BigEndian.Uint16(f[12:14]), f[14:]
	vlan := "untagged"
	if gvsyIsVLAN(etherType) && len(rest) >= 4 {
		tci := binary.BigEndian.Uint16(rest)
		vlan = fmt.Sprintf("tpid=%#04x vid=%d pcp=%d", etherType, tci&0xfff, tci>>13)
		etherType, rest = binary.BigEndian.Uint16(rest[2:]), rest[4:]
	}
	if etherType == 0x86dd || bytes.HasPrefix(f, []byte{0x01, 0x80, 0xc2}) {
		return "", true
	}
	name, ok := payloads[sha256.Sum256(rest)]
	if !ok {
		sum := sha256.Sum256(rest)
		name = fmt.Sprintf("unknown payload (%d bytes, sha256 %x)", len(rest), sum[:6])
	}
	return fmt.Sprintf("dst=%s src=%s %s type=%#04x payload=%q", dst, src, vlan, etherType, name), false
}

// gvsyPayloadNames maps the payloads of each scenario frame to the frame's
// name. A switch may pop a tag, so a frame sent with n VLAN headers is
// known by what follows each of them (and an untagged one by what follows
// its EtherType).
func gvsyPayloadNames(t *testing.T, scenario []gvsySent) map[[32]byte]string {
	t.Helper()
	names := map[[32]byte]string{}
	add := func(name string, payload []byte) {
		sum := sha256.Sum256(payload)
		if other, dup := names[sum]; dup && other != name {
			t.Fatalf("scenario frames %q and %q have the same payload", other, name)
		}
		names[sum] = name
	}
	for _, s := range scenario {
		rest := s.Frame[12:]
		tagged := false
		for len(rest) >= 6 && gvsyIsVLAN(binary.BigEndian.Uint16(rest)) {
			rest = rest[4:]
			add(s.Name, rest[2:])
			tagged = true
		}
		if !tagged {
			add(s.Name, rest[2:])
		}
	}
	return names
}

func gvsyIsVLAN(etherType uint16) bool { return etherType == 0x8100 || etherType == 0x88a8 }

// gvsyMultiset counts each description of a port's frames.
func gvsyMultiset(frames [][]byte, payloads map[[32]byte]string) (map[string]int, int) {
	set, ignored := map[string]int{}, 0
	for _, f := range frames {
		d, ignore := gvsyDescribe(f, payloads)
		if ignore {
			ignored++
			continue
		}
		set[d]++
	}
	return set, ignored
}

// gvsyDiff lists what differs between the reference's and gvsd's frames
// on one port: "-" lines only OVS delivered, "+" lines only gvsd.
func gvsyDiff(ref, got map[string]int) []string {
	keys := map[string]bool{}
	for k := range ref {
		keys[k] = true
	}
	for k := range got {
		keys[k] = true
	}
	var missing, extra []string
	for k := range keys {
		switch r, g := ref[k], got[k]; {
		case r > g:
			missing = append(missing, fmt.Sprintf("  - %dx only OVS:  %s", r-g, k))
		case g > r:
			extra = append(extra, fmt.Sprintf("  + %dx only gvsd: %s", g-r, k))
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return append(missing, extra...)
}

func gvsyListing(set map[string]int) string {
	var lines []string
	for k, n := range set {
		lines = append(lines, fmt.Sprintf("    %dx %s", n, k))
	}
	sort.Strings(lines)
	if len(lines) == 0 {
		return "    (nothing)"
	}
	return strings.Join(lines, "\n")
}

// TestDifferentialNormal runs one NORMAL-switching scenario with VLANs on
// the real OVS 3.1 userspace datapath and then on gvsd, over the same
// veth-backed system ports, and requires every port to receive the same
// frames from both.
func TestDifferentialNormal(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ip", "sysctl")
	if _, err := os.Stat(gvsyOVSSchema); err != nil {
		t.Skipf("Open vSwitch schema missing (openvswitch-common not installed): %v", err)
	}
	gvsyTopology(t, gvsyDiffPorts...)
	raws := make([]*gvsyRaw, len(gvsyDiffPorts))
	for i, p := range gvsyDiffPorts {
		raws[i] = gvsyOpenRaw(t, fmt.Sprintf("p%d (%s)", i+1, p.Host), p.NS, p.Inner)
	}
	scenario := gvsyDiffScenario()
	payloads := gvsyPayloadNames(t, scenario)

	// One switch at a time on the veths: each run stops its daemon before
	// the next starts.
	ref := func() [][][]byte {
		o := gvsyStartOVS(t)
		defer o.Stop()
		gvsyConfigureDiff(t, o.MustVsctl, "gvsydo")
		gvsyWaitForwarding(t, raws)
		return gvsyCapture(t, raws, scenario)
	}()
	got := func() [][][]byte {
		g := StartGvsd(t)
		defer g.Stop()
		gvsyConfigureDiff(t, g.MustVsctl, "gvsydg")
		gvsyWaitForwarding(t, raws)
		return gvsyCapture(t, raws, scenario)
	}()
	gvsyCompare(t, raws, ref, got, payloads)
}

// gvsyCompare fails the test with a per-port diff if gvsd's captures
// differ from the reference's.
func gvsyCompare(t *testing.T, raws []*gvsyRaw, ref, got [][][]byte, payloads map[[32]byte]string) {
	t.Helper()
	total := 0
	var report []string
	for i, r := range raws {
		refSet, refIgnored := gvsyMultiset(ref[i], payloads)
		gotSet, gotIgnored := gvsyMultiset(got[i], payloads)
		total += len(ref[i]) - refIgnored
		t.Logf("%s: OVS delivered %d frames (%d ignored), gvsd %d (%d ignored); OVS's:\n%s",
			r.label, len(ref[i])-refIgnored, refIgnored, len(got[i])-gotIgnored, gotIgnored, gvsyListing(refSet))
		if d := gvsyDiff(refSet, gotSet); len(d) > 0 {
			report = append(report, r.label+":\n"+strings.Join(d, "\n"))
		}
	}
	if total < 10 {
		t.Fatalf("the reference OVS delivered only %d frames in all: the scenario did not run", total)
	}
	if len(report) > 0 {
		t.Errorf("gvsd delivered different frames from OVS 3.1:\n%s", strings.Join(report, "\n"))
	}
}
