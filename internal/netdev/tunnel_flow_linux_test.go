//go:build linux

package netdev

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"gvs/internal/packet"
)

// readOneTunnel waits up to a second for one frame on dev and returns
// it with its tunnel metadata; nil if none came.
func readOneTunnel(dev Netdev) ([]byte, packet.TunnelMeta) {
	type got struct {
		f  []byte
		md packet.TunnelMeta
	}
	ch := make(chan got, 1)
	go func() {
		bufs, sizes, md := [][]byte{make([]byte, MaxFrame)}, []int{0}, make([]packet.TunnelMeta, 1)
		if n, err := dev.(TunnelReader).ReadBatchTunnel(bufs, sizes, md); err == nil && n == 1 {
			ch <- got{bufs[0][:sizes[0]], md[0]}
		}
		close(ch)
	}()
	select {
	case g := <-ch:
		return g.f, g.md
	case <-time.After(time.Second):
		return nil, packet.TunnelMeta{}
	}
}

// A port with remote_ip=flow and key=flow sends each frame to its
// tun_dst with its tun_id as key; the receiving port (key=flow) hands
// the frame over with tun_id, tun_src and tun_dst from the outer
// headers. A frame without tun_dst is dropped and counted.
func TestTunnelFlowPortSendsByMetadata(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	for _, typ := range []string{"gre", "vxlan", "geneve"} {
		t.Run(typ, func(t *testing.T) {
			a, err := openIn(t, ns, Config{Name: "tnla", Type: typ, Options: map[string]string{
				"remote_ip": "flow", "local_ip": "127.0.0.1", "key": "flow"}})
			if err != nil {
				t.Fatal(err)
			}
			b, err := openIn(t, ns, Config{Name: "tnlb", Type: typ, Options: map[string]string{
				"remote_ip": "127.0.0.1", "local_ip": "127.0.0.2", "key": "flow"}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			defer b.Close()
			if tf := a.(TunnelFlowPort).TunnelFlow(); !tf.Remote || !tf.Key || tf.Local {
				t.Fatalf("TunnelFlow() = %+v", tf)
			}
			frame := innerTestFrame(100)
			md := &packet.TunnelMeta{ID: 0x42}
			md.SetAddrs(netip.Addr{}, netip.MustParseAddr("127.0.0.2"))
			batch := NewBatch(2)
			batch.Add(frame, Offload{}, len(frame), 0)
			batch.Meta[0].Tun = md
			if r, err := a.(Transmitter).Transmit(batch); err != nil || r.Sent != 1 {
				t.Fatalf("Transmit = %+v, %v", r, err)
			}
			got, gotMD := readOneTunnel(b)
			if !bytes.Equal(got, frame) {
				t.Fatalf("received %x, want the frame sent", got)
			}
			if gotMD.ID != 0x42 || gotMD.Local() != netip.MustParseAddr("127.0.0.1") || gotMD.Remote() != netip.MustParseAddr("127.0.0.2") {
				t.Errorf("received metadata id=%#x src=%s dst=%s, want 0x42 127.0.0.1 127.0.0.2", gotMD.ID, gotMD.Local(), gotMD.Remote())
			}

			before := tunnelFlowNoRemote.Total()
			batch.Meta[0].Tun = nil
			if r, _ := a.(Transmitter).Transmit(batch); r.Sent != 0 || r.Dropped != 1 {
				t.Errorf("without tun_dst: Transmit = %+v, want 1 dropped", r)
			}
			if n := tunnelFlowNoRemote.Total() - before; n != 1 {
				t.Errorf("tunnel_flow_no_remote counted %d, want 1", n)
			}
			if a.Stats().TxDropped != 1 {
				t.Errorf("TxDropped = %d, want 1", a.Stats().TxDropped)
			}
		})
	}
}

// Changing a flow-based port's remote and key rebuilds the header
// without allocating once the batch shares the metadata.
func TestTunnelFlowApplyNoAlloc(t *testing.T) {
	o, err := parseTunnelOptions(Config{Name: "t0", Type: "gre", Options: map[string]string{
		"remote_ip": "flow", "local_ip": "10.0.0.1", "key": "flow"}})
	if err != nil {
		t.Fatal(err)
	}
	w := &tunnelWriter{opts: o}
	if w.encap, err = packet.NewEncap(o.encap); err != nil {
		t.Fatal(err)
	}
	w.remote, w.fixedSrc, w.key = o.encap.Dst, o.local, o.encap.Key
	m1, m2 := &packet.TunnelMeta{ID: 1}, &packet.TunnelMeta{ID: 2}
	m1.SetAddrs(netip.Addr{}, netip.MustParseAddr("10.0.0.2"))
	m2.SetAddrs(netip.Addr{}, netip.MustParseAddr("10.0.0.3"))
	if !w.applyFlow(m1) || w.remote != netip.MustParseAddr("10.0.0.2") || w.encap.Config().Key != 1 {
		t.Fatalf("after m1: remote %s key %d", w.remote, w.encap.Config().Key)
	}
	if w.applyFlow(nil) || w.applyFlow(&packet.TunnelMeta{ID: 3}) {
		t.Error("a frame without tun_dst was given somewhere to go")
	}
	if n := testing.AllocsPerRun(100, func() { w.applyFlow(m1); w.applyFlow(m2) }); n != 0 {
		t.Errorf("applyFlow allocates %.0f times", n)
	}
}

// A Geneve port sets the O bit of the frames whose tun_flags say oam
// (set_field:1->tun_flags in OpenFlow), fixed remote or remote_ip=flow,
// as OVS takes it from the flow; the receiving port reports it back as
// tun_flags=+oam. A batch mixing both keeps each frame's own.
func TestTunnelGeneveSendsOAM(t *testing.T) {
	needRoot(t)
	ns := newNetns(t)
	for _, remote := range []string{"127.0.0.2", "flow"} {
		t.Run("remote_ip="+remote, func(t *testing.T) {
			a, err := openIn(t, ns, Config{Name: "tnla", Type: "geneve", Options: map[string]string{
				"remote_ip": remote, "local_ip": "127.0.0.1", "key": "7"}})
			if err != nil {
				t.Fatal(err)
			}
			b, err := openIn(t, ns, Config{Name: "tnlb", Type: "geneve", Options: map[string]string{
				"remote_ip": "127.0.0.1", "local_ip": "127.0.0.2", "key": "7"}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			defer b.Close()
			if tf := a.(TunnelFlowPort).TunnelFlow(); !tf.OAM {
				t.Fatalf("TunnelFlow() = %+v, want OAM", tf)
			}
			oam := &packet.TunnelMeta{Flags: packet.TunFlagOAM}
			oam.SetAddrs(netip.Addr{}, netip.MustParseAddr("127.0.0.2"))
			plain := *oam
			plain.Flags = 0
			frame := innerTestFrame(100)
			batch := NewBatch(3)
			for _, md := range []*packet.TunnelMeta{oam, &plain, oam} {
				batch.Add(frame, Offload{}, len(frame), 0)
				batch.Meta[batch.Len()-1].Tun = md
			}
			if r, err := a.(Transmitter).Transmit(batch); err != nil || r.Sent != 3 {
				t.Fatalf("Transmit = %+v, %v", r, err)
			}
			for i, want := range []bool{true, false, true} {
				got, md := readOneTunnel(b)
				if got == nil {
					t.Fatalf("frame %d did not arrive", i)
				}
				if (md.Flags&packet.TunFlagOAM != 0) != want {
					t.Errorf("frame %d: received tun_flags %#x, want oam %v", i, md.Flags, want)
				}
			}
		})
	}
}
