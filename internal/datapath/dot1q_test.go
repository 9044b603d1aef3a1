package datapath_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"gvs/internal/ofproto"
)

// qframe builds an Ethernet frame with the given VLAN headers, outermost
// first, each a TPID and a TCI.
func qframe(dst, src [6]byte, tags [][2]uint16, payload string) []byte {
	var b bytes.Buffer
	b.Write(dst[:])
	b.Write(src[:])
	for _, t := range tags {
		binary.Write(&b, binary.BigEndian, t)
	}
	binary.Write(&b, binary.BigEndian, uint16(0x88b5))
	b.WriteString(payload)
	return b.Bytes()
}

func dot1q(tag uint16) ofproto.PortVLAN {
	return ofproto.PortVLAN{Mode: ofproto.ModeDot1qTunnel, Tag: tag}
}

// TestDot1qTunnelFrames checks the bytes that leave each port when a
// dot1q-tunnel port (service VLAN 100) switches customer frames, as OVS
// 3.1 sends them with its default vlan-limit of 1: an 802.1ad service
// tag is pushed over the customer's frame toward a trunk, a peer
// dot1q-tunnel port gets the customer frame as it was sent, an access
// port of VLAN 100 only untagged (or priority-tagged) customer frames,
// stripped, and frames from the trunk lose their service tag only.
func TestDot1qTunnelFrames(t *testing.T) {
	const s, c, c8 = 0x88a8, 0x8100, 0x8100
	ports := map[uint32]ofproto.PortVLAN{1: dot1q(100), 2: dot1q(100), 3: trunk(), 4: access(100), 5: dot1q(200)}
	tests := []struct {
		name string
		in   uint32
		sent []byte
		want map[uint32][]byte // nil: nothing
	}{
		{"customer-tagged from tunnel port", 1, qframe(bcast, macA, [][2]uint16{{c, 10}}, "c10"), map[uint32][]byte{
			2: qframe(bcast, macA, [][2]uint16{{c, 10}}, "c10"),
			3: qframe(bcast, macA, [][2]uint16{{s, 100}, {c, 10}}, "c10"),
		}},
		{"customer PCP is kept, service PCP is 0", 1, qframe(bcast, macA, [][2]uint16{{c, 5<<13 | 10}}, "pcp"), map[uint32][]byte{
			2: qframe(bcast, macA, [][2]uint16{{c, 5<<13 | 10}}, "pcp"),
			3: qframe(bcast, macA, [][2]uint16{{s, 100}, {c, 5<<13 | 10}}, "pcp"),
		}},
		{"untagged from tunnel port", 1, qframe(bcast, macA, nil, "untagged"), map[uint32][]byte{
			2: qframe(bcast, macA, nil, "untagged"),
			3: qframe(bcast, macA, [][2]uint16{{s, 100}}, "untagged"),
			4: qframe(bcast, macA, nil, "untagged"),
		}},
		{"priority-tagged from tunnel port", 1, qframe(bcast, macA, [][2]uint16{{c, 3 << 13}}, "prio"), map[uint32][]byte{
			2: qframe(bcast, macA, [][2]uint16{{c, 3 << 13}}, "prio"),
			3: qframe(bcast, macA, [][2]uint16{{s, 100}, {c, 3 << 13}}, "prio"),
			4: qframe(bcast, macA, nil, "prio"),
		}},
		{"double-tagged from tunnel port (vlan-limit 1: inner tag is payload)", 1,
			qframe(bcast, macA, [][2]uint16{{c, 5}, {c8, 7}}, "cc"), map[uint32][]byte{
				2: qframe(bcast, macA, [][2]uint16{{c, 5}, {c8, 7}}, "cc"),
				3: qframe(bcast, macA, [][2]uint16{{s, 100}, {c, 5}, {c8, 7}}, "cc"),
			}},
		{"service-tagged from trunk", 3, qframe(bcast, macB, [][2]uint16{{s, 100}, {c, 10}}, "sc"), map[uint32][]byte{
			1: qframe(bcast, macB, [][2]uint16{{c, 10}}, "sc"),
			2: qframe(bcast, macB, [][2]uint16{{c, 10}}, "sc"),
			4: qframe(bcast, macB, [][2]uint16{{c, 10}}, "sc"),
		}},
		{"802.1Q-tagged VLAN 100 from trunk", 3, qframe(bcast, macB, [][2]uint16{{c, 100}}, "q100"), map[uint32][]byte{
			1: qframe(bcast, macB, nil, "q100"),
			2: qframe(bcast, macB, nil, "q100"),
			4: qframe(bcast, macB, nil, "q100"),
		}},
		{"service VLAN 200 from trunk", 3, qframe(bcast, macB, [][2]uint16{{s, 200}, {c, 10}}, "s200"), map[uint32][]byte{
			5: qframe(bcast, macB, [][2]uint16{{c, 10}}, "s200"),
		}},
		{"untagged from access port", 4, qframe(bcast, macB, nil, "acc"), map[uint32][]byte{
			1: qframe(bcast, macB, nil, "acc"),
			2: qframe(bcast, macB, nil, "acc"),
			3: qframe(bcast, macB, [][2]uint16{{c, 100}}, "acc"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestSwitch(t, ports)
			ts.dp.NewTestThread(tt.in).Process([][]byte{tt.sent})
			checkOutputs(t, ts, tt.in, tt.want)
		})
	}
}

// checkOutputs requires each port but in to have received exactly the
// frame in want, or nothing.
func checkOutputs(t *testing.T, ts *testSwitch, in uint32, want map[uint32][]byte) {
	t.Helper()
	for no, m := range ts.ports {
		got := drain(m)
		w, ok := want[no]
		switch {
		case no == in && len(got) != 0:
			t.Errorf("input port %d got its frame back: %x", no, got)
		case no != in && !ok && len(got) != 0:
			t.Errorf("port %d got %x, want nothing", no, got)
		case ok && (len(got) != 1 || !bytes.Equal(got[0], w)):
			t.Errorf("port %d got %x, want %x", no, got, w)
		}
	}
}

// TestDot1qTunnelNoAllocs checks that pushing and popping service tags
// allocates nothing per packet.
func TestDot1qTunnelNoAllocs(t *testing.T) {
	ts := newTestSwitch(t, map[uint32]ofproto.PortVLAN{1: dot1q(100), 2: dot1q(100), 3: trunk(), 4: access(100)})
	for no := uint32(1); no <= 4; no++ {
		ts.dp.Config().Ports[no].Dev = &sink{Netdev: ts.ports[no]}
	}
	th1, th3 := ts.dp.NewTestThread(1), ts.dp.NewTestThread(3)
	fromCustomer := [][]byte{qframe(bcast, macA, [][2]uint16{{0x8100, 10}}, "c"), qframe(bcast, macA, nil, "u")}
	fromTrunk := [][]byte{qframe(bcast, macB, [][2]uint16{{0x88a8, 100}, {0x8100, 10}}, "s")}
	th1.Process(fromCustomer)
	th3.Process(fromTrunk)
	if allocs := testing.AllocsPerRun(50, func() { th1.Process(fromCustomer); th3.Process(fromTrunk) }); allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}
