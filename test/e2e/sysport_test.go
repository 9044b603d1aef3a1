package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// This file tests system ports (Interface.type empty): gvsd attaches to
// veths that already exist and forwards real traffic between namespaces.
// Its helpers carry the prefix "gvsy" so that other e2e files can grow
// their own without clashes; every namespace, veth and bridge made here
// starts with "gvsy" too.

// gvsyCmdTimeout bounds every helper command.
const gvsyCmdTimeout = 30 * time.Second

// gvsyRequireRoot skips a test that needs namespaces when not run as root.
func gvsyRequireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and veths")
	}
}

// gvsyRun runs a command with a bounded time and returns its combined
// output.
func gvsyRun(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), gvsyCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// gvsyMust runs a command and fails the test if it fails.
func gvsyMust(t *testing.T, args ...string) string {
	t.Helper()
	out, err := gvsyRun(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// gvsyInNS is the argument prefix that runs a command inside namespace ns.
func gvsyInNS(ns string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns}, args...)
}

// gvsyPort is one end of the test topology: a veth pair whose Host end
// stays in the root namespace (where the switch attaches to it) and whose
// Inner end lives in namespace NS.
type gvsyPort struct {
	NS    string
	Host  string
	Inner string
	MAC   string // of Inner, fixed so that runs are comparable
	Addr  string // CIDR on Inner, or "" for none
}

// gvsyPorts names n ports for a test: namespace nsPrefix+i, veth ends
// devPrefix+i+"h" (the switch's) and devPrefix+i+"n", and the fixed MAC
// 02:67:76:<macTag>:00:<i>, i from 1.
func gvsyPorts(nsPrefix, devPrefix string, macTag byte, n int) []gvsyPort {
	ports := make([]gvsyPort, n)
	for i := range ports {
		id := strconv.Itoa(i + 1)
		ports[i] = gvsyPort{NS: nsPrefix + id, Host: devPrefix + id + "h", Inner: devPrefix + id + "n",
			MAC: fmt.Sprintf("02:67:76:%02x:00:%02x", macTag, i+1)}
	}
	return ports
}

// gvsyNetns creates namespace ns with IPv6 off (so its kernel stays quiet)
// and removes it when the test ends. A namespace left by an aborted run is
// removed first.
func gvsyNetns(t *testing.T, ns string) {
	t.Helper()
	_, _ = gvsyRun("ip", "netns", "del", ns)
	gvsyMust(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if _, err := gvsyRun("ip", "netns", "del", ns); err != nil {
			t.Logf("cleanup: %v", err)
		}
	})
	gvsyMust(t, "ip", "-n", ns, "link", "set", "lo", "up")
	gvsyDisableIPv6(t, ns, "all", "default")
}

// gvsyDisableIPv6 turns IPv6 off on the named conf entries of namespace ns
// ("" is the root namespace); a kernel without IPv6 needs nothing.
func gvsyDisableIPv6(t *testing.T, ns string, confs ...string) {
	t.Helper()
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		return
	}
	for _, c := range confs {
		args := []string{"sysctl", "-qw", "net.ipv6.conf." + c + ".disable_ipv6=1"}
		if ns != "" {
			args = gvsyInNS(ns, args...)
		}
		gvsyMust(t, args...)
	}
}

// gvsyVeth creates the port's veth pair, moves the inner end into its
// namespace with its MAC and address, and brings both ends up. The host
// end is deleted when the test ends.
func gvsyVeth(t *testing.T, p gvsyPort) {
	t.Helper()
	_, _ = gvsyRun("ip", "link", "del", p.Host)
	gvsyMust(t, "ip", "link", "add", p.Host, "type", "veth", "peer", "name", p.Inner, "netns", p.NS)
	t.Cleanup(func() { _, _ = gvsyRun("ip", "link", "del", p.Host) })
	gvsyDisableIPv6(t, "", p.Host)
	gvsyDisableIPv6(t, p.NS, p.Inner)
	if p.MAC != "" {
		gvsyMust(t, "ip", "-n", p.NS, "link", "set", p.Inner, "address", p.MAC)
	}
	if p.Addr != "" {
		gvsyMust(t, "ip", "-n", p.NS, "addr", "add", p.Addr, "dev", p.Inner)
	}
	gvsyMust(t, "ip", "-n", p.NS, "link", "set", p.Inner, "up")
	gvsyMust(t, "ip", "link", "set", p.Host, "up")
}

// gvsyTopology creates the namespaces and veths of all ports.
func gvsyTopology(t *testing.T, ports ...gvsyPort) {
	t.Helper()
	for _, p := range ports {
		gvsyNetns(t, p.NS)
		gvsyVeth(t, p)
	}
}

// gvsyFreeBridgeName deletes a device left under a bridge's name by an
// aborted run (the userspace datapath of OVS keeps its taps when killed),
// which would stop the bridge's own port from being created.
func gvsyFreeBridgeName(name string) {
	if gvsyLinkExists(name) {
		_, _ = gvsyRun("ip", "link", "del", name)
	}
}

