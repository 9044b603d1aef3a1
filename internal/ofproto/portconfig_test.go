package ofproto

import (
	"encoding/binary"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/packet"
)

// bpduFrame is an 802.1D configuration BPDU (802.3 length, LLC 42 42 03)
// from src.
func bpduFrame(src [6]byte) []byte {
	f := append(append([]byte{}, bpduDst[:]...), src[:]...)
	f = binary.BigEndian.AppendUint16(f, 38)
	f = append(f, 0x42, 0x42, 0x03)
	return append(f, make([]byte, 35)...)
}

// TestPortConfigTranslate: each OpenFlow port config bit changes the
// datapath actions as OVS 3.1's translation does, and clearing it
// restores them. On main there are no port config bits (the test does
// not build there).
func TestPortConfigTranslate(t *testing.T) {
	tcp := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}
	cases := []struct {
		name  string
		flows []string
		port  uint32 // OpenFlow port whose bits are set
		bits  uint32
		frame []byte // nil: tcp
		want  string // with the bits; "without" is the same flows with none
		wo    string
	}{
		{"FLOOD skips NO_FLOOD", []string{"actions=FLOOD"}, 3, PortNoFlood, nil, "2,4,5", "2,3,4,5"},
		{"ALL ignores NO_FLOOD", []string{"actions=ALL"}, 3, PortNoFlood, nil, "2,3,4,5", "2,3,4,5"},
		{"NORMAL flood skips NO_FLOOD", []string{"actions=NORMAL"}, 3, PortNoFlood, nil, "2,4,5", "2,3,4,5"},
		{"output to NO_FLOOD port", []string{"actions=output:3"}, 3, PortNoFlood, nil, "3", "3"},
		{"output to NO_FWD port", []string{"actions=output:2,output:3"}, 2, PortNoFwd, nil, "3", "2,3"},
		{"FLOOD skips NO_FWD", []string{"actions=FLOOD"}, 4, PortNoFwd, nil, "2,3,5", "2,3,4,5"},
		{"NORMAL skips NO_FWD", []string{"actions=NORMAL"}, 2, PortNoFwd, nil, "3,4,5", "2,3,4,5"},
		{"IN_PORT to NO_FWD", []string{"actions=IN_PORT"}, 1, PortNoFwd, nil, "drop", "1"},
		{"NO_RECV drops", []string{"actions=output:2"}, 1, PortNoRecv, nil, "drop", "2"},
		{"NO_RECV of another port", []string{"actions=output:2"}, 2, PortNoRecv, nil, "2", "2"},
		{"NO_RECV lets a BPDU in", []string{"actions=output:2"}, 1, PortNoRecv, bpduFrame(propMACs[0]), "2", "2"},
		{"NO_RECV_STP drops a BPDU", []string{"actions=output:2"}, 1, PortNoRecvSTP, bpduFrame(propMACs[0]), "drop", "2"},
		{"NO_RECV_STP lets the rest in", []string{"actions=output:2"}, 1, PortNoRecvSTP, nil, "2", "2"},
		{"NO_PACKET_IN keeps controller", []string{"actions=controller"}, 1, PortNoPacketIn, nil, "userspace(controller)", "userspace(controller)"},
		{"NO_STP changes nothing", []string{"actions=NORMAL"}, 2, PortNoSTP, nil, "2,3,4,5", "2,3,4,5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := ofBridge(t)
			for _, f := range tc.flows {
				addFlow(t, b, f)
			}
			frame := tc.frame
			if frame == nil {
				frame = tcp.bytes()
			}
			gen := datapath.Generation()
			if !b.SetPortConfig(tc.port, tc.bits) {
				t.Fatal("SetPortConfig reports no change")
			}
			if datapath.Generation() == gen {
				t.Error("a port config change left the datapath's generation")
			}
			if got := datapath.FormatActions(translateFrame(b, 1, frame).Actions, nil); got != tc.want {
				t.Errorf("with the bit: actions %s, want %s", got, tc.want)
			}
			gen = datapath.Generation()
			if b.SetPortConfig(tc.port, tc.bits) || datapath.Generation() != gen {
				t.Error("setting the same bits again is a change")
			}
			b.SetPortConfig(tc.port, 0)
			if got := datapath.FormatActions(translateFrame(b, 1, frame).Actions, nil); got != tc.wo {
				t.Errorf("bit cleared: actions %s, want %s", got, tc.wo)
			}
		})
	}
}

