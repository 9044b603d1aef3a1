package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// This file checks NAT and the FTP and TFTP ALGs through real programs
// (nc, pyftpdlib and Python's ftplib, tftpd-hpa and tftp-hpa) on a lab
// of its own, whose names start with "gvnt": an inside host gvntI
// (10.1.1.1) and an outside host gvntO (10.1.1.2) on one bridge, with
// flows in the style of OVS's NAT tutorial. docs/GUIDE.md walks through
// the same flows.

// gvntLab is the NAT lab.
type gvntLab struct {
	*netLab
	t          *testing.T
	g          *Gvsd
	macI, macO string
	dir        string // the servers' files
	file       []byte // dir/data.bin
}

// gvntSNATRange is the SNAT range of the flows below.
const gvntSNATRange = "10.1.1.240-10.1.1.250"

func gvntSetup(t *testing.T) *gvntLab {
	t.Helper()
	requireTool(t, "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
	lab := newNetLab(t)
	g := StartGvsd(t)
	lab.netns("gvntI")
	lab.netns("gvntO")
	lab.veth("gvnti0", "gvnti1", "gvntI", "10.1.1.1/24")
	lab.veth("gvnto0", "gvnto1", "gvntO", "10.1.1.2/24")
	for _, ns := range []string{"gvntI", "gvntO"} {
		lab.mustExec(ns, "ip", "link", "set", "lo", "up")
	}
	g.MustVsctl("add-br", "gvntbr", "--", "add-port", "gvntbr", "gvnti0", "--", "add-port", "gvntbr", "gvnto0")
	l := &gvntLab{netLab: lab, t: t, g: g, macI: lab.mac("gvntI", "gvnti1"), macO: lab.mac("gvntO", "gvnto1"), dir: t.TempDir()}
	// The outside answers the SNAT addresses at the inside's MAC, and the
	// inside reaches the virtual address 10.1.1.100 at the outside's, as
	// in OVS's NAT tutorial (no router in between).
	for i := 240; i <= 250; i++ {
		lab.mustExec("gvntO", "ip", "neigh", "replace", fmt.Sprintf("10.1.1.%d", i), "lladdr", l.macI, "dev", "gvnto1", "nud", "permanent")
	}
	lab.mustExec("gvntI", "ip", "neigh", "replace", "10.1.1.100", "lladdr", l.macO, "dev", "gvnti1", "nud", "permanent")
	l.file = make([]byte, 300_000)
	_, _ = rand.Read(l.file)
	if err := os.WriteFile(filepath.Join(l.dir, "data.bin"), l.file, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(l.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return l
}

// flows replaces the bridge's flows and empties the connection table.
func (l *gvntLab) flows(fs ...string) {
	l.t.Helper()
	gvofMust(l.t, l.g, nil, "del-flows", "gvntbr")
	l.appctl("dpctl/flush-conntrack")
	for _, f := range append([]string{"priority=100,arp,actions=NORMAL"}, fs...) {
		gvofMust(l.t, l.g, nil, "add-flow", "gvntbr", f)
	}
}

func (l *gvntLab) appctl(args ...string) string {
	l.t.Helper()
	out, errOut, err := l.g.Run("ovs-appctl", args...)
	if err != nil {
		l.t.Fatalf("ovs-appctl %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// gvntSNATFlows is OVS's NAT tutorial for SNAT, with the data
// connections an ALG expects let through: every IP packet is tracked
// (and translated back) first; new connections from the inside are
// committed with SNAT (alg names the ALG for port 21 or 69, "" none);
// the outside gets in only for established and related connections.
func gvntSNATFlows(alg string) []string {
	ftp, tftp := "", ""
	if alg != "" {
		ftp, tftp = ",alg=ftp", ",alg=tftp"
	}
	return []string{
		"table=0,priority=50,ip,ct_state=-trk,actions=ct(table=1,nat)",
		"table=1,priority=60,tcp,tp_dst=21,in_port=gvnti0,ct_state=+trk+new-rel,actions=ct(commit,nat(src=" + gvntSNATRange + ")" + ftp + "),gvnto0",
		"table=1,priority=60,udp,tp_dst=69,in_port=gvnti0,ct_state=+trk+new-rel,actions=ct(commit,nat(src=" + gvntSNATRange + ")" + tftp + "),gvnto0",
		"table=1,priority=50,ip,in_port=gvnti0,ct_state=+trk+new-rel,actions=ct(commit,nat(src=" + gvntSNATRange + ")),gvnto0",
		"table=1,priority=50,ip,in_port=gvnti0,ct_state=+trk+new+rel,actions=ct(commit,nat),gvnto0",
		"table=1,priority=50,ip,in_port=gvnto0,ct_state=+trk+new+rel,actions=ct(commit,nat),gvnti0",
		"table=1,priority=40,ip,in_port=gvnti0,ct_state=+trk+est,actions=gvnto0",
		"table=1,priority=40,ip,in_port=gvnto0,ct_state=+trk+est,actions=gvnti0",
		"table=1,priority=30,ip,in_port=gvnti0,ct_state=+trk+rel,actions=gvnto0",
		"table=1,priority=30,ip,in_port=gvnto0,ct_state=+trk+rel,actions=gvnti0",
	}
}

// gvntDNATFlows: the inside reaches the virtual address 10.1.1.100 only
// (port 8080 goes to the outside's port 80, FTP to its port 21), and
// related connections; the outside answers established ones.
func gvntDNATFlows(alg string) []string {
	ftp := ""
	if alg != "" {
		ftp = ",alg=ftp"
	}
	return []string{
		"table=0,priority=50,ip,ct_state=-trk,actions=ct(table=1,nat)",
		"table=1,priority=60,tcp,nw_dst=10.1.1.100,tp_dst=8080,in_port=gvnti0,ct_state=+trk+new-rel,actions=ct(commit,nat(dst=10.1.1.2:80)),gvnto0",
		"table=1,priority=60,tcp,nw_dst=10.1.1.100,tp_dst=21,in_port=gvnti0,ct_state=+trk+new-rel,actions=ct(commit,nat(dst=10.1.1.2)" + ftp + "),gvnto0",
		"table=1,priority=50,ip,in_port=gvnti0,ct_state=+trk+new+rel,actions=ct(commit,nat),gvnto0",
		"table=1,priority=40,ip,in_port=gvnti0,ct_state=+trk+est,actions=gvnto0",
		"table=1,priority=40,ip,in_port=gvnto0,ct_state=+trk+est,actions=gvnti0",
	}
}

// gvntServe starts a server in ns until the test ends.
func (l *gvntLab) serve(ns string, args ...string) *lockedBuffer {
	l.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	// A server that forks (in.tftpd) is ended with its children: they
	// hold its output open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		l.t.Fatal(err)
	}
	l.t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	return &out
}

// waitListen waits until something listens on port (proto "t" or "u")
// in ns.
func (l *gvntLab) waitListen(ns, proto string, port int) {
	l.t.Helper()
	for range 50 {
		out, _ := l.exec(ns, "ss", "-Hln"+proto, fmt.Sprintf("sport = :%d", port))
		if strings.TrimSpace(out) != "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.t.Fatalf("nothing listens on %s port %d in %s", proto, port, ns)
}

// gvntPeerRE reads the client's address that nc -v prints.
var gvntPeerRE = regexp.MustCompile(`Connection received on (\S+) (\d+)`)

// ncPeer runs nc -l in the outside on port, connects from the inside
// to addr:cport and returns the address the listener saw and what it
// received.
func (l *gvntLab) ncPeer(port int, addr string, cport int) (peer, got string) {
	l.t.Helper()
	out := l.serve("gvntO", "nc", "-n", "-v", "-l", "-w", "5", "10.1.1.2", fmt.Sprint(port))
	l.waitListen("gvntO", "t", port)
	if b, err := l.exec("gvntI", "sh", "-c", fmt.Sprintf("printf %%s hello | nc -N -w 3 %s %d", addr, cport)); err != nil {
		l.t.Logf("nc client: %v: %s", err, b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "hello") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	m := gvntPeerRE.FindStringSubmatch(out.String())
	if m == nil {
		return "", out.String()
	}
	return m[1], out.String()
}

// TestConntrackNATRealTCP: SNAT as in OVS's NAT tutorial, the server on
// the outside sees an address of the SNAT range; DNAT to a backend, the
// client reaches the virtual address and the backend sees the client.
func TestConntrackNATRealTCP(t *testing.T) {
	requireTool(t, "nc", "ss")
	l := gvntSetup(t)
	l.flows(gvntSNATFlows("")...)
	peer, got := l.ncPeer(5001, "10.1.1.2", 5001)
	if !regexp.MustCompile(`^10\.1\.1\.(24[0-9]|250)$`).MatchString(peer) || !strings.Contains(got, "hello") {
		t.Fatalf("through SNAT the server saw %q and got %q, want an address of %s and hello", peer, got, gvntSNATRange)
	}
	if ct := l.appctl("dpctl/dump-conntrack"); !strings.Contains(ct, "orig=(src=10.1.1.1,dst=10.1.1.2,") || !strings.Contains(ct, "reply=(src=10.1.1.2,dst="+peer+",") {
		t.Errorf("dump-conntrack does not show the SNAT connection to %s:\n%s", peer, ct)
	}

	l.flows(gvntDNATFlows("")...)
	peer, got = l.ncPeer(80, "10.1.1.100", 8080)
	if peer != "10.1.1.1" || !strings.Contains(got, "hello") {
		t.Fatalf("through DNAT the backend saw %q and got %q, want 10.1.1.1 and hello", peer, got)
	}
	if ct := l.appctl("dpctl/dump-conntrack"); !strings.Contains(ct, "orig=(src=10.1.1.1,dst=10.1.1.100,sport=") || !strings.Contains(ct, "reply=(src=10.1.1.2,dst=10.1.1.1,sport=80,") {
		t.Errorf("dump-conntrack does not show the DNAT connection:\n%s", ct)
	}
}

// gvntFTPServer is pyftpdlib serving a directory to anonymous users. It
// accepts a PORT address other than the client's (permit_foreign_addresses):
// without the ALG, an active-mode data connection is then stopped by the
// flows, not by the server.
const gvntFTPServer = `import sys, logging
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
logging.basicConfig(level=logging.DEBUG)
a = DummyAuthorizer()
a.add_anonymous(sys.argv[3], perm="elr")
class H(FTPHandler):
    permit_foreign_addresses = True
    passive_ports = range(30000, 30100)
    timeout = 30
H.authorizer = a
FTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
`

// gvntFTPClient downloads data.bin in passive or active mode and prints
// its SHA-256 and length. It trusts the address of a 227 reply (Python
// ignores it by default), so that a rewrite the ALG gets wrong shows.
const gvntFTPClient = `import ftplib, sys, hashlib
ftplib.FTP.trust_server_pasv_ipv4_address = True
f = ftplib.FTP(timeout=6)
f.connect(sys.argv[1], 21)
f.login()
f.set_pasv(sys.argv[2] == "passive")
buf = bytearray()
try:
    f.retrbinary("RETR data.bin", buf.extend)
except Exception as e:
    print("failed", type(e).__name__, e)
    sys.exit(1)
print(hashlib.sha256(buf).hexdigest(), len(buf))
f.quit()
`

func (l *gvntLab) want() string {
	sum := sha256.Sum256(l.file)
	return fmt.Sprintf("%s %d\n", hex.EncodeToString(sum[:]), len(l.file))
}

// ftpGet runs the FTP client from the inside against addr.
func (l *gvntLab) ftpGet(addr, mode string) (string, error) {
	return l.exec("gvntI", gvctScapy, "-c", gvntFTPClient, addr, mode)
}

// TestConntrackFTPALG: an FTP download through SNAT with alg=ftp, in
// passive and active mode, arrives intact; the PORT command the server
// gets names the SNAT address. Without alg=ftp the active-mode data
// connection (opened from the outside) is stopped by the flows. Through
// DNAT, the 227 reply the client gets names the virtual address.
func TestConntrackFTPALG(t *testing.T) {
	requireTool(t, "ss")
	if err := exec.Command(gvctScapy, "-c", "import pyftpdlib").Run(); err != nil {
		t.Skip("python3-pyftpdlib not installed (scripts/test.sh installs it)")
	}
	l := gvntSetup(t)
	log := l.serve("gvntO", gvctScapy, "-c", gvntFTPServer, "10.1.1.2", "21", l.dir)
	l.waitListen("gvntO", "t", 21)

	l.flows(gvntSNATFlows("ftp")...)
	for _, mode := range []string{"passive", "active"} {
		out, err := l.ftpGet("10.1.1.2", mode)
		if err != nil || out != l.want() {
			t.Fatalf("%s FTP through SNAT with alg=ftp: %v\n%s\nserver log:\n%s", mode, err, out, log.String())
		}
	}
	if !regexp.MustCompile(`PORT 10,1,1,(24\d|250),\d+,\d+`).MatchString(log.String()) {
		t.Errorf("the server did not get a PORT naming an SNAT address:\n%s", log.String())
	}
	if ct := l.appctl("dpctl/dump-conntrack"); !regexp.MustCompile(`orig=\(src=10\.1\.1\.2,dst=10\.1\.1\.2[45]\d,sport=\d+,dport=\d+\),reply=\(src=10\.1\.1\.1,dst=10\.1\.1\.2,`).MatchString(ct) {
		t.Errorf("dump-conntrack shows no active-mode data connection from the server, translated to the inside:\n%s", ct)
	}

	l.flows(gvntSNATFlows("")...)
	if out, err := l.ftpGet("10.1.1.2", "active"); err == nil || !strings.Contains(out, "failed") {
		t.Fatalf("active FTP through SNAT without alg=ftp worked: %v\n%s", err, out)
	}
	if out, err := l.ftpGet("10.1.1.2", "passive"); err != nil || out != l.want() {
		t.Fatalf("passive FTP through SNAT without alg=ftp (the client opens the data connection): %v\n%s", err, out)
	}

	l.flows(gvntDNATFlows("ftp")...)
	out, err := l.ftpGet("10.1.1.100", "passive")
	if err != nil || out != l.want() {
		t.Fatalf("passive FTP through DNAT with alg=ftp: %v\n%s\nserver log:\n%s", err, out, log.String())
	}
	l.flows(gvntDNATFlows("")...)
	if out, err := l.ftpGet("10.1.1.100", "passive"); err == nil || !strings.Contains(out, "failed") {
		t.Fatalf("passive FTP through DNAT without alg=ftp worked (the 227 names the backend, which the flows do not let the client reach): %v\n%s", err, out)
	}
}

// TestConntrackTFTPALG: a TFTP download through SNAT with alg=tftp
// arrives intact (the server answers from a new port: a related
// connection); without alg=tftp the answer is stopped by the flows.
func TestConntrackTFTPALG(t *testing.T) {
	requireTool(t, "in.tftpd", "tftp", "ss")
	l := gvntSetup(t)
	l.serve("gvntO", "in.tftpd", "-L", "-s", l.dir, "-a", "10.1.1.2:69")
	l.waitListen("gvntO", "u", 69)
	get := func(limit string) ([]byte, error) {
		dst := filepath.Join(t.TempDir(), "got.bin")
		out, err := l.exec("gvntI", "timeout", limit, "tftp", "-m", "binary", "10.1.1.2", "-c", "get", "data.bin", dst)
		b, rerr := os.ReadFile(dst)
		if err == nil {
			err = rerr
		}
		if err != nil {
			err = fmt.Errorf("%v: %s", err, out)
		}
		return b, err
	}
	l.flows(gvntSNATFlows("tftp")...)
	if b, err := get("15"); err != nil || !bytes.Equal(b, l.file) {
		t.Fatalf("TFTP through SNAT with alg=tftp: %v (%d bytes of %d)", err, len(b), len(l.file))
	}
	if ct := l.appctl("dpctl/dump-conntrack"); !regexp.MustCompile(`udp,orig=\(src=10\.1\.1\.2,dst=10\.1\.1\.2[45]\d,sport=\d+,dport=\d+\),reply=\(src=10\.1\.1\.1,dst=10\.1\.1\.2,`).MatchString(ct) {
		t.Errorf("dump-conntrack shows no TFTP data connection translated to the inside:\n%s", ct)
	}
	l.flows(gvntSNATFlows("")...)
	if b, err := get("5"); err == nil && bytes.Equal(b, l.file) {
		t.Fatal("TFTP through SNAT without alg=tftp worked")
	}
}

// gvntV6 is the IPv6 form of a v4 flow set: ipv6, tcp6 and udp6
// matches, and the SNAT range fd00::f0.
func gvntV6(fs []string) []string {
	r := strings.NewReplacer(",ip,", ",ipv6,", ",tcp,", ",tcp6,", ",udp,", ",udp6,", gvntSNATRange, "fd00::f0")
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = r.Replace(f)
	}
	return out
}

// TestConntrackFTPALGIPv6: FTP over IPv6 through SNAT with alg=ftp:
// Python's ftplib announces with EPRT (active) and the server with EPSV
// (passive); the EPRT address is rewritten to the SNAT address, whose
// text is longer, so the control connection's sequence numbers are
// corrected. Without alg=ftp the active download fails.
func TestConntrackFTPALGIPv6(t *testing.T) {
	requireTool(t, "ss")
	if err := exec.Command(gvctScapy, "-c", "import pyftpdlib").Run(); err != nil {
		t.Skip("python3-pyftpdlib not installed (scripts/test.sh installs it)")
	}
	l := gvntSetup(t)
	for _, h := range [][3]string{{"gvntI", "gvnti1", "fd00::1/64"}, {"gvntO", "gvnto1", "fd00::2/64"}} {
		l.mustExec(h[0], "sysctl", "-q", "-w", "net/ipv6/conf/"+h[1]+"/disable_ipv6=0")
		l.mustExec(h[0], "ip", "-6", "addr", "add", h[2], "dev", h[1], "nodad")
	}
	// Static neighbours: the flows below carry no neighbour discovery.
	l.mustExec("gvntI", "ip", "-6", "neigh", "replace", "fd00::2", "lladdr", l.macO, "dev", "gvnti1", "nud", "permanent")
	l.mustExec("gvntO", "ip", "-6", "neigh", "replace", "fd00::f0", "lladdr", l.macI, "dev", "gvnto1", "nud", "permanent")
	log := l.serve("gvntO", gvctScapy, "-c", gvntFTPServer, "fd00::2", "21", l.dir)
	l.waitListen("gvntO", "t", 21)
	l.flows(gvntV6(gvntSNATFlows("ftp"))...)
	for _, mode := range []string{"passive", "active"} {
		out, err := l.ftpGet("fd00::2", mode)
		if err != nil || out != l.want() {
			t.Fatalf("%s FTP over IPv6 through SNAT with alg=ftp: %v\n%s\nserver log:\n%s", mode, err, out, log.String())
		}
	}
	if !strings.Contains(log.String(), "EPRT |2|fd00::f0|") {
		t.Errorf("the server did not get an EPRT naming the SNAT address:\n%s", log.String())
	}
	l.flows(gvntV6(gvntSNATFlows(""))...)
	if out, err := l.ftpGet("fd00::2", "active"); err == nil || !strings.Contains(out, "failed") {
		t.Fatalf("active FTP over IPv6 through SNAT without alg=ftp worked: %v\n%s", err, out)
	}
}
