package datapath_test

import (
	"encoding/binary"
	"testing"

	"gvs/internal/conntrack"
	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/ofproto"
	"gvs/internal/packet"
)

// pipelineFlows exercise every action the packet path executes, on
// tables a frame reaches by what it carries: rewrites of each layer,
// VLAN pushes and pops, dec_ttl, clone, learn, registers, conntrack with
// NAT and the FTP helper, recirculation and output to a register.
var pipelineFlows = []string{
	"priority=100,ct_state=-trk,ip,actions=ct(table=1,zone=7)",
	"priority=100,ct_state=-trk,ipv6,actions=ct(table=1)",
	"priority=90,arp,actions=mod_vlan_vid:30,mod_vlan_pcp:3,output:2,strip_vlan,NORMAL",
	"priority=80,dl_vlan=10,actions=push_vlan:0x88a8,mod_vlan_vid:20,output:3,pop_vlan,pop_vlan,output:2",
	"priority=0,actions=learn(table=4,hard_timeout=10,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],output:NXM_OF_IN_PORT[]),resubmit(,4),NORMAL",
	"table=1,priority=50,ct_state=+trk+new,tcp,tp_dst=21,actions=ct(commit,zone=7,alg=ftp),output:2",
	"table=1,priority=40,ct_state=+trk+new,tcp,actions=ct(commit,zone=7,nat(src=10.9.0.1-10.9.0.3:1000-1010),exec(set_field:0x5->ct_mark)),mod_dl_dst:02:00:00:00:00:09,dec_ttl,output:2",
	"table=1,priority=40,ct_state=+trk+new,udp,actions=ct(commit,zone=7,nat(dst=10.8.0.1:53)),mod_nw_tos:16,mod_tp_src:99,output:3",
	"table=1,priority=40,ct_state=+trk+est,ip,actions=ct(zone=7,nat),move:NXM_OF_IN_PORT[]->NXM_NX_REG0[0..15],resubmit(,2)",
	"table=1,priority=30,ct_state=+trk+new,icmp,actions=ct(commit,zone=7),clone(mod_nw_ttl:3,set_field:10.7.7.7->ip_dst,output:3),dec_ttl,output:2",
	"table=1,priority=30,ct_state=+trk+inv,actions=controller:64",
	"table=1,priority=20,ct_state=+trk,ipv6,actions=ct(commit),dec_ttl,output:3",
	"table=1,priority=0,actions=ct_clear,set_field:0x10->metadata,goto_table:3",
	"table=2,reg0=1,actions=load:3->NXM_NX_REG1[0..15],output:NXM_NX_REG1[0..15]",
	"table=2,priority=0,actions=mod_tp_dst:8080,mod_nw_src:10.6.0.1,IN_PORT,ALL",
	"table=3,metadata=0x10,actions=mod_dl_src:02:00:00:00:00:07,FLOOD,resubmit(1,5)",
	"table=5,actions=output:4,LOCAL",
}

