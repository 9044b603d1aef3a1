package connmgr

import (
	"testing"

	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/openflow"
)

var allVersions = openflow.VersionBitmap(openflow.Version10, openflow.Version13, openflow.Version14, openflow.Version15)

// listener connects a service connection of version v that asks for
// asynchronous messages (a miss_send_len, as `ovs-ofctl monitor BR
// LEN`), and waits until the switch has taken it.
func listener(t *testing.T, s *Service, v uint8, more ...openflow.Message) *fakeController {
	t.Helper()
	f := dialService(t, s, v)
	f.send(&openflow.SetConfig{MissSendLen: 128})
	for _, m := range more {
		f.send(m)
		if _, ok := m.(*openflow.RoleRequest); ok {
			if r := f.next(); func() bool { _, ok := r.(*openflow.RoleReply); return !ok }() {
				t.Fatalf("got %#v, want a role reply", r)
			}
		}
	}
	f.expectNothing()
	return f
}

// expectNothing checks that nothing is queued for f: an echo's reply
// comes next.
func (f *fakeController) expectNothing() {
	f.t.Helper()
	f.send(&openflow.EchoRequest{})
	if m := f.next(); func() bool { _, ok := m.(*openflow.EchoReply); return !ok }() {
		f.t.Fatalf("got %#v, want nothing", m)
	}
}

// expectPortStatus checks that f's next message is a port status of
// reason for port no.
func (f *fakeController) expectPortStatus(reason uint8, no uint32) *openflow.PortStatus {
	f.t.Helper()
	m := f.next()
	ps, ok := m.(*openflow.PortStatus)
	if !ok || ps.Reason != reason || ps.Desc.PortNo != no {
		f.t.Fatalf("OpenFlow %#x: got %#v, want port status %d of port %d", f.v, m, reason, no)
	}
	return ps
}

// TestPortStatusFanOut: a port added, changed and deleted goes to every
// listening connection in its own version; a connection that did not
// ask for asynchronous messages gets none, as from OVS.
func TestPortStatusFanOut(t *testing.T) {
	p1 := netdev.NewMemory("gvps1", 4)
	info := &Info{Versions: allVersions, Ports: []Port{{OFPort: 1, Name: "gvps1", Dev: p1}}}
	s, _ := newTestService(t, info)
	var fs []*fakeController
	for _, v := range []uint8{openflow.Version10, openflow.Version13, openflow.Version14, openflow.Version15} {
		fs = append(fs, listener(t, s, v))
	}
	quiet := dialService(t, s, openflow.Version13)

	p2 := netdev.NewMemory("gvps2", 4)
	two := &Info{Versions: allVersions, Ports: []Port{info.Ports[0], {OFPort: 2, Name: "gvps2", HWAddr: [6]byte{2, 0, 0, 0, 0, 2}, Dev: p2, DevInfo: p2.Info()}}}
	s.SetInfo(two)
	s.syncPorts(nil, false, false) // what the poke does, done by now
	for _, f := range fs {
		ps := f.expectPortStatus(portAdded, 2)
		if ps.Desc.Name != "gvps2" || ps.Desc.HWAddr != two.Ports[1].HWAddr || ps.Desc.State&portStateDown != 0 {
			t.Errorf("OpenFlow %#x: added port described as %+v", f.v, ps.Desc)
		}
		f.expectNothing()
	}

	p2.SetLinkUp(false)
	s.syncPorts(nil, false, true) // the poll
	for _, f := range fs {
		ps := f.expectPortStatus(portModified, 2)
		if ps.Desc.State&portStateDown == 0 || ps.Desc.State&portStateLive != 0 {
			t.Errorf("OpenFlow %#x: port with its link down described with state %#x", f.v, ps.Desc.State)
		}
	}

	s.SetInfo(info)
	s.syncPorts(nil, false, false)
	for _, f := range fs {
		f.expectPortStatus(portDeleted, 2)
		f.expectNothing()
	}
	quiet.expectNothing()
}

