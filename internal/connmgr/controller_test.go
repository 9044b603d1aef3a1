package connmgr

import (
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
	"gvs/internal/packet"
)

// fakeController is the controller end of a connection: it says hello
// in version v and reads what the switch sends.
type fakeController struct {
	t  testing.TB
	nc net.Conn
	v  uint8
}

func acceptController(t *testing.T, ln net.Listener, v uint8) *fakeController {
	t.Helper()
	_ = ln.(*net.UnixListener).SetDeadline(time.Now().Add(10 * time.Second))
	nc, err := ln.Accept()
	if err != nil {
		t.Fatalf("the switch did not connect: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	f := &fakeController{t: t, nc: nc, v: v}
	f.send(&openflow.Hello{Versions: openflow.VersionBitmap(v)})
	if _, ok := f.next().(*openflow.Hello); !ok {
		t.Fatal("the switch's first message is not a hello")
	}
	return f
}

func (f *fakeController) send(m openflow.Message) {
	f.t.Helper()
	b, err := openflow.Encode(f.v, 1, m)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.nc.Write(b); err != nil {
		f.t.Fatal(err)
	}
}

// next returns the next message the switch sends, within 5 s.
func (f *fakeController) next() openflow.Message {
	f.t.Helper()
	_ = f.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := openflow.ReadMessage(f.nc, nil)
	if err != nil {
		f.t.Fatalf("reading from the switch: %v", err)
	}
	_, m, err := openflow.Decode(msg)
	if err != nil {
		f.t.Fatalf("decoding %x: %v", msg, err)
	}
	return m
}

func listenUnix(t *testing.T) (string, net.Listener) {
	t.Helper()
	path := filepath.Join(testRundir(t), "ctl.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return path, ln
}

// testRundirs is each test's run directory, where its bridge's
// management socket and its unix: controllers' sockets go.
var testRundirs sync.Map

func testRundir(t testing.TB) string {
	if dir, ok := testRundirs.Load(t); ok {
		return dir.(string)
	}
	dir := t.TempDir()
	testRundirs.Store(t, dir)
	t.Cleanup(func() { testRundirs.Delete(t) })
	return dir
}

func newTestService(t testing.TB, info *Info) (*Service, *ofproto.Bridge) {
	t.Helper()
	b := ofproto.NewBridge("br", 64, 300)
	if info.Versions == 0 {
		info.Versions = openflow.VersionBitmap(openflow.Version10, openflow.Version13)
	}
	s, err := Listen(filepath.Join(testRundir(t), "br.mgmt"), b, info)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, b
}

// waitStatus waits until the only controller's status satisfies ok.
func waitStatus(t *testing.T, s *Service, what string, ok func(ControllerStatus) bool) ControllerStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs := s.Controllers()
		if len(cs) == 1 && ok(cs[0]) {
			return cs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("controller never %s: %+v", what, cs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestControllerConnectsAndGetsPacketIns: an active unix: controller is
// dialled, its status says connected, ACTIVE, role other; a packet-in
// reaches it (OpenFlow 1.3: no buffer, the in_port in the match,
// no_match for an explicit miss) and, when it goes away, the status
// says disconnected with the error and the switch dials again.
func TestControllerConnectsAndGetsPacketIns(t *testing.T) {
	path, ln := listenUnix(t)
	s, b := newTestService(t, &Info{FailMode: "secure", Controllers: []ControllerConfig{{Target: "unix:" + path, Probe: DefaultProbe}}})
	if b.Tables.NumFlows() != 0 {
		t.Fatalf("a bridge with a controller kept %d flows", b.Tables.NumFlows())
	}
	f := acceptController(t, ln, openflow.Version13)
	cs := waitStatus(t, s, "connected", func(cs ControllerStatus) bool { return cs.Connected })
	if cs.State != "ACTIVE" || cs.Role != "other" || cs.LastConnected.IsZero() {
		t.Fatalf("connected status %+v", cs)
	}
	// Wait until the connection is ready for packet-ins.
	f.send(&openflow.EchoRequest{})
	if _, ok := f.next().(*openflow.EchoReply); !ok {
		t.Fatal("no echo reply")
	}
	frame := make([]byte, 60)
	frame[0] = 0xff
	s.PacketIn(&ofproto.PacketIn{Reason: ofproto.ReasonAction, ExplicitMiss: true, MaxLen: ofproto.NoBufferLen, Table: 0, Cookie: 5, InPort: 3}, frame)
	pi, ok := f.next().(*openflow.PacketIn)
	if !ok {
		t.Fatal("no packet-in")
	}
	if pi.BufferID != openflow.NoBuffer || pi.Reason != ofproto.ReasonNoMatch || pi.Cookie != 5 || len(pi.Data) != 60 || int(pi.TotalLen) != 60 {
		t.Fatalf("packet-in %+v", pi)
	}
	if m, err := matchFromWire(pi.Match); err != nil || m.String() != "in_port=3" {
		t.Fatalf("packet-in match %v (%v), want in_port=3", m, err)
	}

	f.nc.Close()
	cs = waitStatus(t, s, "disconnected", func(cs ControllerStatus) bool { return !cs.Connected })
	if cs.LastError == "" || cs.LastDisconnected.IsZero() {
		t.Fatalf("disconnected status %+v", cs)
	}
	acceptController(t, ln, openflow.Version10) // it reconnects, after its backoff
	waitStatus(t, s, "connected again", func(cs ControllerStatus) bool { return cs.Connected })
}

// TestControllerInactivityProbe: a controller that stops answering gets
// an echo request after the probe interval and is dropped after another.
func TestControllerInactivityProbe(t *testing.T) {
	path, ln := listenUnix(t)
	s, _ := newTestService(t, &Info{Controllers: []ControllerConfig{{Target: "unix:" + path, Probe: time.Second}}})
	f := acceptController(t, ln, openflow.Version10)
	waitStatus(t, s, "connected", func(cs ControllerStatus) bool { return cs.Connected })
	for {
		m := f.next()
		if _, ok := m.(*openflow.EchoRequest); ok {
			break
		}
	}
	waitStatus(t, s, "dropped for inactivity", func(cs ControllerStatus) bool { return !cs.Connected })
}

// TestPacketInQueueBounded: a controller that reads nothing costs the
// packet path nothing: past the queue, packet-ins are dropped and
// counted, and PacketIn never blocks.
func TestPacketInQueueBounded(t *testing.T) {
	path, ln := listenUnix(t)
	s, _ := newTestService(t, &Info{Controllers: []ControllerConfig{{Target: "unix:" + path}}})
	f := acceptController(t, ln, openflow.Version10)
	f.send(&openflow.EchoRequest{})
	f.next()
	before := pinDrops.Total()
	frame := make([]byte, 1500)
	done := make(chan struct{})
	go func() {
		for range 20000 {
			s.PacketIn(&ofproto.PacketIn{Reason: ofproto.ReasonAction, MaxLen: ofproto.NoBufferLen}, frame)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("PacketIn blocked on a controller that does not read")
	}
	if pinDrops.Total() == before {
		t.Fatal("no packet-in was dropped, though the controller read none")
	}
}

// TestFlushOnControllers: as in OVS, a standalone bridge without
// controllers has the NORMAL flow, the first controller flushes it, and
// deleting the last one brings it back; a secure bridge gets none.
func TestFlushOnControllers(t *testing.T) {
	s, b := newTestService(t, &Info{})
	if b.Tables.NumFlows() != 1 {
		t.Fatalf("a new standalone bridge has %d flows, want NORMAL's", b.Tables.NumFlows())
	}
	s.SetInfo(&Info{Versions: 2, Controllers: []ControllerConfig{{Target: "unix:nobody.sock"}}})
	if b.Tables.NumFlows() != 0 {
		t.Fatalf("the first controller left %d flows", b.Tables.NumFlows())
	}
	s.SetInfo(&Info{Versions: 2})
	if b.Tables.NumFlows() != 1 {
		t.Fatalf("without controllers again: %d flows, want NORMAL's", b.Tables.NumFlows())
	}
	s.SetInfo(&Info{Versions: 2, FailMode: "secure"})
	if b.Tables.NumFlows() != 0 {
		t.Fatalf("secure without controllers: %d flows", b.Tables.NumFlows())
	}
}

// TestParseTarget checks the connection methods and their errors.
func TestParseTarget(t *testing.T) {
	for _, tc := range []struct{ target, network, addr, err string }{
		{"tcp:127.0.0.1:6653", "tcp", "127.0.0.1:6653", ""},
		{"tcp:10.0.0.1", "tcp", "10.0.0.1:6653", ""},
		{"tcp:[::1]:7000", "tcp", "[::1]:7000", ""},
		{"unix:/run/c.sock", "unix", "/run/c.sock", ""},
		{"ptcp:6654", "tcp", ":6654", ""},
		{"ptcp:6654:127.0.0.1", "tcp", "127.0.0.1:6654", ""},
		{"punix:/run/l.sock", "unix", "/run/l.sock", ""},
		{"tcp:ctl.example:6653", "", "", "not an IP address"},
		{"tcp:1.2.3.4:99999", "", "", "bad port"},
		{"ssl:1.2.3.4:6653", "", "", "unsupported connection method"},
		{"unix:", "", "", "no socket path"},
	} {
		n, a, err := parseTarget(tc.target)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.target, err, tc.err)
			}
			continue
		}
		if err != nil || n != tc.network || a != tc.addr {
			t.Errorf("%s: %s %s %v, want %s %s", tc.target, n, a, err, tc.network, tc.addr)
		}
	}
}

// TestPassiveController: a punix: target listens, and a controller that
// connects to it is served like a dialled one (hello, status connected);
// when it leaves the listener stays.
func TestPassiveController(t *testing.T) {
	path := filepath.Join(testRundir(t), "br.listen")
	s, _ := newTestService(t, &Info{Controllers: []ControllerConfig{{Target: "punix:" + path}}})
	waitStatus(t, s, "listening", func(cs ControllerStatus) bool { return cs.State == "LISTENING" })
	nc, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeController{t: t, nc: nc, v: openflow.Version13}
	f.send(&openflow.Hello{Versions: openflow.VersionBitmap(openflow.Version13)})
	if _, ok := f.next().(*openflow.Hello); !ok {
		t.Fatal("no hello from the switch")
	}
	f.send(&openflow.FeaturesRequest{})
	if _, ok := f.next().(*openflow.FeaturesReply); !ok {
		t.Fatal("no features reply")
	}
	waitStatus(t, s, "connected", func(cs ControllerStatus) bool { return cs.Connected })
	nc.Close()
	waitStatus(t, s, "disconnected", func(cs ControllerStatus) bool { return !cs.Connected && cs.State == "LISTENING" })
}

// TestFailOpen: a standalone bridge whose controller stays unreachable
// fails open after three probe intervals (3 s at least): its flows are
// flushed and NORMAL switches; a secure one never does.
func TestFailOpen(t *testing.T) {
	for _, mode := range []string{"standalone", "secure"} {
		t.Run(mode, func(t *testing.T) { testFailOpen(t, mode) })
	}
}

func testFailOpen(t *testing.T, mode string) {
	s, b := newTestService(t, &Info{FailMode: mode, Controllers: []ControllerConfig{{Target: "unix:nobody.sock", Probe: time.Second}}})
	if err := b.Tables.Add(&flow.Flow{Priority: 5, Match: flow.NewMatch(packet.Key{}, packet.Key{})}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.ctlMu.Lock()
	s.updateFailOpen(start.Add(2 * time.Second))
	early := b.FailOpen()
	s.updateFailOpen(start.Add(4 * time.Second))
	s.ctlMu.Unlock()
	if early {
		t.Errorf("%s: failed open before three probe intervals", mode)
	}
	if want := mode == "standalone"; b.FailOpen() != want {
		t.Errorf("%s: fail-open %v after 4 s, want %v", mode, b.FailOpen(), want)
	}
	if want := map[string]int{"standalone": 0, "secure": 1}[mode]; b.Tables.NumFlows() != want {
		t.Errorf("%s: %d flows after 4 s, want %d", mode, b.Tables.NumFlows(), want)
	}
}

// TestUnixControllersConfinedToRundir: a Controller row is a database
// writer's, and gvsd runs as root. A unix: target outside the run
// directory would have it connect to any socket on the host (and speak
// OpenFlow to it), a punix: target would create a socket file anywhere,
// so, as OVS does, unix: targets must lie in the run directory and
// punix: targets be named <rundir>/<bridge>.*; a relative name is taken
// in the run directory. ".." does not get out of it.
func TestUnixControllersConfinedToRundir(t *testing.T) {
	rundir := testRundir(t)
	elsewhere := t.TempDir()
	outside, err := net.Listen("unix", filepath.Join(elsewhere, "service.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer outside.Close()
	for _, target := range []string{
		"unix:" + filepath.Join(elsewhere, "service.sock"),
		"unix:" + rundir + "/../" + filepath.Base(elsewhere) + "/service.sock",
		"punix:" + filepath.Join(elsewhere, "planted.sock"),
		"punix:" + rundir + "/../planted.sock",
		"punix:" + rundir + "/other.sock", // not <bridge>.*
	} {
		s, _ := newTestService(t, &Info{Controllers: []ControllerConfig{{Target: target, Probe: time.Second}}})
		cs := waitStatus(t, s, "refused", func(cs ControllerStatus) bool { return cs.LastError != "" })
		if !strings.Contains(cs.LastError, "run directory") {
			t.Errorf("%s: last_error %q does not say why", target, cs.LastError)
		}
		s.Close()
	}
	outside.(*net.UnixListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := outside.Accept(); err == nil {
		c.Close()
		t.Error("gvsd connected to a socket outside its run directory")
	}
	for _, name := range []string{filepath.Join(elsewhere, "planted.sock"), filepath.Join(filepath.Dir(rundir), "planted.sock"), filepath.Join(rundir, "other.sock")} {
		if _, err := os.Lstat(name); err == nil {
			t.Errorf("a socket was created at %s", name)
		}
	}
	// Allowed: unix: in the run directory, relative or absolute, and
	// punix:<rundir>/<bridge>.<anything>.
	_, ln := listenUnix(t)
	s, _ := newTestService(t, &Info{Controllers: []ControllerConfig{{Target: "unix:ctl.sock"}}})
	f := acceptController(t, ln, openflow.Version13)
	f.nc.Close()
	s.Close()
	s, _ = newTestService(t, &Info{Controllers: []ControllerConfig{{Target: "punix:" + rundir + "/br.controller"}}})
	waitStatus(t, s, "listening", func(cs ControllerStatus) bool { return cs.State == "LISTENING" })
	s.Close()
}

// TestSlaveControllerRefused: a controller whose role is slave may not
// change the switch (flow, group and port mods, packet-outs, bundles),
// as OVS 3.1 refuses it with OFPBRC_IS_SLAVE (roles are 1.2+); reads
// still work, and the same messages work again once it is master. A
// service connection (ovs-ofctl) has no role and is never refused. On
// the old code the slave's flow mod was applied ("a slave's flow mod
// left 1 flows").
func TestSlaveControllerRefused(t *testing.T) {
	for _, v := range []uint8{openflow.Version13, openflow.Version15} {
		t.Run(fmt.Sprintf("%#x", v), func(t *testing.T) { testSlaveRefused(t, v) })
	}
}

func testSlaveRefused(t *testing.T, v uint8) {
	path, ln := listenUnix(t)
	_, b := newTestService(t, &Info{Versions: allVersions, FailMode: "secure", Controllers: []ControllerConfig{{Target: "unix:" + path, Probe: DefaultProbe}}})
	f := acceptController(t, ln, v)
	f.send(&openflow.RoleRequest{Role: roleSlave})
	if rr, ok := f.next().(*openflow.RoleReply); !ok || rr.Role != roleSlave {
		t.Fatalf("role reply %#v, want slave", rr)
	}
	changes := []openflow.Message{
		&openflow.FlowMod{Command: openflow.FlowAdd, Priority: 5, BufferID: openflow.NoBuffer, OutPort: openflow.PortAny, OutGroup: openflow.GroupAny},
		&openflow.PortMod{PortNo: 1, Mask: 1 << 2},
		&openflow.PacketOut{BufferID: openflow.NoBuffer, InPort: openflow.PortController, Data: make([]byte, 60)},
		&openflow.GroupMod{Command: openflow.GroupAdd, Type: openflow.GroupTypeAll, GroupID: 1, CommandBucketID: openflow.BucketAll},
	}
	if v == openflow.Version15 {
		changes = append(changes, &openflow.BundleControl{BundleID: 1, Type: openflow.BundleOpenRequest})
	}
	for _, m := range changes {
		f.send(m)
		expectError(t, f, openflow.ErrIsSlave, fmt.Sprintf("slave's %T", m))
	}
	barrier(t, f, "after the refused changes")
	if n := b.Tables.NumFlows(); n != 0 {
		t.Errorf("a slave's flow mod left %d flows", n)
	}
	f.send(&openflow.RoleRequest{Role: roleMaster, GenerationID: 1})
	if rr, ok := f.next().(*openflow.RoleReply); !ok || rr.Role != roleMaster {
		t.Fatalf("role reply %#v, want master", rr)
	}
	f.send(changes[0])
	barrier(t, f, "the master's flow mod")
	if n := b.Tables.NumFlows(); n != 1 {
		t.Errorf("the master's flow mod left %d flows, want 1", n)
	}
}

// TestRoleRequestStale: a master or slave request whose generation id is
// behind the last one (as a signed 64-bit difference, so ids may wrap)
// gets OFPRRFC_STALE and changes no role, as from OVS 3.1; equal and
// no-change requests carry no id; every reply carries the recorded id,
// or all ones before there is one, as OVS 3.1's. On the old code the
// stale request made the connection master, and replies echoed the
// request's id.
func TestRoleRequestStale(t *testing.T) {
	s, _ := newTestService(t, &Info{Versions: allVersions})
	f := dialService(t, s, openflow.Version13)
	role := func(r uint32, gen uint64) openflow.Message {
		f.send(&openflow.RoleRequest{Role: r, GenerationID: gen})
		return f.next()
	}
	if rr, ok := role(roleNoChange, 7).(*openflow.RoleReply); !ok || rr.GenerationID != math.MaxUint64 {
		t.Errorf("before any id is recorded the reply is %#v, want generation id all ones", rr)
	}
	if rr, ok := role(roleSlave, 1<<63+10).(*openflow.RoleReply); !ok || rr.Role != roleSlave || rr.GenerationID != 1<<63+10 {
		t.Fatalf("first request: %#v, want a slave reply with its id", rr)
	}
	if e, ok := role(roleMaster, 1<<63+9).(*openflow.ErrorMsg); !ok || e.Err.Code != openflow.ErrRoleStale {
		t.Errorf("an older generation id: got %#v, want OFPRRFC_STALE", e)
	}
	if rr, ok := role(roleNoChange, 0).(*openflow.RoleReply); !ok || rr.Role != roleSlave {
		t.Errorf("after the stale request the role is %#v, want slave", rr)
	}
	if rr, ok := role(roleEqual, 0).(*openflow.RoleReply); !ok || rr.Role != roleEqual || rr.GenerationID != 1<<63+10 {
		t.Errorf("an equal request (no id): %#v", rr)
	}
	if rr, ok := role(roleMaster, 5).(*openflow.RoleReply); !ok || rr.Role != roleMaster { // wrapped past 2^64: newer
		t.Errorf("a generation id that wrapped: %#v, want a master reply", rr)
	}
	if rr, ok := role(roleMaster, 5).(*openflow.RoleReply); !ok || rr.Role != roleMaster {
		t.Errorf("the same generation id again: %#v, want a master reply", rr)
	}
}