// TestPortConfigMirrors: a frame NO_RECV drops is not mirrored, an
// output NO_FWD skips is not mirrored as an output (but the input's
// mirror still copies the frame), as in OVS 3.1.
func TestPortConfigMirrors(t *testing.T) {
	b := ofBridge(t)
	addFlow(t, b, "actions=output:2,output:3")
	cfg := *b.Config()
	cfg.Ports = map[uint32]*Port{}
	cfg.Flood = nil
	for _, p := range b.Config().Flood {
		q := *p
		q.MirrorOut = q.DPPort == 4
		cfg.Ports[q.DPPort] = &q
		cfg.Flood = append(cfg.Flood, &q)
	}
	cfg.Mirrors = []*Mirror{
		{Name: "src1", Src: map[uint32]bool{1: true}, OutPort: cfg.Ports[4], OutVLAN: -1, Stats: &MirrorStats{}},
	}
	b.SetConfig(&cfg)
	tcp := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}.bytes()
	check := func(what, want string) {
		t.Helper()
		if got := datapath.FormatActions(translateFrame(b, 1, tcp).Actions, nil); got != want {
			t.Errorf("%s: actions %s, want %s", what, got, want)
		}
	}
	check("no bits", "2,3,4")
	b.SetPortConfig(1, PortNoRecv)
	check("input NO_RECV", "drop")
	b.SetPortConfig(1, 0)
	b.SetPortConfig(2, PortNoFwd)
	check("output NO_FWD, input mirrored", "3,4")
	cfg2 := cfg
	cfg2.Mirrors = []*Mirror{
		{Name: "dst2", Dst: map[uint32]bool{2: true}, OutPort: cfg.Ports[4], OutVLAN: -1, Stats: &MirrorStats{}},
	}
	b.SetConfig(&cfg2)
	check("output NO_FWD, output mirror", "3")
	b.SetPortConfig(2, 0)
	check("NO_FWD cleared, output mirror", "2,3,4")
	b.SetPortConfig(4, PortNoFwd)
	check("mirror port NO_FWD", "2,3")
}

// TestPortConfigLifetime: a port's bits go with the port: a
// configuration without it forgets them, so it comes back with none.
func TestPortConfigLifetime(t *testing.T) {
	b := ofBridge(t)
	full := b.Config()
	b.SetPortConfig(2, PortNoFwd|PortNoFlood)
	b.SetPortConfig(3, PortNoRecv)
	if got := b.PortConfig(2); got != PortNoFwd|PortNoFlood {
		t.Fatalf("port 2 bits %#x", got)
	}
	b.SetConfig(full) // a reconfiguration that keeps the ports keeps them
	if b.PortConfig(2) == 0 || b.PortConfig(3) == 0 {
		t.Fatal("a reconfiguration with the same ports lost their bits")
	}
	less := *full
	less.Ports = map[uint32]*Port{}
	for no, p := range full.Ports {
		if no != 2 {
			less.Ports[no] = p
		}
	}
	b.SetConfig(&less)
	b.SetConfig(full)
	if got := b.PortConfig(2); got != 0 {
		t.Errorf("port 2 deleted and added again kept bits %#x", got)
	}
	if got := b.PortConfig(3); got != PortNoRecv {
		t.Errorf("port 3 bits %#x, want NO_RECV", got)
	}
	if b.SetPortConfig(9, 1<<0|1<<7) {
		t.Error("bits outside PortConfigBits (PORT_DOWN, unknown) are kept")
	}
}