// pipelineSwitch is a datapath of four memory ports on one bridge with
// pipelineFlows, two mirrors (one truncating, one into a VLAN) and a real
// connection tracker.
func pipelineSwitch(t testing.TB) (*testSwitch, []*datapath.TestThread) {
	vlans := map[uint32]ofproto.PortVLAN{1: trunk(), 2: access(10), 3: trunk(), 4: trunk()}
	ts := newTestSwitch(t, vlans)
	for _, s := range pipelineFlows {
		f, err := flow.ParseFlow(s, flow.ParseOptions{})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if err := ts.br.Tables.Add(f); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	cfg := *ts.br.Config()
	filter, err := flow.ParseMatch("tcp")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Mirrors = []*ofproto.Mirror{
		{Name: "all", All: true, OutPort: cfg.Ports[4], OutVLAN: -1, Snaplen: 60, Stats: &ofproto.MirrorStats{}},
		{Name: "tcp", Src: map[uint32]bool{1: true}, Filter: filter, OutVLAN: 99, Stats: &ofproto.MirrorStats{}},
	}
	cfg.Ports[4].MirrorOut = true
	ts.br.SetConfig(&cfg)
	ts.dp.SetTracker(conntrack.New(conntrack.Config{Clock: datapath.Monotime}))
	threads := make([]*datapath.TestThread, 0, 3)
	for no := uint32(1); no <= 3; no++ {
		threads = append(threads, ts.dp.NewTestThread(no))
	}
	return ts, threads
}

// FuzzPipeline runs arbitrary frames, entering on one of three ports,
// through translation, the flow cache, conntrack and execution: nothing
// may panic, and every frame sent is a frame (at least an Ethernet
// header, within the ports' frame size).
func FuzzPipeline(f *testing.F) {
	tcp := tcpSegment(f, false, tcpSYN, 1, 0, 0)
	ftp := tcpSegment(f, false, tcpPSH|tcpACK, 1, 1, 0)
	binary.BigEndian.PutUint16(ftp[36:], 21)
	ftp = append(ftp, []byte("PORT 192,168,0,2,4,1\r\n")...)
	for _, seed := range [][]byte{
		tcp, ftp,
		ipFrame(f, packet.ProtoUDP, false),
		frame(bcast, macA, 10, 46),
		frame(macB, macA, -1, 46),
		withVLAN(tcp, 10),
		arpRequest(),
		icmpEcho(),
		ipv6TCP(),
		tcp[:30],
	} {
		for in := byte(0); in < 3; in++ {
			f.Add(in, seed)
		}
	}
	ts, threads := pipelineSwitch(f)
	f.Fuzz(func(t *testing.T, in byte, fr []byte) {
		if len(fr) > 9000 {
			fr = fr[:9000]
		}
		threads[int(in)%len(threads)].Process([][]byte{fr})
		for _, m := range ts.ports {
			for _, out := range m.Sent() {
				if len(out) < 14 || len(out) > 9000+2*packet.VLANTagLen {
					t.Fatalf("port %s sent a frame of %d bytes for %d bytes in", m.Name(), len(out), len(fr))
				}
			}
		}
	})
}

// withVLAN returns fr with an 802.1Q header of vid after the addresses.
func withVLAN(fr []byte, vid uint16) []byte {
	out := append([]byte{}, fr[:12]...)
	out = binary.BigEndian.AppendUint16(out, 0x8100)
	out = binary.BigEndian.AppendUint16(out, vid)
	return append(out, fr[12:]...)
}

func arpRequest() []byte {
	b := append(append([]byte{}, bcast[:]...), macA[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x0806)
	b = append(b, 0, 1, 8, 0, 6, 4, 0, 1)
	b = append(b, macA[:]...)
	b = append(b, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2)
	return b
}

func icmpEcho() []byte {
	b := append(append([]byte{}, macB[:]...), macA[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	b = append(b, 0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2)
	return append(b, 8, 0, 0, 0, 0, 1, 0, 1)
}

func ipv6TCP() []byte {
	b := append(append([]byte{}, macB[:]...), macA[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x86dd)
	b = append(b, 0x60, 0, 0, 0, 0, 20, 6, 64)
	b = append(b, make([]byte, 32)...)
	b[22+15], b[38+15] = 1, 2
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], 1000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	tcp[12], tcp[13] = 5<<4, tcpSYN
	return append(b, tcp...)
}

// TestPipelineSwitchRunsItsFlows keeps FuzzPipeline meaningful: a TCP SYN
// entering port 1 goes through conntrack, is committed with source NAT
// and leaves port 2 rewritten, and an ICMP echo is cloned to port 3 with
// its own rewrites.
func TestPipelineSwitchRunsItsFlows(t *testing.T) {
	ts, threads := pipelineSwitch(t)
	threads[0].Process([][]byte{tcpSegment(t, false, tcpSYN, 1, 0, 0)})
	out := ts.ports[2].Sent()
	if len(out) != 1 {
		t.Fatalf("port 2 sent %d frames for a SYN, want 1", len(out))
	}
	syn := out[0]
	if src := syn[26:30]; src[0] != 10 || src[1] != 9 || src[2] != 0 || src[3] < 1 || src[3] > 3 {
		t.Errorf("SYN left with source %v, want one of 10.9.0.1-3 (source NAT)", src)
	}
	if syn[5] != 9 || syn[22] != 63 {
		t.Errorf("SYN left with destination MAC %x and TTL %d, want 02:00:00:00:00:09 and 63", syn[:6], syn[22])
	}
	threads[0].Process([][]byte{icmpEcho()})
	// Port 3 also carries mirror "tcp"'s VLAN 99, whose copy of the SYN
	// the copy sender may send at any time: only the untagged ICMP
	// frames are the echo's.
	got := ts.ports[3].Sent()
	var echoes [][]byte
	for _, f := range got {
		if len(f) > 33 && binary.BigEndian.Uint16(f[12:]) == packet.EtherTypeIPv4 && f[23] == packet.ProtoICMPv4 {
			echoes = append(echoes, f)
		}
	}
	if len(echoes) != 1 || echoes[0][22] != 3 || echoes[0][33] != 7 {
		t.Errorf("port 3 got %x, want the echo's clone with TTL 3 to 10.7.7.7", got)
	}
}
