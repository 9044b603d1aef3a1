package datapath_test

import (
	"net/netip"
	"sync"
	"testing"

	"gvs/internal/datapath"
	"gvs/internal/flow"
	"gvs/internal/netdev"
	"gvs/internal/ofproto"
	"gvs/internal/packet"
)

// tunnelMemory is a memory port that plays a tunnel port: it is a
// TunnelReader, and it records the tunnel metadata each frame sent to
// it carries.
type tunnelMemory struct {
	*netdev.Memory
	mu   sync.Mutex
	sent []*packet.TunnelMeta
}

func (m *tunnelMemory) ReadBatchTunnel(bufs [][]byte, sizes []int, md []packet.TunnelMeta) (int, error) {
	return m.ReadBatch(bufs, sizes)
}

func (m *tunnelMemory) Transmit(b *netdev.Batch) (netdev.TxResult, error) {
	m.mu.Lock()
	for i := range b.Frames {
		m.sent = append(m.sent, b.Meta[i].Tun)
	}
	m.mu.Unlock()
	return m.Memory.Transmit(b)
}

func (m *tunnelMemory) takeSent() []*packet.TunnelMeta {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sent
	m.sent = nil
	return s
}

func (*tunnelMemory) NonBlocking() {}

// tunnelSwitch is a bridge with a tunnel port 1 (frames come in with
// metadata), a plain port 2, a tunnel port 3 with remote_ip=flow and
// key=flow, and the given flows.
func tunnelSwitch(t *testing.T, flows ...string) (*datapath.TestThread, *netdev.Memory, *tunnelMemory) {
	in := &tunnelMemory{Memory: netdev.NewMemory("tn1", 64)}
	plain := netdev.NewMemory("tn2", 256)
	out := &tunnelMemory{Memory: netdev.NewMemory("tn3", 256)}
	devs := map[uint32]netdev.Netdev{1: in, 2: nonBlockingMemory{plain}, 3: out}
	dp, br := datapath.New(), ofproto.NewBridge("br", 1024, 300)
	bcfg := &ofproto.Config{Ports: map[uint32]*ofproto.Port{}}
	dcfg := &datapath.Config{Ports: map[uint32]*datapath.Port{}}
	for no := uint32(1); no <= 3; no++ {
		p := &ofproto.Port{Name: devs[no].Name(), OFPort: no, DPPort: no, VLAN: trunk()}
		if no == 3 {
			p.TunnelFlow = netdev.TunnelFlow{Remote: true, Key: true}
		}
		bcfg.Ports[no] = p
		bcfg.Flood = append(bcfg.Flood, p)
		dcfg.Ports[no] = &datapath.Port{No: no, Name: p.Name, Dev: devs[no], Translator: br}
		t.Cleanup(func() { devs[no].Close() })
	}
	br.SetConfig(bcfg)
	br.Tables.Delete(ofproto.Selector{Table: ofproto.TableAll})
	for _, text := range flows {
		f, err := flow.ParseFlow(text, flow.ParseOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Tables.Add(f); err != nil {
			t.Fatal(err)
		}
	}
	dp.SetConfigForTest(dcfg)
	return dp.NewTestThread(1), plain, out
}

func tunMeta(id uint64, src, dst string) packet.TunnelMeta {
	m := packet.TunnelMeta{ID: id}
	m.SetAddrs(netip.MustParseAddr(src), netip.MustParseAddr(dst))
	return m
}

// A received frame's tunnel metadata is in its flow key: OpenFlow
// matches on tun_id (and tun_src) decide, and because the matched
// fields are in the cached flow's mask, the same frame with another
// tun_id, on the same thread and right after, never takes the first
// one's cached actions.
func TestTunnelMetadataMatchedAndCachedApart(t *testing.T) {
	th, plain, out := tunnelSwitch(t,
		"priority=10,tun_id=0x42,actions=output:2",
		"priority=10,tun_id=0x40/0xf0,tun_src=10.0.0.9,actions=output:2",
		"priority=5,tun_id=0x43,actions=set_field:10.9.9.9->tun_dst,set_tunnel:0x99,output:3",
		"priority=0,actions=drop")
	frame := ipFrame(t, packet.ProtoUDP, false)
	for i, c := range []struct {
		md         packet.TunnelMeta
		plain, tnl int
		wantTunID  uint64
		wantTunDst string
	}{
		{tunMeta(0x42, "10.0.0.2", "10.0.0.1"), 1, 0, 0, ""},
		{tunMeta(0x43, "10.0.0.2", "10.0.0.1"), 0, 1, 0x99, "10.9.9.9"},
		{tunMeta(0x44, "10.0.0.2", "10.0.0.1"), 0, 0, 0, ""},
		{tunMeta(0x44, "10.0.0.9", "10.0.0.1"), 1, 0, 0, ""}, // 0x40/0xf0 from 10.0.0.9
		{tunMeta(0x54, "10.0.0.9", "10.0.0.1"), 0, 0, 0, ""},
		{tunMeta(0x42, "10.0.0.2", "10.0.0.1"), 1, 0, 0, ""},
		{packet.TunnelMeta{}, 0, 0, 0, ""}, // no tunnel at all
	} {
		th.ProcessTunnel([][]byte{frame}, []packet.TunnelMeta{c.md})
		gotPlain, gotTnl := len(drain(plain)), out.takeSent()
		drain(out.Memory)
		if gotPlain != c.plain || len(gotTnl) != c.tnl {
			t.Errorf("packet %d (tun_id %#x from %s): %d to port 2 and %d to the tunnel, want %d and %d",
				i, c.md.ID, c.md.Local(), gotPlain, len(gotTnl), c.plain, c.tnl)
			continue
		}
		if c.tnl == 1 {
			md := gotTnl[0]
			if md == nil || md.ID != c.wantTunID || md.Remote() != netip.MustParseAddr(c.wantTunDst) {
				t.Errorf("packet %d: tunnel metadata %+v, want tun_id %#x tun_dst %s", i, md, c.wantTunID, c.wantTunDst)
			}
		}
	}
}

// An output to a flow-based tunnel port that no action set metadata for
// carries the received metadata, which is then part of the cached
// flow: two frames that differ only in their received tun_id and
// tun_dst leave with their own.
func TestTunnelMetadataPassedThrough(t *testing.T) {
	th, _, out := tunnelSwitch(t, "actions=output:3")
	frame := ipFrame(t, packet.ProtoUDP, false)
	for _, md := range []packet.TunnelMeta{
		tunMeta(0x50, "10.0.0.2", "10.0.0.1"),
		tunMeta(0x51, "10.0.0.2", "10.0.0.1"),
		tunMeta(0x51, "10.0.0.2", "10.0.0.7"),
	} {
		th.ProcessTunnel([][]byte{frame}, []packet.TunnelMeta{md})
		got := out.takeSent()
		drain(out.Memory)
		if len(got) != 1 || got[0] == nil || got[0].ID != md.ID || got[0].Remote() != md.Remote() {
			t.Errorf("received %+v: sent with %+v", md, got)
		}
	}
}

// Frames with tunnel metadata go through the cache without allocating.
func TestTunnelMetadataNoAlloc(t *testing.T) {
	th, plain, out := tunnelSwitch(t,
		"tun_id=0x42,actions=output:2",
		"tun_id=0x43,actions=set_field:10.9.9.9->tun_dst,set_tunnel:0x99,output:3")
	frame := ipFrame(t, packet.ProtoUDP, false)
	mds := []packet.TunnelMeta{tunMeta(0x42, "10.0.0.2", "10.0.0.1")}
	mds2 := []packet.TunnelMeta{tunMeta(0x43, "10.0.0.2", "10.0.0.1")}
	frames := [][]byte{frame}
	th.ProcessTunnel(frames, mds)
	th.ProcessTunnel(frames, mds2)
	out.sent = make([]*packet.TunnelMeta, 0, 1024)
	n := testing.AllocsPerRun(100, func() {
		th.ProcessTunnel(frames, mds)
		th.ProcessTunnel(frames, mds2)
		out.sent = out.sent[:0]
	})
	if n != 0 {
		t.Errorf("%.1f allocations per pair of cache hits", n)
	}
	if len(drain(plain)) == 0 {
		t.Error("nothing reached port 2")
	}
}
