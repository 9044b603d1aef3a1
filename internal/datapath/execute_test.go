package datapath_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/netdev"
	"gvs/internal/packet"
)

// fixedTranslator answers every packet with the same actions.
type fixedTranslator struct {
	acts  []datapath.Action
	calls int
}

func (f *fixedTranslator) Translate(pkt *datapath.Packet, x *datapath.Xlate) {
	f.calls++
	x.Actions = append(x.Actions, f.acts...)
	x.Mask.InPort = ^uint32(0)
}

// actionSwitch is a datapath of n memory ports whose packets all get acts.
func actionSwitch(t testing.TB, n int, acts ...datapath.Action) (*datapath.Datapath, *fixedTranslator, map[uint32]*netdev.Memory) {
	tr := &fixedTranslator{acts: acts}
	dp := datapath.New()
	cfg := &datapath.Config{Ports: map[uint32]*datapath.Port{}}
	ports := map[uint32]*netdev.Memory{}
	for no := uint32(1); no <= uint32(n); no++ {
		m := netdev.NewMemory("x"+string(rune('0'+no)), 4096)
		ports[no] = m
		cfg.Ports[no] = &datapath.Port{No: no, Name: m.Name(), Dev: m, Translator: tr}
	}
	dp.SetConfigForTest(cfg)
	return dp, tr, ports
}

// ipFrame builds an Ethernet/IPv4 frame with a TCP (proto 6) or UDP (17)
// header and payload, with correct checksums; udpNoSum leaves a UDP
// checksum of 0 (none).
func ipFrame(t testing.TB, proto uint8, udpNoSum bool) []byte {
	b := append([]byte{}, macB[:]...)
	b = append(b, macA[:]...)
	b = binary.BigEndian.AppendUint16(b, 0x0800)
	l4len := 20
	if proto == packet.ProtoUDP {
		l4len = 8
	}
	payload := []byte("some payload bytes")
	ip := []byte{0x45, 0x10, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+l4len+len(payload)))
	b = append(b, ip...)
	l4 := make([]byte, l4len)
	binary.BigEndian.PutUint16(l4[0:], 1234)
	binary.BigEndian.PutUint16(l4[2:], 80)
	if proto == packet.ProtoTCP {
		l4[12] = 5 << 4
		l4[13] = 0x18
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(8+len(payload)))
	}
	b = append(b, l4...)
	b = append(b, payload...)
	return withChecksums(t, b, udpNoSum)
}

// withChecksums returns f with its checksums computed from scratch.
func withChecksums(t testing.TB, f []byte, udpNoSum bool) []byte {
	t.Helper()
	f = append([]byte{}, f...)
	var k packet.Key
	var off packet.Offsets
	if err := packet.Parse(f, 1, &k, &off); err != nil {
		t.Fatal(err)
	}
	if err := packet.RecomputeChecksums(f, &off); err != nil {
		t.Fatal(err)
	}
	if udpNoSum {
		binary.BigEndian.PutUint16(f[int(off.L4)+6:], 0)
	}
	return f
}

