package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gvs/internal/testutil"
)

// netLab builds the hosts of one test: network namespaces, veth pairs and
// the addresses on them, and removes what it made when the test ends, even
// when it fails. Every command runs under a time limit.
type netLab struct {
	t *testing.T
}

// labCmdTimeout bounds every command that the lab runs; pings and captures
// finish well within it.
const labCmdTimeout = 30 * time.Second

// labNetnsDir is where `ip netns` keeps its named namespaces.
const labNetnsDir = "/var/run/netns/"

// newNetLab skips the test unless it runs as root with iproute2, the only
// conditions under which the namespace tests may be left out.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2)")
	}
	return &netLab{t: t}
}

// run runs a command in the root namespace and returns its combined output.
func (l *netLab) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), labCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// must runs a command and fails the test if it fails.
func (l *netLab) must(name string, args ...string) string {
	l.t.Helper()
	out, err := l.run(name, args...)
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// exec runs a command inside namespace ns.
func (l *netLab) exec(ns string, args ...string) (string, error) {
	return l.run("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// mustExec runs a command inside namespace ns and fails the test if it
// fails.
func (l *netLab) mustExec(ns string, args ...string) string {
	l.t.Helper()
	return l.must("ip", append([]string{"netns", "exec", ns}, args...)...)
}

// labNetnsExists reports whether a named namespace exists.
func labNetnsExists(name string) bool {
	_, err := os.Stat(labNetnsDir + name)
	return err == nil
}

// labLinkExists reports whether the root namespace has an interface name.
func labLinkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}

// netns creates a quiet namespace: loopback up and IPv6 off, so that the
// only frames its interfaces send are the ones the test causes. The name
// must carry the test's own prefix: a leftover of a crashed run is ours,
// and is replaced.
func (l *netLab) netns(name string) {
	l.t.Helper()
	if labNetnsExists(name) {
		_, _ = l.run("ip", "netns", "del", name)
	}
	l.must("ip", "netns", "add", name)
	l.t.Cleanup(func() { _, _ = l.run("ip", "netns", "del", name) })
	l.mustExec(name, "ip", "link", "set", "lo", "up")
	l.mustExec(name, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
}

// waitLink waits until the root namespace has interface name, as gvsd
// creates internal ports.
func (l *netLab) waitLink(name string) {
	l.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !labLinkExists(name) {
		if time.Now().After(deadline) {
			l.t.Fatalf("interface %s did not appear within 10s", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// moveInto moves root-namespace interface dev into ns, gives it the
// addresses (CIDR form) and brings it up.
func (l *netLab) moveInto(dev, ns string, cidrs ...string) {
	l.t.Helper()
	l.waitLink(dev)
	l.must("ip", "link", "set", "dev", dev, "netns", ns)
	l.configure(ns, dev, cidrs...)
}

// configure turns IPv6 off on dev in ns, adds the addresses and brings it
// up.
func (l *netLab) configure(ns, dev string, cidrs ...string) {
	l.t.Helper()
	l.mustExec(ns, "sysctl", "-q", "-w", "net/ipv6/conf/"+dev+"/disable_ipv6=1")
	for _, c := range cidrs {
		l.mustExec(ns, "ip", "addr", "add", c, "dev", dev)
	}
	l.mustExec(ns, "ip", "link", "set", "dev", dev, "up")
}

// veth makes a veth pair: root stays in the root namespace, up and without
// addresses (it becomes a switch port); peer goes into ns with the
// addresses, or with ns "" stays in the root namespace too, up and
// without addresses (a link between two switches).
func (l *netLab) veth(root, peer, ns string, cidrs ...string) {
	l.t.Helper()
	if labLinkExists(root) {
		_, _ = l.run("ip", "link", "del", root)
	}
	l.must("ip", "link", "add", root, "type", "veth", "peer", "name", peer)
	l.t.Cleanup(func() {
		if labLinkExists(root) {
			_, _ = l.run("ip", "link", "del", root)
		}
	})
	l.must("sysctl", "-q", "-w", "net/ipv6/conf/"+root+"/disable_ipv6=1")
	l.must("ip", "link", "set", "dev", root, "up")
	if ns == "" {
		l.must("sysctl", "-q", "-w", "net/ipv6/conf/"+peer+"/disable_ipv6=1")
		l.must("ip", "link", "set", "dev", peer, "up")
		return
	}
	l.moveInto(peer, ns, cidrs...)
}

// vethIn is veth for a switch that runs in namespace swNS (a host of a
// multi-host test): sw is made there, up and without addresses (give it
// some with configure), and peer goes into ns with the addresses. Both
// ends go with the namespaces.
func (l *netLab) vethIn(swNS, sw, peer, ns string, cidrs ...string) {
	l.t.Helper()
	l.must("ip", "-n", swNS, "link", "add", sw, "type", "veth", "peer", "name", peer, "netns", ns)
	l.mustExec(swNS, "sysctl", "-q", "-w", "net/ipv6/conf/"+sw+"/disable_ipv6=1")
	l.mustExec(swNS, "ip", "link", "set", "dev", sw, "up")
	l.configure(ns, peer, cidrs...)
}

// mac returns the MAC address of dev in ns.
func (l *netLab) mac(ns, dev string) string {
	l.t.Helper()
	return strings.TrimSpace(l.mustExec(ns, "cat", "/sys/class/net/"+dev+"/address"))
}

// pingOK fails the test unless a ping from ns to addr gets answered.
func (l *netLab) pingOK(ns, addr string) {
	l.t.Helper()
	if out, err := l.exec(ns, "ping", "-c", "3", "-i", "0.3", "-W", "2", addr); err != nil {
		l.t.Fatalf("ping from %s to %s failed: %v\n%s", ns, addr, err, out)
	}
}

// pingFails fails the test if a ping from ns to addr gets any answer.
func (l *netLab) pingFails(ns, addr string) {
	l.t.Helper()
	out, err := l.exec(ns, "ping", "-c", "2", "-i", "0.3", "-W", "1", addr)
	if err == nil {
		l.t.Fatalf("ping from %s to %s succeeded, want no answer\n%s", ns, addr, out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		// Exit status 1 is "no reply"; anything else is a broken test.
		l.t.Fatalf("ping from %s to %s: %v (want exit status 1: no reply)\n%s", ns, addr, err, out)
	}
}

// pingEventually pings from ns to addr once a second until an answer comes
// or the limit passes, and reports whether one came.
func (l *netLab) pingEventually(ns, addr string, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, err := l.exec(ns, "ping", "-c", "1", "-W", "1", addr); err == nil {
			return true
		}
	}
	return false
}

// inject sends raw Ethernet frames out of dev in namespace ns, for what
// the kernel's stack cannot send (this kernel may lack 802.1Q
// subinterfaces) or must not (a tag on an access port).
func (l *netLab) inject(ns, dev string, frames ...[]byte) {
	l.t.Helper()
	errc := make(chan error, 1)
	go func() {
		// The thread enters ns and is never unlocked, so it ends with
		// this goroutine and no other goroutine ever runs in ns.
		runtime.LockOSThread()
		errc <- sendInNetns(ns, dev, frames)
	}()
	if err := <-errc; err != nil {
		l.t.Fatalf("sending frames on %s in %s: %v", dev, ns, err)
	}
}

func sendInNetns(ns, dev string, frames [][]byte) error {
	f, err := os.Open(labNetnsDir + ns)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return err
	}
	// Protocol 0: the socket only sends, it is never handed a frame.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index}
	for _, fr := range frames {
		if err := unix.Sendto(fd, fr, 0, to); err != nil {
			return fmt.Errorf("sendto: %w", err)
		}
	}
	return nil
}

// arpRequest builds a broadcast ARP request "who-has target tell sender"
// from MAC src, with an 802.1Q tag of VLAN vid unless vid is 0, padded to
// the minimum Ethernet size.
func (l *netLab) arpRequest(src string, vid int, sender, target string) []byte {
	l.t.Helper()
	mac, err := net.ParseMAC(src)
	if err != nil {
		l.t.Fatalf("bad MAC %q in the test: %v", src, err)
	}
	b := append(bytes.Repeat([]byte{0xff}, 6), mac...)
	if vid != 0 {
		b = append(b, 0x81, 0x00, byte(vid>>8), byte(vid))
	}
	b = append(b, 0x08, 0x06, // ARP
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01) // Ethernet, IPv4, request
	b = append(b, mac...)
	b = append(b, net.ParseIP(sender).To4()...)
	b = append(b, make([]byte, 6)...)
	b = append(b, net.ParseIP(target).To4()...)
	for len(b) < 60 {
		b = append(b, 0)
	}
	return b
}

// tcpdumpCapture is a tcpdump running in a namespace.
type tcpdumpCapture struct {
	what   string
	cmd    *exec.Cmd
	cancel context.CancelFunc
	out    lockedBuffer
	errOut lockedBuffer
	errEOF chan struct{}
	lines  []string
	done   bool
}

// capture starts `tcpdump -n -e -Q in` on dev in ns: link-level headers
// (so that 802.1Q tags show as "vlan N") of the frames dev receives, that
// is, the frames the switch sends to that host. It returns once tcpdump
// listens, so that nothing sent afterwards is missed.
func (l *netLab) capture(ns, dev string, filter ...string) *tcpdumpCapture {
	l.t.Helper()
	args := append([]string{"-l", "-n", "-e", "--immediate-mode", "-Q", "in", "-i", dev}, filter...)
	return l.tcpdump(ns, ns+"/"+dev, args...)
}

// tcpdump starts tcpdump with args in ns and returns once it listens.
// Callers pass --immediate-mode: without it, frames wait in the capture
// ring for up to a second, and stopping tcpdump (SIGINT) discards them.
func (l *netLab) tcpdump(ns, what string, args ...string) *tcpdumpCapture {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c := &tcpdumpCapture{what: what, cancel: cancel, errEOF: make(chan struct{})}
	c.cmd = exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, "tcpdump"}, args...)...)
	c.cmd.Stdout = &c.out
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		cancel()
		l.t.Fatalf("tcpdump on %s: %v", c.what, err)
	}
	if err := c.cmd.Start(); err != nil {
		cancel()
		l.t.Fatalf("tcpdump on %s: %v", c.what, err)
	}
	l.t.Cleanup(func() { c.stop() })
	listening := make(chan struct{})
	go c.readStderr(stderr, listening)
	select {
	case <-listening:
	case <-c.errEOF:
		c.stop()
		l.t.Fatalf("tcpdump on %s exited before listening:\n%s", c.what, c.errOut.String())
	case <-time.After(10 * time.Second):
		c.stop()
		l.t.Fatalf("tcpdump on %s did not start listening within 10s:\n%s", c.what, c.errOut.String())
	}
	return c
}

// readStderr keeps tcpdump's messages and says when it is listening.
func (c *tcpdumpCapture) readStderr(r io.Reader, listening chan struct{}) {
	defer close(c.errEOF)
	sc := bufio.NewScanner(r)
	said := false
	for sc.Scan() {
		c.errOut.WriteString(sc.Text() + "\n")
		if !said && strings.Contains(sc.Text(), "listening on") {
			said = true
			close(listening)
		}
	}
}

// stop ends tcpdump and returns the lines it printed, one per frame.
func (c *tcpdumpCapture) stop() []string {
	if c.done {
		return c.lines
	}
	c.done = true
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	exited := make(chan struct{})
	go func() { <-c.errEOF; _ = c.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		c.cancel()
		<-exited
	}
	c.cancel()
	c.lines = nonEmptyLines(c.out.String())
	return c.lines
}

// waitFor waits up to limit for a captured line that contains every one
// of words, and reports whether one came.
func (c *tcpdumpCapture) waitFor(limit time.Duration, words ...string) bool {
	deadline := time.Now().Add(limit)
	for {
		if len(linesWith(nonEmptyLines(c.out.String()), words...)) > 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a buffer that tcpdump's output goroutine writes while
// the test reads it.
type lockedBuffer struct{ testutil.SyncBuffer }

// WriteString appends s, for tests that note their own lines in between.
func (b *lockedBuffer) WriteString(s string) { _, _ = b.Write([]byte(s)) }

func nonEmptyLines(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}

// linesWith returns the captured lines that contain every one of words.
func linesWith(lines []string, words ...string) []string {
	var out []string
next:
	for _, line := range lines {
		for _, w := range words {
			if !strings.Contains(line, w) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}
