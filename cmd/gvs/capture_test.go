package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"gvs/internal/netdev"
	"gvs/internal/ovsdb"
)

func TestParseCaptureArgs(t *testing.T) {
	good := []struct {
		args []string
		want captureOptions
	}{
		{[]string{"br0", "--port", "p1"},
			captureOptions{bridge: "br0", port: "p1", direction: "both"}},
		{[]string{"--port=p1", "br-int", "-w", "-", "-c", "10"},
			captureOptions{bridge: "br-int", port: "p1", direction: "both", output: "-", count: 10}},
		{[]string{"br0", "--port", "p1", "--direction", "in", "--vlan", "10,20", "--filter", "tcp,tp_dst=80", "--snaplen", "96", "-w", "/tmp/x.pcapng"},
			captureOptions{bridge: "br0", port: "p1", direction: "in", vlans: []int{10, 20}, filter: "tcp,tp_dst=80", snaplen: 96, output: "/tmp/x.pcapng"}},
		{[]string{"-port", "p1", "-direction=out", "br0", "-vlan", "0"},
			captureOptions{bridge: "br0", port: "p1", direction: "out", vlans: []int{0}}},
	}
	for _, g := range good {
		got, err := parseCaptureArgs(g.args)
		if err != nil || !reflect.DeepEqual(got, g.want) {
			t.Errorf("parse %q:\n got %+v, %v\nwant %+v", g.args, got, err, g.want)
		}
	}
	bad := []struct {
		args []string
		want string
	}{
		{[]string{"--port", "p1"}, "one BRIDGE"},
		{[]string{"br0", "br1", "--port", "p1"}, "one BRIDGE"},
		{[]string{"br0"}, "--port PORT is required"},
		{[]string{"br0", "--port", "p1", "--direction", "sideways"}, "--direction"},
		{[]string{"br0", "--port", "p1", "--snaplen", "10"}, "--snaplen"},
		{[]string{"br0", "--port", "p1", "--snaplen", "70000"}, "--snaplen"},
		{[]string{"br0", "--port", "p1", "--vlan", "4096"}, "--vlan"},
		{[]string{"br0", "--port", "p1", "--vlan", "1,x"}, "--vlan"},
		{[]string{"br0", "--port", "p1", "-c", "-1"}, "-c"},
		{[]string{"br0", "--port", "p1", "--bogus"}, "bogus"},
		{[]string{"br0", "--port"}, "port"},
	}
	for _, b := range bad {
		_, err := parseCaptureArgs(b.args)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("parse %q: error %v, want one mentioning %q", b.args, err, b.want)
		}
	}
	if _, err := parseCaptureArgs([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestResolveOutput(t *testing.T) {
	cases := []struct {
		output   string
		terminal bool
		want     string
		fails    bool
	}{
		{"", false, "-", false},
		{"", true, "", true},
		{"-", true, "-", false},
		{"x.pcapng", true, "x.pcapng", false},
	}
	for _, c := range cases {
		got, err := resolveOutput(captureOptions{output: c.output}, c.terminal)
		if got != c.want || (err != nil) != c.fails {
			t.Errorf("output %q terminal %v: got %q, %v", c.output, c.terminal, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "-w FILE") {
			t.Errorf("the refusal should say how to fix it: %v", err)
		}
	}
}

// sameJSON compares a value with a JSON text, after a round trip through
// encoding/json so that map order and number types do not matter.
func sameJSON(t *testing.T, what string, got any, want string) {
	t.Helper()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expected JSON for %s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got %s\nwant %s", what, b, want)
	}
}

func TestCaptureInsertOps(t *testing.T) {
	target := captureTarget{bridgeUUID: "b0000000-0000-0000-0000-000000000001", portUUID: "a0000000-0000-0000-0000-000000000002"}
	names := namesForPID(4321)
	o := captureOptions{bridge: "br0", port: "p1", direction: "both", vlans: []int{10, 20}, filter: "icmp", snaplen: 128}
	sameJSON(t, "insert ops", captureInsertOps(o, target, names, "/tmp/d/capture.pcapng"), `[
	  {"op":"wait","table":"Port","timeout":0,"until":"==",
	   "where":[["_uuid","==",["uuid","a0000000-0000-0000-0000-000000000002"]]],
	   "columns":["name"],"rows":[{"name":"p1"}]},
	  {"op":"wait","table":"Bridge","timeout":0,"until":"==",
	   "where":[["_uuid","==",["uuid","b0000000-0000-0000-0000-000000000001"]],
	            ["ports","includes",["uuid","a0000000-0000-0000-0000-000000000002"]]],
	   "columns":["name"],"rows":[{"name":"br0"}]},
	  {"op":"insert","table":"Interface","uuid-name":"gvscapiface",
	   "row":{"name":"gvscap4321","type":"pcap","options":["map",[["file","/tmp/d/capture.pcapng"]]]}},
	  {"op":"insert","table":"Port","uuid-name":"gvscapport",
	   "row":{"name":"gvscap4321","interfaces":["named-uuid","gvscapiface"]}},
	  {"op":"insert","table":"Mirror","uuid-name":"gvscapmirror",
	   "row":{"name":"gvs-capture-4321",
	          "select_src_port":["set",[["uuid","a0000000-0000-0000-0000-000000000002"]]],
	          "select_dst_port":["set",[["uuid","a0000000-0000-0000-0000-000000000002"]]],
	          "select_vlan":["set",[10,20]],
	          "filter":"icmp","snaplen":128,
	          "output_port":["named-uuid","gvscapport"],
	          "external_ids":["map",[["gvs-capture-pid","4321"]]]}},
	  {"op":"mutate","table":"Bridge",
	   "where":[["_uuid","==",["uuid","b0000000-0000-0000-0000-000000000001"]]],
	   "mutations":[["ports","insert",["set",[["named-uuid","gvscapport"]]]],
	                ["mirrors","insert",["set",[["named-uuid","gvscapmirror"]]]]]},
	  {"op":"comment","comment":"gvs capture: mirror port p1 of bridge br0"}
	]`)
	if len(names.iface) > 15 || len(namesForPID(4194304).iface) > 15 {
		t.Errorf("interface name %q is too long for a device name", namesForPID(4194304).iface)
	}

	// Direction picks the select columns; unset options stay out.
	for dir, want := range map[string][2]bool{"in": {true, false}, "out": {false, true}} {
		ops := captureInsertOps(captureOptions{bridge: "br0", port: "p1", direction: dir}, target, names, "/f")
		row := ops[capMirrorOp].(map[string]any)["row"].(map[string]any)
		_, src := row["select_src_port"]
		_, dst := row["select_dst_port"]
		if src != want[0] || dst != want[1] {
			t.Errorf("direction %s: select_src_port %v select_dst_port %v, want %v", dir, src, dst, want)
		}
		for _, col := range []string{"select_vlan", "filter", "snaplen"} {
			if _, ok := row[col]; ok {
				t.Errorf("direction %s: column %s set without its option", dir, col)
			}
		}
	}
	if ops := captureInsertOps(o, target, names, "/f"); ops[capPortOp].(map[string]any)["table"] != "Port" {
		t.Error("capPortOp does not point at the Port insert")
	}
}

func TestCaptureCleanupOps(t *testing.T) {
	sameJSON(t, "cleanup ops", captureCleanupOps("b1", "p2", "m3"), `[
	  {"op":"mutate","table":"Bridge","where":[["_uuid","==",["uuid","b1"]]],
	   "mutations":[["mirrors","delete",["set",[["uuid","m3"]]]],
	                ["ports","delete",["set",[["uuid","p2"]]]]]},
	  {"op":"comment","comment":"gvs capture: done"}
	]`)
}

func TestTransactResults(t *testing.T) {
	ops := []any{map[string]any{"op": "insert", "table": "Mirror"}, map[string]any{"op": "mutate", "table": "Bridge"}}
	ok := []any{map[string]any{"uuid": []any{"uuid", "u1"}}, map[string]any{"count": 1}}
	res, err := transactResults(ok, ops)
	if err != nil || uuidOf(res[0]["uuid"]) != "u1" {
		t.Errorf("good reply: %v %v", res, err)
	}
	opFailed := []any{map[string]any{"uuid": []any{"uuid", "u1"}}, map[string]any{"error": "constraint violation", "details": "bad column"}}
	if _, err := transactResults(opFailed, ops); err == nil || err.Error() != "mutate Bridge failed: constraint violation: bad column" {
		t.Errorf("failed op: %v", err)
	}
	commitFailed := append(ok, map[string]any{"error": "referential integrity violation", "details": "dangling"})
	if _, err := transactResults(commitFailed, ops); err == nil || !strings.Contains(err.Error(), "referential integrity violation: dangling") {
		t.Errorf("failed commit: %v", err)
	}
	if _, err := transactResults(ok[:1], ops); err == nil {
		t.Error("a short reply was accepted")
	}
	if _, err := transactResults("nonsense", ops); err == nil {
		t.Error("a non-array reply was accepted")
	}
}

// writePcapng records frames with the real pcap port into a file and
// returns its bytes.
func writePcapng(t *testing.T, frames [][]byte, origs []int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.pcapng")
	dev, err := netdev.Open(netdev.Config{Name: "cap", Type: "pcap", Options: map[string]string{"file": path}, CaptureDir: filepath.Dir(path)})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.(netdev.OrigLenWriter).WriteBatchOrig(frames, origs); err != nil {
		t.Fatal(err)
	}
	dev.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCopyPcapng(t *testing.T) {
	var frames [][]byte
	var origs []int
	for i := range 10 {
		frames = append(frames, bytes.Repeat([]byte{byte(i)}, 60+i))
		origs = append(origs, 1000)
	}
	in := writePcapng(t, frames, origs)

	var out bytes.Buffer
	var count captureCount
	if err := copyPcapng(&out, bytes.NewReader(in), 0, &count); err != io.EOF {
		t.Fatalf("copy to the end: %v, want io.EOF", err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Error("a whole copy differs from its input")
	}
	if count.packets.Load() != 10 || count.bytes.Load() != 10000 {
		t.Errorf("count %s, want 10 packets of 1000 bytes", count.String())
	}

	out.Reset()
	count = captureCount{}
	if err := copyPcapng(&out, bytes.NewReader(in), 4, &count); err != nil {
		t.Fatalf("copy with a limit: %v", err)
	}
	ng, err := pcapgo.NewNgReader(bytes.NewReader(out.Bytes()), pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for ; ; n++ {
		data, ci, err := ng.ReadPacketData()
		if err != nil {
			break
		}
		if !bytes.Equal(data, frames[n]) || ci.Length != 1000 {
			t.Errorf("packet %d differs after the copy", n)
		}
	}
	if n != 4 || count.packets.Load() != 4 {
		t.Errorf("-c 4 copied %d packets (counted %d)", n, count.packets.Load())
	}

	shbLen := binary.LittleEndian.Uint32(in[4:])
	hugeBlock := append(append([]byte(nil), in[:shbLen]...), 6, 0, 0, 0, 0xfc, 0xff, 0xff, 0x7f, 0, 0, 0, 0)
	for _, bad := range [][]byte{in[24:], in[:len(in)-3], hugeBlock} {
		if err := copyPcapng(io.Discard, bytes.NewReader(bad), 0, &captureCount{}); err == nil || err == io.EOF {
			t.Errorf("a broken stream (%d bytes) was copied without error", len(bad))
		}
	}
}

// TestPcapngBigEndian checks that a stream from a big-endian writer is
// split and counted too.
func TestPcapngBigEndian(t *testing.T) {
	be := binary.BigEndian
	var s []byte
	block := func(typ uint32, body []byte) {
		s = be.AppendUint32(s, typ)
		s = be.AppendUint32(s, uint32(12+len(body)))
		s = append(s, body...)
		s = be.AppendUint32(s, uint32(12+len(body)))
	}
	shb := be.AppendUint32(nil, 0x1A2B3C4D)
	shb = append(shb, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	block(0x0A0D0D0A, shb)
	block(1, []byte{0, 1, 0, 0, 0, 0, 0, 0})
	epb := make([]byte, 20, 24)
	be.PutUint32(epb[12:], 4)
	be.PutUint32(epb[16:], 1514)
	block(6, append(epb, 1, 2, 3, 4))
	var count captureCount
	if err := copyPcapng(io.Discard, bufio.NewReader(bytes.NewReader(s)), 0, &count); err != io.EOF {
		t.Fatal(err)
	}
	if count.packets.Load() != 1 || count.bytes.Load() != 1514 {
		t.Errorf("big-endian stream counted as %s", count.String())
	}
}

// End-to-end tests: a real gvsd, bridges made with ovs-vsctl, and the gvs
// binary run as a user would. They need root (gvsd creates the bridges'
// internal ports) and the Open vSwitch client tools.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// binaries builds gvsd and gvs once for the package.
func binaries(t *testing.T) (gvsd, gvs string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "gvs-capture-bin-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"gvs/cmd/gvsd", "gvs/cmd/gvs"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, path.Base(pkg)), pkg).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "gvsd"), filepath.Join(buildDir, "gvs")
}

// requireE2E skips unless the test can run gvsd for real: as root, with
// ovs-vsctl installed.
func requireE2E(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: gvsd creates kernel devices for the bridges")
	}
	for _, tool := range append([]string{"ovs-vsctl"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// e2eSwitch is a gvsd in its own directory.
type e2eSwitch struct {
	t    *testing.T
	dir  string
	gvs  string
	sock string
}

func startSwitch(t *testing.T) *e2eSwitch {
	t.Helper()
	gvsdBin, gvsBin := binaries(t)
	dir := t.TempDir()
	s := &e2eSwitch{t: t, dir: dir, gvs: gvsBin, sock: filepath.Join(dir, "db.sock")}
	var log bytes.Buffer
	cmd := exec.Command(gvsdBin, "-rundir", dir, "-db", filepath.Join(dir, "conf.db"))
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("gvsd log:\n%s", log.String())
		}
	})
	waitFor(t, "gvsd's db.sock", 10*time.Second, func() bool {
		c, err := net.Dial("unix", s.sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return s
}

func (s *e2eSwitch) vsctl(args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ovs-vsctl", append([]string{"--db=unix:" + s.sock, "--timeout=20"}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("ovs-vsctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rows reads a whole table.
func (s *e2eSwitch) rows(table string) []map[string]any {
	s.t.Helper()
	c, err := ovsdb.Dial("unix:" + s.sock)
	if err != nil {
		s.t.Fatal(err)
	}
	defer c.Close()
	rows, err := c.Select("Open_vSwitch", table)
	if err != nil {
		s.t.Fatal(err)
	}
	return rows
}

func (s *e2eSwitch) rowNamed(table, name string) map[string]any {
	for _, r := range s.rows(table) {
		if str(r["name"]) == name {
			return r
		}
	}
	return nil
}

// addBridge adds a bridge and removes its kernel devices when the test
// ends, should gvsd leave them.
func (s *e2eSwitch) addBridge(name string, extra ...string) {
	s.t.Helper()
	s.t.Cleanup(func() { deleteLinkIfPresent(name) })
	s.vsctl(append([]string{"add-br", name}, extra...)...)
}

func deleteLinkIfPresent(name string) {
	if _, err := os.Stat("/sys/class/net/" + name); err == nil {
		exec.Command("ip", "link", "del", name).Run()
	}
}

// captureProc is a running `gvs capture`.
type captureProc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	exited chan struct{}
	names  captureNames
}

func (s *e2eSwitch) startCapture(args ...string) *captureProc {
	s.t.Helper()
	p := &captureProc{stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(s.gvs, append([]string{"--db", "unix:" + s.sock, "capture"}, args...)...)
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p.names = namesForPID(p.cmd.Process.Pid)
	go func() { p.cmd.Wait(); close(p.exited) }()
	s.t.Cleanup(p.stop)
	return p
}

// stop ends the capture the way a user does, so that it cleans up even
// when its test failed; SIGKILL only if that does not work.
func (p *captureProc) stop() {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

// wait waits for the capture to end by itself and returns its exit code.
func (p *captureProc) wait(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("gvs capture still running after %v; stderr:\n%s", limit, p.stderr.String())
		return -1
	}
}

// waitRunning waits until gvsd has the capture port open on the FIFO.
func (s *e2eSwitch) waitRunning(p *captureProc) {
	s.t.Helper()
	waitFor(s.t, "the capture port to come up", 10*time.Second, func() bool {
		select {
		case <-p.exited:
			s.t.Fatalf("gvs capture exited early (%v); stderr:\n%s", p.cmd.ProcessState, p.stderr.String())
		default:
		}
		ifc := s.rowNamed("Interface", p.names.iface)
		return ifc != nil && str(ifc["link_state"]) == "up"
	})
}

// checkNoCapture fails unless no capture row is left.
func (s *e2eSwitch) checkNoCapture(bridge string, wantPorts int) {
	s.t.Helper()
	if m := s.rows("Mirror"); len(m) != 0 {
		s.t.Errorf("Mirror rows left behind: %v", m)
	}
	for _, table := range []string{"Port", "Interface"} {
		for _, r := range s.rows(table) {
			if strings.HasPrefix(str(r["name"]), "gvscap") {
				s.t.Errorf("%s %s left behind", table, str(r["name"]))
			}
		}
	}
	if br := s.rowNamed("Bridge", bridge); br == nil || len(elems(br["ports"])) != wantPorts || len(elems(br["mirrors"])) != 0 {
		s.t.Errorf("bridge %s after the capture: %v, want %d ports and no mirror", bridge, br, wantPorts)
	}
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestCaptureLifecycleE2E(t *testing.T) {
	requireE2E(t)
	s := startSwitch(t)
	s.addBridge("gvcpbr0")
	s.t.Cleanup(func() { deleteLinkIfPresent("gvcpi0") })
	s.vsctl("add-port", "gvcpbr0", "gvcpi0", "--", "set", "interface", "gvcpi0", "type=internal")
	s.addBridge("gvcpbr9")

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"nobr", "--port", "gvcpi0"}, `no bridge named "nobr"`},
			{[]string{"gvcpbr0", "--port", "nop"}, `no port named "nop"`},
			{[]string{"gvcpbr9", "--port", "gvcpi0"}, "belongs to another bridge"},
			{[]string{"gvcpbr0"}, "--port PORT is required"},
		} {
			p := s.startCapture(append(c.args, "-w", filepath.Join(s.dir, "x.pcapng"))...)
			if code := p.wait(t, 10*time.Second); code == 0 || !strings.Contains(p.stderr.String(), c.want) {
				t.Errorf("gvs capture %q: exit %d, stderr %q; want failure saying %q", c.args, code, p.stderr.String(), c.want)
			}
		}
		s.checkNoCapture("gvcpbr0", 2)
	})

	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			p := s.startCapture("gvcpbr0", "--port", "gvcpi0", "--vlan", "5", "-w", filepath.Join(s.dir, "cap.pcapng"))
			s.waitRunning(p)
			fifo := s.checkCaptureRows(p, "gvcpbr0", "gvcpi0")
			p.cmd.Process.Signal(sig)
			if code := p.wait(t, 10*time.Second); code != 0 {
				t.Errorf("gvs capture ended by %v: exit %d, want 0; stderr:\n%s", sig, code, p.stderr.String())
			}
			s.checkNoCapture("gvcpbr0", 2)
			if _, err := os.Lstat(fifo); !os.IsNotExist(err) {
				t.Errorf("FIFO %s left behind (%v)", fifo, err)
			}
			if _, err := os.Stat(filepath.Join(s.dir, "cap.pcapng")); err != nil {
				t.Errorf("output file: %v", err)
			}
		})
	}
}

// checkCaptureRows checks the rows a running capture added and returns
// its FIFO, which must be in gvsd's capture directory.
func (s *e2eSwitch) checkCaptureRows(p *captureProc, bridge, port string) string {
	s.t.Helper()
	br := s.rowNamed("Bridge", bridge)
	src := s.rowNamed("Port", port)
	capPort := s.rowNamed("Port", p.names.iface)
	ifc := s.rowNamed("Interface", p.names.iface)
	if br == nil || src == nil || capPort == nil || ifc == nil {
		s.t.Fatalf("rows missing while capturing: bridge %v port %v capture port %v interface %v", br, src, capPort, ifc)
	}
	mirrors := s.rows("Mirror")
	if len(mirrors) != 1 {
		s.t.Fatalf("%d Mirror rows, want 1", len(mirrors))
	}
	m := mirrors[0]
	srcU, capU := uuidOf(src["_uuid"]), uuidOf(capPort["_uuid"])
	if str(m["name"]) != p.names.mirror || uuidOf(m["output_port"]) != capU ||
		!reflect.DeepEqual(uuidsOf(m["select_src_port"]), []string{srcU}) ||
		!reflect.DeepEqual(uuidsOf(m["select_dst_port"]), []string{srcU}) ||
		mapGet(m["external_ids"], "gvs-capture-pid") != fmt.Sprint(p.cmd.Process.Pid) {
		s.t.Errorf("mirror row %v", m)
	}
	if !slices.Contains(uuidsOf(br["mirrors"]), uuidOf(m["_uuid"])) || !slices.Contains(uuidsOf(br["ports"]), capU) {
		s.t.Errorf("bridge %v does not hold the capture's mirror and port", br)
	}
	fifo := mapGet(ifc["options"], "file")
	if str(ifc["type"]) != "pcap" || str(ifc["error"]) != "" {
		s.t.Errorf("capture interface %v", ifc)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 || st.Mode().Perm() != 0o600 {
		s.t.Errorf("options:file %q is not a FIFO of mode 0600 (%v)", fifo, err)
	}
	if want := filepath.Join(s.dir, "capture"); filepath.Dir(fifo) != want {
		s.t.Errorf("FIFO %s is not in gvsd's capture directory %s", fifo, want)
	}
	return fifo
}

func uuidsOf(v any) []string {
	var out []string
	for _, e := range elems(v) {
		out = append(out, uuidOf(e))
	}
	return out
}

// capLab is two hosts in network namespaces of their own, each on a veth
// whose other end is a system port of one gvs bridge.
type capLab struct {
	t      *testing.T
	macA   string
	macB   string
	bridge string
}

const (
	capNSA, capNSB     = "gvcp-a", "gvcp-b"
	capHostA, capHostB = "gvcpa0", "gvcpb0" // switch side
	capAddrA, capAddrB = "10.251.0.1", "10.251.0.2"
)

func labRun(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newCapLab builds the namespaces and veths, replacing leftovers of a
// crashed run (they carry this test's prefix), and removes them at the end.
func newCapLab(t *testing.T, s *e2eSwitch) *capLab {
	t.Helper()
	l := &capLab{t: t, bridge: "gvcpbr1"}
	hosts := []struct{ ns, host, inner, addr string }{
		{capNSA, capHostA, "gvcpa1", capAddrA},
		{capNSB, capHostB, "gvcpb1", capAddrB},
	}
	for _, h := range hosts {
		exec.Command("ip", "netns", "del", h.ns).Run()
		deleteLinkIfPresent(h.host)
		labRun(t, "ip", "netns", "add", h.ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", h.ns).Run() })
		labRun(t, "ip", "link", "add", h.host, "type", "veth", "peer", "name", h.inner)
		t.Cleanup(func() { deleteLinkIfPresent(h.host) })
		labRun(t, "sysctl", "-q", "-w", "net/ipv6/conf/"+h.host+"/disable_ipv6=1")
		labRun(t, "ip", "link", "set", h.host, "up")
		labRun(t, "ip", "link", "set", h.inner, "netns", h.ns)
		labRun(t, "ip", "netns", "exec", h.ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1")
		labRun(t, "ip", "netns", "exec", h.ns, "ip", "addr", "add", h.addr+"/24", "dev", h.inner)
		labRun(t, "ip", "netns", "exec", h.ns, "ip", "link", "set", h.inner, "up")
	}
	l.macA = strings.TrimSpace(labRun(t, "ip", "netns", "exec", capNSA, "cat", "/sys/class/net/gvcpa1/address"))
	l.macB = strings.TrimSpace(labRun(t, "ip", "netns", "exec", capNSB, "cat", "/sys/class/net/gvcpb1/address"))
	s.addBridge(l.bridge)
	s.vsctl("add-port", l.bridge, capHostA, "--", "add-port", l.bridge, capHostB)
	waitFor(t, "a ping through the bridge", 15*time.Second, func() bool {
		return exec.Command("ip", "netns", "exec", capNSA, "ping", "-c", "1", "-W", "1", capAddrB).Run() == nil
	})
	return l
}

// ping sends count echo requests from a to b (their answers may or may
// not come: only the frames matter).
func (l *capLab) ping(count int, size int) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exec.CommandContext(ctx, "ip", "netns", "exec", capNSA, "ping", "-c", fmt.Sprint(count),
		"-i", "0.2", "-W", "1", "-s", fmt.Sprint(size), capAddrB).Run()
}

// readCapture reads a capture file into decoded packets.
func readCapture(t *testing.T, file string) []readCaptured {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ng, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatalf("%s is not pcapng: %v", file, err)
	}
	var out []readCaptured
	for {
		data, ci, err := ng.ReadPacketData()
		if err != nil {
			return out
		}
		pk := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		out = append(out, readCaptured{pk: pk, capLen: ci.CaptureLength, origLen: ci.Length})
	}
}

type readCaptured struct {
	pk              gopacket.Packet
	capLen, origLen int
}

func (r readCaptured) ethSrc() string {
	if e, ok := r.pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet); ok {
		return e.SrcMAC.String()
	}
	return ""
}

func (r readCaptured) isICMPEcho() bool {
	ip, ok := r.pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	return ok && ip.Protocol == layers.IPProtocolICMPv4 &&
		((ip.SrcIP.String() == capAddrA && ip.DstIP.String() == capAddrB) || (ip.SrcIP.String() == capAddrB && ip.DstIP.String() == capAddrA))
}

// TestCapturePacketsE2E checks that frames reach the capture: this needs
// gvsd's mirrors to copy frames to the pcap port.
func TestCapturePacketsE2E(t *testing.T) {
	requireE2E(t, "ip", "ping")
	s := startSwitch(t)
	l := newCapLab(t, s)

	// runToCount captures until -c is reached while pings run, and
	// returns the packets.
	runToCount := func(t *testing.T, count int, pingSize int, args ...string) []readCaptured {
		t.Helper()
		file := filepath.Join(t.TempDir(), "cap.pcapng")
		p := s.startCapture(append([]string{l.bridge, "--port", capHostA, "-c", fmt.Sprint(count), "-w", file}, args...)...)
		s.waitRunning(p)
		for range 5 {
			l.ping(3, pingSize)
			select {
			case <-p.exited:
			default:
				continue
			}
			break
		}
		if code := p.wait(t, 10*time.Second); code != 0 {
			t.Fatalf("gvs capture -c %d: exit %d; stderr:\n%s", count, code, p.stderr.String())
		}
		s.checkNoCapture(l.bridge, 3)
		pkts := readCapture(t, file)
		if len(pkts) != count {
			t.Fatalf("capture holds %d packets, want %d", len(pkts), count)
		}
		return pkts
	}

	t.Run("count", func(t *testing.T) {
		pkts := runToCount(t, 4, 56)
		echoes := 0
		for _, pk := range pkts {
			if pk.isICMPEcho() {
				echoes++
			}
		}
		if echoes == 0 {
			t.Errorf("no ICMP echo between %s and %s among %d captured frames", capAddrA, capAddrB, len(pkts))
		}
	})
	t.Run("direction-in", func(t *testing.T) {
		for _, pk := range runToCount(t, 3, 56, "--direction", "in") {
			if pk.ethSrc() != l.macA {
				t.Errorf("direction in captured a frame from %s, want only frames from %s", pk.ethSrc(), l.macA)
			}
		}
	})
	t.Run("direction-out", func(t *testing.T) {
		for _, pk := range runToCount(t, 3, 56, "--direction", "out") {
			if pk.ethSrc() == l.macA {
				t.Errorf("direction out captured a frame sent by %s itself", l.macA)
			}
		}
	})
	t.Run("snaplen", func(t *testing.T) {
		echoes := 0
		for _, pk := range runToCount(t, 2, 400, "--snaplen", "64", "--direction", "in") {
			if !pk.isICMPEcho() {
				continue
			}
			echoes++
			if pk.capLen != 64 || pk.origLen != 14+20+8+400 {
				t.Errorf("snaplen 64: captured %d of %d bytes, want 64 of %d", pk.capLen, pk.origLen, 14+20+8+400)
			}
		}
		if echoes == 0 {
			t.Error("no ICMP echo captured to check the snaplen on")
		}
	})
	t.Run("tcpdump-pipe", func(t *testing.T) { captureToTcpdump(t, s, l) })
}

// captureToTcpdump pipes `gvs capture -w -` into `tcpdump -c 2`, as a user
// would, and checks that gvs capture ends (and cleans up) once tcpdump
// has exited, with no further packet to make its write fail.
func captureToTcpdump(t *testing.T, s *e2eSwitch, l *capLab) {
	requireE2E(t, "tcpdump")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	var dumped bytes.Buffer
	tcpdump := exec.Command("tcpdump", "-n", "-r", "-", "-c", "2", "icmp")
	tcpdump.Stdin, tcpdump.Stdout, tcpdump.Stderr = r, &dumped, &dumped
	if err := tcpdump.Start(); err != nil {
		t.Fatal(err)
	}
	tcpdumpDone := make(chan error, 1)
	go func() { tcpdumpDone <- tcpdump.Wait() }()
	t.Cleanup(func() { tcpdump.Process.Kill() })
	r.Close()

	p := &captureProc{stderr: &bytes.Buffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(s.gvs, "--db", "unix:"+s.sock, "capture", l.bridge, "--port", capHostA, "-w", "-")
	p.cmd.Stdout, p.cmd.Stderr = w, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p.names = namesForPID(p.cmd.Process.Pid)
	go func() { p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(p.stop)
	s.waitRunning(p)

	// One ping is one request and one reply: tcpdump -c 2 ends right
	// after them, and the link stays quiet afterwards.
	var tcpdumpErr error
	pinged := false
	for i := 0; i < 10 && !pinged; i++ {
		l.ping(1, 56)
		select {
		case tcpdumpErr = <-tcpdumpDone:
			pinged = true
		case <-time.After(time.Second):
		}
	}
	if !pinged || tcpdumpErr != nil || !strings.Contains(dumped.String(), "ICMP echo request") {
		t.Fatalf("tcpdump (done %v): %v\n%s\ngvs capture stderr:\n%s", pinged, tcpdumpErr, dumped.String(), p.stderr.String())
	}
	// Within 2 s: the kernel's next ARP probe, which would also end it
	// through EPIPE, comes about 5 s after the ping.
	t0 := time.Now()
	code := p.wait(t, 2*time.Second)
	t.Logf("gvs capture ended %v after tcpdump", time.Since(t0).Round(time.Millisecond))
	if code != 0 {
		t.Errorf("gvs capture after tcpdump left: exit %d; stderr:\n%s", code, p.stderr.String())
	}
	s.checkNoCapture(l.bridge, 3)
}

// TestCaptureDir checks where gvs capture looks for gvsd's capture
// directory: beside the database socket, else in $OVS_RUNDIR.
func TestCaptureDir(t *testing.T) {
	if got := captureDir("unix:/srv/ovs/db.sock"); got != "/srv/ovs/capture" {
		t.Errorf("unix remote: %s, want /srv/ovs/capture", got)
	}
	t.Setenv("OVS_RUNDIR", "/run/gvs-test")
	if got := captureDir("tcp:127.0.0.1:6640"); got != "/run/gvs-test/capture" {
		t.Errorf("tcp remote: %s, want /run/gvs-test/capture", got)
	}
}