// TestPortStatusAsyncMask: the masks of each role choose the reasons,
// as OVS reads them; a change a version cannot show (LIVE in 1.0) is
// not sent.
func TestPortStatusAsyncMask(t *testing.T) {
	info := &Info{Versions: allVersions}
	s, _ := newTestService(t, info)
	addOnly := &openflow.SetAsync{Props: []openflow.AsyncProp{{Kind: openflow.AsyncPortStatus, Mask: 1 << portAdded}}}
	slaveDelOnly := &openflow.SetAsync{NX: true, Props: []openflow.AsyncProp{{Kind: openflow.AsyncPortStatus, Slave: true, Mask: 1 << portDeleted}}}
	// 1.4: master and equal get additions only.
	master := listener(t, s, openflow.Version14, addOnly, &openflow.RoleRequest{Role: roleMaster})
	equal := listener(t, s, openflow.Version14, addOnly)
	// 1.3 slave: deletions only (NXT_SET_ASYNC_CONFIG2, the 1.4 form
	// before 1.4). On 1.0 the same for a connection that stays equal,
	// which gets the master's.
	slave := listener(t, s, openflow.Version13, slaveDelOnly, &openflow.RoleRequest{Role: roleSlave})
	nx := &openflow.SetAsync{NX: true, Props: []openflow.AsyncProp{{Kind: openflow.AsyncPortStatus, Mask: 1 << portDeleted}}}
	equal10 := listener(t, s, openflow.Version10, nx)

	p1 := netdev.NewMemory("gvps1", 4)
	s.SetInfo(&Info{Versions: allVersions, Ports: []Port{{OFPort: 1, Name: "gvps1", Dev: p1, DevInfo: p1.Info()}}})
	s.syncPorts(nil, false, false)
	master.expectPortStatus(portAdded, 1)
	equal.expectPortStatus(portAdded, 1)
	p1.SetLinkUp(false)
	s.syncPorts(nil, false, true)
	s.SetInfo(info)
	s.syncPorts(nil, false, false)
	slave.expectPortStatus(portDeleted, 1)
	equal10.expectPortStatus(portDeleted, 1)
	for _, f := range []*fakeController{master, equal, slave, equal10} {
		f.expectNothing()
	}
}

// TestPortStatusDroppedWhenFull: a port status for a connection whose
// queue is full is dropped and counted, never waited for.
func TestPortStatusDroppedWhenFull(t *testing.T) {
	info := &Info{Versions: allVersions}
	s, _ := newTestService(t, info)
	f := listener(t, s, openflow.Version13)
	old := outMemBudget.Load()
	outMemBudget.Store(1) // nothing more fits
	t.Cleanup(func() { outMemBudget.Store(old) })
	drops := asyncDrops.Total()
	s.SetInfo(&Info{Versions: allVersions, Ports: []Port{{OFPort: 1, Name: "gvps1", Dev: netdev.NewMemory("gvps1", 4)}}})
	s.syncPorts(nil, false, false)
	if asyncDrops.Total() != drops+1 {
		t.Errorf("ofconn_async_drop went from %d to %d, want one more", drops, asyncDrops.Total())
	}
	outMemBudget.Store(old)
	f.expectNothing()
}

// TestRoleStatusOnMasterRequest: a master that another connection
// replaces becomes a slave and, from 1.4, is told so, whatever its
// masks (none by default), as OVS 3.1 does.
func TestRoleStatusOnMasterRequest(t *testing.T) {
	s, _ := newTestService(t, &Info{Versions: allVersions})
	role := func(f *fakeController, r uint32, gen uint64) {
		t.Helper()
		f.send(&openflow.RoleRequest{Role: r, GenerationID: gen})
		if rr, ok := f.next().(*openflow.RoleReply); !ok || rr.Role != r {
			t.Fatalf("role reply %#v, want role %d", rr, r)
		}
	}
	first := dialService(t, s, openflow.Version14)
	old13 := dialService(t, s, openflow.Version13)
	demoted := func(gen uint64) {
		t.Helper()
		m := first.next()
		if rs, ok := m.(*openflow.RoleStatus); !ok || rs.Role != roleSlave || rs.Reason != openflow.RoleStatusMasterRequest || rs.GenerationID != gen {
			t.Fatalf("the first master got %#v, want a role status: slave, master request, generation %d", m, gen)
		}
	}
	role(first, roleMaster, 1)
	role(old13, roleMaster, 2)
	demoted(2)
	second := dialService(t, s, openflow.Version15)
	role(first, roleMaster, 3) // old13 loses it: no role status in 1.3
	role(second, roleMaster, 4)
	demoted(4)
	first.expectNothing()
	old13.expectNothing()
	second.expectNothing()
	for _, f := range []*fakeController{first, old13} {
		f.send(&openflow.RoleRequest{Role: roleNoChange})
		if rr, ok := f.next().(*openflow.RoleReply); !ok || rr.Role != roleSlave {
			t.Errorf("OpenFlow %#x: role %#v after another became master, want slave", f.v, rr)
		}
	}
}