// gvsyRequirePortUp fails the test unless the interface has an OpenFlow
// port number and no error.
func gvsyRequirePortUp(t *testing.T, vsctl func(...string) string, iface string) {
	t.Helper()
	ofport := strings.TrimSpace(vsctl("get", "interface", iface, "ofport"))
	errText := strings.TrimSpace(vsctl("get", "interface", iface, "error"))
	if ofport == "-1" || ofport == "[]" || errText != "[]" {
		t.Fatalf("interface %s not set up: ofport=%s error=%s", iface, ofport, errText)
	}
}

// gvsyWaitPing pings addr from namespace ns until one reply comes back
// (the switch may need a moment to start its port threads), then requires
// a short burst to go through without loss.
func gvsyWaitPing(t *testing.T, ns, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		if _, lastErr = gvsyRun(gvsyInNS(ns, "ping", "-n", "-c", "1", "-W", "1", addr)...); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("no ping reply from %s in %s within 10s: %v", addr, ns, lastErr)
	}
	out, err := gvsyRun(gvsyInNS(ns, "ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", addr)...)
	if err != nil || !strings.Contains(out, " 0% packet loss") {
		t.Fatalf("ping burst %s -> %s lost packets: %v\n%s", ns, addr, err, out)
	}
}

// gvsyWaitListening waits until a TCP socket listens on port in ns.
func gvsyWaitListening(t *testing.T, ns string, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		out, err := gvsyRun(gvsyInNS(ns, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))...)
		if err == nil && strings.TrimSpace(out) != "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on TCP port %d in %s after 10s", port, ns)
}

// gvsyBackground starts a command that the test waits for later; it is
// killed at cleanup if still running, and its output is collected.
type gvsyBackground struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	out    bytes.Buffer
	done   chan error
}

func gvsyStart(t *testing.T, stdout *os.File, args ...string) *gvsyBackground {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), gvsyCmdTimeout)
	b := &gvsyBackground{cancel: cancel, done: make(chan error, 1)}
	b.cmd = exec.CommandContext(ctx, args[0], args[1:]...)
	b.cmd.Stderr = &b.out
	b.cmd.Stdout = &b.out
	if stdout != nil {
		b.cmd.Stdout = stdout
	}
	if err := b.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", strings.Join(args, " "), err)
	}
	go func() { b.done <- b.cmd.Wait() }()
	t.Cleanup(func() { cancel(); <-b.done })
	return b
}

// Wait waits at most d for the command to end.
func (b *gvsyBackground) Wait(d time.Duration) error {
	select {
	case err := <-b.done:
		b.done <- err // keep it for the cleanup
		return err
	case <-time.After(d):
		b.cancel()
		return fmt.Errorf("%s still running after %s", strings.Join(b.cmd.Args, " "), d)
	}
}

// TestSystemPortsTCP attaches two existing veths to a bridge as system
// ports and checks ping and TCP through them, with the kernel's default
// veth offloads left on: TCP segments leave the sender with their
// checksum only partly computed, and the switch must complete it (or keep
// it marked as partial) so that the receiver accepts them.
func TestSystemPortsTCP(t *testing.T) {
	gvsyRequireRoot(t)
	requireTool(t, "ovs-vsctl", "ip", "sysctl", "ping", "ss", "iperf3", "nc")
	a := gvsyPort{NS: "gvsy-tcp-a", Host: "gvsyta0", Inner: "gvsyta1", Addr: "10.231.7.1/24"}
	b := gvsyPort{NS: "gvsy-tcp-b", Host: "gvsytb0", Inner: "gvsytb1", Addr: "10.231.7.2/24"}
	gvsyTopology(t, a, b)

	gvsyFreeBridgeName("gvsytcp")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvsytcp")
	g.MustVsctl("add-port", "gvsytcp", a.Host)
	g.MustVsctl("add-port", "gvsytcp", b.Host)
	gvsyRequirePortUp(t, g.MustVsctl, a.Host)
	gvsyRequirePortUp(t, g.MustVsctl, b.Host)

	gvsyWaitPing(t, a.NS, "10.231.7.2")
	t.Run("iperf3", func(t *testing.T) { gvsyIperf(t, a.NS, b.NS, "10.231.7.2") })
	t.Run("nc-sha256", func(t *testing.T) { gvsyNetcatTransfer(t, a.NS, b.NS, "10.231.7.2") })
}

// gvsyIperfResult is the part of iperf3's JSON report the test reads.
type gvsyIperfResult struct {
	Error string `json:"error"`
	End   struct {
		SumSent struct {
			Bytes       float64 `json:"bytes"`
			Retransmits float64 `json:"retransmits"`
		} `json:"sum_sent"`
		SumReceived struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
	} `json:"end"`
}

