package datapath_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
)

// TestFlowChangeAppliesToNextPacket checks that a flow added to table 0
// after packets of a flow were cached applies to the very next packet,
// and that the rule that sent packets to NORMAL counts every one of
// them, cache hits included.
func TestFlowChangeAppliesToNextPacket(t *testing.T) {
	ts := newTestSwitch(t, map[uint32]ofproto.PortVLAN{1: access(10), 2: access(10)})
	th := ts.dp.NewTestThread(1)
	batch := make([][]byte, datapath.BatchSize)
	for i := range batch {
		batch[i] = frame(bcast, macA, -1, 46)
	}
	th.Process(batch)
	th.Process(batch)
	if got := len(drain(ts.ports[2])); got != 2*datapath.BatchSize {
		t.Fatalf("%d frames forwarded, want %d", got, 2*datapath.BatchSize)
	}
	var normal *ofproto.Rule
	for _, fs := range ts.br.Tables.Dump(ofproto.Selector{Table: ofproto.TableAll}) {
		normal = fs.Rule
	}
	if p, b := normal.Counters(); p != 2*datapath.BatchSize || b != uint64(2*datapath.BatchSize*len(batch[0])) {
		t.Errorf("NORMAL rule counted %d packets, %d bytes; want %d, %d", p, b, 2*datapath.BatchSize, 2*datapath.BatchSize*len(batch[0]))
	}

	f, err := flow.ParseFlow("priority=10,dl_src=02:00:00:00:00:0a,actions=drop", flow.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.br.Tables.Add(f); err != nil {
		t.Fatal(err)
	}
	th.Process(batch[:1])
	if got := drain(ts.ports[2]); len(got) != 0 {
		t.Fatalf("%d frames forwarded after a drop flow was added", len(got))
	}
}

// ipv4Frame is an untagged IPv4/UDP frame from macA to macB with TTL 64
// and a valid header checksum.
func ipv4Frame() []byte {
	f := append(append([]byte{}, macB[:]...), macA[:]...)
	f = append(f, 0x08, 0x00)
	ip := []byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	binary.BigEndian.PutUint16(ip[10:], ^checksum16(ip))
	f = append(f, ip...)
	return append(f, 0x30, 0x39, 0x00, 0x35, 0, 8, 0, 0) // UDP 12345 -> 53, no checksum
}

func checksum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// TestOpenFlowActionsOnFrames sends frames through OpenFlow flows and
// checks the bytes that come out: output to a port, a rewrite of the
// destination address and TTL (with the IPv4 checksum still right), a
// VLAN push, FLOOD, and a resubmit chain to NORMAL; an ICMP-style drop
// rule leaves other traffic alone.
func TestOpenFlowActionsOnFrames(t *testing.T) {
	ts := newTestSwitch(t, map[uint32]ofproto.PortVLAN{1: trunk(), 2: trunk(), 3: trunk()})
	add := func(s string) {
		t.Helper()
		f, err := flow.ParseFlow(s, flow.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.br.Tables.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	ts.br.Tables.Delete(ofproto.Selector{Table: ofproto.TableAll})
	add("priority=10,in_port=1,udp,actions=mod_dl_dst:02:00:00:00:00:99,dec_ttl,output:2,mod_vlan_vid:7,output:3")
	th := ts.dp.NewTestThread(1)
	in := ipv4Frame()
	th.Process([][]byte{in})
	out2, out3 := drain(ts.ports[2]), drain(ts.ports[3])
	if len(out2) != 1 || len(out3) != 1 {
		t.Fatalf("%d frames on port 2, %d on port 3; want 1 each", len(out2), len(out3))
	}
	want := append([]byte{}, in...)
	copy(want[0:6], []byte{2, 0, 0, 0, 0, 0x99})
	want[14+8] = 63
	binary.BigEndian.PutUint16(want[14+10:], 0)
	binary.BigEndian.PutUint16(want[14+10:], ^checksum16(want[14:34]))
	if !bytes.Equal(out2[0], want) {
		t.Errorf("port 2 got\n%x\nwant\n%x", out2[0], want)
	}
	tagged := append(append(append([]byte{}, want[:12]...), 0x81, 0x00, 0x00, 0x07), want[12:]...)
	if !bytes.Equal(out3[0], tagged) {
		t.Errorf("port 3 got\n%x\nwant\n%x", out3[0], tagged)
	}

	ts.br.Tables.Delete(ofproto.Selector{Table: ofproto.TableAll})
	add("actions=resubmit(,1)")
	add("table=1,priority=100,icmp,actions=drop")
	add("table=1,actions=FLOOD")
	th.Process([][]byte{in})
	if got2, got3 := drain(ts.ports[2]), drain(ts.ports[3]); len(got2) != 1 || len(got3) != 1 || !bytes.Equal(got2[0], in) || !bytes.Equal(got3[0], in) {
		t.Errorf("FLOOD through resubmit: port 2 %x, port 3 %x; want the frame unchanged on both", got2, got3)
	}
	if got := drain(ts.ports[1]); len(got) != 0 {
		t.Errorf("FLOOD sent %d frames back to the input port", len(got))
	}
}
