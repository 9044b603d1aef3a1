package netdev

import "gvs/internal/packet"

// TunnelReader is a port that knows the tunnel metadata of the frames
// it receives (a tunnel port: tun_id, tun_src, tun_dst from the outer
// headers it took off). The datapath reads such a port with
// ReadBatchTunnel, so that OpenFlow can match on the metadata.
type TunnelReader interface {
	ReadBatchTunnel(bufs [][]byte, sizes []int, tun []packet.TunnelMeta) (int, error)
}

// TunnelOffloadReader is a TunnelReader that also hands over
// super-frames (OffloadPort's contract): a tunnel port joins the TCP
// segments it decapsulates (tunnel_gro.go).
type TunnelOffloadReader interface {
	ReadBatchTunnelOffload(bufs [][]byte, sizes []int, offs []Offload, tun []packet.TunnelMeta) (int, error)
}

// TunnelFlow says which of a tunnel port's outer values come from the
// flow (options that say "flow"): translation gives a frame sent to such
// a port its tunnel metadata (FrameMeta.Tun).
type TunnelFlow struct {
	Remote, Local, Key bool
	// OAM: the port sends tun_flags' oam bit (Geneve's O bit), as OVS
	// takes it from the flow whatever the options say.
	OAM bool
}

// Any reports whether an address or the key comes from the flow.
func (f TunnelFlow) Any() bool { return f.Remote || f.Local || f.Key }

// TunnelFlowPort is a tunnel port that may take outer values from the
// flow.
type TunnelFlowPort interface {
	TunnelFlow() TunnelFlow
}