// gvsyIperf runs a 2 s iperf3 test from client namespace to server.
func gvsyIperf(t *testing.T, clientNS, serverNS, serverAddr string) {
	server := gvsyStart(t, nil, gvsyInNS(serverNS, "iperf3", "-s", "-1", "-B", serverAddr, "-p", "5201")...)
	gvsyWaitListening(t, serverNS, 5201)
	ctx, cancel := context.WithTimeout(context.Background(), gvsyCmdTimeout)
	defer cancel()
	args := gvsyInNS(clientNS, "iperf3", "-c", serverAddr, "-p", "5201", "-t", "2", "-J", "--connect-timeout", "3000")
	out, runErr := exec.CommandContext(ctx, args[0], args[1:]...).Output()
	var res gvsyIperfResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("iperf3 client (%v) printed no JSON report: %v\n%s", runErr, err, out)
	}
	if res.Error != "" || runErr != nil {
		t.Fatalf("iperf3 client failed (exit status: %v): %s", runErr, res.Error)
	}
	if err := server.Wait(10 * time.Second); err != nil {
		t.Errorf("iperf3 server: %v\n%s", err, server.out.String())
	}
	recv := res.End.SumReceived
	t.Logf("iperf3: %.0f bytes received, %.1f Mbit/s, %.0f retransmits", recv.Bytes, recv.BitsPerSecond/1e6, res.End.SumSent.Retransmits)
	if recv.Bytes <= 0 || recv.BitsPerSecond <= 0 {
		t.Fatalf("iperf3 moved no data: %.0f bytes at %.0f bit/s", recv.Bytes, recv.BitsPerSecond)
	}
}

// gvsyNetcatTransfer sends 8 MiB of fixed pseudo-random data over TCP
// with nc and compares the SHA-256 of what arrived with what was sent.
func gvsyNetcatTransfer(t *testing.T, clientNS, serverNS, serverAddr string) {
	dir := t.TempDir()
	data := make([]byte, 8<<20)
	rng := rand.NewChaCha8([32]byte{'g', 'v', 's', 'y'})
	_, _ = rng.Read(data)
	sentPath, recvPath := filepath.Join(dir, "sent"), filepath.Join(dir, "received")
	if err := os.WriteFile(sentPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	recvFile, err := os.Create(recvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer recvFile.Close()
	server := gvsyStart(t, recvFile, gvsyInNS(serverNS, "nc", "-l", serverAddr, "5202")...)
	gvsyWaitListening(t, serverNS, 5202)

	sent, err := os.Open(sentPath)
	if err != nil {
		t.Fatal(err)
	}
	defer sent.Close()
	ctx, cancel := context.WithTimeout(context.Background(), gvsyCmdTimeout)
	defer cancel()
	args := gvsyInNS(clientNS, "nc", "-N", "-w", "10", serverAddr, "5202")
	client := exec.CommandContext(ctx, args[0], args[1:]...)
	client.Stdin = sent
	if out, err := client.CombinedOutput(); err != nil {
		t.Fatalf("nc client: %v\n%s", err, out)
	}
	if err := server.Wait(15 * time.Second); err != nil {
		t.Fatalf("nc server: %v\n%s", err, server.out.String())
	}
	got, err := os.ReadFile(recvPath)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("TCP transfer corrupted: sent %d bytes sha256 %x, received %d bytes sha256 %x",
			len(data), sha256.Sum256(data), len(got), sha256.Sum256(got))
	}
}

// TestSystemPortMissingDevice adds a system port whose device does not
// exist: the switch must say so in Interface.error, give it ofport -1, and
// ovs-vsctl (which waits for the switch by default) must show the error.
// OVS 3.1 does exactly this and ovs-vsctl still exits with status 0; the
// expected texts are the ones it produces.
func TestSystemPortMissingDevice(t *testing.T) {
	gvsyRequireRoot(t) // the bridge's own port is a TAP device
	requireTool(t, "ovs-vsctl")
	const dev = "gvsynosuch0"
	if _, err := os.Stat("/sys/class/net/" + dev); err == nil {
		t.Fatalf("%s exists on this host; the test needs it missing", dev)
	}
	gvsyFreeBridgeName("gvsymiss")
	g := StartGvsd(t)
	g.MustVsctl("add-br", "gvsymiss")
	out, errOut, err := g.Vsctl("add-port", "gvsymiss", dev)
	t.Logf("ovs-vsctl add-port: err=%v\nstdout: %s\nstderr: %s", err, out, errOut)
	if err != nil {
		t.Errorf("ovs-vsctl add-port failed (%v); OVS reports the error and exits 0", err)
	}
	if want := "Error detected while setting up '" + dev + "'"; !strings.Contains(errOut, want) {
		t.Errorf("ovs-vsctl add-port stderr lacks %q:\n%s", want, errOut)
	}
	errText := strings.TrimSpace(g.MustVsctl("get", "interface", dev, "error"))
	if errText == "[]" || errText == `""` || errText == "" {
		t.Errorf("Interface %s error is empty: %q", dev, errText)
	} else if want := `"could not open network device ` + dev + ` (No such device)"`; errText != want {
		t.Errorf("Interface %s error = %s, want OVS's %s", dev, errText, want)
	}
	if ofport := strings.TrimSpace(g.MustVsctl("get", "interface", dev, "ofport")); ofport != "-1" {
		t.Errorf("Interface %s ofport = %s, want -1", dev, ofport)
	}
	// The bridge still works: its own port is set up.
	gvsyRequirePortUp(t, g.MustVsctl, "gvsymiss")
}