// TestPortConfigTranslateAllocs: translating with port config bits set
// allocates nothing once warm (NORMAL, without tables: see
// TestBondTranslateAllocs).
func TestPortConfigTranslateAllocs(t *testing.T) {
	b := ofBridge(t)
	b.Tables = nil
	b.SetPortConfig(3, PortNoFlood)
	b.SetPortConfig(4, PortNoFwd)
	b.SetPortConfig(2, PortNoRecvSTP)
	f := frameSpec{in: 1, src: 0, dst: 4, ether: 0, nwSrc: 1, tpDst: 80}.bytes()
	pkt := &datapath.Packet{Frame: f, InPort: 1}
	_ = packet.Parse(f, 1, &pkt.Key.Key, &pkt.Off)
	x := &datapath.Xlate{}
	run := func() {
		x.Actions, x.Effects = x.Actions[:0], x.Effects[:0]
		b.Translate(pkt, x)
	}
	run()
	if got := datapath.FormatActions(x.Actions, nil); got != "2,5" {
		t.Fatalf("actions %s, want 2,5", got)
	}
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Fatalf("%v allocations per translation", n)
	}
}

// TestModPortConfigConcurrent: port mods of different bits from two
// connections at once both stick (a read and a separate write would
// lose one).
func TestModPortConfigConcurrent(t *testing.T) {
	b := ofBridge(t)
	done := make(chan struct{})
	for _, bit := range []uint32{PortNoFwd, PortNoFlood} {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				b.ModPortConfig(2, bit, uint32(i%2)*bit)
			}
			b.ModPortConfig(2, bit, bit)
		}()
	}
	<-done
	<-done
	if got := b.PortConfig(2); got != PortNoFwd|PortNoFlood {
		t.Errorf("bits %#x, want NO_FWD|NO_FLOOD", got)
	}
}

// TestPortConfigNotInherited: a transaction that deletes a port and adds
// another, which gets the freed OpenFlow number, leaves the new port
// without the old one's bits; a port mod for a port already gone keeps
// nothing for a later one. On the old code the new port inherited
// NO_RECV|NO_FWD (bits 0x24) and blackholed its traffic.
func TestPortConfigNotInherited(t *testing.T) {
	b := ofBridge(t)
	// Datapath numbers other than the OpenFlow ones, as gvsd's are: the
	// bits go by OpenFlow port, the configuration's map by datapath port.
	full := *b.Config()
	full.Ports = map[uint32]*Port{}
	for _, p := range b.Config().Ports {
		q := *p
		q.DPPort = p.OFPort + 100
		full.Ports[q.DPPort] = &q
	}
	b.SetConfig(&full)
	if !b.SetPortConfig(2, PortNoRecv|PortNoFwd) || b.PortConfig(2) != PortNoRecv|PortNoFwd {
		t.Fatalf("port 2's bits not kept: %#x", b.PortConfig(2))
	}
	replaced := full
	replaced.Ports = map[uint32]*Port{}
	for no, p := range full.Ports {
		if p.OFPort == 2 {
			q := *p
			q.Name = "vm2"
			p = &q
		}
		replaced.Ports[no] = p
	}
	b.SetConfig(&replaced)
	if got := b.PortConfig(2); got != 0 {
		t.Errorf("the port given number 2 inherited bits %#x", got)
	}
	less := replaced
	less.Ports = map[uint32]*Port{}
	for no, p := range replaced.Ports {
		if p.OFPort != 2 {
			less.Ports[no] = p
		}
	}
	b.SetConfig(&less)
	if b.ModPortConfig(2, PortNoRecv, PortNoRecv) {
		t.Error("a port mod of a deleted port changed bits")
	}
	b.SetConfig(&full)
	if got := b.PortConfig(2); got != 0 {
		t.Errorf("a port added after a port mod of a deleted one has bits %#x", got)
	}
}