// TestPortModConfigBits: a port mod sets and clears the config bits of
// its version, as OVS 3.1 does: the bridge keeps them, the port's
// description shows those of each version (1.1+ has no NO_FLOOD), the
// other listeners get a port status, and a 1.3 port mod's NO_FLOOD
// changes nothing. On main every bit but PORT_DOWN got OFPBRC_EPERM.
func TestPortModConfigBits(t *testing.T) {
	p1 := netdev.NewMemory("gvpm1", 4)
	info := &Info{Versions: allVersions, Ports: []Port{{OFPort: 1, Name: "gvpm1", Dev: p1, DevInfo: p1.Info()}}}
	s, b := newTestService(t, info)
	b.SetConfig(&ofproto.Config{Ports: map[uint32]*ofproto.Port{1: {Name: "gvpm1", OFPort: 1}}}) // the bridge keeps bits of its own ports only
	l10, l13 := listener(t, s, openflow.Version10), listener(t, s, openflow.Version13)
	c10, c13 := dialService(t, s, openflow.Version10), dialService(t, s, openflow.Version13)
	const noRecv, noFlood, noFwd, noPacketIn = 1 << 2, 1 << 4, 1 << 5, 1 << 6

	c10.send(&openflow.PortMod{PortNo: 1, Config: noRecv | noFlood, Mask: noRecv | noFlood})
	c10.expectNothing() // no error, and no port status of its own change before 1.5
	if got := b.PortConfig(1); got != noRecv|noFlood {
		t.Fatalf("bridge keeps %#x, want NO_RECV|NO_FLOOD", got)
	}
	if ps := l10.expectPortStatus(portModified, 1); ps.Desc.Config != noRecv|noFlood {
		t.Errorf("1.0 port status config %#x, want %#x", ps.Desc.Config, noRecv|noFlood)
	}
	if ps := l13.expectPortStatus(portModified, 1); ps.Desc.Config != noRecv {
		t.Errorf("1.3 port status config %#x, want NO_RECV only", ps.Desc.Config)
	}

	// 1.3: NO_FLOOD is not a bit there; nothing changes, nothing is sent.
	c13.send(&openflow.PortMod{PortNo: 1, Config: 0, Mask: noFlood})
	c13.expectNothing()
	if got := b.PortConfig(1); got != noRecv|noFlood {
		t.Fatalf("a 1.3 port mod of NO_FLOOD changed the bits to %#x", got)
	}
	l10.expectNothing()
	l13.expectNothing()

	c13.send(&openflow.PortMod{PortNo: 1, Config: noFwd | noPacketIn, Mask: noRecv | noFwd | noPacketIn})
	c13.expectNothing()
	if got := b.PortConfig(1); got != noFlood|noFwd|noPacketIn {
		t.Fatalf("bridge keeps %#x, want NO_FLOOD|NO_FWD|NO_PACKET_IN", got)
	}
	if ps := l10.expectPortStatus(portModified, 1); ps.Desc.Config != noFlood|noFwd|noPacketIn {
		t.Errorf("1.0 port status config %#x", ps.Desc.Config)
	}
	if ps := l13.expectPortStatus(portModified, 1); ps.Desc.Config != noFwd|noPacketIn {
		t.Errorf("1.3 port status config %#x", ps.Desc.Config)
	}
	c13.send(&openflow.PortDescRequest{PortNo: openflow.PortAny})
	if r, ok := c13.next().(*openflow.PortDescReply); !ok || len(r.Ports) != 1 || r.Ports[0].Config != noFwd|noPacketIn {
		t.Errorf("1.3 port description: %#v", r)
	}

	// PORT_DOWN of a port without a kernel device is refused, and the
	// other bits of that message are not applied.
	c10.send(&openflow.PortMod{PortNo: 1, Config: 1, Mask: 1 | noFwd})
	if e, ok := c10.next().(*openflow.ErrorMsg); !ok || e.Err.Code != openflow.ErrEPerm {
		t.Errorf("PORT_DOWN of a memory port: %#v, want OFPBRC_EPERM", e)
	}
	if got := b.PortConfig(1); got != noFlood|noFwd|noPacketIn {
		t.Errorf("a refused port mod changed the bits to %#x", got)
	}
}