func TestExecuteSetFields(t *testing.T) {
	mac := func(m [6]byte) uint64 {
		var v uint64
		for _, b := range m {
			v = v<<8 | uint64(b)
		}
		return v
	}
	newMAC := [6]byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}
	for _, tc := range []struct {
		name    string
		proto   uint8
		noSum   bool
		act     datapath.Action
		edit    func(f []byte) // what the action does, before checksums
		keepSum bool           // the UDP checksum stays 0
	}{
		{"eth_src", packet.ProtoTCP, false, datapath.SetField(datapath.FieldEthSrc, mac(newMAC)), func(f []byte) { copy(f[6:], newMAC[:]) }, false},
		{"eth_dst", packet.ProtoTCP, false, datapath.SetField(datapath.FieldEthDst, mac(newMAC)), func(f []byte) { copy(f[0:], newMAC[:]) }, false},
		{"ipv4_src tcp", packet.ProtoTCP, false, datapath.SetField(datapath.FieldIPv4Src, 0xc0a80105), func(f []byte) { copy(f[26:], []byte{192, 168, 1, 5}) }, false},
		{"ipv4_dst udp", packet.ProtoUDP, false, datapath.SetField(datapath.FieldIPv4Dst, 0xc0a80106), func(f []byte) { copy(f[30:], []byte{192, 168, 1, 6}) }, false},
		{"ipv4_dst udp without checksum", packet.ProtoUDP, true, datapath.SetField(datapath.FieldIPv4Dst, 0xc0a80106), func(f []byte) { copy(f[30:], []byte{192, 168, 1, 6}) }, true},
		{"tos", packet.ProtoTCP, false, datapath.SetField(datapath.FieldIPv4TOS, 0xb8), func(f []byte) { f[15] = 0xb8 }, false},
		{"ttl", packet.ProtoTCP, false, datapath.SetField(datapath.FieldIPv4TTL, 9), func(f []byte) { f[22] = 9 }, false},
		{"tcp_src", packet.ProtoTCP, false, datapath.SetField(datapath.FieldTpSrc, 4321), func(f []byte) { binary.BigEndian.PutUint16(f[34:], 4321) }, false},
		{"udp_dst", packet.ProtoUDP, false, datapath.SetField(datapath.FieldTpDst, 53), func(f []byte) { binary.BigEndian.PutUint16(f[36:], 53) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ipFrame(t, tc.proto, tc.noSum)
			dp, _, ports := actionSwitch(t, 3, datapath.Output(2), tc.act, datapath.Output(3))
			dp.NewTestThread(1).Process([][]byte{in})
			want := append([]byte{}, in...)
			tc.edit(want)
			want = withChecksums(t, want, tc.keepSum)
			if got := ports[2].Sent(); len(got) != 1 || !bytes.Equal(got[0], in) {
				t.Errorf("output before the set-field: got %x, want the frame as received", got)
			}
			if got := ports[3].Sent(); len(got) != 1 || !bytes.Equal(got[0], want) {
				t.Errorf("got  %x\nwant %x", got, want)
			}
		})
	}
}

// TestExecuteVLANCloneTruncate checks push and pop with TPIDs, a clone
// that leaves the packet as it was, and a truncate that applies to the
// next output only.
func TestExecuteVLANCloneTruncate(t *testing.T) {
	in := frame(bcast, macA, 10, 46)
	ad := packet.VLANHeader{TPID: packet.EtherTypeQinQ, TCI: 100}
	dp, _, ports := actionSwitch(t, 5,
		datapath.PushVLAN(ad), datapath.Output(2), // service tag over the customer tag
		datapath.Clone(3), datapath.PopVLAN(), datapath.PopVLAN(), datapath.Output(3), // untagged, in a clone
		datapath.Truncate(20), datapath.Output(4), // back to the pushed state, cut
		datapath.Output(5)) // whole again
	dp.NewTestThread(1).Process([][]byte{in})
	stacked := append(append(append([]byte{}, in[:12]...), 0x88, 0xa8, 0, 100), in[12:]...)
	untagged := frame(bcast, macA, -1, 46)
	for port, want := range map[uint32][]byte{2: stacked, 3: untagged, 4: stacked[:20], 5: stacked} {
		if got := ports[port].Sent(); len(got) != 1 || !bytes.Equal(got[0], want) {
			t.Errorf("port %d: got %x, want %x", port, got, want)
		}
	}
}

// TestExecuteDoesNotAllocate checks the executor with every kind of
// action on the cache-hit path.
func TestExecuteDoesNotAllocate(t *testing.T) {
	in := ipFrame(t, packet.ProtoTCP, false)
	dp, tr, ports := actionSwitch(t, 3,
		datapath.Clone(2), datapath.PushVLAN(packet.VLANHeader{TPID: 0x8100, TCI: 5}), datapath.Output(2),
		datapath.SetField(datapath.FieldIPv4Src, 0x01020304), datapath.SetField(datapath.FieldTpDst, 8080),
		datapath.Truncate(40), datapath.Output(3))
	for _, p := range []uint32{2, 3} {
		dp.Config().Ports[p].Dev = &sink{Netdev: ports[p]}
	}
	th := dp.NewTestThread(1)
	batch := [][]byte{in, in, in, in}
	th.Process(batch)
	if allocs := testing.AllocsPerRun(100, func() { th.Process(batch) }); allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
	if tr.calls != 1 {
		t.Errorf("translated %d times, want once (then cache hits)", tr.calls)
	}
}
